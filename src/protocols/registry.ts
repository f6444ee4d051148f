import { PROTOCOLS, type Protocol } from '../model/protocol.js';
import { DUBBO_FILTER, generator as dubbo } from './dubbo/index.js';
import { generator as kafka, KAFKA_FILTER } from './kafka/index.js';
import { REDIS_PROXY_FILTER } from './redis/cluster.js';
import { generator as redis } from './redis/index.js';
import { generator as thrift, THRIFT_FILTER } from './thrift/index.js';
import type { ProtocolGenerator } from './types.js';
import { generator as zookeeper, ZOOKEEPER_FILTER } from './zookeeper/index.js';

/** Protocol → generator. Adding a protocol is one folder and one line here (and in SUPPORT). */
export const GENERATORS: Readonly<Record<Protocol, ProtocolGenerator>> = {
  dubbo,
  thrift,
  kafka,
  zookeeper,
  redis,
};

/**
 * Whether the stock `istio/proxyv2` of the supported Istio range (1.20-1.31) compiles in a
 * protocol's Envoy filter. A listener patched with a filter the proxy lacks is rejected by every
 * sidecar it reaches (NACK, stale listener), so a filter the stock proxy lacks is opt-in
 * (`--protocols`) and every patch of it is scoped with EnvoyFilter `match.proxy.metadata` to the
 * proxies that declare it: node metadata `<proxyMetadataKey>: "true"`, which a pod sets with
 * `proxyMetadata: {ISTIO_META_<proxyMetadataKey>: "true"}` in its `proxy.istio.io/config`
 * annotation (istio-agent turns `ISTIO_META_*` into node metadata; istiod matches each
 * `match.proxy.metadata` entry by exact string equality, a missing key never matches).
 */
export type ProtocolSupport =
  | { readonly filter: string; readonly inStockProxy: true }
  | { readonly filter: string; readonly inStockProxy: false; readonly proxyMetadataKey: string };

export const SUPPORT: Readonly<Record<Protocol, ProtocolSupport>> = {
  dubbo: { filter: DUBBO_FILTER, inStockProxy: true },
  thrift: { filter: THRIFT_FILTER, inStockProxy: true },
  redis: { filter: REDIS_PROXY_FILTER, inStockProxy: true },
  zookeeper: { filter: ZOOKEEPER_FILTER, inStockProxy: true },
  // A contrib extension: in istio/proxy only in Istio 1.12.
  kafka: { filter: KAFKA_FILTER, inStockProxy: false, proxyMetadataKey: 'BREEZE_KAFKA_BROKER' },
};

/** The order protocols are listed in (`--protocols` values in messages): SUPPORT's. */
const LIST_ORDER = Object.keys(SUPPORT) as readonly Protocol[];

/** `--protocols` when not given: every protocol whose filter is in the stock proxy (`dubbo,thrift,redis,zookeeper`). */
export const DEFAULT_PROTOCOLS = LIST_ORDER.filter((p) => SUPPORT[p].inStockProxy).join(',');

/** The value the proxy metadata key must have. */
export const PROXY_METADATA_VALUE = 'true';

/** The longest `--protocols` value read (each name at most 9 characters, a few of them). */
const MAX_PROTOCOLS_TEXT = 256;

/**
 * Parses a `--protocols` value (comma-separated names, any case, spaces around names ignored):
 * the set, or why it is wrong (`names "kafak", which is not a protocol (use ...)`).
 */
export function parseProtocols(text: string): ReadonlySet<Protocol> | { readonly error: string } {
  if (text.length > MAX_PROTOCOLS_TEXT) return { error: `is longer than ${MAX_PROTOCOLS_TEXT} characters` };
  const set = new Set<Protocol>();
  for (const raw of text.split(',')) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    const protocol = PROTOCOLS.find((p) => p === name);
    if (protocol === undefined)
      return {
        error: `names ${JSON.stringify(raw.trim())}, which is not a protocol (use ${LIST_ORDER.join(', ')})`,
      };
    set.add(protocol);
  }
  if (set.size === 0) return { error: `must list at least one of ${LIST_ORDER.join(', ')}` };
  return set;
}

/** The `match.proxy.metadata` every patch of this protocol carries, or undefined (stock filter). */
export function proxyMetadataMatch(protocol: Protocol): Readonly<Record<string, string>> | undefined {
  const s = SUPPORT[protocol];
  return s.inStockProxy ? undefined : { [s.proxyMetadataKey]: PROXY_METADATA_VALUE };
}

/** A `--protocols` value: the set in SUPPORT's order (stock filters first, kafka last). */
export function protocolList(set: ReadonlySet<Protocol>): string {
  return LIST_ORDER.filter((p) => set.has(p)).join(',');
}

/**
 * What a user must know about a protocol the service uses, given the enabled set: nothing for an
 * enabled stock filter; for a disabled one that its ports stay plain TCP and how to enable it; for
 * a filter the stock proxy lacks, the proxy metadata to set and the proxy image it needs. Each
 * line is at most 120 characters (an admission warning), the first one says what happens.
 */
export function switchAdvice(protocol: Protocol, enabled: ReadonlySet<Protocol>): string[] {
  const s = SUPPORT[protocol];
  const lines: string[] = [];
  const on = enabled.has(protocol);
  if (!on) {
    lines.push(
      `${protocol} is off in Breeze (--protocols ${protocolList(enabled)}): its ports stay plain TCP`,
      `to enable it, run Breeze with --protocols ${protocolList(new Set([...enabled, protocol]))} (chart value protocols)`,
    );
  }
  if (s.inStockProxy) return lines;
  if (on) {
    lines.push(
      `${protocol} filters go only to sidecars with node metadata ${s.proxyMetadataKey}="${PROXY_METADATA_VALUE}"`,
    );
  }
  lines.push(
    `set on the pods: proxy.istio.io/config annotation, proxyMetadata: {ISTIO_META_${s.proxyMetadataKey}: "${PROXY_METADATA_VALUE}"}`,
    `and an istio/proxy image built with ${s.filter} (the stock istio/proxyv2 lacks it)`,
  );
  return lines;
}
