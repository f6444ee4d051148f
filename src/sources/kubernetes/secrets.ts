/**
 * The Secrets Redis CRs name, read one by one.
 *
 * Breeze never lists or watches Secrets. It GETs exactly the Secrets a RedisService
 * (`spec.settings.auth.secret.name`) or a RedisDestination
 * (`spec.trafficPolicy.connectionPool.redis.auth.secret.name`) names, in that object's namespace,
 * as soon as the reference appears, and again every `refreshMs` to pick up rotated passwords.
 * The RBAC this needs is `get` on `secrets`: no `list`, no `watch`, so Breeze cannot enumerate
 * Secrets (Aeraki asks for the same, `""/secrets: get`). An operator can narrow it further with
 * namespaced Roles (only namespaces holding Redis CRs) or `resourceNames`. A 403 is logged once
 * per Secret and read as "no such Secret", so a missing grant shows up as a generation problem
 * naming the Secret rather than a stuck source.
 *
 * The cost of not watching: a changed password reaches Envoy within `refreshMs` (default 60 s)
 * rather than at once; a new or changed reference is read at once.
 */
import { asRecord, asString, type JsonRecord } from '../../model/json.js';
import { authModeOf, DEFAULT_REDIS_AUTH_MODE } from '../../protocols/redis/authmode.js';
import type { Logger } from '../../telemetry/logger.js';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import { isKubeApiError } from './rest.js';
import { describeError } from './watch.js';

export interface SecretRef {
  readonly namespace: string;
  readonly name: string;
}

/**
 * The Secrets one RedisService or RedisDestination names (in its own namespace) and Breeze must
 * read: none when the object chooses file mode (`breeze.io/redis-auth-mode: file`), where Envoy
 * reads the mounted Secret and Breeze never needs the password. (With `--redis-auth-mode file`
 * and no annotation the Secret is still read, and not used; without the RBAC grant that is one
 * 403 logged per Secret and nothing else.)
 */
export function secretRefs(kind: string, object: JsonRecord): SecretRef[] {
  const meta = asRecord(object.metadata);
  if (authModeOf(object, DEFAULT_REDIS_AUTH_MODE) === 'file') return [];
  const namespace = asString(meta?.namespace) ?? 'default';
  const spec = asRecord(object.spec);
  let auth: JsonRecord | undefined;
  if (kind === 'RedisService') auth = asRecord(asRecord(spec?.settings)?.auth);
  else if (kind === 'RedisDestination')
    auth = asRecord(asRecord(asRecord(asRecord(spec?.trafficPolicy)?.connectionPool)?.redis)?.auth);
  const name = asString(asRecord(auth?.secret)?.name);
  return name === undefined || name === '' ? [] : [{ namespace, name }];
}

export interface SecretTrackerDeps {
  /** GETs `/api/v1/namespaces/<ns>/secrets/<name>`; rejects with KubeApiError on non-2xx. */
  readonly get: (path: string, signal: AbortSignal) => Promise<JsonRecord>;
  readonly logger: Logger;
  readonly refreshMs: number;
  readonly backoff: BackoffOptions;
  readonly apply: (namespace: string, name: string, secret: JsonRecord | undefined) => void;
  readonly replace: (secrets: JsonRecord[]) => void;
}

function keyOf(ref: SecretRef): string {
  return `${ref.namespace}/${ref.name}`;
}

