// Issue 12, "Kafka is off unless asked for": the per-protocol switch (`--protocols` for serve,
// generate and validate), the scoping of every patch of a filter the stock istio/proxyv2 lacks to
// the proxies that declare it (`match.proxy.metadata`), and the admission warnings that say what
// to do.
import t from 'tap';
import { admit } from '../../src/admission/handler.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';
import { runValidate } from '../../src/cli/validate.js';
import { parseServeConfig } from '../../src/config/serve.js';
import { isBreezeError } from '../../src/errors.js';
import type { JsonRecord } from '../../src/model/json.js';
import { PROTOCOLS, type Protocol } from '../../src/model/protocol.js';
import { formatProblem, generateAll, scopePatches } from '../../src/protocols/generate.js';
import {
  DEFAULT_PROTOCOLS,
  parseProtocols,
  proxyMetadataMatch,
  SUPPORT,
  switchAdvice,
} from '../../src/protocols/registry.js';
import type { GenerationOptions } from '../../src/protocols/types.js';
import { RecordingEventer } from '../../src/reconcile/events.js';
import { GEN, memoryEnv } from '../reconcile/fixtures.js';

const setOf = (text: string): ReadonlySet<Protocol> => {
  const parsed = parseProtocols(text);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed;
};
const sorted = (s: ReadonlySet<Protocol>): Protocol[] => [...s].sort();

const PODS_LINE =
  'set on the pods: proxy.istio.io/config annotation, proxyMetadata: {ISTIO_META_BREEZE_KAFKA_BROKER: "true"}';
const IMAGE_LINE =
  'and an istio/proxy image built with envoy.filters.network.kafka_broker (the stock istio/proxyv2 lacks it)';
const KAFKA_OFF = [
  'kafka is off in Breeze (--protocols dubbo,thrift,redis,zookeeper): its ports stay plain TCP',
  'to enable it, run Breeze with --protocols dubbo,thrift,redis,zookeeper,kafka (chart value protocols)',
  PODS_LINE,
  IMAGE_LINE,
];
const KAFKA_ON = [
  'kafka filters go only to sidecars with node metadata BREEZE_KAFKA_BROKER="true"',
  PODS_LINE,
  IMAGE_LINE,
];

t.test('--protocols values: the default is the stock-proxy set, names checked', async (t) => {
  t.same(sorted(setOf(DEFAULT_PROTOCOLS)), ['dubbo', 'redis', 'thrift', 'zookeeper']);
  t.same(
    sorted(setOf(DEFAULT_PROTOCOLS)),
    PROTOCOLS.filter((p) => SUPPORT[p].inStockProxy).sort(),
    'the default is exactly the protocols whose filter the stock istio/proxyv2 has',
  );
  t.same(sorted(setOf(' Kafka , redis,,kafka ')), ['kafka', 'redis'], 'any case, spaces, duplicates');
  t.same(parseProtocols('dubbo,kafak'), {
    error: 'names "kafak", which is not a protocol (use dubbo, thrift, redis, zookeeper, kafka)',
  });
  t.same(parseProtocols(' , '), {
    error: 'must list at least one of dubbo, thrift, redis, zookeeper, kafka',
  });
  t.same(parseProtocols('redis,'.repeat(100)), { error: 'is longer than 256 characters' });
});

t.test('serve --protocols: default, env, flag, BAD_FLAG naming the value', async (t) => {
  t.same(sorted(parseServeConfig([], {}).protocols), ['dubbo', 'redis', 'thrift', 'zookeeper'], 'local');
  t.same(
    sorted(parseServeConfig(['--mode', 'cluster'], {}).protocols),
    ['dubbo', 'redis', 'thrift', 'zookeeper'],
    'cluster: kafka must be asked for',
  );
  t.same(
    sorted(parseServeConfig([], { BREEZE_PROTOCOLS: 'redis,kafka' }).protocols),
    ['kafka', 'redis'],
    'env',
  );
  t.same(
    sorted(parseServeConfig(['--protocols', 'dubbo'], { BREEZE_PROTOCOLS: 'redis,kafka' }).protocols),
    ['dubbo'],
    'the flag wins over the env',
  );
  const failure = (argv: string[], env: NodeJS.ProcessEnv): string => {
    try {
      parseServeConfig(argv, env);
    } catch (e) {
      if (isBreezeError(e, 'BAD_FLAG')) return e.message;
      throw e;
    }
    return 'accepted';
  };
  t.equal(
    failure(['--protocols', 'dubbo,kafak'], {}),
    '--protocols (BREEZE_PROTOCOLS): "dubbo,kafak" names "kafak", which is not a protocol (use dubbo, thrift, redis, zookeeper, kafka)',
  );
  t.equal(
    failure([], { BREEZE_PROTOCOLS: '' }),
    '--protocols (BREEZE_PROTOCOLS): "" must list at least one of dubbo, thrift, redis, zookeeper, kafka',
  );
});

