import t from 'tap';
import { inlineModeWarning } from '../../src/protocols/redis/authmode.js';
import { assertWellFormed } from './wellformed.js';
import fc from 'fast-check';
import { validateRedisService } from '../../src/admission/validators/redisservice.js';
import { suggestProtoDuration } from '../../src/admission/validators/redis-common.js';
import { goDurationNanos, protoDurationText } from '../../src/model/duration.js';
import { isDns1123Subdomain } from '../../src/model/names.js';
import { formatProblems, type Findings } from '../../src/admission/findings.js';
import { ConfigStore } from '../../src/cache/store.js';

const ctx = { view: new ConfigStore(), namespace: 'redis' };
const HOST = 'redis.redis.svc.cluster.local';
const PASSWORD = 'S3cr3t-P4ss!word';

function check(spec: unknown): Findings {
  return validateRedisService(
    {
      apiVersion: 'redis.aeraki.io/v1alpha1',
      kind: 'RedisService',
      metadata: { name: 'redis', namespace: 'redis' },
      spec,
    },
    ctx,
  );
}

/** The denial message the webhook would send, '' when allowed. */
function message(spec: unknown): string {
  return formatProblems(check(spec).problems);
}

t.test('a complete, valid RedisService passes without warnings', async (t) => {
  const f = check({
    host: [HOST, 'redis'],
    settings: {
      caseInsensitive: true,
      opTimeout: '1.5s',
      enableCommandStats: true,
      maxBufferSizeBeforeFlush: 1024,
      bufferFlushTimeout: '0.003s',
      maxUpstreamUnknownConnections: 100,
      enableHashtagging: false,
      enableRedirection: true,
      readPolicy: 'PREFER_REPLICA',
      auth: { secret: { name: 'redis-auth', passwordField: 'password', usernameField: 'username' } },
    },
    redis: [
      {
        match: { key: { prefix: 'user:', removePrefix: true } },
        route: { host: 'redis-user.redis.svc.cluster.local', port: 6379 },
      },
      { match: { key: { prefix: 'order:' } }, route: { host: 'redis-order.redis.svc.cluster.local' } },
      {
        route: { host: 'redis-default.redis.svc.cluster.local' },
        mirror: [
          {
            route: { host: 'redis-shadow.redis.svc.cluster.local', port: 6380 },
            percentage: { value: 100 },
            excludeReadCommands: true,
          },
        ],
      },
    ],
    faults: [
      { type: 'DELAY', percentage: { value: 10 }, delay: '0.5s', commands: ['get', 'set'] },
      { type: 'ERROR', percentage: { value: 0.5 } },
    ],
  });
  t.same(f, { problems: [], warnings: [inlineModeWarning(false)] }, 'only the auth mode is named');
  t.same(check({ host: [HOST] }), { problems: [], warnings: [] }, 'host alone is enough');
  t.same(
    check({ host: [HOST], settings: null, redis: null, faults: null }).problems,
    [],
    'null reads as unset',
  );
});

t.test('a spec that is not an object is one denial at spec', async (t) => {
  for (const [spec, shown] of [
    [undefined, 'undefined'],
    [null, 'null'],
    ['redis', 'a string'],
    [42, 'a number'],
    [true, 'a boolean'],
  ] as const) {
    t.same(check(spec).problems, [
      {
        path: 'spec',
        message: `must be an object with host and optional settings, redis and faults, got ${shown}`,
      },
    ]);
  }
  t.equal(
    message([{ settings: { auth: { plain: { password: PASSWORD } } } }]),
    'spec: must be an object with host and optional settings, redis and faults, got a list',
    'a list is described, not rendered',
  );
});

t.test('spec.host', async (t) => {
  t.equal(message({}), `spec.host: is required: list the hosts this applies to, e.g. ["${HOST}"]`);
  t.equal(
    message({ hosts: [HOST] }),
    `spec.host: is required (the field is host, not hosts): list the hosts this applies to, e.g. ["${HOST}"]`,
  );
  t.equal(
    message({ host: HOST }),
    `spec.host: must be a list of host names, got a string; write the host in a list, e.g. ["${HOST}"]`,
  );
  t.equal(message({ host: 7 }), 'spec.host: must be a list of host names, got a number');
  t.equal(message({ host: [] }), `spec.host: must list at least one host, e.g. ["${HOST}"]`);
  t.equal(
    message({ host: [HOST, '*.redis.svc.cluster.local', 5, ''] }),
    [
      `spec.host[1]: "*.redis.svc.cluster.local" is not a DNS name; use a plain host name without wildcard, e.g. ${HOST}`,
      `spec.host[2]: 5 is not a DNS name; use a plain host name without wildcard, e.g. ${HOST}`,
      `spec.host[3]: "" is not a DNS name; use a plain host name without wildcard, e.g. ${HOST}`,
    ].join('; '),
  );
});

