import type { AdmittedChange } from '../admission/handler.js';
import type { ConfigStore } from '../cache/store.js';
import type { JsonRecord } from '../model/json.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

/**
 * The admission fast path into the cache, for local mode only (loopback webhook, where admission
 * and files are the only ways a change arrives): every allowed, non-dry-run change of a handled
 * kind is held as pending (cross-object checks and VIP allocation see it at once, and its
 * services are marked dirty). An authoritative source confirms it; one nobody confirms within
 * the grace period, while a source of its kind did report since, was never persisted (a later
 * webhook denied it, or a conflict) and is dropped. While every such source is silent it is held.
 *
 * Never in cluster mode: anyone who reaches the webhook port can POST a review the API server
 * never saw, so there the cache is fed by the Kubernetes watch alone (it delivers a persisted
 * change well within the debounce period).
 */
export class AdmissionFeed {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: ConfigStore,
    private readonly o: { graceMs: number; logger: Logger; metrics: Metrics },
  ) {}

  /** The webhook's `onAdmitted` callback. */
  readonly record = (change: AdmittedChange): void => {
    try {
      this.recordOne(change);
    } catch (err) {
      // The answer to the request does not depend on the cache: log, never fail the request.
      this.o.logger.error(
        { err, config: `${change.kind}/${change.namespace}/${change.name}`.slice(0, 300) },
        'could not record an admitted change',
      );
    }
  };

  private recordOne(change: AdmittedChange): void {
    this.o.metrics.cacheChanges.inc({ origin: 'admission' });
    if (change.object === undefined) {
      this.store.apply(
        'admission',
        change.kind,
        change.namespace,
        change.name,
        undefined,
        change.deletedVersion,
      );
      return;
    }
    const metadata = {
      ...((change.object.metadata as JsonRecord | undefined) ?? {}),
      namespace: change.namespace,
    };
    this.store.apply('admission', change.kind, change.namespace, change.name, { ...change.object, metadata });
  }

  /** Checks for expired changes every quarter of the grace period (at least once a second). */
  start(): void {
    const every = Math.max(1000, Math.floor(this.o.graceMs / 4));
    this.timer = setInterval(() => this.expire(), every);
    this.timer.unref();
  }

  /** One expiry pass; never throws (it runs from an interval: a throw would end the process). */
  expire(): void {
    try {
      this.expireOnce();
    } catch (err) {
      this.o.logger.error(
        { err },
        'expiring unconfirmed admitted changes failed; trying again at the next tick',
      );
    }
  }

  private expireOnce(): void {
    const { dropped, held } = this.store.expirePending(this.o.graceMs);
    for (const key of dropped) {
      this.o.metrics.admissionUnconfirmedDropped.inc();
      this.o.logger.debug(
        { config: key },
        'admitted change never confirmed by a source: dropped from the cache',
      );
    }
    this.o.metrics.admissionUnconfirmedHeld.set(held);
    if (held > 0)
      this.o.logger.debug(
        { held },
        'admitted changes past the grace period held: their sources reported nothing since (stalled?)',
      );
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
