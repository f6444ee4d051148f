// Two full instances (watch-fed cache, reconciler, push loop, Lease election) against the fake
// API. During a burst of changes the leader dies without releasing its Lease: the other takes
// over, the EnvoyFilters end up exactly right, and at no time did two instances write.
import t from 'tap';
import { ConfigStore } from '../../src/cache/store.js';
import type { JsonRecord } from '../../src/model/json.js';
import { generateAll } from '../../src/protocols/generate.js';
import { Controller } from '../../src/reconcile/controller.js';
import { LeaderElector } from '../../src/reconcile/leader.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import { KubernetesEnvoyFilterSink } from '../../src/reconcile/sinks/kubernetes.js';
import type { EnvoyFilterSink } from '../../src/reconcile/types.js';
import { KubernetesSource } from '../../src/sources/kubernetes/kubernetes.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { waitFor } from '../sources/helpers.js';

const logger = createLogger({ level: 'silent' });
const GEN = { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' };

const se = (i: number, port: number): JsonRecord => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: `svc-${i}`, namespace: 'apps' },
  spec: {
    hosts: [`svc-${i}.apps.svc.cluster.local`],
    addresses: [`240.240.9.${i}`],
    ports: [{ number: port, name: 'tcp-kafka', protocol: 'TCP' }],
    workloadSelector: { labels: { app: `svc-${i}` } },
    resolution: 'STATIC',
  },
});

interface Write {
  who: string;
  start: number;
  end: number;
}

async function instance(fake: FakeKubeApiServer, who: string, writes: Write[]) {
  const kubeConfig = fake.kubeConfig();
  const store = new ConfigStore();
  const source = new KubernetesSource({
    kubeConfig,
    logger,
    kinds: ['ServiceEntry', 'EnvoyFilter'],
    backoff: { initialMs: 20, maxMs: 200 },
  });
  const real = new KubernetesEnvoyFilterSink({ kubeConfig, requestTimeoutMs: 2000 });
  // Records every successful write with its time span and the instance that made it.
  const sink: EnvoyFilterSink = {
    apply: async (ef, signal) => {
      const start = performance.now();
      const r = await real.apply(ef, signal);
      writes.push({ who, start, end: performance.now() });
      return r;
    },
    delete: async (ns, name, signal) => {
      const start = performance.now();
      await real.delete(ns, name, signal);
      writes.push({ who, start, end: performance.now() });
    },
  };
  const ref: { controller?: Controller } = {};
  const reconciler = new Reconciler({
    store,
    sink,
    generation: GEN,
    logger,
    concurrency: 4,
    qps: 1000,
    burst: 1000,
    retryBackoff: { initialMs: 20, maxMs: 200 },
    onRetry: (k, at) => ref.controller?.onRetry(k, at),
  });
  const controller = new Controller({
    store,
    reconciler,
    logger,
    quietMs: 20,
    maxMs: 200,
    resyncIntervalMs: 60_000,
  });
  ref.controller = controller;
  let resynced = (): void => undefined;
  const firstResync = new Promise<void>((resolve) => (resynced = resolve));
  const elector = new LeaderElector({
    kubeConfig,
    namespace: 'istio-system',
    identity: who,
    leaseDurationMs: 2000,
    renewDeadlineMs: 1200,
    retryPeriodMs: 200,
    logger,
    onStartedLeading: (signal) => void controller.startedLeading(signal).then(() => resynced()),
    onStoppedLeading: () => controller.stoppedLeading(),
  });
  controller.start();
  await source.start(store);
  elector.start();
  return {
    elector,
    store,
    firstResync,
    kill: async () => {
      await elector.kill(); // no release: the other must wait for the lease to expire
      await controller.stop();
      await source.stop();
    },
    stop: async () => {
      await elector.stop();
      await controller.stop();
      await source.stop();
    },
  };
}

function desired(fake: FakeKubeApiServer): Map<string, string> {
  const store = new ConfigStore();
  for (const o of fake.list('networking.istio.io/v1', 'ServiceEntry')) store.upsert(o, 'kubernetes');
  return hashes(generateAll(store, GEN).envoyFilters);
}

