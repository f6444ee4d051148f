import t, { type Test } from 'tap';
import fc from 'fast-check';
import { isBreezeError } from '../../src/errors.js';
import type { JsonRecord } from '../../src/model/json.js';
import type { ServicePort, ServiceView } from '../../src/model/service.js';
import { parseEndpoint } from '../../src/protocols/redis/cluster.js';
import { generator as redis } from '../../src/protocols/redis/index.js';
import { destinationPort, READ_POLICY } from '../../src/protocols/redis/routes.js';
import { generator as kafka } from '../../src/protocols/kafka/index.js';
import { generator as zookeeper } from '../../src/protocols/zookeeper/index.js';
import type { FilterPlan, PortContext } from '../../src/protocols/types.js';

const HOST = 'redis.redis.svc.cluster.local';
const PASSWORD = 'Sup3r-S3cret-Value';

function service(
  name: string,
  ports: [number, string][],
  namespace = 'redis',
  kind: ServiceView['kind'] = 'Service',
): ServiceView {
  return {
    kind,
    namespace,
    name,
    hosts: [`${name}.${namespace}.svc.cluster.local`],
    addresses: ['10.96.0.1'],
    ports: ports.map(([number, portName]) => ({
      number,
      name: portName,
      protocol: portName.startsWith('tcp-redis') ? 'redis' : undefined,
      targetPort: undefined,
    })),
    workloadSelector: { app: name },
    annotations: {},
  };
}

interface Options {
  port?: Partial<ServicePort>;
  redisService?: JsonRecord;
  redisDestination?: JsonRecord;
  secrets?: Record<string, Record<string, string>>;
  services?: ServiceView[];
}

function ctxFor(o: Options = {}): PortContext {
  const self = service('redis', [[6379, 'tcp-redis']]);
  const port: ServicePort = {
    number: 6379,
    name: 'tcp-redis',
    protocol: 'redis',
    targetPort: undefined,
    ...o.port,
  };
  const all = [self, ...(o.services ?? [])];
  return {
    service: { ...self, ports: [port] },
    host: HOST,
    port,
    protocol: 'redis',
    virtualService: undefined,
    destinationRule: undefined,
    redisService: o.redisService,
    redisDestination: o.redisDestination,
    secret: (ns, name) => o.secrets?.[`${ns}/${name}`],
    servicesFor: (fqdn) => all.filter((s) => s.hosts.includes(fqdn)),
    options: { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' },
  };
}

function redisService(spec: unknown, namespace = 'redis'): JsonRecord {
  return {
    apiVersion: 'redis.aeraki.io/v1alpha1',
    kind: 'RedisService',
    metadata: { name: 'redis', namespace },
    spec,
  };
}

function redisDestination(spec: unknown): JsonRecord {
  return {
    apiVersion: 'redis.aeraki.io/v1alpha1',
    kind: 'RedisDestination',
    metadata: { name: 'redis', namespace: 'redis' },
    spec,
  };
}

function config(plan: FilterPlan): any {
  return plan.filter.typedConfig;
}

/** The GENERATION error message of `fn`, failing the test on success or any other error. */
function generationError(t: Test, fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    t.ok(isBreezeError(err, 'GENERATION'), 'a GENERATION error');
    return err instanceof Error ? err.message : String(err);
  }
  t.fail('expected a GENERATION error');
  return '';
}

t.test('kafka and zookeeper: stat prefixes, INSERT_BEFORE, kafka wrapped in a TypedStruct', async (t) => {
  const ctx = {
    ...ctxFor({ port: { number: 9092, name: 'tcp-kafka', targetPort: 19092 } }),
    host: 'k.kafka.svc',
  };
  const out = kafka.outbound(ctx);
  t.equal(out.operation, 'INSERT_BEFORE');
  t.same(out.filter, {
    name: 'envoy.filters.network.kafka_broker',
    typedConfig: {
      '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
      typeUrl: 'type.googleapis.com/envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker',
      value: { statPrefix: 'outbound|9092||k.kafka.svc' },
    },
  });
  t.same(config(kafka.inbound(ctx)).value, { statPrefix: 'inbound|19092||' }, 'inbound uses the target port');
  const zk = zookeeper.outbound({ ...ctx, port: { ...ctx.port, number: 2181 } });
  t.equal(zk.operation, 'INSERT_BEFORE');
  t.same(config(zk), {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.zookeeper_proxy.v3.ZooKeeperProxy',
    statPrefix: 'outbound|2181||k.kafka.svc',
  });
  t.same(config(zookeeper.inbound(ctxFor())), {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.zookeeper_proxy.v3.ZooKeeperProxy',
    statPrefix: 'inbound|6379||',
  });
});

