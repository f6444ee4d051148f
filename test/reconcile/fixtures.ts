// Shared pieces of the reconciler tests: manifests, an in-memory sink, and a cluster environment
// (fake API server → real KubernetesSource → ConfigStore → Reconciler → KubernetesEnvoyFilterSink).
import type { Test } from 'tap';
import { ConfigStore } from '../../src/cache/store.js';
import { BreezeError } from '../../src/errors.js';
import type { JsonRecord } from '../../src/model/json.js';
import { generateAll } from '../../src/protocols/generate.js';
import type { GenerationOptions } from '../../src/protocols/types.js';
import { KubernetesEventer, type Eventer } from '../../src/reconcile/events.js';
import { idOf, isBreezeOwned } from '../../src/reconcile/owned.js';
import { Reconciler, type ReconcilerOptions } from '../../src/reconcile/reconciler.js';
import { KubernetesEnvoyFilterSink } from '../../src/reconcile/sinks/kubernetes.js';
import type { ApplyOutcome, EnvoyFilterSink } from '../../src/reconcile/types.js';
import { KubernetesSource } from '../../src/sources/kubernetes/kubernetes.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { waitFor } from '../sources/helpers.js';

export const logger = createLogger({ level: process.env.BREEZE_TEST_LOG ?? 'silent' });
export const GEN: GenerationOptions = {
  rootNamespace: 'istio-system',
  namespaceScope: false,
  domain: 'cluster.local',
};
export const EF_API = 'networking.istio.io/v1alpha3';
export const EF_PATH = '/apis/networking.istio.io/v1alpha3/';

/** A Dubbo ServiceEntry `svc-<i>` with VIP 240.240.0.<i>, outbound and inbound filters. */
export function dubboSE(
  i: number,
  o: { iface?: string | null; hosts?: string[]; name?: string } = {},
): JsonRecord {
  const name = o.name ?? `svc-${i}`;
  const iface = o.iface === undefined ? `org.example.Service${i}` : o.iface;
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: 'apps', annotations: iface === null ? {} : { interface: iface } },
    spec: {
      hosts: o.hosts ?? [`${name}.example.com`],
      addresses: [`240.240.0.${i}`],
      ports: [{ number: 20880, name: 'tcp-dubbo', protocol: 'TCP' }],
      workloadSelector: { labels: { app: name } },
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
    },
  };
}

export const redisService = (): JsonRecord => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'redis-c', namespace: 'redis' },
  spec: {
    clusterIP: '10.96.42.3',
    clusterIPs: ['10.96.42.3'],
    selector: { app: 'redis-c' },
    ports: [{ name: 'tcp-redis', port: 6379, targetPort: 6379 }],
  },
});

export const redisCR = (timeout = '1s'): JsonRecord => ({
  apiVersion: 'redis.aeraki.io/v1alpha1',
  kind: 'RedisService',
  metadata: { name: 'redis-c', namespace: 'redis' },
  spec: { host: ['redis-c.redis.svc.cluster.local'], settings: { opTimeout: timeout } },
});

/** EnvoyFilters in an in-memory map; failures injected per name. */
export class MemorySink implements EnvoyFilterSink {
  readonly objects = new Map<string, JsonRecord>();
  readonly calls: { op: 'apply' | 'delete'; id: string }[] = [];
  /** name → error thrown by every call for it */
  readonly failing = new Map<string, BreezeError>();

  async apply(ef: JsonRecord, signal: AbortSignal): Promise<ApplyOutcome> {
    signal.throwIfAborted();
    const id = idOf(ef);
    this.calls.push({ op: 'apply', id });
    const err = this.failing.get(id.split('/')[1] ?? '');
    if (err !== undefined) throw err;
    const existed = this.objects.has(id);
    this.objects.set(id, structuredClone(ef));
    return existed ? 'updated' : 'created';
  }

  async delete(namespace: string, name: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    this.calls.push({ op: 'delete', id: `${namespace}/${name}` });
    const err = this.failing.get(name);
    if (err !== undefined) throw err;
    this.objects.delete(`${namespace}/${name}`);
  }

  actual(): JsonRecord[] {
    return [...this.objects.values()];
  }

  writes(): number {
    return this.calls.length;
  }
}

