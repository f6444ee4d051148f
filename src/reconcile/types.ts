import type { JsonRecord } from '../model/json.js';

/**
 * Where EnvoyFilters are written: the Kubernetes API (cluster mode) or a directory (local mode).
 * Every call takes an AbortSignal: a leader that loses its lease aborts in-flight writes.
 */
export interface EnvoyFilterSink {
  /**
   * Creates or updates one of Breeze's EnvoyFilters. Must never modify an object that lacks
   * Breeze's label (`app.kubernetes.io/managed-by: breeze`): that is a ConflictError.
   */
  apply(envoyFilter: JsonRecord, signal: AbortSignal): Promise<void>;
  /** Deletes one of Breeze's EnvoyFilters; an absent object counts as done. */
  delete(namespace: string, name: string, signal: AbortSignal): Promise<void>;
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
