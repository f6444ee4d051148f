// Leader election on a coordination.k8s.io/v1 Lease, with client-go's leaderelection semantics
// (client-node has no elector). Only the leader writes EnvoyFilters; every replica serves
// admission and keeps its caches warm, so a standby takes over without a cold start.
import { guarded } from '../errors.js';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { isKubeApiError, kubeRequest } from '../kube/request.js';
import { asRecord, asString, type JsonRecord } from '../model/json.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { sleepOn, systemClock, type Clock, type TimerHandle } from './clock.js';

export const DEFAULT_LEASE_NAME = 'breeze-leader';
export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
/** Acquisition attempts wait retryPeriod × [1, 1 + JITTER): standbys do not poll in lockstep. */
export const RETRY_JITTER = 0.2;

export interface LeaderElectorOptions {
  readonly kubeConfig: KubeConfig;
  /** Namespace of the Lease: the release namespace. */
  readonly namespace: string;
  /** Lease name; default 'breeze-leader'. */
  readonly name?: string;
  /** Unique per replica; default $POD_NAME, else the host name (the pod name in Kubernetes). */
  readonly identity?: string;
  /** How long a lease holds without renewal; whole seconds (the Lease field is in seconds). Default 15 s. */
  readonly leaseDurationMs?: number;
  /** A leader that could not renew for this long steps down; below leaseDurationMs. Default 10 s. */
  readonly renewDeadlineMs?: number;
  /** Period of renewals and of acquisition attempts. Default 2 s. */
  readonly retryPeriodMs?: number;
  /** Deadline of one attempt (GET then PUT/POST); default max(1 s, 2 × retryPeriod). */
  readonly requestTimeoutMs?: number;
  readonly clock?: Clock;
  /** For the jitter; default Math.random. */
  readonly random?: () => number;
  readonly logger?: Logger;
  readonly metrics?: Pick<Metrics, 'leader' | 'leaderAcquisitions'>;
  /** This replica became leader; `signal` aborts the moment it stops being leader. */
  readonly onStartedLeading?: (signal: AbortSignal) => void;
  /**
   * This replica stopped being leader (its signal is already aborted). stop() awaits the returned
   * promise before it releases the Lease: let in-flight writes drain there.
   */
  readonly onStoppedLeading?: () => void | Promise<void>;
  /** The Lease names a different holder than last seen ('' when released). */
  readonly onNewLeader?: (identity: string) => void;
}

/** The spec of a Lease, as client-go's LeaderElectionRecord maps onto it. */
export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** MicroTime as the API server writes it: RFC 3339 in UTC with exactly six fractional digits. */
export function formatMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Parses an RFC 3339 time (any number of fractional digits, any offset) to epoch ms. */
export function parseMicroTime(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/i.exec(s);
  if (m === null) return undefined;
  const base = Date.parse(`${m[1] ?? ''}${(m[3] ?? 'Z').toUpperCase()}`);
  if (Number.isNaN(base)) return undefined;
  const frac = m[2] === undefined ? 0 : Number(`0.${m[2]}`) * 1000;
  return base + frac;
}

type Attempt =
  | { readonly kind: 'acquired'; readonly base: number }
  | { readonly kind: 'held'; readonly holder: string }
  | { readonly kind: 'error' };

interface Term {
  readonly ctl: AbortController;
  /** Local time at the start of the last successful renewal (no later than its renewTime). */
  base: number;
  watchdog: TimerHandle | undefined;
}

const NOT_LEADER: AbortSignal = AbortSignal.abort(new Error('not the leader'));

/**
 * Elects one leader among the replicas sharing a Lease, as client-go's leaderelection does:
 *
 * - a replica acquires the Lease when it does not exist, names no holder (released), names this
 *   replica already, or has expired; a takeover sets acquireTime and increments leaseTransitions;
 * - every write is a PUT carrying the resourceVersion read just before (a create for an absent
 *   Lease): a 409 means another replica won, nothing is overwritten;
 * - expired means both renewTime + leaseDurationSeconds < now AND no change of the Lease observed
 *   by this replica for leaseDurationSeconds (client-go's observedTime rule). The second condition
 *   makes takeover safe against clock skew between nodes; its cost is that a replica that just
 *   started waits one lease duration before taking over a stale Lease (a released one it takes at
 *   once);
 * - the leader renews every retryPeriod; when it has not renewed for renewDeadline (counted from
 *   the start of its last successful renewal, so before the renewTime it wrote) it steps down: the
 *   leadership signal aborts and in-flight requests are cancelled, before the Lease can expire for
 *   the others;
 * - stop() steps down (awaiting onStoppedLeading) and then releases the Lease (holderIdentity '',
 *   leaseDurationSeconds 1, renewTime now: ReleaseOnCancel) so a standby takes over within a retry
 *   period.
 *
 * After stepping down for a failed renewal the replica goes back to acquiring; it may win again
 * (as a new term, with a new signal).
 */
