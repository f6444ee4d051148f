// Edge cases of the VirtualService validator that the AdmissionReview fixtures do not pin down.
import t from 'tap';
import fc from 'fast-check';
import { ConfigStore } from '../../src/cache/store.js';
import { MAX_WARNING_LENGTH } from '../../src/admission/findings.js';
import { re2Error } from '../../src/model/re2.js';
import { validateVirtualService } from '../../src/admission/validators/virtualservice.js';
import type { JsonRecord } from '../../src/model/json.js';

const DUBBO_HOST = 'org.apache.dubbo.samples.basic.api.demoservice';

function serviceEntry(namespace: string, host: string, ports: [number, string][]): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: host.split('.')[0], namespace },
    spec: {
      hosts: [host],
      addresses: ['240.240.0.10'],
      ports: ports.map(([number, name]) => ({ number, name, protocol: 'TCP' })),
      resolution: 'STATIC',
    },
  };
}

function destinationRule(namespace: string, host: string, subsets: string[]): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: host.split('.')[0], namespace },
    spec: { host, subsets: subsets.map((name) => ({ name, labels: { version: name } })) },
  };
}

/** A store with the Dubbo demo service and its DestinationRule (v1, v2) in namespace dubbo. */
function dubboStore(): ConfigStore {
  const store = new ConfigStore();
  store.upsert(serviceEntry('dubbo', DUBBO_HOST, [[20880, 'tcp-dubbo']]), 'file');
  store.upsert(destinationRule('dubbo', DUBBO_HOST, ['v1', 'v2']), 'file');
  return store;
}

function vs(spec: unknown, namespace = 'dubbo'): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'demo', namespace },
    spec,
  };
}

function dest(host: string, subset?: string, weight?: unknown): JsonRecord {
  const d: JsonRecord = { destination: subset === undefined ? { host } : { host, subset } };
  if (weight !== undefined) d.weight = weight;
  return d;
}

const paths = (r: { problems: readonly { path: string }[] }): string[] => r.problems.map((p) => p.path);

t.test('a spec that is not an object is denied at spec', async (t) => {
  const view = dubboStore();
  for (const spec of [undefined, null, [], 'hosts: x', 5, true, [{ hosts: [DUBBO_HOST] }]]) {
    const r = validateVirtualService(vs(spec), { view, namespace: 'dubbo' });
    t.same(paths(r), ['spec'], `spec ${JSON.stringify(spec)}`);
    t.match(r.problems[0]?.message, /^must be an object with hosts and routes/);
  }
  const missing = validateVirtualService({ kind: 'VirtualService' }, { view, namespace: 'dubbo' });
  t.equal(missing.problems[0]?.message.endsWith('got none'), true, 'a missing spec says "got none"');
});

t.test('hosts must be a non-empty list of non-empty strings', async (t) => {
  const view = dubboStore();
  const ctx = { view, namespace: 'dubbo' };
  for (const hosts of [DUBBO_HOST, { a: 1 }]) {
    t.same(paths(validateVirtualService(vs({ hosts }), ctx)), ['spec.hosts'], JSON.stringify(hosts));
  }
  const toDubbo = [{ route: [dest(DUBBO_HOST)] }];
  const toHttp = [{ route: [dest('reviews')] }];
  for (const hosts of [undefined, []]) {
    t.same(
      paths(validateVirtualService(vs({ hosts, http: toDubbo }), ctx)),
      ['spec.hosts'],
      'to a protocol service',
    );
    t.same(
      paths(validateVirtualService(vs({ hosts, http: toHttp }), ctx)),
      [],
      'a delegate to an HTTP service',
    );
    t.same(paths(validateVirtualService(vs({ hosts, tcp: toDubbo }), ctx)), ['spec.hosts'], 'tcp routes too');
  }
  t.same(paths(validateVirtualService(vs({ hosts: [DUBBO_HOST, '', null] }), ctx)), [
    'spec.hosts[1]',
    'spec.hosts[2]',
  ]);
});

