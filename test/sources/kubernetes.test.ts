// The cluster source against the fake API server, through client-node's real request and Watch
// code: initial sync and readiness, watch events, served-version discovery, 410 relists, the
// watchdog, periodic relists, backoff, Secrets by GET, and a clean stop.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import t, { type Test } from 'tap';
import {
  KubernetesSource,
  MANAGED_BY_SELECTOR,
  type KubernetesSourceOptions,
} from '../../src/sources/kubernetes/kubernetes.js';
import { backoffDelay } from '../../src/sources/kubernetes/backoff.js';
import { Discovery, pickVersion } from '../../src/sources/kubernetes/discovery.js';
import { secretRefs } from '../../src/sources/kubernetes/secrets.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { FakeKubeApiServer, type FakeKubeApiServerOptions } from '../fakes/kube-apiserver.js';
import { RecordingSink, waitFor } from './helpers.js';

const ISTIO = 'networking.istio.io';
const REDIS = 'redis.aeraki.io';
const logger = createLogger({ level: process.env.BREEZE_TEST_LOG ?? 'silent' });

const se = (name: string, host = `${name}.example.com`, ns = 'apps') => ({
  apiVersion: `${ISTIO}/v1`,
  kind: 'ServiceEntry',
  metadata: { name, namespace: ns },
  spec: { hosts: [host], ports: [{ number: 9090, name: 'tcp-dubbo', protocol: 'TCP' }] },
});

const envoyFilter = (name: string, managed: boolean) => ({
  apiVersion: `${ISTIO}/v1alpha3`,
  kind: 'EnvoyFilter',
  metadata: {
    name,
    namespace: 'istio-system',
    labels: managed
      ? { 'app.kubernetes.io/managed-by': 'breeze' }
      : { 'app.kubernetes.io/managed-by': 'someone' },
  },
  spec: { configPatches: [] },
});

const redisService = (name: string, secret: string | undefined, ns = 'cache') => ({
  apiVersion: `${REDIS}/v1alpha1`,
  kind: 'RedisService',
  metadata: { name, namespace: ns },
  spec: {
    host: ['redis.cache.svc.cluster.local'],
    settings: secret ? { auth: { secret: { name: secret } } } : {},
  },
});

const secret = (name: string, password: string, ns = 'cache') => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: ns },
  data: { password: Buffer.from(password).toString('base64') },
});

const FAST: Partial<KubernetesSourceOptions> = { backoff: { initialMs: 20, maxMs: 200 } };

async function setup(
  t: Test,
  opts: Partial<KubernetesSourceOptions> = {},
  fakeOpts: FakeKubeApiServerOptions = { bookmarkIntervalMs: 50 },
) {
  const fake = await FakeKubeApiServer.start(fakeOpts);
  const sink = new RecordingSink();
  const source = new KubernetesSource({ kubeConfig: fake.kubeConfig(), logger, ...FAST, ...opts });
  t.teardown(async () => {
    await source.stop();
    await fake.close();
  });
  return { fake, sink, source };
}

