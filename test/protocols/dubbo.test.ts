import t from 'tap';
import { BreezeError } from '../../src/errors.js';
import type { JsonRecord } from '../../src/model/json.js';
import { generator } from '../../src/protocols/dubbo/index.js';
import {
  DESTINATION_RULE,
  filterProblems,
  mutate,
  portContext,
  rng,
  virtualService,
  type ContextOptions,
  generationMessage,
} from './portcontext.js';

const HOST = 'org.apache.dubbo.samples.basic.api.demoservice';
const CATCH_ALL = { safeRegex: { regex: '.*' } };
const dest = (subset?: string, extra: JsonRecord = {}): JsonRecord => ({
  destination: { host: HOST, ...(subset === undefined ? {} : { subset }) },
  ...extra,
});

function outbound(o: ContextOptions = {}) {
  return generator.outbound(portContext(o));
}

/** The single route config of an outbound plan. */
function routeConfig(o: ContextOptions): JsonRecord {
  const tc = outbound(o).filter.typedConfig as any;
  return tc.multipleRouteConfig.routeConfig[0];
}

function routesOf(http: unknown, o: ContextOptions = {}): any[] {
  return routeConfig({ virtualService: virtualService(http), destinationRule: DESTINATION_RULE, ...o })
    .routes as any[];
}

t.test('no VirtualService: one catch-all route to the service cluster (Aeraki golden 1)', async (t) => {
  const plan = outbound();
  t.equal(plan.operation, 'REPLACE');
  t.equal(plan.filter.name, 'envoy.filters.network.dubbo_proxy');
  t.same(plan.sources, []);
  t.same(plan.filter.typedConfig, {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy',
    statPrefix: `outbound|20880||${HOST}`,
    multipleRouteConfig: {
      name: `outbound|20880||${HOST}`,
      routeConfig: [
        {
          name: `outbound|20880||${HOST}`,
          interface: 'org.apache.dubbo.samples.basic.api.DemoService',
          routes: [{ match: { method: { name: CATCH_ALL } }, route: { cluster: `outbound|20880||${HOST}` } }],
        },
      ],
    },
    dubboFilters: [{ name: 'envoy.filters.dubbo.router' }],
  });
  t.same(filterProblems(plan), []);
});

t.test('missing interface: outbound fails clearly, inbound does not', async (t) => {
  const variants: Record<string, string>[] = [{}, { interface: '' }, { interface: '  ' }];
  for (const annotations of variants) {
    const message = generationMessage(t, () => outbound({ annotations }));
    t.match(
      message,
      /no "interface" annotation \(the Dubbo interface, e\.g\. org\.apache\.dubbo\.samples\.DemoService\)/,
    );
    const inbound = generator.inbound(portContext({ annotations }));
    t.equal((inbound.filter.typedConfig as any).multipleRouteConfig.routeConfig[0].interface, '*');
  }
  t.equal(routeConfig({ annotations: { interface: ' a.B ' } }).interface, 'a.B', 'trimmed');
});

t.test('inbound: every interface to the workload port', async (t) => {
  const plan = generator.inbound(portContext({ targetPort: 20990 }));
  t.same(plan.filter.typedConfig, {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy',
    statPrefix: 'inbound|20990||',
    multipleRouteConfig: {
      name: 'inbound|20990||',
      routeConfig: [
        {
          name: 'inbound|20990||',
          interface: '*',
          routes: [{ match: { method: { name: CATCH_ALL } }, route: { cluster: 'inbound|20990||' } }],
        },
      ],
    },
    dubboFilters: [{ name: 'envoy.filters.dubbo.router' }],
  });
  t.equal(plan.sources, undefined);
  t.equal((generator.inbound(portContext()).filter.typedConfig as any).statPrefix, 'inbound|20880||');
  t.same(filterProblems(plan), []);
});

