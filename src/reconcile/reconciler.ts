/**
 * The EnvoyFilter reconciler: level-triggered, per service key.
 *
 * For a set of service keys it computes the desired EnvoyFilters from the cache (generateForKeys),
 * compares them with the actual ones (Breeze-labelled EnvoyFilters recorded for those keys in
 * breeze.io/service: in cluster mode the watch-fed cache, never a list per push) and writes only
 * the differences through the sink. Safety rules (each one an Aeraki bug, see reference/aeraki.md
 * section 5):
 * - a service whose generation reports a problem keeps its existing EnvoyFilters that are not in
 *   the desired set (never delete on error); the filters that did generate are still applied;
 *   other services are never affected;
 * - a service that is gone (no problems, no output) has its EnvoyFilters deleted;
 * - only objects carrying Breeze's label are touched (the sinks enforce it: FOREIGN_OBJECT);
 * - every error is kept per object (`failures()`) until that object is repaired, logged, counted
 *   and sent as an Event; a later success of another object never masks it;
 * - failed keys are retried with exponential backoff and jitter (`retryDue`, `nextRetryAt`,
 *   `onRetry`); a rejected object (400/422) or a foreign one is not resent with the same content
 *   before a long backoff (`invalidRetryMs`), so there is no hot loop.
 *
 * Scheduling (one service's backlog never holds up another service):
 * - planning (generate + diff) is serialized and cheap; the writes it yields go to a write queue
 *   with one lane per service key. `submit()` resolves `queued` once a batch is planned and `done`
 *   once its writes are settled, so the push loop never waits for a backlog to drain;
 * - at most `concurrency` writes are in flight and at most `qps` start per second (a token
 *   bucket). Each free slot takes the next write round-robin over the lanes, and a lane that was
 *   idle goes first: a newly dirty service's first write overtakes a big backlog's later writes,
 *   then it shares the rate evenly with the others;
 * - a key planned again replaces its queued writes with the new plan (level-triggered, and the
 *   queue never holds more than one plan per key); a write already in flight is never duplicated
 *   nor run twice at once: the new plan's write of that object waits for it (or is dropped when
 *   it is the same write);
 * - aborting a batch's signal (lost lease, shutdown) drops its queued writes at once, rejects its
 *   token-bucket waits and aborts its sink requests; what was not written is repaired by the next
 *   leader's (or start's) resync.
 */
import type { ConfigStore } from '../cache/store.js';
import { BreezeError, guarded, type BreezeErrorCode } from '../errors.js';
import { asRecord, asString, type JsonRecord } from '../model/json.js';
import type { ServiceView } from '../model/service.js';
import {
  formatProblem,
  generateForKeys,
  type GenerationProblem,
  type ServiceOutput,
} from '../protocols/generate.js';
import { CONTENT_HASH_ANNOTATION } from '../protocols/shared/envoyfilter.js';
import { inboundName, outboundName } from '../protocols/shared/names.js';
import type { GenerationOptions } from '../protocols/types.js';
import { backoffDelay, type BackoffOptions } from '../sources/kubernetes/backoff.js';
import type { Logger } from '../telemetry/logger.js';
import { redactWriteError } from '../telemetry/secrets.js';
import type { Metrics } from '../telemetry/metrics.js';
import { NoopEventer, STATUS_KINDS, type EventReason, type Eventer, type InvolvedObject } from './events.js';
import { toApiError } from '../kube/request.js';
import { annotationsOf, idOf, isBreezeOwned, sameContent, serviceKeyOf, sourcesOf } from './owned.js';
import { systemClock, type Clock } from './clock.js';
import { forEachLimited, TokenBucket } from './ratelimit.js';
import { MAX_PROBLEMS_LISTED } from '../model/limits.js';
import type { EnvoyFilterSink, PushResult } from './types.js';

/** Label Aeraki puts on the EnvoyFilters it writes. */
export const AERAKI_LABEL = 'manager';
export const AERAKI_VALUE = 'Aeraki';

/** What adopting Aeraki's EnvoyFilters needs from the sink (the Kubernetes sink has it). */
export interface ForeignEnvoyFilters {
  listForeign(labelSelector: string, signal: AbortSignal): Promise<JsonRecord[]>;
  deleteForeign(object: JsonRecord, label: string, value: string, signal: AbortSignal): Promise<void>;
}

export type Operation = 'create' | 'update' | 'delete' | 'adopt_delete';

/** The last error of one object (`namespace/name`), kept until that object is repaired. */
export interface Failure {
  readonly object: string;
  readonly service: string;
  readonly operation: Operation;
  readonly code: BreezeErrorCode;
  readonly status: number | undefined;
  readonly message: string;
  /** When it (last) failed. */
  readonly at: number;
  /** Failed attempts in a row. */
  readonly attempts: number;
}

export interface ReconcilerOptions {
  readonly store: ConfigStore;
  readonly sink: EnvoyFilterSink & Partial<ForeignEnvoyFilters>;
  readonly generation: GenerationOptions;
  /**
   * Breeze's EnvoyFilters as they are: in cluster mode the watch-fed store (`storeActual`), in
   * local mode the directory (DirectoryEnvoyFilterSink.actual). Objects without Breeze's label
   * are ignored. Default: storeActual(store).
   */
  readonly actual?: () => Iterable<JsonRecord> | Promise<Iterable<JsonRecord>>;
  /** Indexed actual state for pushes; default storeIndex(store) when `actual` is not given. */
  readonly actualIndex?: ActualIndex;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Events and Redis status conditions; default none. */
  readonly eventer?: Eventer;
  /** Sink operations in flight at most; default 4. */
  readonly concurrency?: number;
  /** Sink operations per second; default 20, bursts of `burst` (default 40). */
  readonly qps?: number;
  readonly burst?: number;
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Retry waits of failed keys: initialMs doubling to maxMs, ±20 % jitter; default 1 s to 5 min. */
  readonly retryBackoff?: BackoffOptions;
  /** A 400/422 rejection or a foreign object: the same content is not resent for this long; default 10 min. */
  readonly invalidRetryMs?: number;
  /** Delete Aeraki's EnvoyFilters of a service once Breeze's replacements are written. */
  readonly adoptAeraki?: boolean;
  /** Called when a key is scheduled for a retry at `at` (clock ms). */
  readonly onRetry?: (key: string, at: number) => void;
}