t.test('redis without RedisService or RedisDestination: catch-all, no cluster patches', async (t) => {
  const out = redis.outbound(ctxFor());
  t.equal(out.operation, 'REPLACE');
  t.equal(out.filter.name, 'envoy.filters.network.redis_proxy');
  t.same(config(out), {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy',
    statPrefix: `outbound|6379||${HOST}`,
    settings: { opTimeout: '60s' },
    prefixRoutes: { catchAllRoute: { cluster: `outbound|6379||${HOST}` } },
  });
  t.same(out.extraPatches, []);
  const inbound = redis.inbound(ctxFor({ port: { targetPort: 16379 } }));
  t.same(config(inbound).settings, { opTimeout: '3600s' });
  t.same(config(inbound).prefixRoutes, { catchAllRoute: { cluster: 'inbound|16379||' } });
  t.equal(config(inbound).statPrefix, 'inbound|16379||');
  t.equal(inbound.extraPatches, undefined, 'the inbound filter never touches clusters');
});

t.test('route port resolution', async (t) => {
  const one = service('one', [[7000, 'tcp-other']]);
  const byNumber = service('bynumber', [
    [9121, 'tcp-redis'],
    [6379, 'tcp-x'],
  ]);
  const byName = service('byname', [
    [9121, 'http-metrics'],
    [7001, 'tcp-redis'],
  ]);
  const neither = service('neither', [
    [9121, 'http-metrics'],
    [7002, 'tcp-x'],
  ]);
  const elsewhere = service('one', [[7100, 'tcp-redis']], 'other');
  const ctx = ctxFor({ services: [one, byNumber, byName, neither, elsewhere] });
  const fqdn = (s: ServiceView): string => s.hosts[0]!;
  t.equal(destinationPort(ctx, fqdn(one)).port, 7000, 'the only port');
  t.equal(
    destinationPort(ctx, fqdn(byNumber)).port,
    6379,
    'a port with the listen number wins over one with the name',
  );
  t.equal(destinationPort(ctx, fqdn(byName)).port, 7001, "the port with the listen port's name");
  t.equal(destinationPort(ctx, fqdn(neither)).port, 6379, 'else the listen port');
  t.equal(destinationPort(ctx, 'unknown.redis.svc.cluster.local').port, 6379, 'no service: the listen port');
  t.same(destinationPort(ctx, fqdn(one)).source, { kind: 'Service', namespace: 'redis', name: 'one' });
  t.equal(destinationPort(ctx, fqdn(elsewhere)).port, 7100, 'a service in another namespace');

  // Two services claim a host: the one in the service's namespace, then by kind/namespace/name,
  // whatever order the cache returns them in.
  const a = { ...service('shared', [[7200, 'tcp-redis']], 'zzz'), hosts: ['shared.example.com'] };
  const b = {
    ...service('shared', [[7300, 'tcp-redis']], 'redis', 'ServiceEntry'),
    hosts: ['shared.example.com'],
  };
  const c = { ...service('shared', [[7400, 'tcp-redis']], 'aaa'), hosts: ['shared.example.com'] };
  for (const order of [
    [a, b, c],
    [c, b, a],
  ]) {
    t.equal(destinationPort(ctxFor({ services: order }), 'shared.example.com').port, 7300);
    t.equal(
      destinationPort(ctxFor({ services: order.filter((s) => s !== b) }), 'shared.example.com').port,
      7400,
    );
  }

  // Through a RedisService: explicit port wins, 0 means unset, short hosts resolve in the
  // RedisService's namespace, and a mirror resolves its OWN destination.
  const out = redis.outbound(
    ctxFor({
      services: [one, byName],
      redisService: redisService({
        host: [HOST],
        redis: [
          { match: { key: { prefix: 'a:' } }, route: { host: 'one', port: 8000 } },
          { match: { key: { prefix: 'b:' } }, route: { host: 'one', port: 0 } },
          {
            route: { host: 'byname.redis.svc.cluster.local' },
            mirror: [
              { route: { host: 'one' }, percentage: { value: 100 } },
              { route: { host: 'x.example.com' } },
            ],
          },
        ],
      }),
    }),
  );
  const routes = config(out).prefixRoutes;
  t.same(routes.routes, [
    { prefix: 'a:', cluster: 'outbound|8000||one.redis.svc.cluster.local' },
    { prefix: 'b:', cluster: 'outbound|7000||one.redis.svc.cluster.local' },
  ]);
  t.same(routes.catchAllRoute, {
    cluster: 'outbound|7001||byname.redis.svc.cluster.local',
    requestMirrorPolicy: [
      {
        cluster: 'outbound|7000||one.redis.svc.cluster.local',
        runtimeFraction: { defaultValue: { numerator: 1000000, denominator: 'MILLION' } },
      },
      { cluster: 'outbound|6379||x.example.com' },
    ],
  });
  t.same(
    out.sources?.map((s) => `${s.kind}/${s.namespace}/${s.name}`),
    ['RedisService/redis/redis', 'Service/redis/one', 'Service/redis/byname', 'Service/redis/one'],
    'the RedisService and the services whose ports were read',
  );
});

