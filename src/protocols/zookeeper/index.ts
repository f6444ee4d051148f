import { typedConfig } from '../shared/envoyfilter.js';
import { statsFilterGenerator } from '../shared/statsfilter.js';

export const ZOOKEEPER_FILTER = 'envoy.filters.network.zookeeper_proxy';
export const ZOOKEEPER_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.zookeeper_proxy.v3.ZooKeeperProxy';

/**
 * Each zookeeper port gets its own filter (the driver iterates ports), so a Service listing
 * `tcp-follower` and `tcp-election` before `tcp-zookeeper` gets the filter on the client port,
 * not on its first port as in Aeraki.
 */
export const generator = statsFilterGenerator({
  protocol: 'zookeeper',
  filterName: ZOOKEEPER_FILTER,
  typedConfig: (fields) => typedConfig(ZOOKEEPER_TYPE, fields),
});
