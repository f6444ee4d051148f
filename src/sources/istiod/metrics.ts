// Source health metrics: `breeze_source_ready{source}` (1 while the source holds a current view
// and its last connection attempt was accepted, else 0) and
// `breeze_source_errors_total{source,reason}`. Both labels take values from closed sets (anything
// else is counted as `other`), so no istiod answer can add a time series.
//
// Registered once per registry (the first source that asks registers them), so other sources can
// report through the same two metrics without a change to the Metrics interface.
import { Counter, Gauge, type Registry } from 'prom-client';
import { knownOr } from '../../telemetry/metrics.js';

export const SOURCE_NAMES = ['kubernetes', 'istiod', 'file'] as const;
/**
 * auth: istiod refused Breeze's identity (Unauthenticated, PermissionDenied or istiod's message);
 * connect: the connection could not be set up (CA or token file unreadable, TLS, unreachable);
 * stream: an established stream ended with an error; decode: a response was NACKed.
 */
export const SOURCE_ERROR_REASONS = ['auth', 'connect', 'stream', 'decode'] as const;
export type SourceErrorReason = (typeof SOURCE_ERROR_REASONS)[number];

export interface SourceMetrics {
  setReady(source: string, ready: boolean): void;
  countError(source: string, reason: SourceErrorReason): void;
  readonly ready: Gauge<'source'>;
  readonly errors: Counter<'source' | 'reason'>;
}

const byRegistry = new WeakMap<Registry, SourceMetrics>();

/** The source metrics on `registry` (created on first use). */
export function sourceMetrics(registry: Registry): SourceMetrics {
  const existing = byRegistry.get(registry);
  if (existing !== undefined) return existing;
  const ready = new Gauge({
    name: 'breeze_source_ready',
    help: 'Whether a config source holds a current view and its last connection attempt was accepted (1) or not (0), by source.',
    labelNames: ['source'],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'breeze_source_errors_total',
    help: 'Config source failures, by source and reason (auth: istiod refused the identity; connect: the connection could not be set up; stream: an established stream failed; decode: a response was NACKed).',
    labelNames: ['source', 'reason'],
    registers: [registry],
  });
  const metrics: SourceMetrics = {
    ready,
    errors,
    setReady: (source, value) => ready.set({ source: knownOr(source, SOURCE_NAMES) }, value ? 1 : 0),
    countError: (source, reason) =>
      errors.inc({ source: knownOr(source, SOURCE_NAMES), reason: knownOr(reason, SOURCE_ERROR_REASONS) }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

/** Shows a source's series from the start (ready 0, every error reason 0), so alerts work at once. */
export function initSource(metrics: SourceMetrics, source: string): void {
  metrics.setReady(source, false);
  for (const reason of SOURCE_ERROR_REASONS) {
    metrics.errors.inc({ source: knownOr(source, SOURCE_NAMES), reason }, 0);
  }
}