t.test('weights as Istio checks them: non-negative integers, several must not total 0', async (t) => {
  const ctx = { view: dubboStore(), namespace: 'dubbo' };
  const route = (...weights: unknown[]): JsonRecord =>
    vs({ hosts: [DUBBO_HOST], http: [{ route: weights.map((w, i) => dest(DUBBO_HOST, `v${i + 1}`, w)) }] });

  const fractional = validateVirtualService(route(80.5, 19.5), ctx);
  t.same(paths(fractional), ['spec.http[0].route[0].weight', 'spec.http[0].route[1].weight']);
  t.equal(
    fractional.problems[0]?.message,
    "must be a non-negative integer (a weight relative to the route's other destinations), got 80.5",
    'no sum problem on top of the bad weights',
  );
  t.same(fractional.warnings, [], 'and no total warning either');
  t.same(paths(validateVirtualService(route('80', 20), ctx)), ['spec.http[0].route[0].weight'], 'a string');
  t.same(paths(validateVirtualService(route(-1, 100), ctx)), ['spec.http[0].route[0].weight'], 'negative');
  t.same(
    paths(validateVirtualService(route(2 ** 31, 1), ctx)),
    ['spec.http[0].route[0].weight'],
    'over int32',
  );
  const big = validateVirtualService(route(101), ctx);
  t.same(
    [big.problems, big.warnings],
    [[], []],
    'one destination over 100: Istio allows it, nothing to total',
  );
  t.same(paths(validateVirtualService(route(null, 100), ctx)), [], 'null is a missing weight');
  t.same(validateVirtualService(route(30), ctx).problems, [], 'one destination: its weight is not summed');
  t.same(
    paths(validateVirtualService(route(), ctx)),
    ['spec.http[0].route'],
    'an empty http route list on a Dubbo host is denied: a Dubbo route only forwards',
  );
  const full = validateVirtualService(route(0, 100), ctx);
  t.same([full.problems, full.warnings], [[], []], '0 and 100');

  const sum = validateVirtualService(route(1, 3), ctx);
  t.same(sum.problems, [], '1 and 3: allowed (Istio and Envoy use relative weights)');
  t.same(sum.warnings, [
    'spec.http[0].route: weights total 4, not 100; each destination gets weight/4 of traffic',
  ]);
  const over = validateVirtualService(route(150, 250), ctx);
  t.same(over.problems, [], '150 and 250: allowed');
  t.match(over.warnings, [/^spec\.http\[0\]\.route: weights total 400, not 100;/]);
  const huge = validateVirtualService(route(2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1), ctx);
  t.same(huge.problems, [
    {
      path: 'spec.http[0].route',
      message:
        'the weights of its 3 destinations total 6442450941, more than Envoy accepts (4294967295); scale them down',
    },
  ]);
  const unweighted = validateVirtualService(
    vs({ hosts: [DUBBO_HOST], tcp: [{ route: [dest(DUBBO_HOST, 'v1'), dest(DUBBO_HOST, 'v2')] }] }),
    ctx,
  );
  t.same(unweighted.problems, [
    {
      path: 'spec.tcp[0].route',
      message:
        'the weights of its 2 destinations total 0, so no destination gets traffic (a missing weight counts as 0); give at least one a positive weight',
    },
  ]);
  const three = vs({
    hosts: [DUBBO_HOST],
    tls: [{ route: [dest(DUBBO_HOST, 'v1', 50), dest(DUBBO_HOST, 'v2', 30), dest(DUBBO_HOST, 'v1', 20)] }],
  });
  t.same(validateVirtualService(three, ctx).problems, [], '50 + 30 + 20');
});

t.test('tcp and tls routes need a destination list; so do http routes of a Dubbo host', async (t) => {
  const ctx = { view: dubboStore(), namespace: 'dubbo' };
  const r = validateVirtualService(
    vs({
      hosts: [DUBBO_HOST],
      http: [{ redirect: { uri: '/x' } }, 'route', { match: 'x', route: [3] }],
      tcp: [{}, { route: [] }],
      tls: 'x',
    }),
    ctx,
  );
  t.same(paths(r), [
    'spec.http[0].route',
    'spec.http[1]',
    'spec.http[2].match',
    'spec.http[2].route[0]',
    'spec.tcp[0].route',
    'spec.tcp[1].route',
    'spec.tls',
  ]);
});

