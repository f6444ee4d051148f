import type { KubeConfig } from '@kubernetes/client-node';
import { loadClientNode } from '../../kube/client-node.js';
import { asArray, asRecord, asString, isRecord, type JsonRecord } from '../../model/json.js';
import type { Logger } from '../../telemetry/logger.js';
import { guardedLogged } from '../guard.js';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import type { Discovery } from './discovery.js';
import { collectionPath, getJson, isKubeApiError, KubeApiError } from './rest.js';

/** One resource read cluster-wide. */
export interface WatchedResource {
  readonly kind: string;
  /** '' for the core group. */
  readonly group: string;
  /** Versions Breeze can read, preferred first: the first one served is used. */
  readonly versions: readonly string[];
  /** Plural resource name, as in the API path. */
  readonly resource: string;
  readonly labelSelector?: string;
}

export interface ListWatchTiming {
  /** A full relist this often, even when the watch looks healthy. */
  readonly relistIntervalMs: number;
  /** A watch with no event (bookmarks included) for this long is restarted. */
  readonly watchdogMs: number;
  readonly backoff: BackoffOptions;
  /** Deadline of a list page or discovery request, and of a watch's response headers. */
  readonly requestTimeoutMs: number;
  /** `limit` of a list page. */
  readonly pageSize: number;
}

/** Where a ListWatch delivers. Called synchronously; exceptions are logged, never propagated. */
export interface ListWatchHandler {
  /**
   * The complete current set (initial list and every relist), with apiVersion and kind, as of
   * `asOf` (epoch ms when the list was requested: a slow list is no newer than that).
   */
  replace(objects: JsonRecord[], asOf: number): void;
  /** One change from the watch; `object` undefined for a deletion. */
  apply(namespace: string, name: string, object: JsonRecord | undefined): void;
  /** The watch is current (a BOOKMARK arrived): every change up to now has been delivered. */
  progress?(): void;
}

export interface ListWatchDeps {
  readonly kubeConfig: KubeConfig;
  readonly discovery: Discovery;
  readonly logger: Logger;
  readonly timing: ListWatchTiming;
  readonly handler: ListWatchHandler;
}

/** Counters for logs, metrics and tests. */
export interface ListWatchStats {
  /** The version read (`group/version`); undefined before discovery or when not served. */
  apiVersion: string | undefined;
  /** false when discovery found no served version (the CRD is not installed). */
  served: boolean | undefined;
  /** Successful lists (initial, periodic, after 410 or errors). */
  lists: number;
  /** Lists because the relist interval passed. */
  periodicRelists: number;
  /** Watches started. */
  watches: number;
  /** 410 Gone / Expired: the resourceVersion was compacted; relisted. */
  expired: number;
  /** Watches restarted because they were silent past the watchdog interval. */
  watchdogRestarts: number;
  /** Failed requests and broken watches (each followed by a backoff). */
  errors: number;
}

type WatchEndReason = 'stopped' | 'relist' | 'expired' | 'silent' | 'closed' | 'error';

interface WatchEnd {
  readonly reason: WatchEndReason;
  /** Events received (bookmarks included). */
  readonly events: number;
  readonly error?: unknown;
}

/** Where the loop stands: what it lists and watches, and the resourceVersion it has seen. */
interface Cursor {
  readonly path: string;
  readonly apiVersion: string;
  rv: string;
  readonly listedAt: number;
}

/**
 * client-node's Watch awaits the response headers before it returns its AbortController and sets
 * no deadline of its own, so a server that accepts a watch and never answers would hold it
 * forever. This KubeConfig delegates everything to `kc` and adds node-fetch's `timeout`, which
 * covers the request up to the response headers (not the streamed body).
 */
function withHeaderTimeout(kc: KubeConfig, timeoutMs: number): KubeConfig {
  const config = Object.create(kc) as KubeConfig;
  config.applyToFetchOptions = async (opts) => ({
    ...(await kc.applyToFetchOptions(opts)),
    timeout: timeoutMs,
  });
  return config;
}