// The Kafka Service of examples/kafka.yaml, with a client and a plain-TCP port, plus a ZooKeeper
// entry (a stock filter) to show scoping is per protocol.
const kafkaService: JsonRecord = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'kafka', namespace: 'kafka' },
  spec: {
    clusterIP: '10.96.30.1',
    clusterIPs: ['10.96.30.1', 'fd00::30:1'],
    selector: { app: 'kafka' },
    ports: [
      { name: 'tcp-kafka', port: 9092, targetPort: 19092 },
      { name: 'tcp-controller', port: 9093 },
      { name: 'tcp-kafka-internal', port: 9094 },
    ],
  },
};
const zookeeperEntry: JsonRecord = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: 'zk', namespace: 'kafka' },
  spec: {
    hosts: ['zk.kafka.svc.cluster.local'],
    addresses: ['240.240.9.10'],
    ports: [{ number: 2181, name: 'tcp-zookeeper', protocol: 'TCP' }],
    workloadSelector: { labels: { app: 'zk' } },
    resolution: 'STATIC',
  },
};

function generate(protocols: ReadonlySet<Protocol> | undefined) {
  const store = new ConfigStore();
  store.upsert(kafkaService, 'file');
  store.upsert(zookeeperEntry, 'file');
  const options: GenerationOptions = {
    rootNamespace: 'istio-system',
    namespaceScope: false,
    domain: 'cluster.local',
    ...(protocols === undefined ? {} : { protocols }),
  };
  return generateAll(store, options);
}
const protocolOf = (ef: JsonRecord): string => (ef.metadata as any).labels['breeze.io/protocol'];

t.test('kafka off (the default): no kafka EnvoyFilter, one note saying what to do', async (t) => {
  const result = generate(setOf(DEFAULT_PROTOCOLS));
  t.same(
    result.envoyFilters.map(protocolOf),
    ['zookeeper', 'zookeeper'],
    'only the zookeeper entry gets filters',
  );
  t.same(result.problems, []);
  t.same(
    result.notes.map(formatProblem),
    [`Service/kafka/kafka: ${KAFKA_OFF.join('; ')}`],
    'one note for two ports',
  );
  t.notMatch(JSON.stringify(result.envoyFilters), /kafka_broker/);
});

t.test('a disabled stock protocol: no filters, a note without proxy advice', async (t) => {
  const result = generate(setOf('kafka'));
  t.same(result.envoyFilters.map(protocolOf), ['kafka', 'kafka', 'kafka', 'kafka', 'kafka', 'kafka']);
  t.same(result.notes.map(formatProblem), [
    'ServiceEntry/kafka/zk: zookeeper is off in Breeze (--protocols kafka): its ports stay plain TCP; ' +
      'to enable it, run Breeze with --protocols zookeeper,kafka (chart value protocols)',
  ]);
});

t.test('kafka on: every patch of every kafka EnvoyFilter is scoped to the declaring proxies', async (t) => {
  const result = generate(setOf('dubbo,thrift,redis,zookeeper,kafka'));
  const kafka = result.envoyFilters.filter((ef) => protocolOf(ef) === 'kafka');
  // Two kafka ports x (two cluster IPs outbound + one inbound).
  t.equal(kafka.length, 6);
  let patches = 0;
  for (const ef of kafka) {
    for (const patch of (ef.spec as any).configPatches) {
      patches++;
      t.same(patch.match.proxy, { metadata: { BREEZE_KAFKA_BROKER: 'true' } }, (ef.metadata as any).name);
    }
  }
  t.equal(patches, 6);
  for (const ef of result.envoyFilters.filter((e) => protocolOf(e) === 'zookeeper')) {
    for (const patch of (ef.spec as any).configPatches)
      t.equal(patch.match.proxy, undefined, 'stock: unscoped');
  }
  t.same(result.notes, [], 'nothing to note: the admission webhook and generate say who gets the filter');
  t.same(generate(undefined).envoyFilters, result.envoyFilters, 'no protocols option: every protocol');
});