t.test('settings: wrong types', async (t) => {
  t.equal(
    message({ host: [HOST], settings: 'fast' }),
    'spec.settings: must be an object with proxy settings such as opTimeout and auth, got a string',
  );
  t.equal(
    message({
      host: [HOST],
      settings: {
        caseInsensitive: 'yes',
        enableCommandStats: 1,
        enableHashtagging: null,
        enableRedirection: 'true',
        maxBufferSizeBeforeFlush: -1,
        maxUpstreamUnknownConnections: 4294967296,
        readPolicy: 3,
      },
    }),
    [
      'spec.settings.caseInsensitive: must be true or false, got "yes"',
      'spec.settings.enableCommandStats: must be true or false, got 1',
      'spec.settings.enableRedirection: must be true or false, got "true"',
      'spec.settings.maxBufferSizeBeforeFlush: must be an integer from 0 to 4294967295, got -1',
      'spec.settings.maxUpstreamUnknownConnections: must be an integer from 0 to 4294967295, got 4294967296',
      'spec.settings.readPolicy: must be one of MASTER, PREFER_MASTER, REPLICA, PREFER_REPLICA, ANY, got 3',
    ].join('; '),
  );
  t.equal(
    message({ host: [HOST], settings: { maxBufferSizeBeforeFlush: 1.5 } }),
    'spec.settings.maxBufferSizeBeforeFlush: must be an integer from 0 to 4294967295, got 1.5',
  );
});

t.test('settings.readPolicy', async (t) => {
  for (const p of ['MASTER', 'PREFER_MASTER', 'REPLICA', 'PREFER_REPLICA', 'ANY']) {
    t.equal(message({ host: [HOST], settings: { readPolicy: p } }), '', p);
  }
  t.equal(
    message({ host: [HOST], settings: { readPolicy: 'prefer_replica' } }),
    'spec.settings.readPolicy: must be one of MASTER, PREFER_MASTER, REPLICA, PREFER_REPLICA, ANY, got "prefer_replica"; use "PREFER_REPLICA"',
  );
  t.equal(
    message({ host: [HOST], settings: { readPolicy: 'SLAVE' } }),
    'spec.settings.readPolicy: must be one of MASTER, PREFER_MASTER, REPLICA, PREFER_REPLICA, ANY, got "SLAVE"',
  );
});

t.test('durations: Go-style values get the equivalent in seconds', async (t) => {
  const cases: [unknown, string][] = [
    ['500ms', 'use "0.5s"'],
    ['1m', 'use "60s"'],
    ['1m30s', 'use "90s"'],
    ['1h', 'use "3600s"'],
    ['1.5h', 'use "5400s"'],
    ['250us', 'use "0.00025s"'],
    ['1µs', 'use "0.000001s"'],
    ['1μs', 'use "0.000001s"'],
    ['3ns', 'use "0.000000003s"'],
    ['.5s', 'use "0.5s"'],
    ['1.s', 'use "1s"'],
    ['+2s', 'use "2s"'],
    ['0', 'use "0s"'],
    ['1.5', 'use "1.5s"'],
    [' 2s ', 'use "2s"'],
    [30, 'use "30s"'],
    [0.25, 'use "0.25s"'],
  ];
  for (const [v, fix] of cases) {
    t.equal(
      message({ host: [HOST], settings: { opTimeout: v } }),
      `spec.settings.opTimeout: ${JSON.stringify(v)} is not a protobuf duration; ${fix} (seconds with an "s" suffix)`,
      String(v),
    );
  }
});

