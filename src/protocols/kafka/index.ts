import { typedStruct } from '../shared/envoyfilter.js';
import { statsFilterGenerator } from '../shared/statsfilter.js';

export const KAFKA_FILTER = 'envoy.filters.network.kafka_broker';
export const KAFKA_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker';

/**
 * Kafka's broker filter is a contrib extension: its config is wrapped in a TypedStruct so istiod
 * passes it through without knowing the type (Envoy converts it; the proxy image must include
 * the contrib filter).
 */
export const generator = statsFilterGenerator({
  protocol: 'kafka',
  filterName: KAFKA_FILTER,
  typedConfig: (fields) => typedStruct(KAFKA_TYPE, fields),
});