/** The object with apiVersion and kind set (list items come without them), those two first. */
function typed(object: JsonRecord, apiVersion: string, kind: string): JsonRecord {
  const { apiVersion: _a, kind: _k, ...rest } = object;
  return { apiVersion, kind, ...rest };
}

export function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof KubeApiError) return { status: err.status, reason: err.reason, message: err.message };
  if (err instanceof Error) return { type: err.name, message: err.message };
  return { message: String(err) };
}

/**
 * A resilient list+watch loop for one resource, built on client-node's `Watch` for the stream
 * (its informer stalls silently: kubernetes-client/javascript #596, #958). It handles:
 * - the served version, from discovery; a resource not served (CRD not installed) is delivered
 *   as empty and looked up again every relist interval;
 * - 410 Gone / Expired (a watch ERROR event, an HTTP 410, an expired continue token): relist;
 * - silence: a watch with no event for `watchdogMs` is restarted from the last resourceVersion;
 *   bookmarks (allowWatchBookmarks) keep a healthy but idle watch from looking silent;
 * - missed events: a full relist every `relistIntervalMs` repairs anything the watch lost;
 * - errors: exponential backoff with jitter, honouring Retry-After; reset by a successful list
 *   or a watch that delivered events.
 */
export class ListWatch {
  readonly stats: ListWatchStats = {
    apiVersion: undefined,
    served: undefined,
    lists: 0,
    periodicRelists: 0,
    watches: 0,
    expired: 0,
    watchdogRestarts: 0,
    errors: 0,
  };
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private readonly watchConfig: KubeConfig;
  private running: Promise<void> | undefined;
  private failures = 0;
  private isSynced = false;
  private readonly syncWaiters: (() => void)[] = [];

  constructor(
    readonly resource: WatchedResource,
    private readonly deps: ListWatchDeps,
  ) {
    this.log = deps.logger.child({ kind: resource.kind });
    this.watchConfig = withHeaderTimeout(deps.kubeConfig, deps.timing.requestTimeoutMs);
  }

  /** True once the first complete set was delivered. */
  get synced(): boolean {
    return this.isSynced;
  }

  /** Resolves once synced, or once stopped. */
  whenSynced(): Promise<void> {
    if (this.isSynced || this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    this.running ??= this.run().catch((err: unknown) => {
      this.log.error({ err: describeError(err) }, 'list+watch loop failed');
    });
  }

  /** Ends the watch, any request and any wait; resolves when the loop has exited. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.releaseWaiters();
    await this.running;
  }

  private releaseWaiters(): void {
    for (const w of this.syncWaiters.splice(0)) w();
  }

  /** A method, not a getter: control-flow narrowing must not assume it stays false across awaits. */
  private stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    let cursor: Cursor | undefined;
    while (!this.stopped()) {
      if (cursor === undefined || Date.now() - cursor.listedAt >= this.deps.timing.relistIntervalMs) {
        if (cursor !== undefined) this.stats.periodicRelists++;
        try {
          cursor = await this.list();
        } catch (err) {
          cursor = undefined;
          if (this.stopped()) break;
          await this.failed(err, 'list');
          continue;
        }
        if (cursor === undefined) {
          await sleep(this.deps.timing.relistIntervalMs, this.abort.signal);
          continue;
        }
      }
      const end = await this.watchOnce(cursor);
      cursor = await this.afterWatch(end, cursor);
    }
  }