t.test('durations: valid, negative and unconvertible values', async (t) => {
  for (const v of ['0s', '1s', '1.5s', '0.000000001s', '1.123456789s', '315576000000s', '007s']) {
    t.equal(message({ host: [HOST], settings: { bufferFlushTimeout: v } }), '', v);
  }
  for (const v of ['-1s', '-500ms', ' -2m', -3]) {
    t.equal(
      message({ host: [HOST], settings: { bufferFlushTimeout: v } }),
      `spec.settings.bufferFlushTimeout: ${JSON.stringify(v)} is negative; use zero or more seconds with an "s" suffix, e.g. "1.5s"`,
      String(v),
    );
  }
  for (const v of [
    'fast',
    '1.1234567891s',
    '0.5ns',
    '1S',
    '1d',
    '1 s',
    '',
    's',
    1e21,
    true,
    { seconds: 1 },
    [1],
  ]) {
    t.equal(
      message({ host: [HOST], settings: { bufferFlushTimeout: v } }),
      `spec.settings.bufferFlushTimeout: ${typeof v === 'object' ? (Array.isArray(v) ? 'a list' : 'an object') : JSON.stringify(v)} is not a protobuf duration; write seconds with an "s" suffix, e.g. "1.5s"`,
      JSON.stringify(v),
    );
  }
});

t.test('duration helpers', async (t) => {
  t.equal(goDurationNanos('1h2m3.5s'), 3_723_500_000_000n);
  t.equal(goDurationNanos('1.5s'), 1_500_000_000n);
  t.equal(goDurationNanos('0'), 0n);
  t.equal(goDurationNanos('0.1ns'), undefined, 'finer than a nanosecond');
  t.equal(goDurationNanos('1'), undefined, 'a unit is needed except for 0');
  t.equal(goDurationNanos(''), undefined);
  t.equal(goDurationNanos('1sx'), undefined);
  t.equal(protoDurationText(0n), '0s');
  t.equal(protoDurationText(90_000_000_000n), '90s');
  t.equal(protoDurationText(1_050_000_000n), '1.05s');
  t.equal(protoDurationText(1n), '0.000000001s');
  t.equal(suggestProtoDuration('500ms'), '0.5s');
  t.equal(suggestProtoDuration(-1), undefined);
  t.equal(suggestProtoDuration(Number.NaN), undefined);
  t.equal(suggestProtoDuration(null), undefined);
  t.equal(suggestProtoDuration('1.0000000001'), undefined, 'more than nine fraction digits');
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n }), (ns) => {
      const text = protoDurationText(ns);
      return /^\d+(\.\d{1,9})?s$/.test(text) && goDurationNanos(text) === ns;
    }),
  );
  t.ok(isDns1123Subdomain('redis-auth'));
  t.ok(isDns1123Subdomain('redis.auth-1'));
  t.notOk(isDns1123Subdomain('Redis_Auth'));
  t.notOk(isDns1123Subdomain('-redis'));
  t.notOk(isDns1123Subdomain('a'.repeat(254)));
});

t.test('routes: hosts, ports and wrong types', async (t) => {
  t.equal(
    message({ host: [HOST], redis: { route: { host: HOST } } }),
    'spec.redis: must be a list of routes, got an object',
  );
  t.equal(
    message({
      host: [HOST],
      redis: [
        'redis-default',
        { match: 'user:', route: 'redis-user' },
        { match: { key: 'user:' }, route: { host: 'redis-user.redis.svc.cluster.local', port: '6379' } },
        { match: { key: { prefix: 7, removePrefix: 'yes' } }, route: { port: 0 } },
        { match: { key: { prefix: 'a:' } }, route: { host: '*.redis', port: 65536 } },
        { match: { key: { prefix: 'b:' } } },
      ],
    }),
    [
      'spec.redis[0]: must be an object with route and optional match and mirror, got a string',
      'spec.redis[1].match: must be an object with key, got a string',
      'spec.redis[1].route: must be an object with host and optional port, got a string',
      'spec.redis[2].match.key: must be an object with prefix and optional removePrefix, got a string',
      'spec.redis[2].route.port: must be an integer from 1 to 65535 (or omitted to use the service\'s port), got "6379"',
      'spec.redis[3].match.key.removePrefix: must be true or false, got "yes"',
      'spec.redis[3].match.key.prefix: must be a string such as "user:", got 7',
      'spec.redis[3].route.host: is required: a service host name, e.g. redis-user.redis.svc.cluster.local',
      "spec.redis[3].route.port: must be an integer from 1 to 65535 (or omitted to use the service's port), got 0",
      'spec.redis[4].route.host: "*.redis" is not a DNS name; use a plain host name without wildcard, e.g. redis-user.redis.svc.cluster.local',
      "spec.redis[4].route.port: must be an integer from 1 to 65535 (or omitted to use the service's port), got 65536",
      'spec.redis[5].route: is required: the destination for these keys, e.g. {"host": "redis-user.redis.svc.cluster.local"}',
    ].join('; '),
  );
});

