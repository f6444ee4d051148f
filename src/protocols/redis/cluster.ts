/**
 * RedisDestination → the outbound cluster of a Redis port, replacing Istio's own (CLUSTER REMOVE
 * then ADD): PROXY mode (EDS, Maglev) or CLUSTER mode (Envoy's Redis Cluster discovery from seed
 * endpoints), connect timeout, circuit breaker, TCP keepalive and upstream auth.
 */
import { isIP } from 'node:net';
import type { JsonRecord } from '../../model/json.js';
import { isDnsName } from '../../model/names.js';
import { outboundCluster, sourceOf } from '../shared/envoyfilter.js';
import type { ConfigPatch, PortContext, SourceRef } from '../types.js';
import { resolveAuth } from './auth.js';
import {
  failAt,
  optDuration,
  optInteger,
  optList,
  optRecord,
  optString,
  originOf,
  showValue,
  UINT32_MAX,
  type Origin,
} from './fields.js';

export const REDIS_PROXY_FILTER = 'envoy.filters.network.redis_proxy';
export const REDIS_CLUSTER_TYPE = 'envoy.clusters.redis';
export const REDIS_CLUSTER_CONFIG =
  'type.googleapis.com/envoy.extensions.clusters.redis.v3.RedisClusterConfig';
export const REDIS_PROTOCOL_OPTIONS =
  'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions';
export const RAW_BUFFER = 'envoy.transport_sockets.raw_buffer';
export const RAW_BUFFER_TYPE =
  'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';
export const DEFAULT_CONNECT_TIMEOUT = '10s';

const POOL = 'spec.trafficPolicy.connectionPool';
const NANOS_PER_SECOND = 1_000_000_000n;

/**
 * A CLUSTER-mode seed endpoint `host[:port]` / `[ipv6]:port` (host alone: `defaultPort`), or a
 * problem text.
 */
export function parseEndpoint(text: string, defaultPort: number): { host: string; port: number } | string {
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed !== null) {
    host = bracketed[1] ?? '';
    port = bracketed[2];
    if (isIP(host) !== 6) return `${showValue(text)} has ${showValue(host)} in brackets, not an IPv6 address`;
  } else if (isIP(text) === 6) {
    host = text;
  } else {
    const parts = text.split(':');
    if (parts.length > 2) return `${showValue(text)} is not host[:port]`;
    host = parts[0] ?? '';
    port = parts[1];
    const numeric = /^[\d.]+$/.test(host);
    if (numeric ? isIP(host) !== 4 : !isDnsName(host)) {
      return `${showValue(text)} has host ${showValue(host)}, which is not a DNS name or IP address`;
    }
  }
  if (port === undefined) return { host, port: defaultPort };
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    return `${showValue(text)} has port ${showValue(port)}; use an integer from 1 to 65535`;
  }
  return { host, port: Number(port) };
}

/** Whole seconds for Envoy's keepalive `UInt32Value`s, rounded up so 0.5s does not become 0. */
function keepaliveSeconds(nanos: bigint): number | undefined {
  if (nanos === 0n) return undefined;
  const seconds = (nanos + NANOS_PER_SECOND - 1n) / NANOS_PER_SECOND;
  return Number(seconds > BigInt(UINT32_MAX) ? BigInt(UINT32_MAX) : seconds);
}

function tcpKeepalive(origin: Origin, path: string, value: unknown): JsonRecord | undefined {
  const ka = optRecord(origin, path, value);
  if (ka === undefined) return undefined;
  const out: JsonRecord = {};
  const probes = optInteger(origin, `${path}.probes`, ka.probes, UINT32_MAX);
  if (probes !== undefined && probes > 0) out.keepaliveProbes = probes;
  const time = optDuration(origin, `${path}.time`, ka.time);
  const timeSeconds = time === undefined ? undefined : keepaliveSeconds(time.nanos);
  if (timeSeconds !== undefined) out.keepaliveTime = timeSeconds;
  const interval = optDuration(origin, `${path}.interval`, ka.interval);
  const intervalSeconds = interval === undefined ? undefined : keepaliveSeconds(interval.nanos);
  if (intervalSeconds !== undefined) out.keepaliveInterval = intervalSeconds;
  return out;
}

function socketEndpoint(host: string, port: number): JsonRecord {
  return { endpoint: { address: { socketAddress: { address: host, portValue: port } } } };
}

/**
 * The CLUSTER REMOVE + ADD patches for the outbound cluster of `ctx.port`, built from the
 * RedisDestination; `sources` gets the RedisDestination and any Secret read.
 */
