import { compareEntries, type Entry } from '../../cache/store.js';
import { asArray, asRecord, isInteger, type JsonRecord } from '../../model/json.js';
import { objectRef } from '../../model/kinds.js';
import { resolveHost } from '../../model/names.js';
import type { Protocol } from '../../model/protocol.js';
import { field, FindingsBuilder, MAX_WARNING_LENGTH, type Findings } from '../findings.js';
import { regexProblem } from '../../model/re2.js';
import { key, show } from './render.js';
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
    ctx.budget?.check();
    if (typeof h !== 'string' || h === '') {
      f.deny(field('spec', 'hosts', i), `must be a host name string (e.g. ${EXAMPLE_HOST}), got ${show(h)}`);
      return;
    }
    const fqdn = resolveHost(h, ctx.namespace, ctx.view.domain);
    const services = ctx.view.protocolServices(fqdn);
    if (services.length > 0) warnOtherClaims(object, fqdn, field('spec', 'hosts', i), ctx, f);
    for (const s of services) {
      for (const p of s.ports) {
        ctx.budget?.check();
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
    ctx.budget?.check();
    checkHttpRoute(raw, field('spec', 'http', i), scope);
  });
  for (const kind of ['tcp', 'tls'] as const) {
    routeList(spec, kind, f).forEach((raw, i) => {
      ctx.budget?.check();
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
        ctx.budget?.check();
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
 * Several VirtualServices claiming one protocol host: only one can define the routes, and Breeze
 * uses the first in the order its generator uses (compareEntries: oldest creationTimestamp, an
 * undated object after every dated one, then namespace/name). The object being admitted is placed
 * in that order as it will be stored: with its own creationTimestamp, or none when it has none
 * yet (a new object). The warning names the one Breeze uses, so two VirtualServices are never
 * both told that they are the one.
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
  const selfEntry = { namespace: ctx.namespace, name: self.name, object } as Entry;
  let chosen: Entry = selfEntry;
  for (const e of others) if (compareEntries(e, chosen) < 0) chosen = e;
  const named = (e: Entry): string => `VirtualService ${e.namespace}/${e.name}`;
  const also = others.length === 1 ? named(first) : `${others.length} other VirtualServices`;
  const uses =
    chosen === selfEntry ? 'this one' : chosen === first && others.length === 1 ? 'that one' : named(chosen);
  const created = (e: Entry): unknown => asRecord(e.object.metadata)?.creationTimestamp;
  const tie = [selfEntry, ...others].some((e) => e !== chosen && created(e) === created(chosen));
  f.warn(
    path,
    `also routed by ${also}; Breeze uses ${uses} (${tie ? 'same age: first by name' : 'the oldest wins'})`,
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

/** Protocols routed by VirtualService http routes: each route becomes a protocol route. */
type Rpc = 'dubbo' | 'thrift';

/** The Dubbo/Thrift protocols of the ports a match entry (or a route without matches) applies to. */
function rpcFor(port: unknown, scope: Scope): Set<Rpc> {
  const out = new Set<Rpc>();
  for (const p of scope.ports) {
    if ((p.protocol === 'dubbo' || p.protocol === 'thrift') && (!isInteger(port) || p.number === port)) {
      out.add(p.protocol);
    }
  }
  return out;
}

function checkHttpRoute(raw: unknown, path: string, scope: Scope): void {
  const { f, ctx } = scope;
  const r = asRecord(raw);
  if (r === undefined) {
    f.deny(path, `must be an object with match and route, got ${show(raw)}`);
    return;
  }
  // The Dubbo/Thrift ports this route applies to: a route without match entries applies to every
  // port, else to the ports its entries name (an entry without port: every port).
  const rpc = new Set<Rpc>();
  const matches = r.match === undefined || r.match === null ? [] : asArray(r.match);
  if (matches === undefined) {
    f.deny(field(path, 'match'), `must be a list of match conditions, got ${show(r.match)}`);
  } else {
    if (matches.length === 0) for (const p of rpcFor(undefined, scope)) rpc.add(p);
    matches.forEach((m, j) => {
      if (j % 16 === 0) ctx.budget?.check();
      for (const p of checkHttpMatch(m, field(path, 'match', j), scope)) rpc.add(p);
    });
  }
  // An http route may redirect, answer directly or delegate instead of routing, but a Dubbo or
  // Thrift route can only forward to destinations.
  const destinations = r.route === undefined || r.route === null ? [] : asArray(r.route);
  if (rpc.size > 0 && destinations !== undefined && destinations.length === 0) {
    const instead = (['redirect', 'directResponse', 'delegate'] as const).filter((k) => r[k] !== undefined);
    f.deny(
      field(path, 'route'),
      `must list at least one destination: ${[...rpc].sort().join('/')} routes only forward` +
        (instead.length > 0 ? ` (${instead.join(' and ')} cannot be expressed)` : '') +
        `; route to a service (e.g. [{"destination": {"host": "${EXAMPLE_HOST}"}}]) or give this route a match.port of another port`,
    );
    return;
  }
  checkDestinations(r.route ?? undefined, field(path, 'route'), false, scope);
}

/** Checks one match entry; returns the Dubbo/Thrift protocols of the ports it applies to. */
function checkHttpMatch(raw: unknown, path: string, scope: Scope): Set<Rpc> {
  const { f } = scope;
  const m = asRecord(raw);
  if (m === undefined) {
    f.deny(
      path,
      `must be an object of match conditions (e.g. {"method": {"exact": "sayHello"}}), got ${show(raw)}`,
    );
    return new Set();
  }
  if (m.port !== undefined && m.port !== null && (!isInteger(m.port) || m.port < 1 || m.port > 65535)) {
    f.deny(field(path, 'port'), `must be a port number from 1 to 65535, got ${show(m.port)}`);
  }
  const protocols = rpcFor(m.port, scope);
  const methods = new Map<string, StringMatchKind>();
  for (const name of STRING_MATCH_FIELDS) {
    if (m[name] === undefined || m[name] === null) continue;
    const kind = checkStringMatch(m[name], field(path, name), scope);
    if (kind !== undefined) methods.set(name, kind);
  }
  for (const name of STRING_MATCH_MAPS) {
    const value = m[name];
    if (value === undefined || value === null) continue;
    const map = asRecord(value);
    if (map === undefined) {
      f.deny(field(path, name), `must be a map of names to string matches, got ${show(value)}`);
      continue;
    }
    for (const [i, [k, v]] of Object.entries(map).entries()) {
      if (i % 64 === 0) scope.ctx.budget?.check();
      const at = key(field(path, name), k);
      if (name === 'headers' && protocols.has('dubbo') && (k === '' || /[\0\r\n]/.test(k))) {
        f.deny(at, 'is not a valid header name (empty, or holding NUL, CR or LF); Envoy refuses it');
      }
      checkStringMatch(v, at, scope);
    }
  }

  const rpc = [...protocols].sort();
  if (rpc.length === 0) return protocols;
  if (protocols.has('thrift')) checkThriftMethod(m.method, methods.get('method'), field(path, 'method'), f);
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
  return protocols;
}

/**
 * A Thrift route matches one exact method name ("" matches every method): a prefix or regex, or
 * an empty exact name, cannot be expressed.
 */
function checkThriftMethod(
  raw: unknown,
  kind: StringMatchKind | undefined,
  path: string,
  f: FindingsBuilder,
): void {
  const m = asRecord(raw);
  if (m === undefined || kind === undefined) return;
  const value = m[kind];
  if (kind === 'exact' && value === '') {
    f.deny(
      field(path, 'exact'),
      'an empty method name cannot be expressed in a Thrift route (it would match every method); remove the method match to match all methods',
    );
  } else if (kind === 'regex' || (kind === 'prefix' && value !== '')) {
    f.deny(
      field(path, kind),
      `${show(value)}: a Thrift route matches only an exact method name; list the methods as exact matches, one match entry each`,
    );
  }
}

const STRING_MATCH_KINDS = ['exact', 'prefix', 'regex'] as const;
type StringMatchKind = (typeof STRING_MATCH_KINDS)[number];

/**
 * A StringMatch: exactly one of `exact`, `prefix` or `regex`, a string (`{}` matches anything); a
 * regex must be RE2, which is what Envoy runs, and not empty. Returns the kind set, if valid.
 */
function checkStringMatch(raw: unknown, path: string, scope: Scope): StringMatchKind | undefined {
  const { f } = scope;
  const m = asRecord(raw);
  if (m === undefined) {
    f.deny(path, `must be a string match such as {"exact": "sayHello"}, got ${show(raw)}`);
    return undefined;
  }
  const unknown = Object.keys(m).find((k) => !(STRING_MATCH_KINDS as readonly string[]).includes(k));
  if (unknown !== undefined) {
    f.deny(path, `has unknown field ${show(unknown)}; a string match takes one of exact, prefix or regex`);
    return undefined;
  }
  const kinds = STRING_MATCH_KINDS.filter((k) => m[k] !== undefined && m[k] !== null);
  if (kinds.length > 1) {
    f.deny(path, `sets ${kinds.join(' and ')}; a string match takes exactly one of exact, prefix or regex`);
    return undefined;
  }
  const kind = kinds[0];
  if (kind === undefined) return undefined;
  const value = m[kind];
  if (typeof value !== 'string') {
    f.deny(
      field(path, kind),
      kind === 'regex'
        ? `must be a string holding an RE2 pattern, got ${show(value)}`
        : `must be a string, got ${show(value)}`,
    );
    return undefined;
  }
  if (kind !== 'regex') return kind;
  if (value === '') {
    f.deny(field(path, 'regex'), 'must not be empty; remove the match to match everything');
    return undefined;
  }
  const problem = regexProblem(value);
  scope.ctx.budget?.check();
  if (problem === undefined) return kind;
  f.deny(
    field(path, 'regex'),
    problem.tooLarge
      ? `${show(value)} ${problem.reason}`
      : `${show(value)} is not valid RE2 (${problem.reason}); Envoy matches with RE2, which has no lookaround or backreferences: rewrite the pattern in RE2 syntax`,
  );
  return undefined;
}

/** Largest weight Istio's CRD stores (int32). */
const MAX_ISTIO_WEIGHT = 2_147_483_647;
/** Largest sum of weights Envoy accepts in one weighted route (uint32). */
const MAX_ENVOY_TOTAL_WEIGHT = 4_294_967_295;

/**
 * The destinations of one route: shapes, subsets, and weights as Istio checks them (integers,
 * not negative; several destinations must not total 0). Istio and Envoy use weights relative to
 * their sum, so a total other than 100 is only a warning naming it.
 */
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
    if (i % 16 === 0) scope.ctx.budget?.check();
    const dp = field(path, i);
    const rd = asRecord(d);
    if (rd === undefined) {
      f.deny(dp, `must be an object with destination and weight, got ${show(d)}`);
      sumKnown = false;
      continue;
    }
    checkDestination(rd.destination, field(dp, 'destination'), scope);
    if (rd.weight === undefined || rd.weight === null) {
      unset = true;
    } else if (!isInteger(rd.weight) || rd.weight < 0 || rd.weight > MAX_ISTIO_WEIGHT) {
      f.deny(
        field(dp, 'weight'),
        `must be a non-negative integer (a weight relative to the route's other destinations), got ${show(rd.weight)}`,
      );
      sumKnown = false;
    } else {
      sum += rd.weight;
    }
  }
  if (list.length < 2 || !sumKnown) return;
  const missing = unset ? ' (a missing weight counts as 0)' : '';
  if (sum === 0) {
    f.deny(
      path,
      `the weights of its ${list.length} destinations total 0, so no destination gets traffic${missing}; give at least one a positive weight`,
    );
  } else if (sum > MAX_ENVOY_TOTAL_WEIGHT) {
    f.deny(
      path,
      `the weights of its ${list.length} destinations total ${sum}, more than Envoy accepts (${MAX_ENVOY_TOTAL_WEIGHT}); scale them down`,
    );
  } else if (sum !== 100) {
    const note = unset ? ' (a missing weight is 0)' : '';
    f.warn(path, `weights total ${sum}, not 100${note}; each destination gets weight/${sum} of traffic`);
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
  if (d.port !== undefined && d.port !== null) {
    const port = asRecord(d.port);
    const number = port?.number;
    if (
      port === undefined ||
      (number !== undefined && (!isInteger(number) || number < 1 || number > 65535))
    ) {
      f.deny(
        field(path, 'port'),
        `must be {"number": <1-65535>} (or omitted for the service's port), got ${show(d.port)}`,
      );
    }
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
