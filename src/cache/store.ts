import { createHash } from 'node:crypto';
import { checkBounds, type BoundsViolation } from '../model/bounds.js';
import {
  asArray,
  asRecord,
  asString,
  canonicalJson,
  jsonLengthAtMost,
  type JsonRecord,
} from '../model/json.js';
import { dataplaneModeOf, MAX_NAMESPACE_NAME_LENGTH, NAMESPACE_KIND } from '../model/ambient.js';
import { objectRef } from '../model/kinds.js';
import { quote } from '../model/limits.js';
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
  /**
   * The `istio.io/dataplane-mode` label of a namespace (`ambient`, `none`...) as the authoritative
   * sources report it; undefined when the namespace has no such label or is not known.
   */
  namespaceDataplaneMode?(namespace: string): string | undefined;
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

/**
 * Digest of the parts of an object that can change generated output (not status, resourceVersion
 * or managedFields); '' for no object. A digest, not the text: the store keeps one per key.
 */
function contentKeyOf(object: JsonRecord | undefined): string {
  if (object === undefined) return '';
  const meta = asRecord(object.metadata) ?? {};
  const text = canonicalJson({
    labels: meta.labels,
    annotations: meta.annotations,
    creationTimestamp: meta.creationTimestamp,
    spec: object.spec,
    data: object.data,
    stringData: object.stringData,
  });
  return createHash('sha256').update(text).digest('base64');
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

interface Pending {
  readonly object: JsonRecord | undefined;
  readonly since: number;
  readonly baseVersion: string | undefined;
}

/** The source-facing state of one key: what a change replaces as a whole. */
interface SlotState {
  readonly layers: ReadonlyMap<Authority, JsonRecord>;
  /** Admission change not yet seen by an authoritative source; `object` undefined = DELETE. */
  readonly pending: Pending | undefined;
  /** Kubernetes deleted it: istiod's (lagging) copy must not bring it back. */
  readonly tombstone: boolean;
}

/** What one key holds: a copy per authoritative origin and at most one pending admission change. */
interface Slot {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  state: SlotState;
  effective?: Entry;
  /** contentKeyOf(effective?.object), computed when it was committed. */
  contentKey: string;
}

/** A key's next effective entry with everything derived from it, computed before any commit. */
interface Plan {
  readonly effective: Entry | undefined;
  readonly contentKey: string;
  /** Index data of `effective` (addresses are candidates: the first claimant keeps an address). */
  readonly filed: Filed | undefined;
  readonly service: ServiceView | undefined;
}

/** An object a source delivered that the store did not take (its previous version is kept). */
export interface Rejection {
  readonly origin: Origin;
  /** `Kind/namespace/name`, the name cut to MAX_QUOTED_LENGTH. */
  readonly key: string;
  /** metadata.resourceVersion, cut to MAX_QUOTED_LENGTH; undefined when it has none. */
  readonly version: string | undefined;
  /** Field path of the offending value ('' when the whole object failed). */
  readonly path: string;
  readonly message: string;
}

export interface StoreHooks {
  /**
   * An object was not taken into the cache: over the bounds of model/bounds.ts, or a step that
   * derives data from it failed. Called once per object version and origin (repeats of the same
   * rejection, e.g. on a relist, are not reported again).
   */
  readonly onRejected?: (rejection: Rejection) => void;
  /** A change listener threw; the store state is already consistent. */
  readonly onListenerError?: (err: unknown) => void;
}

/** Distinct (origin, key) rejections remembered for "report once"; the oldest is forgotten first. */
const MAX_REMEMBERED_REJECTIONS = 10_000;

/**
 * Largest object taken from admission (local mode's fast path), in characters of its JSON: 256 KiB,
 * 14 times the largest document of the Istio and Aeraki corpus (18 KiB). Taking one in costs a
 * canonical serialization and a digest on the request path (about 70 ms for 1 MiB here), so a
 * larger one is left to its source of record (the file, or the API server), which delivers it.
 */
export const MAX_ADMITTED_JSON_LENGTH = 256 * 1024;

/** Where an effective object was indexed, so an update costs what it touches, not the store size. */
interface Filed {
  /** EnvoyFilter: the service key it is recorded for. */
  owner?: string;
  serviceHosts: string[];
  kind?: HostIndexedKind;
  hosts: string[];
  addresses: string[];
  /** Addresses claimed in the confirmed-only index (a confirmed entry's). */
  confirmedAddresses?: string[];
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
  /** The same for confirmed entries only (VIP allocation: a pending admission owns nothing). */
  private readonly confirmedAddressOwners = new Map<string, string>();
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
  /** `origin key` → fingerprint of the last rejection reported for it. */
  private readonly rejected = new Map<string, string>();
  /**
   * Namespace name → authoritative origin → its `istio.io/dataplane-mode` label: all the store
   * keeps of a Namespace (namespaces without the label are not held at all).
   */
  private readonly dataplaneModes = new Map<string, Map<Authority, string>>();
  /** Namespace → keys of the protocol services in it (a label flip affects exactly those). */
  private readonly servicesByNamespace = new Map<string, Map<string, true>>();

  constructor(
    readonly domain = 'cluster.local',
    private readonly now: () => number = Date.now,
    private readonly hooks: StoreHooks = {},
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
    if (kind === NAMESPACE_KIND) return this.applyNamespaces(origin, [[name, object]], false);
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
    if (kind === NAMESPACE_KIND)
      return this.applyNamespaces(
        origin,
        objects.map((o) => [objectRef(o).name, o]),
        true,
        asOf,
      );
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
        if (slot.kind === kind && !present.has(key) && slot.state.layers.has(origin)) {
          this.applyOne(origin, kind, slot.namespace, slot.name, undefined, affected);
        }
      }
    }
    this.emit(affected);
    return affected;
  }

  /**
   * Namespaces from one origin (cluster-scoped: keyed by name). Only their dataplane-mode label is
   * kept; a change of the effective label affects the protocol services of that namespace (their
   * generation notes change). `complete`: the origin's whole set (a list), what it held and is
   * missing is deleted. Admission never reports namespaces (ignored).
   */
  private applyNamespaces(
    origin: Origin,
    namespaces: readonly (readonly [string, JsonRecord | undefined])[],
    complete: boolean,
    asOf?: number,
  ): ReadonlySet<string> {
    const affected = new Set<string>();
    if (origin === 'admission') return affected;
    this.hear(origin, NAMESPACE_KIND, asOf);
    const present = new Set<string>();
    for (const [name, object] of namespaces) {
      if (name === '') continue;
      if (name.length > MAX_NAMESPACE_NAME_LENGTH) {
        const message = `a namespace name has at most ${MAX_NAMESPACE_NAME_LENGTH} characters`;
        this.reject(origin, NAMESPACE_KIND, '', name, object, { path: 'metadata.name', message });
        continue;
      }
      present.add(name);
      this.setDataplaneMode(
        origin,
        name,
        object === undefined ? undefined : dataplaneModeOf(object),
        affected,
      );
    }
    if (complete) {
      for (const [name, byOrigin] of [...this.dataplaneModes])
        if (byOrigin.has(origin) && !present.has(name))
          this.setDataplaneMode(origin, name, undefined, affected);
    }
    this.emit(affected);
    return affected;
  }

  private setDataplaneMode(
    origin: Authority,
    namespace: string,
    mode: string | undefined,
    affected: Set<string>,
  ): void {
    const before = this.namespaceDataplaneMode(namespace);
    let byOrigin = this.dataplaneModes.get(namespace);
    if (mode === undefined) {
      byOrigin?.delete(origin);
      if (byOrigin?.size === 0) this.dataplaneModes.delete(namespace);
    } else {
      if (byOrigin === undefined)
        this.dataplaneModes.set(namespace, (byOrigin = new Map<Authority, string>()));
      byOrigin.set(origin, mode);
    }
    if (this.namespaceDataplaneMode(namespace) === before) return;
    for (const key of this.servicesByNamespace.get(namespace)?.keys() ?? []) affected.add(key);
  }

  /** The namespace's `istio.io/dataplane-mode` label from the strongest origin that reports it. */
  namespaceDataplaneMode(namespace: string): string | undefined {
    const byOrigin = this.dataplaneModes.get(namespace);
    if (byOrigin === undefined) return undefined;
    for (const origin of AUTHORITIES) {
      const mode = byOrigin.get(origin);
      if (mode !== undefined) return mode;
    }
    return undefined;
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
      const pending = slot.state.pending;
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
      // Falls back to what the authoritative sources hold (accepted before, so it plans).
      if (this.transition(key, slot, { ...slot.state, pending: undefined }, 'admission', affected))
        dropped.push(key);
    }
    this.emit(affected);
    return { dropped, held };
  }

  /**
   * The same admission change again: when `object` (the very reference a caller applied) is still
   * this key's pending change, its grace period restarts now, which is all apply() would change
   * for an identical object, and it returns true. Otherwise (another change, a confirmation or
   * nothing pending) it changes nothing and returns false: the caller applies the change in full.
   */
  refreshPending(kind: string, namespace: string, name: string, object: JsonRecord): boolean {
    const slot = this.slots.get(objectKey(kind, namespace, name));
    const pending = slot?.state.pending;
    if (slot === undefined || pending === undefined || pending.object !== object) return false;
    slot.state = { ...slot.state, pending: { ...pending, since: this.now() } };
    return true;
  }

  /** Keys of admission changes still waiting for confirmation. */
  pendingKeys(): string[] {
    return [...this.slots].filter(([, s]) => s.state.pending !== undefined).map(([k]) => k);
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
    // Nothing changes before the object is known to be within bounds: a hostile object (a
    // 20,000-deep field, a 100 MB string) never reaches the code that walks it recursively.
    if (object !== undefined) {
      // A change seen only at admission is a hint that its source of record confirms later: a
      // large one is left to that source (issue 11), see MAX_ADMITTED_JSON_LENGTH.
      if (origin === 'admission' && !jsonLengthAtMost(object, MAX_ADMITTED_JSON_LENGTH)) {
        this.reject(origin, kind, namespace, name, object, {
          path: '',
          message: `is larger than ${MAX_ADMITTED_JSON_LENGTH} characters of JSON, more than the admission fast path takes: its source of record (the file, or the API server) delivers it`,
        });
        return;
      }
      const violation = checkBounds(object);
      if (violation !== undefined) {
        this.reject(origin, kind, namespace, name, object, violation);
        return;
      }
    }
    const slot = this.slots.get(key) ?? {
      kind,
      namespace,
      name,
      state: { layers: new Map(), pending: undefined, tombstone: false },
      contentKey: '',
    };
    const state = slot.state;
    let next: SlotState;
    if (origin === 'admission') {
      // What the change was based on: the updated object's version, or the deleted one's.
      const base =
        object === undefined ? deletedVersion : asString(asRecord(object.metadata)?.resourceVersion);
      next = { ...state, pending: { object, since: this.now(), baseVersion: base } };
    } else {
      const layers = new Map(state.layers);
      if (object === undefined) layers.delete(origin);
      else layers.set(origin, object);
      let tombstone = state.tombstone;
      if (origin === 'kubernetes') tombstone = object === undefined;
      if (origin === 'istiod' && object === undefined) tombstone = false;
      // An authoritative report confirms (supersedes) a pending admission change, unless it is
      // the very version the admitted UPDATE was based on (the update is not persisted yet).
      const rv = asString(asRecord(object?.metadata)?.resourceVersion);
      const pending =
        state.pending !== undefined && !(rv !== undefined && rv === state.pending.baseVersion)
          ? undefined
          : state.pending;
      next = { layers, pending, tombstone };
    }
    if (this.transition(key, slot, next, origin, affected, object)) {
      if (this.rejected.size > 0) this.rejected.delete(rejectionId(origin, kind, namespace, name));
    }
  }

  /**
   * Moves a key to a new state: first computes everything that can fail (the effective entry,
   * its content key, its index data), then commits with plain map updates. When a step fails,
   * nothing changes (the previous version stays), the failure is reported, and it returns false.
   */
  private transition(
    key: string,
    slot: Slot,
    next: SlotState,
    origin: Origin,
    affected: Set<string>,
    object?: JsonRecord,
  ): boolean {
    let plan: Plan;
    try {
      const effective = this.effectiveOf(key, slot, next);
      const contentKey = contentKeyOf(effective?.object);
      // Same content: the indexes stay, unless it just became confirmed (or stopped being).
      const reindex =
        effective !== undefined &&
        (contentKey !== slot.contentKey || effective.confirmed !== slot.effective?.confirmed);
      const derived = reindex ? this.indexDataOf(effective) : undefined;
      plan = { effective, contentKey, filed: derived?.filed, service: derived?.service };
    } catch (err) {
      const message = `could not be read: ${quote(err instanceof Error ? err.message : String(err))}`;
      this.reject(origin, slot.kind, slot.namespace, slot.name, object, { path: '', message });
      return false;
    }
    // ---- commit: nothing below throws ----
    const before = slot.effective;
    slot.state = next;
    slot.effective = plan.effective;
    const changed = slot.contentKey !== plan.contentKey;
    slot.contentKey = plan.contentKey;
    if (plan.effective === undefined && next.layers.size === 0 && next.pending === undefined)
      this.slots.delete(key);
    else this.slots.set(key, slot);
    if (!changed) {
      if (plan.effective === undefined || before === undefined) return true;
      if (plan.filed === undefined)
        this.refile(key, plan.effective); // fresh object, same indexes
      else {
        // Confirmed (or back to pending) with the same content: nothing to regenerate.
        this.unindex(key);
        this.index(plan.effective, plan);
      }
      return true;
    }
    this.collectAffected(before, affected);
    this.unindex(key);
    if (plan.effective !== undefined && plan.filed !== undefined) this.index(plan.effective, plan);
    this.collectAffected(plan.effective, affected);
    return true;
  }

  /** Reports a rejected object once per version and origin (never its body). */
  private reject(
    origin: Origin,
    kind: string,
    namespace: string,
    name: string,
    object: JsonRecord | undefined,
    violation: BoundsViolation,
  ): void {
    const key = objectKey(kind, cut(namespace), cut(name));
    const rv = asString(asRecord(object?.metadata)?.resourceVersion);
    const version = rv === undefined ? undefined : cut(rv);
    const fingerprint = `${version ?? ''}\n${violation.path}\n${violation.message}`;
    const id = rejectionId(origin, kind, namespace, name);
    if (this.rejected.get(id) === fingerprint) return;
    this.rejected.delete(id);
    this.rejected.set(id, fingerprint);
    if (this.rejected.size > MAX_REMEMBERED_REJECTIONS) {
      const oldest = this.rejected.keys().next().value;
      if (oldest !== undefined) this.rejected.delete(oldest);
    }
    try {
      this.hooks.onRejected?.({ origin, key, version, path: violation.path, message: violation.message });
    } catch {
      // a reporting hook must not break the store
    }
  }

  private effectiveOf(key: string, slot: Slot, state: SlotState): Entry | undefined {
    const make = (object: JsonRecord, origin: Origin, confirmed: boolean): Entry => ({
      key,
      kind: slot.kind,
      namespace: slot.namespace,
      name: slot.name,
      object,
      origin,
      confirmed,
    });
    if (state.pending !== undefined) {
      return state.pending.object === undefined ? undefined : make(state.pending.object, 'admission', false);
    }
    for (const origin of AUTHORITIES) {
      if (origin === 'istiod' && state.tombstone) continue;
      const o = state.layers.get(origin);
      if (o !== undefined) return make(o, origin, true);
    }
    return undefined;
  }

  private emit(affected: Set<string>): void {
    if (affected.size === 0) return;
    for (const l of this.listeners) {
      try {
        l(affected);
      } catch (err) {
        try {
          this.hooks.onListenerError?.(err);
        } catch {
          // nothing left to report to
        }
      }
    }
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

  /**
   * The key of the ServiceEntry using this address when an authoritative source holds it (an
   * admission change still pending does not own an address): what VIP allocation respects.
   */
  confirmedAddressOwner(address: string): string | undefined {
    return this.confirmedAddressOwners.get(address);
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

  /** Everything `index` files an entry under, computed without touching the indexes. */
  private indexDataOf(entry: Entry): { filed: Filed; service: ServiceView | undefined } {
    const at: Filed = { serviceHosts: [], hosts: [], addresses: [], secrets: [], routeHosts: [] };
    const service = serviceViewOf(entry.object, this.domain);
    if (service !== undefined) {
      if (entry.kind === 'ServiceEntry') at.addresses.push(...service.addresses);
      if (hasProtocolPort(service)) at.serviceHosts.push(...service.hosts);
      return { filed: at, service };
    }
    if (entry.kind === 'EnvoyFilter') {
      const owner = asString(asRecord(asRecord(entry.object.metadata)?.annotations)?.[OWNER_ANNOTATION]);
      if (owner !== undefined) at.owner = owner;
      return { filed: at, service };
    }
    const kind = HOST_INDEXED_KINDS.find((k) => k === entry.kind);
    if (kind === undefined) return { filed: at, service };
    at.kind = kind;
    at.hosts = namedHosts(kind, entry.object, this.domain);
    at.secrets = referencedSecrets(kind, entry.object);
    if (kind === 'RedisService') at.routeHosts = redisRouteHosts(entry.object, this.domain);
    return { filed: at, service };
  }

  /** Files an entry under the index data its plan computed (map updates only). */
  private index(entry: Entry, plan: Plan): void {
    const planned = plan.filed;
    if (planned === undefined) return;
    const at: Filed = { ...planned, addresses: [] };
    this.filed.set(entry.key, at);
    // The first claimant of an address keeps it.
    for (const a of planned.addresses) {
      if (this.addressOwners.has(a)) continue;
      this.addressOwners.set(a, entry.key);
      at.addresses.push(a);
    }
    if (entry.confirmed) {
      at.confirmedAddresses = [];
      for (const a of planned.addresses) {
        if (this.confirmedAddressOwners.has(a)) continue;
        this.confirmedAddressOwners.set(a, entry.key);
        at.confirmedAddresses.push(a);
      }
    }
    if (plan.service !== undefined) {
      for (const h of at.serviceHosts) getOrCreate(this.servicesByHost, h).set(entry.key, plan.service);
    }
    if (at.serviceHosts.length > 0)
      getOrCreate(this.servicesByNamespace, entry.namespace).set(entry.key, true);
    if (at.owner !== undefined) getOrCreate(this.filtersByService, at.owner).set(entry.key, entry);
    const index = at.kind === undefined ? undefined : this.byHost.get(at.kind);
    if (index !== undefined) for (const h of at.hosts) getOrCreate(index, h).set(entry.key, entry);
    for (const s of at.secrets) getOrCreate(this.secretReaders, s).set(entry.key, true);
    for (const h of at.routeHosts) getOrCreate(this.routedBy, h).set(entry.key, true);
  }

  private unindex(key: string): void {
    const at = this.filed.get(key);
    if (at === undefined) return;
    this.filed.delete(key);
    for (const h of at.serviceHosts) dropFrom(this.servicesByHost, h, key);
    if (at.serviceHosts.length > 0) dropFrom(this.servicesByNamespace, key.split('/')[1] ?? '', key);
    const index = at.kind === undefined ? undefined : this.byHost.get(at.kind);
    if (index !== undefined) for (const h of at.hosts) dropFrom(index, h, key);
    for (const a of at.addresses) if (this.addressOwners.get(a) === key) this.addressOwners.delete(a);
    for (const a of at.confirmedAddresses ?? [])
      if (this.confirmedAddressOwners.get(a) === key) this.confirmedAddressOwners.delete(a);
    for (const s of at.secrets) dropFrom(this.secretReaders, s, key);
    for (const h of at.routeHosts) dropFrom(this.routedBy, h, key);
    if (at.owner !== undefined) dropFrom(this.filtersByService, at.owner, key);
  }
}

/** A name or version as reported: at most 100 characters of it. */
function cut(v: string): string {
  return v.length > 100 ? `${v.slice(0, 100)}...` : v;
}

function rejectionId(origin: Origin, kind: string, namespace: string, name: string): string {
  return `${origin} ${objectKey(kind, cut(namespace), cut(name))}`;
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