export function clusterPatches(
  ctx: PortContext,
  destination: JsonRecord,
  sources: SourceRef[],
): ConfigPatch[] {
  const origin = originOf(destination);
  sources.push(sourceOf(destination));
  const spec = optRecord(origin, 'spec', destination.spec) ?? {};
  const policy = optRecord(origin, 'spec.trafficPolicy', spec.trafficPolicy);
  const pool = optRecord(origin, POOL, policy?.connectionPool);
  const tcp = optRecord(origin, `${POOL}.tcp`, pool?.tcp) ?? {};
  const redis = optRecord(origin, `${POOL}.redis`, pool?.redis) ?? {};
  const listenPort = ctx.port.number;
  const name = outboundCluster(listenPort, ctx.host);

  const timeout = optDuration(origin, `${POOL}.tcp.connectTimeout`, tcp.connectTimeout);
  if (timeout?.nanos === 0n) {
    failAt(
      origin,
      `${POOL}.tcp.connectTimeout`,
      'must be greater than 0 (Envoy rejects a zero connect timeout)',
    );
  }
  const mode = optString(origin, `${POOL}.redis.mode`, redis.mode) ?? 'PROXY';
  if (mode !== 'PROXY' && mode !== 'CLUSTER') {
    failAt(origin, `${POOL}.redis.mode`, `must be PROXY or CLUSTER, got ${showValue(mode)}`);
  }

  const cluster: JsonRecord = { name };
  if (mode === 'CLUSTER') {
    cluster.clusterType = { name: REDIS_CLUSTER_TYPE, typedConfig: { '@type': REDIS_CLUSTER_CONFIG } };
  } else {
    cluster.type = 'EDS';
    cluster.edsClusterConfig = { edsConfig: { ads: {}, resourceApiVersion: 'V3' } };
  }
  cluster.connectTimeout = timeout?.text ?? DEFAULT_CONNECT_TIMEOUT;
  cluster.lbPolicy = mode === 'CLUSTER' ? 'CLUSTER_PROVIDED' : 'MAGLEV';
  if (mode === 'CLUSTER') {
    const path = `${POOL}.redis.discoveryEndpoints`;
    const seeds = optList(origin, path, redis.discoveryEndpoints).map((e, i) => {
      if (typeof e !== 'string') return failAt(origin, `${path}[${i}]`, `must be a host[:port] string`);
      const parsed = parseEndpoint(e, listenPort);
      return typeof parsed === 'string' ? failAt(origin, `${path}[${i}]`, parsed) : parsed;
    });
    if (seeds.length === 0) seeds.push({ host: ctx.host, port: listenPort });
    cluster.loadAssignment = {
      clusterName: name,
      endpoints: [{ lbEndpoints: seeds.map((s) => socketEndpoint(s.host, s.port)) }],
    };
  }

  const maxConnections = optInteger(origin, `${POOL}.tcp.maxConnections`, tcp.maxConnections, UINT32_MAX);
  cluster.circuitBreakers = {
    thresholds: [
      {
        maxConnections: maxConnections !== undefined && maxConnections > 0 ? maxConnections : UINT32_MAX,
        maxPendingRequests: UINT32_MAX,
        maxRequests: UINT32_MAX,
        maxRetries: UINT32_MAX,
      },
    ],
  };
  const keepalive = tcpKeepalive(origin, `${POOL}.tcp.tcpKeepalive`, tcp.tcpKeepalive);
  if (keepalive !== undefined) cluster.upstreamConnectionOptions = { tcpKeepalive: keepalive };

  // Upstream auth: the Secret is read in the service's namespace (where the RedisDestination is).
  const auth = resolveAuth(ctx, origin, `${POOL}.redis.auth`, redis.auth, ctx.service.namespace, destination);
  if (auth !== undefined) {
    if (auth.secret !== undefined) sources.push(auth.secret);
    const options: JsonRecord = { '@type': REDIS_PROTOCOL_OPTIONS, authPassword: auth.password };
    if (auth.username !== undefined) options.authUsername = auth.username;
    cluster.typedExtensionProtocolOptions = { [REDIS_PROXY_FILTER]: options };
  }

  // Istio's service metadata (telemetry), and plain text: Istio mTLS does not work with redis_proxy
  // (istio/istio#30022).
  cluster.metadata = {
    filterMetadata: {
      istio: {
        default_original_port: listenPort,
        services: [{ host: ctx.host, name: ctx.service.name, namespace: ctx.service.namespace }],
      },
    },
  };
  cluster.transportSocketMatches = [
    {
      name: 'tlsMode-disabled',
      transportSocket: { name: RAW_BUFFER, typedConfig: { '@type': RAW_BUFFER_TYPE } },
    },
  ];

  return [
    { applyTo: 'CLUSTER', match: { cluster: { name } }, patch: { operation: 'REMOVE' } },
    { applyTo: 'CLUSTER', patch: { operation: 'ADD', value: cluster } },
  ];
}
