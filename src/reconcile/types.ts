import type { JsonRecord } from '../model/json.js';

/** What an apply did: the sink may find the object already up to date (e.g. after a 409 re-read). */
export type ApplyOutcome = 'created' | 'updated' | 'unchanged';

/**
 * Where EnvoyFilters are written: the Kubernetes API (cluster mode) or a directory (local mode).
 * Every call takes an AbortSignal: a leader that loses its lease aborts in-flight writes.
 */
export interface EnvoyFilterSink {
  /**
   * Creates or updates one of Breeze's EnvoyFilters. Must never modify an object that lacks
   * Breeze's label (`app.kubernetes.io/managed-by: breeze`): that is a ConflictError
   * (BreezeError code FOREIGN_OBJECT). `current` is the object as last observed (carrying
   * Breeze's label), undefined when it is not known to exist. Resolves with what it did
   * (undefined: created or updated, the sink does not say).
   */
  apply(
    envoyFilter: JsonRecord,
    signal: AbortSignal,
    current?: JsonRecord,
  ): Promise<ApplyOutcome | undefined>;
  /**
   * Deletes one of Breeze's EnvoyFilters; an absent object counts as done. An object without
   * Breeze's label is never deleted (FOREIGN_OBJECT). `current`: as last observed, if known.
   */
  delete(namespace: string, name: string, signal: AbortSignal, current?: JsonRecord): Promise<void>;
}

/** The outcome of one push (a set of dirty service keys). */
export interface PushResult {
  readonly keys: number;
  readonly created: number;
  readonly updated: number;
  readonly deleted: number;
  readonly unchanged: number;
  readonly failed: number;
}