t.test('initial list: every kind delivered typed; synced only after the last kind has listed', async (t) => {
  const { fake, sink, source } = await setup(t);
  fake.put(se('a'));
  fake.put({
    apiVersion: `${ISTIO}/v1`,
    kind: 'VirtualService',
    metadata: { name: 'vs', namespace: 'apps' },
    spec: { hosts: ['a.example.com'] },
  });
  fake.put({
    apiVersion: `${ISTIO}/v1`,
    kind: 'DestinationRule',
    metadata: { name: 'dr', namespace: 'apps' },
    spec: { host: 'a.example.com' },
  });
  fake.put({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'svc', namespace: 'apps' },
    spec: { clusterIP: '10.0.0.1', ports: [{ port: 20880, name: 'tcp-dubbo' }] },
  });
  fake.put(envoyFilter('mine', true));
  fake.put(envoyFilter('theirs', false));
  fake.put(redisService('rs', 'downstream'));
  fake.put({
    apiVersion: `${REDIS}/v1alpha1`,
    kind: 'RedisDestination',
    metadata: { name: 'rd', namespace: 'cache' },
    spec: {
      host: 'redis.cache.svc.cluster.local',
      trafficPolicy: { connectionPool: { redis: { auth: { secret: { name: 'upstream' } } } } },
    },
  });
  fake.put(secret('downstream', 'd-pass'));
  fake.put(secret('upstream', 'u-pass'));
  fake.put(secret('unrelated', 'nope'));
  // RedisDestination lists fail until the fault is cleared: everything else syncs meanwhile.
  fake.injectFault({
    status: 500,
    count: 1_000_000,
    path: `/apis/${REDIS}/v1alpha1/redisdestinations`,
    watch: false,
  });

  let resolved = false;
  const started = source.start(sink).then(() => (resolved = true));
  const others = [
    'ServiceEntry',
    'VirtualService',
    'DestinationRule',
    'Service',
    'EnvoyFilter',
    'RedisService',
  ];
  await waitFor('the other kinds to list', () => others.every((k) => sink.replaced(k) > 0));
  await waitFor(
    'a failed RedisDestination list',
    () => (source.status().kinds.RedisDestination?.errors ?? 0) >= 2,
  );
  t.equal(source.synced(), false, 'not synced while one kind has not listed');
  t.equal(resolved, false, 'start() has not resolved');
  fake.clearFaults();
  await started;
  t.equal(source.synced(), true);

  const a = sink.get('ServiceEntry', 'apps', 'a');
  t.equal(a?.apiVersion, `${ISTIO}/v1`, 'list items get their apiVersion');
  t.equal(a?.kind, 'ServiceEntry', 'and their kind');
  t.equal(sink.get('Service', 'apps', 'svc')?.apiVersion, 'v1');
  t.equal(sink.get('Service', 'apps', 'svc')?.kind, 'Service');
  t.strictSame(sink.keys('VirtualService'), ['apps/vs']);
  t.strictSame(sink.keys('DestinationRule'), ['apps/dr']);
  t.strictSame(sink.keys('EnvoyFilter'), ['istio-system/mine'], 'only the EnvoyFilters Breeze manages');
  t.equal(sink.get('EnvoyFilter', 'istio-system', 'mine')?.apiVersion, `${ISTIO}/v1alpha3`);
  t.strictSame(sink.keys('RedisDestination'), ['cache/rd']);
  t.strictSame(sink.keys('Secret'), ['cache/downstream', 'cache/upstream'], 'only referenced Secrets');
  t.equal(sink.get('Secret', 'cache', 'upstream')?.kind, 'Secret');
  t.ok(sink.calls.every((c) => c.origin === 'kubernetes'));

  const efLists = fake.requestsTo(`/apis/${ISTIO}/v1alpha3/envoyfilters`, false);
  t.ok(efLists.length > 0 && efLists.every((r) => r.query.labelSelector === MANAGED_BY_SELECTOR));
  const secretRequests = fake.requests.filter((r) => r.path.includes('/secrets'));
  t.ok(secretRequests.length >= 2);
  t.ok(
    secretRequests.every(
      (r) => !r.watch && r.method === 'GET' && /\/namespaces\/[^/]+\/secrets\/[^/]+$/.test(r.path),
    ),
    'Secrets are never listed or watched, only read by name',
  );
  t.ok(
    fake.requestsTo(`/apis/${ISTIO}`).some((r) => r.path === `/apis/${ISTIO}`),
    'discovery was asked',
  );
});

