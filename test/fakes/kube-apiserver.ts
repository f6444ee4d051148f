// An in-process Kubernetes API server for tests, with real REST semantics over node:http.
//
// What it does, as the real one does:
// - one cluster-wide resourceVersion counter; objects stored per group/resource and served in
//   every served version of that group (apiVersion rewritten, like a CRD with conversion None);
// - list (label and field selectors, limit/continue, resourceVersion + resourceVersionMatch=Exact
//   answered from history), get (404 Status), create (201, 409 AlreadyExists), update (409
//   Conflict on a stale resourceVersion), delete (404 when absent, preconditions), patch
//   (merge-patch, json-patch, strategic-merge as merge, server-side apply), `/status` subresource,
//   dryRun=All;
// - watch (?watch=1): newline-delimited JSON ADDED/MODIFIED/DELETED/BOOKMARK/ERROR events, from a
//   resourceVersion (replayed from history), selector-aware (an object leaving the selection is
//   DELETED, entering it ADDED), allowWatchBookmarks, timeoutSeconds; a resourceVersion older than
//   the compaction floor gets an ERROR event carrying a 410 Expired Status;
// - discovery: /api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>, with the served
//   versions of each group configurable.
//
// Admission: the Mutating/ValidatingWebhookConfigurations stored in the fake are honoured on
// every write (see admission-chain.ts); the requesting user is the bearer token `fake:<username>`
// (kubeConfig(user) makes one) and is recorded per request.
//
// Test hooks: compact(), dropWatches(), silenceWatches(), injectFault(), put/remove with
// `emit: false` (a change no watch ever reports), a request log and the open-watch count.
//
// Simplifications: namespaces need not exist; server-side apply merges (and removes what the same
// manager applied before and no longer applies) but does not detect conflicts between managers or
// compute managedFields.fieldsV1; strategic merge patch is treated as a merge patch; list items
// never carry apiVersion/kind (the real server omits them for built-in kinds).
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { AdmissionChain, AdmissionRejection, type AdmissionOperation } from './admission-chain.js';
import { CrdSchemas } from './crd-schema.js';
import {
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
  type FieldSelector,
  type LabelSelector,
} from './selectors.js';

type JsonRecord = Record<string, unknown>;

/** One resource type the server knows. Objects are shared across `versions`. */
export interface ResourceDef {
  /** '' for the core group. */
  readonly group: string;
  /** Versions the resource exists in, preferred first. */
  readonly versions: readonly string[];
  /** Plural, lowercase: the path segment. */
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Has a `status` subresource: main-resource writes keep status, status writes touch only it. */
  readonly status?: boolean;
}

const ISTIO = 'networking.istio.io';
const ISTIO_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'];

/** Core kinds plus everything Breeze reads or writes. */
export const DEFAULT_RESOURCES: readonly ResourceDef[] = [
  { group: '', versions: ['v1'], resource: 'namespaces', kind: 'Namespace', namespaced: false, status: true },
  { group: '', versions: ['v1'], resource: 'services', kind: 'Service', namespaced: true, status: true },
  { group: '', versions: ['v1'], resource: 'secrets', kind: 'Secret', namespaced: true },
  { group: '', versions: ['v1'], resource: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: '', versions: ['v1'], resource: 'events', kind: 'Event', namespaced: true },
  { group: 'events.k8s.io', versions: ['v1'], resource: 'events', kind: 'Event', namespaced: true },
  { group: 'coordination.k8s.io', versions: ['v1'], resource: 'leases', kind: 'Lease', namespaced: true },
  {
    group: ISTIO,
    versions: ISTIO_VERSIONS,
    resource: 'serviceentries',
    kind: 'ServiceEntry',
    namespaced: true,
    status: true,
  },
  {
    group: ISTIO,
    versions: ISTIO_VERSIONS,
    resource: 'virtualservices',
    kind: 'VirtualService',
    namespaced: true,
    status: true,
  },
  {
    group: ISTIO,
    versions: ISTIO_VERSIONS,
    resource: 'destinationrules',
    kind: 'DestinationRule',
    namespaced: true,
    status: true,
  },
  {
    group: ISTIO,
    versions: ['v1alpha3'],
    resource: 'envoyfilters',
    kind: 'EnvoyFilter',
    namespaced: true,
    status: true,
  },
  {
    group: 'redis.aeraki.io',
    versions: ['v1alpha1'],
    resource: 'redisservices',
    kind: 'RedisService',
    namespaced: true,
    status: true,
  },
  {
    group: 'admissionregistration.k8s.io',
    versions: ['v1'],
    resource: 'mutatingwebhookconfigurations',
    kind: 'MutatingWebhookConfiguration',
    namespaced: false,
  },
  {
    group: 'admissionregistration.k8s.io',
    versions: ['v1'],
    resource: 'validatingwebhookconfigurations',
    kind: 'ValidatingWebhookConfiguration',
    namespaced: false,
  },
  {
    group: 'redis.aeraki.io',
    versions: ['v1alpha1'],
    resource: 'redisdestinations',
    kind: 'RedisDestination',
    namespaced: true,
    status: true,
  },
];

/** A request the server answers with an error instead of serving it. */
export interface Fault {
  /**
   * HTTP status to answer (500, 429, 503, 410 ...), or 'hang': accept the request and never
   * answer (no headers), as a stuck API server or proxy does; close() ends it.
   */
  readonly status: number | 'hang';
  /** How many matching requests fail; default 1. */
  readonly count?: number;
  readonly method?: string;
  /** Matched against the path (no query): a prefix string or a RegExp. */
  readonly path?: string | RegExp;
  /** Only watch requests (true) or only non-watch requests (false); default both. */
  readonly watch?: boolean;
  /** Sent as Retry-After (429 and 503 carry one on the real server). */
  readonly retryAfterSeconds?: number;
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly watch: boolean;
  /** Date.now() at arrival. */
  readonly at: number;
  /** performance.now() at arrival. */
  readonly startedAt: number;
  /** The User-Agent header ('' without one): tells apart the clients of one server. */
  readonly userAgent: string;
  /** Who made it: `fake:<username>` bearer tokens name the user; none is system:anonymous. */
  readonly user: string;
  status: number;
  /** performance.now() when the answer was complete (0 until then). */
  doneAt: number;
}

