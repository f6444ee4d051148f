// Namespace labels from the cluster (the fake API server, through client-node's real list and
// Watch code) and from the config dir, into the config cache, and what admission answers with
// them: the ambient warning appears, changes and goes as the label flips.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { VALIDATORS } from '../../src/admission/validators/index.js';
import { runGenerate } from '../../src/cli/generate.js';
import { ConfigStore } from '../../src/cache/store.js';
import { FileSource } from '../../src/sources/file.js';
import { parseManifestText } from '../../src/sources/manifest-parse.js';
import { KubernetesSource, type KubernetesSourceOptions } from '../../src/sources/kubernetes/kubernetes.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { waitFor } from './helpers.js';

const logger = createLogger({ level: process.env.BREEZE_TEST_LOG ?? 'silent' });
const FAST: Partial<KubernetesSourceOptions> = { backoff: { initialMs: 20, maxMs: 200 } };

const namespace = (name: string, labels: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});

const dubboEntry = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: {
    name: 'demo',
    namespace: 'apps',
    annotations: { interface: 'org.apache.dubbo.samples.DemoService' },
  },
  spec: {
    hosts: ['demo.apps.svc.cluster.local'],
    addresses: ['240.240.0.10'],
    ports: [{ number: 20880, name: 'tcp-dubbo', protocol: 'TCP' }],
    resolution: 'STATIC',
    workloadSelector: { labels: { app: 'demo' } },
  },
};

const AMBIENT_WARNINGS = [
  `namespace "apps" has istio.io/dataplane-mode=ambient: no sidecars, so Breeze's dubbo filters skip its pods`,
  'fix: sidecar mode for namespace "apps", or label its pods istio.io/dataplane-mode=none and inject sidecars',
];

function warningsFor(store: ConfigStore): readonly string[] {
  return VALIDATORS.ServiceEntry(dubboEntry, { view: store, namespace: 'apps' }).warnings;
}

async function cluster(t: Test, opts: Partial<KubernetesSourceOptions> = {}) {
  const fake = await FakeKubeApiServer.start({ bookmarkIntervalMs: 50 });
  const store = new ConfigStore();
  const source = new KubernetesSource({ kubeConfig: fake.kubeConfig(), logger, ...FAST, ...opts });
  t.teardown(async () => {
    await source.stop();
    await fake.close();
  });
  return { fake, store, source };
}

t.test('cluster: the label from the list, then flipped and removed through the watch', async (t) => {
  const { fake, store, source } = await cluster(t);
  fake.put(namespace('apps', { 'istio.io/dataplane-mode': 'ambient', team: 'a' }));
  fake.put(namespace('side', { 'istio-injection': 'enabled' }));
  await source.start(store);
  t.ok(source.synced());
  await waitFor('the namespace list', () => source.status().kinds.Namespace?.synced === true);
  t.equal(store.namespaceDataplaneMode('apps'), 'ambient');
  t.equal(store.namespaceDataplaneMode('side'), undefined);
  t.same(warningsFor(store), AMBIENT_WARNINGS);
  // Only labelled namespaces are listed and watched.
  await waitFor('the namespace watch', () => fake.openWatches('namespaces') === 1);
  const lists = fake.requests.filter((r) => r.path === '/api/v1/namespaces');
  t.ok(lists.some((r) => !r.watch) && lists.some((r) => r.watch), 'listed and watched');
  t.ok(
    lists.every((r) => r.query.labelSelector === 'istio.io/dataplane-mode'),
    'label selector sent',
  );

  fake.put(namespace('apps', { 'istio.io/dataplane-mode': 'none', team: 'a' }));
  await waitFor('the flip to none', () => store.namespaceDataplaneMode('apps') === 'none');
  t.same(warningsFor(store), []);

  fake.put(namespace('apps', { 'istio.io/dataplane-mode': 'ambient' }));
  await waitFor('back to ambient', () => store.namespaceDataplaneMode('apps') === 'ambient');
  t.same(warningsFor(store), AMBIENT_WARNINGS);

  // Removing the label takes the namespace out of the selection: the watch says DELETED.
  fake.put(namespace('apps', { team: 'a' }));
  await waitFor('the label removed', () => store.namespaceDataplaneMode('apps') === undefined);
  t.same(warningsFor(store), []);

  // A namespace labelled later, then deleted.
  fake.put(namespace('late', { 'istio.io/dataplane-mode': 'ambient' }));
  await waitFor('a new labelled namespace', () => store.namespaceDataplaneMode('late') === 'ambient');
  fake.remove('v1', 'Namespace', '', 'late');
  await waitFor('the namespace deleted', () => store.namespaceDataplaneMode('late') === undefined);
});