t.test('ADDED, MODIFIED and DELETED reach the sink', async (t) => {
  const { fake, sink, source } = await setup(t, { kinds: ['ServiceEntry', 'EnvoyFilter', 'Service'] });
  fake.put(se('old'));
  fake.put(envoyFilter('ef', true));
  await source.start(sink);
  await waitFor('watches', () => fake.openWatches() === 3);

  fake.put(se('new'));
  await waitFor('ADDED', () => sink.get('ServiceEntry', 'apps', 'new') !== undefined);
  t.equal(sink.get('ServiceEntry', 'apps', 'new')?.apiVersion, `${ISTIO}/v1`);
  fake.put(se('new', 'changed.example.com'));
  await waitFor(
    'MODIFIED',
    () => (sink.get('ServiceEntry', 'apps', 'new')?.spec as any)?.hosts[0] === 'changed.example.com',
  );
  fake.remove(`${ISTIO}/v1`, 'ServiceEntry', 'apps', 'old');
  await waitFor('DELETED', () => sink.get('ServiceEntry', 'apps', 'old') === undefined);
  t.strictSame(sink.keys('ServiceEntry'), ['apps/new']);

  fake.put({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 's', namespace: 'apps' },
    spec: { ports: [] },
  });
  await waitFor('a Service', () => sink.get('Service', 'apps', 's')?.kind === 'Service');

  // A managed EnvoyFilter whose label goes leaves the selection: a deletion for the reconciler.
  fake.put(envoyFilter('ef', false));
  await waitFor(
    'the unlabelled EnvoyFilter gone',
    () => sink.get('EnvoyFilter', 'istio-system', 'ef') === undefined,
  );
  const applies = sink.calls.filter((c) => c.op === 'apply' && c.kind === 'ServiceEntry');
  t.strictSame(
    applies.map((c) => [c.key, c.object === undefined ? 'deleted' : 'set']),
    [
      ['apps/new', 'set'],
      ['apps/new', 'set'],
      ['apps/old', 'deleted'],
    ],
  );
  t.equal(source.status().kinds.ServiceEntry?.lists, 1, 'no relist needed');
});

t.test('discovery picks the newest served networking.istio.io version', async (t) => {
  const cases: [string, string[] | undefined, string | undefined, boolean][] = [
    ['all served', undefined, 'v1', true],
    ['v1beta1 and v1alpha3', ['v1beta1', 'v1alpha3'], 'v1beta1', true],
    ['only v1beta1 (no EnvoyFilter)', ['v1beta1'], 'v1beta1', false],
    ['only v1alpha3', ['v1alpha3'], 'v1alpha3', true],
  ];
  for (const [name, served, want, efServed] of cases) {
    await t.test(name, async (t) => {
      const { fake, sink, source } = await setup(t, {
        kinds: ['ServiceEntry', 'VirtualService', 'DestinationRule', 'EnvoyFilter'],
      });
      fake.serveVersions(ISTIO, served);
      fake.put(se('a'));
      await source.start(sink);
      t.equal(source.synced(), true);
      const status = source.status().kinds;
      t.equal(status.ServiceEntry?.apiVersion, `${ISTIO}/${want}`);
      t.equal(status.VirtualService?.apiVersion, `${ISTIO}/${want}`);
      t.equal(sink.get('ServiceEntry', 'apps', 'a')?.apiVersion, `${ISTIO}/${want}`, 'objects as served');
      t.equal(status.EnvoyFilter?.served, efServed);
      t.equal(sink.replaced('EnvoyFilter'), 1, 'EnvoyFilter delivered (empty when not served)');
      t.ok(fake.requestsTo(`/apis/${ISTIO}/${want}/serviceentries`).length > 0);
    });
  }
});

t.test('a CRD that is not installed is empty, and read once it appears', async (t) => {
  const { fake, sink, source } = await setup(t, { kinds: ['RedisService'], relistIntervalMs: 300 });
  fake.serveVersions(REDIS, []);
  await source.start(sink);
  t.equal(source.synced(), true, 'synced with the kind empty');
  t.equal(source.status().kinds.RedisService?.served, false);
  fake.serveVersions(REDIS, undefined);
  fake.put(redisService('rs', undefined));
  await waitFor(
    'the RedisService after the CRD appeared',
    () => sink.get('RedisService', 'cache', 'rs') !== undefined,
  );
  t.equal(source.status().kinds.RedisService?.served, true);
});

