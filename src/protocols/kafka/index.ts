import { inboundCluster, outboundCluster, typedStruct } from '../shared/envoyfilter.js';
import type { FilterPlan, PortContext, ProtocolGenerator } from '../types.js';

export const KAFKA_FILTER = 'envoy.filters.network.kafka_broker';
export const KAFKA_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker';

/**
 * Kafka's broker filter decodes the protocol for stats in front of tcp_proxy. It is a contrib
 * extension: the config is wrapped in a TypedStruct so istiod passes it through without knowing
 * the type (Envoy converts it; the proxy image must include the contrib filter).
 */
function plan(statPrefix: string): FilterPlan {
  return {
    operation: 'INSERT_BEFORE',
    filter: { name: KAFKA_FILTER, typedConfig: typedStruct(KAFKA_TYPE, { statPrefix }) },
  };
}

export const generator: ProtocolGenerator = {
  protocol: 'kafka',
  outbound(ctx: PortContext): FilterPlan {
    return plan(outboundCluster(ctx.port.number, ctx.host));
  },
  inbound(ctx: PortContext): FilterPlan {
    // Istio names inbound clusters (and so stats) by the workload's port: the target port.
    return plan(inboundCluster(ctx.port.targetPort ?? ctx.port.number));
  },
};