t.test('method matches: exact, prefix, regex; empty forms', async (t) => {
  const routes = routesOf([
    { match: [{ method: { exact: 'sayHello' } }], route: [dest('v1')] },
    { match: [{ method: { prefix: 'get' } }], route: [dest('v2')] },
    { match: [{ method: { regex: 'say.*' } }], route: [dest()] },
    { match: [{ method: { prefix: '' } }], route: [dest()] },
    { match: [{ method: {} }], route: [dest()] },
    { match: [{ method: { exact: '' } }], route: [dest()] },
    { match: [{ method: null, uri: { prefix: '/' } }], route: [dest()] },
  ]);
  t.same(
    routes.map((r) => r.match.method.name),
    [
      { exact: 'sayHello' },
      { prefix: 'get' },
      { safeRegex: { regex: 'say.*' } },
      CATCH_ALL,
      CATCH_ALL,
      { exact: '' },
      CATCH_ALL,
    ],
  );
  t.same(routes[0].route, { cluster: `outbound|20880|v1|${HOST}` });
  t.same(routes[2].route, { cluster: `outbound|20880||${HOST}` });
});

t.test('headers: sorted by name, string_match forms, presence', async (t) => {
  const [route] = routesOf([
    {
      match: [
        {
          headers: {
            'x-user': { exact: 'admin' },
            batchJob: { prefix: 'tr' },
            'x-any': {},
            'x-empty-prefix': { prefix: '' },
            'a-re': { regex: 'v[0-9]+' },
          },
        },
      ],
      route: [dest('v2')],
    },
  ]);
  t.same(route.match, {
    method: { name: CATCH_ALL },
    headers: [
      { name: 'a-re', stringMatch: { safeRegex: { regex: 'v[0-9]+' } } },
      { name: 'batchJob', stringMatch: { prefix: 'tr' } },
      { name: 'x-any', presentMatch: true },
      { name: 'x-empty-prefix', presentMatch: true },
      { name: 'x-user', stringMatch: { exact: 'admin' } },
    ],
  });
  const [noHeaders] = routesOf([{ match: [{ headers: {} }], route: [dest()] }]);
  t.same(noHeaders.match, { method: { name: CATCH_ALL } }, 'an empty headers map adds nothing');
});

t.test('every match entry is its own route, in order; a route without match catches all', async (t) => {
  const routes = routesOf([
    {
      name: 'two',
      match: [{ method: { exact: 'a' } }, { method: { exact: 'b' }, headers: { h: { exact: '1' } } }],
      route: [dest('v2')],
    },
    { name: 'rest', match: [], route: [dest('v1')] },
  ]);
  t.same(
    routes.map((r) => [r.match, r.route.cluster]),
    [
      [{ method: { name: { exact: 'a' } } }, `outbound|20880|v2|${HOST}`],
      [
        { method: { name: { exact: 'b' } }, headers: [{ name: 'h', stringMatch: { exact: '1' } }] },
        `outbound|20880|v2|${HOST}`,
      ],
      [{ method: { name: CATCH_ALL } }, `outbound|20880|v1|${HOST}`],
    ],
  );
});

t.test('weights', async (t) => {
  const weighted = (route: unknown[]) => routesOf([{ route }])[0].route;
  t.same(weighted([dest('v1', { weight: 20 }), dest('v2', { weight: 80 })]), {
    weightedClusters: {
      clusters: [
        { name: `outbound|20880|v1|${HOST}`, weight: 20 },
        { name: `outbound|20880|v2|${HOST}`, weight: 80 },
      ],
    },
  });
  t.same(
    weighted([dest('v1', { weight: 0 })]),
    { cluster: `outbound|20880|v1|${HOST}` },
    'a lone destination',
  );
  t.same(weighted([dest('v1', { weight: 100 }), dest('v2', { weight: 0 })]), {
    cluster: `outbound|20880|v1|${HOST}`,
  });
  t.same(
    weighted([dest('v1', { weight: 100 }), dest('v2')]),
    { cluster: `outbound|20880|v1|${HOST}` },
    'unset is 0',
  );
  t.same(
    weighted([dest('v1', { weight: 30 }), dest('v2', { weight: 50 }), dest('v1', { weight: 20 })]),
    {
      weightedClusters: {
        clusters: [
          { name: `outbound|20880|v1|${HOST}`, weight: 50 },
          { name: `outbound|20880|v2|${HOST}`, weight: 50 },
        ],
      },
    },
    'the same cluster twice adds up',
  );
  t.same(
    weighted([dest('v1', { weight: 1 }), dest('v2', { weight: 3 })]).weightedClusters.clusters.map(
      (c: any) => c.weight,
    ),
    [1, 3],
    'relative weights need not total 100',
  );
  const vs = virtualService([{ name: 'r', route: [dest('v1', { weight: 0 }), dest('v2', { weight: 0 })] }]);
  t.match(
    generationMessage(t, () => outbound({ virtualService: vs })),
    /spec\.http\[0\]\.route \(route "r"\): all 2 destinations have weight 0/,
  );
  for (const weight of [-1, 1.5, '50', 2 ** 32]) {
    const bad = virtualService([{ route: [dest('v1', { weight }), dest('v2', { weight: 50 })] }]);
    t.match(
      generationMessage(t, () => outbound({ virtualService: bad })),
      /route\[0\]\.weight: must be a non-negative/,
    );
  }
});

