import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

type AdmissionLabel = 'webhook' | 'kind' | 'operation' | 'allowed';

/** The Prometheus metrics of one Breeze process, on a registry of their own. */
export interface Metrics {
  readonly registry: Registry;
  /** Seconds from the request's arrival to its answer (histogram: aggregates across replicas). */
  readonly admissionDuration: Histogram<AdmissionLabel>;
  readonly admissionRequests: Counter<AdmissionLabel | 'code'>;
  readonly admissionInFlight: Gauge;
  /** The serving certificate's notAfter, unix seconds. */
  readonly tlsCertificateExpiry: Gauge;
  readonly tlsReloads: Counter<'result'>;
  readonly admissionInternalErrors: Counter;
  /** Admitted changes no authoritative source confirmed within --admission-grace. */
  readonly admissionUnconfirmedDropped: Counter;
  /** Changes that reached the config cache, by origin. */
  readonly cacheChanges: Counter<'origin'>;
}

/** From 0.5 ms (a cached lookup) to 10 s (past any sane webhook timeout). */
export const ADMISSION_DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Creates the metrics on a new registry (not prom-client's global one), with process metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const metrics: Metrics = {
    registry,
    admissionDuration: new Histogram({
      name: 'breeze_admission_duration_seconds',
      help: 'Time from receiving an admission request to answering it, in seconds.',
      labelNames: ['webhook', 'kind', 'operation', 'allowed'],
      buckets: [...ADMISSION_DURATION_BUCKETS],
      registers,
    }),
    admissionRequests: new Counter({
      name: 'breeze_admission_requests_total',
      help: 'Admission requests answered, by webhook, kind, operation, decision and status code.',
      labelNames: ['webhook', 'kind', 'operation', 'allowed', 'code'],
      registers,
    }),
    admissionInFlight: new Gauge({
      name: 'breeze_admission_in_flight',
      help: 'Admission requests received and not yet answered.',
      registers,
    }),
    tlsCertificateExpiry: new Gauge({
      name: 'breeze_tls_certificate_expiry_seconds',
      help: "The serving certificate's notAfter as unix time in seconds.",
      registers,
    }),
    tlsReloads: new Counter({
      name: 'breeze_tls_reloads_total',
      help: 'Serving certificate reloads, by result (a failed reload keeps the previous pair).',
      labelNames: ['result'],
      registers,
    }),
    admissionInternalErrors: new Counter({
      name: 'breeze_admission_internal_errors_total',
      help: 'Admission requests that failed with an internal error (a bug, answered with HTTP 500).',
      registers,
    }),
    admissionUnconfirmedDropped: new Counter({
      name: 'breeze_cache_admission_unconfirmed_dropped_total',
      help: 'Admitted changes dropped from the cache because no authoritative source confirmed them in time (never persisted).',
      registers,
    }),
    cacheChanges: new Counter({
      name: 'breeze_cache_changes_total',
      help: 'Changes delivered to the config cache, by origin.',
      labelNames: ['origin'],
      registers,
    }),
  };
  // Both results show up as 0 from the start, so rate() and alerts work before the first reload.
  metrics.tlsReloads.inc({ result: 'success' }, 0);
  metrics.tlsReloads.inc({ result: 'failure' }, 0);
  collectDefaultMetrics({ register: registry });
  return metrics;
}
