/**
 * RedisService → RedisProxy: settings, prefix routes with mirrors, and faults.
 */
import { isDnsName, resolveHost } from '../../model/names.js';
import type { JsonRecord } from '../../model/json.js';
import type { ServiceView } from '../../model/service.js';
import { outboundCluster } from '../shared/envoyfilter.js';
import type { PortContext, SourceRef } from '../types.js';
import {
  failAt,
  optBoolean,
  optDuration,
  optInteger,
  optList,
  optPercent,
  optPort,
  optRecord,
  optString,
  reqString,
  showValue,
  UINT32_MAX,
  type Origin,
} from './fields.js';

/** RedisService `settings.readPolicy` → Envoy's `ConnPoolSettings.ReadPolicy` (same names, one to one). */
export const READ_POLICY: Readonly<Record<string, string>> = {
  MASTER: 'MASTER',
  PREFER_MASTER: 'PREFER_MASTER',
  REPLICA: 'REPLICA',
  PREFER_REPLICA: 'PREFER_REPLICA', // Aeraki maps this one to PREFER_MASTER
  ANY: 'ANY',
};

export const FAULT_TYPE: Readonly<Record<string, string>> = { DELAY: 'DELAY', ERROR: 'ERROR' };

/** Envoy's limit on a route prefix (`max_bytes: 1000`). */
const MAX_PREFIX_BYTES = 1000;

