// Dubbo: envoy.filters.network.dubbo_proxy replacing tcp_proxy, routes from VirtualService http[].
import type { JsonRecord } from '../../model/json.js';
import { inboundCluster, outboundCluster, typedConfig } from '../shared/envoyfilter.js';
import {
  defaultTarget,
  generationError,
  readVsRoutes,
  routeAction,
  type RouteTarget,
} from '../shared/vsroutes.js';
import type { FilterPlan, PortContext, ProtocolGenerator } from '../types.js';
import { CATCH_ALL_METHOD, dubboRouteMatch } from './match.js';

export const DUBBO_FILTER = 'envoy.filters.network.dubbo_proxy';
export const DUBBO_PROXY_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy';
export const DUBBO_ROUTER = 'envoy.filters.dubbo.router';

/** The ServiceEntry annotation naming the Dubbo interface (a Java FQN, capitals allowed). */
export const INTERFACE_ANNOTATION = 'interface';

function catchAllRoute(target: RouteTarget): JsonRecord {
  return { match: { method: { name: CATCH_ALL_METHOD } }, route: routeAction(target) };
}

/**
 * The DubboProxy config. Routes go in `multipleRouteConfig`, not the deprecated `routeConfig`
 * (deprecated since Envoy 1.23; Envoy reads both the same way). protocolType (Dubbo) and
 * serializationType (Hessian2) are the enums' zero values, so they are omitted. The router needs
 * no config: Envoy looks Dubbo filters up by name.
 */
function dubboProxy(statPrefix: string, routeName: string, iface: string, routes: JsonRecord[]): JsonRecord {
  return typedConfig(DUBBO_PROXY_TYPE, {
    statPrefix,
    multipleRouteConfig: {
      name: routeName,
      routeConfig: [{ name: routeName, interface: iface, routes }],
    },
    dubboFilters: [{ name: DUBBO_ROUTER }],
  });
}

function outbound(ctx: PortContext): FilterPlan {
  const iface = ctx.service.annotations[INTERFACE_ANNOTATION]?.trim() ?? '';
  if (iface === '') {
    throw generationError(
      `the ${ctx.service.kind} has no "${INTERFACE_ANNOTATION}" annotation (the Dubbo interface, ` +
        'e.g. org.apache.dubbo.samples.DemoService): no outbound filter',
    );
  }
  const cluster = outboundCluster(ctx.port.number, ctx.host);
  const vs = readVsRoutes(ctx);
  const routes =
    vs.routes.length === 0
      ? [catchAllRoute(defaultTarget(ctx))]
      : vs.routes.map((r) => ({ match: dubboRouteMatch(r.match, r.where), route: routeAction(r.target) }));
  return {
    operation: 'REPLACE',
    filter: { name: DUBBO_FILTER, typedConfig: dubboProxy(cluster, cluster, iface, routes) },
    sources: vs.sources,
  };
}

/** Inbound: every interface (`*`) of the workload's port to its inbound cluster. */
function inbound(ctx: PortContext): FilterPlan {
  // Istio names inbound clusters after the workload (target) port, which is also the filter chain's destinationPort.
  const cluster = inboundCluster(ctx.port.targetPort ?? ctx.port.number);
  return {
    operation: 'REPLACE',
    filter: {
      name: DUBBO_FILTER,
      typedConfig: dubboProxy(cluster, cluster, '*', [catchAllRoute({ cluster })]),
    },
  };
}

export const generator: ProtocolGenerator = { protocol: 'dubbo', outbound, inbound };
