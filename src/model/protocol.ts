/** Port-name protocol detection, as Aeraki does it: the second `-`-separated token, any case. */
export const PROTOCOLS = ['dubbo', 'thrift', 'kafka', 'zookeeper', 'redis'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** `tcp-dubbo` → dubbo, `tcp-Dubbo-28001` → dubbo, `dubbo` or `tcp` → undefined. */
export function protocolFromPortName(name: string): Protocol | undefined {
  const token = name.split('-')[1]?.toLowerCase();
  return PROTOCOLS.find((p) => p === token);
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
  const token = name.split('-')[1]?.toLowerCase();
  if (token === undefined || token.length < 4 || OTHER_KNOWN.has(token)) return undefined;
  if (PROTOCOLS.some((p) => p === token)) return undefined;
  let best: { p: Protocol; d: number } | undefined;
  for (const p of PROTOCOLS) {
    const d = editDistance(token, p);
    const limit = p.length >= 7 ? 2 : 1;
    if (d <= limit && (best === undefined || d < best.d)) best = { p, d };
  }
  return best?.p;
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions, adjacent swaps. */
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