t.test('cluster: a label change while the watch was down is repaired by the relist after 410', async (t) => {
  const { fake, store, source } = await cluster(t);
  fake.put(namespace('apps', { 'istio.io/dataplane-mode': 'ambient' }));
  await source.start(store);
  await waitFor('the namespace list', () => store.namespaceDataplaneMode('apps') === 'ambient');
  await waitFor('the namespace watch', () => fake.openWatches('namespaces') === 1);
  fake.put(namespace('apps', {}), { emit: false });
  fake.compact();
  fake.dropWatches('namespaces');
  await waitFor('the relist', () => store.namespaceDataplaneMode('apps') === undefined);
  t.ok((source.status().kinds.Namespace?.expired ?? 0) >= 1);
  t.same(warningsFor(store), []);
});

t.test(
  'cluster: namespaces not readable (no RBAC) do not hold readiness back; they arrive later',
  async (t) => {
    const { fake, store, source } = await cluster(t);
    fake.put(namespace('apps', { 'istio.io/dataplane-mode': 'ambient' }));
    fake.injectFault({ status: 403, count: 1_000_000, path: '/api/v1/namespaces', watch: false });
    await source.start(store);
    t.ok(source.synced(), 'synced without the namespaces');
    await waitFor('failed namespace lists', () => (source.status().kinds.Namespace?.errors ?? 0) >= 2);
    t.equal(source.status().kinds.Namespace?.synced, false);
    t.same(warningsFor(store), [], 'unknown labels: no warning');
    fake.clearFaults();
    await waitFor('the grant fixed', () => store.namespaceDataplaneMode('apps') === 'ambient');
    t.same(warningsFor(store), AMBIENT_WARNINGS);
  },
);

t.test(
  'local mode: Namespace manifests in the config dir set the label, edits and deletions follow',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'breeze-ambient-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'namespaces.yaml');
    await writeFile(
      file,
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n  labels:\n    istio.io/dataplane-mode: ambient\n',
    );
    const store = new ConfigStore();
    const source = new FileSource(dir, {
      logger: { warn: () => undefined },
      pollIntervalMs: 50,
      parse: (text) => Promise.resolve(parseManifestText(text)),
    });
    t.teardown(() => source.stop());
    await source.start(store);
    t.equal(store.namespaceDataplaneMode('apps'), 'ambient');
    t.same(warningsFor(store), AMBIENT_WARNINGS);
    await writeFile(
      file,
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n  labels:\n    team: a\n',
    );
    await source.reload();
    t.equal(store.namespaceDataplaneMode('apps'), undefined);
    t.same(warningsFor(store), []);
    await writeFile(
      file,
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n  labels:\n    istio.io/dataplane-mode: ambient\n    x: "1"\n',
    );
    await source.reload();
    t.equal(store.namespaceDataplaneMode('apps'), 'ambient');
    await rm(file);
    await source.reload();
    t.equal(store.namespaceDataplaneMode('apps'), undefined, 'the manifest deleted');
  },
);

t.test(
  'breeze generate: a Namespace manifest beside the service gives the note on stderr, same filters',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'breeze-ambient-gen-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'service.json'), JSON.stringify(dubboEntry));
    const run = async (): Promise<{ err: string[]; exitCode: number; envoyFilters: number }> => {
      const err: string[] = [];
      const summary = await runGenerate(
        ['-f', dir],
        () => undefined,
        (l) => err.push(l),
      );
      return { err, ...summary };
    };
    const sidecar = await run();
    t.same(sidecar.err, []);
    await writeFile(
      join(dir, 'namespace.yaml'),
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n  labels:\n    istio.io/dataplane-mode: ambient\n',
    );
    const ambient = await run();
    t.equal(ambient.exitCode, 0, 'a warning, never a failure');
    t.equal(ambient.envoyFilters, sidecar.envoyFilters, 'the same filters are generated');
    t.ok(
      ambient.err.includes(
        'note: ServiceEntry/apps/demo: namespace "apps" is in ambient mode (istio.io/dataplane-mode=ambient): its pods run ' +
          'without a sidecar, so these EnvoyFilters do nothing for them (ztunnel and waypoints do not run them); put namespace ' +
          '"apps" in sidecar mode, or label its pods istio.io/dataplane-mode=none and inject sidecars',
      ),
      ambient.err.join('\n'),
    );
  },
);