function refOf(key: string): SecretRef {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * Keeps the referenced Secrets delivered: owners (Redis CRs, by kind/namespace/name) declare
 * references; newly referenced Secrets are read at once, all of them every `refreshMs`; a Secret
 * no longer referenced is withdrawn from the sink. Synced once the owners are known
 * (`ownersKnown`) and every Secret they name has been read once.
 */
export class SecretTracker {
  /** Owner key → the Secret keys it references. */
  private readonly owners = new Map<string, readonly string[]>();
  /** Secret key → the Secret as delivered. */
  private readonly cache = new Map<string, JsonRecord>();
  private readonly dirty = new Set<string>();
  private readonly forbidden = new Set<string>();
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private pumping: Promise<void> | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private ownersReady = false;
  /** A full round (initial or refresh) is in progress: deliver the whole set when it drains. */
  private roundPending = false;
  private isSynced = false;
  private failures = 0;
  private readonly syncWaiters: (() => void)[] = [];
  /** Counters for logs, metrics and tests. */
  readonly stats = { gets: 0, errors: 0, refreshes: 0 };

  constructor(private readonly deps: SecretTrackerDeps) {
    this.log = deps.logger.child({ kind: 'Secret' });
  }

  get synced(): boolean {
    return this.isSynced;
  }

  whenSynced(): Promise<void> {
    if (this.isSynced || this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** The Secrets referenced now, as namespace/name keys, sorted. */
  referenced(): string[] {
    const all = new Set<string>();
    for (const keys of this.owners.values()) for (const k of keys) all.add(k);
    return [...all].sort();
  }

  /** Sets the references of one owner (an empty list forgets it). */
  setOwner(ownerKey: string, refs: readonly SecretRef[]): void {
    const before = new Set(this.referenced());
    if (refs.length === 0) this.owners.delete(ownerKey);
    else this.owners.set(ownerKey, refs.map(keyOf));
    this.reconcile(before);
  }

  /** Replaces every owner whose key starts with `prefix` (all objects of one kind, after a list). */
  replaceOwners(prefix: string, owners: ReadonlyMap<string, readonly SecretRef[]>): void {
    const before = new Set(this.referenced());
    for (const k of [...this.owners.keys()]) if (k.startsWith(prefix)) this.owners.delete(k);
    for (const [k, refs] of owners) if (refs.length > 0) this.owners.set(k, refs.map(keyOf));
    this.reconcile(before);
  }

  /** Every owner kind has been listed: the first full round may complete. */
  ownersKnown(): void {
    if (this.ownersReady || this.abort.signal.aborted) return;
    this.ownersReady = true;
    this.startRound();
    this.refreshTimer = setInterval(() => {
      this.stats.refreshes++;
      this.startRound();
    }, this.deps.refreshMs);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    clearInterval(this.refreshTimer);
    for (const w of this.syncWaiters.splice(0)) w();
    await this.pumping;
  }

  private startRound(): void {
    for (const k of this.referenced()) this.dirty.add(k);
    this.roundPending = true;
    this.kick();
  }

  /** Reads newly referenced Secrets, withdraws those no longer referenced. */
  private reconcile(before: ReadonlySet<string>): void {
    const now = new Set(this.referenced());
    for (const k of now) if (!before.has(k)) this.dirty.add(k);
    for (const k of before) {
      if (now.has(k)) continue;
      this.dirty.delete(k);
      this.forbidden.delete(k);
      if (this.cache.delete(k)) this.deliverApply(k, undefined);
    }
    this.kick();
  }

  private kick(): void {
    if (this.pumping !== undefined || this.abort.signal.aborted) return;
    if (this.dirty.size === 0 && !this.roundPending) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      // Work that arrived while the pump was finishing.
      this.kick();
    });
  }

  private async pump(): Promise<void> {
    const signal = this.abort.signal;
    const stopped = (): boolean => signal.aborted;
    while (!stopped()) {
      const key = this.dirty.values().next().value;
      if (key === undefined) break;
      try {
        await this.fetch(key);
        this.dirty.delete(key);
        this.failures = 0;
      } catch (err) {
        if (stopped()) return;
        this.failures++;
        this.stats.errors++;
        // To the back of the queue: one failing Secret does not hold up the others.
        if (this.dirty.delete(key)) this.dirty.add(key);
        const waitMs = backoffDelay(this.failures, this.deps.backoff);
        this.log.warn(
          { secret: key, err: describeError(err), attempt: this.failures, retryInMs: waitMs },
          'get failed',
        );
        await sleep(waitMs, signal);
      }
    }
    if (stopped() || this.dirty.size > 0 || !this.roundPending || !this.ownersReady) return;
    this.roundPending = false;
    try {
      this.deps.replace([...this.cache.values()]);
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'the sink failed on the Secret set');
    }
    if (!this.isSynced) {
      this.isSynced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private async fetch(key: string): Promise<void> {
    const { namespace, name } = refOf(key);
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
    let secret: JsonRecord | undefined;
    this.stats.gets++;
    try {
      const got = await this.deps.get(path, this.abort.signal);
      const { apiVersion: _a, kind: _k, ...rest } = got;
      secret = { apiVersion: 'v1', kind: 'Secret', ...rest };
      this.forbidden.delete(key);
    } catch (err) {
      if (isKubeApiError(err, 404)) secret = undefined;
      else if (isKubeApiError(err, 403)) {
        if (!this.forbidden.has(key)) {
          this.forbidden.add(key);
          this.log.warn(
            { secret: key, err: describeError(err) },
            'not allowed to get this Secret (RBAC: get on secrets in its namespace): treated as absent',
          );
        }
        secret = undefined;
      } else throw err;
    }
    // The reference may have gone while the request was in flight.
    if (!this.referenced().includes(key)) return;
    const old = this.cache.get(key);
    if (secret === undefined) {
      if (this.cache.delete(key)) this.deliverApply(key, undefined);
      return;
    }
    const rv = (o: JsonRecord | undefined): string | undefined =>
      asString(asRecord(o?.metadata)?.resourceVersion);
    this.cache.set(key, secret);
    if (old === undefined || rv(old) !== rv(secret)) this.deliverApply(key, secret);
  }

  private deliverApply(key: string, secret: JsonRecord | undefined): void {
    const { namespace, name } = refOf(key);
    try {
      this.deps.apply(namespace, name, secret);
    } catch (err) {
      this.log.error({ err: describeError(err), secret: key }, 'the sink failed on a Secret');
    }
  }
}