t.test('routes: unique prefixes and a single catch-all', async (t) => {
  const route = (host: string) => ({ host: `${host}.redis.svc.cluster.local` });
  t.equal(
    message({
      host: [HOST],
      redis: [
        { match: { key: { prefix: 'user:' } }, route: route('redis-user') },
        { route: route('redis-default') },
        { match: { key: { prefix: 'User:' } }, route: route('redis-user') },
        { match: {}, route: route('redis-other') },
        { match: { key: { prefix: 'user:', removePrefix: true } }, route: route('redis-user2') },
        { match: { key: {} }, route: route('redis-a') },
        { match: { key: { prefix: '' } }, route: route('redis-b') },
        { match: null, route: route('redis-c') },
      ],
    }),
    [
      'spec.redis[3]: is a second catch-all route (no match.key) after spec.redis[1]; only one can take the unmatched keys: give this one a match.key.prefix or remove it',
      'spec.redis[4].match.key.prefix: "user:" is already used by spec.redis[0]; key prefixes must be unique: change it or merge the two routes',
      'spec.redis[6].match.key.prefix: "" is already used by spec.redis[5]; key prefixes must be unique: change it or merge the two routes',
      'spec.redis[7]: is a second catch-all route (no match.key) after spec.redis[1]; only one can take the unmatched keys: give this one a match.key.prefix or remove it',
    ].join('; '),
    'prefixes compare exactly (User: is not user:), a missing prefix is ""',
  );
  t.equal(
    message({ host: [HOST], redis: [{ route: route('a') }, { match: { key: 5 }, route: route('b') }] }),
    'spec.redis[1].match.key: must be an object with prefix and optional removePrefix, got a number',
    'a denied match is not counted as a catch-all',
  );
});

t.test('mirrors', async (t) => {
  const routeTo = { host: 'redis-default.redis.svc.cluster.local' };
  t.equal(
    message({
      host: [HOST],
      redis: [
        {
          route: routeTo,
          mirror: [
            { route: { host: 'redis-shadow.redis.svc.cluster.local' }, percentage: { value: 100 } },
            { percentage: { value: 50 } },
            { route: { host: 'redis-shadow.redis.svc.cluster.local' } },
            { route: {}, percentage: { value: 0 }, excludeReadCommands: 'no' },
            { route: { host: 'redis-shadow.redis.svc.cluster.local' }, percentage: { value: 100.5 } },
            { route: { host: 'redis-shadow.redis.svc.cluster.local' }, percentage: 50 },
            { route: { host: 'redis-shadow.redis.svc.cluster.local' }, percentage: {} },
            { route: { host: 'redis-shadow.redis.svc.cluster.local' }, percentage: { value: '50' } },
            'redis-shadow',
          ],
        },
        { match: { key: { prefix: 'x:' } }, route: routeTo, mirror: { route: routeTo } },
      ],
    }),
    [
      'spec.redis[0].mirror[1].route: is required: the mirror destination, e.g. {"host": "redis-shadow.redis.svc.cluster.local"}',
      'spec.redis[0].mirror[2].percentage: is required: the share of commands to mirror, e.g. {"value": 10} for 10%',
      'spec.redis[0].mirror[3].route.host: is required: a service host name, e.g. redis-shadow.redis.svc.cluster.local',
      'spec.redis[0].mirror[3].percentage.value: must be a number greater than 0 and at most 100, got 0',
      'spec.redis[0].mirror[3].excludeReadCommands: must be true or false, got "no"',
      'spec.redis[0].mirror[4].percentage.value: must be a number greater than 0 and at most 100, got 100.5',
      'spec.redis[0].mirror[5].percentage: must be an object with value (a percentage), got a number',
      'spec.redis[0].mirror[6].percentage.value: is required: a number greater than 0 and at most 100, e.g. 10 for 10%',
      'spec.redis[0].mirror[7].percentage.value: must be a number greater than 0 and at most 100, got "50"',
      'spec.redis[0].mirror[8]: must be an object with route and percentage, got a string',
      'spec.redis[1].mirror: must be a list of mirror policies, got an object',
    ].join('; '),
  );
});

