// Namespace dataplane-mode labels in the config cache: only that label is kept, per origin, with
// the usual precedence (kubernetes over file); a flip affects exactly the protocol services of
// that namespace; a list replaces the origin's set; hostile names are rejected, long values cut.
import t from 'tap';
import { ConfigStore, type Rejection } from '../../src/cache/store.js';
import { generateForKeys } from '../../src/protocols/generate.js';
import type { JsonRecord } from '../../src/model/json.js';

const GEN = { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' };

function ns(name: string, mode?: string, extra: Record<string, string> = {}): JsonRecord {
  const labels = mode === undefined ? extra : { ...extra, 'istio.io/dataplane-mode': mode };
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels, annotations: { big: 'x'.repeat(10_000) } },
    spec: { finalizers: ['kubernetes'] },
  };
}

function se(name: string, namespace: string, portName = 'tcp-dubbo'): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace, annotations: { interface: 'org.example.Demo' } },
    spec: {
      hosts: [`${name}.${namespace}.svc.cluster.local`],
      addresses: ['240.240.0.1'],
      ports: [{ number: 20880, name: portName, protocol: 'TCP' }],
      resolution: 'STATIC',
      workloadSelector: { labels: { app: name } },
    },
  };
}

t.test('the label from a watch event and from a list; absent without it', async (t) => {
  const store = new ConfigStore();
  t.equal(store.namespaceDataplaneMode('apps'), undefined);
  store.apply('kubernetes', 'Namespace', '', 'apps', ns('apps', 'ambient'));
  t.equal(store.namespaceDataplaneMode('apps'), 'ambient');
  store.apply('kubernetes', 'Namespace', '', 'apps', ns('apps', undefined, { team: 'a' }));
  t.equal(store.namespaceDataplaneMode('apps'), undefined, 'label removed');
  store.replace('kubernetes', 'Namespace', [ns('a', 'ambient'), ns('b', 'none')]);
  t.equal(store.namespaceDataplaneMode('a'), 'ambient');
  t.equal(store.namespaceDataplaneMode('b'), 'none');
  store.replace('kubernetes', 'Namespace', [ns('b', 'ambient')]);
  t.equal(store.namespaceDataplaneMode('a'), undefined, 'not in the new list: gone');
  t.equal(store.namespaceDataplaneMode('b'), 'ambient');
  store.apply('kubernetes', 'Namespace', '', 'b', undefined);
  t.equal(store.namespaceDataplaneMode('b'), undefined, 'deleted');
});

t.test('only the label is kept: no Namespace entry, no object, no other label', async (t) => {
  const store = new ConfigStore();
  store.replace('kubernetes', 'Namespace', [ns('apps', 'ambient', { team: 'a' })]);
  t.equal(store.size, 0);
  t.same(store.list('Namespace'), []);
  t.equal(store.get('Namespace', '', 'apps'), undefined);
  t.equal(store.get('Namespace', 'default', 'apps'), undefined);
});

t.test('kubernetes wins over file; admission never reports namespaces', async (t) => {
  const store = new ConfigStore();
  store.replace('file', 'Namespace', [ns('apps', 'ambient')]);
  t.equal(store.namespaceDataplaneMode('apps'), 'ambient');
  store.apply('kubernetes', 'Namespace', '', 'apps', ns('apps', 'none'));
  t.equal(store.namespaceDataplaneMode('apps'), 'none', 'kubernetes first');
  store.apply('kubernetes', 'Namespace', '', 'apps', undefined);
  t.equal(store.namespaceDataplaneMode('apps'), 'ambient', 'back to the file copy');
  t.same([...store.apply('admission', 'Namespace', '', 'apps', ns('apps', 'none'))], []);
  t.equal(store.namespaceDataplaneMode('apps'), 'ambient', 'admission ignored');
  store.replace('file', 'Namespace', []);
  t.equal(store.namespaceDataplaneMode('apps'), undefined);
});

t.test('a file manifest through upsert (breeze generate) sets the label', async (t) => {
  const store = new ConfigStore();
  store.upsert(ns('apps', 'ambient'), 'file');
  t.equal(store.namespaceDataplaneMode('apps'), 'ambient');
  t.equal(store.namespaceDataplaneMode('default'), undefined);
});

