import { performance } from 'node:perf_hooks';
import { BreezeError } from '../errors.js';
import { REQUEST_CPU_BUDGET_MS } from '../model/limits.js';

/**
 * The time one admission request may spend in validators and mutators. Validators call `check()`
 * in every loop over input of unbounded size (every N items is enough); past the budget it throws
 * BudgetExceeded, which the handler turns into a denial naming the limit (never a 500, never a
 * state change). A budget that never expires is `CpuBudget.unlimited()` (offline `breeze validate`).
 */
export class CpuBudget {
  private readonly deadline: number;

  constructor(
    readonly budgetMs: number = REQUEST_CPU_BUDGET_MS,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.deadline = now() + budgetMs;
  }

  static unlimited(): CpuBudget {
    return new CpuBudget(Number.POSITIVE_INFINITY);
  }

  get exceeded(): boolean {
    return this.now() > this.deadline;
  }

  /** Throws BudgetExceeded once the budget is spent. Cheap: one clock read. */
  check(): void {
    if (this.now() > this.deadline) throw new BudgetExceeded(this.budgetMs);
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
