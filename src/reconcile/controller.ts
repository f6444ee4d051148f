import type { ConfigStore } from '../cache/store.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
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

/**
 * The push loop: cache changes mark service keys dirty, the debouncer coalesces them, and the
 * reconciler converges those keys, but only while this replica leads (`startedLeading` gives the
 * signal that aborts the moment leadership is lost). Every replica keeps its cache warm; a new
 * leader starts with a full resync. Pushes, resyncs and retries never run concurrently.
 */
export class Controller {
  private readonly clock: Clock;
  private readonly debouncer: Debouncer;
  private signal: AbortSignal | undefined;
  private serial: Promise<unknown> = Promise.resolve();
  private resyncTimer: TimerHandle | undefined;
  private readonly retryTimers = new Map<string, TimerHandle>();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly o: ControllerOptions) {
    this.clock = o.clock ?? systemClock;
    this.debouncer = new Debouncer((keys) => this.run(() => this.push(keys)), {
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
    this.signal = signal;
    this.o.logger.info('leading: reconciling EnvoyFilters');
    this.scheduleResync();
    return this.run(() => this.resync());
  }

  /** Leadership lost: the signal is already aborted; no new writes. */
  stoppedLeading(): void {
    this.signal = undefined;
    if (this.resyncTimer !== undefined) this.clock.clearTimeout(this.resyncTimer);
    this.o.logger.info('not leading: EnvoyFilter writes stopped');
  }

  get leading(): boolean {
    return this.signal !== undefined && !this.signal.aborted;
  }

  /** Pushes pending keys now and waits for the push (tests, shutdown). */
  async flush(): Promise<void> {
    await this.debouncer.flush();
    await this.serial;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.resyncTimer !== undefined) this.clock.clearTimeout(this.resyncTimer);
    for (const t of this.retryTimers.values()) this.clock.clearTimeout(t);
    await this.debouncer.stop();
    await this.serial;
  }

  /** Retries scheduled by the reconciler come back through the debouncer. */
  readonly onRetry = (key: string, at: number): void => {
    if (this.stopped) return;
    const previous = this.retryTimers.get(key);
    if (previous !== undefined) this.clock.clearTimeout(previous);
    const wait = Math.max(0, at - this.clock.now());
    this.retryTimers.set(
      key,
      this.clock.setTimeout(() => {
        this.retryTimers.delete(key);
        this.debouncer.add([key]);
      }, wait),
    );
  };

  private run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.serial.then(work, work);
    this.serial = next.catch(() => undefined);
    return next;
  }

  private async push(keys: Set<string>): Promise<void> {
    const signal = this.signal;
    if (signal === undefined || signal.aborted) return; // a standby: the next leader resyncs
    const result = await this.o.reconciler.reconcile(keys, signal);
    this.o.logger.debug({ ...result }, 'push done');
  }

  /** Never rejects: a failed resync is logged and the next one (or the per-key retries) repairs. */
  private async resync(): Promise<void> {
    const signal = this.signal;
    if (signal === undefined || signal.aborted) return;
    try {
      const result = await this.o.reconciler.resync(signal);
      this.o.logger.info({ ...result }, 'resync done');
    } catch (err) {
      this.o.logger.error({ err }, 'resync failed');
    }
  }

  private scheduleResync(): void {
    if (this.resyncTimer !== undefined) this.clock.clearTimeout(this.resyncTimer);
    this.resyncTimer = this.clock.setTimeout(() => {
      if (this.stopped || !this.leading) return;
      this.scheduleResync();
      void this.run(() => this.resync());
    }, this.o.resyncIntervalMs);
  }
}
