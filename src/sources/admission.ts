import type { AdmittedChange } from '../admission/handler.js';
import type { ConfigStore } from '../cache/store.js';
import { asRecord, type JsonRecord } from '../model/json.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

/** Keys whose last admitted object the feed remembers (see AdmissionFeed.recent). */
export const RECENT_MAX = 256;
/**
 * Largest object the feed remembers, in values (objects, arrays, scalars) and in characters of
 * its keys and strings; deeper than RECENT_MAX_DEPTH it is not remembered either. 256 of them
 * hold at most 16 Mi characters.
 */
export const RECENT_MAX_VALUES = 4096;
export const RECENT_MAX_CHARS = 64 * 1024;
export const RECENT_MAX_DEPTH = 64;

/** Whether a parsed JSON value is within the bounds above (stops at the first one passed). */
export function smallEnough(value: unknown): boolean {
  let values = 0;
  let chars = 0;
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 0 }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { v, depth } = top;
    if (++values > RECENT_MAX_VALUES || depth > RECENT_MAX_DEPTH) return false;
    if (typeof v === 'string') chars += v.length;
    else if (typeof v === 'object' && v !== null) {
      if (Array.isArray(v)) for (const item of v as unknown[]) stack.push({ v: item, depth: depth + 1 });
      else
        for (const [k, item] of Object.entries(v)) {
          chars += k.length;
          stack.push({ v: item, depth: depth + 1 });
        }
    }
    if (chars > RECENT_MAX_CHARS) return false;
  }
  return true;
}

/**
 * Whether two parsed JSON values are equal, keys in the same order (two parses of one text are).
 * `known` is one smallEnough() passed, so the walk is bounded by its size whatever `other` is.
 */
export function sameJson(known: unknown, other: unknown): boolean {
  if (known === other) return true;
  if (typeof known !== 'object' || typeof other !== 'object' || known === null || other === null)
    return false;
  if (Array.isArray(known)) {
    if (!Array.isArray(other) || known.length !== other.length) return false;
    for (let i = 0; i < known.length; i++) if (!sameJson(known[i], other[i])) return false;
    return true;
  }
  if (Array.isArray(other)) return false;
  const a = known as JsonRecord;
  const b = other as JsonRecord;
  const keys = Object.keys(a);
  const otherKeys = Object.keys(b);
  if (keys.length !== otherKeys.length) return false;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    if (k !== otherKeys[i] || !sameJson(a[k], b[k])) return false;
  }
  return true;
}

/**
 * The admission fast path into the cache, for local mode only (loopback webhook, where admission
 * and files are the only ways a change arrives): every allowed, non-dry-run change of a handled
 * kind is held as pending (cross-object checks and VIP allocation see it at once, and its
 * services are marked dirty). An authoritative source confirms it; one nobody confirms within
 * the grace period, while a source of its kind did report since, was never persisted (a later
 * webhook denied it, or a conflict) and is dropped. While every such source is silent it is held.
 *
 * Never in cluster mode: anyone who reaches the webhook port can POST a review the API server
 * never saw, so there the cache is fed by the Kubernetes watch alone (it delivers a persisted
 * change well within the debounce period).
 */
export class AdmissionFeed {
  private timer: NodeJS.Timeout | undefined;
  /**
   * Key → the last object admitted for it (as the webhook received it) and the object recorded
   * in the cache for it: a review of the very same object again (a retried apply, a client
   * re-sending) then only restarts the pending change's grace period, rather than costing the
   * cache a bounds walk, a canonical serialization and a digest (most of an allowed review's CPU
   * in local mode). Bounded: the most recent RECENT_MAX keys, each smallEnough().
   */
  private readonly recent = new Map<string, { readonly source: JsonRecord; readonly object: JsonRecord }>();

  constructor(
    private readonly store: ConfigStore,
    private readonly o: { graceMs: number; logger: Logger; metrics: Metrics },
  ) {}