t.test('destinations: host resolved in the VirtualService namespace, port, subset', async (t) => {
  const vs = virtualService(
    [
      {
        route: [
          { destination: { host: 'legacy', port: { number: 20881 } }, weight: 10 },
          { destination: { host: 'Other.Example.COM', subset: 'v1' }, weight: 90 },
        ],
      },
    ],
    'apps',
  );
  const [route] = routeConfig({ virtualService: vs }).routes as any[];
  t.same(route.route.weightedClusters.clusters, [
    { name: 'outbound|20881||legacy.apps.svc.cluster.local', weight: 10 },
    { name: 'outbound|20880|v1|other.example.com', weight: 90 },
  ]);
  t.same(
    outbound({ virtualService: vs, destinationRule: DESTINATION_RULE }).sources,
    [{ kind: 'VirtualService', namespace: 'apps', name: 'vs' }],
    'no subset of this service: the DestinationRule is not a source',
  );
  t.same(
    outbound({ virtualService: virtualService([{ route: [dest('v1')] }]), destinationRule: DESTINATION_RULE })
      .sources,
    [
      { kind: 'VirtualService', namespace: 'dubbo', name: 'vs' },
      { kind: 'DestinationRule', namespace: 'dubbo', name: 'dr' },
    ],
  );
  const emptySubset = routesOf([{ route: [{ destination: { host: HOST, subset: '', port: {} } }] }]);
  t.same(emptySubset[0].route, { cluster: `outbound|20880||${HOST}` });
});

t.test('match port: entries for another port are skipped', async (t) => {
  const http = [
    { match: [{ port: 20881, method: { exact: 'a' } }], route: [dest('v2')] },
    { match: [{ port: 20880, method: { exact: 'b' } }, { port: 20881 }], route: [dest('v1')] },
  ];
  const routes = routesOf(http);
  t.same(
    routes.map((r) => r.match.method.name),
    [{ exact: 'b' }],
  );
  const other = routesOf(http, { port: 20881 });
  t.same(
    other.map((r) => [r.match.method.name, r.route.cluster]),
    [
      [{ exact: 'a' }, `outbound|20881|v2|${HOST}`],
      [CATCH_ALL, `outbound|20881|v1|${HOST}`],
    ],
  );
  const none = routesOf([{ match: [{ port: 1 }], route: [dest('v1')] }]);
  t.same(
    none,
    [{ match: { method: { name: CATCH_ALL } }, route: { cluster: `outbound|20880||${HOST}` } }],
    'default',
  );
  t.same(routesOf([]), none, 'an empty http list is the default too');
});

