/**
 * The cluster source: list+watch of the Istio and Aeraki kinds Breeze reads, core/v1 Services,
 * Breeze's own EnvoyFilters (so the reconciler sees drift) and the Secrets Redis CRs name.
 *
 * RBAC it needs (ClusterRole):
 *   networking.istio.io  serviceentries, virtualservices, destinationrules, envoyfilters: list, watch
 *   redis.aeraki.io      redisservices, redisdestinations: list, watch
 *   ""                   services: list, watch
 *   ""                   secrets: get            (no list/watch: see secrets.ts)
 *   ""                   namespaces: list, watch (only those labelled istio.io/dataplane-mode)
 * plus the discovery endpoints (/api, /apis/...), which the default system:discovery role grants.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { DATAPLANE_MODE_LABEL } from '../../model/ambient.js';
import { ISTIO_NETWORKING_GROUP, objectRef, REDIS_GROUP } from '../../model/kinds.js';
import type { JsonRecord } from '../../model/json.js';
import type { Logger } from '../../telemetry/logger.js';
import type { ConfigSink, Source } from '../types.js';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { Discovery } from './discovery.js';
import { getJson } from './rest.js';
import { secretRefs, SecretTracker, type SecretRef } from './secrets.js';
import { ListWatch, type ListWatchStats, type WatchedResource } from './watch.js';

/** Labels the EnvoyFilters Breeze writes; the source reads only those. */
export const MANAGED_BY_SELECTOR = 'app.kubernetes.io/managed-by=breeze';

/** Istio serves networking kinds in several versions; the newest served one is read. */
export const ISTIO_NETWORKING_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;

export type WatchedKind =
  | 'ServiceEntry'
  | 'VirtualService'
  | 'DestinationRule'
  | 'RedisService'
  | 'RedisDestination'
  | 'Service'
  | 'EnvoyFilter'
  | 'Namespace';

export type KubernetesKind = WatchedKind | 'Secret';

export const WATCHED_RESOURCES: Readonly<Record<WatchedKind, WatchedResource>> = {
  ServiceEntry: {
    kind: 'ServiceEntry',
    group: ISTIO_NETWORKING_GROUP,
    versions: ISTIO_NETWORKING_VERSIONS,
    resource: 'serviceentries',
  },
  VirtualService: {
    kind: 'VirtualService',
    group: ISTIO_NETWORKING_GROUP,
    versions: ISTIO_NETWORKING_VERSIONS,
    resource: 'virtualservices',
  },
  DestinationRule: {
    kind: 'DestinationRule',
    group: ISTIO_NETWORKING_GROUP,
    versions: ISTIO_NETWORKING_VERSIONS,
    resource: 'destinationrules',
  },
  RedisService: {
    kind: 'RedisService',
    group: REDIS_GROUP,
    versions: ['v1alpha1'],
    resource: 'redisservices',
  },
  RedisDestination: {
    kind: 'RedisDestination',
    group: REDIS_GROUP,
    versions: ['v1alpha1'],
    resource: 'redisdestinations',
  },
  Service: { kind: 'Service', group: '', versions: ['v1'], resource: 'services' },
  EnvoyFilter: {
    kind: 'EnvoyFilter',
    group: ISTIO_NETWORKING_GROUP,
    versions: ['v1alpha3'],
    resource: 'envoyfilters',
    labelSelector: MANAGED_BY_SELECTOR,
  },
  // Only namespaces carrying the label (a label selector "exists"): a namespace whose label is
  // removed leaves the selection, which the watch reports as DELETED.
  Namespace: {
    kind: 'Namespace',
    group: '',
    versions: ['v1'],
    resource: 'namespaces',
    labelSelector: DATAPLANE_MODE_LABEL,
  },
};

/**
 * Kinds that do not hold readiness back: their list failing (a missing RBAC grant) only turns a
 * warning off, so the webhook and the EnvoyFilters must not wait for them. The loop keeps retrying.
 */
export const OPTIONAL_KINDS: readonly WatchedKind[] = ['Namespace'];

export const KUBERNETES_KINDS: readonly KubernetesKind[] = [
  'ServiceEntry',
  'VirtualService',
  'DestinationRule',
  'RedisService',
  'RedisDestination',
  'Service',
  'EnvoyFilter',
  'Secret',
  'Namespace',
];

const SECRET_OWNER_KINDS: readonly WatchedKind[] = ['RedisService', 'RedisDestination'];

export interface KubernetesSourceOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** Full relist of every kind this often; default 10 min. */
  readonly relistIntervalMs?: number;
  /** Restart a watch without any event (bookmarks included) for this long; default 5 min. */
  readonly watchdogMs?: number;
  /** Retry waits: initialMs doubling to maxMs, ±20 % jitter; default 0.5 s to 30 s. */
  readonly backoff?: BackoffOptions;
  /** The kinds to read; default all (KUBERNETES_KINDS). */
  readonly kinds?: readonly KubernetesKind[];
  /** Deadline of one list page, discovery or Secret request and of a watch's headers; default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Re-read every referenced Secret this often; default 60 s. */
  readonly secretRefreshMs?: number;
  /** Objects per list page; default 500. */
  readonly pageSize?: number;
}

