import t from 'tap';
import { inlineModeWarning } from '../../src/protocols/redis/authmode.js';
import { assertWellFormed } from './wellformed.js';
import fc from 'fast-check';
import {
  endpointProblem,
  validateRedisDestination,
} from '../../src/admission/validators/redisdestination.js';
import { formatProblems, type Findings } from '../../src/admission/findings.js';
import { ConfigStore } from '../../src/cache/store.js';

const ctx = { view: new ConfigStore(), namespace: 'redis' };
const HOST = 'redis.redis.svc.cluster.local';
const POOL = 'spec.trafficPolicy.connectionPool';
const PASSWORD = 'S3cr3t-P4ss!word';
const FIX = 'write host[:port], e.g. "redis-0.redis.redis.svc.cluster.local:6379" or "[fd00::1]:6379"';

function check(spec: unknown): Findings {
  return validateRedisDestination(
    {
      apiVersion: 'redis.aeraki.io/v1alpha1',
      kind: 'RedisDestination',
      metadata: { name: 'redis', namespace: 'redis' },
      spec,
    },
    ctx,
  );
}

function message(spec: unknown): string {
  return formatProblems(check(spec).problems);
}

/** A spec whose connection pool is `pool`. */
function withPool(pool: unknown): unknown {
  return { host: HOST, trafficPolicy: { connectionPool: pool } };
}

t.test('a complete, valid RedisDestination passes without warnings', async (t) => {
  t.same(
    check(
      withPool({
        tcp: {
          maxConnections: 100,
          connectTimeout: '0.5s',
          tcpKeepalive: { probes: 3, time: '7200s', interval: '75s' },
        },
        redis: {
          mode: 'CLUSTER',
          auth: { secret: { name: 'redis-auth', passwordField: 'password' } },
          discoveryEndpoints: [
            'redis-0.redis.redis.svc.cluster.local:6379',
            'redis-1.redis.redis.svc.cluster.local',
            '10.244.1.7:6379',
            '[fd00::7]:6379',
          ],
        },
      }),
    ),
    { problems: [], warnings: [inlineModeWarning(false)] },
  );
  t.same(check({ host: HOST }), { problems: [], warnings: [] }, 'host alone is enough');
  t.same(check({ host: 'redis', trafficPolicy: null }), { problems: [], warnings: [] });
  t.same(check(withPool({ redis: { mode: 'PROXY' } })), { problems: [], warnings: [] });
});

t.test('a spec that is not an object is one denial at spec', async (t) => {
  for (const [spec, shown] of [
    [undefined, 'undefined'],
    [null, 'null'],
    ['redis', 'a string'],
    [3, 'a number'],
    [[{ host: HOST }], 'a list'],
  ] as const) {
    t.same(check(spec).problems, [
      { path: 'spec', message: `must be an object with host and trafficPolicy, got ${shown}` },
    ]);
  }
});

t.test('spec.host', async (t) => {
  t.equal(message({}), 'spec.host: is required: a service host name, e.g. redis.redis.svc.cluster.local');
  t.equal(
    message({ host: [HOST] }),
    'spec.host: must be one host name, not a list; create one RedisDestination per host',
  );
  for (const h of ['', '*.redis.svc.cluster.local', 'redis_0.redis', 6379]) {
    t.equal(
      message({ host: h }),
      `spec.host: ${JSON.stringify(h)} is not a DNS name; use a plain host name without wildcard, e.g. ${HOST}`,
    );
  }
});

t.test('wrong types on the way to the pool', async (t) => {
  t.equal(
    message({ host: HOST, trafficPolicy: 'fast' }),
    'spec.trafficPolicy: must be an object with connectionPool, got a string',
  );
  t.equal(
    message({ host: HOST, trafficPolicy: [] }),
    'spec.trafficPolicy: must be an object with connectionPool, got a list',
  );
  t.equal(message(withPool(5)), `${POOL}: must be an object with tcp and redis settings, got a number`);
  t.equal(
    message(withPool({ tcp: 'x', redis: [{ auth: { plain: { password: PASSWORD } } }] })),
    `${POOL}.tcp: must be an object with maxConnections, connectTimeout and tcpKeepalive, got a string; ` +
      `${POOL}.redis: must be an object with mode, auth and discoveryEndpoints, got a list`,
  );
});