t.test('malformed VirtualServices are GENERATION errors naming the field', async (t) => {
  const cases: [unknown, RegExp][] = [
    ['nope', /VirtualService dubbo\/vs spec\.http: must be a list of routes/],
    [[1], /spec\.http\[0\]: must be an object/],
    [[{ match: {}, route: [dest()] }], /spec\.http\[0\]\.match: must be a list/],
    [[{ match: [3], route: [dest()] }], /spec\.http\[0\]\.match\[0\]: must be an object/],
    [[{ match: [{ port: 'x' }], route: [dest()] }], /match\[0\]\.port: must be a port number/],
    [
      [{ name: 'redir', redirect: { uri: '/x' } }],
      /spec\.http\[0\]\.route \(route "redir"\): must list at least one destination; dubbo routes only forward/,
    ],
    [[{ route: [] }], /must list at least one destination/],
    [[{ route: ['x'] }], /route\[0\]: must be an object with a destination/],
    [[{ route: [{ weight: 1 }] }], /route\[0\]\.destination: must be an object with a host/],
    [[{ route: [{ destination: { host: '' } }] }], /destination\.host: must name the service/],
    [[{ route: [{ destination: { host: HOST, subset: 1 } }] }], /destination\.subset: must be a subset name/],
    [
      [{ route: [{ destination: { host: HOST, port: { number: 0 } } }] }],
      /destination\.port: must be \{number/,
    ],
    [
      [{ route: [{ destination: { host: HOST, port: { number: '1' } } }] }],
      /destination\.port: must be \{number/,
    ],
    [[{ match: [{ method: 'sayHello' }], route: [dest()] }], /match\[0\]\.method: must be a string match/],
    [[{ match: [{ method: { exact: 'a', prefix: 'b' } }], route: [dest()] }], /sets exact and prefix/],
    [[{ match: [{ method: { suffix: 'a' } }], route: [dest()] }], /unknown string match field "suffix"/],
    [[{ match: [{ method: { exact: 1 } }], route: [dest()] }], /method\.exact: must be a string/],
    [[{ match: [{ method: { regex: '' } }], route: [dest()] }], /method\.regex: must not be empty/],
    [
      [{ match: [{ method: { regex: '(?=a)b' } }], route: [dest()] }],
      /method\.regex: "\(\?=a\)b" is not valid RE2/,
    ],
    [[{ match: [{ headers: [] }], route: [dest()] }], /match\[0\]\.headers: must be a map/],
    [[{ match: [{ headers: { h: 'x' } }], route: [dest()] }], /headers\.h: must be a string match/],
    [
      [{ match: [{ headers: { h: { regex: '\\' } } }], route: [dest()] }],
      /headers\.h\.regex: .* is not valid RE2/,
    ],
    [[{ match: [{ headers: { 'a\nb': { exact: 'x' } } }], route: [dest()] }], /is not a valid header name/],
  ];
  for (const [http, pattern] of cases) {
    t.match(
      generationMessage(t, () => outbound({ virtualService: virtualService(http) })),
      pattern,
    );
  }
});

t.test('fuzz: a mutated VirtualService never throws anything but GENERATION errors', async (t) => {
  const base = virtualService([
    {
      name: 'r',
      match: [
        { method: { exact: 'sayHello' }, headers: { 'x-user': { exact: 'admin' }, b: { regex: 'a+' } } },
        { method: { prefix: 'get' }, port: 20880 },
      ],
      route: [
        dest('v1', { weight: 20 }),
        { destination: { host: 'x', subset: 'v2', port: { number: 1 } }, weight: 80 },
      ],
    },
    { route: [dest()] },
  ]);
  const random = rng(7);
  let failures = 0;
  let generated = 0;
  for (let i = 0; i < 3000; i++) {
    let vs = base;
    const rounds = 1 + Math.floor(random() * 3);
    for (let r = 0; r < rounds; r++) vs = mutate(vs, random) as JsonRecord;
    try {
      const plan = outbound({ virtualService: vs, destinationRule: DESTINATION_RULE });
      generated++;
      const problems = filterProblems(plan);
      if (problems.length > 0) {
        failures++;
        t.same(problems, [], `schema-valid for ${JSON.stringify(vs.spec)}`);
      }
    } catch (err) {
      if (!(err instanceof BreezeError && err.code === 'GENERATION')) {
        failures++;
        t.fail(`unexpected ${String(err)} for ${JSON.stringify(vs.spec)}`);
      }
    }
    if (failures > 5) break;
  }
  t.ok(generated > 100, `some mutations still generate (${generated})`);
  t.equal(failures, 0);
});
