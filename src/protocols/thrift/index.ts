// Thrift: envoy.filters.network.thrift_proxy replacing tcp_proxy, routes by exact method name.
import type { JsonRecord } from '../../model/json.js';
import { quote } from '../../model/limits.js';
import { inboundCluster, outboundCluster, typedConfig } from '../shared/envoyfilter.js';
import {
  defaultTarget,
  generationError,
  readVsRoutes,
  routeAction,
  stringMatchOf,
  type RouteTarget,
  type VsRoute,
} from '../shared/vsroutes.js';
import type { FilterPlan, PortContext, ProtocolGenerator } from '../types.js';

export const THRIFT_FILTER = 'envoy.filters.network.thrift_proxy';
export const THRIFT_PROXY_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy';
export const THRIFT_ROUTER = 'envoy.filters.thrift.router';
export const THRIFT_ROUTER_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.router.v3.Router';

function route(methodName: string, target: RouteTarget): JsonRecord {
  return { match: { methodName }, route: routeAction(target) };
}

/**
 * The ThriftProxy config. transport and protocol are AUTO_TRANSPORT / AUTO_PROTOCOL, the enums'
 * zero values, so they are omitted. `validateClusters: false`: a static Thrift route table
 * otherwise checks every cluster exists when the listener loads, and one route to a subset the
 * DestinationRule does not define (yet) would make Envoy reject the whole listener; unchecked, only
 * that route fails at request time. The router carries its typed config: Envoy looks Thrift filters
 * up by type URL (`no_extension_lookup_by_name`), so a bare name is rejected.
 */
function thriftProxy(statPrefix: string, routeName: string, routes: JsonRecord[]): JsonRecord {
  return typedConfig(THRIFT_PROXY_TYPE, {
    statPrefix,
    routeConfig: { name: routeName, routes, validateClusters: false },
    thriftFilters: [{ name: THRIFT_ROUTER, typedConfig: { '@type': THRIFT_ROUTER_TYPE } }],
  });
}

/**
 * The method name a route matches: Thrift's RouteMatch has only an exact `methodName` or a service
 * name (plus invert and headers), where "" matches every method. So a VirtualService method
 * `exact` maps, no method (or an empty prefix) matches all, and prefix/regex are errors. Headers
 * are ignored (admission warns about them).
 */
function methodNameOf(r: VsRoute): string {
  const raw = r.match?.method;
  if (raw === undefined || raw === null) return '';
  const where = r.where('.method');
  const m = stringMatchOf(raw, where);
  if (m === undefined) return '';
  if (m.kind === 'exact') {
    if (m.value === '') {
      throw generationError(
        `${where}: an empty exact method name cannot be expressed in a Thrift route (an empty methodName ` +
          'matches every method); remove the method match to match all methods',
      );
    }
    return m.value;
  }
  if (m.kind === 'prefix' && m.value === '') return '';
  throw generationError(
    `${where}: ${m.kind} ${quote(m.value, 60)} cannot be expressed in a Thrift route, which matches only ` +
      'an exact method name; list the methods as exact matches, one match entry each',
  );
}

function outbound(ctx: PortContext): FilterPlan {
  const cluster = outboundCluster(ctx.port.number, ctx.host);
  const vs = readVsRoutes(ctx);
  const routes =
    vs.routes.length === 0
      ? [route('', defaultTarget(ctx))]
      : vs.routes.map((r) => route(methodNameOf(r), r.target));
  return {
    operation: 'REPLACE',
    filter: { name: THRIFT_FILTER, typedConfig: thriftProxy(cluster, cluster, routes) },
    sources: vs.sources,
  };
}

/** Inbound: every method to the workload port's inbound cluster. */
function inbound(ctx: PortContext): FilterPlan {
  // Istio names inbound clusters after the workload (target) port, which is also the filter chain's destinationPort.
  const cluster = inboundCluster(ctx.port.targetPort ?? ctx.port.number);
  return {
    operation: 'REPLACE',
    filter: { name: THRIFT_FILTER, typedConfig: thriftProxy(cluster, cluster, [route('', { cluster })]) },
  };
}

export const generator: ProtocolGenerator = { protocol: 'thrift', outbound, inbound };