export interface KubernetesSourceStatus {
  readonly kinds: Readonly<Partial<Record<WatchedKind, Readonly<ListWatchStats> & { synced: boolean }>>>;
  readonly secrets?: { synced: boolean; referenced: number; gets: number; errors: number; refreshes: number };
}

/**
 * Delivers the cluster's objects to a ConfigSink with origin `kubernetes`: `replace` after every
 * (re)list, `apply` for every watch event. Each kind runs its own resilient list+watch loop
 * (watch.ts); Secrets are read individually (secrets.ts).
 */
export class KubernetesSource implements Source {
  readonly name = 'kubernetes';
  private readonly loops = new Map<WatchedKind, ListWatch>();
  private secrets: SecretTracker | undefined;
  private started = false;
  private stopping: Promise<void> | undefined;
  private readonly kinds: readonly KubernetesKind[];

  constructor(private readonly opts: KubernetesSourceOptions) {
    this.kinds = opts.kinds ?? KUBERNETES_KINDS;
  }

  async start(sink: ConfigSink): Promise<void> {
    if (this.started) throw new Error('the kubernetes source was already started');
    this.started = true;
    const { kubeConfig } = this.opts;
    const logger = this.opts.logger.child({ source: 'kubernetes' });
    const requestTimeoutMs = this.opts.requestTimeoutMs ?? 30_000;
    const backoff = this.opts.backoff ?? DEFAULT_BACKOFF;
    const discovery = new Discovery((path) => getJson(kubeConfig, path, { timeoutMs: requestTimeoutMs }));
    const timing = {
      relistIntervalMs: this.opts.relistIntervalMs ?? 600_000,
      watchdogMs: this.opts.watchdogMs ?? 300_000,
      backoff,
      requestTimeoutMs,
      pageSize: this.opts.pageSize ?? 500,
    };

    const secrets = this.kinds.includes('Secret')
      ? new SecretTracker({
          get: (path, signal) => getJson(kubeConfig, path, { signal, timeoutMs: requestTimeoutMs }),
          logger,
          refreshMs: this.opts.secretRefreshMs ?? 60_000,
          backoff,
          apply: (ns, name, secret) => sink.apply('kubernetes', 'Secret', ns, name, secret),
          replace: (all) => sink.replace('kubernetes', 'Secret', all),
        })
      : undefined;
    this.secrets = secrets;

    for (const kind of this.kinds) {
      if (kind === 'Secret') continue;
      const ownsSecrets = secrets !== undefined && SECRET_OWNER_KINDS.includes(kind);
      const loop = new ListWatch(WATCHED_RESOURCES[kind], {
        kubeConfig,
        discovery,
        logger,
        timing,
        handler: {
          replace: (objects, asOf) => {
            sink.replace('kubernetes', kind, objects, asOf);
            if (ownsSecrets) secrets.replaceOwners(`${kind}/`, ownersOf(kind, objects));
          },
          progress: () => sink.progress?.('kubernetes', kind),
          apply: (namespace, name, object) => {
            sink.apply('kubernetes', kind, namespace, name, object);
            if (ownsSecrets)
              secrets.setOwner(
                `${kind}/${namespace}/${name}`,
                object === undefined ? [] : secretRefs(kind, object),
              );
          },
        },
      });
      this.loops.set(kind, loop);
    }

    for (const loop of this.loops.values()) loop.start();
    if (secrets !== undefined) {
      const owners = SECRET_OWNER_KINDS.map((k) => this.loops.get(k)).filter((l) => l !== undefined);
      void Promise.all(owners.map((l) => l.whenSynced())).then(() => secrets.ownersKnown());
    }
    // Resolves early, with synced() false, if stop() comes first.
    await Promise.all([...this.requiredLoops().map((l) => l.whenSynced()), secrets?.whenSynced()]);
  }

  private requiredLoops(): ListWatch[] {
    return [...this.loops].filter(([kind]) => !OPTIONAL_KINDS.includes(kind)).map(([, loop]) => loop);
  }

  synced(): boolean {
    if (!this.started) return false;
    for (const loop of this.requiredLoops()) if (!loop.synced) return false;
    return this.secrets?.synced ?? true;
  }

  /** Counters per kind, for logs, metrics and tests. */
  status(): KubernetesSourceStatus {
    const kinds: Partial<Record<WatchedKind, ListWatchStats & { synced: boolean }>> = {};
    for (const [kind, loop] of this.loops) kinds[kind] = { ...loop.stats, synced: loop.synced };
    const s = this.secrets;
    return s === undefined
      ? { kinds }
      : { kinds, secrets: { synced: s.synced, referenced: s.referenced().length, ...s.stats } };
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([...[...this.loops.values()].map((l) => l.stop()), this.secrets?.stop()]);
    })();
    return this.stopping;
  }
}

function ownersOf(kind: string, objects: readonly JsonRecord[]): Map<string, SecretRef[]> {
  const owners = new Map<string, SecretRef[]>();
  for (const o of objects) {
    const { namespace, name } = objectRef(o);
    owners.set(`${kind}/${namespace}/${name}`, secretRefs(kind, o));
  }
  return owners;
}
