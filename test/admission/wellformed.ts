import fc from 'fast-check';
import type { Findings } from '../../src/admission/findings.js';

/**
 * Property: for any value `arbitrary` produces, `check` never throws, every problem has a `spec`
 * field path and a message, and every warning fits Kubernetes' 120-character budget.
 */
export function assertWellFormed<T>(
  arbitrary: fc.Arbitrary<T>,
  check: (value: T) => Findings,
  numRuns = 1000,
): void {
  fc.assert(
    fc.property(arbitrary, (value) => {
      const f = check(value);
      return (
        f.problems.every((p) => p.path.startsWith('spec') && p.message !== '') &&
        f.warnings.every((w) => w.length <= 120)
      );
    }),
    { numRuns },
  );
}
