import { guarded } from '../errors.js';
import type { ConfigStore } from '../cache/store.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { sleepOn, systemClock, type Clock, type TimerHandle } from './clock.js';
import { Debouncer } from './debouncer.js';
import type { Reconciler } from './reconciler.js';

export interface ControllerOptions {
  readonly store: ConfigStore;
  readonly reconciler: Reconciler;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly quietMs: number;
  readonly maxMs: number;
  /** Full level-triggered pass of every service this often (`--resync-interval`). */
  readonly resyncIntervalMs: number;
  readonly clock?: Clock;
}

/** How long a graceful stop waits for queued writes before it aborts them (local mode). */
export const SHUTDOWN_FLUSH_MS = 5000;

/**
 * The push loop: cache changes mark service keys dirty, the debouncer coalesces them, and the
 * reconciler converges those keys, but only while this replica leads (`startedLeading` gives the
 * signal that aborts the moment leadership is lost). Every replica keeps its cache warm; a new
 * leader starts with a full resync.
 *
 * A push only plans its keys and queues their writes: the reconciler's write queue shares the
 * write rate fairly between services, so a service with a big backlog never holds up the first
 * write of another, and the next push (or resync) does not wait for a backlog to drain. At most
 * one periodic resync is outstanding. `stop()` and lost leadership abort queued and in-flight
 * writes at once; what they did not write is repaired by the next leader's (or start's) resync.
 */
export class Controller {
  private readonly clock: Clock;
  private readonly debouncer: Debouncer;
  /** Aborts on lost leadership or stop(): the signal every write of this term carries. */
  private term: AbortController | undefined;
  private resyncing: Promise<void> | undefined;
  private resyncTimer: TimerHandle | undefined;
  private readonly retryTimers = new Map<string, TimerHandle>();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly o: ControllerOptions) {
    this.clock = o.clock ?? systemClock;
    this.debouncer = new Debouncer((keys) => this.push(keys), {
      quietMs: o.quietMs,
      maxMs: o.maxMs,
      clock: this.clock,
      logger: o.logger,
      ...(o.metrics === undefined ? {} : { metrics: o.metrics }),
    });
  }

  /** Follows the cache from now on. */
  start(): void {
    this.unsubscribe = this.o.store.subscribe((keys) => this.debouncer.add(keys));
  }

  /** Leadership gained (or always, without election): resync everything, then follow changes. */
  startedLeading(signal: AbortSignal): Promise<void> {
    this.term?.abort(new Error('a new term started'));
    const term = new AbortController();
    this.term = term;
    // A child controller, not AbortSignal.any() (that one leaks listeners on some Node 20 releases).
    if (signal.aborted || this.stopped) term.abort(signal.reason);
    else signal.addEventListener('abort', () => term.abort(signal.reason), { once: true });
    this.o.logger.info('leading: reconciling EnvoyFilters');
    this.scheduleResync();
    return this.resync();
  }

  /** Leadership lost: no new writes, queued and in-flight ones aborted. */
  stoppedLeading(): void {
    this.term?.abort(new Error('not leading'));
    this.term = undefined;
    if (this.resyncTimer !== undefined) this.clock.clearTimeout(this.resyncTimer);
    this.o.logger.info('not leading: EnvoyFilter writes stopped');
  }

  get leading(): boolean {
    return this.term !== undefined && !this.term.signal.aborted;
  }

  /**
   * Pushes pending keys now and waits for their writes (tests, shutdown); with `timeoutMs`, waits
   * at most that long (the writes go on).
   */
  async flush(timeoutMs?: number): Promise<void> {
    const all = (async (): Promise<void> => {
      await this.debouncer.flush();
      await this.o.reconciler.idle();
    })();
    if (timeoutMs === undefined) return all;
    const give = new AbortController();
    await Promise.race([all, sleepOn(this.clock, timeoutMs, give.signal)]);
    give.abort();
  }

  /** Stops following the cache and aborts every queued and in-flight write; resolves promptly. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.term?.abort(new Error('stopping'));
    if (this.resyncTimer !== undefined) this.clock.clearTimeout(this.resyncTimer);
    for (const t of this.retryTimers.values()) this.clock.clearTimeout(t);
    this.retryTimers.clear();
    await this.debouncer.stop();
    await this.o.reconciler.idle();
  }

  /** Retries scheduled by the reconciler come back through the debouncer. */
  readonly onRetry = (key: string, at: number): void => {
    if (this.stopped) return;
    const previous = this.retryTimers.get(key);
    if (previous !== undefined) this.clock.clearTimeout(previous);
    const wait = Math.max(0, at - this.clock.now());
    this.retryTimers.set(
      key,
      this.clock.setTimeout(
        guarded(
          () => {
            this.retryTimers.delete(key);
            this.debouncer.add([key]);
          },
          (err) => this.o.logger.error({ err, key }, 'scheduling a retry failed'),
        ),
        wait,
      ),
    );
  };

  /** Plans the keys and queues their writes; does not wait for the writes. */
  private async push(keys: Set<string>): Promise<void> {
    const signal = this.term?.signal;
    if (signal === undefined || signal.aborted) return; // a standby: the next leader resyncs
    const { queued, done } = this.o.reconciler.submit(keys, signal);
    done.then(
      (result) => this.o.logger.debug({ ...result }, 'push done'),
      (err: unknown) => this.o.logger.error({ err }, 'push failed'),
    );
    await queued;
  }

  /** Never rejects: a failed resync is logged and the next one (or the per-key retries) repairs. */
  private resync(): Promise<void> {
    const signal = this.term?.signal;
    if (signal === undefined || signal.aborted) return Promise.resolve();
    const run = (async (): Promise<void> => {
      try {
        const result = await this.o.reconciler.resync(signal);
        this.o.logger.info({ ...result }, 'resync done');
      } catch (err) {
        this.o.logger.error({ err }, 'resync failed');
      }
    })();
    this.resyncing = run;
    void run.finally(() => {
      if (this.resyncing === run) this.resyncing = undefined;
    });
    return run;
  }

  private scheduleResync(): void {
    if (this.resyncTimer !== undefined) this.clock.clearTimeout(this.resyncTimer);
    this.resyncTimer = this.clock.setTimeout(
      guarded(
        () => {
          if (this.stopped || !this.leading) return;
          this.scheduleResync();
          // One at a time: a resync still draining a backlog is not queued again behind itself.
          if (this.resyncing === undefined) void this.resync();
        },
        (err) => this.o.logger.error({ err }, 'scheduling a resync failed'),
      ),
      this.o.resyncIntervalMs,
    );
  }
}
