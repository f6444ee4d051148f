import { asArray, asRecord, asString, canonicalJson, type JsonRecord } from '../model/json.js';
import { objectRef } from '../model/kinds.js';
import { resolveHost } from '../model/names.js';
import { hasProtocolPort, serviceViewOf, type ServiceView } from '../model/service.js';

/** Where an entry came from. Only `admission` entries are unconfirmed. */
export type Origin = 'admission' | 'kubernetes' | 'istiod' | 'file';

/** Authoritative origins, strongest first: the effective object is the first one present. */
const AUTHORITIES = ['kubernetes', 'file', 'istiod'] as const;
type Authority = (typeof AUTHORITIES)[number];

export interface Entry {
  readonly key: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly object: JsonRecord;
  readonly origin: Origin;
  /** False while the object is only known from an admission request. */
  readonly confirmed: boolean;
}

/** The annotation naming the service an EnvoyFilter of Breeze's belongs to. */
const OWNER_ANNOTATION = 'breeze.io/service';

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
  /** Objects of a host-indexed kind naming this FQDN, in the deterministic choice order. */
  forHost(kind: HostIndexedKind, fqdn: string, fromNamespace?: string): readonly Entry[];
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

/** Secrets (as `namespace/name`) a RedisService or RedisDestination reads. */
function referencedSecrets(kind: string, object: JsonRecord): string[] {
  const spec = asRecord(object.spec);
  const auth =
    kind === 'RedisService'
      ? asRecord(asRecord(spec?.settings)?.auth)
      : kind === 'RedisDestination'
        ? asRecord(asRecord(asRecord(asRecord(spec?.trafficPolicy)?.connectionPool)?.redis)?.auth)
        : undefined;
  const name = asString(asRecord(auth?.secret)?.name);
  return name === undefined || name === '' ? [] : [`${objectRef(object).namespace}/${name}`];
}

/** Hosts a RedisService routes or mirrors to (their ports decide its clusters). */
function redisRouteHosts(object: JsonRecord, domain: string): string[] {
  const ns = objectRef(object).namespace;
  const hosts: string[] = [];
  for (const r of asArray(asRecord(object.spec)?.redis) ?? []) {
    const route = asRecord(r);
    const targets = [
      asRecord(route?.route),
      ...(asArray(route?.mirror) ?? []).map((m) => asRecord(asRecord(m)?.route)),
    ];
    for (const t of targets) {
      const h = asString(t?.host);
      if (h !== undefined && h !== '') hosts.push(resolveHost(h, ns, domain));
    }
  }
  return [...new Set(hosts)];
}

/**
 * `exportTo` of a VirtualService or DestinationRule: visible in `namespace`? Unset or `*` means
 * everywhere, `.` the object's own namespace, otherwise the listed namespaces (`~` hides it).
 */
export function visibleIn(object: JsonRecord, namespace: string): boolean {
  const exportTo = asArray(asRecord(object.spec)?.exportTo);
  if (exportTo === undefined || exportTo.length === 0) return true;
  const own = objectRef(object).namespace;
  return exportTo.some((e) => e === '*' || e === namespace || (e === '.' && own === namespace));
}

