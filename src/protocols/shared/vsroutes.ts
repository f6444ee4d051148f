// VirtualService `http[]` routes as Dubbo and Thrift read them: one route per match entry (in
// order, first match wins), each with its destination turned into Istio cluster names. The
// protocol generators only translate the match conditions into their own route match.
import { regexProblem } from '../../model/re2.js';
import { quote } from '../../model/limits.js';
import { BreezeError } from '../../errors.js';
import { asArray, asRecord, isInteger, type JsonRecord } from '../../model/json.js';
import { resolveHost } from '../../model/names.js';
import type { PortContext, SourceRef } from '../types.js';
import { outboundCluster, sourceOf } from './envoyfilter.js';

/** Largest weight a `google.protobuf.UInt32Value` holds. */
const MAX_WEIGHT = 0xffff_ffff;

/** One upstream of a weighted route. */
export interface ClusterWeight {
  readonly name: string;
  readonly weight: number;
}

/** Where a route sends requests: one cluster, or several by relative weight. */
export type RouteTarget =
  { readonly cluster: string } | { readonly weightedClusters: readonly ClusterWeight[] };

/** One Dubbo/Thrift route read from a VirtualService. */
export interface VsRoute {
  /** The match entry (an Istio HTTPMatchRequest); undefined when the route has no match (matches all). */
  readonly match: JsonRecord | undefined;
  readonly target: RouteTarget;
  /**
   * Where this route comes from, for messages: `VirtualService ns/name spec.http[0].match[1]`,
   * then `field` (e.g. `.method`), then the route's name when it has one.
   */
  readonly where: (field?: string) => string;
}

/** The routes of a port and the objects they were read from. */
export interface VsRouting {
  /** In VirtualService order; empty when no VirtualService route applies to this port (use a catch-all). */
  readonly routes: readonly VsRoute[];
  /** The VirtualService, and the DestinationRule when a route names a subset of the service. */
  readonly sources: readonly SourceRef[];
}

/** A per-service configuration problem: reported against the service, never thrown further. */
export function generationError(message: string): BreezeError {
  return new BreezeError('GENERATION', message);
}

/** The route action (`{cluster}` or `{weightedClusters: {clusters}}`), the same JSON for Dubbo and Thrift. */
export function routeAction(target: RouteTarget): JsonRecord {
  if ('cluster' in target) return { cluster: target.cluster };
  // No totalWeight: Dubbo's route.v3.WeightedCluster.total_weight is deprecated (Envoy sums the
  // weights), and Thrift's own WeightedCluster has no such field.
  return {
    weightedClusters: { clusters: target.weightedClusters.map((c) => ({ name: c.name, weight: c.weight })) },
  };
}

/** The catch-all target: the service's own cluster, `outbound|<port>||<host>`. */
export function defaultTarget(ctx: PortContext): RouteTarget {
  return { cluster: outboundCluster(ctx.port.number, ctx.host) };
}

/** A short rendering of a value for a message: strings quoted (bounded), others by their type. */
function show(value: unknown): string {
  if (typeof value === 'string') return quote(value, 60);
  if (Array.isArray(value)) return 'a list';
  if (value !== null && typeof value === 'object') return 'an object';
  return String(value);
}

/**
 * Reads `ctx.virtualService` into routes for this port. Every `match[]` entry becomes a route of
 * its own with the route's destination (Aeraki used only `match[0]`); entries whose `port` names
 * another port of the service are skipped, and so is a route all of whose entries are. A
 * malformed VirtualService is a GENERATION error naming the field.
 */
