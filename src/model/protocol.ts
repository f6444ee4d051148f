/** Port-name protocol detection, as Aeraki does it: the second `-`-separated token, any case. */
export const PROTOCOLS = ['dubbo', 'thrift', 'kafka', 'zookeeper', 'redis'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** The longest supported protocol name (`zookeeper`). */
const LONGEST_PROTOCOL = Math.max(...PROTOCOLS.map((p) => p.length));

/** Most edits between a second token and the protocol it is taken for a misspelling of. */
const MAX_MISSPELLING_EDITS = 2;

/** `tcp-dubbo` → dubbo, `tcp-Dubbo-28001` → dubbo, `dubbo` or `tcp` → undefined. */
export function protocolFromPortName(name: string): Protocol | undefined {
  const token = secondToken(name, LONGEST_PROTOCOL);
  return PROTOCOLS.find((p) => p === token);
}

/**
 * The second `-`-separated token of a port name, lowercased, or undefined when there is none or
 * it is longer than `max` (no token that long can be, or be close to, a protocol name). Linear in
 * the name at worst, constant for the common case: it never splits the whole name.
 */
function secondToken(name: string, max: number): string | undefined {
  const start = name.indexOf('-');
  if (start < 0) return undefined;
  const end = name.indexOf('-', start + 1);
  const length = (end < 0 ? name.length : end) - start - 1;
  if (length > max) return undefined;
  return name.slice(start + 1, start + 1 + length).toLowerCase();
}

/** Second tokens that are real protocols of their own and must never be read as misspellings. */
const OTHER_KNOWN = new Set([
  'tcp', 'udp', 'tls', 'http', 'http2', 'https', 'grpc', 'grpc-web', 'mongo', 'mysql', 'sctp',
  'metaprotocol', 'web', 'admin', 'metrics', 'server', 'client', 'peer', 'follower', 'election',
]); // prettier-ignore

/**
 * When the second token of a port name is close to, but not exactly, a supported protocol
 * (`tcp-dubo`, `tcp-thirft`), returns that protocol so the user can be warned.
 */
export function likelyMisspeltProtocol(name: string): Protocol | undefined {
  const token = secondToken(name, LONGEST_PROTOCOL + MAX_MISSPELLING_EDITS);
  if (token === undefined || token.length < 4 || OTHER_KNOWN.has(token)) return undefined;
  if (PROTOCOLS.some((p) => p === token)) return undefined;
  let best: { p: Protocol; d: number } | undefined;
  for (const p of PROTOCOLS) {
    const d = editDistance(token, p);
    const limit = p.length >= 7 ? MAX_MISSPELLING_EDITS : 1;
    if (d <= limit && (best === undefined || d < best.d)) best = { p, d };
  }
  return best?.p;
}

/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions, adjacent swaps.
 * Quadratic: callers pass short tokens only (likelyMisspeltProtocol bounds them).
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * cols + j] = v;
    }
  }
  return at(a.length, b.length);
}