  /**
   * Admitted changes not yet recorded, by key, in the order of each key's last change: the
   * webhook's callback (`admitted`) only queues, and one flush per event-loop turn (setImmediate)
   * records the last change of each key. An answer is written in the turn that decided it, and
   * the client's next request is read in a later turn, after the flush: a client sees the cache
   * as if each change were recorded at once. Concurrent reviews of one object, which have no
   * order between them anyway, cost the cache one recording per turn instead of one each (at
   * 16 concurrent reviews that was most of the feed's cost per review).
   */
  private readonly queued = new Map<string, AdmittedChange>();
  private flushing: NodeJS.Immediate | undefined;

  /** The webhook's `onAdmitted` callback: queues the change; it is recorded later in this event-loop turn. */
  readonly admitted = (change: AdmittedChange): void => {
    const key = `${change.kind}/${change.namespace}/${change.name}`;
    // Deleted first so the key moves to the end: keys are recorded in the order of their last change.
    this.queued.delete(key);
    this.queued.set(key, change);
    this.flushing ??= setImmediate(this.flush);
  };

  /** Records every queued change (never throws: it runs from setImmediate). */
  readonly flush = (): void => {
    this.flushing = undefined;
    for (const [key, change] of this.queued) {
      this.queued.delete(key);
      this.record(change);
    }
  };

  /** Records one admitted change in the cache now (tests, and the flush of the queue). */
  readonly record = (change: AdmittedChange): void => {
    try {
      this.recordOne(change);
    } catch (err) {
      // The answer to the request does not depend on the cache: log, never fail the request.
      this.o.logger.error(
        { err, config: `${change.kind}/${change.namespace}/${change.name}`.slice(0, 300) },
        'could not record an admitted change',
      );
    }
  };

  private recordOne(change: AdmittedChange): void {
    this.o.metrics.cacheChanges.inc({ origin: 'admission' });
    const key = `${change.kind}/${change.namespace}/${change.name}`;
    if (change.object === undefined) {
      this.recent.delete(key);
      this.store.apply(
        'admission',
        change.kind,
        change.namespace,
        change.name,
        undefined,
        change.deletedVersion,
      );
      return;
    }
    const last = this.recent.get(key);
    if (
      last !== undefined &&
      sameJson(last.source, change.object) &&
      this.store.refreshPending(change.kind, change.namespace, change.name, last.object)
    )
      return;
    this.recent.delete(key);
    // asRecord: spreading a metadata that is a string would make one key per character.
    const metadata = { ...(asRecord(change.object.metadata) ?? {}), namespace: change.namespace };
    const object = { ...change.object, metadata };
    this.store.apply('admission', change.kind, change.namespace, change.name, object);
    if (!smallEnough(change.object)) return;
    this.recent.set(key, { source: change.object, object });
    if (this.recent.size > RECENT_MAX) {
      const oldest = this.recent.keys().next();
      if (oldest.done !== true) this.recent.delete(oldest.value);
    }
  }

  /** Checks for expired changes every quarter of the grace period (at least once a second). */
  start(): void {
    const every = Math.max(1000, Math.floor(this.o.graceMs / 4));
    this.timer = setInterval(() => this.expire(), every);
    this.timer.unref();
  }

  /** One expiry pass; never throws (it runs from an interval: a throw would end the process). */
  expire(): void {
    try {
      this.expireOnce();
    } catch (err) {
      this.o.logger.error(
        { err },
        'expiring unconfirmed admitted changes failed; trying again at the next tick',
      );
    }
  }

  private expireOnce(): void {
    const { dropped, held } = this.store.expirePending(this.o.graceMs);
    for (const key of dropped) {
      this.o.metrics.admissionUnconfirmedDropped.inc();
      this.o.logger.debug(
        { config: key },
        'admitted change never confirmed by a source: dropped from the cache',
      );
    }
    this.o.metrics.admissionUnconfirmedHeld.set(held);
    if (held > 0)
      this.o.logger.debug(
        { held },
        'admitted changes past the grace period held: their sources reported nothing since (stalled?)',
      );
  }

  /** Stops the expiry timer; changes still queued are recorded first. */
  stop(): void {
    clearInterval(this.timer);
    if (this.flushing !== undefined) clearImmediate(this.flushing);
    this.flush();
  }
}