export function memoryEnv(extra: Partial<ReconcilerOptions> = {}): {
  store: ConfigStore;
  sink: MemorySink;
  reconciler: Reconciler;
} {
  const store = new ConfigStore();
  const sink = new MemorySink();
  const reconciler = new Reconciler({
    store,
    sink,
    generation: GEN,
    actual: () => sink.actual(),
    logger,
    random: () => 0.5,
    ...extra,
  });
  return { store, sink, reconciler };
}

export interface ClusterEnv {
  readonly fake: FakeKubeApiServer;
  readonly store: ConfigStore;
  readonly sink: KubernetesEnvoyFilterSink;
  readonly eventer: Eventer;
  readonly reconciler: Reconciler;
  /** Breeze-labelled EnvoyFilters in the fake: name → content hash. */
  inCluster(): Map<string, string>;
  /** What generateAll wants from the store: name → content hash. */
  desired(): Map<string, string>;
  /** Waits until the store's view of Breeze's EnvoyFilters equals the fake's. */
  settled(): Promise<void>;
  /** Write requests (POST/PUT/PATCH/DELETE) to EnvoyFilters since `from` in the request log. */
  writes(from?: number): number;
}

const HASH = 'breeze.io/content-hash';

function hashes(objects: Iterable<JsonRecord>): Map<string, string> {
  const out = new Map<string, string>();
  for (const o of objects) {
    if (!isBreezeOwned(o)) continue;
    const m = o.metadata as { name: string; resourceVersion?: string; annotations?: Record<string, string> };
    out.set(m.name, m.annotations?.[HASH] ?? '');
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

export async function clusterEnv(
  t: Test,
  o: { reconciler?: Partial<ReconcilerOptions>; objects?: JsonRecord[]; requestTimeoutMs?: number } = {},
): Promise<ClusterEnv> {
  const fake = await FakeKubeApiServer.start({ bookmarkIntervalMs: 200 });
  for (const obj of o.objects ?? []) fake.put(obj);
  const kubeConfig = fake.kubeConfig();
  const store = new ConfigStore();
  const source = new KubernetesSource({
    kubeConfig,
    logger,
    kinds: ['ServiceEntry', 'Service', 'RedisService', 'RedisDestination', 'EnvoyFilter'],
    backoff: { initialMs: 20, maxMs: 200 },
    requestTimeoutMs: 2000,
  });
  await source.start(store);
  const sink = new KubernetesEnvoyFilterSink({ kubeConfig, requestTimeoutMs: o.requestTimeoutMs ?? 2000 });
  const eventer = new KubernetesEventer({ kubeConfig, logger, requestTimeoutMs: 2000 });
  const reconciler = new Reconciler({
    store,
    sink,
    generation: GEN,
    logger,
    eventer,
    retryBackoff: { initialMs: 10, maxMs: 100 },
    ...o.reconciler,
  });
  t.teardown(async () => {
    await source.stop();
    await eventer.flush();
    await fake.close();
  });
  const inCluster = (): Map<string, string> => hashes(fake.list(EF_API, 'EnvoyFilter'));
  const storeView = (): Map<string, string> => hashes(store.list('EnvoyFilter').map((e) => e.object));
  return {
    fake,
    store,
    sink,
    eventer,
    reconciler,
    inCluster,
    desired: () => hashes(generateAll(store, GEN).envoyFilters),
    settled: () =>
      waitFor('the store to see the cluster', () => {
        const a = inCluster();
        const b = storeView();
        const rv = (objects: Iterable<JsonRecord>): string =>
          [...objects]
            .filter(isBreezeOwned)
            .map((x) => `${idOf(x)}@${(x.metadata as { resourceVersion?: string }).resourceVersion ?? ''}`)
            .sort()
            .join(',');
        return (
          JSON.stringify([...a]) === JSON.stringify([...b]) &&
          rv(fake.list(EF_API, 'EnvoyFilter')) === rv(store.list('EnvoyFilter').map((e) => e.object))
        );
      }),
    writes: (from = 0) =>
      fake.requests
        .slice(from)
        .filter(
          (r) => r.path.includes('/envoyfilters') && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method),
        ).length,
  };
}

/** Waits until the store holds `kind/ns/name` (optionally satisfying `cond`). */
export async function inStore(
  store: ConfigStore,
  kind: string,
  namespace: string,
  name: string,
  cond: (o: JsonRecord | undefined) => boolean = (o) => o !== undefined,
): Promise<void> {
  await waitFor(`${kind}/${namespace}/${name} in the store`, () =>
    cond(store.get(kind, namespace, name)?.object),
  );
}