t.test('read policy: every name maps to the same Envoy name (PREFER_REPLICA included)', async (t) => {
  for (const policy of ['MASTER', 'PREFER_MASTER', 'REPLICA', 'PREFER_REPLICA', 'ANY']) {
    const out = redis.outbound(
      ctxFor({ redisService: redisService({ host: [HOST], settings: { readPolicy: policy } }) }),
    );
    t.equal(config(out).settings.readPolicy, policy);
  }
  t.equal(READ_POLICY.PREFER_REPLICA, 'PREFER_REPLICA');
  const none = redis.outbound(ctxFor({ redisService: redisService({ host: [HOST] }) }));
  t.same(config(none).settings, { opTimeout: '60s' }, 'no readPolicy when the RedisService sets none');
  for (const bad of ['prefer_replica', 'PRIMARY', 3]) {
    const message = generationError(t, () =>
      redis.outbound(ctxFor({ redisService: redisService({ host: [HOST], settings: { readPolicy: bad } }) })),
    );
    t.match(message, /^RedisService redis\/redis spec\.settings\.readPolicy /);
  }
});

t.test('settings, faults and routes are copied with Envoy field names', async (t) => {
  const out = redis.outbound(
    ctxFor({
      redisService: redisService({
        host: [HOST],
        settings: {
          caseInsensitive: true,
          opTimeout: '1.5s',
          enableCommandStats: true,
          maxBufferSizeBeforeFlush: 0,
          bufferFlushTimeout: '0.003s',
          maxUpstreamUnknownConnections: 0,
          enableHashtagging: false,
          enableRedirection: true,
        },
        redis: [{ match: { key: {} }, route: { host: 'redis' } }],
        faults: [
          { percentage: { value: 33.3333 } },
          { type: 'ERROR', percentage: { value: 100 }, commands: [' get '] },
        ],
      }),
    }),
  );
  const c = config(out);
  t.same(c.settings, {
    opTimeout: '1.5s',
    enableRedirection: true,
    bufferFlushTimeout: '0.003s',
    maxUpstreamUnknownConnections: 0,
    enableCommandStats: true,
  });
  t.same(
    c.prefixRoutes,
    {
      caseInsensitive: true,
      routes: [{ prefix: '', cluster: `outbound|6379||${HOST}` }],
    },
    'a match.key without prefix is a route with an empty prefix; no catch-all',
  );
  t.same(c.faults, [
    { faultType: 'DELAY', faultEnabled: { defaultValue: { numerator: 333333, denominator: 'MILLION' } } },
    {
      faultType: 'ERROR',
      faultEnabled: { defaultValue: { numerator: 1000000, denominator: 'MILLION' } },
      commands: ['get'],
    },
  ]);
});