t.test('regexes are checked with RE2 semantics, not JavaScript RegExp', async (t) => {
  const jsOnly = ['^(?!admin$).*', 'say(?=Hello)', '(?<=x-)user', '(say)\\1', '(?<n>x)\\k<n>', '\\Z'];
  for (const p of jsOnly) {
    t.doesNotThrow(() => new RegExp(p), `${p} is a valid JavaScript RegExp`);
    t.type(re2Error(p), 'string', `${p} is not RE2`);
  }
  for (const p of ['say(Hello|Goodbye)', '^(?i)user-[0-9]+$', '\\d{1,3}', '(?P<name>x)', '\\Qa.b\\E', '']) {
    t.equal(re2Error(p), undefined, `${p} is RE2`);
  }
  t.equal(re2Error('say(?=Hello)'), 'invalid or unsupported Perl syntax `(?=`');
  t.equal(re2Error('(say)\\1'), 'invalid escape sequence `\\1`');
  t.equal(
    re2Error(`(${'x'.repeat(40)}`),
    `missing closing ) \`(${'x'.repeat(20)}...\``,
    'long fragments are cut',
  );

  const ctx = { view: dubboStore(), namespace: 'dubbo' };
  const r = validateVirtualService(
    vs({
      hosts: [DUBBO_HOST],
      http: [
        {
          match: [
            { method: { regex: 'say(?=Hello)' } },
            { headers: { 'x-user': { regex: '^(?!admin$).*' }, 'x-env': { exact: 'prod' } } },
            { authority: { regex: '(a)\\1' }, queryParams: { q: { regex: '[' } } },
            { headers: { 'x-user': { regex: 42 }, 'x-ok': 'exact' } },
            { headers: ['x-user'] },
          ],
          route: [dest(DUBBO_HOST, 'v1')],
        },
      ],
    }),
    ctx,
  );
  t.same(paths(r), [
    'spec.http[0].match[0].method.regex',
    'spec.http[0].match[1].headers[x-user].regex',
    'spec.http[0].match[2].authority.regex',
    'spec.http[0].match[2].queryParams[q].regex',
    'spec.http[0].match[3].headers[x-user].regex',
    'spec.http[0].match[3].headers[x-ok]',
    'spec.http[0].match[4].headers',
  ]);
  t.equal(
    r.problems[0]?.message,
    '"say(?=Hello)" is not valid RE2 (invalid or unsupported Perl syntax `(?=`); Envoy matches with RE2, ' +
      'which has no lookaround or backreferences: rewrite the pattern in RE2 syntax',
  );
});

t.test('short hosts resolve in the VirtualService namespace', async (t) => {
  const store = new ConfigStore();
  store.upsert(serviceEntry('dubbo', 'demo', [[20880, 'tcp-dubbo']]), 'file');
  store.upsert(destinationRule('dubbo', 'demo', ['v1']), 'file');
  const spec = { hosts: ['demo'], http: [{ route: [dest('demo', 'v1', 70), dest('demo', 'v2', 20)] }] };

  const inDubbo = validateVirtualService(vs(spec), { view: store, namespace: 'dubbo' });
  t.same(paths(inDubbo), [], 'demo in dubbo is the Dubbo service: its rules apply, as warnings here');
  t.same(inDubbo.warnings, [
    'spec.http[0].route[1].destination.subset: "v2" is not in this host\'s DestinationRule yet; add it to its subsets',
    'spec.http[0].route: weights total 90, not 100; each destination gets weight/90 of traffic',
  ]);

  const fqdn = validateVirtualService(vs({ ...spec, hosts: ['demo.dubbo.svc.cluster.local'] }, 'other'), {
    view: store,
    namespace: 'other',
  });
  t.same(paths(fqdn), [], 'the FQDN matches from any namespace');
  t.same(fqdn.warnings.length, 3, 'destination host demo resolves in namespace other: no DestinationRule');
  t.match(fqdn.warnings[2], /weights total 90/, 'the Dubbo rules apply');

  const elsewhere = validateVirtualService(vs(spec, 'other'), { view: store, namespace: 'other' });
  t.same(elsewhere, { problems: [], warnings: [] }, 'demo in other is not a protocol service');
});

t.test('a VirtualService none of whose hosts is a protocol service gets no checks', async (t) => {
  const store = dubboStore();
  store.upsert(serviceEntry('web', 'web.example.com', [[8080, 'http-web']]), 'file');
  const garbage = {
    hosts: ['reviews', 'web.example.com', '*.example.org'],
    http: 'not a list',
    tcp: [{ route: [dest('reviews', 'v9', 1.5), dest('reviews', 'v8', 7)] }],
    tls: [{ match: [{ port: 'x' }] }],
  };
  t.same(validateVirtualService(vs(garbage, 'bookinfo'), { view: store, namespace: 'bookinfo' }), {
    problems: [],
    warnings: [],
  });
});