export interface FakeKubeApiServerOptions {
  readonly resources?: readonly ResourceDef[];
  /**
   * CustomResourceDefinition YAML texts whose schemas every written object of their kinds must
   * pass (see crd-schema.ts). Default: Istio 1.24.6's networking CRDs (test/fixtures/crds/, as
   * Istio ships them) and Breeze's own (charts/breeze/crds/). `[]`: no schema checks.
   */
  readonly crds?: readonly string[];
  /** Period of BOOKMARK events on watches that allow them; default 1000 ms. */
  readonly bookmarkIntervalMs?: number;
}

/** Options of the direct (not over HTTP) writes. */
export interface WriteOptions {
  /** false: change the state (and resourceVersion) without any watch ever reporting it. */
  readonly emit?: boolean;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HistoryEvent {
  readonly rv: number;
  readonly typeKey: string;
  readonly type: EventType;
  readonly key: string;
  /** The new state; for DELETED the last state, carrying the deletion's resourceVersion. */
  readonly object: JsonRecord;
  readonly old: JsonRecord | undefined;
  readonly hidden: boolean;
}

interface TypeState {
  readonly def: ResourceDef;
  readonly key: string;
  /** namespace/name → stored object (never mutated in place). */
  readonly objects: Map<string, JsonRecord>;
}

interface Watcher {
  readonly type: TypeState;
  readonly version: string;
  readonly namespace: string | undefined;
  readonly labels: LabelSelector;
  readonly fields: FieldSelector;
  readonly res: ServerResponse;
  silent: boolean;
  readonly timers: NodeJS.Timeout[];
}

interface Target {
  readonly type: TypeState;
  readonly version: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details?: JsonRecord,
  ) {
    super(message);
  }
}

/** A `kind: Status` failure body as the API server sends it. */
export function statusBody(code: number, reason: string, message: string, details?: JsonRecord): JsonRecord {
  // As the real server encodes it: an empty reason is left out (omitempty).
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    ...(reason === '' ? {} : { reason }),
    ...(details === undefined ? {} : { details }),
    code,
  };
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

function isRecord(v: unknown): v is JsonRecord {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function meta(obj: JsonRecord): JsonRecord {
  if (!isRecord(obj.metadata)) obj.metadata = {};
  return obj.metadata as JsonRecord;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function labelsOf(obj: JsonRecord): Record<string, string> {
  const l = isRecord(obj.metadata) ? obj.metadata.labels : undefined;
  const out: Record<string, string> = {};
  if (isRecord(l)) for (const [k, v] of Object.entries(l)) if (typeof v === 'string') out[k] = v;
  return out;
}

function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return structuredClone(patch);
  const out: JsonRecord = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) Reflect.deleteProperty(out, k);
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Removes from `target` the object keys present in `before` and absent from `after` (arrays atomic). */
function removeDropped(target: JsonRecord, before: JsonRecord, after: JsonRecord): void {
  for (const [k, v] of Object.entries(before)) {
    if (!Object.hasOwn(after, k)) Reflect.deleteProperty(target, k);
    else if (isRecord(v) && isRecord(after[k]) && isRecord(target[k])) removeDropped(target[k], v, after[k]);
  }
}

function specOf(obj: JsonRecord): string {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return JSON.stringify(rest);
}

/** The user a request authenticates as when it carries no `fake:<username>` bearer token. */
export const ANONYMOUS = 'system:anonymous';
/** The user of kubeConfig() without arguments. */
export const ADMIN = 'kubernetes-admin';

/** A KubeConfig for a plain-http server; the bearer token names the user to the fake. */
export function kubeConfigFor(server: string, user = ADMIN): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server, skipTLSVerify: true }],
    users: [{ name: 'fake', token: `fake:${user}` }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake', namespace: 'default' }],
    currentContext: 'fake',
  });
  return kc;
}

export class FakeKubeApiServer {
  /** Period of BOOKMARK events for watches started from now on. */
  bookmarkIntervalMs: number;
  /** Every request answered, oldest first. */
  readonly requests: RequestRecord[] = [];

  private readonly types = new Map<string, TypeState>();
  private readonly served = new Map<string, readonly string[]>();
  private readonly history: HistoryEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly faults: { fault: Fault; left: number }[] = [];
  /** Last applied configuration per object and field manager (server-side apply). */
  private readonly applied = new Map<string, JsonRecord>();
  private inFlight = 0;
  private readonly endpoints = new Map<string, string>();
  /** Calls the webhooks the stored webhook configurations select. */
  readonly admission = new AdmissionChain({
    resolveService: (namespace, name) => this.endpoints.get(`${namespace}/${name}`),
  });
  private rv = 1;
  private floor = 0;
  private readonly server: Server;
  /** The schemas written objects are pruned by and checked against. */
  readonly schemas = new CrdSchemas();
  /** True while the would-be object of an admitted write is computed: pruned, not yet validated. */
  private candidate = false;