t.test('routes Envoy would reject are GENERATION errors', async (t) => {
  const gen = (spec: unknown): string =>
    generationError(t, () =>
      redis.outbound(ctxFor({ redisService: redisService({ host: [HOST], ...(spec as object) }) })),
    );
  t.match(
    gen({ redis: [{ route: { host: 'a' } }, { route: { host: 'b' } }] }),
    /spec\.redis\[1\] is a second catch-all/,
  );
  t.match(
    gen({
      redis: [
        { match: { key: { prefix: 'k:' } }, route: { host: 'a' } },
        { match: { key: { prefix: 'k:' } }, route: { host: 'b' } },
      ],
    }),
    /spec\.redis\[1\]\.match\.key\.prefix "k:" is already used by spec\.redis\[0\]/,
  );
  t.match(
    gen({
      settings: { caseInsensitive: true },
      redis: [
        { match: { key: { prefix: 'K:' } }, route: { host: 'a' } },
        { match: { key: { prefix: 'k:' } }, route: { host: 'b' } },
      ],
    }),
    /already used/,
    'prefixes compared case-insensitively when caseInsensitive',
  );
  t.match(
    gen({ redis: [{ match: { key: { prefix: 'x'.repeat(1001) } }, route: { host: 'a' } }] }),
    /1000 bytes/,
  );
  t.match(gen({ redis: [{ match: { key: { prefix: 'a' } } }] }), /spec\.redis\[0\]\.route is required/);
  t.match(gen({ redis: [{ route: { host: '*.wild' } }] }), /not a DNS name/);
  t.match(gen({ redis: [{ route: { host: 'a', port: 70000 } }] }), /route\.port must be an integer/);
  t.match(
    gen({ faults: [{ type: 'DELAY', delay: '500ms', percentage: { value: 1 } }] }),
    /faults\[0\]\.delay must be a protobuf duration/,
  );
  t.match(gen({ faults: [{ type: 'ERROR' }] }), /faults\[0\]\.percentage is required/);
  t.match(
    gen({ faults: [{ type: 'ABORT', percentage: { value: 1 } }] }),
    /faults\[0\]\.type must be one of DELAY, ERROR/,
  );
  t.match(
    gen({ redis: [{ route: { host: 'a' }, mirror: [{ route: { host: 'b' }, percentage: { value: 0 } }] }] }),
    /percentage\.value must be a number greater than 0/,
  );
  t.match(gen({ settings: { opTimeout: 60 } }), /spec\.settings\.opTimeout must be a protobuf duration/);
});

t.test('downstream auth: Secret field fallbacks, trimming, plain', async (t) => {
  const withAuth = (auth: unknown, secrets?: Options['secrets']): any =>
    config(
      redis.outbound(ctxFor({ secrets, redisService: redisService({ host: [HOST], settings: { auth } }) })),
    );

  let c = withAuth(
    { secret: { name: 's' } },
    { 'redis/s': { password: ' pw\n', token: 'tok', username: 'u\n' } },
  );
  t.same(c.downstreamAuthPasswords, [{ inlineString: 'pw' }], 'password first, trimmed');
  t.same(c.downstreamAuthUsername, { inlineString: 'u' }, 'username read from the default key');
  t.notOk('downstreamAuthPassword' in c, 'never the deprecated singular field');

  c = withAuth({ secret: { name: 's' } }, { 'redis/s': { token: 'tok' } });
  t.same(c.downstreamAuthPasswords, [{ inlineString: 'tok' }], 'token when there is no password');
  t.notOk('downstreamAuthUsername' in c);

  c = withAuth(
    { secret: { name: 's', passwordField: 'pass', usernameField: 'user' } },
    { 'redis/s': { password: 'no', pass: 'yes', user: 'me', username: 'not-me' } },
  );
  t.same(c.downstreamAuthPasswords, [{ inlineString: 'yes' }]);
  t.same(c.downstreamAuthUsername, { inlineString: 'me' });

  c = withAuth(
    { secret: { name: 's', passwordField: '' } },
    { 'redis/s': { password: 'p', username: '  ' } },
  );
  t.same(c.downstreamAuthPasswords, [{ inlineString: 'p' }], 'empty passwordField means the default');
  t.notOk('downstreamAuthUsername' in c, 'a blank default username is no username');

  c = withAuth({ plain: { password: ' spaced ', username: 'u' } });
  t.same(c.downstreamAuthPasswords, [{ inlineString: ' spaced ' }], 'plain passwords are used as written');
  t.same(c.downstreamAuthUsername, { inlineString: 'u' });

  const out = redis.outbound(
    ctxFor({
      secrets: { 'redis/s': { password: 'p' } },
      redisService: redisService({ host: [HOST], settings: { auth: { secret: { name: 's' } } } }),
    }),
  );
  t.same(out.sources, [
    { kind: 'RedisService', namespace: 'redis', name: 'redis' },
    { kind: 'Secret', namespace: 'redis', name: 's' },
  ]);
});

