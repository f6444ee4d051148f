import { asArray, asRecord, asString, isInteger, type JsonRecord } from '../../model/json.js';
import { objectRef } from '../../model/kinds.js';
import { resolveHost } from '../../model/names.js';
import type { Protocol } from '../../model/protocol.js';
import { field, FindingsBuilder, key, MAX_WARNING_LENGTH, show, type Findings } from '../findings.js';
import { re2Error } from '../../model/re2.js';
import type { ValidationContext } from './types.js';

const EXAMPLE_HOST = 'org.apache.dubbo.samples.basic.api.demoservice';

/** HTTPMatchRequest fields that Dubbo and Thrift routing never reads. */
const IGNORED_BY_DUBBO_AND_THRIFT = [
  'uri',
  'scheme',
  'authority',
  'queryParams',
  'ignoreUriCase',
  'withoutHeaders',
] as const;

/** Protocols Breeze never routes with VirtualService http routes, and what to do instead. */
const HTTP_ROUTES_UNUSED: Partial<Record<Protocol, string>> = {
  redis: 'use RedisService for Redis routing',
  kafka: 'remove them',
  zookeeper: 'remove them',
};

/** HTTPMatchRequest fields holding one StringMatch, and those holding a map of them. */
const STRING_MATCH_FIELDS = ['uri', 'scheme', 'method', 'authority'] as const;
const STRING_MATCH_MAPS = ['headers', 'queryParams', 'withoutHeaders'] as const;

interface PortProtocol {
  readonly number: number;
  readonly protocol: Protocol;
}

interface Scope {
  readonly ctx: ValidationContext;
  readonly f: FindingsBuilder;
  /** Protocol ports of the protocol services the VirtualService's hosts resolve to. */
  readonly ports: readonly PortProtocol[];
}

/**
 * VirtualService: basic shape for every object; the protocol rules (weights, RE2 regexes, match
 * fields the protocol ignores, unknown subsets) only when a host is a protocol service in the cache.
 */
export function validateVirtualService(object: JsonRecord, ctx: ValidationContext): Findings {
  const f = new FindingsBuilder();
  const spec = asRecord(object.spec);
  if (spec === undefined) {
    return f
      .deny('spec', `must be an object with hosts and routes (http, tcp or tls), got ${got(object.spec)}`)
      .build();
  }
  const hosts = asArray(spec.hosts);
  if (spec.hosts !== undefined && hosts === undefined) {
    return f
      .deny('spec.hosts', `must be a list of hosts (e.g. ["${EXAMPLE_HOST}"]), got ${show(spec.hosts)}`)
      .build();
  }
  if (hosts === undefined || hosts.length === 0) {
    // Without hosts this is a delegate VirtualService (Istio allows those). Breeze routes a protocol
    // service only by the VirtualService naming it in hosts, so a delegate sending to one is a mistake.
    const target = protocolDestination(spec, ctx);
    if (target === undefined) return f.build();
    return f
      .deny(
        'spec.hosts',
        `must list at least one host: this VirtualService routes to the ${target} service, ` +
          `whose routes Breeze reads only from a VirtualService naming it in hosts (e.g. ["${EXAMPLE_HOST}"])`,
      )
      .build();
  }

  const ports: PortProtocol[] = [];
  const unrouted: { host: string; protocol: Protocol }[] = [];
  hosts.forEach((h, i) => {
    if (typeof h !== 'string' || h === '') {
      f.deny(field('spec', 'hosts', i), `must be a host name string (e.g. ${EXAMPLE_HOST}), got ${show(h)}`);
      return;
    }
    const fqdn = resolveHost(h, ctx.namespace, ctx.view.domain);
    const services = ctx.view.protocolServices(fqdn);
    if (services.length > 0) warnOtherClaims(object, fqdn, field('spec', 'hosts', i), ctx, f);
    for (const s of services) {
      for (const p of s.ports) {
        if (p.protocol === undefined) continue;
        ports.push({ number: p.number, protocol: p.protocol });
        if (HTTP_ROUTES_UNUSED[p.protocol] !== undefined) unrouted.push({ host: h, protocol: p.protocol });
      }
    }
  });
  // None of the hosts is a protocol service: Istio validates it, Breeze has nothing to add.
  if (ports.length === 0) return f.build();

  const scope: Scope = { ctx, f, ports };
  const http = routeList(spec, 'http', f);
  if (http.length > 0) {
    for (const u of unrouted) warnHttpUnused(u.host, u.protocol, ctx.view.domain, f);
  }
  http.forEach((raw, i) => {
    checkHttpRoute(raw, field('spec', 'http', i), scope);
  });
  for (const kind of ['tcp', 'tls'] as const) {
    routeList(spec, kind, f).forEach((raw, i) => {
      const path = field('spec', kind, i);
      const r = asRecord(raw);
      if (r === undefined) {
        f.deny(path, `must be an object with match and route, got ${show(raw)}`);
        return;
      }
      checkDestinations(r.route, field(path, 'route'), true, scope);
    });
  }
  return f.build();
}