export class LeaderElector {
  readonly identity: string;
  readonly namespace: string;
  readonly name: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly requestTimeoutMs: number;
  private readonly kc: KubeConfig;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly opts: LeaderElectorOptions;
  private readonly loopCtl = new AbortController();
  private loop: Promise<void> | undefined;
  private shutdown: Promise<void> | undefined;
  private stopped = false;
  private term: Term | undefined;
  private stepDown: Promise<void> = Promise.resolve();
  private observedVersion: string | undefined;
  private observedAt = 0;
  private observedHolder: string | undefined;

  constructor(opts: LeaderElectorOptions) {
    this.opts = opts;
    this.kc = opts.kubeConfig;
    this.namespace = opts.namespace;
    this.name = opts.name ?? DEFAULT_LEASE_NAME;
    this.identity = opts.identity ?? process.env.POD_NAME ?? hostname();
    this.leaseDurationMs = opts.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
    this.retryPeriodMs = opts.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? Math.max(1000, 2 * this.retryPeriodMs);
    if (this.identity === '') throw new Error('leader election: the identity must not be empty');
    if (this.namespace === '') throw new Error('leader election: the namespace must not be empty');
    if (!(this.leaseDurationMs >= 1000) || this.leaseDurationMs % 1000 !== 0)
      throw new Error(`leader election: leaseDurationMs (${this.leaseDurationMs}) must be whole seconds`);
    if (!(this.renewDeadlineMs < this.leaseDurationMs))
      throw new Error('leader election: renewDeadlineMs must be less than leaseDurationMs');
    if (!(this.retryPeriodMs > 0) || !(this.retryPeriodMs * (1 + RETRY_JITTER) < this.renewDeadlineMs))
      throw new Error('leader election: retryPeriodMs × 1.2 must be positive and less than renewDeadlineMs');
    if (!(this.requestTimeoutMs > 0)) throw new Error('leader election: requestTimeoutMs must be positive');
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.log = (opts.logger ?? createLogger({ level: 'silent' })).child({
      component: 'leader-election',
      lease: `${this.namespace}/${this.name}`,
      identity: this.identity,
    });
  }

  /** Starts competing for the Lease (idempotent). */
  start(): void {
    if (this.loop !== undefined || this.stopped) return;
    this.loop = this.run().catch((err: unknown) => this.log.error({ err }, 'leader election loop failed'));
  }

  isLeader(): boolean {
    return this.term !== undefined && !this.term.ctl.signal.aborted;
  }

  /** The current term's signal: aborts when leadership is lost; already aborted when not leader. */
  leadershipSignal(): AbortSignal {
    return this.term?.ctl.signal ?? NOT_LEADER;
  }

  /** The holder named by the Lease when last read ('' released, undefined not read yet). */
  get observedLeader(): string | undefined {
    return this.observedHolder;
  }

  /** Graceful shutdown: steps down (awaiting onStoppedLeading), then releases the Lease if held. */
  stop(): Promise<void> {
    this.shutdown ??= this.halt(true);
    return this.shutdown;
  }

  /**
   * Test hook simulating a crash: stops every timer and request and steps down locally, WITHOUT
   * releasing: the others must wait for the Lease to expire.
   */
  kill(): Promise<void> {
    this.shutdown ??= this.halt(false);
    return this.shutdown;
  }

  private async halt(release: boolean): Promise<void> {
    this.stopped = true;
    this.loopCtl.abort();
    await this.loop;
    const wasLeader = this.term !== undefined;
    this.loseLeadership('stopping');
    await this.stepDown;
    if (release && wasLeader) await this.release();
  }

  // ---- the loop ------------------------------------------------------------------------------

