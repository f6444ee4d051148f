// Ambient-mode admission warnings, through the real webhook entry point: AdmissionReview JSON in,
// the exact answer out. Breeze warns (never denies) when a protocol service's pods live in a
// namespace labelled istio.io/dataplane-mode=ambient, and says nothing otherwise.
import t from 'tap';
import { admit } from '../../src/admission/handler.js';
import { MAX_WARNING_LENGTH } from '../../src/admission/findings.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ambientWarnings, MAX_HOSTS_CHECKED } from '../../src/admission/validators/ambient.js';
import { ConfigStore, type ConfigView } from '../../src/cache/store.js';
import type { JsonRecord } from '../../src/model/json.js';

const GROUPS: Record<string, [string, string]> = {
  ServiceEntry: ['networking.istio.io', 'v1'],
  VirtualService: ['networking.istio.io', 'v1'],
  DestinationRule: ['networking.istio.io', 'v1'],
  RedisService: ['redis.aeraki.io', 'v1alpha1'],
  RedisDestination: ['redis.aeraki.io', 'v1alpha1'],
};

function review(object: JsonRecord): JsonRecord {
  const kind = object.kind as string;
  const [group, version] = GROUPS[kind] ?? ['', ''];
  const meta = object.metadata as { name: string; namespace: string };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-ambient',
      kind: { group, version, kind },
      namespace: meta.namespace,
      name: meta.name,
      operation: 'CREATE',
      userInfo: { username: 'alice' },
      object,
      oldObject: null,
      dryRun: false,
    },
  };
}

function validate(view: ConfigView, object: JsonRecord): JsonRecord {
  const vips = new VipAllocator(new Ipv4Range('240.240.0.0/16'), view);
  const r = admit('validate', review(object), { view, vips });
  if (r.httpStatus !== 200) throw new Error(`HTTP ${r.httpStatus}`);
  return (r.body as { response: JsonRecord }).response;
}

function namespace(name: string, mode?: string): JsonRecord {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: mode === undefined ? {} : { 'istio.io/dataplane-mode': mode } },
  };
}

function serviceEntry(ns: string, ports: string[], name = 'demo'): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: ns, annotations: { interface: 'org.apache.dubbo.samples.DemoService' } },
    spec: {
      hosts: [`${name}.${ns}.svc.cluster.local`],
      addresses: ['240.240.0.10'],
      ports: ports.map((p, i) => ({ number: 20880 + i, name: p, protocol: 'TCP' })),
      resolution: 'STATIC',
      workloadSelector: { labels: { app: name } },
    },
  };
}

const DUBBO_WARNINGS = [
  `namespace "apps" has istio.io/dataplane-mode=ambient: no sidecars, so Breeze's dubbo filters skip its pods`,
  'fix: sidecar mode for namespace "apps", or label its pods istio.io/dataplane-mode=none and inject sidecars',
];

t.test(
  'a ServiceEntry with a protocol port in an ambient namespace: allowed with the two warnings',
  async (t) => {
    const store = new ConfigStore();
    store.replace('kubernetes', 'Namespace', [namespace('apps', 'ambient'), namespace('side')]);
    t.same(validate(store, serviceEntry('apps', ['tcp-dubbo'])), {
      uid: 'u-ambient',
      allowed: true,
      warnings: DUBBO_WARNINGS,
    });
    for (const w of DUBBO_WARNINGS) t.ok(w.length <= MAX_WARNING_LENGTH, 'not cut');
  },
);

t.test('several protocols are named once each, in a fixed order', async (t) => {
  const store = new ConfigStore();
  store.replace('kubernetes', 'Namespace', [namespace('apps', 'ambient')]);
  const response = validate(
    store,
    serviceEntry('apps', ['tcp-thrift', 'tcp-dubbo', 'tcp-dubbo-2', 'tcp-web']),
  );
  t.same(response.warnings, [
    `namespace "apps" has istio.io/dataplane-mode=ambient: no sidecars, so Breeze's dubbo/thrift filters skip its pods`,
    DUBBO_WARNINGS[1],
  ]);
});

t.test(
  'no warning: sidecar namespace, other dataplane modes, no protocol port, unknown namespace',
  async (t) => {
    const store = new ConfigStore();
    store.replace('kubernetes', 'Namespace', [namespace('apps', 'ambient'), namespace('opt', 'none')]);
    for (const [ns, ports] of [
      ['side', ['tcp-dubbo']],
      ['opt', ['tcp-dubbo']],
      ['apps', ['tcp-web', 'http']],
      ['unknown', ['tcp-redis']],
    ] as const) {
      const response = validate(store, serviceEntry(ns, [...ports]));
      t.same(response, { uid: 'u-ambient', allowed: true }, `${ns} ${ports.join(',')}`);
    }
    // Istio compares the value exactly: "Ambient" is not ambient mode.
    store.replace('kubernetes', 'Namespace', [namespace('apps', 'Ambient')]);
    t.same(validate(store, serviceEntry('apps', ['tcp-dubbo'])), { uid: 'u-ambient', allowed: true });
  },
);

