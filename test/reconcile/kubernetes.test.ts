// The reconciler and the Kubernetes sink against the fake API server through client-node's
// KubeConfig, with the real KubernetesSource feeding the store (actual state from the watch).
import t from 'tap';
import type { JsonRecord } from '../../src/model/json.js';
import { CONDITION_TYPE } from '../../src/reconcile/events.js';
import { clusterEnv, dubboSE, EF_API, EF_PATH, inStore, redisCR, redisService } from './fixtures.js';
import { waitFor } from '../sources/helpers.js';

const signal = new AbortController().signal;

/** A deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const foreignName = 'breeze-inbound-svc-2.example.com-20880';
const foreign = (): JsonRecord => ({
  apiVersion: EF_API,
  kind: 'EnvoyFilter',
  metadata: { name: foreignName, namespace: 'istio-system', labels: { team: 'someone-else' } },
  spec: { configPatches: [{ applyTo: 'NETWORK_FILTER', hand: 'made' }] },
});

t.test('random faults during pushes and resyncs: converges exactly, foreign object untouched', async (t) => {
  const random = prng(Number(process.env.BREEZE_CHAOS_SEED ?? 42));
  const objects = [1, 2, 3, 4, 5, 6].map((i) => dubboSE(i));
  const env = await clusterEnv(t, { objects: [...objects, foreign()], requestTimeoutMs: 300 });
  const { fake, store, reconciler } = env;
  await inStore(store, 'ServiceEntry', 'apps', 'svc-6');
  const foreignBefore = fake.get(EF_API, 'EnvoyFilter', 'istio-system', foreignName);

  const faults = [409, 429, 500, 503, 'hang'] as const;
  for (let round = 0; round < 12; round++) {
    for (let f = 0; f < 3; f++) {
      const status = faults[Math.floor(random() * faults.length)] ?? 500;
      const method = (['POST', 'PATCH', 'DELETE', 'GET'] as const)[Math.floor(random() * 4)];
      fake.injectFault({
        status,
        method,
        path: /envoyfilters/,
        watch: false,
        count: 1 + Math.floor(random() * 2),
      });
    }
    if (random() < 0.3) fake.dropWatches();
    // The cache changes meanwhile: annotation updates, a service removed and re-added.
    const i = 1 + Math.floor(random() * 6);
    const change = random();
    if (change < 0.3) fake.put(dubboSE(i, { iface: `org.example.R${round}` }));
    else if (change < 0.45) fake.remove('networking.istio.io/v1', 'ServiceEntry', 'apps', `svc-${i}`);
    else if (change < 0.6) fake.put(dubboSE(i));
    if (random() < 0.5) await reconciler.resync(signal);
    else await reconciler.reconcile([`ServiceEntry/apps/svc-${i}`], signal);
  }
  fake.clearFaults();
  t.ok(fake.requests.filter((r) => r.status >= 400).length >= 5, 'faults were injected and hit');
  for (const o of objects) fake.put(o); // a known final state
  await waitFor('the store to hold the final services', () =>
    objects.every((o) => {
      const a = (o.metadata as { annotations: Record<string, string> }).annotations;
      const name = (o.metadata as { name: string }).name;
      return (
        store.get('ServiceEntry', 'apps', name)?.object.metadata !== undefined &&
        JSON.stringify(
          (store.get('ServiceEntry', 'apps', name)?.object.metadata as { annotations?: unknown }).annotations,
        ) === JSON.stringify(a)
      );
    }),
  );
  await reconciler.resync(signal);
  await env.settled();

  const desired = env.desired();
  desired.delete(foreignName);
  t.same([...env.inCluster()], [...desired], 'exactly the desired set: none lost, none extra');
  t.same(
    fake.get(EF_API, 'EnvoyFilter', 'istio-system', foreignName),
    foreignBefore,
    'the foreign object is untouched',
  );
  const failures = [...reconciler.failures().values()];
  t.same(
    failures.map((f) => [f.object, f.code]),
    [[`istio-system/${foreignName}`, 'FOREIGN_OBJECT']],
    'the conflict is reported, nothing else fails',
  );

  const from = fake.requests.length;
  const r = await reconciler.resync(signal);
  t.equal(env.writes(from), 0, 'a no-op resync sends zero write requests');
  t.match(r, { created: 0, updated: 0, deleted: 0 });
});

t.test('an unchanged cache rewrites nothing; a SE annotation change updates', async (t) => {
  const env = await clusterEnv(t, { objects: [dubboSE(1), dubboSE(2)] });
  const { fake, store, reconciler } = env;
  await inStore(store, 'ServiceEntry', 'apps', 'svc-2');
  t.match(await reconciler.resync(signal), { created: 4 });
  await env.settled();
  let from = fake.requests.length;
  t.match(await reconciler.resync(signal), { unchanged: 4 });
  t.match(await reconciler.reconcile(['ServiceEntry/apps/svc-1'], signal), { unchanged: 2 });
  t.equal(env.writes(from), 0, 'no POST/PUT/PATCH/DELETE on envoyfilters');

  fake.put(dubboSE(1, { iface: 'org.example.Changed' }));
  await inStore(store, 'ServiceEntry', 'apps', 'svc-1', (o) =>
    JSON.stringify(o?.metadata).includes('org.example.Changed'),
  );
  from = fake.requests.length;
  t.match(await reconciler.reconcile(['ServiceEntry/apps/svc-1'], signal), { updated: 1, unchanged: 1 });
  const patches = fake.requests.slice(from).filter((r) => r.method === 'PATCH');
  t.equal(patches.length, 1);
  t.match(patches[0]?.query, { fieldManager: 'breeze', force: 'true' }, 'server-side apply');
  await env.settled();
  t.same([...env.inCluster()], [...env.desired()]);
});

t.test('the sink: foreign objects are never overwritten nor deleted; 409 on update re-reads', async (t) => {
  const env = await clusterEnv(t, { objects: [dubboSE(2), foreign()] });
  const { fake, store, reconciler, sink } = env;
  await inStore(store, 'ServiceEntry', 'apps', 'svc-2');
  await reconciler.resync(signal);
  t.match(reconciler.failures().get(`istio-system/${foreignName}`), { code: 'FOREIGN_OBJECT', status: 409 });
  await t.rejects(sink.delete('istio-system', foreignName, signal), { code: 'FOREIGN_OBJECT' });
  t.ok(fake.get(EF_API, 'EnvoyFilter', 'istio-system', foreignName), 'still there');

  // A stale copy (older resourceVersion): the precondition fails, the sink re-reads and applies.
  await env.settled();
  const name = 'breeze-outbound-svc-2.example.com-240.240.0.2-20880';
  const stale = fake.get(EF_API, 'EnvoyFilter', 'istio-system', name) as JsonRecord;
  fake.put({
    ...stale,
    metadata: {
      ...(stale.metadata as object),
      labels: { ...(stale.metadata as { labels: object }).labels, extra: 'x' },
    },
  });
  const desired = structuredClone(stale);
  (desired.metadata as { annotations: Record<string, string> }).annotations['breeze.io/content-hash'] =
    'changed';
  t.equal(await sink.apply(desired, signal, stale), 'updated');
  await t.resolves(sink.delete('istio-system', 'does-not-exist', signal), '404 on delete is done');
  await sink.delete('istio-system', name, signal, stale);
  t.notOk(fake.get(EF_API, 'EnvoyFilter', 'istio-system', name), 'deleted after re-reading the precondition');
});

t.test('a 422 from the API server is reported and not resent', async (t) => {
  const env = await clusterEnv(t, { objects: [dubboSE(1)] });
  const { fake, store, reconciler } = env;
  await inStore(store, 'ServiceEntry', 'apps', 'svc-1');
  fake.injectFault({ status: 422, method: 'POST', path: /envoyfilters/, count: 1 });
  const r = await reconciler.resync(signal);
  t.match(r, { created: 1, failed: 1 });
  const failed = [...reconciler.failures().values()];
  t.match(failed, [{ code: 'API_INVALID', status: 422 }]);
  await env.settled();
  const from = fake.requests.length;
  for (let i = 0; i < 3; i++) await reconciler.resync(signal);
  t.equal(env.writes(from), 0, 'no hot loop');
  t.equal(reconciler.failures().size, 1, 'still reported');
});

t.test('Events on the source objects and the RedisService status condition', async (t) => {
  const env = await clusterEnv(t, { objects: [redisService(), redisCR(), dubboSE(1)] });
  const { fake, store, reconciler, eventer } = env;
  await inStore(store, 'RedisService', 'redis', 'redis-c');
  await inStore(store, 'Service', 'redis', 'redis-c');
  await inStore(store, 'ServiceEntry', 'apps', 'svc-1');
  await reconciler.resync(signal);
  await eventer.flush();
  const events = fake.list('v1', 'Event');
  const about = (kind: string, reason: string) =>
    events.filter((e) => (e.involvedObject as { kind: string }).kind === kind && e.reason === reason);
  t.ok(about('Service', 'EnvoyFilterCreated').length >= 1, 'on the Service');
  t.ok(about('RedisService', 'EnvoyFilterCreated').length >= 1, 'on the RedisService');
  t.ok(about('ServiceEntry', 'EnvoyFilterCreated').length === 2, 'on the ServiceEntry, one per EnvoyFilter');
  t.match(about('ServiceEntry', 'EnvoyFilterCreated')[0], {
    type: 'Normal',
    reportingComponent: 'breeze',
    source: { component: 'breeze' },
    message: /EnvoyFilter istio-system\/breeze-/,
    involvedObject: { apiVersion: 'networking.istio.io/v1', namespace: 'apps', name: 'svc-1' },
  });

  const rs = fake.get('redis.aeraki.io/v1alpha1', 'RedisService', 'redis', 'redis-c') as JsonRecord;
  t.match(rs.status, {
    conditions: [
      {
        type: CONDITION_TYPE,
        status: 'True',
        reason: 'Generated',
        observedGeneration: 1,
        lastTransitionTime: /Z$/,
      },
    ],
  });
  t.equal(
    fake.get('networking.istio.io/v1', 'ServiceEntry', 'apps', 'svc-1')?.status,
    undefined,
    'no SE status',
  );
  t.equal(fake.requests.filter((r) => r.path.includes('/serviceentries') && r.method !== 'GET').length, 0);

  await env.settled();
  await inStore(store, 'RedisService', 'redis', 'redis-c', (o) => o?.status !== undefined);
  const from = fake.requests.length;
  await reconciler.resync(signal);
  await eventer.flush();
  t.equal(
    fake.requests.slice(from).filter((r) => r.method !== 'GET').length,
    0,
    'unchanged: no status or Event write',
  );

  // A generation bump: the condition follows with the new observedGeneration.
  fake.put(redisCR('2s'));
  await inStore(store, 'RedisService', 'redis', 'redis-c', (o) => JSON.stringify(o?.spec).includes('2s'));
  await reconciler.reconcile(['Service/redis/redis-c'], signal);
  await eventer.flush();
  t.match(fake.get('redis.aeraki.io/v1alpha1', 'RedisService', 'redis', 'redis-c')?.status, {
    conditions: [{ type: CONDITION_TYPE, status: 'True', observedGeneration: 2 }],
  });
  t.ok(about('Service', 'EnvoyFilterCreated').length >= 1);
  t.ok(
    fake.list('v1', 'Event').some((e) => e.reason === 'EnvoyFilterUpdated'),
    'an update Event',
  );

  // Deduplication: identical Events within the window are sent once.
  const before = fake.list('v1', 'Event').length;
  const ref = { apiVersion: 'v1', kind: 'Service', namespace: 'redis', name: 'redis-c' };
  for (let i = 0; i < 5; i++) eventer.event(ref, 'Warning', 'EnvoyFilterFailed', 'same message');
  await eventer.flush();
  t.equal(fake.list('v1', 'Event').length, before + 1);
});

t.test('adopt Aeraki: its EnvoyFilter is deleted only after ours exists', async (t) => {
  const aeraki = (name: string, labels: Record<string, string> = { manager: 'Aeraki' }): JsonRecord => ({
    apiVersion: EF_API,
    kind: 'EnvoyFilter',
    metadata: { name, namespace: 'istio-system', labels },
    spec: { configPatches: [] },
  });
  const mine = 'aeraki-outbound-svc-1.example.com-240.240.0.1-20880';
  const inbound = 'aeraki-inbound-svc-1.example.com-20880';
  const other = 'aeraki-outbound-svc-9.example.com-240.240.0.9-20880';
  const unlabelled = 'aeraki-inbound-svc-1.example.com';
  const env = await clusterEnv(t, {
    objects: [dubboSE(1), aeraki(mine), aeraki(inbound), aeraki(other), aeraki(unlabelled, {})],
    reconciler: { adoptAeraki: true, concurrency: 1 },
  });
  const { fake, store, reconciler } = env;
  await inStore(store, 'ServiceEntry', 'apps', 'svc-1');

  fake.injectFault({ status: 500, method: 'POST', path: /envoyfilters/, count: 1 });
  await reconciler.reconcile(['ServiceEntry/apps/svc-1'], signal);
  t.ok(fake.get(EF_API, 'EnvoyFilter', 'istio-system', mine), "Aeraki's outbound kept while ours failed");
  t.ok(
    fake.get(EF_API, 'EnvoyFilter', 'istio-system', inbound),
    "Aeraki's inbound kept while the service is incomplete",
  );
  t.equal(fake.requests.filter((r) => r.method === 'DELETE').length, 0);

  await reconciler.reconcile(reconciler.retryDue(Date.now() + 1000), signal);
  t.notOk(fake.get(EF_API, 'EnvoyFilter', 'istio-system', mine), "Aeraki's outbound deleted");
  t.notOk(fake.get(EF_API, 'EnvoyFilter', 'istio-system', inbound), "Aeraki's inbound deleted");
  t.ok(fake.get(EF_API, 'EnvoyFilter', 'istio-system', other), 'another service’s Aeraki filter stays');
  t.ok(fake.get(EF_API, 'EnvoyFilter', 'istio-system', unlabelled), 'an unlabelled one stays');
  const writes = fake.requests.filter(
    (r) => r.path.startsWith(EF_PATH) && r.method !== 'GET' && r.status < 300,
  );
  const lastCreate = writes.map((r) => r.method).lastIndexOf('POST');
  const firstDelete = writes.map((r) => r.method).indexOf('DELETE');
  t.ok(
    lastCreate >= 0 && firstDelete > lastCreate,
    'every create of ours precedes the first delete of theirs',
  );
  t.equal(reconciler.failures().size, 0);
});
