// Coalesces bursts of dirty keys into pushes, as Aeraki's (and Istio's) debounce does: a push
// starts once no key was added for `quietMs`, or `maxMs` after the first pending key at the latest
// (a steady stream of events cannot starve pushes). Pushes never overlap.
import { guarded } from '../errors.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

export type PushFn = (keys: Set<string>) => Promise<void>;

export interface DebouncerOptions {
  /** Quiet period: push once no key was added for this long. Default 500 ms. */
  readonly quietMs?: number;
  /** Upper bound from the first pending key to its push. Default 10 s. */
  readonly maxMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: Pick<Metrics, 'debounceEvents' | 'pushes' | 'pushDuration' | 'pushKeys'>;
}

export const DEFAULT_QUIET_MS = 500;
export const DEFAULT_MAX_MS = 10_000;

/**
 * Collects dirty keys and calls `push` with them, debounced.
 *
 * - A push starts when no key was added for `quietMs`, or when `maxMs` has passed since the first
 *   key still pending, whichever comes first.
 * - At most one push runs at a time. Keys added while a push runs are pending for the next one;
 *   their quiet/max timers count from when they were added, so the next push may start as soon as
 *   the running one ends.
 * - A push that throws (or rejects) is logged and counted (`breeze_push_total{result="failure"}`);
 *   the debouncer carries on. Its keys are NOT retried by the debouncer: the push function owns
 *   them and decides — to retry, it calls `add()` with the keys it could not handle (they are then
 *   pushed after the next quiet period, which acts as a back-off), or it drops them and relies on
 *   a later event or resync.
 * - `stop()` discards keys still pending; call `flush()` first to push them.
 */
export class Debouncer {
  readonly quietMs: number;
  readonly maxMs: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly metrics: DebouncerOptions['metrics'];
  private pending = new Set<string>();
  /** When the first key now pending was added. */
  private firstAt: number | undefined;
  /** When a key was last added. */
  private lastAt = 0;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly push: PushFn,
    opts: DebouncerOptions = {},
  ) {
    this.quietMs = opts.quietMs ?? DEFAULT_QUIET_MS;
    this.maxMs = opts.maxMs ?? DEFAULT_MAX_MS;
    if (!(this.quietMs >= 0) || !(this.maxMs >= this.quietMs))
      throw new Error(`debouncer: need 0 <= quietMs (${this.quietMs}) <= maxMs (${this.maxMs})`);
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? createLogger({ level: 'silent' })).child({ component: 'debouncer' });
    this.metrics = opts.metrics;
  }

  /** Marks keys dirty. Ignored after stop(). */
  add(keys: Iterable<string>): void {
    if (this.stopped) return;
    let n = 0;
    for (const k of keys) {
      this.pending.add(k);
      n++;
    }
    if (n === 0) return;
    this.metrics?.debounceEvents.inc(n);
    const now = this.clock.now();
    this.firstAt ??= now;
    this.lastAt = now;
    // An armed timer re-arms itself for the remaining time when it fires (no timer churn per key).
    if (this.timer === undefined && this.running === undefined) this.arm();
  }

  /** Keys waiting for the next push. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Whether a push is running. */
  get pushing(): boolean {
    return this.running !== undefined;
  }

  /**
   * Pushes the pending keys now: waits for a running push, then pushes what is pending (if
   * anything). Resolves when that push is over, whether it succeeded or not.
   */
  async flush(): Promise<void> {
    while (this.running !== undefined) await this.running;
    if (this.stopped || this.pending.size === 0) return;
    await this.start();
  }

  /** Cancels the timers, discards pending keys and waits for a running push to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.disarm();
    this.pending = new Set();
    this.firstAt = undefined;
    while (this.running !== undefined) await this.running;
  }

  private disarm(): void {
    if (this.timer === undefined) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Starts the push if it is due, else sets the timer for when it will be. */
  private arm(): void {
    this.disarm();
    if (this.stopped || this.running !== undefined || this.firstAt === undefined) return;
    const due = Math.min(this.lastAt + this.quietMs, this.firstAt + this.maxMs);
    const wait = due - this.clock.now();
    if (wait <= 0) {
      void this.start();
      return;
    }
    this.timer = this.clock.setTimeout(
      guarded(
        () => {
          this.timer = undefined;
          this.arm();
        },
        (err) => this.log.error({ err }, 'debounce timer failed'),
      ),
      wait,
    );
  }

  private start(): Promise<void> {
    this.disarm();
    const keys = this.pending;
    this.pending = new Set();
    this.firstAt = undefined;
    const run = this.run(keys).finally(
      guarded(
        () => {
          this.running = undefined;
          this.arm();
        },
        (err) => this.log.error({ err }, 'debouncer: arming the next push failed'),
      ),
    );
    this.running = run;
    return run;
  }

  /** Never rejects (a rejection here would be unhandled: `start` is called from a timer). */
  private async run(keys: Set<string>): Promise<void> {
    const started = this.clock.now();
    let result: 'success' | 'failure' = 'success';
    try {
      await this.push(keys);
    } catch (err) {
      result = 'failure';
      this.log.error({ err, keys: keys.size }, 'push failed');
    }
    try {
      const seconds = Math.max(0, this.clock.now() - started) / 1000;
      this.metrics?.pushes.inc({ result });
      this.metrics?.pushDuration.observe(seconds);
      this.metrics?.pushKeys.observe(keys.size);
      this.log.debug({ keys: keys.size, seconds, result }, 'push done');
    } catch (err) {
      this.log.error({ err }, 'push metrics failed');
    }
  }
}