t.test('auth problems are GENERATION errors that never show a value', async (t) => {
  const secrets = {
    'redis/s': { password: PASSWORD, other: PASSWORD, blank: ' \n' },
    'other/t': { token: PASSWORD },
  };
  const cases: [unknown, RegExp][] = [
    [
      { secret: { name: 'missing' } },
      /^Secret redis\/missing \(spec\.settings\.auth\.secret of RedisService redis\/redis\) not found$/,
    ],
    [{ secret: { name: 't' } }, /Secret redis\/t .* not found/],
    [{ secret: { name: 's', passwordField: 'nope' } }, /has no key "nope" \(passwordField\)/],
    [{ secret: { name: 's', usernameField: 'nope' } }, /has no key "nope" \(usernameField\)/],
    [{ secret: { name: 's', passwordField: 'blank' } }, /the password in key "blank" is empty/],
    [{ secret: { name: 's', usernameField: 'blank' } }, /the username in key "blank" is empty/],
    [{ secret: {} }, /secret\.name is required/],
    [{ secret: { name: 42 } }, /secret\.name must be a string/],
    [{ secret: { name: 's' }, plain: { password: PASSWORD } }, /sets both secret and plain/],
    [{}, /sets neither secret nor plain/],
    [{ plain: { password: '' } }, /plain\.password must be a non-empty string/],
    [{ plain: { password: [PASSWORD] } }, /plain\.password must be a non-empty string/],
    [{ plain: { password: 'x', username: { v: PASSWORD } } }, /plain\.username must be a string/],
    [PASSWORD, /spec\.settings\.auth must be an object/],
  ];
  for (const [auth, expected] of cases) {
    const message = generationError(t, () =>
      redis.outbound(ctxFor({ secrets, redisService: redisService({ host: [HOST], settings: { auth } }) })),
    );
    t.match(message, expected);
    t.notMatch(message, PASSWORD, 'no secret value in the message');
  }
  // A Secret without password or token.
  const message = generationError(t, () =>
    redis.outbound(
      ctxFor({
        secrets: { 'redis/s': { pwd: PASSWORD } },
        redisService: redisService({ host: [HOST], settings: { auth: { secret: { name: 's' } } } }),
      }),
    ),
  );
  t.match(message, /has neither a "password" nor a "token" key/);
  t.notMatch(message, PASSWORD);
});