  private constructor(opts: FakeKubeApiServerOptions) {
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 1000;
    for (const def of opts.resources ?? DEFAULT_RESOURCES) this.register(def);
    for (const text of opts.crds ?? defaultCrds()) this.schemas.load(text);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.send(res, 500, statusBody(500, 'InternalError', String(err)));
      });
    });
  }

  /** Starts a server on 127.0.0.1 with an ephemeral port. */
  static async start(opts: FakeKubeApiServerOptions = {}): Promise<FakeKubeApiServer> {
    const s = new FakeKubeApiServer(opts);
    s.server.listen(0, '127.0.0.1');
    await once(s.server, 'listening');
    return s;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** A KubeConfig pointing at this server (http), authenticating as `user`. */
  kubeConfig(user = ADMIN): KubeConfig {
    return kubeConfigFor(this.url, user);
  }

  /** Where a Service's endpoints listen ("host:port"), for webhooks with clientConfig.service. */
  serviceEndpoint(namespace: string, name: string, address: string | undefined): void {
    if (address === undefined) this.endpoints.delete(`${namespace}/${name}`);
    else this.endpoints.set(`${namespace}/${name}`, address);
  }

  /** The current (latest) cluster-wide resourceVersion. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** Adds a resource type (any group/version/resource). */
  register(def: ResourceDef): void {
    const key = `${def.group}/${def.resource}`;
    if (!this.types.has(key)) this.types.set(key, { def, key, objects: new Map() });
  }

  /** Serves only these versions of a group (discovery and requests); undefined: every version. */
  serveVersions(group: string, versions: readonly string[] | undefined): void {
    if (versions === undefined) this.served.delete(group);
    else this.served.set(group, [...versions]);
  }

  /** Versions of a group as served, preferred first. */
  servedVersions(group: string): string[] {
    const all: string[] = [];
    for (const t of this.types.values())
      if (t.def.group === group) for (const v of t.def.versions) if (!all.includes(v)) all.push(v);
    const only = this.served.get(group);
    return only === undefined ? all : all.filter((v) => only.includes(v));
  }

  // ---- direct access (no HTTP) ---------------------------------------------------------------

  /** Creates or replaces an object (by apiVersion, kind, namespace, name); returns the stored copy. */
  put(object: JsonRecord, opts: WriteOptions = {}): JsonRecord {
    const { type, version } = this.typeOfObject(object);
    const m = isRecord(object.metadata) ? object.metadata : {};
    const name = str(m.name) ?? '';
    const namespace = type.def.namespaced ? (str(m.namespace) ?? 'default') : '';
    const key = objectKey(namespace, name);
    const existing = type.objects.get(key);
    const next = structuredClone(object);
    const nm = meta(next);
    nm.name = name;
    if (type.def.namespaced) nm.namespace = namespace;
    else delete nm.namespace;
    delete nm.resourceVersion;
    nm.uid = existing === undefined ? randomUUID() : meta(existing).uid;
    nm.creationTimestamp =
      existing === undefined ? (str(m.creationTimestamp) ?? timestamp()) : meta(existing).creationTimestamp;
    nm.generation = existing === undefined ? 1 : this.nextGeneration(existing, next);
    return this.view(type, this.commit(type, key, next, opts.emit === false), version);
  }

  /** Deletes an object; false when there was none. */
  remove(
    apiVersion: string,
    kind: string,
    namespace: string,
    name: string,
    opts: WriteOptions = {},
  ): boolean {
    const { type } = this.typeOfObject({ apiVersion, kind });
    const key = objectKey(type.def.namespaced ? namespace : '', name);
    if (!type.objects.has(key)) return false;
    this.commit(type, key, undefined, opts.emit === false);
    return true;
  }

  get(apiVersion: string, kind: string, namespace: string, name: string): JsonRecord | undefined {
    const { type, version } = this.typeOfObject({ apiVersion, kind });
    const o = type.objects.get(objectKey(type.def.namespaced ? namespace : '', name));
    return o === undefined ? undefined : this.view(type, o, version);
  }

  list(apiVersion: string, kind: string): JsonRecord[] {
    const { type, version } = this.typeOfObject({ apiVersion, kind });
    return [...type.objects.keys()].sort().map((k) => this.view(type, type.objects.get(k) ?? {}, version));
  }

  // ---- test hooks ----------------------------------------------------------------------------

  /**
   * Forgets history up to `upTo` (default: now): a watch or an exact list from an older
   * resourceVersion then gets 410 Expired, as after etcd compaction.
   */
  compact(upTo = this.rv): void {
    this.floor = Math.max(this.floor, Math.min(upTo, this.rv));
    let i = 0;
    while (i < this.history.length && (this.history[i]?.rv ?? Infinity) <= this.floor) i++;
    this.history.splice(0, i);
  }

  /** Ends every open watch cleanly (the client sees the stream close); returns how many. */
  dropWatches(resource?: string): number {
    let n = 0;
    for (const w of [...this.watchers]) {
      if (resource !== undefined && w.type.def.resource !== resource) continue;
      this.endWatch(w);
      n++;
    }
    return n;
  }

  /**
   * Makes every open watch go silent: connected, but no events and no bookmarks ever again.
   * Watches opened afterwards are normal. Returns how many.
   */
  silenceWatches(resource?: string): number {
    let n = 0;
    for (const w of this.watchers) {
      if (resource !== undefined && w.type.def.resource !== resource) continue;
      w.silent = true;
      n++;
    }
    return n;
  }

  /** The next `count` requests matching `fault` answer with its status. */
  injectFault(fault: Fault): void {
    this.faults.push({ fault, left: fault.count ?? 1 });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Open watch connections, optionally of one resource (plural). */
  openWatches(resource?: string): number {
    let n = 0;
    for (const w of this.watchers) if (resource === undefined || w.type.def.resource === resource) n++;
    return n;
  }

  /** Requests not answered yet or still streaming (watches, hung requests). */
  openRequests(): number {
    return this.inFlight;
  }

  /** Requests whose path starts with `prefix` (and, if given, that were watches or not). */
  requestsTo(prefix: string, watch?: boolean): RequestRecord[] {
    return this.requests.filter(
      (r) => r.path.startsWith(prefix) && (watch === undefined || r.watch === watch),
    );
  }

  async close(): Promise<void> {
    for (const w of [...this.watchers]) this.endWatch(w);
    const closed = once(this.server, 'close');
    this.server.close();
    this.server.closeAllConnections();
    await closed;
  }

  // ---- storage -------------------------------------------------------------------------------

  private typeOfObject(obj: JsonRecord): { type: TypeState; version: string } {
    const apiVersion = str(obj.apiVersion) ?? '';
    const slash = apiVersion.indexOf('/');
    const group = slash < 0 ? '' : apiVersion.slice(0, slash);
    const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
    for (const t of this.types.values())
      if (t.def.group === group && t.def.kind === obj.kind && t.def.versions.includes(version))
        return { type: t, version };
    throw new Error(`fake apiserver: unknown ${apiVersion} ${String(obj.kind)}`);
  }

  private apiVersionOf(def: ResourceDef, version: string): string {
    return def.group === '' ? version : `${def.group}/${version}`;
  }

  /** A copy of an object of `type` as served in `version` (list items carry no type meta). */
  private view(type: TypeState, obj: JsonRecord, version: string, withTypeMeta = true): JsonRecord {
    const { apiVersion: _a, kind: _k, ...rest } = structuredClone(obj);
    if (!withTypeMeta) return rest;
    return { apiVersion: this.apiVersionOf(type.def, version), kind: type.def.kind, ...rest };
  }

  private nextGeneration(existing: JsonRecord, next: JsonRecord): number {
    const g = typeof meta(existing).generation === 'number' ? (meta(existing).generation as number) : 1;
    return specOf(existing) === specOf(next) ? g : g + 1;
  }

  /** Stores (or deletes, `next` undefined) with a new resourceVersion, records and reports it. */
  private commit(type: TypeState, key: string, next: JsonRecord | undefined, hidden: boolean): JsonRecord {
    const old = type.objects.get(key);
    const rv = ++this.rv;
    let stored: JsonRecord;
    let eventType: EventType;
    if (next === undefined) {
      if (old === undefined) throw new Error(`fake apiserver: delete of absent ${key}`);
      stored = structuredClone(old);
      type.objects.delete(key);
      eventType = 'DELETED';
    } else {
      stored = structuredClone(next);
      // Stored objects keep the apiVersion of their first version, so `view` can find the type.
      stored.apiVersion = this.apiVersionOf(type.def, type.def.versions[0] ?? 'v1');
      stored.kind = type.def.kind;
      type.objects.set(key, stored);
      eventType = old === undefined ? 'ADDED' : 'MODIFIED';
    }
    meta(stored).resourceVersion = String(rv);
    const event: HistoryEvent = { rv, typeKey: type.key, type: eventType, key, object: stored, old, hidden };
    this.history.push(event);
    if (!hidden) for (const w of this.watchers) if (w.type === type && !w.silent) this.deliver(w, event);
    return stored;
  }

  /** The objects of a type as they were at `rv` (which must not be older than the floor). */
  private stateAt(type: TypeState, rv: number): Map<string, JsonRecord> {
    const state = new Map(type.objects);
    for (let i = this.history.length - 1; i >= 0; i--) {
      const e = this.history[i];
      if (e === undefined || e.rv <= rv) break;
      if (e.typeKey !== type.key) continue;
      if (e.old === undefined) state.delete(e.key);
      else state.set(e.key, e.old);
    }
    return state;
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  private send(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    const earlier = res.getHeader('Warning');
    if (typeof earlier === 'string' && earlier !== '')
      headers = {
        ...headers,
        Warning: headers.Warning === undefined ? earlier : `${earlier}, ${headers.Warning}`,
      };
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(text);
  }

  private takeFault(method: string, path: string, watch: boolean): Fault | undefined {
    for (const f of this.faults) {
      const { fault } = f;
      if (fault.method !== undefined && fault.method.toUpperCase() !== method) continue;
      if (fault.watch !== undefined && fault.watch !== watch) continue;
      if (typeof fault.path === 'string' && !path.startsWith(fault.path)) continue;
      if (fault.path instanceof RegExp && !fault.path.test(path)) continue;
      f.left--;
      if (f.left <= 0) this.faults.splice(this.faults.indexOf(f), 1);
      return fault;
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = (req.method ?? 'GET').toUpperCase();
    const query = Object.fromEntries(url.searchParams);
    const watch = method === 'GET' && (query.watch === '1' || query.watch === 'true');
    const bearer = /^Bearer fake:(.+)$/.exec(req.headers.authorization ?? '');
    const record: RequestRecord = {
      method,
      path: url.pathname,
      query,
      watch,
      at: Date.now(),
      startedAt: performance.now(),
      userAgent: req.headers['user-agent'] ?? '',
      user: bearer?.[1] ?? ANONYMOUS,
      status: 0,
      doneAt: 0,
    };
    this.requests.push(record);
    this.inFlight++;
    res.on('close', () => this.inFlight--);
    res.on('finish', () => {
      record.status = res.statusCode;
      record.doneAt = performance.now();
    });
    res.on('close', () => {
      if (record.status === 0) record.status = res.statusCode;
    });

    const fault = this.takeFault(method, url.pathname, watch);
    if (fault?.status === 'hang') return;
    if (fault !== undefined) {
      const headers: Record<string, string> =
        fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(fault.retryAfterSeconds) };
      const reason = REASONS[fault.status] ?? 'Unknown';
      this.send(res, fault.status, statusBody(fault.status, reason, `injected fault: ${reason}`), headers);
      return;
    }
    try {
      const discovery = this.discovery(url.pathname);
      if (discovery !== undefined) {
        if (method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', 'discovery is read-only');
        this.send(res, 200, discovery);
        return;
      }
      const target = this.resolve(url.pathname);
      const body = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method) ? await readBody(req) : '';
      const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
      if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
        const unknown = this.fieldValidation(target, method, contentType, body, url.searchParams);
        if (unknown.length > 0) res.setHeader('Warning', warningHeader(unknown).Warning ?? '');
      }
      if (method !== 'GET' && this.admits(target))
        await this.routeAdmitted(method, target, url.searchParams, req, res, body, record.user);
      else await this.route(method, target, url.searchParams, req, res, body);
    } catch (err) {
      if (err instanceof AdmissionRejection)
        this.send(
          res,
          err.status,
          statusBody(err.status, err.reason, err.message, err.details),
          warningHeader(err.warnings),
        );
      else if (err instanceof HttpError)
        this.send(res, err.status, statusBody(err.status, err.reason, err.message, err.details));
      else if (err instanceof SelectorError) this.send(res, 400, statusBody(400, 'BadRequest', err.message));
      else throw err;
    }
  }

  private async route(
    method: string,
    target: Target,
    query: URLSearchParams,
    req: IncomingMessage,
    res: ServerResponse,
    body: string,
  ): Promise<void> {
    const dryRun = query.get('dryRun') === 'All';
    if (target.name === undefined) {
      if (method === 'GET' && (query.get('watch') === '1' || query.get('watch') === 'true')) {
        this.watch(target, query, req, res);
        return;
      }
      if (method === 'GET') return this.send(res, 200, this.listResponse(target, query));
      if (method === 'POST') {
        const created = this.create(target, parseJson(body), dryRun);
        return this.send(res, 201, created);
      }
      throw new HttpError(405, 'MethodNotAllowed', `${method} is not supported on a collection`);
    }
    if (target.subresource !== undefined && target.subresource !== 'status')
      throw new HttpError(404, 'NotFound', `the server could not find the requested resource`);
    switch (method) {
      case 'GET':
        return this.send(res, 200, this.view(target.type, this.existing(target), target.version));
      case 'PUT':
        return this.send(res, 200, this.update(target, parseJson(body), dryRun));
      case 'DELETE':
        return this.send(res, 200, this.delete(target, body, dryRun));
      case 'PATCH': {
        const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
        const { status, object } = this.patch(target, contentType, body, query, dryRun);
        return this.send(res, status, object);
      }
      default:
        throw new HttpError(405, 'MethodNotAllowed', `${method} is not supported`);
    }
  }

  /** The webhook configurations stored now. */
  private webhookConfigurations(): { mutating: JsonRecord[]; validating: JsonRecord[] } {
    const all = (resource: string): JsonRecord[] => [
      ...(this.types.get(`admissionregistration.k8s.io/${resource}`)?.objects.values() ?? []),
    ];
    return {
      mutating: all('mutatingwebhookconfigurations'),
      validating: all('validatingwebhookconfigurations'),
    };
  }

  /** Writes to this target go through admission (webhook configurations themselves never do). */
  private admits(target: Target): boolean {
    if (target.type.def.group === 'admissionregistration.k8s.io') return false;
    const c = this.webhookConfigurations();
    return c.mutating.length + c.validating.length > 0;
  }

  private namespaceLabels(namespace: string | undefined): Record<string, string> {
    if (namespace === undefined) return {};
    const ns = this.types.get('/namespaces')?.objects.get(objectKey('', namespace));
    return { ...(ns === undefined ? {} : labelsOf(ns)), 'kubernetes.io/metadata.name': namespace };
  }

  /**
   * A write through admission, as the real server does it: the would-be object is computed (as a
   * dry run), mutated and validated by the webhooks, then persisted; an update whose object changed
   * meanwhile is retried from the start (the API server's GuaranteedUpdate loop).
   */
  private async routeAdmitted(
    method: string,
    target: Target,
    query: URLSearchParams,
    req: IncomingMessage,
    res: ServerResponse,
    body: string,
    user: string,
  ): Promise<void> {
    const dryRun = query.get('dryRun') === 'All';
    const configurations = this.webhookConfigurations();
    const d = target.type.def;
    const admit = (
      operation: AdmissionOperation,
      name: string,
      object: JsonRecord | undefined,
      oldObject: JsonRecord | undefined,
    ) =>
      this.admission.admit(
        configurations,
        {
          group: d.group,
          version: target.version,
          resource: d.resource,
          kind: d.kind,
          namespaced: d.namespaced,
          servedVersions: this.servedVersions(d.group).filter((v) => d.versions.includes(v)),
          subresource: target.subresource,
          namespace: target.namespace,
          name,
          operation,
          object,
          oldObject,
          dryRun,
          username: user,
          namespaceLabels: this.namespaceLabels(target.namespace),
        },
        (o) => this.checkSchema(target, o, name, oldObject),
      );
    const warn = warningHeader;
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    const key = target.name === undefined ? undefined : this.keyOf(target, target.name);
    const creates =
      (method === 'POST' && target.name === undefined) ||
      (method === 'PATCH' &&
        contentType === 'application/apply-patch+yaml' &&
        key !== undefined &&
        !target.type.objects.has(key));
    if (creates) {
      const candidate = this.asCandidate(() =>
        method === 'POST'
          ? this.create(target, parseJson(body), true)
          : this.patch(target, contentType, body, query, true).object,
      );
      const name = str(meta(candidate).name) ?? '';
      const { object, warnings } = await admit('CREATE', name, candidate, undefined);
      const created = this.create(target, object ?? candidate, dryRun);
      return this.send(res, 201, created, warn(warnings));
    }
    if (target.name === undefined) return this.route(method, target, query, req, res, body);
    if (method === 'DELETE') {
      const existing = this.view(target.type, this.existing(target), target.version);
      const { warnings } = await admit('DELETE', target.name, undefined, existing);
      return this.send(res, 200, this.delete(target, body, dryRun), warn(warnings));
    }
    if (method !== 'PUT' && method !== 'PATCH') return this.route(method, target, query, req, res, body);
    for (let attempt = 0; ; attempt++) {
      const before = this.existing(target);
      const candidate = this.asCandidate(() =>
        method === 'PUT'
          ? this.update(target, parseJson(body), true)
          : this.patch(target, contentType, body, query, true).object,
      );
      const oldObject = this.view(target.type, before, target.version);
      const { object, warnings } = await admit('UPDATE', target.name, candidate, oldObject);
      const current = this.existing(target);
      if (current !== before) {
        if (attempt < 5) continue; // changed while the webhooks ran: start over on the new state
        throw this.conflict(target, target.name);
      }
      const next = structuredClone(object ?? candidate);
      meta(next).resourceVersion = meta(current).resourceVersion;
      return this.send(res, 200, this.replaceExisting(target, current, next, dryRun), warn(warnings));
    }
  }

  private discovery(path: string): JsonRecord | undefined {
    const seg = path.split('/').filter((s) => s !== '');
    if (seg.length === 1 && seg[0] === 'api')
      return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
    if (seg.length === 2 && seg[0] === 'api') return this.resourceList('', seg[1] ?? '');
    if (seg.length === 1 && seg[0] === 'apis') {
      const groups = [...new Set([...this.types.values()].map((t) => t.def.group))].filter((g) => g !== '');
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: groups.map((g) => this.group(g)).filter((g) => g !== undefined),
      };
    }
    if (seg.length === 2 && seg[0] === 'apis') {
      const g = this.group(seg[1] ?? '');
      if (g === undefined)
        throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
      return g;
    }
    if (seg.length === 3 && seg[0] === 'apis') return this.resourceList(seg[1] ?? '', seg[2] ?? '');
    return undefined;
  }

  private group(name: string): JsonRecord | undefined {
    const versions = this.servedVersions(name);
    if (versions.length === 0) return undefined;
    const gv = (v: string): JsonRecord => ({ groupVersion: `${name}/${v}`, version: v });
    return {
      kind: 'APIGroup',
      apiVersion: 'v1',
      name,
      versions: versions.map(gv),
      preferredVersion: gv(versions[0] ?? ''),
    };
  }

  private resourceList(group: string, version: string): JsonRecord {
    if (!this.servedVersions(group).includes(version))
      throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    const resources: JsonRecord[] = [];
    for (const t of this.types.values()) {
      const d = t.def;
      if (d.group !== group || !d.versions.includes(version)) continue;
      resources.push({
        name: d.resource,
        singularName: d.kind.toLowerCase(),
        namespaced: d.namespaced,
        kind: d.kind,
        verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
      });
      if (d.status === true)
        resources.push({
          name: `${d.resource}/status`,
          singularName: '',
          namespaced: d.namespaced,
          kind: d.kind,
          verbs: ['get', 'patch', 'update'],
        });
    }
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: group === '' ? version : `${group}/${version}`,
      resources,
    };
  }

  /** Maps a resource path to its type, namespace, name and subresource; 404 when unknown. */
  private resolve(path: string): Target {
    const notFound = new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    const seg = path
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (seg[0] === 'api') [group, version, rest] = ['', seg[1] ?? '', seg.slice(2)];
    else if (seg[0] === 'apis') [group, version, rest] = [seg[1] ?? '', seg[2] ?? '', seg.slice(3)];
    else throw notFound;
    if (!this.servedVersions(group).includes(version)) throw notFound;
    const find = (resource: string | undefined): TypeState | undefined => {
      const t = this.types.get(`${group}/${resource ?? ''}`);
      return t !== undefined && t.def.versions.includes(version) ? t : undefined;
    };
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && find(rest[2])?.def.namespaced === true) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const type = find(rest[0]);
    if (type === undefined || rest.length > 3) throw notFound;
    if (type.def.namespaced && rest.length > 1 && namespace === undefined) throw notFound;
    return { type, version, namespace, name: rest[1], subresource: rest[2] };
  }

  private selectorsOf(query: URLSearchParams): { labels: LabelSelector; fields: FieldSelector } {
    return {
      labels: parseLabelSelector(query.get('labelSelector')),
      fields: parseFieldSelector(query.get('fieldSelector')),
    };
  }

  private matches(
    obj: JsonRecord,
    namespace: string | undefined,
    labels: LabelSelector,
    fields: FieldSelector,
  ): boolean {
    const m = meta(obj);
    const ns = str(m.namespace) ?? '';
    if (namespace !== undefined && ns !== namespace) return false;
    return matchesLabels(labels, labelsOf(obj)) && matchesFields(fields, str(m.name) ?? '', ns);
  }

  private listResponse(target: Target, query: URLSearchParams): JsonRecord {
    const { type, version, namespace } = target;
    const { labels, fields } = this.selectorsOf(query);
    const expired = (what: string): HttpError =>
      new HttpError(410, 'Expired', `${what} is too old: the resourceVersion has been compacted`);
    let at = this.rv;
    let after = '';
    const cont = query.get('continue');
    const rvParam = query.get('resourceVersion') ?? '';
    if (cont !== null && cont !== '') {
      let token: { rv?: unknown; after?: unknown };
      try {
        token = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as typeof token;
      } catch {
        throw new HttpError(400, 'BadRequest', 'continue key is not valid');
      }
      at = typeof token.rv === 'number' ? token.rv : 0;
      after = typeof token.after === 'string' ? token.after : '';
      if (at < this.floor) throw expired('The provided continue parameter');
    } else if (query.get('resourceVersionMatch') === 'Exact') {
      const n = Number(rvParam);
      if (!Number.isInteger(n) || n <= 0)
        throw new HttpError(400, 'BadRequest', 'resourceVersion is required for Exact');
      if (n < this.floor) throw expired(`resourceVersion ${rvParam}`);
      if (n > this.rv) throw new HttpError(504, 'Timeout', `Too large resource version: ${rvParam}`);
      at = n;
    }
    const state = at === this.rv ? type.objects : this.stateAt(type, at);
    const keys = [...state.keys()].filter((k) => k > after).sort();
    const limitParam = Number(query.get('limit') ?? '0');
    const limit = Number.isInteger(limitParam) && limitParam > 0 ? limitParam : Infinity;
    const items: JsonRecord[] = [];
    let last = '';
    let more = false;
    for (const k of keys) {
      const o = state.get(k);
      if (o === undefined || !this.matches(o, namespace, labels, fields)) continue;
      if (items.length >= limit) {
        more = true;
        break;
      }
      items.push(this.view(type, o, version, false));
      last = k;
    }
    const metadata: JsonRecord = { resourceVersion: String(at) };
    if (more) metadata.continue = Buffer.from(JSON.stringify({ rv: at, after: last })).toString('base64url');
    return {
      apiVersion: this.apiVersionOf(type.def, version),
      kind: `${type.def.kind}List`,
      metadata,
      items,
    };
  }

  private watch(target: Target, query: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    const { labels, fields } = this.selectorsOf(query);
    const w: Watcher = {
      type: target.type,
      version: target.version,
      namespace: target.namespace,
      labels,
      fields,
      res,
      silent: false,
      timers: [],
    };
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const rvParam = query.get('resourceVersion') ?? '';
    if (rvParam === '' || rvParam === '0') {
      for (const k of [...target.type.objects.keys()].sort()) {
        const o = target.type.objects.get(k);
        if (o !== undefined && this.matches(o, w.namespace, labels, fields)) this.write(w, 'ADDED', o);
      }
    } else {
      const from = Number(rvParam);
      if (!Number.isInteger(from) || from < this.floor) {
        const message = `too old resource version: ${rvParam} (${this.floor + 1})`;
        res.end(`${JSON.stringify({ type: 'ERROR', object: statusBody(410, 'Expired', message) })}\n`);
        return;
      }
      for (const e of this.history)
        if (e.rv > from && e.typeKey === target.type.key && !e.hidden) this.deliver(w, e);
    }
    this.watchers.add(w);
    const cleanup = (): void => {
      this.watchers.delete(w);
      for (const t of w.timers) clearTimeout(t);
    };
    res.on('close', cleanup);
    req.on('close', cleanup);
    if (query.get('allowWatchBookmarks') === 'true' || query.get('allowWatchBookmarks') === '1') {
      const timer = setInterval(() => {
        if (w.silent) return;
        const bookmark = {
          kind: target.type.def.kind,
          apiVersion: this.apiVersionOf(target.type.def, w.version),
          metadata: { resourceVersion: String(this.rv) },
        };
        this.writeLine(w, { type: 'BOOKMARK', object: bookmark });
      }, this.bookmarkIntervalMs);
      timer.unref();
      w.timers.push(timer);
    }
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '0');
    if (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) {
      const timer = setTimeout(() => this.endWatch(w), timeoutSeconds * 1000);
      timer.unref();
      w.timers.push(timer);
    }
  }

  private endWatch(w: Watcher): void {
    this.watchers.delete(w);
    for (const t of w.timers) clearTimeout(t);
    if (!w.res.writableEnded) w.res.end();
  }

  /** Sends one history event to a watcher, translated by its selectors. */
  private deliver(w: Watcher, e: HistoryEvent): void {
    const inNew = e.type !== 'DELETED' && this.matches(e.object, w.namespace, w.labels, w.fields);
    const inOld = e.old !== undefined && this.matches(e.old, w.namespace, w.labels, w.fields);
    if (e.type === 'DELETED') {
      if (inOld) this.write(w, 'DELETED', e.object);
    } else if (inNew) this.write(w, inOld ? 'MODIFIED' : 'ADDED', e.object);
    else if (inOld) this.write(w, 'DELETED', e.object);
  }

  private write(w: Watcher, type: EventType, obj: JsonRecord): void {
    this.writeLine(w, { type, object: this.view(w.type, obj, w.version) });
  }

  private writeLine(w: Watcher, event: JsonRecord): void {
    if (w.res.writableEnded || w.res.destroyed) return;
    w.res.write(`${JSON.stringify(event)}\n`);
  }

  // ---- writes over HTTP ----------------------------------------------------------------------

  /** Runs `compute` (synchronous) as the computation of an admitted write's would-be object. */
  private asCandidate<T>(compute: () => T): T {
    this.candidate = true;
    try {
      return compute();
    } finally {
      this.candidate = false;
    }
  }

  /**
   * The object as the real server stores it: pruned of what its version's CRD schema does not
   * declare, and (once the mutating webhooks have run) validated: 422 Invalid with one cause per
   * violation, as the real server answers.
   */
  private checkSchema(target: Target, obj: JsonRecord, name: string, old?: JsonRecord): JsonRecord {
    const d = target.type.def;
    const result = this.schemas.check(d.group, d.kind, target.version, obj, old);
    if (result === undefined) return obj;
    if (!this.candidate && result.causes.length > 0) {
      const listed = result.causes.map((c) => `${c.field}: ${c.message}`);
      const all = listed.length === 1 ? (listed[0] ?? '') : `[${listed.join(', ')}]`;
      throw new HttpError(422, 'Invalid', `${d.kind}.${d.group} ${JSON.stringify(name)} is invalid: ${all}`, {
        name,
        group: d.group,
        kind: d.kind,
        causes: result.causes,
      });
    }
    return result.object;
  }

  /**
   * Unknown fields of a write's body, as the real server's field validation treats them: Strict
   * refuses the request (400), Warn (the default) answers with a warning each, Ignore says nothing.
   */
  private fieldValidation(
    target: Target,
    method: string,
    contentType: string,
    body: string,
    query: URLSearchParams,
  ): string[] {
    const d = target.type.def;
    const mode = query.get('fieldValidation') ?? 'Warn';
    if (mode === 'Ignore' || target.subresource !== undefined) return [];
    const jsonBody = method === 'POST' || method === 'PUT' || contentType === 'application/merge-patch+json';
    if (!jsonBody && contentType !== 'application/apply-patch+yaml') return [];
    let parsed: unknown;
    try {
      parsed = jsonBody ? JSON.parse(body) : parseYaml(body);
    } catch {
      return []; // the write itself answers 400
    }
    if (!isRecord(parsed)) return [];
    const unknown = this.schemas.check(d.group, d.kind, target.version, parsed)?.unknown ?? [];
    if (unknown.length === 0) return [];
    const fields = unknown.map((u) => `unknown field ${JSON.stringify(u)}`);
    if (mode === 'Strict')
      throw new HttpError(400, 'BadRequest', `strict decoding error: ${fields.join(', ')}`);
    return fields;
  }

  private keyOf(target: Target, name: string): string {
    return objectKey(target.type.def.namespaced ? (target.namespace ?? '') : '', name);
  }

  private existing(target: Target): JsonRecord {
    const o = target.type.objects.get(this.keyOf(target, target.name ?? ''));
    if (o === undefined) throw this.notFound(target, target.name ?? '');
    return o;
  }

  private qualified(target: Target): string {
    const d = target.type.def;
    return d.group === '' ? d.resource : `${d.resource}.${d.group}`;
  }

  private notFound(target: Target, name: string): HttpError {
    return new HttpError(404, 'NotFound', `${this.qualified(target)} "${name}" not found`);
  }

  private conflict(target: Target, name: string): HttpError {
    return new HttpError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${this.qualified(target)} "${name}": the object has been modified; ` +
        'please apply your changes to the latest version and try again',
    );
  }

  private checkTypeMeta(target: Target, body: JsonRecord): void {
    const want = this.apiVersionOf(target.type.def, target.version);
    if (body.apiVersion !== undefined && body.apiVersion !== want)
      throw new HttpError(
        400,
        'BadRequest',
        `the API version in the data (${JSON.stringify(body.apiVersion)}) does not match the expected API version (${want})`,
      );
    if (body.kind !== undefined && body.kind !== target.type.def.kind)
      throw new HttpError(
        400,
        'BadRequest',
        `the kind in the data (${JSON.stringify(body.kind)}) does not match the expected kind (${target.type.def.kind})`,
      );
  }

  private create(target: Target, body: JsonRecord, dryRun: boolean): JsonRecord {
    this.checkTypeMeta(target, body);
    const obj = structuredClone(body);
    const m = meta(obj);
    let name = str(m.name) ?? '';
    if (name === '') {
      const prefix = str(m.generateName);
      if (prefix === undefined || prefix === '')
        throw new HttpError(
          422,
          'Invalid',
          'metadata.name: Required value: name or generateName is required',
        );
      name = prefix + randomBytes(3).toString('hex').slice(0, 5);
    }
    if (target.type.def.namespaced) {
      const ns = str(m.namespace);
      if (target.namespace === undefined)
        throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
      if (ns !== undefined && ns !== '' && ns !== target.namespace)
        throw new HttpError(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      m.namespace = target.namespace;
    }
    m.name = name;
    const key = this.keyOf(target, name);
    if (target.type.objects.has(key))
      throw new HttpError(409, 'AlreadyExists', `${this.qualified(target)} "${name}" already exists`);
    delete m.resourceVersion;
    m.uid = randomUUID();
    m.creationTimestamp = timestamp();
    m.generation = 1;
    if (target.type.def.status === true) delete obj.status;
    const checked = this.checkSchema(target, obj, name);
    if (dryRun) return this.view(target.type, checked, target.version);
    return this.view(target.type, this.commit(target.type, key, checked, false), target.version);
  }

  /** Replaces an existing object with `next` (already merged for patches); the shared write path. */
  private replaceExisting(
    target: Target,
    existing: JsonRecord,
    next: JsonRecord,
    dryRun: boolean,
  ): JsonRecord {
    const name = target.name ?? '';
    const nm = meta(next);
    const em = meta(existing);
    if (str(nm.name) !== undefined && nm.name !== name)
      throw new HttpError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
    const rv = str(nm.resourceVersion);
    if (rv !== undefined && rv !== '' && rv !== em.resourceVersion) throw this.conflict(target, name);
    let result: JsonRecord;
    if (target.subresource === 'status') {
      result = { ...structuredClone(existing), status: structuredClone(next.status) };
      if (next.status === undefined) delete result.status;
    } else {
      result = structuredClone(next);
      if (target.type.def.status === true) {
        if (existing.status === undefined) delete result.status;
        else result.status = structuredClone(existing.status);
      }
      const rm = meta(result);
      rm.name = name;
      rm.uid = em.uid;
      rm.creationTimestamp = em.creationTimestamp;
      if (target.type.def.namespaced) rm.namespace = em.namespace;
      rm.generation = this.nextGeneration(existing, result);
    }
    delete meta(result).resourceVersion;
    result = this.checkSchema(target, result, name, existing);
    const key = this.keyOf(target, name);
    if (dryRun) {
      meta(result).resourceVersion = em.resourceVersion;
      return this.view(target.type, result, target.version);
    }
    return this.view(target.type, this.commit(target.type, key, result, false), target.version);
  }

  private update(target: Target, body: JsonRecord, dryRun: boolean): JsonRecord {
    this.checkTypeMeta(target, body);
    return this.replaceExisting(target, this.existing(target), body, dryRun);
  }

  private delete(target: Target, body: string, dryRun: boolean): JsonRecord {
    const existing = this.existing(target);
    const options = body.trim() === '' ? {} : parseJson(body);
    const pre = isRecord(options.preconditions) ? options.preconditions : {};
    const em = meta(existing);
    if (
      (pre.resourceVersion !== undefined && pre.resourceVersion !== em.resourceVersion) ||
      (pre.uid !== undefined && pre.uid !== em.uid)
    )
      throw this.conflict(target, target.name ?? '');
    if (!dryRun) this.commit(target.type, this.keyOf(target, target.name ?? ''), undefined, false);
    const d = target.type.def;
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name: target.name, group: d.group, kind: d.resource, uid: em.uid },
    };
  }

  private patch(
    target: Target,
    contentType: string,
    body: string,
    query: URLSearchParams,
    dryRun: boolean,
  ): { status: number; object: JsonRecord } {
    const name = target.name ?? '';
    if (contentType === 'application/apply-patch+yaml') return this.apply(target, body, query, dryRun);
    const existing = this.existing(target);
    const current = this.view(target.type, existing, target.version);
    let next: JsonRecord;
    if (
      contentType === 'application/merge-patch+json' ||
      contentType === 'application/strategic-merge-patch+json'
    ) {
      const patch = parseJson(body);
      next = mergePatch(current, patch) as JsonRecord;
      // resourceVersion in a patch is a precondition; without one the patch applies to the latest.
      const prv = isRecord(patch.metadata) ? str(patch.metadata.resourceVersion) : undefined;
      if (prv === undefined) delete meta(next).resourceVersion;
    } else if (contentType === 'application/json-patch+json') {
      let ops: unknown;
      try {
        ops = JSON.parse(body);
      } catch {
        throw new HttpError(400, 'BadRequest', 'the body is not valid JSON');
      }
      if (!Array.isArray(ops))
        throw new HttpError(400, 'BadRequest', 'a JSON patch must be an array of operations');
      try {
        next = fastJsonPatch.applyPatch(current, ops as Operation[], true, false).newDocument;
      } catch (err) {
        throw new HttpError(422, 'Invalid', `the JSON patch cannot be applied: ${(err as Error).message}`);
      }
      if (meta(next).resourceVersion === meta(current).resourceVersion) delete meta(next).resourceVersion;
    } else {
      throw new HttpError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
      );
    }
    if (target.subresource !== 'status' && !isRecord(next.metadata)) next.metadata = { name };
    return { status: 200, object: this.replaceExisting(target, existing, next, dryRun) };
  }

  /** Server-side apply: create when absent, else merge, recording the field manager. */
  private apply(
    target: Target,
    body: string,
    query: URLSearchParams,
    dryRun: boolean,
  ): { status: number; object: JsonRecord } {
    const manager = query.get('fieldManager') ?? '';
    if (manager === '')
      throw new HttpError(
        422,
        'Invalid',
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
      );
    let config: unknown;
    try {
      config = parseYaml(body);
    } catch {
      throw new HttpError(400, 'BadRequest', 'the body is not valid YAML or JSON');
    }
    if (!isRecord(config)) throw new HttpError(400, 'BadRequest', 'an apply configuration must be an object');
    this.checkTypeMeta(target, config);
    const name = target.name ?? '';
    const cm = meta(config);
    if (str(cm.name) !== undefined && cm.name !== name)
      throw new HttpError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
    delete cm.managedFields;
    const entry = {
      manager,
      operation: 'Apply',
      apiVersion: this.apiVersionOf(target.type.def, target.version),
      time: timestamp(),
      fieldsType: 'FieldsV1',
      fieldsV1: {},
      ...(target.subresource === undefined ? {} : { subresource: target.subresource }),
    };
    const appliedKey = `${target.type.key}/${this.keyOf(target, name)}/${manager}/${target.subresource ?? ''}`;
    const existing = target.type.objects.get(this.keyOf(target, name));
    if (existing === undefined) {
      if (target.subresource !== undefined) throw this.notFound(target, name);
      const obj = structuredClone(config);
      meta(obj).name = name;
      meta(obj).managedFields = [entry];
      const created = this.create(target, obj, dryRun);
      if (!dryRun) this.applied.set(appliedKey, structuredClone(config));
      return { status: 201, object: created };
    }
    const current = this.view(target.type, existing, target.version);
    const before = this.applied.get(appliedKey);
    if (before !== undefined) removeDropped(current, before, config);
    const next = mergePatch(current, config) as JsonRecord;
    if (str(cm.resourceVersion) === undefined) delete meta(next).resourceVersion;
    const others = (
      Array.isArray(meta(current).managedFields) ? (meta(current).managedFields as unknown[]) : []
    ).filter(
      (f) =>
        !(
          isRecord(f) &&
          f.manager === manager &&
          f.operation === 'Apply' &&
          f.subresource === entry.subresource
        ),
    );
    meta(next).managedFields = [...others, entry];
    const object = this.replaceExisting(target, existing, next, dryRun);
    if (!dryRun) this.applied.set(appliedKey, structuredClone(config));
    return { status: 200, object };
  }
}

let crdTexts: string[] | undefined;

/** Istio 1.24.6's networking CRDs as Istio ships them, and Breeze's own (read once per process). */
export function defaultCrds(): string[] {
  crdTexts ??= [
    '../fixtures/crds/istio-1.24.6-networking-crds.yaml',
    '../../charts/breeze/crds/redisservice.yaml',
    '../../charts/breeze/crds/redisdestination.yaml',
  ].map((p) => readFileSync(new URL(p, import.meta.url), 'utf8'));
  return crdTexts;
}

/** Webhook warnings as the API server sends them: `Warning: 299 - "<text>"`, comma-separated. */
function warningHeader(warnings: readonly string[]): Record<string, string> {
  return warnings.length === 0
    ? {}
    : { Warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(body: string): JsonRecord {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'BadRequest', 'the body is not valid JSON');
  }
  if (!isRecord(v)) throw new HttpError(400, 'BadRequest', 'the body must be a JSON object');
  return v;
}