/**
 * Indexed access to the actual state, so a push costs what its keys touch, not the number of
 * EnvoyFilters in the cluster. Full resyncs still read everything (`actual`).
 */
export interface ActualIndex {
  /** Breeze-owned EnvoyFilters recorded for these service keys. */
  forKeys(keys: readonly string[]): Iterable<JsonRecord>;
  /** A Breeze-owned EnvoyFilter by `namespace/name`. */
  byId(id: string): JsonRecord | undefined;
}

/** The store's index of the EnvoyFilters its watch delivered. */
export function storeIndex(store: ConfigStore): ActualIndex {
  return {
    forKeys: (keys) => keys.flatMap((k) => store.envoyFiltersOf(k).map((e) => e.object)),
    byId: (id) => {
      const [ns = '', name = ''] = id.split('/');
      const o = store.get('EnvoyFilter', ns, name)?.object;
      return o !== undefined && isBreezeOwned(o) ? o : undefined;
    },
  };
}

/** Breeze's EnvoyFilters in the store (fed by the Kubernetes source's EnvoyFilter watch). */
export function storeActual(store: ConfigStore): () => JsonRecord[] {
  return () =>
    store
      .list('EnvoyFilter')
      .map((e) => e.object)
      .filter(isBreezeOwned);
}

type OpState = 'queued' | 'deferred' | 'picked' | 'writing' | 'settled';

interface Op {
  readonly operation: 'create' | 'update' | 'delete';
  readonly key: string;
  readonly id: string;
  readonly desired?: JsonRecord;
  readonly current?: JsonRecord;
  /** The plan this write belongs to. */
  readonly plan: KeyState;
  state: OpState;
  /** Superseded by a newer plan while waiting for its token: settled without writing. */
  cancelled: boolean;
  /**
   * Not a write yet: a check, once this older write of the object ends, of what it did against
   * this plan (which was computed from the state before it).
   */
  readonly recheck?: Op;
  /** How the write ended: 'uncertain' when it may have been applied (timeout, network, abort). */
  outcome?: 'ok' | 'failed' | 'uncertain';
}

interface KeyState {
  readonly key: string;
  readonly batch: Batch;
  readonly output: ServiceOutput;
  readonly problems: GenerationProblem[];
  readonly desired: Map<string, JsonRecord>;
  readonly actual: Map<string, JsonRecord>;
  failed: number;
  /** Earliest sensible retry requested by the failures (Retry-After, rejected-content backoff). */
  retryNotBefore: number;
  /** Only rejected/foreign content failed: retry after the long backoff, not sooner. */
  onlyRejected: boolean;
  /** Writes of this plan not settled yet. */
  readonly open: Set<Op>;
  /** A newer plan of the same key replaced this one (it reports the key's outcome). */
  superseded: boolean;
  finished: boolean;
}

interface Counts {
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
  failed: number;
}

/** One push or resync: the plans of its keys, settled together. */
interface Batch {
  readonly trigger: string;
  readonly started: number;
  readonly signal: AbortSignal;
  readonly counts: Counts;
  readonly states: Map<string, KeyState>;
  keys: number;
  /** Key plans not finished, plus one while planning. */
  open: number;
  resolve: (r: PushResult) => void;
  reject: (err: unknown) => void;
  readonly done: Promise<PushResult>;
}

/** The write queue of one service key. */
interface Lane {
  readonly key: string;
  plan: KeyState | undefined;
  queue: Op[];
  head: number;
  /** In the fresh or the round-robin queue. */
  scheduled: boolean;
}

/** What `submit` gives back: planned (`queued`) and written (`done`). */
export interface Submitted {
  readonly queued: Promise<void>;
  readonly done: Promise<PushResult>;
}

const DEFAULT_RETRY: BackoffOptions = { initialMs: 1000, maxMs: 300_000 };

/**
 * The soft findings of a generation (a capped fan-out, a missing VIP or workload selector): logged
 * once per change and sent as a Warning Event on the service. The one place that reads them.
 */
const notesOf = (output: ServiceOutput): readonly GenerationProblem[] => output.notes;

export class Reconciler {
  private readonly store: ConfigStore;
  private readonly sink: EnvoyFilterSink & Partial<ForeignEnvoyFilters>;
  private readonly actual: () => Iterable<JsonRecord> | Promise<Iterable<JsonRecord>>;
  private readonly actualIndex: ActualIndex | undefined;
  private readonly logger: Logger;
  private readonly eventer: Eventer;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly bucket: TokenBucket;
  private readonly concurrency: number;
  private readonly retryBackoff: BackoffOptions;
  private readonly invalidRetryMs: number;

  private readonly failed = new Map<string, Failure>();
  /** id → content (hash, or 'delete') the API server rejected, not resent before `until`. */
  private readonly rejected = new Map<string, { content: string; until: number }>();
  private readonly retries = new Map<string, { at: number; attempts: number }>();
  /** The notes last reported per key (so each change is reported once). */
  private readonly noted = new Map<string, string>();
  /** Aeraki's EnvoyFilters, listed once and refreshed at every resync. */
  private aeraki: JsonRecord[] | undefined;
  /** Planning is serialized (writes are not: they go through the lanes). */
  private chain: Promise<unknown> = Promise.resolve();

  // ---- the write queue ----
  private readonly lanes = new Map<string, Lane>();
  /** Lanes that were idle when they got work: served first, once each. */
  private readonly fresh = new Deque<Lane>();
  /** Lanes with more work: served round-robin. */
  private readonly ring = new Deque<Lane>();
  /** id → the write of that object picked or in flight (never two at once). */
  private readonly inflight = new Map<string, Op>();
  /** id → a newer write of an object whose write is in flight: queued once that one ends. */
  private readonly deferred = new Map<string, Op>();
  private readonly batches = new Set<Batch>();
  private readonly watched = new WeakSet<AbortSignal>();
  private workers = 0;

