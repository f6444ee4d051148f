import { asArray, asRecord, asString, type JsonRecord } from '../model/json.js';
import { metaOf } from '../model/kinds.js';
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

/**
 * The config cache, first version: objects keyed by kind/namespace/name with their origin, and
 * host indexes for the lookups admission needs. Sources and change tracking grow it later.
 */
export class ConfigStore implements ConfigView {
  private readonly entries = new Map<string, Entry>();
  private readonly servicesByHost = new Map<string, Map<string, ServiceView>>();
  private readonly subsetsByHost = new Map<string, Map<string, readonly string[]>>();
  private readonly addressOwners = new Map<string, string>();
  /** Where each key was indexed, so removal costs what the object touched, not the store size. */
  private readonly indexedAt = new Map<
    string,
    { hosts: string[]; ruleHosts: string[]; addresses: string[] }
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
    const meta = metaOf(object);
    if (kind === undefined || meta.name === '') return undefined;
    const key = objectKey(kind, meta.namespace, meta.name);
    this.unindex(key);
    this.entries.set(key, {
      key,
      kind,
      namespace: meta.namespace,
      name: meta.name,
      object,
      origin,
      confirmed: origin !== 'admission',
    });
    this.index(key, kind, object);
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

  destinationRuleSubsets(fqdn: string): ReadonlySet<string> | undefined {
    const rules = this.subsetsByHost.get(fqdn.toLowerCase());
    if (rules === undefined) return undefined;
    return new Set([...rules.values()].flat());
  }

  addressOwner(address: string): string | undefined {
    return this.addressOwners.get(address);
  }

  private index(key: string, kind: string, object: JsonRecord): void {
    const at = { hosts: [] as string[], ruleHosts: [] as string[], addresses: [] as string[] };
    this.indexedAt.set(key, at);
    const service = serviceViewOf(object, this.domain);
    if (service !== undefined) {
      if (kind === 'ServiceEntry') {
        for (const a of service.addresses)
          if (!this.addressOwners.has(a)) {
            this.addressOwners.set(a, key);
            at.addresses.push(a);
          }
      }
      if (hasProtocolPort(service)) {
        for (const h of service.hosts) getOrCreate(this.servicesByHost, h).set(key, service);
        at.hosts.push(...service.hosts);
      }
      return;
    }
    if (kind === 'DestinationRule') {
      const spec = asRecord(object.spec) ?? {};
      const host = asString(spec.host);
      if (host === undefined || host === '') return;
      const subsets = (asArray(spec.subsets) ?? [])
        .map((s) => asString(asRecord(s)?.name))
        .filter((n): n is string => n !== undefined);
      const fqdn = resolveHost(host, metaOf(object).namespace, this.domain);
      getOrCreate(this.subsetsByHost, fqdn).set(key, subsets);
      at.ruleHosts.push(fqdn);
    }
  }

  private unindex(key: string): void {
    const at = this.indexedAt.get(key);
    if (at === undefined) return;
    this.indexedAt.delete(key);
    for (const h of at.hosts) dropFrom(this.servicesByHost, h, key);
    for (const h of at.ruleHosts) dropFrom(this.subsetsByHost, h, key);
    for (const a of at.addresses) if (this.addressOwners.get(a) === key) this.addressOwners.delete(a);
  }
}

function dropFrom<V>(m: Map<string, Map<string, V>>, k: string, key: string): void {
  const inner = m.get(k);
  if (inner?.delete(key) === true && inner.size === 0) m.delete(k);
}

function getOrCreate<K, V>(m: Map<K, Map<string, V>>, k: K): Map<string, V> {
  let inner = m.get(k);
  if (inner === undefined) {
    inner = new Map();
    m.set(k, inner);
  }
  return inner;
}