t.test('the reconciler: a kafka Service while kafka is off is noted once (log + Event)', async (t) => {
  const eventer = new RecordingEventer();
  const { store, sink, reconciler } = memoryEnv({
    eventer,
    generation: { ...GEN, protocols: setOf(DEFAULT_PROTOCOLS) },
  });
  const signal = new AbortController().signal;
  store.upsert(kafkaService, 'kubernetes');
  const key = 'Service/kafka/kafka';
  for (let i = 0; i < 3; i++) await reconciler.reconcile([key], signal);
  await reconciler.resync(signal);
  t.same(
    eventer.events.filter((e) => e.reason === 'GenerationWarning').map((e) => `${e.type} ${e.message}`),
    [`Warning Service/kafka/kafka: ${KAFKA_OFF.join('; ')}`],
  );
  t.same(sink.actual(), [], 'nothing written');

  const on = memoryEnv({
    eventer: new RecordingEventer(),
    generation: { ...GEN, protocols: setOf('redis,kafka') },
  });
  on.store.upsert(kafkaService, 'kubernetes');
  await on.reconciler.reconcile([key], signal);
  const written = on.sink.actual();
  t.equal(written.length, 6);
  for (const ef of written) {
    for (const patch of (ef.spec as any).configPatches)
      t.same(patch.match.proxy, { metadata: { BREEZE_KAFKA_BROKER: 'true' } });
  }
});

t.test('scoping covers every patch (cluster patches too) and keeps an existing proxy match', async (t) => {
  const listener = { applyTo: 'NETWORK_FILTER', match: { listener: { name: '10.0.0.1_9092' } }, patch: {} };
  const cluster = {
    applyTo: 'CLUSTER',
    match: { cluster: { service: 'k' } },
    patch: { operation: 'REMOVE' },
  };
  const versioned = {
    applyTo: 'LISTENER',
    match: { proxy: { proxyVersion: '^1\\.2.*', metadata: { A: 'b' } } },
  };
  const noMatch = { applyTo: 'CLUSTER', patch: { operation: 'ADD' } };
  t.same(scopePatches('kafka', [listener, cluster, versioned, noMatch]), [
    { ...listener, match: { ...listener.match, proxy: { metadata: { BREEZE_KAFKA_BROKER: 'true' } } } },
    { ...cluster, match: { ...cluster.match, proxy: { metadata: { BREEZE_KAFKA_BROKER: 'true' } } } },
    {
      applyTo: 'LISTENER',
      match: { proxy: { proxyVersion: '^1\\.2.*', metadata: { A: 'b', BREEZE_KAFKA_BROKER: 'true' } } },
    },
    { ...noMatch, match: { proxy: { metadata: { BREEZE_KAFKA_BROKER: 'true' } } } },
  ]);
  t.same(scopePatches('redis', [listener, cluster]), [listener, cluster], 'a stock filter is unscoped');
  t.same(listener.match, { listener: { name: '10.0.0.1_9092' } }, 'the input is not changed');
});

t.test('the mechanism is generic: any protocol without a stock filter is scoped by its key', async (t) => {
  for (const p of PROTOCOLS) {
    const s = SUPPORT[p];
    if (s.inStockProxy) {
      t.equal(proxyMetadataMatch(p), undefined, `${p}: stock`);
      t.same(switchAdvice(p, new Set([p])), [], `${p} enabled: nothing to say`);
    } else {
      t.match(s.proxyMetadataKey, /^[A-Z][A-Z0-9_]*$/, `${p}: an env-var-safe key`);
      t.same(proxyMetadataMatch(p), { [s.proxyMetadataKey]: 'true' });
      t.match(switchAdvice(p, new Set([p])).join('\n'), `ISTIO_META_${s.proxyMetadataKey}: "true"`);
    }
    for (const enabled of [
      new Set<Protocol>([p]),
      setOf('dubbo,thrift,redis,zookeeper,kafka'),
      new Set<Protocol>(PROTOCOLS.filter((q) => q !== p)),
      new Set<Protocol>(),
    ]) {
      switchAdvice(p, enabled).forEach((line, i) => {
        // Each line is an admission warning of its own, the first after `spec.ports[NNNN].name: `.
        const prefix = i === 0 ? 'spec.ports[9999].name: ' : '';
        t.ok(prefix.length + line.length <= 120, `fits a warning: ${line}`);
      });
    }
  }
  t.same(switchAdvice('kafka', setOf(DEFAULT_PROTOCOLS)), KAFKA_OFF);
  t.same(switchAdvice('kafka', setOf('dubbo,thrift,redis,zookeeper,kafka')), KAFKA_ON);
});

function review(ports: JsonRecord[]): JsonRecord {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-kafka',
      kind: { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' },
      namespace: 'kafka',
      name: 'kafka',
      operation: 'CREATE',
      userInfo: { username: 'alice' },
      object: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name: 'kafka', namespace: 'kafka' },
        spec: {
          hosts: ['kafka.kafka.svc.cluster.local'],
          addresses: ['240.240.30.1'],
          ports,
          resolution: 'STATIC',
        },
      },
      dryRun: false,
    },
  };
}