  constructor(private readonly o: ReconcilerOptions) {
    this.store = o.store;
    this.sink = o.sink;
    this.actual = o.actual ?? storeActual(o.store);
    this.actualIndex = o.actualIndex ?? (o.actual === undefined ? storeIndex(o.store) : undefined);
    this.logger = o.logger.child({ component: 'reconciler' });
    this.eventer = o.eventer ?? new NoopEventer();
    this.clock = o.clock ?? systemClock;
    this.random = o.random ?? Math.random;
    this.concurrency = Math.max(1, o.concurrency ?? 4);
    this.bucket = new TokenBucket(o.qps ?? 20, o.burst ?? 40, this.clock);
    this.retryBackoff = o.retryBackoff ?? DEFAULT_RETRY;
    this.invalidRetryMs = o.invalidRetryMs ?? 600_000;
    for (const operation of ['create', 'update', 'delete', 'adopt_delete'])
      o.metrics?.reconcileWrites.inc({ operation, result: 'success' }, 0);
  }

  /** Converges the EnvoyFilters of these service keys; resolves when their writes are settled. */
  reconcile(keys: Iterable<string>, signal: AbortSignal): Promise<PushResult> {
    return this.submit(keys, signal).done;
  }

  /**
   * Plans these keys and queues their writes. `queued` resolves once planned (the push loop goes
   * on at once), `done` once every write of the batch is settled (written, failed, aborted or
   * superseded by a newer plan of its key).
   */
  submit(keys: Iterable<string>, signal: AbortSignal): Submitted {
    const list = [...new Set(keys)];
    return this.enqueue('push', signal, async (batch) => {
      // Without an index (local mode: the directory) a push reads the whole actual state.
      const all = this.actualIndex === undefined ? [...(await this.actual())] : undefined;
      this.plan(batch, list, false, all);
    });
  }

  /**
   * Converges everything: every protocol service in the store plus every service recorded on an
   * actual EnvoyFilter (so filters of vanished services are deleted), and Aeraki's list is re-read.
   */
  resync(signal: AbortSignal): Promise<PushResult> {
    return this.enqueue('resync', signal, async (batch) => {
      this.aeraki = undefined;
      const keys = new Set(this.store.allProtocolServices().map((s) => s.key));
      const actual = [...(await this.actual())];
      for (const ef of actual) {
        const k = serviceKeyOf(ef);
        if (k !== undefined && isBreezeOwned(ef)) keys.add(k);
      }
      this.plan(batch, [...keys], true, actual);
    }).done;
  }

  /** Resolves when every batch submitted so far is settled. */
  async idle(): Promise<void> {
    while (this.batches.size > 0) await Promise.allSettled([...this.batches].map((b) => b.done));
  }

  /** Writes queued (not yet picked), over all keys. */
  get queuedWrites(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.queue.length - lane.head;
    return n + this.deferred.size;
  }

  /** The last error of every object not yet repaired, by `namespace/name`. */
  failures(): ReadonlyMap<string, Failure> {
    return new Map(this.failed);
  }

  /** Keys whose retry time has come. */
  retryDue(now = this.clock.now()): string[] {
    return [...this.retries].filter(([, r]) => r.at <= now).map(([k]) => k);
  }

  /** When the earliest retry is due (clock ms); undefined when none is pending. */
  nextRetryAt(): number | undefined {
    let min: number | undefined;
    for (const r of this.retries.values()) if (min === undefined || r.at < min) min = r.at;
    return min;
  }

  private enqueue(
    trigger: string,
    signal: AbortSignal,
    planner: (batch: Batch) => Promise<void> | void,
  ): Submitted {
    let resolve: (r: PushResult) => void = () => undefined;
    let reject: (err: unknown) => void = () => undefined;
    const done = new Promise<PushResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const batch: Batch = {
      trigger,
      started: this.clock.now(),
      signal,
      counts: { created: 0, updated: 0, deleted: 0, unchanged: 0, failed: 0 },
      states: new Map(),
      keys: 0,
      open: 1,
      resolve,
      reject,
      done,
    };
    this.batches.add(batch);
    this.watch(signal);
    const run = async (): Promise<void> => {
      try {
        // An aborted batch plans nothing: it must not replace a live plan of its keys.
        if (!signal.aborted) await planner(batch);
      } catch (err) {
        this.batches.delete(batch);
        batch.reject(err);
        throw err;
      }
      this.closeOne(batch);
      this.pump();
    };
    const queued = this.chain.then(run, run);
    this.chain = queued.catch(() => undefined);
    return { queued, done };
  }

  /** Drops the queued writes of aborted batches as soon as their signal aborts. */
  private watch(signal: AbortSignal): void {
    if (this.watched.has(signal)) return;
    this.watched.add(signal);
    signal.addEventListener(
      'abort',
      () => {
        try {
          this.purge();
        } catch (err) {
          this.logger.error({ err }, 'dropping aborted writes failed');
        }
      },
      { once: true },
    );
  }

  /** Settles every queued or deferred write whose batch was aborted, as failed (not written). */
  private purge(): void {
    const aborted = (op: Op): boolean => op.plan.batch.signal.aborted;
    const dropped: Op[] = [];
    for (const lane of this.lanes.values()) {
      const keep: Op[] = [];
      for (let i = lane.head; i < lane.queue.length; i++) {
        const op = lane.queue[i] as Op;
        if (op.state === 'queued' && aborted(op)) dropped.push(op);
        else keep.push(op);
      }
      lane.queue = keep;
      lane.head = 0;
    }
    for (const [id, op] of this.deferred)
      if (aborted(op)) {
        this.deferred.delete(id);
        dropped.push(op);
      }
    for (const op of dropped) {
      op.plan.batch.counts.failed++;
      op.plan.failed++;
      op.plan.onlyRejected = false;
      this.settle(op);
    }
  }