  private async afterWatch(end: WatchEnd, cursor: Cursor): Promise<Cursor | undefined> {
    if (end.events > 0) this.failures = 0;
    switch (end.reason) {
      case 'stopped':
      case 'relist':
        return cursor;
      case 'expired':
        this.stats.expired++;
        this.log.info({ resourceVersion: cursor.rv }, 'resourceVersion expired (410): relisting');
        return undefined;
      case 'silent':
        this.stats.watchdogRestarts++;
        this.log.warn(
          { watchdogMs: this.deps.timing.watchdogMs, resourceVersion: cursor.rv },
          'watch silent past the watchdog interval: restarting it',
        );
        return cursor;
      case 'closed':
        // A normal end (server timeout, connection drop): watch again from where we are. One that
        // closed before any event (not even a bookmark) waits first, so a server that closes
        // every watch at once is not hammered.
        if (end.events === 0)
          await this.failed(new Error('the watch closed without any event'), 'watch', true);
        return cursor;
      case 'error':
        await this.failed(end.error, 'watch');
        return isKubeApiError(end.error, 404) ? undefined : cursor;
    }
  }

  /** Waits before the next attempt; `quiet`: not an error (logged at debug, not counted). */
  private async failed(err: unknown, phase: 'list' | 'watch', quiet = false): Promise<void> {
    this.failures++;
    if (!quiet) this.stats.errors++;
    const { backoff } = this.deps.timing;
    const retryAfter = err instanceof KubeApiError ? Math.min(err.retryAfterMs ?? 0, backoff.maxMs) : 0;
    const waitMs = Math.max(backoffDelay(this.failures, backoff), retryAfter);
    if (isKubeApiError(err, 404)) this.deps.discovery.invalidate(this.resource.group);
    this.log[quiet ? 'debug' : 'warn'](
      { phase, err: describeError(err), attempt: this.failures, retryInMs: waitMs },
      `${phase} failed`,
    );
    await sleep(waitMs, this.abort.signal);
  }

  /** Lists every page and delivers the set; undefined when the resource is not served. */
  private async list(): Promise<Cursor | undefined> {
    const { group, resource, versions, kind, labelSelector } = this.resource;
    const { discovery, timing, kubeConfig } = this.deps;
    if (this.stats.served === false) discovery.invalidate(group);
    const version = await discovery.resolve(group, resource, versions);
    if (version === undefined) {
      if (this.stats.served !== false) {
        this.log.warn(
          { group, versions },
          'not served by the API server (CRD not installed?): treated as empty, looked up again every relist interval',
        );
      }
      this.stats.served = false;
      this.stats.apiVersion = undefined;
      this.deliverReplace([], Date.now());
      return undefined;
    }
    const apiVersion = group === '' ? version : `${group}/${version}`;
    const path = collectionPath(group, version, resource);
    const items: JsonRecord[] = [];
    let rv: string | undefined;
    let cont: string | undefined;
    const requestedAt = Date.now();
    do {
      const page = await getJson(kubeConfig, path, {
        query: { labelSelector, limit: String(timing.pageSize), continue: cont },
        signal: this.abort.signal,
        timeoutMs: timing.requestTimeoutMs,
      });
      for (const item of asArray(page.items) ?? [])
        if (isRecord(item)) items.push(typed(item, apiVersion, kind));
      const metadata = asRecord(page.metadata);
      // Every page of one list shares the first page's snapshot resourceVersion.
      rv ??= asString(metadata?.resourceVersion);
      cont = asString(metadata?.continue);
      if (cont === '') cont = undefined;
    } while (cont !== undefined && !this.stopped());
    if (this.stopped()) throw new Error('stopped');
    if (this.stats.apiVersion !== apiVersion) this.log.info({ apiVersion, path }, 'reading');
    this.stats.served = true;
    this.stats.apiVersion = apiVersion;
    this.stats.lists++;
    this.failures = 0;
    this.deliverReplace(items, requestedAt);
    return { path, apiVersion, rv: rv ?? '', listedAt: Date.now() };
  }