function answer(body: JsonRecord, protocols: ReadonlySet<Protocol> | undefined) {
  const view = new ConfigStore();
  const deps = {
    view,
    vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), view),
    ...(protocols === undefined ? {} : { protocols }),
  };
  return (admit('validate', body, deps).body as any).response;
}

const KAFKA_PORTS = [
  { number: 8080, name: 'http-admin', protocol: 'HTTP' },
  { number: 9092, name: 'tcp-kafka', protocol: 'TCP' },
  { number: 9093, name: 'tcp-kafka-2', protocol: 'TCP' },
];

t.test('admission: a kafka port while kafka is off is admitted with what to do', async (t) => {
  const res = answer(review(KAFKA_PORTS), setOf(DEFAULT_PROTOCOLS));
  t.equal(res.uid, 'u-kafka');
  t.equal(res.allowed, true);
  t.same(res.warnings, [`spec.ports[1].name: ${KAFKA_OFF[0]}`, ...KAFKA_OFF.slice(1)]);
});

t.test('admission: kafka on warns that only proxies with the metadata get the filter', async (t) => {
  const res = answer(review(KAFKA_PORTS), setOf('dubbo,thrift,redis,zookeeper,kafka'));
  t.equal(res.allowed, true);
  t.same(res.warnings, [`spec.ports[1].name: ${KAFKA_ON[0]}`, ...KAFKA_ON.slice(1)]);
});

t.test('admission: a disabled stock protocol, and nothing to say for enabled stock ones', async (t) => {
  const ports = [
    { number: 6379, name: 'tcp-redis', protocol: 'TCP' },
    { number: 2181, name: 'tcp-zookeeper', protocol: 'TCP' },
  ];
  const off = answer(review(ports), setOf('dubbo,thrift,zookeeper'));
  t.equal(off.allowed, true);
  t.same(off.warnings, [
    'spec.ports[0].name: redis is off in Breeze (--protocols dubbo,thrift,zookeeper): its ports stay plain TCP',
    'to enable it, run Breeze with --protocols dubbo,thrift,redis,zookeeper (chart value protocols)',
  ]);
  const on = answer(review(ports), setOf(DEFAULT_PROTOCOLS));
  t.equal(on.allowed, true);
  t.equal(on.warnings, undefined, 'no warnings');
});

t.test('admission: warnings ride along with a denial; none without a protocol set', async (t) => {
  const denied = answer(
    // A Dubbo port without its `interface` annotation is denied; the Kafka advice still comes.
    review([
      { number: 9092, name: 'tcp-kafka' },
      { number: 20880, name: 'tcp-dubbo' },
    ]),
    setOf(DEFAULT_PROTOCOLS),
  );
  t.equal(denied.allowed, false);
  t.match(denied.status.message, /spec\.ports\[1\]/);
  t.same(denied.warnings, [`spec.ports[0].name: ${KAFKA_OFF[0]}`, ...KAFKA_OFF.slice(1)]);
  const unset = answer(review(KAFKA_PORTS), undefined);
  t.equal(unset.allowed, true);
  t.equal(unset.warnings, undefined, 'deps without protocols: no switch warnings');
});

t.test('breeze validate --protocols: the same warnings, exit 0; a bad name is BAD_FLAG', async (t) => {
  const dir = t.testdir({
    'kafka.json': JSON.stringify((review(KAFKA_PORTS).request as JsonRecord).object),
  });
  const run = async (argv: string[]) => {
    const out: string[] = [];
    const summary = await runValidate(
      argv,
      (l) => out.push(l),
      () => undefined,
    );
    return { out, summary };
  };
  const prefix = `${dir}/kafka.json: ServiceEntry kafka/kafka: warning: `;
  const off = await run(['-f', dir]);
  t.equal(off.summary.exitCode, 0);
  t.same(off.out, [
    `${prefix}spec.ports[1].name: ${KAFKA_OFF[0]}`,
    ...KAFKA_OFF.slice(1).map((l) => prefix + l),
  ]);
  const on = await run(['-f', dir, '--protocols', 'kafka,dubbo,thrift,redis,zookeeper']);
  t.equal(on.summary.exitCode, 0);
  t.same(on.out, [
    `${prefix}spec.ports[1].name: ${KAFKA_ON[0]}`,
    ...KAFKA_ON.slice(1).map((l) => prefix + l),
  ]);
  await t.rejects(run(['-f', dir, '--protocols', 'mongo']), {
    code: 'BAD_FLAG',
    message:
      '--protocols: "mongo" names "mongo", which is not a protocol (use dubbo, thrift, redis, zookeeper, kafka)',
  });
});
