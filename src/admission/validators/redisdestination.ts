import { isIP } from 'node:net';
import { asRecord, type JsonRecord } from '../../model/json.js';
import { isDnsName } from '../../model/names.js';
import { field, FindingsBuilder, type Findings } from '../findings.js';
import { show } from './render.js';
import {
  checkAuth,
  checkDuration,
  describeType,
  checkEnum,
  checkHost,
  checkInteger,
  checkList,
  checkObject,
  showScalar,
  UINT32_MAX,
} from './redis-common.js';
import type { ValidationContext } from './types.js';
import { authModeFindings } from '../../protocols/redis/authmode.js';

export const REDIS_MODES = ['PROXY', 'CLUSTER'] as const;
const INT32_MAX = 2147483647;
const POOL = 'spec.trafficPolicy.connectionPool';
const EXAMPLE_ENDPOINT = 'redis-0.redis.redis.svc.cluster.local:6379';
const ENDPOINT_FIX = `write host[:port], e.g. "${EXAMPLE_ENDPOINT}" or "[fd00::1]:6379"`;

/**
 * RedisDestination (redis.aeraki.io/v1alpha1): the connection pool of one Redis host, PROXY or
 * CLUSTER mode, and the upstream auth.
 */
export function validateRedisDestination(object: JsonRecord, ctx: ValidationContext): Findings {
  const f = new FindingsBuilder();
  const spec = asRecord(object.spec);
  if (spec === undefined) {
    return f
      .deny('spec', `must be an object with host and trafficPolicy, got ${describeType(object.spec)}`)
      .build();
  }
  if (Array.isArray(spec.host)) {
    f.deny('spec.host', 'must be one host name, not a list; create one RedisDestination per host');
  } else {
    checkHost(f, 'spec.host', spec.host);
  }
  const policy = checkObject(f, 'spec.trafficPolicy', spec.trafficPolicy, 'connectionPool');
  const pool = checkObject(f, POOL, policy?.connectionPool, 'tcp and redis settings');
  checkTcp(pool?.tcp, f);
  checkRedis(pool?.redis, f, ctx);
  // Which Redis auth mode applies and, in file mode, the pod annotations clients need.
  if (!f.denied) f.merge(authModeFindings('RedisDestination', object, ctx.namespace, ctx.redisAuthMode));
  return f.build();
}

function checkTcp(raw: unknown, f: FindingsBuilder): void {
  const path = field(POOL, 'tcp');
  const tcp = checkObject(f, path, raw, 'maxConnections, connectTimeout and tcpKeepalive');
  if (tcp === undefined) return;
  checkInteger(f, field(path, 'maxConnections'), tcp.maxConnections, 1, INT32_MAX);
  const timeoutPath = field(path, 'connectTimeout');
  if (checkDuration(f, timeoutPath, tcp.connectTimeout) === 0n) {
    f.deny(timeoutPath, 'must be greater than 0 (Envoy rejects a zero connect timeout), e.g. "1s"');
  }
  const kaPath = field(path, 'tcpKeepalive');
  const ka = checkObject(f, kaPath, tcp.tcpKeepalive, 'probes, time and interval');
  if (ka === undefined) return;
  checkInteger(f, field(kaPath, 'probes'), ka.probes, 0, UINT32_MAX);
  checkDuration(f, field(kaPath, 'time'), ka.time);
  checkDuration(f, field(kaPath, 'interval'), ka.interval);
}

function checkRedis(raw: unknown, f: FindingsBuilder, ctx: ValidationContext): void {
  const path = field(POOL, 'redis');
  const redis = checkObject(f, path, raw, 'mode, auth and discoveryEndpoints');
  if (redis === undefined) return;
  checkEnum(f, field(path, 'mode'), redis.mode, REDIS_MODES);
  checkAuth(f, field(path, 'auth'), redis.auth);
  const epPath = field(path, 'discoveryEndpoints');
  const endpoints = checkList(f, epPath, redis.discoveryEndpoints, 'host[:port] strings') ?? [];
  endpoints.forEach((e, i) => {
    ctx.budget?.check();
    const problem =
      typeof e === 'string'
        ? endpointProblem(e)
        : `must be a host[:port] string, got ${showScalar(e)}; ${ENDPOINT_FIX}`;
    if (problem !== undefined) f.deny(field(epPath, i), problem);
  });
  const mode = redis.mode ?? 'PROXY';
  if (endpoints.length > 0 && mode === 'PROXY') {
    f.warn(epPath, 'used only in CLUSTER mode; set mode: CLUSTER or remove them');
  }
}

/**
 * Why a CLUSTER-mode seed endpoint is not `host[:port]` (host a DNS name or IPv4 address) or
 * `[ipv6]:port`, or undefined when it is fine.
 */
export function endpointProblem(s: string): string | undefined {
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
    if (m === null) return `${show(s)} is not host[:port]; ${ENDPOINT_FIX}`;
    const [, ip = '', port] = m;
    if (isIP(ip) !== 6)
      return `${show(s)} has ${show(ip)} in brackets, which is not an IPv6 address; ${ENDPOINT_FIX}`;
    if (port === undefined) return `${show(s)} needs a port after the IPv6 address, e.g. "[${ip}]:6379"`;
    return portProblem(s, port);
  }
  const colon = s.indexOf(':');
  if (colon !== s.lastIndexOf(':')) {
    return isIP(s) === 6
      ? `${show(s)} is an IPv6 address without port; write it in brackets with a port, e.g. "[${s}]:6379"`
      : `${show(s)} is not host[:port]; ${ENDPOINT_FIX}`;
  }
  const host = colon < 0 ? s : s.slice(0, colon);
  const numeric = /^[\d.]+$/.test(host);
  if (numeric ? isIP(host) !== 4 : !isDnsName(host)) {
    return `${show(s)} has host ${show(host)}, which is not a DNS name or IPv4 address; ${ENDPOINT_FIX}`;
  }
  return colon < 0 ? undefined : portProblem(s, s.slice(colon + 1));
}

function portProblem(endpoint: string, port: string): string | undefined {
  if (/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535) return undefined;
  const shown = /^\d+$/.test(port) ? port : show(port);
  return `${show(endpoint)} has port ${shown}; the port must be an integer from 1 to 65535`;
}
