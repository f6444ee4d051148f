/**
 * Which ports are Breeze protocol ports: one rule, used by the validators, the mutator, the cache
 * and the generators (through ServiceView).
 *
 * A port is a Breeze protocol port for protocol P when both hold:
 * 1. Aeraki's rule: the second `-`-separated token of its name is P, in any case (`tcp-dubbo`,
 *    `tcp-Dubbo-28001`); P is dubbo, thrift, kafka, zookeeper or redis;
 * 2. Istio serves the port as plain TCP, i.e. the protocol Istio reads for it is TCP or one Istio
 *    does not know (sniffed): Istio reads a ServiceEntry port's `protocol` field; a Kubernetes
 *    Service port is UDP or SCTP by its `protocol`, else Istio reads its `appProtocol`, else the
 *    name's prefix before the first `-` (`http-redis-ui` is HTTP). A ServiceEntry port without `protocol` is read by its
 *    name prefix too (Istio would sniff it; a name starting `http-` means HTTP). Names Istio reads
 *    as HTTP, HTTP2, HTTPS, gRPC, TLS, UDP, Mongo, MySQL or Redis are Istio's, not Breeze's.
 *
 * A port whose name carries P but that fails rule 2 is left to Istio: Breeze may warn, never deny.
 */
export const PROTOCOLS = ['dubbo', 'thrift', 'kafka', 'zookeeper', 'redis'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/**
 * Protocols Istio parses (protocol.Parse, any case) that it serves other than as plain TCP, and
 * Kubernetes' own appProtocol names (kubernetes.io/h2c, ws, wss: HTTP). SCTP and UDP are not TCP.
 */
const ISTIO_NOT_TCP = new Map<string, string>([
  ['http', 'HTTP'],
  ['http2', 'HTTP2'],
  ['https', 'HTTPS'],
  ['http_proxy', 'HTTP_PROXY'],
  ['grpc', 'GRPC'],
  ['grpc-web', 'GRPC-Web'],
  ['tls', 'TLS'],
  ['udp', 'UDP'],
  ['sctp', 'SCTP'],
  ['mongo', 'Mongo'],
  ['mysql', 'MySQL'],
  ['redis', 'Redis'],
  ['kubernetes.io/h2c', 'HTTP2'],
  ['kubernetes.io/ws', 'HTTP'],
  ['kubernetes.io/wss', 'HTTP'],
]);
/** The longest key of ISTIO_NOT_TCP: a longer value is not one of them. */
const LONGEST_ISTIO_NAME = 17;

/** A port as Istio and Breeze read it: ServiceEntry (name, protocol) or Service (name, protocol, appProtocol). */
export interface PortFields {
  readonly name?: unknown;
  readonly protocol?: unknown;
  readonly appProtocol?: unknown;
}

/** How Breeze reads a port: its protocol, or why a protocol named in it is left to Istio. */
export type PortReading =
  | { readonly protocol: Protocol; readonly leftToIstio?: undefined }
  | {
      readonly protocol: undefined;
      /** The name carries a Breeze protocol but Istio serves the port as `istio` (from `field`). */
      readonly leftToIstio?: { readonly named: Protocol; readonly istio: string; readonly field: string };
    };

/** The protocol Istio serves a value as when it is not plain TCP (`HTTP`), else undefined. */
function istioNonTcp(value: string): string | undefined {
  if (value.length > LONGEST_ISTIO_NAME) return undefined;
  return ISTIO_NOT_TCP.get(value.toLowerCase());
}

/**
 * Reads a port (see the module comment). `kind` says whose port it is: a ServiceEntry's
 * `protocol` is Istio's protocol; a Kubernetes Service's `protocol` (TCP by default) only makes it
 * UDP or SCTP, and Istio then reads `appProtocol`, else the name. Constant work whatever the
 * lengths of its fields.
 */
export function readPort(port: PortFields, kind: 'ServiceEntry' | 'Service' = 'ServiceEntry'): PortReading {
  const name = typeof port.name === 'string' ? port.name : '';
  const named = protocolToken(name);
  if (named === undefined) return { protocol: undefined };
  // The name's own prefix (`http-redis-ui`: HTTP); the name has a '-', as it has a protocol token.
  const prefix = istioNonTcp(name.slice(0, Math.min(name.indexOf('-'), LONGEST_ISTIO_NAME + 1)));
  const fields = kind === 'Service' ? (['protocol', 'appProtocol'] as const) : (['protocol'] as const);
  for (const field of fields) {
    const v = port[field];
    if (typeof v !== 'string' || v === '') continue;
    const istio = istioNonTcp(v);
    // A Service's protocol field decides only when it is not TCP (UDP, SCTP).
    if (kind === 'Service' && field === 'protocol' && istio === undefined) continue;
    if (istio === undefined) return { protocol: named }; // TCP, or a protocol Istio does not know
    // Istio reads this field and never the name; `field` is what keeps the port from Breeze
    // unless the name's prefix says the same (`http-redis-ui` declared HTTP).
    return {
      protocol: undefined,
      leftToIstio: { named, istio, field: prefix === undefined ? field : 'name' },
    };
  }
  if (prefix !== undefined)
    return { protocol: undefined, leftToIstio: { named, istio: prefix, field: 'name' } };
  return { protocol: named };
}

/** The Breeze protocol of a port, if it is a Breeze protocol port (see readPort). */
export function protocolOfPort(
  port: PortFields,
  kind: 'ServiceEntry' | 'Service' = 'ServiceEntry',
): Protocol | undefined {
  return readPort(port, kind).protocol;
}

/** The longest supported protocol name (`zookeeper`). */
const LONGEST_PROTOCOL = Math.max(...PROTOCOLS.map((p) => p.length));

/** Most edits between a second token and the protocol it is taken for a misspelling of. */
const MAX_MISSPELLING_EDITS = 2;

/**
 * A port name alone (no `protocol` field): `tcp-dubbo` → dubbo, `tcp-Dubbo-28001` → dubbo,
 * `http-redis-ui` → undefined (Istio reads it as HTTP), `dubbo` or `tcp` → undefined.
 */
export function protocolFromPortName(name: string): Protocol | undefined {
  return protocolOfPort({ name });
}

/** Aeraki's rule alone: the second token of the name, if it is a supported protocol. */
function protocolToken(name: string): Protocol | undefined {
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
