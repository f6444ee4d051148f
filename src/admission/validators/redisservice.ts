import { asArray, asRecord, type JsonRecord } from '../../model/json.js';
import { field, FindingsBuilder, type Findings } from '../findings.js';
import { show } from './render.js';
import {
  checkAuth,
  checkBoolean,
  describeType,
  checkDestination,
  checkDuration,
  checkEnum,
  checkHost,
  checkInteger,
  checkList,
  checkObject,
  checkPercentage,
  showScalar,
  EXAMPLE_REDIS_HOST,
  UINT32_MAX,
} from './redis-common.js';
import type { ValidationContext } from './types.js';
import { authModeFindings } from '../../protocols/redis/authmode.js';

export const READ_POLICIES = ['MASTER', 'PREFER_MASTER', 'REPLICA', 'PREFER_REPLICA', 'ANY'] as const;
export const FAULT_TYPES = ['DELAY', 'ERROR'] as const;
const EXAMPLE_ROUTE_HOST = 'redis-user.redis.svc.cluster.local';
const EXAMPLE_MIRROR_HOST = 'redis-shadow.redis.svc.cluster.local';

/**
 * RedisService (redis.aeraki.io/v1alpha1): the hosts it applies to, proxy settings, key-prefix
 * routes with mirrors, and faults.
 */
export function validateRedisService(object: JsonRecord, ctx: ValidationContext): Findings {
  const f = new FindingsBuilder();
  const spec = asRecord(object.spec);
  if (spec === undefined) {
    return f
      .deny(
        'spec',
        `must be an object with host and optional settings, redis and faults, got ${describeType(object.spec)}`,
      )
      .build();
  }
  checkHosts(spec, f, ctx);
  checkSettings(spec.settings, f);
  const caseInsensitive = asRecord(spec.settings)?.caseInsensitive === true;
  checkRoutes(spec.redis, caseInsensitive, f, ctx);
  checkFaults(spec.faults, f, ctx);
  // Which Redis auth mode applies and, in file mode, the pod annotations clients need.
  if (!f.denied) f.merge(authModeFindings('RedisService', object, ctx.namespace, ctx.redisAuthMode));
  return f.build();
}

function checkHosts(spec: JsonRecord, f: FindingsBuilder, ctx: ValidationContext): void {
  const raw = spec.host;
  if (raw === undefined || raw === null) {
    const misnamed = spec.hosts !== undefined ? ' (the field is host, not hosts)' : '';
    f.deny(
      'spec.host',
      `is required${misnamed}: list the hosts this applies to, e.g. ["${EXAMPLE_REDIS_HOST}"]`,
    );
    return;
  }
  const hosts = asArray(raw);
  if (hosts === undefined) {
    const hint = typeof raw === 'string' ? `; write the host in a list, e.g. ["${EXAMPLE_REDIS_HOST}"]` : '';
    f.deny('spec.host', `must be a list of host names, got ${describeType(raw)}${hint}`);
  } else if (hosts.length === 0) {
    f.deny('spec.host', `must list at least one host, e.g. ["${EXAMPLE_REDIS_HOST}"]`);
  } else {
    hosts.forEach((h, i) => {
      ctx.budget?.check();
      checkHost(f, field('spec', 'host', i), h);
    });
  }
}

function checkSettings(raw: unknown, f: FindingsBuilder): void {
  const s = checkObject(f, 'spec.settings', raw, 'proxy settings such as opTimeout and auth');
  if (s === undefined) return;
  const path = (name: string): string => field('spec', 'settings', name);
  for (const name of ['caseInsensitive', 'enableCommandStats', 'enableHashtagging', 'enableRedirection']) {
    checkBoolean(f, path(name), s[name]);
  }
  checkDuration(f, path('opTimeout'), s.opTimeout);
  checkInteger(f, path('maxBufferSizeBeforeFlush'), s.maxBufferSizeBeforeFlush, 0, UINT32_MAX);
  checkDuration(f, path('bufferFlushTimeout'), s.bufferFlushTimeout);
  checkInteger(f, path('maxUpstreamUnknownConnections'), s.maxUpstreamUnknownConnections, 0, UINT32_MAX);
  checkEnum(f, path('readPolicy'), s.readPolicy, READ_POLICIES);
  checkAuth(f, path('auth'), s.auth);
}

/** Envoy's limit on a key prefix (redis_proxy PrefixRoutes.Route.prefix max_bytes). */
export const MAX_PREFIX_BYTES = 1000;