  private deliverReplace(items: JsonRecord[], asOf: number): void {
    try {
      this.deps.handler.replace(items, asOf);
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'the sink failed on a list');
    }
    if (!this.isSynced) {
      this.isSynced = true;
      this.releaseWaiters();
    }
  }

  /** One watch from `cursor.rv`, until it ends, goes silent, is stopped or a relist is due. */
  private watchOnce(cursor: Cursor): Promise<WatchEnd> {
    const { watchdogMs, relistIntervalMs } = this.deps.timing;
    const signal = this.abort.signal;
    this.stats.watches++;
    return new Promise<WatchEnd>((resolve) => {
      let events = 0;
      let lastActivity = Date.now();
      let controller: AbortController | undefined;
      let settled = false;
      const remaining = Math.max(0, cursor.listedAt + relistIntervalMs - Date.now());
      const finish = (reason: WatchEndReason, error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(relistTimer);
        clearInterval(watchdog);
        signal.removeEventListener('abort', onAbort);
        controller?.abort();
        resolve({ reason, events, error });
      };
      const onAbort = (): void => finish('stopped');
      signal.addEventListener('abort', onAbort);
      const relistTimer = setTimeout(
        guardedLogged(this.log, 'the relist timer', () => finish('relist')),
        remaining,
      );
      const watchdog = setInterval(
        guardedLogged(this.log, 'the watch watchdog', () => {
          if (Date.now() - lastActivity >= watchdogMs) finish('silent');
        }),
        Math.max(10, Math.min(1000, Math.floor(watchdogMs / 4))),
      );
      if (this.stopped()) {
        finish('stopped');
        return;
      }

      const query = {
        resourceVersion: cursor.rv === '' ? undefined : cursor.rv,
        allowWatchBookmarks: true,
        // The server ends the watch by itself around the next relist, as a second safety net.
        timeoutSeconds: Math.max(1, Math.ceil(remaining / 1000)),
        labelSelector: this.resource.labelSelector,
      };
      const onEvent = guardedLogged(
        this.log,
        'handling a watch event',
        (type: string, object: unknown): void => {
          if (settled) return;
          lastActivity = Date.now();
          events++;
          this.onEvent(cursor, type, object, finish);
        },
      );
      const onDone = (err: unknown): void => {
        if (settled) return;
        if (err === null || err === undefined) return finish('closed');
        const status = (err as { statusCode?: unknown }).statusCode;
        if (typeof status !== 'number') return finish('error', err);
        const message = err instanceof Error ? err.message : '';
        finish(
          status === 410 ? 'expired' : 'error',
          new KubeApiError(status, message, `watch answered HTTP ${status}`),
        );
      };
      // client-node is loaded on first use (see loadClientNode), then from the module cache.
      loadClientNode()
        .then(({ Watch }) => new Watch(this.watchConfig).watch(cursor.path, query, onEvent, onDone))
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          (err: unknown) => finish('error', err),
        );
    });
  }

  private onEvent(
    cursor: Cursor,
    type: string,
    raw: unknown,
    finish: (reason: WatchEndReason, error?: unknown) => void,
  ): void {
    const object = asRecord(raw);
    if (object === undefined) return;
    const metadata = asRecord(object.metadata);
    const rv = asString(metadata?.resourceVersion);
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED': {
        const name = asString(metadata?.name);
        if (name === undefined) return;
        if (rv !== undefined && rv !== '') cursor.rv = rv;
        const namespace = asString(metadata?.namespace) ?? '';
        const value = type === 'DELETED' ? undefined : typed(object, cursor.apiVersion, this.resource.kind);
        try {
          this.deps.handler.apply(namespace, name, value);
        } catch (err) {
          this.log.error({ err: describeError(err), namespace, name }, 'the sink failed on a watch event');
        }
        return;
      }
      case 'BOOKMARK':
        if (rv !== undefined && rv !== '') cursor.rv = rv;
        try {
          this.deps.handler.progress?.();
        } catch (err) {
          this.log.error({ err: describeError(err) }, 'the sink failed on a bookmark');
        }
        return;
      case 'ERROR': {
        const code = typeof object.code === 'number' ? object.code : 0;
        if (code === 410) return finish('expired');
        const reason = asString(object.reason) ?? 'Unknown';
        finish('error', new KubeApiError(code, reason, asString(object.message) ?? 'watch ERROR event'));
        return;
      }
      default:
        return;
    }
  }
}