function hashes(objects: Iterable<JsonRecord>): Map<string, string> {
  return new Map(
    [...objects]
      .map((o) => o.metadata as { name: string; annotations?: Record<string, string> })
      .map((m) => [m.name, m.annotations?.['breeze.io/content-hash'] ?? ''] as [string, string])
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
}

const same = (a: Map<string, string>, b: Map<string, string>): boolean =>
  a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

t.test('failover during a burst: exact end state, never two writers', async (t) => {
  const fake = await FakeKubeApiServer.start({ bookmarkIntervalMs: 200 });
  t.teardown(() => fake.close());
  for (let i = 1; i <= 15; i++) fake.put(se(i, 9092));
  const writes: Write[] = [];
  const a = await instance(fake, 'a', writes);
  const b = await instance(fake, 'b', writes);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const inCluster = (): Map<string, string> =>
    hashes(fake.list('networking.istio.io/v1alpha3', 'EnvoyFilter'));
  await waitFor('the first leader to write everything', () => same(inCluster(), desired(fake)), 20_000);
  const leader = a.elector.isLeader() ? a : b;
  const standby = leader === a ? b : a;

  // A burst of changes; the leader dies in the middle of it.
  for (let round = 0; round < 3; round++) {
    for (let i = 1; i <= 15; i++) fake.put(se(i, 9093 + round));
    if (round === 1) void leader.kill();
    await new Promise((r) => setTimeout(r, 100));
  }
  fake.remove('networking.istio.io/v1', 'ServiceEntry', 'apps', 'svc-15');
  await waitFor('the standby to take over', () => standby.elector.isLeader(), 15_000);
  await waitFor('the EnvoyFilters to equal the desired set', () => same(inCluster(), desired(fake)), 20_000);
  t.equal(inCluster().size, 28, '14 services × (outbound + inbound)');

  // At most one writer at any time: whenever the writer changes, the previous one had finished.
  const ordered = [...writes].sort((x, y) => x.start - y.start);
  let lastEnd = new Map<string, number>();
  let overlaps = 0;
  for (const w of ordered) {
    for (const [who, end] of lastEnd) if (who !== w.who && end > w.start) overlaps++;
    lastEnd = new Map(lastEnd).set(w.who, Math.max(lastEnd.get(w.who) ?? 0, w.end));
  }
  t.equal(overlaps, 0, 'no write of one instance overlaps a write of the other');
  t.ok(new Set(writes.map((w) => w.who)).size === 2, 'both instances wrote, one after the other');
});

t.test('restart: a new instance converges with zero unnecessary writes', async (t) => {
  const fake = await FakeKubeApiServer.start({ bookmarkIntervalMs: 200 });
  t.teardown(() => fake.close());
  for (let i = 1; i <= 10; i++) fake.put(se(i, 9092));
  const writes: Write[] = [];
  const first = await instance(fake, 'first', writes);
  const inCluster = (): Map<string, string> =>
    hashes(fake.list('networking.istio.io/v1alpha3', 'EnvoyFilter'));
  await waitFor('everything written', () => same(inCluster(), desired(fake)), 20_000);
  await first.stop(); // graceful: the Lease is released

  const before = writes.length;
  const efWrites = (): number =>
    fake.requests.filter(
      (r) => r.path.startsWith('/apis/networking.istio.io/v1alpha3/') && r.method !== 'GET',
    ).length;
  const efBefore = efWrites();
  const second = await instance(fake, 'second', writes);
  t.teardown(() => second.stop());
  await second.firstResync;
  t.ok(second.elector.isLeader(), 'the new instance leads at once (the Lease was released)');
  t.equal(writes.length, before, 'its first resync writes nothing');
  t.equal(efWrites(), efBefore, 'no EnvoyFilter write request reached the API');

  // A change that keeps the filter names: the workload selector of one service (its inbound filter).
  const changed = se(3, 9092);
  (changed.spec as JsonRecord).workloadSelector = { labels: { app: 'svc-3', track: 'canary' } };
  fake.put(changed);
  // The fake applies a write before its answer reaches the client: wait for both, then for quiet.
  await waitFor(
    'the change to reach the cluster',
    () => same(inCluster(), desired(fake)) && writes.length > before,
    20_000,
  );
  await new Promise((r) => setTimeout(r, 500));
  t.equal(writes.length, before + 1, 'one change: exactly one write (its inbound filter)');
});
