import { setTimeout as delay } from 'node:timers/promises';

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** 0.5 s doubling to 30 s, as client-go's reflector roughly does. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

/** ±20 %: replicas restarted together do not retry in lockstep. */
export const JITTER = 0.2;

/**
 * The wait before retry number `attempt` (1 for the first): initialMs doubling per attempt,
 * capped at maxMs, then jittered by ±20 %.
 */
export function backoffDelay(
  attempt: number,
  opts: BackoffOptions,
  random: () => number = Math.random,
): number {
  const base = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(Math.max(0, attempt - 1), 30));
  return Math.round(base * (1 - JITTER + 2 * JITTER * random()));
}

/** Waits `ms`, or less when `signal` aborts (it never throws for the abort). */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  try {
    await delay(ms, undefined, { signal });
  } catch {
    // aborted: the caller checks its own stopped flag
  }
}
