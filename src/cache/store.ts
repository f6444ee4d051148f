import { asArray, asRecord, asString, type JsonRecord } from '../model/json.js';
import { objectRef } from '../model/kinds.js';
import { resolveHost } from '../model/names.js';
import { hasProtocolPort, serviceViewOf, type ServiceView } from '../model/service.js';

/** Where an entry came from. Only `admission` entries are unconfirmed. */
export type Origin = 'admission' | 'kubernetes' | 'istiod' | 'file';

export interface Entry {
  readonly key: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly object: JsonRecord;
  readonly origin: Origin;
  readonly confirmed: boolean;
}

/** Kinds indexed by the hosts they name (resolved to FQDNs in the object's namespace). */
export const HOST_INDEXED_KINDS = [
  'VirtualService',
  'DestinationRule',
  'RedisService',
  'RedisDestination',
] as const;
export type HostIndexedKind = (typeof HOST_INDEXED_KINDS)[number];

/** What the admission validators and mutators may read: the store, never the API server. */
export interface ConfigView {
  readonly domain: string;
  /** Protocol services (at least one protocol port) that claim this FQDN. */
  protocolServices(fqdn: string): readonly ServiceView[];
  /** Subset names of the DestinationRules for this FQDN; undefined when there is none. */
  destinationRuleSubsets(fqdn: string): ReadonlySet<string> | undefined;
  /** The key (`ServiceEntry/ns/name`) of the ServiceEntry using this address, if any. */
  addressOwner(address: string): string | undefined;
}

export function objectKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** Hosts an object of a host-indexed kind names, as FQDNs resolved in its namespace. */
function namedHosts(kind: HostIndexedKind, object: JsonRecord, domain: string): string[] {
  const spec = asRecord(object.spec) ?? {};
  const ns = objectRef(object).namespace;
  const raw =
    kind === 'VirtualService' || kind === 'RedisService'
      ? (asArray(spec.hosts ?? spec.host) ?? [])
      : [spec.host];
  const hosts = raw
    .filter((h): h is string => typeof h === 'string' && h !== '')
    .map((h) => resolveHost(h, ns, domain));
  return [...new Set(hosts)];
}

/**
 * Oldest first (creationTimestamp), then namespace/name: the deterministic choice when several
 * objects claim one host. Objects without a timestamp (files, admission) sort after dated ones.
 */