export function readVsRoutes(ctx: PortContext): VsRouting {
  const vs = ctx.virtualService;
  if (vs === undefined) return { routes: [], sources: [] };
  const ref = sourceOf(vs);
  const label = `VirtualService ${ref.namespace}/${ref.name}`;
  const spec = asRecord(vs.spec) ?? {};
  if (spec.http === undefined) return { routes: [], sources: [ref] };
  const http = asArray(spec.http);
  if (http === undefined)
    throw generationError(`${label} spec.http: must be a list of routes, got ${show(spec.http)}`);

  const routes: VsRoute[] = [];
  let usesSubset = false;
  for (const [i, raw] of http.entries()) {
    const path = `spec.http[${i}]`;
    const r = asRecord(raw);
    if (r === undefined)
      throw generationError(`${label} ${path}: must be an object with match and route, got ${show(raw)}`);
    const name = typeof r.name === 'string' && r.name !== '' ? ` (route ${quote(r.name, 60)})` : '';
    const at =
      (sub: string) =>
      (field = '') =>
        `${label} ${path}${sub}${field}${name}`;

    const matches = matchesForPort(r.match, ctx.port.number, at(''));
    if (matches.length === 0) continue;
    const target = targetOf(r.route, ctx, ref.namespace, at('.route'));
    if (target.usesSubset) usesSubset = true;
    for (const m of matches) {
      routes.push({
        match: m.match,
        target: target.target,
        where: at(m.index === undefined ? '' : `.match[${m.index}]`),
      });
    }
  }
  const sources: SourceRef[] = [ref];
  if (usesSubset && ctx.destinationRule !== undefined) sources.push(sourceOf(ctx.destinationRule));
  return { routes, sources };
}

/**
 * The match entries of one http route that apply to `port`: `[{match: undefined}]` for a route
 * without match conditions (or an empty list), none when every entry is for another port.
 */
function matchesForPort(
  raw: unknown,
  port: number,
  at: (field?: string) => string,
): { match: JsonRecord | undefined; index: number | undefined }[] {
  if (raw === undefined || raw === null) return [{ match: undefined, index: undefined }];
  const list = asArray(raw);
  if (list === undefined)
    throw generationError(`${at('.match')}: must be a list of match conditions, got ${show(raw)}`);
  if (list.length === 0) return [{ match: undefined, index: undefined }];
  const out: { match: JsonRecord | undefined; index: number | undefined }[] = [];
  list.forEach((entry, j) => {
    const m = asRecord(entry);
    if (m === undefined) {
      throw generationError(
        `${at(`.match[${j}]`)}: must be an object of match conditions, got ${show(entry)}`,
      );
    }
    if (m.port !== undefined && !isInteger(m.port)) {
      throw generationError(`${at(`.match[${j}].port`)}: must be a port number, got ${show(m.port)}`);
    }
    if (m.port === undefined || m.port === port) out.push({ match: m, index: j });
  });
  return out;
}

/** The destinations of one http route as cluster names (single, or weighted). */
function targetOf(
  raw: unknown,
  ctx: PortContext,
  vsNamespace: string,
  at: (field?: string) => string,
): { target: RouteTarget; usesSubset: boolean } {
  const list = asArray(raw);
  if (list === undefined || list.length === 0) {
    throw generationError(
      `${at()}: must list at least one destination; ${ctx.protocol} routes only forward ` +
        '(redirect, directResponse and delegate cannot be expressed)',
    );
  }
  let usesSubset = false;
  const weights: ClusterWeight[] = [];
  list.forEach((entry, k) => {
    const d = asRecord(entry);
    if (d === undefined)
      throw generationError(`${at(`[${k}]`)}: must be an object with a destination, got ${show(entry)}`);
    const dest = asRecord(d.destination);
    if (dest === undefined) {
      throw generationError(
        `${at(`[${k}].destination`)}: must be an object with a host, got ${show(d.destination)}`,
      );
    }
    if (typeof dest.host !== 'string' || dest.host === '') {
      throw generationError(
        `${at(`[${k}].destination.host`)}: must name the service to route to, got ${show(dest.host)}`,
      );
    }
    const host = resolveHost(dest.host, vsNamespace, ctx.options.domain);
    if (dest.subset !== undefined && typeof dest.subset !== 'string') {
      throw generationError(
        `${at(`[${k}].destination.subset`)}: must be a subset name, got ${show(dest.subset)}`,
      );
    }
    const subset = dest.subset ?? '';
    if (subset !== '' && host === ctx.host) usesSubset = true;
    const port = destinationPort(dest.port, ctx.port.number, at(`[${k}].destination.port`));
    let weight: number;
    if (d.weight === undefined) {
      // Istio: a lone destination takes all traffic; among several a missing weight is 0.
      weight = list.length === 1 ? 100 : 0;
    } else if (isInteger(d.weight) && d.weight >= 0 && d.weight <= MAX_WEIGHT) {
      weight = d.weight;
    } else {
      throw generationError(`${at(`[${k}].weight`)}: must be a non-negative integer, got ${show(d.weight)}`);
    }
    weights.push({ name: outboundCluster(port, host, subset), weight });
  });

  const first = weights[0];
  if (weights.length === 1 && first !== undefined) return { target: { cluster: first.name }, usesSubset };
  // Several destinations: zero weights get no traffic (Envoy's weights must be positive), and
  // destinations naming the same cluster add up, in first-seen order.
  const merged = new Map<string, number>();
  for (const w of weights) if (w.weight > 0) merged.set(w.name, (merged.get(w.name) ?? 0) + w.weight);
  const clusters = [...merged].map(([name, weight]) => ({ name, weight: Math.min(weight, MAX_WEIGHT) }));
  const only = clusters[0];
  if (only === undefined) {
    throw generationError(
      `${at()}: all ${weights.length} destinations have weight 0; give at least one a positive weight`,
    );
  }
  if (clusters.length === 1) return { target: { cluster: only.name }, usesSubset };
  const total = clusters.reduce((n, c) => n + c.weight, 0);
  if (total > MAX_WEIGHT) {
    throw generationError(`${at()}: the weights total ${total}, more than Envoy accepts (${MAX_WEIGHT})`);
  }
  return { target: { weightedClusters: clusters }, usesSubset };
}

