import { inboundCluster, outboundCluster, typedConfig } from '../shared/envoyfilter.js';
import type { FilterPlan, PortContext, ProtocolGenerator } from '../types.js';

export const ZOOKEEPER_FILTER = 'envoy.filters.network.zookeeper_proxy';
export const ZOOKEEPER_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.zookeeper_proxy.v3.ZooKeeperProxy';

/**
 * ZooKeeper's filter only decodes the protocol for stats: it goes in front of tcp_proxy, which
 * still forwards the bytes. Each zookeeper port gets its own filter (the driver iterates ports),
 * so a Service listing `tcp-follower` and `tcp-election` before `tcp-zookeeper` gets the filter on
 * the client port, not on its first port as in Aeraki.
 */
function plan(statPrefix: string): FilterPlan {
  return {
    operation: 'INSERT_BEFORE',
    filter: { name: ZOOKEEPER_FILTER, typedConfig: typedConfig(ZOOKEEPER_TYPE, { statPrefix }) },
  };
}

export const generator: ProtocolGenerator = {
  protocol: 'zookeeper',
  outbound(ctx: PortContext): FilterPlan {
    return plan(outboundCluster(ctx.port.number, ctx.host));
  },
  inbound(ctx: PortContext): FilterPlan {
    // Istio names inbound clusters (and so stats) by the workload's port: the target port.
    return plan(inboundCluster(ctx.port.targetPort ?? ctx.port.number));
  },
};