  private async run(): Promise<void> {
    const stop = this.loopCtl.signal;
    while (!this.over()) {
      const attempt = await this.tryAcquireOrRenew(stop, this.requestTimeoutMs);
      if (this.over()) break;
      if (attempt.kind === 'acquired' && this.clock.now() < attempt.base + this.renewDeadlineMs) {
        this.becomeLeader(attempt.base);
        await this.renewLoop();
        await this.stepDown;
        continue;
      }
      await sleepOn(this.clock, this.retryPeriodMs * (1 + RETRY_JITTER * this.random()), stop);
    }
  }

  private async renewLoop(): Promise<void> {
    const term = this.term;
    if (term === undefined) return;
    const signal = AbortSignal.any([this.loopCtl.signal, term.ctl.signal]);
    while (!this.over(term)) {
      await sleepOn(this.clock, this.retryPeriodMs, signal);
      if (this.over(term)) return;
      const left = term.base + this.renewDeadlineMs - this.clock.now();
      if (left <= 0) {
        this.loseLeadership('renew deadline exceeded');
        return;
      }
      const attempt = await this.tryAcquireOrRenew(signal, Math.min(this.requestTimeoutMs, left));
      if (this.over(term)) return;
      if (attempt.kind === 'acquired') {
        term.base = attempt.base;
        this.armWatchdog(term);
      } else if (attempt.kind === 'held') {
        this.loseLeadership(`the Lease is held by ${attempt.holder}`);
        return;
      }
      // 'error': retried after a retry period, until the watchdog ends the term.
    }
  }

  /** Stopped, or (given a term) that term ended; a method, as awaits change it behind TS's back. */
  private over(term?: Term): boolean {
    return this.stopped || (term?.ctl.signal.aborted ?? false);
  }

  private becomeLeader(base: number): void {
    const term: Term = { ctl: new AbortController(), base, watchdog: undefined };
    this.term = term;
    this.armWatchdog(term);
    this.opts.metrics?.leader.set(1);
    this.opts.metrics?.leaderAcquisitions.inc();
    this.log.info('became leader');
    try {
      this.opts.onStartedLeading?.(term.ctl.signal);
    } catch (err) {
      this.log.error({ err }, 'onStartedLeading failed');
    }
  }

  /** Ends the term when it has not renewed by its deadline, even while a request hangs. */
  private armWatchdog(term: Term): void {
    if (term.watchdog !== undefined) this.clock.clearTimeout(term.watchdog);
    const wait = term.base + this.renewDeadlineMs - this.clock.now();
    term.watchdog = this.clock.setTimeout(
      guarded(
        () => {
          term.watchdog = undefined;
          if (this.term === term) this.loseLeadership('renew deadline exceeded');
        },
        (err) => this.log.error({ err }, 'leader election watchdog failed'),
      ),
      wait,
    );
  }

  private loseLeadership(reason: string): void {
    const term = this.term;
    if (term === undefined) return;
    this.term = undefined;
    if (term.watchdog !== undefined) this.clock.clearTimeout(term.watchdog);
    term.ctl.abort(new Error(`leadership lost: ${reason}`));
    this.opts.metrics?.leader.set(0);
    if (reason === 'stopping') this.log.info('stepped down');
    else this.log.warn({ reason }, 'lost leadership');
    const callback = this.opts.onStoppedLeading;
    this.stepDown = (async () => {
      try {
        await callback?.();
      } catch (err) {
        this.log.error({ err }, 'onStoppedLeading failed');
      }
    })();
  }

  // ---- the Lease -----------------------------------------------------------------------------

