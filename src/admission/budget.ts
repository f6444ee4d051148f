import { performance } from 'node:perf_hooks';
import { BreezeError } from '../errors.js';
import { REQUEST_CPU_BUDGET_MS } from '../model/limits.js';

/** CPU time of this process in ms (user + system, all threads). */
function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Clock reads are sampled on every SAMPLE_EVERY-th check() with the real clocks (a syscall each). */
const SAMPLE_EVERY = 32;

/**
 * The time one admission request may spend in validators and mutators. Validators call `check()`
 * in every loop over input of unbounded size (every N items is enough); past the budget it throws
 * BudgetExceeded, which the handler turns into a denial naming the limit (never a 500, never a
 * state change). A budget that never expires is `CpuBudget.unlimited()` (offline `breeze validate`).
 *
 * The budget is spent only when the wall time since the request began is past it AND the process
 * used at least half of it in CPU time since the wall time passed half of it. Other processes on a
 * busy node stretch wall time but not our CPU time, and other threads of ours (GC, a parsing
 * worker) add CPU time but not wall time, so neither makes a valid object's decision depend on the
 * machine's load. The CPU clock (a getrusage syscall, several microseconds) is read only by
 * requests already past half the budget, never by the ordinary ones, and then at most once per
 * hundredth of the budget. Tests inject the clocks.
 */
export class CpuBudget {
  private readonly start: number;
  private readonly now: () => number;
  private readonly cpu: (() => number) | undefined;
  private readonly sampleEvery: number;
  /** Least wall time between two reads of the CPU clock (0: every sample, with injected clocks). */
  private readonly cpuEveryMs: number;
  /** Wall time (since start) of the last CPU clock read. */
  private lastCpuRead = Number.NEGATIVE_INFINITY;
  private calls = 0;
  /** Process CPU time when the wall time first passed half the budget. */
  private cpuAtHalf: number | undefined;

  /**
   * @param now wall clock in ms; injected by tests, then read on every check
   * @param cpu process CPU clock in ms; by default the real one when `now` is not injected, none
   *   (wall time only) when it is, unless given too
   */
  constructor(
    readonly budgetMs: number = REQUEST_CPU_BUDGET_MS,
    now?: () => number,
    cpu?: () => number,
  ) {
    this.now = now ?? (() => performance.now());
    this.cpu = cpu ?? (now === undefined ? processCpuMs : undefined);
    this.sampleEvery = now === undefined ? SAMPLE_EVERY : 1;
    // A loop over 100,000 items past halfway would otherwise read it 3,000 times (7 ms of syscalls).
    this.cpuEveryMs = now === undefined ? budgetMs / 100 : 0;
    this.start = this.now();
  }

  static unlimited(): CpuBudget {
    return new CpuBudget(Number.POSITIVE_INFINITY);
  }

  get exceeded(): boolean {
    const wall = this.now() - this.start;
    if (this.cpu === undefined) return wall > this.budgetMs;
    if (!(wall > this.budgetMs / 2)) return false;
    if (this.cpuEveryMs > 0 && wall - this.lastCpuRead < this.cpuEveryMs) return false;
    this.lastCpuRead = wall;
    const cpu = this.cpu();
    if (this.cpuAtHalf === undefined) {
      this.cpuAtHalf = cpu;
      return false;
    }
    return wall > this.budgetMs && cpu - this.cpuAtHalf > this.budgetMs / 2;
  }

  /** Throws BudgetExceeded once the budget is spent. Cheap: the clocks are read now and then. */
  check(): void {
    if (this.calls++ % this.sampleEvery !== 0) return;
    if (this.exceeded) throw new BudgetExceeded(this.budgetMs);
  }
}

export class BudgetExceeded extends BreezeError {
  constructor(readonly budgetMs: number) {
    super(
      'BAD_REQUEST',
      `the object is too costly to check: Breeze stops after ${budgetMs} ms of work on one request`,
    );
  }
}