t.test('410 after compaction: relist, nothing lost, nothing left behind', async (t) => {
  const { fake, sink, source } = await setup(t, { kinds: ['ServiceEntry'] });
  fake.put(se('keep'));
  fake.put(se('modify'));
  fake.put(se('delete'));
  await source.start(sink);
  await waitFor('the watch', () => fake.openWatches('serviceentries') === 1);

  // The client misses these (its watch is silent), then history is compacted past its position.
  fake.silenceWatches();
  fake.put(se('add'));
  fake.put(se('modify', 'modified.example.com'));
  fake.remove(`${ISTIO}/v1`, 'ServiceEntry', 'apps', 'delete');
  fake.compact();
  fake.dropWatches();

  await waitFor('the relist after 410', () => (source.status().kinds.ServiceEntry?.expired ?? 0) >= 1);
  await waitFor(
    'the state after relist',
    () => sink.keys('ServiceEntry').join() === 'apps/add,apps/keep,apps/modify',
  );
  t.equal((sink.get('ServiceEntry', 'apps', 'modify')?.spec as any).hosts[0], 'modified.example.com');
  t.equal(source.status().kinds.ServiceEntry?.lists, 2);
  // The new watch starts right after the relist: wait for it rather than race it.
  await waitFor(
    'the watch after the relist',
    () => fake.requestsTo(`/apis/${ISTIO}/v1/serviceentries`, true).length >= 3,
  );
  t.pass('watched again after the relist');

  // And the new watch works.
  fake.put(se('after'));
  await waitFor('an event on the new watch', () => sink.get('ServiceEntry', 'apps', 'after') !== undefined);
});

t.test('a watch answered with HTTP 410 also relists', async (t) => {
  const { fake, sink, source } = await setup(t, { kinds: ['ServiceEntry'] });
  await source.start(sink);
  await waitFor('the watch', () => fake.openWatches() === 1);
  fake.injectFault({ status: 410, watch: true });
  fake.put(se('x'), { emit: false });
  fake.dropWatches();
  await waitFor('the relist', () => source.status().kinds.ServiceEntry?.lists === 2);
  t.ok(sink.get('ServiceEntry', 'apps', 'x'), 'the relist saw the change no watch reported');
  t.equal(source.status().kinds.ServiceEntry?.expired, 1);
});

t.test('a silent watch is restarted by the watchdog, from where it was', async (t) => {
  const { fake, sink, source } = await setup(t, {
    kinds: ['ServiceEntry', 'VirtualService'],
    watchdogMs: 1000,
  });
  await source.start(sink);
  await waitFor('watches', () => fake.openWatches() === 2);
  t.equal(fake.silenceWatches('serviceentries'), 1);
  fake.put(se('during-silence'));
  await waitFor(
    'the missed event after the restart',
    () => sink.get('ServiceEntry', 'apps', 'during-silence') !== undefined,
  );
  const status = source.status().kinds;
  t.ok((status.ServiceEntry?.watchdogRestarts ?? 0) >= 1, 'the watchdog restarted the watch');
  t.equal(
    status.ServiceEntry?.lists,
    1,
    'a restart, not a relist: the new watch resumed from the last resourceVersion',
  );
  t.equal(status.VirtualService?.watchdogRestarts, 0, 'bookmarks keep an idle healthy watch alive');
  await waitFor('the silent connection closed', () => fake.openWatches('serviceentries') === 1);
});

t.test('bookmarks tell the sink the kind is current; a silent watch does not', async (t) => {
  const { fake, sink, source } = await setup(t, { kinds: ['ServiceEntry', 'VirtualService'] });
  await source.start(sink);
  await waitFor('watches', () => fake.openWatches() === 2);
  await waitFor(
    'bookmarks on both idle watches',
    () => sink.progressed('ServiceEntry') > 0 && sink.progressed('VirtualService') > 0,
  );
  t.ok(sink.calls.every((c) => c.op !== 'progress' || c.origin === 'kubernetes'));
  fake.silenceWatches('serviceentries');
  const before = sink.progressed('ServiceEntry');
  const vsBefore = sink.progressed('VirtualService');
  await waitFor(
    'more bookmarks for the healthy watch',
    () => sink.progressed('VirtualService') >= vsBefore + 3,
  );
  t.equal(sink.progressed('ServiceEntry'), before, 'nothing from the silenced watch');
});