  /**
   * Computes the desired state of these keys and queues the differences. A key that already has a
   * plan (queued or in flight) gets this one instead.
   */
  private plan(batch: Batch, keys: string[], full: boolean, all?: JsonRecord[]): void {
    if (batch.signal.aborted) return; // aborted while reading the actual state
    batch.keys = keys.length;
    const counts = batch.counts;
    const keySet = new Set(keys);
    // A push reads only its keys' filters through the index; a resync reads everything.
    const index = full ? undefined : this.actualIndex;
    const actualAll = [...(all ?? index?.forKeys(keys) ?? [])].filter(isBreezeOwned);
    const actualById = new Map(actualAll.map((ef) => [idOf(ef), ef]));
    const currentOf = (id: string): JsonRecord | undefined => actualById.get(id) ?? index?.byId(id);
    const states = batch.states;
    for (const key of keys) {
      const output = this.generate(key);
      this.note(key, notesOf(output));
      states.set(key, {
        key,
        batch,
        output,
        problems: [],
        desired: new Map(),
        actual: new Map(),
        failed: 0,
        retryNotBefore: 0,
        onlyRejected: true,
        open: new Set(),
        superseded: false,
        finished: false,
      });
    }
    const orphans: JsonRecord[] = [];
    for (const ef of actualAll) {
      const k = serviceKeyOf(ef);
      if (k === undefined) orphans.push(ef);
      else states.get(k)?.actual.set(idOf(ef), ef);
    }

    // Desired state, and what to write.
    const ops = new Map<KeyState, Op[]>();
    const add = (s: KeyState, op: Omit<Op, 'plan' | 'state' | 'cancelled'>): void => {
      let list = ops.get(s);
      if (list === undefined) ops.set(s, (list = []));
      list.push({ ...op, plan: s, state: 'queued', cancelled: false });
    };
    const desiredBy = new Map<string, string>();
    for (const s of states.values()) {
      s.problems.push(...s.output.problems);
      for (const ef of s.output.envoyFilters) {
        const id = idOf(ef);
        const other = desiredBy.get(id);
        const current = currentOf(id);
        const incumbent = current === undefined ? undefined : serviceKeyOf(current);
        if (other !== undefined) {
          s.problems.push({ service: s.key, message: `EnvoyFilter ${id} is already generated for ${other}` });
          continue;
        }
        if (
          incumbent !== undefined &&
          incumbent !== s.key &&
          !keySet.has(incumbent) &&
          this.store.protocolService(incumbent) !== undefined
        ) {
          s.problems.push({ service: s.key, message: `EnvoyFilter ${id} already belongs to ${incumbent}` });
          continue;
        }
        desiredBy.set(id, s.key);
        s.desired.set(id, ef);
        if (sameContent(ef, current)) {
          counts.unchanged++;
          this.repaired(id);
          continue;
        }
        if (this.stillRejected(s, id, contentOf(ef))) {
          counts.failed++;
          continue;
        }
        add(s, {
          operation: current === undefined ? 'create' : 'update',
          key: s.key,
          id,
          desired: ef,
          current,
        });
      }
    }
    for (const s of states.values()) {
      this.reportProblems(s);
      for (const [id, current] of s.actual) {
        if (desiredBy.has(id)) continue;
        if (s.problems.length > 0) {
          // Never delete on error: the service's existing filters stay until it generates again.
          this.logger.debug({ service: s.key, envoyFilter: id }, 'kept: the service has generation problems');
          continue;
        }
        if (this.stillRejected(s, id, 'delete')) {
          counts.failed++;
          continue;
        }
        add(s, { operation: 'delete', key: s.key, id, current });
      }
    }
    // Unattributed filters of ours (no breeze.io/service): only a full resync without any problem
    // knows they are desired by nobody.
    if (full && [...states.values()].every((s) => s.problems.length === 0)) {
      for (const ef of orphans) {
        const id = idOf(ef);
        if (desiredBy.has(id)) continue;
        const s = this.orphanState(batch);
        s.actual.set(id, ef);
        add(s, { operation: 'delete', key: s.key, id, current: ef });
      }
    }

    // Install the plans: each replaces its key's previous one in the write queue.
    batch.open += states.size;
    for (const s of states.values()) this.install(s, ops.get(s) ?? []);
  }

  /** Makes `s` its key's plan: the previous plan's queued writes give way to these. */
  private install(s: KeyState, ops: Op[]): void {
    let lane = this.lanes.get(s.key);
    if (lane === undefined) {
      lane = { key: s.key, plan: undefined, queue: [], head: 0, scheduled: false };
      this.lanes.set(s.key, lane);
    }
    const old = lane.plan;
    lane.plan = s;
    lane.queue = [];
    lane.head = 0;
    if (old !== undefined && old !== s) this.supersede(old);
    for (const op of ops) {
      s.open.add(op);
      const busy = this.inflight.get(op.id);
      if (busy !== undefined && !busy.cancelled) {
        if (busy.state === 'writing' && sameWrite(busy, op)) {
          // That very write is under way: its outcome stands for this plan too (a failure of a
          // superseded plan still schedules the key's retry).
          s.open.delete(op);
          continue;
        }
        this.defer(op);
        continue;
      }
      lane.queue.push(op);
    }
    // Writes of older plans of this key still under way: this plan was computed from the state
    // before them, so what each did is checked against it once it ends.
    const planned = new Set(ops.map((op) => op.id));
    for (const w of this.inflight.values()) {
      if (w.key !== s.key || w.plan === s || w.state !== 'writing' || planned.has(w.id)) continue;
      const check: Op = {
        operation: 'update',
        key: s.key,
        id: w.id,
        plan: s,
        state: 'queued',
        cancelled: false,
        recheck: w,
      };
      s.open.add(check);
      this.defer(check);
    }
    if (lane.queue.length > 0) this.schedule(lane);
    if (s.open.size === 0) void this.finish(s);
  }