t.test('faults', async (t) => {
  t.equal(
    message({ host: [HOST], faults: { type: 'ERROR' } }),
    'spec.faults: must be a list of faults, got an object',
  );
  t.equal(
    message({
      host: [HOST],
      faults: [
        { type: 'DELAY', percentage: { value: 10 }, delay: '1s' },
        { type: 'ERROR', percentage: { value: 100 }, commands: ['GET'] },
        { type: 'ERROR', percentage: { value: 100 }, delay: '0.1s' },
        { percentage: { value: 10 } },
        { type: 'DELAY', percentage: { value: 10 } },
        { type: 'TIMEOUT', percentage: { value: 10 } },
        { type: 'delay', percentage: { value: 10 }, delay: '100ms' },
        { type: 'ERROR' },
        { type: 'ERROR', percentage: { value: -5 }, commands: 'get' },
        { type: 'ERROR', percentage: { value: 5 }, commands: ['get', '', 7] },
        7,
        { type: 1, percentage: { value: 5 } },
      ],
    }),
    [
      'spec.faults[3].delay: is required: type defaults to DELAY, so set delay (e.g. "0.5s") or set type to ERROR',
      'spec.faults[4].delay: is required for a DELAY fault: how long to hold the commands, e.g. "0.5s"',
      'spec.faults[5].type: must be one of DELAY, ERROR, got "TIMEOUT"',
      'spec.faults[6].type: must be one of DELAY, ERROR, got "delay"; use "DELAY"',
      'spec.faults[6].delay: "100ms" is not a protobuf duration; use "0.1s" (seconds with an "s" suffix)',
      'spec.faults[7].percentage: is required: the share of commands to fault, e.g. {"value": 10} for 10%',
      'spec.faults[8].percentage.value: must be a number greater than 0 and at most 100, got -5',
      'spec.faults[8].commands: must be a list of Redis command names, got a string',
      'spec.faults[9].commands[1]: must be a Redis command name such as "get", got ""',
      'spec.faults[9].commands[2]: must be a Redis command name such as "get", got 7',
      'spec.faults[10]: must be an object with type, percentage and delay, got a number',
      'spec.faults[11].type: must be one of DELAY, ERROR, got 1',
    ].join('; '),
  );
});

t.test('settings.auth', async (t) => {
  const withAuth = (auth: unknown) => ({ host: [HOST], settings: { auth } });
  t.same(check(withAuth({ secret: { name: 'redis-auth' } })), {
    problems: [],
    warnings: [inlineModeWarning(false)],
  });
  t.same(check(withAuth({ plain: { password: PASSWORD, username: 'app' } })), {
    problems: [],
    warnings: [
      'spec.settings.auth.plain: password is readable by anyone who can read this object; use secret',
    ],
  });
  const cases: [unknown, string][] = [
    [
      {},
      'spec.settings.auth: must set one of secret ({name: <Secret name>}, preferred) or plain ({password}); remove auth for no password',
    ],
    [
      { secret: null, plain: null },
      'spec.settings.auth: must set one of secret ({name: <Secret name>}, preferred) or plain ({password}); remove auth for no password',
    ],
    [
      { secret: { name: 'redis-auth' }, plain: { password: PASSWORD } },
      'spec.settings.auth: sets both secret and plain; keep only one (secret keeps the password out of this object)',
    ],
    [
      PASSWORD,
      'spec.settings.auth: must be an object with either secret (a Secret reference) or plain, got a string',
    ],
    [
      [{ plain: { password: PASSWORD } }],
      'spec.settings.auth: must be an object with either secret (a Secret reference) or plain, got a list',
    ],
    [
      { secret: 'redis-auth' },
      'spec.settings.auth.secret: must be an object with name (a Secret holding the password), got a string',
    ],
    [
      { secret: {} },
      'spec.settings.auth.secret.name: is required: the name of the Secret holding the password, e.g. redis-auth',
    ],
    [
      { secret: { name: '' } },
      'spec.settings.auth.secret.name: is required: the name of the Secret holding the password, e.g. redis-auth',
    ],
    [
      { secret: { name: 5 } },
      'spec.settings.auth.secret.name: must be the name of a Secret, e.g. redis-auth, got a number',
    ],
    [
      { secret: { name: 'Redis_Auth' } },
      "spec.settings.auth.secret.name: is not a valid Secret name (a DNS-1123 subdomain: lowercase letters, digits, '-', '.'), e.g. redis-auth",
    ],
    [
      { secret: { name: 'redis-auth', passwordField: 'pass word', usernameField: 3 } },
      "spec.settings.auth.secret.passwordField: is not a Secret data key (letters, digits, '-', '_' and '.'), e.g. password; " +
        "spec.settings.auth.secret.usernameField: must be a key of the Secret's data, e.g. password, got a number",
    ],
    [
      { plain: PASSWORD },
      'spec.settings.auth.plain: must be an object with password and optional username, got a string',
    ],
    [
      { plain: {} },
      'spec.settings.auth.plain.password: is required: set the password, or better, put it in a Secret and use auth.secret',
    ],
    [
      { plain: { password: '' } },
      'spec.settings.auth.plain.password: is required: set the password, or better, put it in a Secret and use auth.secret',
    ],
    [
      { plain: { password: 123456, username: ['admin'] } },
      'spec.settings.auth.plain.password: must be a string, got a number; spec.settings.auth.plain.username: must be a string, got a list',
    ],
  ];
  for (const [auth, expected] of cases) t.equal(message(withAuth(auth)), expected, JSON.stringify(auth));
  t.same(check(withAuth({ plain: {} })).warnings, [
    'spec.settings.auth.plain: password is readable by anyone who can read this object; use secret',
  ]);
});

