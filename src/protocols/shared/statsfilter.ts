import type { JsonRecord } from '../../model/json.js';
import type { Protocol } from '../../model/protocol.js';
import type { FilterPlan, PortContext, ProtocolGenerator } from '../types.js';
import { inboundCluster, outboundCluster } from './envoyfilter.js';

/**
 * A generator for filters that only decode a protocol for stats (Kafka, ZooKeeper): inserted in
 * front of tcp_proxy, which still forwards the bytes, with Istio's cluster name as stat prefix.
 */
export function statsFilterGenerator(o: {
  protocol: Protocol;
  filterName: string;
  typedConfig: (fields: { statPrefix: string }) => JsonRecord;
}): ProtocolGenerator {
  const plan = (statPrefix: string): FilterPlan => ({
    operation: 'INSERT_BEFORE',
    filter: { name: o.filterName, typedConfig: o.typedConfig({ statPrefix }) },
  });
  return {
    protocol: o.protocol,
    outbound: (ctx: PortContext) => plan(outboundCluster(ctx.port.number, ctx.host)),
    // Istio names inbound clusters (and so stats) by the workload's port: the target port.
    inbound: (ctx: PortContext) => plan(inboundCluster(ctx.port.targetPort ?? ctx.port.number)),
  };
}
