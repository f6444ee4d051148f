import t from 'tap';
import { BreezeError } from '../../src/errors.js';
import type { JsonRecord } from '../../src/model/json.js';
import { generator } from '../../src/protocols/thrift/index.js';
import {
  filterProblems,
  generationMessage,
  mutate,
  portContext,
  rng,
  type ContextOptions,
} from './portcontext.js';

const HOST = 'thrift-sample-server.thrift.svc.cluster.local';
const ROUTER = {
  name: 'envoy.filters.thrift.router',
  typedConfig: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.router.v3.Router',
  },
};
const dest = (subset?: string, extra: JsonRecord = {}): JsonRecord => ({
  destination: { host: 'thrift-sample-server', ...(subset === undefined ? {} : { subset }) },
  ...extra,
});

function vs(http: unknown): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'thrift-vs', namespace: 'thrift' },
    spec: { hosts: ['thrift-sample-server'], http },
  };
}

function ctx(o: ContextOptions = {}) {
  return portContext({
    protocol: 'thrift',
    host: HOST,
    namespace: 'thrift',
    port: 9090,
    annotations: {},
    ...o,
  });
}

function routesOf(http: unknown): any[] {
  return (generator.outbound(ctx({ virtualService: vs(http) })).filter.typedConfig as any).routeConfig.routes;
}

t.test('no VirtualService: every method to the service cluster', async (t) => {
  const plan = generator.outbound(ctx());
  t.equal(plan.operation, 'REPLACE');
  t.equal(plan.filter.name, 'envoy.filters.network.thrift_proxy');
  t.same(plan.sources, []);
  t.same(plan.filter.typedConfig, {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy',
    statPrefix: `outbound|9090||${HOST}`,
    routeConfig: {
      name: `outbound|9090||${HOST}`,
      routes: [{ match: { methodName: '' }, route: { cluster: `outbound|9090||${HOST}` } }],
      validateClusters: false,
    },
    thriftFilters: [ROUTER],
  });
  t.same(filterProblems(plan), []);
});

t.test('inbound: every method to the workload port', async (t) => {
  const plan = generator.inbound(ctx({ targetPort: 9091 }));
  t.same(plan.filter.typedConfig, {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy',
    statPrefix: 'inbound|9091||',
    routeConfig: {
      name: 'inbound|9091||',
      routes: [{ match: { methodName: '' }, route: { cluster: 'inbound|9091||' } }],
      validateClusters: false,
    },
    thriftFilters: [ROUTER],
  });
  t.same(filterProblems(plan), []);
  t.equal((generator.inbound(ctx()).filter.typedConfig as any).statPrefix, 'inbound|9090||');
});

t.test('exact methods become methodName routes, one per match entry; the rest is weighted', async (t) => {
  const plan = generator.outbound(
    ctx({
      virtualService: vs([
        { match: [{ method: { exact: 'ping' } }], route: [dest('v2')] },
        {
          match: [
            { method: { exact: 'add' }, headers: { 'x-user': { exact: 'a' } } },
            { method: { exact: 'mul' } },
          ],
          route: [dest('v1')],
        },
        { match: [{ method: { prefix: '' } }, { method: {} }, { uri: { prefix: '/' } }], route: [dest()] },
        { route: [dest('v1', { weight: 30 }), dest('v2', { weight: 70 })] },
      ]),
    }),
  );
  t.same((plan.filter.typedConfig as any).routeConfig.routes, [
    { match: { methodName: 'ping' }, route: { cluster: `outbound|9090|v2|${HOST}` } },
    { match: { methodName: 'add' }, route: { cluster: `outbound|9090|v1|${HOST}` } },
    { match: { methodName: 'mul' }, route: { cluster: `outbound|9090|v1|${HOST}` } },
    { match: { methodName: '' }, route: { cluster: `outbound|9090||${HOST}` } },
    { match: { methodName: '' }, route: { cluster: `outbound|9090||${HOST}` } },
    { match: { methodName: '' }, route: { cluster: `outbound|9090||${HOST}` } },
    {
      match: { methodName: '' },
      route: {
        weightedClusters: {
          clusters: [
            { name: `outbound|9090|v1|${HOST}`, weight: 30 },
            { name: `outbound|9090|v2|${HOST}`, weight: 70 },
          ],
        },
      },
    },
  ]);
  t.same(plan.sources, [{ kind: 'VirtualService', namespace: 'thrift', name: 'thrift-vs' }]);
  t.same(filterProblems(plan), [], 'headers are ignored, so nothing invalid is emitted');
});

t.test('prefix and regex methods cannot be expressed: a clear error naming route and match', async (t) => {
  const http = (method: unknown) => [
    { match: [{ method: { exact: 'ping' } }], route: [dest()] },
    { name: 'getters', match: [{ method: { exact: 'x' } }, { method }], route: [dest()] },
  ];
  t.equal(
    generationMessage(t, () => routesOf(http({ prefix: 'get' }))),
    'VirtualService thrift/thrift-vs spec.http[1].match[1].method (route "getters"): prefix "get" cannot be ' +
      'expressed in a Thrift route, which matches only an exact method name; list the methods as exact ' +
      'matches, one match entry each',
  );
  t.match(
    generationMessage(t, () => routesOf(http({ regex: 'get.*' }))),
    /regex "get\.\*" cannot be expressed/,
  );
  t.match(
    generationMessage(t, () => routesOf(http({ exact: '' }))),
    /match\[1\]\.method \(route "getters"\): an empty exact method name cannot be expressed/,
  );
  t.match(
    generationMessage(t, () => routesOf(http({ regex: '(?<=a)' }))),
    /is not valid RE2/,
  );
});

t.test('weights and malformed shapes are shared with Dubbo', async (t) => {
  t.match(
    generationMessage(t, () => routesOf([{ route: [dest('v1', { weight: 0 }), dest('v2')] }])),
    /all 2 destinations have weight 0/,
  );
  t.match(
    generationMessage(t, () => routesOf([{ directResponse: { status: 200 } }])),
    /must list at least one destination; thrift routes only forward/,
  );
  t.same(routesOf([{ route: [dest('v1', { weight: 5 }), dest('v1', { weight: 5 })] }])[0].route, {
    cluster: `outbound|9090|v1|${HOST}`,
  });
});

t.test('fuzz: a mutated VirtualService never throws anything but GENERATION errors', async (t) => {
  const base = vs([
    { match: [{ method: { exact: 'ping' } }, { method: { prefix: '' } }], route: [dest('v2')] },
    { route: [dest('v1', { weight: 40 }), { destination: { host: 'x', port: { number: 9 } }, weight: 60 }] },
  ]);
  const random = rng(11);
  let failures = 0;
  for (let i = 0; i < 2000 && failures <= 5; i++) {
    const mutated = mutate(base, random) as JsonRecord;
    try {
      const problems = filterProblems(generator.outbound(ctx({ virtualService: mutated })));
      if (problems.length > 0) {
        failures++;
        t.same(problems, [], `schema-valid for ${JSON.stringify(mutated.spec)}`);
      }
    } catch (err) {
      if (!(err instanceof BreezeError && err.code === 'GENERATION')) {
        failures++;
        t.fail(`unexpected ${String(err)} for ${JSON.stringify(mutated.spec)}`);
      }
    }
  }
  t.equal(failures, 0);
});