t.test('a denied ServiceEntry keeps its denial and also carries the warnings', async (t) => {
  const store = new ConfigStore();
  store.replace('kubernetes', 'Namespace', [namespace('apps', 'ambient')]);
  const bad = serviceEntry('apps', ['tcp-dubbo']);
  (bad.spec as JsonRecord).hosts = [];
  const response = validate(store, bad);
  t.equal(response.allowed, false);
  t.same(response.warnings, DUBBO_WARNINGS);
});

t.test(
  'VirtualService, RedisService, RedisDestination for a host served from an ambient namespace',
  async (t) => {
    const store = new ConfigStore();
    store.upsert(serviceEntry('apps', ['tcp-dubbo']), 'kubernetes');
    store.upsert(
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'redis', namespace: 'cache' },
        spec: {
          clusterIP: '10.0.0.7',
          selector: { app: 'redis' },
          ports: [{ port: 6379, name: 'tcp-redis' }],
        },
      },
      'kubernetes',
    );
    const vs: JsonRecord = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'demo', namespace: 'clients' },
      spec: {
        hosts: ['demo.apps.svc.cluster.local'],
        tcp: [{ route: [{ destination: { host: 'demo.apps.svc.cluster.local' } }] }],
      },
    };
    const redisService: JsonRecord = {
      apiVersion: 'redis.aeraki.io/v1alpha1',
      kind: 'RedisService',
      metadata: { name: 'redis', namespace: 'cache' },
      spec: { host: ['redis'] }, // a short name, resolved in the RedisService's namespace
    };
    const redisDestination: JsonRecord = {
      apiVersion: 'redis.aeraki.io/v1alpha1',
      kind: 'RedisDestination',
      metadata: { name: 'redis', namespace: 'cache' },
      spec: { host: 'redis.cache.svc.cluster.local' },
    };
    // Both namespaces in sidecar mode: nothing.
    t.same(validate(store, vs).warnings, undefined);
    t.same(validate(store, redisService).warnings, undefined);
    store.replace('kubernetes', 'Namespace', [namespace('apps', 'ambient'), namespace('cache', 'ambient')]);
    t.same(validate(store, vs).warnings, DUBBO_WARNINGS, "the service's namespace, not the VirtualService's");
    const redisWarnings = [
      `namespace "cache" has istio.io/dataplane-mode=ambient: no sidecars, so Breeze's redis filters skip its pods`,
      'fix: sidecar mode for namespace "cache", or label its pods istio.io/dataplane-mode=none and inject sidecars',
    ];
    t.same(validate(store, redisService).warnings, redisWarnings);
    t.same(validate(store, redisDestination).warnings, redisWarnings);
    t.equal(validate(store, redisDestination).allowed, true);
    // The label flips back: the warning goes.
    store.apply('kubernetes', 'Namespace', '', 'cache', namespace('cache'));
    t.same(validate(store, redisService).warnings, undefined);
    t.same(validate(store, vs).warnings, DUBBO_WARNINGS);
  },
);

t.test('bounded: a VirtualService with 100,000 hosts looks up only the first ones', async (t) => {
  let lookups = 0;
  const view: ConfigView = {
    domain: 'cluster.local',
    protocolServices: () => {
      lookups++;
      return [];
    },
    destinationRuleSubsets: () => undefined,
    addressOwner: () => undefined,
    forHost: () => [],
    namespaceDataplaneMode: () => 'ambient',
  };
  const hosts = Array.from({ length: 100_000 }, (_, i) => `h${i}.example.com`);
  const vs = { kind: 'VirtualService', metadata: { name: 'x', namespace: 'a' }, spec: { hosts } };
  t.same(ambientWarnings('VirtualService', vs, { view, namespace: 'a' }), []);
  t.equal(lookups, MAX_HOSTS_CHECKED);
});

t.test('a view without the lookup (an older cache view) warns about nothing', async (t) => {
  const view: ConfigView = {
    domain: 'cluster.local',
    protocolServices: () => [],
    destinationRuleSubsets: () => undefined,
    addressOwner: () => undefined,
    forHost: () => [],
  };
  t.same(
    ambientWarnings('ServiceEntry', serviceEntry('apps', ['tcp-dubbo']), { view, namespace: 'apps' }),
    [],
  );
});
