import type { JsonRecord } from '../model/json.js';
import type { Protocol } from '../model/protocol.js';
import type { SecretData } from '../model/secret.js';
import type { ServicePort, ServiceView } from '../model/service.js';

/** How generated EnvoyFilters are placed. */
export interface GenerationOptions {
  /** Namespace of the EnvoyFilters (`--root-namespace`, default istio-system). */
  readonly rootNamespace: string;
  /** `--envoyfilter-namespace-scope`: put each service's EnvoyFilters in its own namespace. */
  readonly namespaceScope: boolean;
  /** Cluster DNS domain for short host names. */
  readonly domain: string;
  /**
   * `--redis-auth-mode`: Redis passwords from Secrets inlined in the EnvoyFilters (`inline`, the
   * default) or read by Envoy from the Secret mounted into the sidecars (`file`); a RedisService
   * or RedisDestination may override it (protocols/redis/authmode.ts).
   */
  readonly redisAuthMode?: 'inline' | 'file';
  /**
   * `--protocols`: the protocols that get filters; a port of any other protocol stays plain TCP
   * and its service gets a note. The serve and generate commands always set it (default: the
   * protocols whose filter is in the stock proxy, registry.ts DEFAULT_PROTOCOLS); absent (library
   * callers, tests) means every protocol. Either way a filter the stock proxy lacks is scoped to
   * the proxies that declare it.
   */
  readonly protocols?: ReadonlySet<Protocol>;
}

/** A source object an EnvoyFilter was generated from (recorded in its annotations). */
export interface SourceRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/**
 * Everything a protocol generator may read for one port of one service. It is pure data plus
 * lookups into the config cache; generators never do I/O.
 */
export interface PortContext {
  readonly service: ServiceView;
  /** The service FQDN the filters are for (the entry's first host). */
  readonly host: string;
  readonly port: ServicePort;
  readonly protocol: Protocol;
  /** The VirtualService for `host` (deterministic choice when several claim it), if any. */
  readonly virtualService: JsonRecord | undefined;
  /** The DestinationRule for `host`, if any. */
  readonly destinationRule: JsonRecord | undefined;
  /** The RedisService in the service's namespace naming `host`, if any. */
  readonly redisService: JsonRecord | undefined;
  /** The RedisDestination in the service's namespace for `host`, if any. */
  readonly redisDestination: JsonRecord | undefined;
  /**
   * A Secret's data, base64-decoded to UTF-8 strings (`stringData` merged in), or undefined
   * when the cache has no such Secret. A key that cannot be decoded holds the reason instead
   * (model/secret.ts). Callers must never log the values.
   */
  secret(namespace: string, name: string): SecretData | undefined;
  /** The protocol services claiming an FQDN (e.g. a Redis route's host, to find its port). */
  servicesFor(fqdn: string): readonly ServiceView[];
  readonly options: GenerationOptions;
}

/** An Envoy network filter: `envoy.config.listener.v3.Filter` as proto3 JSON. */
export interface NetworkFilter {
  readonly name: string;
  readonly typedConfig: JsonRecord;
}

/** One `spec.configPatches[]` entry of an EnvoyFilter, as Kubernetes JSON. */
export type ConfigPatch = JsonRecord;

/** What a generator produces for one direction of one port. */
export interface FilterPlan {
  /** REPLACE tcp_proxy (Dubbo, Thrift, Redis) or INSERT_BEFORE it (Kafka, ZooKeeper). */
  readonly operation: 'REPLACE' | 'INSERT_BEFORE';
  readonly filter: NetworkFilter;
  /** Further patches in the same EnvoyFilter (Redis: the outbound cluster REMOVE + ADD). */
  readonly extraPatches?: readonly ConfigPatch[];
  /** Source objects read besides the service itself (VirtualService, RedisService, Secret...). */
  readonly sources?: readonly SourceRef[];
}

/**
 * A protocol generator: pure functions from a port context to filter plans. Throw a
 * `BreezeError('GENERATION', message)` for a problem with this service's config; the driver
 * reports it against the service and keeps that service's current EnvoyFilters.
 */
export interface ProtocolGenerator {
  readonly protocol: Protocol;
  /** The outbound filter (shared by every VIP of the service). */
  outbound(ctx: PortContext): FilterPlan;
  /** The inbound filter (listener virtualInbound, the port's target port). */
  inbound(ctx: PortContext): FilterPlan;
}
