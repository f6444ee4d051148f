/**
 * Redis: the redis_proxy filter replaces tcp_proxy. Outbound, a RedisService in the service's
 * namespace gives the settings, key-prefix routes, mirrors, faults and downstream auth, and a
 * RedisDestination replaces the outbound cluster (see cluster.ts). Inbound, a plain proxy to the
 * workload with a long op timeout.
 */
import { inboundCluster, outboundCluster, sourceOf, typedConfig } from '../shared/envoyfilter.js';
import type { FilterPlan, PortContext, ProtocolGenerator, SourceRef } from '../types.js';
import { resolveAuth } from './auth.js';
import { clusterPatches, REDIS_PROXY_FILTER } from './cluster.js';
import { optBoolean, optRecord, originOf } from './fields.js';
import { connPoolSettings, faults, prefixRoutes } from './routes.js';

export const REDIS_PROXY_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy';
export const DEFAULT_OP_TIMEOUT = '60s';
export const INBOUND_OP_TIMEOUT = '3600s';

function filterOf(config: Record<string, unknown>): FilterPlan['filter'] {
  return { name: REDIS_PROXY_FILTER, typedConfig: typedConfig(REDIS_PROXY_TYPE, config) };
}

function outbound(ctx: PortContext): FilterPlan {
  const statPrefix = outboundCluster(ctx.port.number, ctx.host);
  const sources: SourceRef[] = [];
  const extraPatches =
    ctx.redisDestination === undefined ? [] : clusterPatches(ctx, ctx.redisDestination, sources);
  const rs = ctx.redisService;
  if (rs === undefined) {
    const filter = filterOf({
      statPrefix,
      settings: { opTimeout: DEFAULT_OP_TIMEOUT },
      prefixRoutes: { catchAllRoute: { cluster: statPrefix } },
    });
    return { operation: 'REPLACE', filter, extraPatches, sources };
  }

  const origin = originOf(rs);
  sources.push(sourceOf(rs));
  const spec = optRecord(origin, 'spec', rs.spec) ?? {};
  const settings = optRecord(origin, 'spec.settings', spec.settings);
  const caseInsensitive =
    optBoolean(origin, 'spec.settings.caseInsensitive', settings?.caseInsensitive) === true;
  const config: Record<string, unknown> = {
    statPrefix,
    settings: connPoolSettings(origin, settings),
    prefixRoutes: prefixRoutes(ctx, origin, spec, caseInsensitive, sources),
  };
  // Downstream auth: clients AUTH to Envoy. The Secret is read in the RedisService's namespace.
  const auth = resolveAuth(ctx, origin, 'spec.settings.auth', settings?.auth, origin.namespace, rs);
  if (auth !== undefined) {
    if (auth.secret !== undefined) sources.push(auth.secret);
    // downstream_auth_password is deprecated; the list form replaces it.
    config.downstreamAuthPasswords = [auth.password];
    if (auth.username !== undefined) config.downstreamAuthUsername = auth.username;
  }
  const faultList = faults(origin, spec);
  if (faultList.length > 0) config.faults = faultList;
  return { operation: 'REPLACE', filter: filterOf(config), extraPatches, sources };
}

function inbound(ctx: PortContext): FilterPlan {
  // Istio names inbound clusters by the workload's port: the target port.
  const cluster = inboundCluster(ctx.port.targetPort ?? ctx.port.number);
  return {
    operation: 'REPLACE',
    filter: filterOf({
      statPrefix: cluster,
      settings: { opTimeout: INBOUND_OP_TIMEOUT },
      prefixRoutes: { catchAllRoute: { cluster } },
    }),
  };
}

export const generator: ProtocolGenerator = { protocol: 'redis', outbound, inbound };
