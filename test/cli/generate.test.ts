import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { runGenerate } from '../../src/cli/generate.js';

async function run(argv: string[]) {
  let out = '';
  const err: string[] = [];
  const summary = await runGenerate(
    argv,
    (s) => (out += s),
    (l) => err.push(l),
  );
  return { out, err, summary };
}

const KAFKA_OFF_NOTE =
  'note: Service/kafka/my-release-kafka: kafka is off in Breeze (--protocols dubbo,thrift,redis,zookeeper): its ports stay plain TCP; ' +
  'to enable it, run Breeze with --protocols dubbo,thrift,redis,zookeeper,kafka (chart value protocols); ' +
  'set on the pods: proxy.istio.io/config annotation, proxyMetadata: {ISTIO_META_BREEZE_KAFKA_BROKER: "true"}; ' +
  'and an istio/proxy image built with envoy.filters.network.kafka_broker (the stock istio/proxyv2 lacks it)';
const KAFKA_ON_NOTE =
  'note: Service/kafka/my-release-kafka: kafka filters go only to sidecars with node metadata BREEZE_KAFKA_BROKER="true"; ' +
  'set on the pods: proxy.istio.io/config annotation, proxyMetadata: {ISTIO_META_BREEZE_KAFKA_BROKER: "true"}; ' +
  'and an istio/proxy image built with envoy.filters.network.kafka_broker (the stock istio/proxyv2 lacks it)';

t.test('the examples generate cleanly and pass --check', async (t) => {
  const { out, err, summary } = await run(['-f', 'examples', '--check']);
  t.same(err, [KAFKA_OFF_NOTE], 'kafka is off by default: a note saying what to do, not an error');
  t.equal(summary.exitCode, 0);
  t.notMatch(out, /kafka_broker/, 'no kafka_broker patch by default');
  const docs = parseAllDocuments(out).map((d) => d.toJS());
  t.equal(docs.length, summary.envoyFilters);
  t.ok(docs.length >= 10);
  for (const d of docs) {
    t.equal(d.kind, 'EnvoyFilter');
    t.equal(d.metadata.namespace, 'istio-system');
    t.equal(d.metadata.labels['app.kubernetes.io/managed-by'], 'breeze');
  }
  const names = docs.map((d) => d.metadata.name);
  t.same(names, [...names].sort(), 'sorted by name');
  t.ok(names.includes('breeze-outbound-org.apache.dubbo.samples.basic.api.demoservice-240.240.0.20-20880'));
  t.ok(names.includes('breeze-inbound-my-release-zookeeper.kafka.svc.cluster.local-2181'));
});

t.test('-o json prints a List; namespace scope and root namespace are honoured', async (t) => {
  const scoped = await run(['-f', 'examples/dubbo.yaml', '-o', 'json', '--envoyfilter-namespace-scope']);
  const list = JSON.parse(scoped.out);
  t.equal(list.kind, 'List');
  t.ok(list.items.length > 0);
  t.ok(list.items.every((i: any) => i.metadata.namespace === 'dubbo'));
  const root = await run(['-f', 'examples/dubbo.yaml', '-o', 'json', '--root-namespace', 'mesh-root']);
  t.ok(JSON.parse(root.out).items.every((i: any) => i.metadata.namespace === 'mesh-root'));
});

t.test(
  'invalid input and generation errors: one line each, exit 1, other services still generated',
  async (t) => {
    const dir = t.testdir({
      'in.yaml': `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: no-iface, namespace: dubbo}
spec:
  hosts: [orders.dubbo.svc.cluster.local]
  addresses: [240.240.9.9]
  ports: [{number: 20880, name: tcp-dubbo, protocol: TCP}]
  workloadSelector: {labels: {app: orders}}
  resolution: STATIC
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: zk, namespace: kafka}
spec:
  hosts: [zk.kafka.svc.cluster.local]
  addresses: [240.240.9.10]
  ports: [{number: 2181, name: tcp-zookeeper, protocol: TCP}]
  resolution: STATIC
`,
    });
    const file = join(dir, 'in.yaml');
    const { out, err, summary } = await run(['-f', file]);
    t.equal(summary.exitCode, 1);
    t.same(err, [
      `${file}: ServiceEntry dubbo/no-iface: spec.ports[0]: port "tcp-dubbo" needs the annotation "interface" (the Dubbo interface, e.g. org.apache.dubbo.samples.DemoService)`,
      'ServiceEntry/dubbo/no-iface port 20880 outbound: the ServiceEntry has no "interface" annotation (the Dubbo interface, e.g. org.apache.dubbo.samples.DemoService): no outbound filter',
      'note: ServiceEntry/kafka/zk port 2181 inbound: no workload selector (spec.workloadSelector or the workloadSelector annotation): no inbound filter',
    ]);
    const names = parseAllDocuments(out).map((d) => d.toJS().metadata.name);
    t.same(names, [
      'breeze-inbound-orders.dubbo.svc.cluster.local-20880',
      'breeze-outbound-zk.kafka.svc.cluster.local-240.240.9.10-2181',
    ]);
  },
);