t.test('tcp settings', async (t) => {
  t.equal(
    message(
      withPool({
        tcp: {
          maxConnections: 0,
          connectTimeout: '10ms',
          tcpKeepalive: { probes: -1, time: '2h', interval: 75 },
        },
      }),
    ),
    [
      `${POOL}.tcp.maxConnections: must be an integer from 1 to 2147483647, got 0`,
      `${POOL}.tcp.connectTimeout: "10ms" is not a protobuf duration; use "0.01s" (seconds with an "s" suffix)`,
      `${POOL}.tcp.tcpKeepalive.probes: must be an integer from 0 to 4294967295, got -1`,
      `${POOL}.tcp.tcpKeepalive.time: "2h" is not a protobuf duration; use "7200s" (seconds with an "s" suffix)`,
      `${POOL}.tcp.tcpKeepalive.interval: 75 is not a protobuf duration; use "75s" (seconds with an "s" suffix)`,
    ].join('; '),
  );
  for (const v of [1.5, '10', -3, 2147483648]) {
    t.equal(
      message(withPool({ tcp: { maxConnections: v } })),
      `${POOL}.tcp.maxConnections: must be an integer from 1 to 2147483647, got ${JSON.stringify(v)}`,
    );
  }
  t.equal(message(withPool({ tcp: { maxConnections: 1, connectTimeout: '1s' } })), '');
  t.equal(
    message(withPool({ tcp: { connectTimeout: '0s' } })),
    `${POOL}.tcp.connectTimeout: must be greater than 0 (Envoy rejects a zero connect timeout), e.g. "1s"`,
  );
  t.equal(
    message(withPool({ tcp: { connectTimeout: '-1s' } })),
    `${POOL}.tcp.connectTimeout: "-1s" is negative; use zero or more seconds with an "s" suffix, e.g. "1.5s"`,
  );
  t.equal(
    message(withPool({ tcp: { connectTimeout: 'soon' } })),
    `${POOL}.tcp.connectTimeout: "soon" is not a protobuf duration; write seconds with an "s" suffix, e.g. "1.5s"`,
  );
  t.equal(
    message(withPool({ tcp: { tcpKeepalive: true } })),
    `${POOL}.tcp.tcpKeepalive: must be an object with probes, time and interval, got a boolean`,
  );
});

t.test('redis mode', async (t) => {
  t.equal(message(withPool({ redis: { mode: 'CLUSTER' } })), '');
  t.equal(
    message(withPool({ redis: { mode: 'cluster' } })),
    `${POOL}.redis.mode: must be one of PROXY, CLUSTER, got "cluster"; use "CLUSTER"`,
  );
  t.equal(
    message(withPool({ redis: { mode: 'SENTINEL' } })),
    `${POOL}.redis.mode: must be one of PROXY, CLUSTER, got "SENTINEL"`,
  );
  t.equal(
    message(withPool({ redis: { mode: 1 } })),
    `${POOL}.redis.mode: must be one of PROXY, CLUSTER, got 1`,
  );
});