function destinationPort(raw: unknown, fallback: number, where: string): number {
  if (raw === undefined || raw === null) return fallback;
  const number = asRecord(raw)?.number;
  if (number === undefined) return fallback;
  if (!isInteger(number) || number < 1 || number > 65535) {
    throw generationError(`${where}: must be {number: <1-65535>}, got ${show(raw)}`);
  }
  return number;
}

/** An Istio StringMatch read for translation. */
export interface StringMatch {
  readonly kind: 'exact' | 'prefix' | 'regex';
  readonly value: string;
}

const STRING_MATCH_KINDS = ['exact', 'prefix', 'regex'] as const;

/**
 * An Istio StringMatch (`{exact|prefix|regex: string}`); undefined for `{}` (matches anything).
 * More than one kind, another key, a non-string value, or a regex that is empty or not RE2 (what
 * Envoy compiles: a bad one would make Envoy reject the whole listener) is a GENERATION error.
 */
export function stringMatchOf(raw: unknown, where: string): StringMatch | undefined {
  const m = asRecord(raw);
  if (m === undefined) {
    throw generationError(`${where}: must be a string match such as {"exact": "sayHello"}, got ${show(raw)}`);
  }
  const unknown = Object.keys(m).filter((k) => !(STRING_MATCH_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw generationError(
      `${where}: unknown string match field ${show(unknown[0])}; use one of exact, prefix or regex`,
    );
  }
  const kinds = STRING_MATCH_KINDS.filter((k) => m[k] !== undefined && m[k] !== null);
  if (kinds.length > 1) {
    throw generationError(
      `${where}: sets ${kinds.join(' and ')}; a string match takes exactly one of exact, prefix or regex`,
    );
  }
  const kind = kinds[0];
  if (kind === undefined) return undefined;
  const value = m[kind];
  if (typeof value !== 'string')
    throw generationError(`${where}.${kind}: must be a string, got ${show(value)}`);
  if (kind === 'regex') {
    if (value === '')
      throw generationError(`${where}.regex: must not be empty; remove the match to match everything`);
    const problem = regexProblem(value);
    if (problem !== undefined) {
      throw generationError(
        problem.tooLarge
          ? `${where}.regex: ${show(value)} ${problem.reason}`
          : `${where}.regex: ${show(value)} is not valid RE2 (${problem.reason}); Envoy matches with RE2`,
      );
    }
  }
  return { kind, value };
}