  /** A newer plan of the same key replaces `old`: its writes not yet started are dropped. */
  private supersede(old: KeyState): void {
    old.superseded = true;
    for (const op of [...old.open]) {
      if (op.state === 'queued') this.settle(op);
      else if (op.state === 'deferred') {
        if (this.deferred.get(op.id) === op) this.deferred.delete(op.id);
        this.settle(op);
      } else if (op.state === 'picked') op.cancelled = true; // settled by its worker, unwritten
      // 'writing': runs to its end and reports into the old plan
    }
  }

  /** Holds a write back until the write of the same object in flight has ended. */
  private defer(op: Op): void {
    const previous = this.deferred.get(op.id);
    if (previous !== undefined && previous !== op) this.settle(previous);
    op.state = 'deferred';
    this.deferred.set(op.id, op);
  }

  /** Queues the write held back for `id`, if any, now that no write of it is in flight. */
  private release(id: string): void {
    const held = this.deferred.get(id);
    if (held === undefined || this.inflight.has(id)) return;
    this.deferred.delete(id);
    let op = held;
    if (held.recheck !== undefined) {
      const fix = held.plan.batch.signal.aborted ? undefined : this.corrective(held);
      if (fix === undefined) {
        this.settle(held);
        return;
      }
      held.plan.open.add(fix);
      this.settle(held);
      op = fix;
    }
    const lane = this.lanes.get(op.key);
    if (lane === undefined || lane.plan !== op.plan || op.plan.batch.signal.aborted) {
      if (op.plan.batch.signal.aborted) {
        op.plan.batch.counts.failed++;
        op.plan.failed++;
        op.plan.onlyRejected = false;
      }
      this.settle(op);
      return;
    }
    op.state = 'queued';
    lane.queue.splice(lane.head, 0, op);
    this.schedule(lane);
  }

  /**
   * The write that makes an object what plan `check.plan` wants after an older write of it ended
   * (undefined: nothing to do). `current` is unknown: the sinks re-read it.
   */
  private corrective(check: Op): Op | undefined {
    const w = check.recheck;
    const s = check.plan;
    if (w === undefined || w.outcome === 'failed') return undefined;
    const want = s.desired.get(check.id);
    const base = { key: s.key, id: check.id, plan: s, state: 'queued' as const, cancelled: false };
    if (want !== undefined) {
      if (w.desired !== undefined && contentOf(w.desired) === contentOf(want)) return undefined;
      return { ...base, operation: w.operation === 'delete' ? 'create' : 'update', desired: want };
    }
    // Not desired: delete what the older write made, unless the service has generation problems
    // (never delete on error).
    if (w.operation === 'delete' || s.problems.length > 0) return undefined;
    return { ...base, operation: 'delete' };
  }

  private schedule(lane: Lane): void {
    if (lane.scheduled) return;
    lane.scheduled = true;
    this.fresh.push(lane);
  }

  /** Starts writers while there is work and a free slot. */
  private pump(): void {
    while (this.workers < this.concurrency && (this.fresh.size > 0 || this.ring.size > 0)) {
      this.workers++;
      void this.worker()
        .catch((err: unknown) => this.logger.error({ err }, 'EnvoyFilter writer failed'))
        .finally(
          guarded(
            () => {
              this.workers--;
              this.pump();
            },
            (err) => this.logger.error({ err }, 'restarting EnvoyFilter writers failed'),
          ),
        );
    }
  }

  private async worker(): Promise<void> {
    for (;;) {
      const op = this.pick();
      if (op === undefined) return;
      await this.execute(op);
    }
  }

  /** The next write: an idle-until-now lane first, else round-robin over the busy lanes. */
  private pick(): Op | undefined {
    for (;;) {
      const lane = this.fresh.shift() ?? this.ring.shift();
      if (lane === undefined) return undefined;
      const op = lane.queue[lane.head++];
      if (lane.head < lane.queue.length) this.ring.push(lane);
      else {
        lane.scheduled = false;
        lane.queue = [];
        lane.head = 0;
      }
      if (op === undefined || op.state !== 'queued') continue;
      const busy = this.inflight.get(op.id);
      if (busy !== undefined && !busy.cancelled) {
        this.defer(op);
        continue;
      }
      op.state = 'picked';
      this.inflight.set(op.id, op);
      return op;
    }
  }

  /** Settles one write of a plan; the plan finishes with its last write. */
  private settle(op: Op): void {
    if (op.state === 'settled') return;
    op.state = 'settled';
    const s = op.plan;
    s.open.delete(op);
    if (s.open.size === 0 && this.batchPlanned(s)) void this.finish(s);
  }

  /** Whether the plan was installed (a plan still being installed finishes at the end of it). */
  private batchPlanned(s: KeyState): boolean {
    return this.lanes.get(s.key)?.plan === s || s.superseded;
  }

  /** A plan whose writes are all settled: Aeraki adoption, retry bookkeeping, then its batch. */
  private async finish(s: KeyState): Promise<void> {
    if (s.finished) return;
    s.finished = true;
    const batch = s.batch;
    try {
      if (
        this.o.adoptAeraki === true &&
        this.sink.listForeign !== undefined &&
        !s.superseded &&
        !batch.signal.aborted
      )
        await this.adopt(new Map([[s.key, s]]), batch.signal);
      this.finishKey(s, batch.signal);
      const lane = this.lanes.get(s.key);
      if (lane !== undefined && lane.plan === s && !lane.scheduled) this.lanes.delete(s.key);
    } catch (err) {
      this.logger.error({ err, service: s.key }, 'finishing a service failed');
    }
    this.closeOne(batch);
  }

  private closeOne(batch: Batch): void {
    batch.open--;
    if (batch.open === 0) this.close(batch);
  }