t.test('discovery endpoints', async (t) => {
  const good = ['redis-0:6379', 'redis-0', '10.0.0.1', '10.0.0.1:1', '[::1]:65535', 'Redis-0.Redis:6379'];
  for (const e of good) t.equal(endpointProblem(e), undefined, e);
  const bad: [string, string][] = [
    ['', `"" has host "", which is not a DNS name or IPv4 address; ${FIX}`],
    [':6379', `":6379" has host "", which is not a DNS name or IPv4 address; ${FIX}`],
    ['redis_0:6379', `"redis_0:6379" has host "redis_0", which is not a DNS name or IPv4 address; ${FIX}`],
    [
      '999.1.1.1:6379',
      `"999.1.1.1:6379" has host "999.1.1.1", which is not a DNS name or IPv4 address; ${FIX}`,
    ],
    ['redis-0:0', '"redis-0:0" has port 0; the port must be an integer from 1 to 65535'],
    ['redis-0:65536', '"redis-0:65536" has port 65536; the port must be an integer from 1 to 65535'],
    ['redis-0:', '"redis-0:" has port ""; the port must be an integer from 1 to 65535'],
    ['redis-0:http', '"redis-0:http" has port "http"; the port must be an integer from 1 to 65535'],
    ['redis-0:+1', '"redis-0:+1" has port "+1"; the port must be an integer from 1 to 65535'],
    [
      'fd00::1',
      '"fd00::1" is an IPv6 address without port; write it in brackets with a port, e.g. "[fd00::1]:6379"',
    ],
    ['a:b:c', `"a:b:c" is not host[:port]; ${FIX}`],
    ['[fd00::1]', '"[fd00::1]" needs a port after the IPv6 address, e.g. "[fd00::1]:6379"'],
    ['[fd00::1]:0', '"[fd00::1]:0" has port 0; the port must be an integer from 1 to 65535'],
    ['[10.0.0.1]:6379', `"[10.0.0.1]:6379" has "10.0.0.1" in brackets, which is not an IPv6 address; ${FIX}`],
    ['[fd00::1]6379', `"[fd00::1]6379" is not host[:port]; ${FIX}`],
  ];
  for (const [e, expected] of bad) t.equal(endpointProblem(e), expected, e);

  t.equal(
    message(
      withPool({ redis: { mode: 'CLUSTER', discoveryEndpoints: ['redis-0:6379', 6379, 'redis-1:0', null] } }),
    ),
    [
      `${POOL}.redis.discoveryEndpoints[1]: must be a host[:port] string, got 6379; ${FIX}`,
      `${POOL}.redis.discoveryEndpoints[2]: "redis-1:0" has port 0; the port must be an integer from 1 to 65535`,
      `${POOL}.redis.discoveryEndpoints[3]: must be a host[:port] string, got null; ${FIX}`,
    ].join('; '),
  );
  t.equal(
    message(withPool({ redis: { mode: 'CLUSTER', discoveryEndpoints: 'redis-0:6379' } })),
    `${POOL}.redis.discoveryEndpoints: must be a list of host[:port] strings, got a string`,
  );
});

t.test('discovery endpoints outside CLUSTER mode get a warning', async (t) => {
  const warning = `${POOL}.redis.discoveryEndpoints: used only in CLUSTER mode; set mode: CLUSTER or remove them`;
  t.same(check(withPool({ redis: { discoveryEndpoints: ['redis-0:6379'] } })), {
    problems: [],
    warnings: [warning],
  });
  t.same(check(withPool({ redis: { mode: 'PROXY', discoveryEndpoints: ['redis-0:6379'] } })).warnings, [
    warning,
  ]);
  t.same(
    check(withPool({ redis: { mode: 'PROXY', discoveryEndpoints: [] } })).warnings,
    [],
    'an empty list is fine',
  );
  t.same(check(withPool({ redis: { mode: 'CLUSTER', discoveryEndpoints: ['redis-0:6379'] } })).warnings, []);
  t.ok(warning.length <= 120);
});