t.test(
  'a second VirtualService for a host is noted; a synthetic ServiceEntry does not duplicate its Service',
  async (t) => {
    const dir = t.testdir({
      'in.yaml': `apiVersion: v1
kind: Service
metadata: {name: zk, namespace: kafka}
spec:
  clusterIP: 10.96.0.5
  selector: {app: zk}
  ports: [{name: tcp-zookeeper, port: 2181}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: synthetic-zk, namespace: kafka}
spec:
  hosts: [zk.kafka.svc.cluster.local]
  addresses: [10.96.0.5]
  ports: [{number: 2181, name: tcp-zookeeper, protocol: TCP}]
  workloadSelector: {labels: {app: zk}}
  resolution: STATIC
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: older, namespace: kafka, creationTimestamp: '2025-01-01T00:00:00Z'}
spec: {hosts: [zk], tcp: [{route: [{destination: {host: zk}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: newer, namespace: kafka, creationTimestamp: '2025-06-01T00:00:00Z'}
spec: {hosts: [zk], tcp: [{route: [{destination: {host: zk}}]}]}
`,
    });
    const { out, err, summary } = await run(['-f', join(dir, 'in.yaml')]);
    t.equal(summary.exitCode, 0, err.join('\n'));
    t.same(err, [
      'note: Service/kafka/zk: VirtualServices kafka/newer also claim zk.kafka.svc.cluster.local: ignored, using kafka/older (the oldest)',
    ]);
    t.same(
      parseAllDocuments(out).map((d) => d.toJS().metadata.name),
      [
        'breeze-inbound-zk.kafka.svc.cluster.local-2181',
        'breeze-outbound-zk.kafka.svc.cluster.local-10.96.0.5-2181',
      ],
    );
  },
);

t.test('--protocols with kafka: kafka filters, every patch scoped to the declaring proxies', async (t) => {
  const { out, err, summary } = await run([
    '-f',
    'examples',
    '--check',
    '--protocols',
    'dubbo,thrift,redis,zookeeper,kafka',
  ]);
  t.same(err, [KAFKA_ON_NOTE]);
  t.equal(summary.exitCode, 0, 'a note is not a failure');
  const kafka = parseAllDocuments(out)
    .map((d) => d.toJS())
    .filter((d) => d.metadata.labels['breeze.io/protocol'] === 'kafka');
  t.same(
    kafka.map((d) => d.metadata.name),
    [
      'breeze-inbound-my-release-kafka.kafka.svc.cluster.local-9092',
      'breeze-outbound-my-release-kafka.kafka.svc.cluster.local-10.96.30.1-9092',
    ],
  );
  for (const d of kafka) {
    t.equal(d.spec.configPatches.length, 1);
    for (const p of d.spec.configPatches) {
      t.same(p.match.proxy, { metadata: { BREEZE_KAFKA_BROKER: 'true' } }, `${d.metadata.name} is scoped`);
      t.equal(p.patch.value.name, 'envoy.filters.network.kafka_broker');
    }
  }

  const only = await run(['-f', 'examples/kafka.yaml', '--protocols', 'redis']);
  t.equal(only.summary.exitCode, 0);
  t.equal(only.out, '', 'nothing generated');
  t.same(only.err, [
    'note: Service/kafka/my-release-kafka: kafka is off in Breeze (--protocols redis): its ports stay plain TCP; ' +
      'to enable it, run Breeze with --protocols redis,kafka (chart value protocols); ' +
      'set on the pods: proxy.istio.io/config annotation, proxyMetadata: {ISTIO_META_BREEZE_KAFKA_BROKER: "true"}; ' +
      'and an istio/proxy image built with envoy.filters.network.kafka_broker (the stock istio/proxyv2 lacks it)',
  ]);
});

t.test('usage errors', async (t) => {
  await t.rejects(run(['-f', 'examples', '--protocols', 'dubbo,kafak']), {
    code: 'BAD_FLAG',
    message:
      '--protocols: "dubbo,kafak" names "kafak", which is not a protocol (use dubbo, thrift, redis, zookeeper, kafka)',
  });
  await t.rejects(run([]), { code: 'BAD_FLAG', message: /no manifests given/ });
  await t.rejects(run(['-f', 'examples', '-o', 'xml']), {
    code: 'BAD_FLAG',
    message: /-o: "xml" must be yaml or json/,
  });
});

t.test('YAML alias problems, FIFOs and oversized files: one line each on stderr, exit 1', async (t) => {
  const dir = t.testdir({
    'wildcard.yaml': `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts:
  - *.example.com
  ports: [{number: 443, name: tls}]
`,
    'bomb.yaml': `a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]
`,
    'zk.yaml': `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: zk, namespace: kafka}
spec:
  hosts: [zk.kafka.svc.cluster.local]
  addresses: [240.240.9.10]
  ports: [{number: 2181, name: tcp-zookeeper, protocol: TCP}]
  resolution: STATIC
`,
  });
  execFileSync('mkfifo', [join(dir, 'x.yaml')]);
  execFileSync('truncate', ['-s', '50M', join(dir, 'big.json')]);
  const { out, err, summary } = await run(['-f', dir]);
  t.equal(summary.exitCode, 1);
  t.same(err, [
    `${join(dir, 'big.json')}: 52428800 bytes is larger than Breeze's limit of 4194304 bytes (4 MiB) for a manifest file: skipped, not read`,
    `${join(dir, 'x.yaml')}: a FIFO, not a regular file: skipped, not opened`,
    `${join(dir, 'bomb.yaml')}: document 1, line 1: YAML aliases expand too much (an anchor is used more than Breeze's limit of 50 times, nested uses multiplied)`,
    `${join(dir, 'wildcard.yaml')}: document 1, line 6: "*.example.com" is a YAML alias to an anchor that is not defined (YAML reads an unquoted value starting with * as an alias; if a string such as a wildcard host was meant, quote it: "*.example.com")`,
    'note: ServiceEntry/kafka/zk port 2181 inbound: no workload selector (spec.workloadSelector or the workloadSelector annotation): no inbound filter',
  ]);
  t.same(
    parseAllDocuments(out).map((d) => d.toJS().metadata.name),
    ['breeze-outbound-zk.kafka.svc.cluster.local-240.240.9.10-2181'],
    'the readable manifests are still generated',
  );
});
