// Small numeric helpers of the soak run: Prometheus text parsing, least-squares slopes,
// percentiles and windowed minima.

/** One scrape of Breeze's /metrics, reduced to the figures the soak run follows. */
export interface Sample {
  /** Seconds since the soak run began. */
  readonly t: number;
  readonly phase: string;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly handles: number;
  readonly resources: number;
  readonly fds: number;
  readonly lagP99: number;
  readonly inFlight: number;
  readonly cpuSeconds: number;
}

/** The value of an unlabelled metric (or the sum over its label sets) in Prometheus text. */
export function metricValue(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

/** Every label set of a metric with its value, e.g. breeze_reconcile_writes_total. */
export function metricSeries(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labels = line.slice(name.length + 1, line.indexOf('}'));
    out[labels] = Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

export function sampleOf(text: string, t: number, phase: string): Sample {
  const v = (name: string): number => metricValue(text, name) ?? NaN;
  return {
    t,
    phase,
    rss: v('process_resident_memory_bytes'),
    heapUsed: v('nodejs_heap_size_used_bytes'),
    heapTotal: v('nodejs_heap_size_total_bytes'),
    external: v('nodejs_external_memory_bytes'),
    handles: v('nodejs_active_handles_total'),
    resources: v('nodejs_active_resources_total'),
    fds: v('process_open_fds'),
    lagP99: v('nodejs_eventloop_lag_p99_seconds'),
    inFlight: v('breeze_admission_in_flight'),
    cpuSeconds: v('process_cpu_seconds_total'),
  };
}

/** Least-squares slope of y over x (NaN with fewer than two distinct x). */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/**
 * The minimum of each window of `windowS` seconds, at the window's middle: the heap right after a
 * collection, which is what a leak raises (the raw series saw-tooths with the young generation).
 */
export function windowMinima(
  points: readonly (readonly [number, number])[],
  windowS: number,
): [number, number][] {
  if (points.length === 0) return [];
  const start = points[0]?.[0] ?? 0;
  const windows = new Map<number, number>();
  for (const [x, y] of points) {
    const w = Math.floor((x - start) / windowS);
    windows.set(w, Math.min(windows.get(w) ?? Infinity, y));
  }
  return [...windows].map(([w, y]) => [start + (w + 0.5) * windowS, y]);
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export const MiB = 1024 * 1024;

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