t.test('RedisDestination: cluster patches', async (t) => {
  const patchesOf = (spec: unknown, secrets?: Options['secrets']): any[] =>
    redis.outbound(ctxFor({ secrets, redisDestination: redisDestination(spec) })).extraPatches as any[];

  const minimal = patchesOf({ host: HOST });
  t.same(minimal[0], {
    applyTo: 'CLUSTER',
    match: { cluster: { name: `outbound|6379||${HOST}` } },
    patch: { operation: 'REMOVE' },
  });
  t.same(minimal[1].patch.value.edsClusterConfig, { edsConfig: { ads: {}, resourceApiVersion: 'V3' } });
  t.equal(minimal[1].patch.value.type, 'EDS');
  t.equal(minimal[1].patch.value.lbPolicy, 'MAGLEV');
  t.equal(minimal[1].patch.value.connectTimeout, '10s');
  t.notOk('loadAssignment' in minimal[1].patch.value);

  const cluster = patchesOf(
    {
      host: HOST,
      trafficPolicy: {
        connectionPool: {
          tcp: { maxConnections: 0, tcpKeepalive: { time: '0.5s', interval: '0s', probes: 0 } },
          redis: { mode: 'CLUSTER', auth: { secret: { name: 's' } } },
        },
      },
    },
    { 'redis/s': { token: 'tok\n' } },
  )[1].patch.value;
  t.same(cluster.clusterType, {
    name: 'envoy.clusters.redis',
    typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.clusters.redis.v3.RedisClusterConfig' },
  });
  t.equal(cluster.lbPolicy, 'CLUSTER_PROVIDED');
  t.notOk('type' in cluster || 'edsClusterConfig' in cluster);
  t.same(
    cluster.loadAssignment.endpoints[0].lbEndpoints,
    [{ endpoint: { address: { socketAddress: { address: HOST, portValue: 6379 } } } }],
    'no discovery endpoints: the service host and listen port',
  );
  t.equal(
    cluster.circuitBreakers.thresholds[0].maxConnections,
    4294967295,
    'maxConnections 0 keeps the default',
  );
  t.same(
    cluster.upstreamConnectionOptions,
    { tcpKeepalive: { keepaliveTime: 1 } },
    'sub-second rounds up; 0 omitted',
  );
  t.same(cluster.typedExtensionProtocolOptions, {
    'envoy.filters.network.redis_proxy': {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions',
      authPassword: { inlineString: 'tok' },
    },
  });

  const gen = (spec: unknown): string =>
    generationError(t, () => redis.outbound(ctxFor({ redisDestination: redisDestination(spec) })));
  const pool = (p: unknown): unknown => ({ host: HOST, trafficPolicy: { connectionPool: p } });
  t.match(gen(pool({ tcp: { connectTimeout: '0s' } })), /connectTimeout must be greater than 0/);
  t.match(gen(pool({ tcp: { connectTimeout: '1m' } })), /connectTimeout must be a protobuf duration/);
  t.match(gen(pool({ redis: { mode: 'cluster' } })), /redis\.mode must be PROXY or CLUSTER/);
  t.match(
    gen(pool({ redis: { mode: 'CLUSTER', discoveryEndpoints: ['a:b'] } })),
    /discoveryEndpoints\[0\] "a:b" has port "b"/,
  );
  t.match(
    gen(pool({ redis: { mode: 'CLUSTER', discoveryEndpoints: [6379] } })),
    /must be a host\[:port\] string/,
  );
  t.match(gen(pool({ tcp: { maxConnections: -1 } })), /maxConnections must be an integer/);
  t.match(
    gen(pool({ redis: { auth: { secret: { name: 'nope' } } } })),
    /^Secret redis\/nope \(spec\.trafficPolicy\.connectionPool\.redis\.auth\.secret of RedisDestination redis\/redis\) not found$/,
  );
});

t.test('CLUSTER-mode seed endpoints', async (t) => {
  t.same(parseEndpoint('redis-0.redis:7000', 6379), { host: 'redis-0.redis', port: 7000 });
  t.same(parseEndpoint('redis-0.redis', 6379), { host: 'redis-0.redis', port: 6379 });
  t.same(parseEndpoint('10.0.0.1:7000', 6379), { host: '10.0.0.1', port: 7000 });
  t.same(parseEndpoint('[fd00::1]:7000', 6379), { host: 'fd00::1', port: 7000 });
  t.same(parseEndpoint('[fd00::1]', 6379), { host: 'fd00::1', port: 6379 });
  t.same(parseEndpoint('fd00::1', 6379), { host: 'fd00::1', port: 6379 });
  for (const bad of [
    '',
    'a:b:c',
    '[x]:1',
    'host:0',
    'host:65536',
    'host:',
    '300.1.1.1',
    'under_score:1',
    '[fd00::1]:',
  ]) {
    t.type(parseEndpoint(bad, 6379), 'string', `${JSON.stringify(bad)} is refused`);
  }
});