  private close(batch: Batch): void {
    const result: PushResult = { keys: batch.keys, ...batch.counts };
    try {
      const live = new Map([...batch.states].filter(([, s]) => !s.superseded));
      this.conditions(live);
      this.updateGauges();
      this.o.metrics?.reconcileDuration.observe(
        { trigger: batch.trigger },
        (this.clock.now() - batch.started) / 1000,
      );
      this.logger.info({ trigger: batch.trigger, ...result, failing: this.failed.size }, 'reconciled');
    } catch (err) {
      this.logger.error({ err }, 'reporting a push failed');
    }
    this.batches.delete(batch);
    batch.resolve(result);
  }

  /** Notes (soft findings) of a key: logged and sent as a Warning Event once per change. */
  private note(key: string, notes: readonly GenerationProblem[]): void {
    if (notes.length === 0) {
      this.noted.delete(key);
      return;
    }
    const signature = notes.map(formatProblem).join('\n');
    if (this.noted.get(key) === signature) return;
    this.noted.set(key, signature);
    const refs = this.involved(key, undefined);
    for (const n of notes.slice(0, MAX_PROBLEMS_LISTED)) {
      this.logger.warn({ service: key, port: n.port }, `generation: ${formatProblem(n)}`);
      for (const ref of refs) this.eventer.event(ref, 'Warning', 'GenerationWarning', formatProblem(n));
    }
    if (notes.length > MAX_PROBLEMS_LISTED)
      this.logger.warn({ service: key }, `generation: and ${notes.length - MAX_PROBLEMS_LISTED} more notes`);
  }

  /** Generation problems of a plan: logged and sent as Events (the first MAX_PROBLEMS_LISTED). */
  private reportProblems(s: KeyState): void {
    if (s.problems.length === 0) return;
    const refs = this.involved(s.key, undefined);
    for (const p of s.problems.slice(0, MAX_PROBLEMS_LISTED)) {
      this.logger.warn({ service: s.key, port: p.port }, `generation: ${formatProblem(p)}`);
      for (const ref of refs)
        this.eventer.event(ref, 'Warning', 'EnvoyFilterFailed', `generation: ${formatProblem(p)}`);
    }
    if (s.problems.length > MAX_PROBLEMS_LISTED)
      this.logger.warn(
        { service: s.key },
        `generation: and ${s.problems.length - MAX_PROBLEMS_LISTED} more problems`,
      );
  }

  private generate(key: string): ServiceOutput {
    try {
      return generateForKeys(this.store, [key], this.o.generation).get(key) ?? empty();
    } catch (err) {
      // A generator bug costs this service only (its filters are kept), never the push.
      const message = `internal generator error: ${err instanceof Error ? err.message : String(err)}`;
      return { envoyFilters: [], problems: [{ service: key, message }], notes: [] };
    }
  }

  private orphanState(batch: Batch): KeyState {
    const key = '(unattributed)';
    let s = batch.states.get(key);
    if (s === undefined) {
      s = {
        key,
        batch,
        output: empty(),
        problems: [],
        desired: new Map(),
        actual: new Map(),
        failed: 0,
        retryNotBefore: 0,
        onlyRejected: true,
        open: new Set(),
        superseded: false,
        finished: false,
      };
      batch.states.set(key, s);
    }
    return s;
  }

  /** A rejected (422, foreign) content still within its long backoff: not resent, still failing. */
  private stillRejected(s: KeyState, id: string, content: string): boolean {
    const r = this.rejected.get(id);
    if (r === undefined) return false;
    if (r.content !== content || r.until <= this.clock.now()) {
      this.rejected.delete(id); // the content changed (or the backoff ran out): try again
      return false;
    }
    s.failed++;
    s.retryNotBefore = Math.max(s.retryNotBefore, r.until);
    return true;
  }

  /** One write: its token, then the sink call. Never throws; settles the write. */
  private async execute(op: Op): Promise<void> {
    const s = op.plan;
    const { signal, counts } = s.batch;
    const [namespace = '', name = ''] = op.id.split('/');
    try {
      if (signal.aborted) throw new BreezeError('API_RETRYABLE', 'aborted');
      await this.bucket.take(signal);
      if (op.cancelled) return; // superseded while waiting: the newer plan has it
      signal.throwIfAborted();
      op.state = 'writing';
      op.outcome = 'uncertain';
      if (op.operation === 'delete') {
        await this.sink.delete(namespace, name, signal, op.current);
        counts.deleted++;
        this.succeeded(op, 'EnvoyFilterDeleted', `EnvoyFilter ${op.id} deleted`);
      } else if (op.desired !== undefined) {
        const outcome = await this.sink.apply(op.desired, signal, op.current);
        if (outcome === 'unchanged') {
          counts.unchanged++;
          this.repaired(op.id);
        } else if (outcome === 'updated' || (outcome === undefined && op.current !== undefined)) {
          counts.updated++;
          this.succeeded(op, 'EnvoyFilterUpdated', `EnvoyFilter ${op.id} updated`);
        } else {
          counts.created++;
          this.succeeded(op, 'EnvoyFilterCreated', `EnvoyFilter ${op.id} created`);
        }
      }
      op.outcome = 'ok';
    } catch (err) {
      if (op.outcome === 'uncertain' && !signal.aborted && toApiError(err, op.id).code !== 'API_RETRYABLE')
        op.outcome = 'failed'; // the API server answered: nothing was applied
      try {
        this.recordFailure(op, err);
      } catch (e) {
        this.logger.error({ err: e, envoyFilter: op.id }, 'recording a failed write failed');
      }
    } finally {
      if (this.inflight.get(op.id) === op) this.inflight.delete(op.id);
      this.settle(op);
      this.release(op.id);
    }
  }