/** The first route destination (http, tcp or tls) that is a protocol service in the cache. */
function protocolDestination(spec: JsonRecord, ctx: ValidationContext): string | undefined {
  for (const kind of ['http', 'tcp', 'tls'] as const) {
    for (const route of asArray(spec[kind]) ?? []) {
      for (const d of asArray(asRecord(route)?.route) ?? []) {
        const host = asRecord(asRecord(d)?.destination)?.host;
        if (typeof host !== 'string' || host === '') continue;
        const fqdn = resolveHost(host, ctx.namespace, ctx.view.domain);
        const protocol = ctx.view
          .protocolServices(fqdn)[0]
          ?.ports.find((p) => p.protocol !== undefined)?.protocol;
        if (protocol !== undefined) return `${protocol} ${fqdn}`;
      }
    }
  }
  return undefined;
}

/**
 * Several VirtualServices claiming one protocol host: Breeze uses the oldest (creationTimestamp,
 * then namespace/name) and this one is told which, since only one can define the routes.
 */
function warnOtherClaims(
  object: JsonRecord,
  fqdn: string,
  path: string,
  ctx: ValidationContext,
  f: FindingsBuilder,
): void {
  const self = objectRef(object, ctx.namespace);
  const others = ctx.view
    .forHost('VirtualService', fqdn)
    .filter((e) => !(e.namespace === ctx.namespace && e.name === self.name));
  const first = others[0];
  if (first === undefined) return;
  const selfCreated = asString(asRecord(object.metadata)?.creationTimestamp);
  const firstCreated = asString(asRecord(first.object.metadata)?.creationTimestamp);
  const selfWins =
    selfCreated !== undefined &&
    (firstCreated === undefined ||
      selfCreated < firstCreated ||
      (selfCreated === firstCreated && `${ctx.namespace}/${self.name}` < `${first.namespace}/${first.name}`));
  const other = `VirtualService ${first.namespace}/${first.name}`;
  f.warn(
    path,
    `also routed by ${other}; Breeze uses ${selfWins ? 'this one' : 'that one'} (the oldest wins)`,
  );
}

/** A value for a message: its JSON, or `none` when the field is missing. */
function got(value: unknown): string {
  return value === undefined ? 'none' : show(value);
}

/** `spec.http`, `spec.tcp` or `spec.tls` as a list; a non-list is denied and reads as empty. */
function routeList(spec: JsonRecord, kind: 'http' | 'tcp' | 'tls', f: FindingsBuilder): readonly unknown[] {
  const raw = spec[kind];
  if (raw === undefined) return [];
  const list = asArray(raw);
  if (list === undefined) {
    f.deny(field('spec', kind), `must be a list of ${kind} routes, got ${show(raw)}`);
    return [];
  }
  return list;
}

function warnHttpUnused(host: string, protocol: Protocol, domain: string, f: FindingsBuilder): void {
  const fix = HTTP_ROUTES_UNUSED[protocol] ?? '';
  const render = (h: string): string => `${protocol} service ${h} ignores VirtualService http routes; ${fix}`;
  const room = MAX_WARNING_LENGTH - 'spec.http: '.length - render('').length;
  // Too long: drop the cluster suffix (`redis.redis.svc.cluster.local` → `redis.redis`), then cut.
  let shown = host;
  const suffix = `.svc.${domain}`;
  if (shown.length > room && shown.toLowerCase().endsWith(suffix)) shown = shown.slice(0, -suffix.length);
  if (shown.length > room) shown = `${shown.slice(0, Math.max(room - 3, 1))}...`;
  f.warn('spec.http', render(shown));
}

function checkHttpRoute(raw: unknown, path: string, scope: Scope): void {
  const { f } = scope;
  const r = asRecord(raw);
  if (r === undefined) {
    f.deny(path, `must be an object with match and route, got ${show(raw)}`);
    return;
  }
  if (r.match !== undefined) {
    const matches = asArray(r.match);
    if (matches === undefined) {
      f.deny(field(path, 'match'), `must be a list of match conditions, got ${show(r.match)}`);
    } else {
      matches.forEach((m, j) => {
        checkHttpMatch(m, field(path, 'match', j), scope);
      });
    }
  }
  // An http route may redirect, answer directly or delegate instead of routing.
  checkDestinations(r.route, field(path, 'route'), false, scope);
}