t.test('redis auth', async (t) => {
  const auth = (a: unknown) => withPool({ redis: { mode: 'CLUSTER', auth: a } });
  t.same(check(auth({ secret: { name: 'redis-auth' } })), {
    problems: [],
    warnings: [inlineModeWarning(false)],
  });
  const warning = `${POOL}.redis.auth.plain: password is readable by anyone who can read this object; use secret`;
  t.ok(warning.length <= 120, 'the longest auth path still fits without an ellipsis');
  t.same(check(auth({ plain: { password: PASSWORD } })), { problems: [], warnings: [warning] });
  t.same(check(auth({ plain: { password: PASSWORD }, secret: { name: 'redis-auth' } })), {
    problems: [
      {
        path: `${POOL}.redis.auth`,
        message: 'sets both secret and plain; keep only one (secret keeps the password out of this object)',
      },
    ],
    warnings: [warning],
  });
  t.equal(
    message(auth({})),
    `${POOL}.redis.auth: must set one of secret ({name: <Secret name>}, preferred) or plain ({password}); remove auth for no password`,
  );
  t.equal(
    message(auth({ secret: { name: 'redis.auth!' } })),
    `${POOL}.redis.auth.secret.name: is not a valid Secret name (a DNS-1123 subdomain: lowercase letters, digits, '-', '.'), e.g. redis-auth`,
  );
  t.equal(
    message(auth({ plain: { username: 'default' } })),
    `${POOL}.redis.auth.plain.password: is required: set the password, or better, put it in a Secret and use auth.secret`,
  );
  t.equal(
    message(auth(PASSWORD)),
    `${POOL}.redis.auth: must be an object with either secret (a Secret reference) or plain, got a string`,
  );
});

t.test('the plain password never appears in a message or warning', async (t) => {
  const withPassword = fc
    .jsonValue()
    .map((v) => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? PASSWORD : x))));
  const authShape = fc.oneof(
    withPassword,
    fc.record(
      {
        secret: fc.oneof(
          withPassword,
          fc.record({ name: withPassword, passwordField: withPassword }, { requiredKeys: [] }),
        ),
        plain: fc.oneof(
          withPassword,
          fc.record({ password: withPassword, username: withPassword }, { requiredKeys: [] }),
        ),
      },
      { requiredKeys: [] },
    ),
  );
  // The auth at its place, or wrapped in a list at each level above it.
  const specs = authShape.chain((auth) =>
    fc.constantFrom(
      withPool({ redis: { auth } }),
      withPool({ redis: [{ auth }] }),
      withPool([{ redis: { auth } }]),
      { host: HOST, trafficPolicy: [{ connectionPool: { redis: { auth } } }] },
      [{ host: HOST, trafficPolicy: { connectionPool: { redis: { auth } } } }],
    ),
  );
  fc.assert(
    fc.property(specs, (spec) => {
      const f = check(spec);
      return [...f.problems.map((p) => `${p.path} ${p.message}`), ...f.warnings].every(
        (s) => !s.includes(PASSWORD),
      );
    }),
    { numRuns: 500 },
  );
  t.pass('no leak');
});

t.test('never throws, whatever the JSON', async (t) => {
  const anySpec = fc.oneof(
    fc.jsonValue(),
    fc.record(
      {
        host: fc.jsonValue(),
        trafficPolicy: fc.oneof(
          fc.jsonValue(),
          fc.record({
            connectionPool: fc.oneof(
              fc.jsonValue(),
              fc.record(
                {
                  tcp: fc.oneof(
                    fc.jsonValue(),
                    fc.record(
                      {
                        maxConnections: fc.jsonValue(),
                        connectTimeout: fc.jsonValue(),
                        tcpKeepalive: fc.jsonValue(),
                      },
                      { requiredKeys: [] },
                    ),
                  ),
                  redis: fc.oneof(
                    fc.jsonValue(),
                    fc.record(
                      {
                        mode: fc.jsonValue(),
                        auth: fc.jsonValue(),
                        discoveryEndpoints: fc.oneof(fc.jsonValue(), fc.array(fc.string())),
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
  assertWellFormed(anySpec, check);
  fc.assert(fc.property(fc.string(), (s) => endpointProblem(s) !== ''));
  t.pass('no exception');
});
