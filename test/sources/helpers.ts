// A ConfigSink that records what a source delivers, and a poller for conditions.
import type { Origin } from '../../src/cache/store.js';
import type { JsonRecord } from '../../src/model/json.js';
import type { ConfigSink } from '../../src/sources/types.js';

export interface SinkCall {
  readonly op: 'apply' | 'replace' | 'progress';
  readonly origin: Origin;
  readonly kind: string;
  readonly key?: string;
  readonly object?: JsonRecord | undefined;
  readonly count?: number;
}

/** Keeps the state per kind (namespace/name → object) the calls imply, and the calls. */
export class RecordingSink implements ConfigSink {
  readonly calls: SinkCall[] = [];
  private readonly state = new Map<string, Map<string, JsonRecord>>();

  apply(origin: Origin, kind: string, namespace: string, name: string, object: JsonRecord | undefined): void {
    const key = `${namespace}/${name}`;
    this.calls.push({ op: 'apply', origin, kind, key, object });
    const m = this.kindMap(kind);
    if (object === undefined) m.delete(key);
    else m.set(key, object);
  }

  replace(origin: Origin, kind: string, objects: readonly JsonRecord[]): void {
    this.calls.push({ op: 'replace', origin, kind, count: objects.length });
    const m = new Map<string, JsonRecord>();
    for (const o of objects) {
      const meta = o.metadata as { namespace?: string; name: string };
      m.set(`${meta.namespace ?? ''}/${meta.name}`, o);
    }
    this.state.set(kind, m);
  }

  progress(origin: Origin, kind: string): void {
    this.calls.push({ op: 'progress', origin, kind });
  }

  /** How many times the source said it is current for `kind` with nothing to report. */
  progressed(kind: string): number {
    return this.calls.filter((c) => c.op === 'progress' && c.kind === kind).length;
  }

  /** The current objects of a kind, by namespace/name. */
  objects(kind: string): Map<string, JsonRecord> {
    return this.kindMap(kind);
  }

  get(kind: string, namespace: string, name: string): JsonRecord | undefined {
    return this.kindMap(kind).get(`${namespace}/${name}`);
  }

  keys(kind: string): string[] {
    return [...this.kindMap(kind).keys()].sort();
  }

  replaced(kind: string): number {
    return this.calls.filter((c) => c.op === 'replace' && c.kind === kind).length;
  }

  private kindMap(kind: string): Map<string, JsonRecord> {
    let m = this.state.get(kind);
    if (m === undefined) {
      m = new Map();
      this.state.set(kind, m);
    }
    return m;
  }
}

export { waitFor } from '../wait.js';