t.test('odd shapes only ever give GENERATION errors, never a secret value', async (t) => {
  const secretData = fc.dictionary(
    fc.constantFrom('password', 'token', 'username', 'pass', 'user'),
    fc.oneof(fc.constant(PASSWORD), fc.constant(` ${PASSWORD}\n`), fc.constant(''), fc.constant(' ')),
  );
  const anyAuth = fc.oneof(
    fc.anything(),
    fc.record(
      {
        secret: fc.oneof(
          fc.anything(),
          fc.record(
            {
              name: fc.oneof(fc.constant('s'), fc.constant('missing'), fc.anything()),
              passwordField: fc.oneof(fc.constantFrom('password', 'token', 'pass', ''), fc.anything()),
              usernameField: fc.oneof(fc.constantFrom('username', 'user', ''), fc.anything()),
            },
            { requiredKeys: [] },
          ),
        ),
        plain: fc.oneof(
          fc.anything(),
          fc.record({ password: fc.anything(), username: fc.anything() }, { requiredKeys: [] }),
        ),
      },
      { requiredKeys: [] },
    ),
  );
  const dest = fc.oneof(
    fc.anything(),
    fc.record(
      {
        host: fc.oneof(fc.constantFrom('one', 'redis', 'a.b.c', '*.x', ''), fc.anything()),
        port: fc.oneof(fc.integer({ min: -1, max: 70000 }), fc.anything()),
      },
      { requiredKeys: [] },
    ),
  );
  const route = fc.oneof(
    fc.anything(),
    fc.record(
      {
        match: fc.oneof(
          fc.anything(),
          fc.record(
            {
              key: fc.oneof(
                fc.anything(),
                fc.record(
                  { prefix: fc.oneof(fc.string(), fc.anything()), removePrefix: fc.anything() },
                  { requiredKeys: [] },
                ),
              ),
            },
            { requiredKeys: [] },
          ),
        ),
        route: dest,
        mirror: fc.oneof(
          fc.anything(),
          fc.array(
            fc.oneof(
              fc.anything(),
              fc.record(
                {
                  route: dest,
                  percentage: fc.oneof(
                    fc.anything(),
                    fc.record({ value: fc.oneof(fc.double(), fc.anything()) }),
                  ),
                  excludeReadCommands: fc.anything(),
                },
                { requiredKeys: [] },
              ),
            ),
          ),
        ),
      },
      { requiredKeys: [] },
    ),
  );
  const rsSpec = fc.oneof(
    fc.anything(),
    fc.record(
      {
        host: fc.anything(),
        settings: fc.oneof(
          fc.anything(),
          fc.record(
            {
              opTimeout: fc.oneof(fc.constantFrom('1s', '0.5s', '1m', '-1s', ''), fc.anything()),
              readPolicy: fc.oneof(fc.constantFrom(...Object.keys(READ_POLICY), 'x'), fc.anything()),
              caseInsensitive: fc.anything(),
              maxBufferSizeBeforeFlush: fc.anything(),
              auth: anyAuth,
            },
            { requiredKeys: [] },
          ),
        ),
        redis: fc.oneof(fc.anything(), fc.array(route, { maxLength: 4 })),
        faults: fc.oneof(fc.anything(), fc.array(fc.anything(), { maxLength: 3 })),
      },
      { requiredKeys: [] },
    ),
  );
  const rdSpec = fc.oneof(
    fc.anything(),
    fc.record(
      {
        host: fc.anything(),
        trafficPolicy: fc.oneof(
          fc.anything(),
          fc.record({
            connectionPool: fc.oneof(
              fc.anything(),
              fc.record(
                {
                  tcp: fc.oneof(
                    fc.anything(),
                    fc.record(
                      {
                        connectTimeout: fc.anything(),
                        maxConnections: fc.anything(),
                        tcpKeepalive: fc.anything(),
                      },
                      { requiredKeys: [] },
                    ),
                  ),
                  redis: fc.oneof(
                    fc.anything(),
                    fc.record(
                      {
                        mode: fc.oneof(fc.constantFrom('PROXY', 'CLUSTER'), fc.anything()),
                        discoveryEndpoints: fc.oneof(
                          fc.anything(),
                          fc.array(fc.oneof(fc.string(), fc.anything()), { maxLength: 3 }),
                        ),
                        auth: anyAuth,
                      },
                      { requiredKeys: [] },
                    ),
                  ),
                },
                { requiredKeys: [] },
              ),
            ),
          }),
        ),
      },
      { requiredKeys: [] },
    ),
  );
  let generated = 0;
  let refused = 0;
  fc.assert(
    fc.property(rsSpec, rdSpec, secretData, fc.boolean(), (rs, rd, data, withRd) => {
      const ctx = ctxFor({
        services: [service('one', [[7000, 'tcp-redis']])],
        redisService: redisService(rs),
        redisDestination: withRd ? redisDestination(rd) : undefined,
        secrets: { 'redis/s': data },
      });
      try {
        const plan = redis.outbound(ctx);
        JSON.stringify(plan);
        generated++;
        return true;
      } catch (err) {
        if (!isBreezeError(err, 'GENERATION')) throw err;
        refused++;
        return !err.message.includes(PASSWORD); // false: a secret value in the message
      }
    }),
    { numRuns: 2000 },
  );
  t.ok(generated > 20 && refused > 20, `both outcomes explored (${generated} generated, ${refused} refused)`);
});
