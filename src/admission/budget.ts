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
 * The budget is spent only when both the wall time and the process's CPU time since the request
 * began exceed it: other processes on a busy node stretch wall time but not our CPU time, and other
 * threads of ours (GC, a file-parsing worker) add CPU time but not wall time, so neither makes a
 * valid object's decision depend on the machine's load. Tests inject one clock (`now`), which is
 * then read on every check.
 */
export class CpuBudget {
  private readonly wallDeadline: number;
  private readonly cpuDeadline: number;
  private readonly cpu: (() => number) | undefined;
  private readonly sampleEvery: number;
  private calls = 0;

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
    this.wallDeadline = this.now() + budgetMs;
    this.cpuDeadline = this.cpu === undefined ? 0 : this.cpu() + budgetMs;
  }

  private readonly now: () => number;

  static unlimited(): CpuBudget {
    return new CpuBudget(Number.POSITIVE_INFINITY);
  }

  get exceeded(): boolean {
    if (!(this.now() > this.wallDeadline)) return false;
    return this.cpu === undefined || this.cpu() > this.cpuDeadline;
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