function checkHttpMatch(raw: unknown, path: string, scope: Scope): void {
  const { f } = scope;
  const m = asRecord(raw);
  if (m === undefined) {
    f.deny(
      path,
      `must be an object of match conditions (e.g. {"method": {"exact": "sayHello"}}), got ${show(raw)}`,
    );
    return;
  }
  for (const name of STRING_MATCH_FIELDS) {
    if (m[name] !== undefined) checkStringMatch(m[name], field(path, name), f);
  }
  for (const name of STRING_MATCH_MAPS) {
    const value = m[name];
    if (value === undefined) continue;
    const map = asRecord(value);
    if (map === undefined) {
      f.deny(field(path, name), `must be a map of names to string matches, got ${show(value)}`);
      continue;
    }
    for (const [k, v] of Object.entries(map)) checkStringMatch(v, key(field(path, name), k), f);
  }

  const protocols = new Set(
    scope.ports.filter((p) => !isInteger(m.port) || p.number === m.port).map((p) => p.protocol),
  );
  const rpc = (['dubbo', 'thrift'] as const).filter((p) => protocols.has(p));
  if (rpc.length === 0) return;
  const alternative = protocols.has('thrift') ? 'method' : 'method or headers';
  for (const name of IGNORED_BY_DUBBO_AND_THRIFT) {
    if (m[name] !== undefined) {
      f.warn(field(path, name), `${rpc.join('/')} routes ignore ${name}; match on ${alternative} instead`);
    }
  }
  if (m.headers !== undefined && protocols.has('thrift')) {
    f.warn(
      field(path, 'headers'),
      'thrift routing uses only the method name and ignores headers; match on method instead',
    );
  }
}

/** A StringMatch (`{exact|prefix|regex: string}`); a regex must be RE2, which is what Envoy runs. */
function checkStringMatch(raw: unknown, path: string, f: FindingsBuilder): void {
  const m = asRecord(raw);
  if (m === undefined) {
    f.deny(path, `must be a string match such as {"exact": "sayHello"}, got ${show(raw)}`);
    return;
  }
  if (m.regex === undefined) return;
  if (typeof m.regex !== 'string') {
    f.deny(field(path, 'regex'), `must be a string holding an RE2 pattern, got ${show(m.regex)}`);
    return;
  }
  const reason = re2Error(m.regex);
  if (reason !== undefined) {
    f.deny(
      field(path, 'regex'),
      `${show(m.regex)} is not valid RE2 (${reason}); Envoy matches with RE2, which has no lookaround or backreferences: rewrite the pattern in RE2 syntax`,
    );
  }
}

/** The destinations of one route: shapes, weights 0-100 that total 100 when there are several, subsets. */
function checkDestinations(raw: unknown, path: string, required: boolean, scope: Scope): void {
  const { f } = scope;
  const example = `e.g. [{"destination": {"host": "${EXAMPLE_HOST}"}}]`;
  if (raw === undefined) {
    if (required) f.deny(path, `must list at least one destination (${example})`);
    return;
  }
  const list = asArray(raw);
  if (list === undefined || (required && list.length === 0)) {
    f.deny(path, `must be a list of at least one destination (${example}), got ${show(raw)}`);
    return;
  }
  let sum = 0;
  let sumKnown = true;
  let unset = false;
  for (const [i, d] of list.entries()) {
    const dp = field(path, i);
    const rd = asRecord(d);
    if (rd === undefined) {
      f.deny(dp, `must be an object with destination and weight, got ${show(d)}`);
      sumKnown = false;
      continue;
    }
    checkDestination(rd.destination, field(dp, 'destination'), scope);
    if (rd.weight === undefined) {
      unset = true;
    } else if (!isInteger(rd.weight) || rd.weight < 0 || rd.weight > 100) {
      f.deny(field(dp, 'weight'), `must be an integer from 0 to 100 (a percentage), got ${show(rd.weight)}`);
      sumKnown = false;
    } else {
      sum += rd.weight;
    }
  }
  if (list.length > 1 && sumKnown && sum !== 100) {
    f.deny(
      path,
      `the weights of its ${list.length} destinations sum to ${sum}; set them so they total 100` +
        (unset ? ' (a missing weight counts as 0)' : ''),
    );
  }
}

function checkDestination(raw: unknown, path: string, scope: Scope): void {
  const { f, ctx } = scope;
  const d = asRecord(raw);
  if (d === undefined) {
    f.deny(path, `must be an object with a host (e.g. {"host": "${EXAMPLE_HOST}"}), got ${got(raw)}`);
    return;
  }
  const host = d.host;
  const hostOk = typeof host === 'string' && host !== '';
  if (!hostOk) {
    f.deny(field(path, 'host'), `must name the service to route to (e.g. ${EXAMPLE_HOST}), got ${got(host)}`);
  }
  const subset = d.subset;
  if (subset === undefined) return;
  const subsetPath = field(path, 'subset');
  if (typeof subset !== 'string' || subset === '') {
    f.deny(subsetPath, `must be the name of a DestinationRule subset (e.g. v1), got ${show(subset)}`);
    return;
  }
  if (!hostOk) return;
  const known = ctx.view.destinationRuleSubsets(resolveHost(host, ctx.namespace, ctx.view.domain));
  if (known === undefined) {
    f.warn(
      subsetPath,
      `${show(subset)} is unknown: no DestinationRule for this host yet; apply one defining it`,
    );
  } else if (!known.has(subset)) {
    f.warn(subsetPath, `${show(subset)} is not in this host's DestinationRule yet; add it to its subsets`);
  }
}
