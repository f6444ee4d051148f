import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HANDLED_KINDS } from '../model/kinds.js';

import { ClosedCounter, ClosedGauge, ClosedHistogram, LevelGauge, OTHER } from './closed-metrics.js';

export { OTHER };

/**
 * The known values of every label: anything else is counted as `other`, so no request, object or
 * error can add a time series (a label taken from input would let one client grow /metrics and
 * RSS without bound). '' stands for "not known" (a request that was not a review).
 */
export const LABEL_VALUES = {
  webhook: ['validate', 'mutate'],
  kind: [...HANDLED_KINDS, 'EnvoyFilter', ''],
  operation: ['CREATE', 'UPDATE', 'DELETE', 'CONNECT', ''],
  allowed: ['true', 'false'],
  code: ['200', '400', '403', '404', '408', '413', '415', '422', '500', '503'],
  result: ['success', 'failure'],
  origin: ['admission', 'kubernetes', 'istiod', 'file'],
  writeOperation: ['create', 'update', 'delete', 'adopt_delete'],
  errorCode: [
    'BAD_FLAG',
    'BAD_REQUEST',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'DEADLINE_EXCEEDED',
    'TLS_MATERIAL',
    'MANIFEST',
    'VIP_EXHAUSTED',
    'GENERATION',
    'SCHEMA',
    'API_CONFLICT',
    'API_INVALID',
    'API_FORBIDDEN',
    'API_RETRYABLE',
    'FOREIGN_OBJECT',
    'INTERNAL',
  ],
  trigger: ['push', 'resync'],
} as const satisfies Record<string, readonly string[]>;

/** A label value from a closed set: itself when known, else `other`. */
export function knownOr(value: string, known: readonly string[]): string {
  return known.includes(value) ? value : OTHER;
}

type AdmissionLabel = 'webhook' | 'kind' | 'operation' | 'allowed';

/** The Prometheus metrics of one Breeze process, on a registry of their own. */
export interface Metrics {
  readonly registry: Registry;
  /** Seconds from the request's arrival to its answer (histogram: aggregates across replicas). */
  readonly admissionDuration: ClosedHistogram<AdmissionLabel>;
  readonly admissionRequests: ClosedCounter<AdmissionLabel | 'code'>;
  readonly admissionInFlight: LevelGauge;
  /** The serving certificate's notAfter, unix seconds. */
  readonly tlsCertificateExpiry: Gauge;
  readonly tlsReloads: ClosedCounter<'result'>;
  readonly admissionInternalErrors: Counter;
  /** Admitted changes no authoritative source confirmed within --admission-grace. */
  readonly admissionUnconfirmedDropped: Counter;
  /** Admitted changes past the grace period kept because their sources reported nothing since. */
  readonly admissionUnconfirmedHeld: Gauge;
  /** Changes that reached the config cache, by origin. */
  readonly cacheChanges: ClosedCounter<'origin'>;
  /** Objects not taken into the cache (over the bounds, or unreadable), once per version, by origin. */
  readonly cacheRejected: ClosedCounter<'origin'>;
  /** Dirty keys handed to the debouncer (a key added twice counts twice). */
  readonly debounceEvents: Counter;
  /** Debounced pushes, by result (success, failure). */
  readonly pushes: ClosedCounter<'result'>;
  readonly pushDuration: Histogram;
  /** Distinct keys per push. */
  readonly pushKeys: Histogram;
  /** 1 while this replica holds the leader Lease, else 0. */
  readonly leader: Gauge;
  /** Times this replica became leader. */
  readonly leaderAcquisitions: Counter;
  /** EnvoyFilter writes by operation (create, update, delete, adopt_delete) and result (success or error code). */
  readonly reconcileWrites: ClosedCounter<'operation' | 'result'>;
  /** Objects whose last write failed and is not yet repaired, by error code. */
  readonly reconcileFailures: ClosedGauge<'code'>;
  /** Service keys waiting for a retry. */
  readonly reconcileRetriesPending: Gauge;
  /** Seconds one reconcile (push or resync) took. */
  readonly reconcileDuration: ClosedHistogram<'trigger'>;
}

/** From 0.5 ms (a cached lookup) to 10 s (past any sane webhook timeout). */
export const ADMISSION_DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** From 1 ms (a no-op push) to 2 minutes (a full resync against a slow API server). */
export const PUSH_DURATION_BUCKETS: readonly number[] = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

/** From one key to a full resync of a large mesh. */
export const PUSH_KEYS_BUCKETS: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000];