  private get leasePath(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`;
  }

  /** One client-go tryAcquireOrRenew: GET, then POST (absent) or PUT with the resourceVersion. */
  private async tryAcquireOrRenew(signal: AbortSignal, timeoutMs: number): Promise<Attempt> {
    const base = this.clock.now();
    // A child controller, not AbortSignal.any(): that one piles up listeners on the long-lived
    // parent on some Node 20 releases, one per attempt.
    const ctl = new AbortController();
    const timer = this.clock.setTimeout(
      guarded(
        () => ctl.abort(new Error('lease request timed out')),
        (err) => this.log.error({ err }, 'lease request timeout failed'),
      ),
      timeoutMs,
    );
    const onAbort = guarded(
      () => ctl.abort(signal.reason),
      (err) => this.log.error({ err }, 'aborting a lease request failed'),
    );
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const s = ctl.signal;
    const item = `${this.leasePath}/${encodeURIComponent(this.name)}`;
    try {
      let lease: JsonRecord | undefined;
      try {
        lease = await this.request('GET', item, undefined, s);
      } catch (err) {
        if (!isKubeApiError(err, 404)) throw err;
      }
      const now = this.clock.now();
      const durationSeconds = this.leaseDurationMs / 1000;
      if (lease === undefined) {
        const spec: LeaseSpec = {
          holderIdentity: this.identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: formatMicroTime(now),
          renewTime: formatMicroTime(now),
          leaseTransitions: 0,
        };
        const body = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.name, namespace: this.namespace },
          spec,
        };
        this.observe(await this.request('POST', this.leasePath, body, s));
        return { kind: 'acquired', base };
      }
      this.observe(lease);
      const old = (asRecord(lease.spec) ?? {}) as LeaseSpec;
      const holder = asString(old.holderIdentity) ?? '';
      if (holder !== '' && holder !== this.identity && !this.expired(old, now))
        return { kind: 'held', holder };
      const ours = holder === this.identity;
      const transitions = typeof old.leaseTransitions === 'number' ? old.leaseTransitions : 0;
      const spec: LeaseSpec = {
        ...old,
        holderIdentity: this.identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: ours ? (old.acquireTime ?? formatMicroTime(now)) : formatMicroTime(now),
        renewTime: formatMicroTime(now),
        leaseTransitions: ours ? transitions : transitions + 1,
      };
      // metadata (with its resourceVersion) is sent back as read: optimistic concurrency.
      this.observe(await this.request('PUT', item, { ...lease, spec }, s));
      if (!ours)
        this.log.info({ previous: holder, transitions: spec.leaseTransitions }, 'took over the Lease');
      return { kind: 'acquired', base };
    } catch (err) {
      if (isKubeApiError(err, 409)) this.log.debug('lost a race for the Lease (409)');
      else if (!signal.aborted) this.log.warn({ err }, 'Lease request failed');
      return { kind: 'error' };
    } finally {
      this.clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Records a Lease read or written; its change time is when this replica saw it change. */
  private observe(lease: JsonRecord): void {
    const rv = asString(asRecord(lease.metadata)?.resourceVersion);
    if (rv !== this.observedVersion) {
      this.observedVersion = rv;
      this.observedAt = this.clock.now();
    }
    const holder = asString(asRecord(lease.spec)?.holderIdentity) ?? '';
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      this.log.debug({ holder }, 'new leader observed');
      try {
        this.opts.onNewLeader?.(holder);
      } catch (err) {
        this.log.error({ err }, 'onNewLeader failed');
      }
    }
  }

  private expired(spec: LeaseSpec, now: number): boolean {
    const duration = (typeof spec.leaseDurationSeconds === 'number' ? spec.leaseDurationSeconds : 0) * 1000;
    const renewed = parseMicroTime(spec.renewTime) ?? parseMicroTime(spec.acquireTime) ?? 0;
    return renewed + duration < now && this.observedAt + duration <= now;
  }

  /** ReleaseOnCancel: hands the Lease over at once, if it is still ours. */
  private async release(): Promise<void> {
    const deadline = new AbortController();
    const timer = this.clock.setTimeout(
      guarded(
        () => deadline.abort(),
        (err) => this.log.error({ err }, 'lease release timeout failed'),
      ),
      this.requestTimeoutMs,
    );
    const item = `${this.leasePath}/${encodeURIComponent(this.name)}`;
    try {
      const lease = await this.request('GET', item, undefined, deadline.signal);
      const old = (asRecord(lease.spec) ?? {}) as LeaseSpec;
      if (old.holderIdentity !== this.identity) return;
      const now = formatMicroTime(this.clock.now());
      const spec: LeaseSpec = {
        ...old,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
      };
      await this.request('PUT', item, { ...lease, spec }, deadline.signal);
      this.log.info('released the Lease');
    } catch (err) {
      this.log.warn({ err }, 'could not release the Lease; the others wait for it to expire');
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  /** A JSON request to the API server; the User-Agent names this replica in the server's logs. */
  private request(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body: JsonRecord | undefined,
    signal: AbortSignal,
  ): Promise<JsonRecord> {
    return kubeRequest(this.kc, {
      method,
      path,
      body,
      signal,
      headers: { 'User-Agent': `breeze-leader-election/${this.identity}` },
    });
  }
}
