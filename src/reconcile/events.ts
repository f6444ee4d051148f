/**
 * What the reconciler tells users about their objects: core/v1 Events on the source objects
 * (ServiceEntry, Service, RedisService, RedisDestination) for every EnvoyFilter write or failure,
 * and the `EnvoyFilterGenerated` condition in the status of RedisService and RedisDestination
 * (Breeze's own kinds; nothing is ever written to the status of Istio-owned kinds).
 *
 * Both are best effort: a failure is logged, never fails a push. Events are deduplicated (one
 * identical Event per object, reason and message per window) and rate-limited (at most
 * `maxPerWindow` per object and reason per window); a condition is written only when it changes.
 *
 * RBAC: "" events: create; redis.aeraki.io redisservices/status, redisdestinations/status: patch.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { asArray, asRecord, asString, isRecord, type JsonRecord } from '../model/json.js';
import type { Logger } from '../telemetry/logger.js';
import { kubeRequest, toApiError } from '../kube/request.js';

export type EventReason =
  | 'EnvoyFilterCreated'
  | 'EnvoyFilterUpdated'
  | 'EnvoyFilterDeleted'
  | 'EnvoyFilterFailed'
  /** A soft finding of generation (a capped fan-out, no VIP, no workload selector). */
  | 'GenerationWarning'
  /** On Breeze's own Pod: istiod refused Breeze's identity (the istiod source gets no config). */
  | 'IstiodAuthFailed'
  /** On Breeze's own Pod: istiod accepted Breeze again after refusing it. */
  | 'IstiodConnected';
export type EventType = 'Normal' | 'Warning';

/** The object an Event is about. */
export interface InvolvedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export const CONDITION_TYPE = 'EnvoyFilterGenerated';
export const REPORTING_COMPONENT = 'breeze';

/** The only kinds whose status Breeze writes, with their API path parts. */
export const STATUS_KINDS: Readonly<Record<string, { apiVersion: string; resource: string }>> = {
  RedisService: { apiVersion: 'redis.aeraki.io/v1alpha1', resource: 'redisservices' },
  RedisDestination: { apiVersion: 'redis.aeraki.io/v1alpha1', resource: 'redisdestinations' },
};

export interface ConditionUpdate {
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

export interface Eventer {
  /** Records an Event (queued, deduplicated, rate-limited; never throws). */
  event(object: InvolvedObject, type: EventType, reason: EventReason, message: string): void;
  /**
   * Sets the EnvoyFilterGenerated condition of a RedisService or RedisDestination (`object` as
   * cached: its generation and current conditions), only when it differs. Other kinds: ignored.
   */
  condition(object: JsonRecord, update: ConditionUpdate): void;
  /** Resolves when everything queued so far was sent (or failed). */
  flush(): Promise<void>;
}

/** Local mode: nothing to report to. */
export class NoopEventer implements Eventer {
  event(): void {}
  condition(): void {}
  async flush(): Promise<void> {}
}

/** Keeps every call (tests). */
export class RecordingEventer implements Eventer {
  readonly events: { object: InvolvedObject; type: EventType; reason: EventReason; message: string }[] = [];
  readonly conditions: { object: JsonRecord; update: ConditionUpdate }[] = [];
  event(object: InvolvedObject, type: EventType, reason: EventReason, message: string): void {
    this.events.push({ object, type, reason, message });
  }
  condition(object: JsonRecord, update: ConditionUpdate): void {
    this.conditions.push({ object, update });
  }
  async flush(): Promise<void> {}
}

export interface KubernetesEventerOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Dedup and rate-limit window; default 60 s. */
  readonly windowMs?: number;
  /** Events per object and reason per window; default 10. */
  readonly maxPerWindow?: number;
  /** Requests queued at most; beyond, Events are dropped (logged). Default 200. */
  readonly maxPending?: number;
  readonly requestTimeoutMs?: number;
  /** reportingInstance; default the host name (the pod name). */
  readonly instance?: string;
}

interface Recent {
  windowStart: number;
  count: number;
  /** message → last time it was sent */
  readonly sent: Map<string, number>;
}

/** Events and conditions through the API server. */
export class KubernetesEventer implements Eventer {
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly maxPerWindow: number;
  private readonly maxPending: number;
  private readonly timeoutMs: number;
  private readonly instance: string;
  private readonly recent = new Map<string, Recent>();
  /** Conditions written lately, by object: their signature and when (the cache may lag our write). */
  private readonly written = new Map<string, { signature: string; at: number }>();
  private readonly pending = new Set<Promise<void>>();
  /** When `recent` and `written` were last cleared of what the window no longer needs. */
  private prunedAt: number;
  /** Events dropped by deduplication or rate limiting (for tests and debugging). */
  suppressed = 0;

  constructor(private readonly o: KubernetesEventerOptions) {
    this.now = o.now ?? Date.now;
    this.windowMs = o.windowMs ?? 60_000;
    this.maxPerWindow = o.maxPerWindow ?? 10;
    this.maxPending = o.maxPending ?? 200;
    this.timeoutMs = o.requestTimeoutMs ?? 10_000;
    this.instance = o.instance ?? hostname();
    this.prunedAt = this.now();
  }

  /** Objects whose recent Events or conditions are remembered (for tests and debugging). */
  get tracked(): number {
    return this.recent.size + this.written.size;
  }