  private recordFailure(op: Op, err: unknown): void {
    const s = op.plan;
    const { signal, counts } = s.batch;
    counts.failed++;
    s.failed++;
    if (signal.aborted) {
      s.onlyRejected = false;
      return; // a lost lease, a shutdown: not the object's fault; the next leader resyncs
    }
    // BreezeErrors pass through; a quoted inlined password never reaches the log or an Event.
    const e = redactWriteError(toApiError(err, `${op.operation} ${op.id}`), [op.desired, op.current]);
    const code = e.code;
    const rejected = code === 'API_INVALID' || code === 'FOREIGN_OBJECT';
    if (rejected) {
      const until = this.clock.now() + this.invalidRetryMs;
      this.rejected.set(op.id, {
        content: op.desired === undefined ? 'delete' : contentOf(op.desired),
        until,
      });
      s.retryNotBefore = Math.max(s.retryNotBefore, until);
    } else {
      s.onlyRejected = false;
      if (e.retryAfterMs !== undefined)
        s.retryNotBefore = Math.max(s.retryNotBefore, this.clock.now() + e.retryAfterMs);
    }
    this.fail(op.id, op.key, op.operation, code, e.status, e.message);
    const target = op.desired ?? op.current;
    for (const ref of this.involved(op.key, target))
      this.eventer.event(
        ref,
        'Warning',
        'EnvoyFilterFailed',
        `EnvoyFilter ${op.id}: ${op.operation} failed: ${e.message}`,
      );
  }

  private succeeded(
    op: Op | { id: string; key: string; operation: Operation },
    reason: EventReason,
    message: string,
  ): void {
    this.repaired(op.id);
    this.o.metrics?.reconcileWrites.inc({ operation: op.operation, result: 'success' });
    this.logger.info({ service: op.key, envoyFilter: op.id, operation: op.operation }, message);
    const target = 'desired' in op ? (op.desired ?? op.current) : undefined;
    for (const ref of this.involved(op.key, target)) this.eventer.event(ref, 'Normal', reason, message);
  }

  private repaired(id: string): void {
    this.failed.delete(id);
    this.rejected.delete(id);
  }

  private fail(
    id: string,
    service: string,
    operation: Operation,
    code: BreezeErrorCode,
    status: number | undefined,
    message: string,
  ): void {
    const attempts = (this.failed.get(id)?.attempts ?? 0) + 1;
    this.failed.set(id, {
      object: id,
      service,
      operation,
      code,
      status,
      message,
      at: this.clock.now(),
      attempts,
    });
    this.o.metrics?.reconcileWrites.inc({ operation, result: code });
    this.logger.warn({ service, envoyFilter: id, operation, code, status, attempts }, message);
  }

  /**
   * Retry bookkeeping and stale failure cleanup of one key after its operations. A superseded plan
   * only adds a retry for its own failed writes (the newer plan owns the rest).
   */
  private finishKey(s: KeyState, signal: AbortSignal): void {
    if (!s.superseded) {
      // Failures of objects this key no longer desires nor has are moot.
      for (const [id, f] of this.failed) {
        if (f.service !== s.key || f.operation === 'adopt_delete') continue;
        if (!s.desired.has(id) && !s.actual.has(id)) this.repaired(id);
      }
      if (s.failed === 0) {
        this.retries.delete(s.key);
        return;
      }
    }
    if (s.failed === 0 || signal.aborted) return;
    const attempts = (this.retries.get(s.key)?.attempts ?? 0) + 1;
    const now = this.clock.now();
    const backoff = s.onlyRejected ? 0 : backoffDelay(attempts, this.retryBackoff, this.random);
    const at = Math.max(now + backoff, s.retryNotBefore);
    this.retries.set(s.key, { at, attempts });
    this.o.onRetry?.(s.key, at);
  }

  // ---- Aeraki migration ---------------------------------------------------------------------

  private async adopt(states: Map<string, KeyState>, signal: AbortSignal): Promise<void> {
    const sink = this.sink as EnvoyFilterSink & ForeignEnvoyFilters;
    const ready = [...states.values()].filter(
      (s) => s.problems.length === 0 && s.failed === 0 && s.desired.size > 0,
    );
    if (ready.length === 0) return;
    if (this.aeraki === undefined) {
      try {
        await this.bucket.take(signal);
        this.aeraki = await sink.listForeign(`${AERAKI_LABEL}=${AERAKI_VALUE}`, signal);
      } catch (err) {
        this.logger.warn(
          { err: toApiError(err, 'list Aeraki EnvoyFilters').message },
          'Aeraki EnvoyFilters not listed',
        );
        for (const s of ready) {
          s.failed++;
          s.onlyRejected = false;
        }
        return;
      }
    }
    const work: { s: KeyState; ef: JsonRecord }[] = [];
    for (const s of ready) {
      const service = this.store.protocolService(s.key);
      if (service === undefined) continue;
      for (const ef of this.aeraki) if (this.replacedBy(ef, service, s)) work.push({ s, ef });
    }
    await forEachLimited(work, this.concurrency, async ({ s, ef }) => {
      const id = idOf(ef);
      const op = { id, key: s.key, operation: 'adopt_delete' as const };
      try {
        await this.bucket.take(signal);
        await sink.deleteForeign(ef, AERAKI_LABEL, AERAKI_VALUE, signal);
        this.aeraki = this.aeraki?.filter((a) => a !== ef);
        this.succeeded(op, 'EnvoyFilterDeleted', `Aeraki's EnvoyFilter ${id} deleted: replaced by Breeze's`);
      } catch (err) {
        s.failed++;
        if (signal.aborted) return;
        const e = toApiError(err, `delete Aeraki's EnvoyFilter ${id}`);
        if (e.code === 'FOREIGN_OBJECT') this.aeraki = this.aeraki?.filter((a) => a !== ef);
        s.onlyRejected = false;
        this.fail(id, s.key, 'adopt_delete', e.code, e.status, e.message);
        for (const ref of this.involved(s.key, undefined))
          this.eventer.event(ref, 'Warning', 'EnvoyFilterFailed', e.message);
      }
    });
  }

