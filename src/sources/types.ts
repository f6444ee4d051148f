import type { Origin } from '../cache/store.js';
import type { JsonRecord } from '../model/json.js';

/**
 * Where sources deliver config. Objects are Kubernetes-shaped JSON (apiVersion, kind, metadata
 * with name, namespace, resourceVersion, labels, annotations, creationTimestamp; spec). The store
 * decides precedence between sources and computes which services each change affects.
 */
export interface ConfigSink {
  /** One object created or updated (`object` set) or deleted (`object` undefined) at the source. */
  apply(origin: Origin, kind: string, namespace: string, name: string, object: JsonRecord | undefined): void;
  /**
   * The complete current set of one kind at the source (an initial list, a relist, a SotW
   * response): objects of that kind from this origin that are not in the set are deleted.
   * `asOf` (epoch ms, default now): when the set was current, for a list that took a while.
   */
  replace(origin: Origin, kind: string, objects: readonly JsonRecord[], asOf?: number): void;
  /**
   * The origin is current for this kind without a change to report (a watch BOOKMARK): it would
   * have delivered any change made before now. Lets pending admission changes tell "never
   * persisted" from "the source is stalled".
   */
  progress?(origin: Origin, kind: string): void;
}

/** A config source: a Kubernetes watch, istiod over ADS, a directory of manifests. */
export interface Source {
  readonly name: string;
  /** Starts delivering to the sink; resolves once the initial state of every kind was delivered. */
  start(sink: ConfigSink): Promise<void>;
  /** True once every kind has been delivered at least once (readiness). */
  synced(): boolean;
  /** While not synced: why, in one line for /readyz (e.g. istiod refusing Breeze's identity). */
  notReadyReason?(): string | undefined;
  /** Stops watches, streams and timers; idempotent. */
  stop(): Promise<void>;
}