t.test('Kafka, ZooKeeper and Redis hosts warn once that http routes are unused', async (t) => {
  const store = new ConfigStore();
  const kafkaHost = 'my-cluster-kafka-bootstrap.kafka-production-eu-west.svc.cluster.local';
  store.upsert(
    serviceEntry('kafka', kafkaHost, [
      [9092, 'tcp-kafka'],
      [9093, 'tcp-kafka-tls'],
    ]),
    'file',
  );
  store.upsert(serviceEntry('zk', 'zookeeper.zk.svc.cluster.local', [[2181, 'tcp-zookeeper']]), 'file');
  const longHost = `${'a'.repeat(50)}.${'b'.repeat(50)}.example.com`;
  store.upsert(serviceEntry('redis', longHost, [[6379, 'tcp-redis']]), 'file');
  const http = [{ route: [dest(kafkaHost)] }, { route: [dest(kafkaHost)] }];

  const r = validateVirtualService(
    vs({ hosts: [kafkaHost, 'zookeeper.zk.svc.cluster.local', longHost], http }),
    {
      view: store,
      namespace: 'kafka',
    },
  );
  t.same(r.problems, []);
  t.same(r.warnings, [
    'spec.http: kafka service my-cluster-kafka-bootstrap.kafka-production-... ignores VirtualService http routes; remove them',
    'spec.http: zookeeper service zookeeper.zk.svc.cluster.local ignores VirtualService http routes; remove them',
    `spec.http: redis service ${'a'.repeat(21)}... ignores VirtualService http routes; use RedisService for Redis routing`,
  ]);
  for (const w of r.warnings) t.ok(w.length <= MAX_WARNING_LENGTH, w);
  const noHttp = validateVirtualService(
    vs({ hosts: [kafkaHost], http: [], tcp: [{ route: [dest(kafkaHost)] }] }),
    {
      view: store,
      namespace: 'kafka',
    },
  );
  t.same(noHttp, { problems: [], warnings: [] }, 'no http routes, no warning');
});

t.test('never throws and keeps warnings short on any JSON', async (t) => {
  const store = dubboStore();
  store.upsert(serviceEntry('dubbo', 'thrift.dubbo.svc.cluster.local', [[9090, 'tcp-thrift']]), 'file');
  const hosts = fc.constantFrom(DUBBO_HOST, 'thrift', 'reviews');
  const stringMatch = fc.oneof(
    fc.anything(),
    fc.record({ regex: fc.oneof(fc.string(), fc.constantFrom('(?=a)', '[', '\\1', 'a.*')) }),
    fc.record({ exact: fc.string() }),
  );
  const match = fc.oneof(
    fc.anything(),
    fc.record(
      {
        method: stringMatch,
        uri: stringMatch,
        headers: fc.oneof(fc.anything(), fc.dictionary(fc.string(), stringMatch)),
        port: fc.oneof(fc.constantFrom(20880, 9090), fc.anything()),
        ignoreUriCase: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
  );
  const destination = fc.oneof(
    fc.anything(),
    fc.record(
      {
        destination: fc.oneof(
          fc.anything(),
          fc.record({ host: fc.oneof(hosts, fc.anything()), subset: fc.oneof(fc.string(), fc.anything()) }),
        ),
        weight: fc.oneof(fc.integer({ min: -10, max: 110 }), fc.anything()),
      },
      { requiredKeys: [] },
    ),
  );
  const route = fc.oneof(
    fc.anything(),
    fc.record(
      {
        match: fc.oneof(fc.anything(), fc.array(match)),
        route: fc.oneof(fc.anything(), fc.array(destination)),
      },
      { requiredKeys: [] },
    ),
  );
  const spec = fc.oneof(
    fc.anything(),
    fc.record(
      {
        hosts: fc.oneof(fc.array(hosts, { minLength: 1 }), fc.anything()),
        http: fc.oneof(fc.array(route), fc.anything()),
        tcp: fc.oneof(fc.array(route), fc.anything()),
        tls: fc.oneof(fc.array(route), fc.anything()),
      },
      { requiredKeys: ['hosts'] },
    ),
  );
  fc.assert(
    fc.property(spec, fc.constantFrom('dubbo', 'other'), (s, namespace) => {
      const r = validateVirtualService(vs(s, namespace), { view: store, namespace });
      return r.warnings.every((w) => w.length <= MAX_WARNING_LENGTH);
    }),
    { numRuns: 500 },
  );
  t.pass('500 random VirtualServices validated');
});