t.test('the periodic relist repairs a change no watch reported', async (t) => {
  const { fake, sink, source } = await setup(t, { kinds: ['ServiceEntry'], relistIntervalMs: 500 });
  fake.put(se('stays'));
  fake.put(se('vanishes'));
  await source.start(sink);
  await waitFor('the watch', () => fake.openWatches() === 1);
  fake.put(se('appears'), { emit: false });
  fake.remove(`${ISTIO}/v1`, 'ServiceEntry', 'apps', 'vanishes', { emit: false });
  await waitFor('the repair', () => sink.keys('ServiceEntry').join() === 'apps/appears,apps/stays');
  t.ok((source.status().kinds.ServiceEntry?.periodicRelists ?? 0) >= 1);
  t.equal(source.status().kinds.ServiceEntry?.expired, 0);
});

t.test('injected 500s back off exponentially and recover', async (t) => {
  const { fake, sink, source } = await setup(t, {
    kinds: ['ServiceEntry'],
    backoff: { initialMs: 25, maxMs: 1000 },
  });
  const path = `/apis/${ISTIO}/v1/serviceentries`;
  fake.put(se('a'));
  fake.injectFault({ status: 500, count: 4, path, watch: false });
  await source.start(sink);
  t.ok(sink.get('ServiceEntry', 'apps', 'a'));
  const lists = fake.requestsTo(path, false);
  t.strictSame(
    lists.map((r) => r.status),
    [500, 500, 500, 500, 200],
  );
  // Lower bounds only (a loaded machine is late, never early): 25·2^i ms −20 % jitter.
  for (let i = 1; i < lists.length; i++) {
    const gap = lists[i]!.at - lists[i - 1]!.at;
    t.ok(gap >= 0.8 * 25 * 2 ** (i - 1) - 5, `retry ${i} waited ${gap} ms`);
  }
  t.equal(source.status().kinds.ServiceEntry?.errors, 4);

  // Watch requests failing: the source keeps trying, then catches up from its resourceVersion.
  await waitFor('the watch', () => fake.openWatches() === 1);
  fake.injectFault({ status: 503, count: 3, path, watch: true });
  fake.dropWatches();
  fake.put(se('b'));
  await waitFor(
    'the change after the watch recovered',
    () => sink.get('ServiceEntry', 'apps', 'b') !== undefined,
  );
  t.equal(source.status().kinds.ServiceEntry?.errors, 7);
  t.equal(source.status().kinds.ServiceEntry?.lists, 1, 'recovered without a relist');
});

t.test('a server that never answers: lists and watches time out and recover', async (t) => {
  const { fake, sink, source } = await setup(t, { kinds: ['ServiceEntry'], requestTimeoutMs: 250 });
  const path = `/apis/${ISTIO}/v1/serviceentries`;
  fake.put(se('a'));
  fake.injectFault({ status: 'hang', path, watch: false });
  await source.start(sink);
  t.ok(sink.get('ServiceEntry', 'apps', 'a'), 'listed after the hung list timed out');
  t.equal(source.status().kinds.ServiceEntry?.errors, 1);

  await waitFor('the watch', () => fake.openWatches() === 1);
  fake.injectFault({ status: 'hang', path, watch: true });
  fake.dropWatches();
  fake.put(se('b'));
  await waitFor(
    'the change after the hung watch timed out',
    () => sink.get('ServiceEntry', 'apps', 'b') !== undefined,
  );
  t.equal(source.status().kinds.ServiceEntry?.errors, 2);
  const watches = source.status().kinds.ServiceEntry?.watches;

  // The deadline covers the response headers only: a streaming watch outlives it.
  await new Promise((r) => setTimeout(r, 600));
  t.equal(source.status().kinds.ServiceEntry?.watches, watches, 'the watch lived past requestTimeoutMs');
  t.equal(source.status().kinds.ServiceEntry?.errors, 2);
});

