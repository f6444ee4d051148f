// Reconcile benchmark: 10k services reconciled into the fake Kubernetes API from empty (requests
// sent, time), then a no-op resync (zero writes expected) and a single change (one write), each
// timed in the same run. The real sink and the real watch (actual state) are used; the API limits
// are raised so the fake's speed, not the default 20 writes/s, is what is measured.
import { mkdirSync, writeFileSync } from 'node:fs';
import { ConfigStore } from '../src/cache/store.js';
import type { JsonRecord } from '../src/model/json.js';
import { Reconciler } from '../src/reconcile/reconciler.js';
import { KubernetesEnvoyFilterSink } from '../src/reconcile/sinks/kubernetes.js';
import { KubernetesSource } from '../src/sources/kubernetes/kubernetes.js';
import { createLogger } from '../src/telemetry/logger.js';
import { FakeKubeApiServer } from '../test/fakes/kube-apiserver.js';
import { syntheticConfig } from './synthetic.js';
import { waitFor } from '../test/wait.js';

const EF_PATH = '/apis/networking.istio.io/v1alpha3/';

export async function runReconcileBench(opts: { services?: number } = {}): Promise<Record<string, unknown>> {
  const n = opts.services ?? 10_000;
  const logger = createLogger({ level: 'silent' });
  const fake = await FakeKubeApiServer.start({ bookmarkIntervalMs: 1000 });
  const store = new ConfigStore();
  for (const o of syntheticConfig(n)) store.upsert(o, 'kubernetes');
  const kubeConfig = fake.kubeConfig();
  const source = new KubernetesSource({ kubeConfig, logger, kinds: ['EnvoyFilter'] });
  await source.start(store);
  const reconciler = new Reconciler({
    store,
    sink: new KubernetesEnvoyFilterSink({ kubeConfig }),
    generation: { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' },
    logger,
    concurrency: 16,
    qps: 1_000_000,
    burst: 1_000_000,
  });
  const signal = new AbortController().signal;
  const writes = (from: number): number =>
    fake.requests.slice(from).filter((r) => r.path.startsWith(EF_PATH) && r.method !== 'GET').length;
  const requests = (from: number): number =>
    fake.requests.slice(from).filter((r) => r.path.startsWith(EF_PATH)).length;
  const inCluster = (): number => fake.list('networking.istio.io/v1alpha3', 'EnvoyFilter').length;

  let mark = fake.requests.length;
  let t0 = performance.now();
  const first = await reconciler.resync(signal);
  const fromEmpty = {
    ms: performance.now() - t0,
    writes: writes(mark),
    requests: requests(mark),
    created: first.created,
    objects: inCluster(),
  };
  await waitFor(
    'the watch to see every EnvoyFilter',
    () => store.list('EnvoyFilter').length === fromEmpty.objects,
    120_000,
  );

  mark = fake.requests.length;
  t0 = performance.now();
  const noop = await reconciler.resync(signal);
  const noopRun = { ms: performance.now() - t0, writes: writes(mark), unchanged: noop.unchanged };

  const vs = store.list('VirtualService')[0]!;
  const changed = structuredClone(vs.object);
  const split = ((changed.spec as JsonRecord).http as JsonRecord[])[1]!.route as JsonRecord[];
  split[0]!.weight = 70;
  split[1]!.weight = 30;
  mark = fake.requests.length;
  t0 = performance.now();
  const keys = store.apply('kubernetes', 'VirtualService', vs.namespace, vs.name, changed);
  const one = await reconciler.reconcile(keys, signal);
  const single = { ms: performance.now() - t0, writes: writes(mark), updated: one.updated, keys: keys.size };

  await source.stop();
  await fake.close();
  const results = { services: n, fromEmpty, noopResync: noopRun, singleChange: single };
  console.log(
    `Reconcile benchmark: ${n} services into the fake Kubernetes API (concurrency 16, QPS limit lifted)`,
  );
  console.log('| run | time ms | write requests | result |');
  console.log('|---|---|---|---|');
  console.log(
    `| from empty | ${fromEmpty.ms.toFixed(0)} | ${fromEmpty.writes} (${fromEmpty.requests} requests in all) | ${fromEmpty.created} created, ${fromEmpty.objects} in the API |`,
  );
  console.log(
    `| no-op resync | ${noopRun.ms.toFixed(0)} | ${noopRun.writes} | ${noopRun.unchanged} unchanged |`,
  );
  console.log(
    `| one VirtualService change | ${single.ms.toFixed(1)} | ${single.writes} | ${single.updated} updated (${single.keys} service affected) |`,
  );
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/reconcile.json', import.meta.url),
    `${JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2)}\n`,
  );
  return results;
}