  /**
   * Is this Aeraki EnvoyFilter the one Breeze's desired filters replace? Aeraki names them
   * `aeraki-outbound-<host>-<vip>-<port>` and `aeraki-inbound-<host>-<port>` (older:
   * `aeraki-outbound-<host>`, `aeraki-inbound-<host>`), from the service's first host, in the
   * root namespace (or the service's own with namespace scope).
   */
  private replacedBy(ef: JsonRecord, service: ServiceView, s: KeyState): boolean {
    const meta = asRecord(ef.metadata);
    const labels = asRecord(meta?.labels);
    if (labels?.[AERAKI_LABEL] !== AERAKI_VALUE) return false;
    const ns = asString(meta?.namespace);
    if (ns !== this.o.generation.rootNamespace && ns !== service.namespace) return false;
    const name = asString(meta?.name) ?? '';
    const host = service.hosts[0];
    if (host === undefined) return false;
    const names = new Set([...s.desired.keys()].map((id) => id.slice(id.indexOf('/') + 1)));
    const ours = (n: string): boolean => names.has(n);
    const outbound = `aeraki-outbound-${host}`;
    const inbound = `aeraki-inbound-${host}`;
    if (name === outbound)
      return service.addresses.some((vip) =>
        service.ports.some((p) => ours(outboundName(host, vip, p.number))),
      );
    if (name === inbound) return service.ports.some((p) => ours(inboundName(host, p.number)));
    if (name.startsWith(`${outbound}-`)) {
      const m = /^(.+)-(\d+)$/.exec(name.slice(outbound.length + 1));
      return m !== null && ours(outboundName(host, m[1] ?? '', Number(m[2])));
    }
    if (name.startsWith(`${inbound}-`)) {
      const m = /^(\d+)$/.exec(name.slice(inbound.length + 1));
      return m !== null && ours(inboundName(host, Number(m[1])));
    }
    return false;
  }

  // ---- Events and status --------------------------------------------------------------------

  /** The objects to report on: the service, and the Redis CRs an EnvoyFilter was generated from. */
  private involved(key: string, envoyFilter: JsonRecord | undefined): InvolvedObject[] {
    const out: InvolvedObject[] = [];
    const refs = [
      key,
      ...(envoyFilter === undefined
        ? []
        : sourcesOf(envoyFilter).filter((k) => STATUS_KINDS[k.split('/')[0] ?? ''] !== undefined)),
    ];
    for (const ref of new Set(refs)) {
      const [kind = '', namespace = '', name = ''] = ref.split('/');
      if (name === '') continue;
      const obj = this.store.get(kind, namespace, name)?.object;
      const meta = asRecord(obj?.metadata);
      const apiVersion =
        asString(obj?.apiVersion) ??
        STATUS_KINDS[kind]?.apiVersion ??
        (kind === 'Service' ? 'v1' : 'networking.istio.io/v1');
      const uid = asString(meta?.uid);
      out.push({ apiVersion, kind, namespace, name, ...(uid === undefined ? {} : { uid }) });
    }
    return out;
  }

  /** EnvoyFilterGenerated on the RedisServices and RedisDestinations of the services just reconciled. */
  private conditions(states: Map<string, KeyState>): void {
    const verdicts = new Map<string, { ok: boolean; message: string }>();
    for (const s of states.values()) {
      const crs = new Set<string>();
      for (const ef of [...s.desired.values(), ...s.actual.values()])
        for (const src of sourcesOf(ef))
          if (STATUS_KINDS[src.split('/')[0] ?? ''] !== undefined) crs.add(src);
      const service = this.store.protocolService(s.key);
      for (const host of service?.hosts ?? []) {
        for (const kind of ['RedisService', 'RedisDestination'] as const)
          for (const e of this.store.forHost(kind, host))
            if (e.namespace === service?.namespace) crs.add(e.key);
      }
      if (crs.size === 0) continue;
      const failure = [...this.failed.values()].find((f) => f.service === s.key);
      const problem = s.problems[0];
      const ok = problem === undefined && failure === undefined && s.failed === 0;
      const message = ok
        ? `EnvoyFilters of ${s.key} are up to date (${s.desired.size})`
        : problem !== undefined
          ? `generation: ${formatProblem(problem)}`
          : `EnvoyFilter ${failure?.object ?? ''}: ${failure?.message ?? 'write failed'}`;
      for (const cr of crs) {
        const prev = verdicts.get(cr);
        if (prev === undefined || (prev.ok && !ok)) verdicts.set(cr, { ok, message });
      }
    }
    for (const [cr, v] of verdicts) {
      const [kind = '', namespace = '', name = ''] = cr.split('/');
      const obj = this.store.get(kind, namespace, name)?.object;
      if (obj === undefined) continue;
      this.eventer.condition(
        { ...obj, kind },
        {
          status: v.ok ? 'True' : 'False',
          reason: v.ok
            ? 'Generated'
            : v.message.startsWith('generation:')
              ? 'GenerationFailed'
              : 'WriteFailed',
          message: v.message,
        },
      );
    }
  }

  private updateGauges(): void {
    const m = this.o.metrics;
    if (m === undefined) return;
    m.reconcileFailures.reset();
    const byCode = new Map<string, number>();
    for (const f of this.failed.values()) byCode.set(f.code, (byCode.get(f.code) ?? 0) + 1);
    for (const [code, n] of byCode) m.reconcileFailures.set({ code }, n);
    m.reconcileRetriesPending.set(this.retries.size);
  }
}

function empty(): ServiceOutput {
  return { envoyFilters: [], problems: [], notes: [] };
}

/** What a desired EnvoyFilter says (its content hash and annotations): a rejection is remembered by it. */
function contentOf(ef: JsonRecord): string {
  const a = annotationsOf(ef);
  return `${a[CONTENT_HASH_ANNOTATION] ?? ''}|${JSON.stringify(a)}`;
}

/** The same write of the same object (so one in flight stands for the other). */
function sameWrite(a: Op, b: Op): boolean {
  if (a.id !== b.id) return false;
  if (a.desired === undefined || b.desired === undefined)
    return a.operation === 'delete' && b.operation === 'delete';
  return contentOf(a.desired) === contentOf(b.desired);
}

/** A FIFO with O(1) push and shift. */
class Deque<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