/** Creates the metrics on a new registry (not prom-client's global one), with process metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const metrics: Metrics = {
    registry,
    // Every metric with labels keeps them closed (closed-metrics.ts).
    admissionDuration: new ClosedHistogram({
      name: 'breeze_admission_duration_seconds',
      help: 'Time from receiving an admission request to answering it, in seconds.',
      labels: {
        webhook: LABEL_VALUES.webhook,
        kind: LABEL_VALUES.kind,
        operation: LABEL_VALUES.operation,
        allowed: LABEL_VALUES.allowed,
      },
      buckets: ADMISSION_DURATION_BUCKETS,
      registers,
    }),
    admissionRequests: new ClosedCounter({
      name: 'breeze_admission_requests_total',
      help: 'Admission requests answered, by webhook, kind, operation, decision and status code.',
      labels: {
        webhook: LABEL_VALUES.webhook,
        kind: LABEL_VALUES.kind,
        operation: LABEL_VALUES.operation,
        allowed: LABEL_VALUES.allowed,
        code: LABEL_VALUES.code,
      },
      registers,
    }),
    admissionInFlight: new LevelGauge({
      name: 'breeze_admission_in_flight',
      help: 'Admission requests received and not yet answered.',
      registers,
    }),
    tlsCertificateExpiry: new Gauge({
      name: 'breeze_tls_certificate_expiry_seconds',
      help: "The serving certificate's notAfter as unix time in seconds.",
      registers,
    }),
    tlsReloads: new ClosedCounter({
      name: 'breeze_tls_reloads_total',
      help: 'Serving certificate reloads, by result (a failed reload keeps the previous pair).',
      labels: { result: LABEL_VALUES.result },
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
    admissionUnconfirmedHeld: new Gauge({
      name: 'breeze_cache_admission_unconfirmed_held',
      help: 'Admitted changes past --admission-grace still held because no source of their kind reported anything since (a stalled watch); dropped after 10 times the grace.',
      registers,
    }),
    cacheChanges: new ClosedCounter({
      name: 'breeze_cache_changes_total',
      help: 'Changes delivered to the config cache, by origin.',
      labels: { origin: LABEL_VALUES.origin },
      registers,
    }),
    cacheRejected: new ClosedCounter({
      name: 'breeze_cache_objects_rejected_total',
      help: 'Objects a source delivered that the config cache did not take (over the depth, string or list bounds, unreadable, or over 256 KiB from admission); the previous version is kept. Counted once per object version, by origin (kubernetes, istiod, file, admission).',
      labels: { origin: LABEL_VALUES.origin },
      registers,
    }),
    debounceEvents: new Counter({
      name: 'breeze_debounce_events_total',
      help: 'Dirty keys handed to the push debouncer.',
      registers,
    }),
    pushes: new ClosedCounter({
      name: 'breeze_push_total',
      help: 'Debounced pushes, by result (a failed push is retried only if its caller re-adds the keys).',
      labels: { result: LABEL_VALUES.result },
      registers,
    }),
    pushDuration: new Histogram({
      name: 'breeze_push_duration_seconds',
      help: 'Duration of one debounced push, in seconds.',
      buckets: [...PUSH_DURATION_BUCKETS],
      registers,
    }),
    pushKeys: new Histogram({
      name: 'breeze_push_keys',
      help: 'Distinct dirty keys per debounced push.',
      buckets: [...PUSH_KEYS_BUCKETS],
      registers,
    }),
    leader: new Gauge({
      name: 'breeze_leader',
      help: 'Whether this replica holds the leader Lease (1) or not (0).',
      registers,
    }),
    leaderAcquisitions: new Counter({
      name: 'breeze_leader_acquisitions_total',
      help: 'Times this replica became leader.',
      registers,
    }),
    reconcileWrites: new ClosedCounter({
      name: 'breeze_reconcile_writes_total',
      help: 'EnvoyFilter writes to the sink, by operation and result (success or the error code).',
      labels: { operation: LABEL_VALUES.writeOperation, result: ['success', ...LABEL_VALUES.errorCode] },
      registers,
    }),
    reconcileFailures: new ClosedGauge({
      name: 'breeze_reconcile_failures',
      help: 'Objects whose last write failed and has not been repaired yet, by error code.',
      labels: { code: LABEL_VALUES.errorCode },
      registers,
    }),
    reconcileRetriesPending: new Gauge({
      name: 'breeze_reconcile_retries_pending',
      help: 'Service keys waiting for a retry after a failed write.',
      registers,
    }),
    reconcileDuration: new ClosedHistogram({
      name: 'breeze_reconcile_duration_seconds',
      help: 'Duration of one reconcile (push of dirty keys or full resync), in seconds.',
      labels: { trigger: LABEL_VALUES.trigger },
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
  };
  // Both results show up as 0 from the start, so rate() and alerts work before the first reload.
  metrics.tlsReloads.inc({ result: 'success' }, 0);
  metrics.tlsReloads.inc({ result: 'failure' }, 0);
  metrics.pushes.inc({ result: 'success' }, 0);
  metrics.pushes.inc({ result: 'failure' }, 0);
  metrics.leader.set(0);
  collectDefaultMetrics({ register: registry });
  return metrics;
}