t.test('backoff arithmetic: doubling, cap, ±20 % jitter', async (t) => {
  const o = { initialMs: 500, maxMs: 30_000 };
  t.equal(
    backoffDelay(1, o, () => 0.5),
    500,
  );
  t.equal(
    backoffDelay(2, o, () => 0.5),
    1000,
  );
  t.equal(
    backoffDelay(7, o, () => 0.5),
    30_000,
  );
  t.equal(
    backoffDelay(100, o, () => 0.5),
    30_000,
  );
  t.equal(
    backoffDelay(1, o, () => 0),
    400,
  );
  t.equal(
    backoffDelay(1, o, () => 1),
    600,
  );
});

t.test('discovery helpers', async (t) => {
  t.equal(pickVersion(['v1beta1', 'v1alpha3'], ['v1', 'v1beta1', 'v1alpha3']), 'v1beta1');
  t.equal(pickVersion(['v2'], ['v1']), undefined);
  const fake = await FakeKubeApiServer.start();
  t.teardown(() => fake.close());
  const { getJson } = await import('../../src/sources/kubernetes/rest.js');
  const kc = fake.kubeConfig();
  const d = new Discovery((p) => getJson(kc, p, { timeoutMs: 5000 }));
  t.strictSame(await d.servedVersions(''), ['v1']);
  t.equal(await d.resolve('', 'services', ['v1']), 'v1');
  t.equal(await d.resolve('example.com', 'things', ['v1']), undefined, 'an unknown group is not served');
  fake.injectFault({ status: 500, path: '/apis/redis.aeraki.io' });
  await t.rejects(d.resolve(REDIS, 'redisservices', ['v1alpha1']), 'a transient error rejects');
  t.equal(await d.resolve(REDIS, 'redisservices', ['v1alpha1']), 'v1alpha1', 'and is not cached');
});

t.test('Secrets: read by name, refreshed, withdrawn when no longer referenced', async (t) => {
  const { fake, sink, source } = await setup(t, {
    kinds: ['RedisService', 'RedisDestination', 'Secret'],
    secretRefreshMs: 200,
  });
  fake.put(redisService('rs', 'pw'));
  fake.put(redisService('rs-missing', 'absent'));
  fake.put(secret('pw', 'one'));
  await source.start(sink);
  t.strictSame(sink.keys('Secret'), ['cache/pw'], 'a missing Secret is simply absent');
  t.equal(source.status().secrets?.referenced, 2);

  // Rotation is picked up by the periodic refresh.
  fake.put(secret('pw', 'two'));
  await waitFor(
    'the rotated password',
    () =>
      (sink.get('Secret', 'cache', 'pw')?.data as any)?.password === Buffer.from('two').toString('base64'),
  );

  // A new reference is read at once; the Secret appearing later is found by a refresh.
  fake.put(secret('fresh', 'f'));
  fake.put(redisService('rs2', 'fresh'));
  await waitFor('the newly referenced Secret', () => sink.get('Secret', 'cache', 'fresh') !== undefined);
  fake.put(secret('absent', 'now here'));
  await waitFor(
    'the Secret created after its reference',
    () => sink.get('Secret', 'cache', 'absent') !== undefined,
  );

  // Dropping the reference withdraws the Secret from the sink.
  fake.put(redisService('rs', undefined));
  await waitFor('the unreferenced Secret withdrawn', () => sink.get('Secret', 'cache', 'pw') === undefined);
  fake.remove(`${REDIS}/v1alpha1`, 'RedisService', 'cache', 'rs2');
  await waitFor('withdrawn on owner deletion', () => sink.get('Secret', 'cache', 'fresh') === undefined);
  const applies = sink.calls.filter((c) => c.kind === 'Secret' && c.op === 'apply' && c.object === undefined);
  t.ok(applies.length >= 2);
  // Secrets deleted from the cluster disappear too.
  fake.remove('v1', 'Secret', 'cache', 'absent');
  await waitFor('a deleted Secret withdrawn', () => sink.get('Secret', 'cache', 'absent') === undefined);
  t.ok(
    fake.requests
      .filter((r) => r.path.includes('/secrets'))
      .every((r) => !r.watch && /\/secrets\/[^/]+$/.test(r.path)),
  );
});