t.test('a flip affects exactly the protocol services of that namespace, once', async (t) => {
  const store = new ConfigStore();
  store.upsert(se('a', 'apps'), 'kubernetes');
  store.upsert(se('b', 'apps', 'tcp-thrift'), 'kubernetes');
  store.upsert(se('plain', 'apps', 'tcp-web'), 'kubernetes');
  store.upsert(se('c', 'other'), 'kubernetes');
  const seen: string[][] = [];
  store.subscribe((keys) => seen.push([...keys].sort()));
  store.apply('kubernetes', 'Namespace', '', 'apps', ns('apps', 'ambient'));
  t.same(seen, [['ServiceEntry/apps/a', 'ServiceEntry/apps/b']]);
  store.replace('kubernetes', 'Namespace', [ns('apps', 'ambient', { other: 'label' })]);
  t.equal(seen.length, 1, 'same label: nothing affected');
  store.replace('kubernetes', 'Namespace', []);
  t.same(seen[1], ['ServiceEntry/apps/a', 'ServiceEntry/apps/b'], 'label gone');
  store.remove('ServiceEntry', 'apps', 'b', 'kubernetes');
  store.apply('kubernetes', 'Namespace', '', 'apps', ns('apps', 'ambient'));
  t.same(seen.at(-1), ['ServiceEntry/apps/a'], 'a deleted service is no longer indexed');
});

t.test('hostile input: a name past 63 characters is rejected once; a long value is cut', async (t) => {
  const rejected: Rejection[] = [];
  const store = new ConfigStore('cluster.local', Date.now, { onRejected: (r) => rejected.push(r) });
  const long = 'n'.repeat(5000);
  store.replace('kubernetes', 'Namespace', [ns(long, 'ambient')]);
  store.replace('kubernetes', 'Namespace', [ns(long, 'ambient')]);
  t.equal(store.namespaceDataplaneMode(long), undefined);
  t.equal(rejected.length, 1);
  t.equal(rejected[0]?.path, 'metadata.name');
  t.equal(rejected[0]?.message, 'a namespace name has at most 63 characters');
  t.ok((rejected[0]?.key.length ?? 0) < 200, 'the name is cut in the report');
  store.replace('kubernetes', 'Namespace', [ns('apps', 'a'.repeat(1_000_000))]);
  t.equal(store.namespaceDataplaneMode('apps'), 'a'.repeat(63));
  const weird = ns('w');
  (weird.metadata as JsonRecord).labels = { 'istio.io/dataplane-mode': 42 };
  store.replace('kubernetes', 'Namespace', [weird, { kind: 'Namespace' }, { metadata: 'x' }]);
  t.equal(store.namespaceDataplaneMode('w'), undefined, 'a label that is not a string is no label');
});

t.test(
  'generation: a service in an ambient namespace gets a note naming it, the label and the fix',
  async (t) => {
    const store = new ConfigStore();
    store.upsert(se('a', 'apps'), 'kubernetes');
    const key = 'ServiceEntry/apps/a';
    const before = generateForKeys(store, [key], GEN).get(key);
    t.same(before?.notes, []);
    store.apply('kubernetes', 'Namespace', '', 'apps', ns('apps', 'ambient'));
    const after = generateForKeys(store, [key], GEN).get(key);
    t.same(after?.notes, [
      {
        service: key,
        message:
          'namespace "apps" is in ambient mode (istio.io/dataplane-mode=ambient): its pods run without a sidecar, ' +
          'so these EnvoyFilters do nothing for them (ztunnel and waypoints do not run them); put namespace "apps" ' +
          'in sidecar mode, or label its pods istio.io/dataplane-mode=none and inject sidecars',
      },
    ]);
    t.same(after?.envoyFilters, before?.envoyFilters, 'the filters are still generated, unchanged');
    t.equal(after?.envoyFilters.length, 2);
    store.apply('kubernetes', 'Namespace', '', 'apps', ns('apps', 'none'));
    t.same(generateForKeys(store, [key], GEN).get(key)?.notes, [], 'istio.io/dataplane-mode=none: no note');
  },
);
