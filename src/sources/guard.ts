import { guarded } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * `guarded` with the error logged as `<what> failed`, then `recover` (if any) run, e.g. to
 * schedule the next attempt.
 */
export function guardedLogged<A extends unknown[]>(
  log: Logger,
  what: string,
  fn: (...args: A) => void,
  recover?: (err: unknown) => void,
): (...args: A) => void {
  return guarded(fn, (err) => {
    log.error({ err: err instanceof Error ? err.message : String(err) }, `${what} failed`);
    recover?.(err);
  });
}