/** Parts of an object that can change generated output: not status, resourceVersion or managedFields. */
function contentOf(object: JsonRecord | undefined): string {
  if (object === undefined) return '';
  const meta = asRecord(object.metadata) ?? {};
  return canonicalJson({
    labels: meta.labels,
    annotations: meta.annotations,
    creationTimestamp: meta.creationTimestamp,
    spec: object.spec,
    data: object.data,
    stringData: object.stringData,
  });
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

/** What one key holds: a copy per authoritative origin and at most one pending admission change. */
interface Slot {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly layers: Map<Authority, JsonRecord>;
  /** Admission change not yet seen by an authoritative source; `object` undefined = DELETE. */
  pending?: { object: JsonRecord | undefined; since: number; baseVersion: string | undefined };
  /** Kubernetes deleted it: istiod's (lagging) copy must not bring it back. */
  tombstone?: boolean;
  effective?: Entry;
}

/** Where an effective object was indexed, so an update costs what it touches, not the store size. */
interface Filed {
  /** EnvoyFilter: the service key it is recorded for. */
  owner?: string;
  serviceHosts: string[];
  kind?: HostIndexedKind;
  hosts: string[];
  addresses: string[];
  secrets: string[];
  routeHosts: string[];
}

export type ChangeListener = (affectedServiceKeys: ReadonlySet<string>) => void;

/**
 * The config cache: one indexed store fed by several sources (admission, kubernetes, istiod,
 * file). Each change reports the service keys whose EnvoyFilters it can affect; a change that
 * cannot affect output (same content, status only) reports nothing.
 */
export class ConfigStore implements ConfigView {
  private readonly slots = new Map<string, Slot>();
  private readonly servicesByHost = new Map<string, Map<string, ServiceView>>();
  private readonly byHost = new Map<HostIndexedKind, Map<string, Map<string, Entry>>>(
    HOST_INDEXED_KINDS.map((k) => [k, new Map()]),
  );
  private readonly addressOwners = new Map<string, string>();
  /** `ns/name` of a Secret → keys of the Redis CRs reading it. */
  private readonly secretReaders = new Map<string, Map<string, true>>();
  /** Host a RedisService routes to → keys of those RedisServices. */
  private readonly routedBy = new Map<string, Map<string, true>>();
  /** Service key (annotation breeze.io/service) → Breeze's EnvoyFilters recorded for it. */
  private readonly filtersByService = new Map<string, Map<string, Entry>>();
  private readonly filed = new Map<string, Filed>();
  private readonly listeners = new Set<ChangeListener>();
  /** Kind → authoritative origin → when it last reported that kind (a change, a list, progress). */
  private readonly heard = new Map<string, Map<Authority, number>>();

  constructor(
    readonly domain = 'cluster.local',
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    let n = 0;
    for (const s of this.slots.values()) if (s.effective !== undefined) n++;
    return n;
  }

  /** Called with the affected service keys after every change that has any. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(kind: string, namespace: string, name: string): Entry | undefined {
    return this.slots.get(objectKey(kind, namespace, name))?.effective;
  }

  list(kind?: string): Entry[] {
    const out: Entry[] = [];
    for (const s of this.slots.values())
      if (s.effective !== undefined && (kind === undefined || s.kind === kind)) out.push(s.effective);
    return out;
  }

  // ---- feeding ------------------------------------------------------------------------------

  /** Inserts or replaces an object from one origin; returns its key (undefined without kind or name). */
  upsert(object: JsonRecord, origin: Origin): string | undefined {
    const kind = asString(object.kind);
    const ref = objectRef(object);
    if (kind === undefined || ref.name === '') return undefined;
    this.apply(origin, kind, ref.namespace, ref.name, object);
    return objectKey(kind, ref.namespace, ref.name);
  }

  /** Deletes an object at one origin. */
  remove(kind: string, namespace: string, name: string, origin: Origin = 'file'): boolean {
    const had = this.get(kind, namespace, name) !== undefined;
    this.apply(origin, kind, namespace, name, undefined);
    return had;
  }

  /**
   * One change from a source (`object` undefined = deleted there). Admission changes are held as
   * pending until an authoritative source reports that key, or `expirePending` drops them.
   * Returns the affected service keys (also sent to subscribers).
   */
  apply(
    origin: Origin,
    kind: string,
    namespace: string,
    name: string,
    object: JsonRecord | undefined,
    deletedVersion?: string,
  ): ReadonlySet<string> {
    const affected = new Set<string>();
    if (origin !== 'admission') this.hear(origin, kind);
    this.applyOne(origin, kind, namespace, name, object, affected, deletedVersion);
    this.emit(affected);
    return affected;
  }

  /**
   * The complete set of a kind at an authoritative source (list, relist, SotW response): what
   * this origin had of that kind and is not in the set is deleted at that origin.
   */
  replace(origin: Origin, kind: string, objects: readonly JsonRecord[], asOf?: number): ReadonlySet<string> {
    const affected = new Set<string>();
    const present = new Set<string>();
    for (const o of objects) {
      const ref = objectRef(o);
      if (ref.name === '') continue;
      present.add(objectKey(kind, ref.namespace, ref.name));
      this.applyOne(origin, kind, ref.namespace, ref.name, o.kind === kind ? o : { ...o, kind }, affected);
    }
    if (origin !== 'admission') {
      this.hear(origin, kind, asOf);
      for (const [key, slot] of [...this.slots]) {
        if (slot.kind === kind && !present.has(key) && slot.layers.has(origin)) {
          this.applyOne(origin, kind, slot.namespace, slot.name, undefined, affected);
        }
      }
    }
    this.emit(affected);
    return affected;
  }

  /** An authoritative origin is current for `kind` with nothing to report (a watch bookmark). */
  progress(origin: Origin, kind: string): void {
    if (origin !== 'admission') this.hear(origin, kind);
  }

  /** The origin's view of `kind` is current as of `at` (default now); never moves back. */
  private hear(origin: Authority, kind: string, at = this.now()): void {
    let byOrigin = this.heard.get(kind);
    if (byOrigin === undefined) this.heard.set(kind, (byOrigin = new Map<Authority, number>()));
    byOrigin.set(origin, Math.max(at, byOrigin.get(origin) ?? 0));
  }

  /**
   * Drops admission changes older than `graceMs` that nobody confirmed; returns their keys. A
   * change is only dropped once a source of its kind has reported something since it was
   * admitted (so it would have delivered the change had it been persisted): Kubernetes when it
   * serves the kind, else any authoritative source. While that source is silent (a stalled
   * watch, a hung relist) the change is held, for at most
   * `maxHoldMs`. Dropping it then would remove its EnvoyFilters only to write them again when the
   * source catches up. Kinds no authoritative source serves expire after `graceMs`.
   */
  expirePending(graceMs: number, maxHoldMs = 10 * graceMs): { dropped: string[]; held: number } {
    const now = this.now();
    const dropped: string[] = [];
    let held = 0;
    const affected = new Set<string>();
    for (const [key, slot] of [...this.slots]) {
      const pending = slot.pending;
      if (pending === undefined || now - pending.since < graceMs) continue;
      // The API server that called the webhook is the one to persist the change: when Kubernetes
      // serves the kind, only its progress counts (istiod's view of the same cluster lags it).
      const sources = this.heard.get(slot.kind);
      const kubernetes = sources?.get('kubernetes');
      const silent =
        kubernetes !== undefined
          ? kubernetes <= pending.since
          : sources !== undefined && [...sources.values()].every((at) => at <= pending.since);
      if (silent && now - pending.since < maxHoldMs) {
        held++;
        continue;
      }
      slot.pending = undefined;
      dropped.push(key);
      this.settle(key, slot, affected);
    }
    this.emit(affected);
    return { dropped, held };
  }

  /** Keys of admission changes still waiting for confirmation. */
  pendingKeys(): string[] {
    return [...this.slots].filter(([, s]) => s.pending !== undefined).map(([k]) => k);
  }

  private applyOne(
    origin: Origin,
    kind: string,
    namespace: string,
    name: string,
    object: JsonRecord | undefined,
    affected: Set<string>,
    deletedVersion?: string,
  ): void {
    const key = objectKey(kind, namespace, name);
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { kind, namespace, name, layers: new Map() };
      this.slots.set(key, slot);
    }
    if (origin === 'admission') {
      // What the change was based on: the updated object's version, or the deleted one's.
      const base =
        object === undefined ? deletedVersion : asString(asRecord(object.metadata)?.resourceVersion);
      slot.pending = { object, since: this.now(), baseVersion: base };
    } else {
      if (object === undefined) slot.layers.delete(origin);
      else slot.layers.set(origin, object);
      if (origin === 'kubernetes') slot.tombstone = object === undefined;
      if (origin === 'istiod' && object === undefined) slot.tombstone = false;
      // An authoritative report confirms (supersedes) a pending admission change, unless it is
      // the very version the admitted UPDATE was based on (the update is not persisted yet).
      const rv = asString(asRecord(object?.metadata)?.resourceVersion);
      if (slot.pending !== undefined && !(rv !== undefined && rv === slot.pending.baseVersion)) {
        slot.pending = undefined;
      }
    }
    this.settle(key, slot, affected);
  }

  /** Recomputes a key's effective object; re-indexes and reports when its content changed. */
  private settle(key: string, slot: Slot, affected: Set<string>): void {
    const before = slot.effective;
    const next = this.effectiveOf(key, slot);
    slot.effective = next;
    if (next === undefined && slot.layers.size === 0 && slot.pending === undefined) this.slots.delete(key);
    if (contentOf(before?.object) === contentOf(next?.object)) {
      if (next !== undefined && before !== undefined) this.refile(key, next); // same content, fresh object
      return;
    }
    this.collectAffected(before, affected);
    this.unindex(key);
    if (next !== undefined) this.index(next);
    this.collectAffected(next, affected);
  }

  private effectiveOf(key: string, slot: Slot): Entry | undefined {
    const make = (object: JsonRecord, origin: Origin, confirmed: boolean): Entry => ({
      key,
      kind: slot.kind,
      namespace: slot.namespace,
      name: slot.name,
      object,
      origin,
      confirmed,
    });
    if (slot.pending !== undefined) {
      return slot.pending.object === undefined ? undefined : make(slot.pending.object, 'admission', false);
    }
    for (const origin of AUTHORITIES) {
      if (origin === 'istiod' && slot.tombstone === true) continue;
      const o = slot.layers.get(origin);
      if (o !== undefined) return make(o, origin, true);
    }
    return undefined;
  }

  private emit(affected: Set<string>): void {
    if (affected.size === 0) return;
    for (const l of this.listeners) l(affected);
  }

  /** The service keys whose output an object takes part in. */
  private collectAffected(entry: Entry | undefined, affected: Set<string>): void {
    if (entry === undefined) return;
    const filed = this.filed.get(entry.key);
    if (filed === undefined) return;
    if (filed.serviceHosts.length > 0) {
      affected.add(entry.key);
      // RedisServices routing to this service use its ports.
      for (const h of filed.serviceHosts) {
        for (const rs of this.routedBy.get(h)?.keys() ?? []) this.servicesNamedBy(rs, affected);
      }
    }
    if (filed.kind !== undefined) for (const h of filed.hosts) this.servicesOf(h, affected);
    if (entry.kind === 'Secret') {
      for (const reader of this.secretReaders.get(`${entry.namespace}/${entry.name}`)?.keys() ?? []) {
        this.servicesNamedBy(reader, affected);
      }
    }
  }

  private servicesOf(host: string, affected: Set<string>): void {
    for (const k of this.servicesByHost.get(host)?.keys() ?? []) affected.add(k);
  }

  private servicesNamedBy(key: string, affected: Set<string>): void {
    for (const h of this.filed.get(key)?.hosts ?? []) this.servicesOf(h, affected);
  }

  // ---- reading ------------------------------------------------------------------------------

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

  /** The protocol service stored under a key (`ServiceEntry/ns/name`, `Service/ns/name`), if any. */
  protocolService(key: string): ServiceView | undefined {
    const entry = this.slots.get(key)?.effective;
    if (entry === undefined) return undefined;
    const view = serviceViewOf(entry.object, this.domain);
    return view !== undefined && hasProtocolPort(view) ? view : undefined;
  }

  /**
   * Objects of `kind` naming this FQDN, oldest first (see compareEntries); with `fromNamespace`,
   * only those whose exportTo makes them visible there.
   */
  forHost(kind: HostIndexedKind, fqdn: string, fromNamespace?: string): Entry[] {
    const all = [...(this.byHost.get(kind)?.get(fqdn.toLowerCase())?.values() ?? [])];
    const visible = fromNamespace === undefined ? all : all.filter((e) => visibleIn(e.object, fromNamespace));
    return visible.sort(compareEntries);
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

  // ---- indexes ------------------------------------------------------------------------------

  /** EnvoyFilters recorded (annotation breeze.io/service) for a service key. */
  envoyFiltersOf(serviceKey: string): readonly Entry[] {
    return [...(this.filtersByService.get(serviceKey)?.values() ?? [])];
  }

  /** Same content, newer object (e.g. a new resourceVersion): swap it in the indexes in place. */
  private refile(key: string, entry: Entry): void {
    const filed = this.filed.get(key);
    if (filed?.owner !== undefined) this.filtersByService.get(filed.owner)?.set(key, entry);
    if (filed?.kind === undefined) return;
    const index = this.byHost.get(filed.kind);
    for (const h of filed.hosts) index?.get(h)?.set(key, entry);
  }

  private index(entry: Entry): void {
    const at: Filed = { serviceHosts: [], hosts: [], addresses: [], secrets: [], routeHosts: [] };
    this.filed.set(entry.key, at);
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
    if (entry.kind === 'EnvoyFilter') {
      const owner = asString(asRecord(asRecord(entry.object.metadata)?.annotations)?.[OWNER_ANNOTATION]);
      if (owner !== undefined) {
        at.owner = owner;
        getOrCreate(this.filtersByService, owner).set(entry.key, entry);
      }
      return;
    }
    const kind = HOST_INDEXED_KINDS.find((k) => k === entry.kind);
    if (kind === undefined) return;
    at.kind = kind;
    at.hosts = namedHosts(kind, entry.object, this.domain);
    const index = this.byHost.get(kind);
    if (index !== undefined) for (const h of at.hosts) getOrCreate(index, h).set(entry.key, entry);
    at.secrets = referencedSecrets(kind, entry.object);
    for (const s of at.secrets) getOrCreate(this.secretReaders, s).set(entry.key, true);
    if (kind === 'RedisService') {
      at.routeHosts = redisRouteHosts(entry.object, this.domain);
      for (const h of at.routeHosts) getOrCreate(this.routedBy, h).set(entry.key, true);
    }
  }

  private unindex(key: string): void {
    const at = this.filed.get(key);
    if (at === undefined) return;
    this.filed.delete(key);
    for (const h of at.serviceHosts) dropFrom(this.servicesByHost, h, key);
    const index = at.kind === undefined ? undefined : this.byHost.get(at.kind);
    if (index !== undefined) for (const h of at.hosts) dropFrom(index, h, key);
    for (const a of at.addresses) if (this.addressOwners.get(a) === key) this.addressOwners.delete(a);
    for (const s of at.secrets) dropFrom(this.secretReaders, s, key);
    for (const h of at.routeHosts) dropFrom(this.routedBy, h, key);
    if (at.owner !== undefined) dropFrom(this.filtersByService, at.owner, key);
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