  event(object: InvolvedObject, type: EventType, reason: EventReason, message: string): void {
    const now = this.now();
    if (!this.admit(`${object.kind}/${object.namespace}/${object.name}|${reason}`, message, now)) {
      this.suppressed++;
      return;
    }
    const time = new Date(now).toISOString();
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${object.name}.${now.toString(16)}${randomBytes(4).toString('hex')}`.slice(-253),
        namespace: object.namespace,
      },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        namespace: object.namespace,
        name: object.name,
        ...(object.uid === undefined ? {} : { uid: object.uid }),
      },
      reason,
      message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
      type,
      action: reason.replace(/^EnvoyFilter/, ''),
      source: { component: REPORTING_COMPONENT },
      reportingComponent: REPORTING_COMPONENT,
      reportingInstance: this.instance,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    this.send(`/api/v1/namespaces/${encodeURIComponent(object.namespace)}/events`, 'POST', body, undefined, {
      event: reason,
      object: `${object.kind}/${object.namespace}/${object.name}`,
    }).catch(() => undefined);
  }

  condition(object: JsonRecord, update: ConditionUpdate): void {
    const kind = asString(object.kind) ?? '';
    const target = STATUS_KINDS[kind];
    if (target === undefined) return; // never the status of Istio's (or anybody else's) kinds
    const m = asRecord(object.metadata);
    const namespace = asString(m?.namespace) ?? 'default';
    const name = asString(m?.name) ?? '';
    const generation = typeof m?.generation === 'number' ? m.generation : undefined;
    const conditions = (asArray(asRecord(object.status)?.conditions) ?? []).filter(isRecord);
    const existing = conditions.find((c) => c.type === CONDITION_TYPE);
    const signature = JSON.stringify([update.status, update.reason, update.message, generation]);
    const same =
      existing !== undefined &&
      JSON.stringify([existing.status, existing.reason, existing.message, existing.observedGeneration]) ===
        signature;
    const key = `${kind}/${namespace}/${name}`;
    const now = this.now();
    this.pruneNow(now);
    const last = this.written.get(key);
    if (same || (last?.signature === signature && now - last.at < this.windowMs)) return;
    this.written.set(key, { signature, at: now });
    const lastTransitionTime =
      existing !== undefined &&
      existing.status === update.status &&
      typeof existing.lastTransitionTime === 'string'
        ? existing.lastTransitionTime
        : new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const condition = {
      type: CONDITION_TYPE,
      status: update.status,
      reason: update.reason,
      message: update.message,
      ...(generation === undefined ? {} : { observedGeneration: generation }),
      lastTransitionTime,
    };
    const next = [...conditions.filter((c) => c.type !== CONDITION_TYPE), condition];
    const path = `/apis/${target.apiVersion}/namespaces/${encodeURIComponent(namespace)}/${target.resource}/${encodeURIComponent(name)}/status`;
    this.send(path, 'PATCH', { status: { conditions: next } }, 'application/merge-patch+json', {
      condition: CONDITION_TYPE,
      object: key,
    }).catch(() => this.written.delete(key));
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Dedup (same message within the window) and rate limit (maxPerWindow per key and window). */
  private admit(key: string, message: string, now: number): boolean {
    this.pruneNow(now);
    let r = this.recent.get(key);
    if (r === undefined || now - r.windowStart >= this.windowMs) {
      r = { windowStart: now, count: 0, sent: r?.sent ?? new Map<string, number>() };
      this.recent.set(key, r);
    }
    const lastSent = r.sent.get(message);
    if (lastSent !== undefined && now - lastSent < this.windowMs) return false;
    if (r.count >= this.maxPerWindow) return false;
    r.count++;
    for (const [msg, at] of r.sent) if (now - at >= this.windowMs) r.sent.delete(msg);
    r.sent.set(message, now);
    return true;
  }

  /**
   * Once per window (or at once past 10,000 objects), forgets the objects the window no longer
   * needs: nothing sent within it, no condition written within it. Objects come and go (every
   * recreated service has a new name), so waiting for 10,000 kept a dead entry per name for as
   * long as it took to get there, tens of minutes of steady churn (seen in the soak run).
   */
  private pruneNow(now: number): void {
    if (this.recent.size <= 10_000 && now - this.prunedAt < this.windowMs) return;
    this.prunedAt = now;
    for (const [k, r] of this.recent) {
      if (now - r.windowStart < this.windowMs) continue;
      let live = false;
      for (const at of r.sent.values()) if (now - at < this.windowMs) live = true;
      if (!live) this.recent.delete(k);
    }
    for (const [k, w] of this.written) if (now - w.at >= this.windowMs) this.written.delete(k);
  }

  /** Sends in the background (tracked for flush); the promise rejects when it failed. */
  private send(
    path: string,
    method: 'POST' | 'PATCH',
    body: JsonRecord,
    contentType: string | undefined,
    log: Record<string, string>,
  ): Promise<void> {
    if (this.pending.size >= this.maxPending) {
      this.o.logger.warn(log, 'too many Event/status requests queued: dropped');
      return Promise.reject(new Error('dropped'));
    }
    const p = kubeRequest(this.o.kubeConfig, {
      method,
      path,
      body,
      contentType,
      timeoutMs: this.timeoutMs,
    }).then(
      () => undefined,
      (err: unknown) => {
        this.o.logger.warn(
          { ...log, err: toApiError(err, `${method} ${path}`).message },
          'Event/status not written',
        );
        throw err;
      },
    );
    const tracked = p.catch(() => undefined);
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
    return p;
  }
}