export function compareEntries(a: Entry, b: Entry): number {
  const ta = asString(asRecord(a.object.metadata)?.creationTimestamp) ?? '\uffff';
  const tb = asString(asRecord(b.object.metadata)?.creationTimestamp) ?? '\uffff';
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = `${a.namespace}/${a.name}`;
  const kb = `${b.namespace}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * The config cache: objects keyed by kind/namespace/name with their origin, and host indexes for
 * the lookups admission and generation need. Indexes record where each key was filed, so an
 * update costs what the object touches, not the size of the store.
 */
export class ConfigStore implements ConfigView {
  private readonly entries = new Map<string, Entry>();
  private readonly servicesByHost = new Map<string, Map<string, ServiceView>>();
  private readonly byHost = new Map<HostIndexedKind, Map<string, Map<string, Entry>>>(
    HOST_INDEXED_KINDS.map((k) => [k, new Map()]),
  );
  private readonly addressOwners = new Map<string, string>();
  private readonly indexedAt = new Map<
    string,
    { serviceHosts: string[]; kind?: HostIndexedKind; hosts: string[]; addresses: string[] }
  >();

  constructor(readonly domain = 'cluster.local') {}

  get size(): number {
    return this.entries.size;
  }

  get(kind: string, namespace: string, name: string): Entry | undefined {
    return this.entries.get(objectKey(kind, namespace, name));
  }

  list(kind?: string): Entry[] {
    const all = [...this.entries.values()];
    return kind === undefined ? all : all.filter((e) => e.kind === kind);
  }

  /** Inserts or replaces an object; returns its key. Objects without kind or name are ignored. */
  upsert(object: JsonRecord, origin: Origin): string | undefined {
    const kind = asString(object.kind);
    const ref = objectRef(object);
    if (kind === undefined || ref.name === '') return undefined;
    const key = objectKey(kind, ref.namespace, ref.name);
    this.unindex(key);
    const entry: Entry = {
      key,
      kind,
      namespace: ref.namespace,
      name: ref.name,
      object,
      origin,
      confirmed: origin !== 'admission',
    };
    this.entries.set(key, entry);
    this.index(entry);
    return key;
  }

  remove(kind: string, namespace: string, name: string): boolean {
    const key = objectKey(kind, namespace, name);
    this.unindex(key);
    return this.entries.delete(key);
  }

  protocolServices(fqdn: string): readonly ServiceView[] {
    return [...(this.servicesByHost.get(fqdn.toLowerCase())?.values() ?? [])];
  }

  /** Every protocol service in the store with its key, in key order. */
  allProtocolServices(): { key: string; service: ServiceView }[] {
    const seen = new Map<string, ServiceView>();
    for (const m of this.servicesByHost.values()) for (const [key, s] of m) seen.set(key, s);
    return [...seen]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, service]) => ({ key, service }));
  }

  /** Objects of `kind` naming this FQDN, oldest first (see compareEntries). */
  forHost(kind: HostIndexedKind, fqdn: string): Entry[] {
    return [...(this.byHost.get(kind)?.get(fqdn.toLowerCase())?.values() ?? [])].sort(compareEntries);
  }

  destinationRuleSubsets(fqdn: string): ReadonlySet<string> | undefined {
    const rules = this.forHost('DestinationRule', fqdn);
    if (rules.length === 0) return undefined;
    const names = rules.flatMap((r) =>
      (asArray(asRecord(r.object.spec)?.subsets) ?? [])
        .map((s) => asString(asRecord(s)?.name))
        .filter((n): n is string => n !== undefined),
    );
    return new Set(names);
  }

  addressOwner(address: string): string | undefined {
    return this.addressOwners.get(address);
  }

  private index(entry: Entry): void {
    const at: { serviceHosts: string[]; kind?: HostIndexedKind; hosts: string[]; addresses: string[] } = {
      serviceHosts: [],
      hosts: [],
      addresses: [],
    };
    this.indexedAt.set(entry.key, at);
    const service = serviceViewOf(entry.object, this.domain);
    if (service !== undefined) {
      if (entry.kind === 'ServiceEntry') {
        for (const a of service.addresses) {
          if (this.addressOwners.has(a)) continue;
          this.addressOwners.set(a, entry.key);
          at.addresses.push(a);
        }
      }
      if (hasProtocolPort(service)) {
        for (const h of service.hosts) getOrCreate(this.servicesByHost, h).set(entry.key, service);
        at.serviceHosts.push(...service.hosts);
      }
      return;
    }
    const kind = HOST_INDEXED_KINDS.find((k) => k === entry.kind);
    if (kind === undefined) return;
    at.kind = kind;
    at.hosts = namedHosts(kind, entry.object, this.domain);
    const index = this.byHost.get(kind);
    if (index !== undefined) for (const h of at.hosts) getOrCreate(index, h).set(entry.key, entry);
  }

  private unindex(key: string): void {
    const at = this.indexedAt.get(key);
    if (at === undefined) return;
    this.indexedAt.delete(key);
    for (const h of at.serviceHosts) dropFrom(this.servicesByHost, h, key);
    const index = at.kind === undefined ? undefined : this.byHost.get(at.kind);
    if (index !== undefined) for (const h of at.hosts) dropFrom(index, h, key);
    for (const a of at.addresses) if (this.addressOwners.get(a) === key) this.addressOwners.delete(a);
  }
}

function getOrCreate<K, V>(m: Map<K, Map<string, V>>, k: K): Map<string, V> {
  let inner = m.get(k);
  if (inner === undefined) {
    inner = new Map();
    m.set(k, inner);
  }
  return inner;
}

function dropFrom<V>(m: Map<string, Map<string, V>>, k: string, key: string): void {
  const inner = m.get(k);
  if (inner?.delete(key) === true && inner.size === 0) m.delete(k);
}