t.test('the plain password never appears in a message or warning', async (t) => {
  const leaks = (spec: unknown): boolean => {
    const f = check(spec);
    return [...f.problems.map((p) => `${p.path} ${p.message}`), ...f.warnings].some((s) =>
      s.includes(PASSWORD),
    );
  };
  const bad: unknown[] = [
    PASSWORD,
    { plain: PASSWORD },
    { secret: PASSWORD },
    { plain: { password: PASSWORD }, secret: { name: 'redis-auth' } },
    { plain: { password: PASSWORD, username: PASSWORD } },
    { plain: { password: [PASSWORD], username: { PASSWORD } } },
    { plain: [PASSWORD] },
    { secret: { name: PASSWORD, passwordField: PASSWORD, usernameField: PASSWORD } },
    { secret: { name: [PASSWORD] } },
    [{ plain: { password: PASSWORD } }],
  ];
  for (const auth of bad) {
    t.notOk(leaks({ host: [HOST], settings: { auth } }), JSON.stringify(auth));
    t.notOk(leaks({ host: [HOST], settings: [{ auth }] }), `settings as a list: ${JSON.stringify(auth)}`);
    t.notOk(leaks([{ host: [HOST], settings: { auth } }]), `spec as a list: ${JSON.stringify(auth)}`);
  }
  // Any JSON shape under auth, with the password as every string in it.
  const withPassword = fc
    .jsonValue()
    .map((v) => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? PASSWORD : x))));
  const authShape = fc.oneof(
    withPassword,
    fc.record(
      {
        secret: fc.oneof(
          withPassword,
          fc.record(
            { name: withPassword, passwordField: withPassword, usernameField: withPassword },
            { requiredKeys: [] },
          ),
        ),
        plain: fc.oneof(
          withPassword,
          fc.record({ password: withPassword, username: withPassword }, { requiredKeys: [] }),
        ),
      },
      { requiredKeys: [] },
    ),
  );
  fc.assert(
    fc.property(authShape, (auth) => !leaks({ host: [HOST], settings: { auth } })),
    { numRuns: 500 },
  );
});

t.test('never throws, whatever the JSON', async (t) => {
  const anySpec = fc.oneof(
    fc.jsonValue(),
    fc.record(
      {
        host: fc.oneof(fc.jsonValue(), fc.array(fc.jsonValue())),
        settings: fc.oneof(
          fc.jsonValue(),
          fc.dictionary(
            fc.constantFrom(
              'opTimeout',
              'bufferFlushTimeout',
              'readPolicy',
              'auth',
              'enableRedirection',
              'maxBufferSizeBeforeFlush',
            ),
            fc.jsonValue(),
          ),
        ),
        redis: fc.oneof(
          fc.jsonValue(),
          fc.array(
            fc.record(
              {
                match: fc.oneof(
                  fc.jsonValue(),
                  fc.record({ key: fc.oneof(fc.jsonValue(), fc.record({ prefix: fc.jsonValue() })) }),
                ),
                route: fc.jsonValue(),
                mirror: fc.oneof(
                  fc.jsonValue(),
                  fc.array(fc.record({ route: fc.jsonValue(), percentage: fc.jsonValue() })),
                ),
              },
              { requiredKeys: [] },
            ),
          ),
        ),
        faults: fc.oneof(
          fc.jsonValue(),
          fc.array(
            fc.record(
              {
                type: fc.jsonValue(),
                delay: fc.jsonValue(),
                percentage: fc.jsonValue(),
                commands: fc.jsonValue(),
              },
              { requiredKeys: [] },
            ),
          ),
        ),
      },
      { requiredKeys: [] },
    ),
  );
  assertWellFormed(anySpec, check);
  t.pass('no exception');
});