t.test('Secrets: 403 is read as absent and does not block readiness; 500 retries', async (t) => {
  const { fake, sink, source } = await setup(t, { kinds: ['RedisService', 'Secret'] });
  fake.put(redisService('rs', 'locked'));
  fake.put(redisService('rs2', 'flaky'));
  fake.put(secret('locked', 'x'));
  fake.put(secret('flaky', 'y'));
  fake.injectFault({ status: 403, count: 1_000_000, path: '/api/v1/namespaces/cache/secrets/locked' });
  fake.injectFault({ status: 500, count: 2, path: '/api/v1/namespaces/cache/secrets/flaky' });
  await source.start(sink);
  t.equal(source.synced(), true);
  t.strictSame(sink.keys('Secret'), ['cache/flaky']);
  t.equal(source.status().secrets?.errors, 2);
});

t.test('stop: prompt in the middle of backoff, start() resolves unsynced, no watch left', async (t) => {
  const fake = await FakeKubeApiServer.start();
  t.teardown(() => fake.close());
  const source = new KubernetesSource({
    kubeConfig: fake.kubeConfig(),
    logger,
    kinds: ['ServiceEntry', 'Service'],
    backoff: { initialMs: 5000, maxMs: 5000 },
  });
  fake.injectFault({ status: 500, count: 1_000_000, path: `/apis/${ISTIO}/v1/serviceentries` });
  const sink = new RecordingSink();
  const started = source.start(sink);
  await waitFor(
    'the Service watch and the failed list',
    () => fake.openWatches() === 1 && (source.status().kinds.ServiceEntry?.errors ?? 0) >= 1,
  );
  const t0 = Date.now();
  await source.stop();
  await started;
  t.ok(Date.now() - t0 < 2000, 'stop did not wait for the backoff');
  t.equal(source.synced(), false);
  await waitFor('the watch closed', () => fake.openWatches() === 0);
  await waitFor('no request left open', () => fake.openRequests() === 0);
  await source.stop();
  t.pass('stop is idempotent');
});

t.test('the process exits after stop(): no handle left open', async (t) => {
  const script = new URL('fixtures/exit-after-stop.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  // The clock starts once the child's work is done (its last line): start-up under a loaded
  // machine took 10 s on its own. From then on it must exit by itself; 10 s is far beyond what
  // closing takes, and only a handle left open makes it wait that long.
  let timer: NodeJS.Timeout | undefined;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (timer === undefined && out.includes('stopped early'))
      timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  });
  const [code] = await once(child, 'exit');
  clearTimeout(timer);
  t.equal(code, 0, 'exited by itself');
  t.match(out, /stopped synced=true events=1/);
  t.match(out, /stopped early synced=false hung=1/);
});

t.test('secretRefs', async (t) => {
  t.strictSame(secretRefs('RedisService', redisService('a', 'pw', 'ns')), [{ namespace: 'ns', name: 'pw' }]);
  t.strictSame(secretRefs('RedisService', redisService('a', undefined)), []);
  t.strictSame(
    secretRefs('RedisDestination', {
      metadata: { name: 'd', namespace: 'x' },
      spec: { trafficPolicy: { connectionPool: { redis: { auth: { secret: { name: 's' } } } } } },
    }),
    [{ namespace: 'x', name: 's' }],
  );
  t.strictSame(
    secretRefs('RedisDestination', {
      metadata: { name: 'd' },
      spec: { trafficPolicy: { connectionPool: { redis: { auth: { plain: { password: 'p' } } } } } },
    }),
    [],
  );
  // File mode: Envoy reads the mounted Secret, Breeze never needs it.
  const annotated = (mode: string) => {
    const o = redisService('a', 'pw', 'ns');
    return { ...o, metadata: { ...o.metadata, annotations: { 'breeze.io/redis-auth-mode': mode } } };
  };
  t.strictSame(secretRefs('RedisService', annotated('file')), [], 'file mode: not read');
  t.strictSame(secretRefs('RedisService', annotated('inline')), [{ namespace: 'ns', name: 'pw' }]);
  t.strictSame(secretRefs('RedisService', annotated('bogus')), [{ namespace: 'ns', name: 'pw' }]);
});
