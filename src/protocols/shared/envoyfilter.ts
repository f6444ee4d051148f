import { createHash } from 'node:crypto';
import { canonicalJson, type JsonRecord } from '../../model/json.js';
import { objectRef } from '../../model/kinds.js';
import type { Protocol } from '../../model/protocol.js';
import type { ConfigPatch, FilterPlan, SourceRef } from '../types.js';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'breeze';
export const PROTOCOL_LABEL = 'breeze.io/protocol';
export const SOURCES_ANNOTATION = 'breeze.io/sources';
export const CONTENT_HASH_ANNOTATION = 'breeze.io/content-hash';
/** The service key (`ServiceEntry/ns/name`, `Service/ns/name`) an EnvoyFilter belongs to. */
export const SERVICE_ANNOTATION = 'breeze.io/service';

export const TCP_PROXY = 'envoy.filters.network.tcp_proxy';
export const TYPED_STRUCT = 'type.googleapis.com/xds.type.v3.TypedStruct';

/** Istio's cluster names: `outbound|<port>|<subset>|<host>` and `inbound|<port>||`. */
export function outboundCluster(port: number, host: string, subset = ''): string {
  return `outbound|${port}|${subset}|${host}`;
}

export function inboundCluster(port: number): string {
  return `inbound|${port}||`;
}

/** A typed_config with the message inline: `{"@type": <type URL>, ...fields}`. */
export function typedConfig(typeUrl: string, fields: JsonRecord): JsonRecord {
  return { '@type': typeUrl, ...fields };
}

/**
 * A typed_config wrapped in xds.type.v3.TypedStruct: istiod passes it through without knowing
 * the inner type (needed for contrib filters such as Kafka's broker), and Envoy converts it.
 */
export function typedStruct(typeUrl: string, fields: JsonRecord): JsonRecord {
  return { '@type': TYPED_STRUCT, typeUrl, value: fields };
}

/** The NETWORK_FILTER patch on the outbound listener `<vip>_<port>`. */
export function outboundListenerPatch(vip: string, port: number, plan: FilterPlan): ConfigPatch {
  return {
    applyTo: 'NETWORK_FILTER',
    match: { listener: { name: `${vip}_${port}`, filterChain: { filter: { name: TCP_PROXY } } } },
    patch: {
      operation: plan.operation,
      value: { name: plan.filter.name, typedConfig: plan.filter.typedConfig },
    },
  };
}

/** The NETWORK_FILTER patch on `virtualInbound`, filter chain of the workload's port. */
export function inboundListenerPatch(destinationPort: number, plan: FilterPlan): ConfigPatch {
  return {
    applyTo: 'NETWORK_FILTER',
    match: {
      context: 'SIDECAR_INBOUND',
      listener: { name: 'virtualInbound', filterChain: { destinationPort, filter: { name: TCP_PROXY } } },
    },
    patch: {
      operation: plan.operation,
      value: { name: plan.filter.name, typedConfig: plan.filter.typedConfig },
    },
  };
}

/** The SourceRef of a manifest object (for FilterPlan.sources). */
export function sourceOf(object: JsonRecord): SourceRef {
  return { kind: typeof object.kind === 'string' ? object.kind : '', ...objectRef(object) };
}

export function sourceKey(s: SourceRef): string {
  return `${s.kind}/${s.namespace}/${s.name}`;
}

/**
 * A complete networking.istio.io/v1alpha3 EnvoyFilter: Breeze's labels, the sorted source
 * objects and a content hash (of labels and spec) in annotations, so a reconciler can compare
 * desired and actual state without a deep diff.
 */
export function buildEnvoyFilter(o: {
  name: string;
  /** The service key it belongs to (recorded in the breeze.io/service annotation). */
  service: string;
  namespace: string;
  protocol: Protocol;
  workloadSelector: Readonly<Record<string, string>> | undefined;
  patches: readonly ConfigPatch[];
  sources: readonly SourceRef[];
}): JsonRecord {
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [PROTOCOL_LABEL]: o.protocol };
  const spec: JsonRecord = {};
  if (o.workloadSelector !== undefined) spec.workloadSelector = { labels: sortedRecord(o.workloadSelector) };
  spec.configPatches = [...o.patches];
  const hash = createHash('sha256').update(canonicalJson({ labels, spec })).digest('hex').slice(0, 16);
  const sources = [...new Set(o.sources.map(sourceKey))].sort().join(',');
  return {
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: {
      name: o.name,
      namespace: o.namespace,
      labels,
      annotations: {
        [CONTENT_HASH_ANNOTATION]: hash,
        [SERVICE_ANNOTATION]: o.service,
        [SOURCES_ANNOTATION]: sources,
      },
    },
    spec,
  };
}

export function sortedRecord<V>(r: Readonly<Record<string, V>>): Record<string, V> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