function compareServices(namespace: string): (a: ServiceView, b: ServiceView) => number {
  const key = (s: ServiceView): string =>
    `${s.namespace === namespace ? 0 : 1}/${s.kind}/${s.namespace}/${s.name}`;
  return (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}

/**
 * The port of a route's (or mirror's) destination when the RedisService gives none, as Aeraki
 * chooses it: the destination service's only port; else its port with the listen port's number,
 * else with the listen port's name; else the listen port. The destination service is the one
 * claiming the host in the service's namespace, else the first by kind/namespace/name.
 */
export function destinationPort(
  ctx: PortContext,
  fqdn: string,
): { port: number; source: SourceRef | undefined } {
  const listen = ctx.port;
  const svc = [...ctx.servicesFor(fqdn)].sort(compareServices(ctx.service.namespace))[0];
  if (svc === undefined) return { port: listen.number, source: undefined };
  const source: SourceRef = { kind: svc.kind, namespace: svc.namespace, name: svc.name };
  const only = svc.ports.length === 1 ? svc.ports[0] : undefined;
  if (only !== undefined) return { port: only.number, source };
  if (svc.ports.some((p) => p.number === listen.number)) return { port: listen.number, source };
  const byName = svc.ports.find((p) => p.name !== '' && p.name === listen.name);
  return { port: byName?.number ?? listen.number, source };
}

/** `{host, port}` of a route or mirror → its outbound cluster name. */
function destinationCluster(
  ctx: PortContext,
  origin: Origin,
  path: string,
  value: unknown,
  sources: SourceRef[],
): string {
  const dest = optRecord(origin, path, value);
  if (dest === undefined) return failAt(origin, path, 'is required: {host, optional port}');
  const host = reqString(origin, `${path}.host`, dest.host, 'redis.redis.svc.cluster.local');
  if (!isDnsName(host)) {
    return failAt(origin, `${path}.host`, `${showValue(host)} is not a DNS name without wildcard`);
  }
  const fqdn = resolveHost(host, origin.namespace, ctx.options.domain);
  let port = optPort(origin, `${path}.port`, dest.port);
  if (port === undefined) {
    const found = destinationPort(ctx, fqdn);
    port = found.port;
    if (found.source !== undefined) sources.push(found.source);
  }
  return outboundCluster(port, fqdn);
}

/** RedisService `settings` → `ConnPoolSettings` (opTimeout defaults to 60s). */
export function connPoolSettings(origin: Origin, settings: JsonRecord | undefined): JsonRecord {
  const s = settings ?? {};
  const path = (name: string): string => `spec.settings.${name}`;
  const out: JsonRecord = {
    opTimeout: optDuration(origin, path('opTimeout'), s.opTimeout)?.text ?? '60s',
  };
  if (optBoolean(origin, path('enableHashtagging'), s.enableHashtagging) === true)
    out.enableHashtagging = true;
  if (optBoolean(origin, path('enableRedirection'), s.enableRedirection) === true)
    out.enableRedirection = true;
  const maxBuffer = optInteger(
    origin,
    path('maxBufferSizeBeforeFlush'),
    s.maxBufferSizeBeforeFlush,
    UINT32_MAX,
  );
  if (maxBuffer !== undefined && maxBuffer > 0) out.maxBufferSizeBeforeFlush = maxBuffer;
  const flush = optDuration(origin, path('bufferFlushTimeout'), s.bufferFlushTimeout);
  if (flush !== undefined) out.bufferFlushTimeout = flush.text;
  const unknown = optInteger(
    origin,
    path('maxUpstreamUnknownConnections'),
    s.maxUpstreamUnknownConnections,
    UINT32_MAX,
  );
  if (unknown !== undefined) out.maxUpstreamUnknownConnections = unknown;
  if (optBoolean(origin, path('enableCommandStats'), s.enableCommandStats) === true)
    out.enableCommandStats = true;
  const policy = optString(origin, path('readPolicy'), s.readPolicy);
  if (policy !== undefined) {
    out.readPolicy =
      READ_POLICY[policy] ??
      failAt(
        origin,
        path('readPolicy'),
        `must be one of ${Object.keys(READ_POLICY).join(', ')}, got ${showValue(policy)}`,
      );
  }
  return out;
}

/**
 * RedisService `redis[]` → `PrefixRoutes`: routes with a `match.key` in declaration order, the
 * one without as the catch-all. No routes at all: everything to the service's own cluster.
 */
export function prefixRoutes(
  ctx: PortContext,
  origin: Origin,
  spec: JsonRecord,
  caseInsensitive: boolean,
  sources: SourceRef[],
): JsonRecord {
  const list = optList(origin, 'spec.redis', spec.redis);
  const out: JsonRecord = {};
  if (caseInsensitive) out.caseInsensitive = true;
  if (list.length === 0) {
    out.catchAllRoute = { cluster: outboundCluster(ctx.port.number, ctx.host) };
    return out;
  }
  const routes: JsonRecord[] = [];
  const prefixes = new Map<string, number>();
  let catchAll: { route: JsonRecord; index: number } | undefined;
  list.forEach((item, i) => {
    const path = `spec.redis[${i}]`;
    const r = optRecord(origin, path, item);
    if (r === undefined) return failAt(origin, path, 'must be a route object');
    const route: JsonRecord = {};
    const key = optRecord(origin, `${path}.match.key`, optRecord(origin, `${path}.match`, r.match)?.key);
    if (key !== undefined) {
      const prefix = optString(origin, `${path}.match.key.prefix`, key.prefix) ?? '';
      if (Buffer.byteLength(prefix, 'utf8') > MAX_PREFIX_BYTES) {
        failAt(
          origin,
          `${path}.match.key.prefix`,
          `is longer than Envoy's limit of ${MAX_PREFIX_BYTES} bytes`,
        );
      }
      // Envoy rejects the whole listener on a duplicate prefix; when case-insensitive it compares
      // them with ASCII letters lowercased.
      const seen = caseInsensitive ? prefix.replace(/[A-Z]+/g, (c) => c.toLowerCase()) : prefix;
      const first = prefixes.get(seen);
      if (first !== undefined) {
        failAt(
          origin,
          `${path}.match.key.prefix`,
          `${showValue(prefix)} is already used by spec.redis[${first}]`,
        );
      }
      prefixes.set(seen, i);
      route.prefix = prefix;
      if (optBoolean(origin, `${path}.match.key.removePrefix`, key.removePrefix) === true)
        route.removePrefix = true;
    } else if (catchAll !== undefined) {
      failAt(origin, path, `is a second catch-all route (no match.key) after spec.redis[${catchAll.index}]`);
    }
    route.cluster = destinationCluster(ctx, origin, `${path}.route`, r.route, sources);
    const mirrors = optList(origin, `${path}.mirror`, r.mirror).map((m, j) =>
      mirrorPolicy(ctx, origin, `${path}.mirror[${j}]`, m, sources),
    );
    if (mirrors.length > 0) route.requestMirrorPolicy = mirrors;
    if (key === undefined) catchAll = { route, index: i };
    else routes.push(route);
  });
  if (routes.length > 0) out.routes = routes;
  if (catchAll !== undefined) out.catchAllRoute = catchAll.route;
  return out;
}

/** A mirror: its own destination (Aeraki wrongly uses the route's port), share and read exclusion. */
function mirrorPolicy(
  ctx: PortContext,
  origin: Origin,
  path: string,
  value: unknown,
  sources: SourceRef[],
): JsonRecord {
  const m = optRecord(origin, path, value);
  if (m === undefined) return failAt(origin, path, 'must be a mirror object with route and percentage');
  const policy: JsonRecord = { cluster: destinationCluster(ctx, origin, `${path}.route`, m.route, sources) };
  // Without a percentage Envoy mirrors every command.
  const fraction = optPercent(origin, `${path}.percentage`, m.percentage);
  if (fraction !== undefined) policy.runtimeFraction = { defaultValue: fraction };
  if (optBoolean(origin, `${path}.excludeReadCommands`, m.excludeReadCommands) === true) {
    policy.excludeReadCommands = true;
  }
  return policy;
}

/** RedisService `faults[]` → `RedisFault`s. */
export function faults(origin: Origin, spec: JsonRecord): JsonRecord[] {
  return optList(origin, 'spec.faults', spec.faults).map((item, i) => {
    const path = `spec.faults[${i}]`;
    const f = optRecord(origin, path, item);
    if (f === undefined) return failAt(origin, path, 'must be a fault object');
    const type = optString(origin, `${path}.type`, f.type) ?? 'DELAY';
    const fault: JsonRecord = {
      faultType:
        FAULT_TYPE[type] ??
        failAt(origin, `${path}.type`, `must be one of DELAY, ERROR, got ${showValue(type)}`),
    };
    const enabled = optPercent(origin, `${path}.percentage`, f.percentage);
    if (enabled === undefined) {
      return failAt(
        origin,
        `${path}.percentage`,
        'is required: the share of commands to fault, e.g. {value: 10}',
      );
    }
    fault.faultEnabled = { defaultValue: enabled };
    const delay = optDuration(origin, `${path}.delay`, f.delay);
    if (delay !== undefined) fault.delay = delay.text;
    const commands = optList(origin, `${path}.commands`, f.commands).map((c, k) => {
      if (typeof c !== 'string' || c.trim() === '') {
        return failAt(origin, `${path}.commands[${k}]`, `must be a Redis command name, got ${showValue(c)}`);
      }
      return c.trim();
    });
    if (commands.length > 0) fault.commands = commands;
    return fault;
  });
}