function checkRoutes(
  raw: unknown,
  caseInsensitive: boolean,
  f: FindingsBuilder,
  ctx: ValidationContext,
): void {
  const routes = checkList(f, 'spec.redis', raw, 'routes') ?? [];
  const firstWithPrefix = new Map<string, number>();
  let firstCatchAll: number | undefined;
  routes.forEach((item, i) => {
    ctx.budget?.check();
    const path = field('spec', 'redis', i);
    const r = asRecord(item);
    if (r === undefined) {
      f.deny(path, `must be an object with route and optional match and mirror, got ${describeType(item)}`);
      return;
    }
    const prefix = checkMatch(r.match, path, f);
    if (prefix === null) {
      if (firstCatchAll === undefined) firstCatchAll = i;
      else {
        f.deny(
          path,
          `is a second catch-all route (no match.key) after spec.redis[${firstCatchAll}]; ` +
            'only one can take the unmatched keys: give this one a match.key.prefix or remove it',
        );
      }
    } else if (prefix !== undefined) {
      // Envoy refuses the whole listener on a duplicate prefix; case-insensitive, it compares
      // them with ASCII letters lowercased.
      const seen = caseInsensitive ? prefix.replace(/[A-Z]+/g, (c) => c.toLowerCase()) : prefix;
      const first = firstWithPrefix.get(seen);
      if (Buffer.byteLength(prefix, 'utf8') > MAX_PREFIX_BYTES) {
        f.deny(
          field(path, 'match', 'key', 'prefix'),
          `is ${Buffer.byteLength(prefix, 'utf8')} bytes long; Envoy accepts key prefixes of at most ${MAX_PREFIX_BYTES} bytes`,
        );
      } else if (first === undefined) firstWithPrefix.set(seen, i);
      else {
        f.deny(
          field(path, 'match', 'key', 'prefix'),
          `${show(prefix)} is already used by spec.redis[${first}]` +
            (caseInsensitive ? ' (caseInsensitive: letter case is ignored)' : '') +
            '; key prefixes must be unique: change it or merge the two routes',
        );
      }
    }
    checkDestination(f, field(path, 'route'), r.route, 'destination for these keys', EXAMPLE_ROUTE_HOST);
    checkMirrors(r.mirror, path, f, ctx);
  });
}

/**
 * Checks `match` and returns the key prefix it routes ('' when `key` has none), null for a
 * catch-all route (no match or no match.key), or undefined when the match is denied.
 */
function checkMatch(raw: unknown, routePath: string, f: FindingsBuilder): string | null | undefined {
  const matchPath = field(routePath, 'match');
  if (raw === undefined || raw === null) return null;
  const match = checkObject(f, matchPath, raw, 'key');
  if (match === undefined) return undefined;
  if (match.key === undefined || match.key === null) return null;
  const keyPath = field(matchPath, 'key');
  const key = checkObject(f, keyPath, match.key, 'prefix and optional removePrefix');
  if (key === undefined) return undefined;
  checkBoolean(f, field(keyPath, 'removePrefix'), key.removePrefix);
  const prefix = key.prefix ?? '';
  if (typeof prefix === 'string') return prefix;
  f.deny(field(keyPath, 'prefix'), `must be a string such as "user:", got ${showScalar(prefix)}`);
  return undefined;
}

function checkMirrors(raw: unknown, routePath: string, f: FindingsBuilder, ctx: ValidationContext): void {
  const mirrors = checkList(f, field(routePath, 'mirror'), raw, 'mirror policies') ?? [];
  mirrors.forEach((item, j) => {
    ctx.budget?.check();
    const path = field(routePath, 'mirror', j);
    const m = asRecord(item);
    if (m === undefined) {
      f.deny(path, `must be an object with route and percentage, got ${describeType(item)}`);
      return;
    }
    checkDestination(f, field(path, 'route'), m.route, 'mirror destination', EXAMPLE_MIRROR_HOST);
    checkPercentage(f, field(path, 'percentage'), m.percentage, 'commands to mirror');
    checkBoolean(f, field(path, 'excludeReadCommands'), m.excludeReadCommands);
  });
}

function checkFaults(raw: unknown, f: FindingsBuilder, ctx: ValidationContext): void {
  const faults = checkList(f, 'spec.faults', raw, 'faults') ?? [];
  faults.forEach((item, i) => {
    ctx.budget?.check();
    const path = field('spec', 'faults', i);
    const fault = asRecord(item);
    if (fault === undefined) {
      f.deny(path, `must be an object with type, percentage and delay, got ${describeType(item)}`);
      return;
    }
    const type = fault.type ?? null;
    checkEnum(f, field(path, 'type'), type, FAULT_TYPES);
    checkPercentage(f, field(path, 'percentage'), fault.percentage, 'commands to fault');
    const delay = fault.delay;
    if (delay === undefined || delay === null) {
      if (type === 'DELAY') {
        f.deny(
          field(path, 'delay'),
          'is required for a DELAY fault: how long to hold the commands, e.g. "0.5s"',
        );
      } else if (type === null) {
        f.deny(
          field(path, 'delay'),
          'is required: type defaults to DELAY, so set delay (e.g. "0.5s") or set type to ERROR',
        );
      }
    } else {
      checkDuration(f, field(path, 'delay'), delay);
    }
    const commands = checkList(f, field(path, 'commands'), fault.commands, 'Redis command names') ?? [];
    commands.forEach((c, k) => {
      if (k % 64 === 0) ctx.budget?.check();
      if (typeof c !== 'string' || c.trim() === '') {
        f.deny(
          field(path, 'commands', k),
          `must be a Redis command name such as "get", got ${showScalar(c)}`,
        );
      }
    });
  });
}
