/** Go-style durations (`500ms`, `1m30s`) and protobuf JSON durations (`1.5s`), exactly, in nanoseconds. */

const NANOS_PER_UNIT: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const GO_DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
const NANOS_PER_SECOND = 1_000_000_000n;

/**
 * Nanoseconds of an unsigned Go duration (`1m30s`, `500ms`, `1.5h`, `0`), which includes every
 * protobuf duration (`1.5s`). Undefined when the text is not one, or is not a whole number of
 * nanoseconds (`0.1ns`).
 */
export function goDurationNanos(text: string): bigint | undefined {
  if (text === '0') return 0n;
  if (text === '') return undefined;
  let total = 0n;
  let at = 0;
  while (at < text.length) {
    GO_DURATION_PART.lastIndex = at;
    const m = GO_DURATION_PART.exec(text);
    const [all, num, unit] = m ?? [];
    const perUnit = NANOS_PER_UNIT[unit ?? ''];
    if (all === undefined || num === undefined || perUnit === undefined) return undefined;
    const [whole = '', frac = ''] = num.split('.');
    const scale = 10n ** BigInt(frac.length);
    const fracNanos = BigInt(frac === '' ? '0' : frac) * perUnit;
    if (fracNanos % scale !== 0n) return undefined;
    total += BigInt(whole === '' ? '0' : whole) * perUnit + fracNanos / scale;
    at += all.length;
  }
  return total;
}

/** Nanoseconds as a protobuf JSON duration: 500000000n → `0.5s`, 90000000000n → `90s`. */
export function protoDurationText(nanos: bigint): string {
  const whole = (nanos / NANOS_PER_SECOND).toString();
  const frac = nanos % NANOS_PER_SECOND;
  if (frac === 0n) return `${whole}s`;
  return `${whole}.${frac.toString().padStart(9, '0').replace(/0+$/, '')}s`;
}

/** Milliseconds of a Go duration (flags, the API server's `?timeout=`), or undefined. */
export function parseGoDuration(text: string): number | undefined {
  const nanos = goDurationNanos(text);
  return nanos === undefined ? undefined : Number(nanos) / 1e6;
}
