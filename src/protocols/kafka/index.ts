import { typedStruct } from '../shared/envoyfilter.js';
import { statsFilterGenerator } from '../shared/statsfilter.js';

export const KAFKA_FILTER = 'envoy.filters.network.kafka_broker';
export const KAFKA_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker';

/**
 * Kafka's broker filter is an Envoy contrib extension: the stock istio/proxyv2 of Istio 1.20-1.31
 * lacks it (only Istio 1.12 had it), so Kafka is off unless `--protocols` names it and every patch
 * is scoped to proxies that declare the filter (SUPPORT in ../registry.ts). Its config stays
 * wrapped in an xds TypedStruct, which Envoy converts to the inner type (istiod does not need the
 * wrapper; it is kept so existing filters do not change).
 */
export const generator = statsFilterGenerator({
  protocol: 'kafka',
  filterName: KAFKA_FILTER,
  typedConfig: (fields) => typedStruct(KAFKA_TYPE, fields),
});
