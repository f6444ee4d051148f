import type { Logger } from '../telemetry/logger.js';

/**
 * Wraps a timer, interval or event callback so that it never throws out: an exception thrown
 * from a timer ends the process (Node's default for an uncaught exception). The error is logged
 * and `recover` (if any) runs, e.g. to schedule the next attempt.
 */
export function guarded<A extends unknown[]>(
  log: Logger,
  what: string,
  fn: (...args: A) => void,
  recover?: (err: unknown) => void,
): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      try {
        log.error({ err: err instanceof Error ? err.message : String(err) }, `${what} failed`);
        recover?.(err);
      } catch {
        // nothing safe is left to do; never throw from a callback
      }
    }
  };
}
