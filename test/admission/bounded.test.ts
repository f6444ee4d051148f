// Issue 11 regressions for the validators: huge input gets a decision at linear cost (finding 2),
// every loop over unbounded input calls the CPU budget, quoted values are bounded, no message
// echoes a password (finding 9), a fan-out beyond the listener cap is a warning (finding 5), and
// of two VirtualServices for one host only the one Breeze uses is told so (finding 11).
// Decisions and messages are asserted, never timings.
import t from 'tap';
import { BudgetExceeded, CpuBudget } from '../../src/admission/budget.js';
import { VALIDATORS, type ValidationContext } from '../../src/admission/validators/index.js';
import { validateServiceEntry } from '../../src/admission/validators/serviceentry.js';
import { validateVirtualService } from '../../src/admission/validators/virtualservice.js';
import { validateRedisService } from '../../src/admission/validators/redisservice.js';
import { validateRedisDestination } from '../../src/admission/validators/redisdestination.js';
import { ConfigStore } from '../../src/cache/store.js';
import type { Findings } from '../../src/admission/findings.js';
import type { JsonRecord } from '../../src/model/json.js';
import type { HandledKind } from '../../src/model/kinds.js';
import { MAX_LISTENERS_PER_SERVICE } from '../../src/model/limits.js';
import { likelyMisspeltProtocol, protocolFromPortName } from '../../src/model/protocol.js';
import { MAX_REGEX_LENGTH, re2Error } from '../../src/model/re2.js';

const MiB = 1 << 20;
const DUBBO_HOST = 'org.apache.dubbo.samples.basic.api.demoservice';
const IFACE = 'org.apache.dubbo.samples.DemoService';

function se(spec: JsonRecord, annotations?: Record<string, string>): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'demo', namespace: 'dubbo', ...(annotations ? { annotations } : {}) },
    spec,
  };
}

function dubboStore(): ConfigStore {
  const store = new ConfigStore();
  store.upsert(
    se(
      {
        hosts: [DUBBO_HOST],
        addresses: ['240.240.0.10'],
        ports: [{ number: 20880, name: 'tcp-dubbo', protocol: 'TCP' }],
        resolution: 'STATIC',
      },
      { interface: IFACE },
    ),
    'file',
  );
  return store;
}

const ctx = (view = new ConfigStore(), namespace = 'dubbo'): ValidationContext => ({ view, namespace });

/** Every problem and warning, rendered as the handler renders them. */
const lines = (f: Findings): string[] => [...f.problems.map((p) => `${p.path}: ${p.message}`), ...f.warnings];

/** No message grows with the input: a few hundred characters at most, whatever was quoted. */
function assertBounded(t: { ok: (v: boolean, m: string) => void }, f: Findings, what: string): void {
  const longest = Math.max(0, ...lines(f).map((l) => l.length));
  t.ok(longest <= 600, `${what}: longest message ${longest} characters`);
}

/** Runs `fn` and tells whether it stopped with BudgetExceeded (what the handler turns into a denial). */
function stopsAtBudget(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (err) {
    return err instanceof BudgetExceeded;
  }
}

/** A clock that advances 1 ms per read: the budget runs out after `ms` checks. */
function countingBudget(ms: number): CpuBudget {
  let now = 0;
  return new CpuBudget(ms, () => now++);
}

t.test('finding 2: a 1 MiB (and a 6.8 MB) port name is read in linear time', async (t) => {
  const long = `tcp-${'a'.repeat(MiB)}`;
  t.equal(likelyMisspeltProtocol(long), undefined, 'a token that long is no misspelling');
  t.equal(likelyMisspeltProtocol(`tcp-${'dubo'.repeat(1.7 * MiB)}`), undefined, '6.8 MB: no misspelling');
  t.equal(protocolFromPortName(`tcp-dubbo-${'x'.repeat(MiB)}`), 'dubbo', 'the protocol token is still found');
  t.equal(likelyMisspeltProtocol(`tcp-dubo-${'x'.repeat(MiB)}`), 'dubbo', 'a misspelling in a long name');
  const r = validateServiceEntry(
    se({
      hosts: ['a.example.com'],
      ports: [
        { number: 80, name: long },
        { number: 81, name: 'tcp-dubo' },
      ],
    }),
    ctx(),
  );
  t.same(r.problems, [], 'no protocol port: allowed');
  t.same(r.warnings, [
    'spec.ports[1].name: "tcp-dubo" looks like a misspelling of "tcp-dubbo" (protocol dubbo)',
  ]);
});

t.test('finding 2: a 6 MiB interface annotation is denied in one pass, not a stack overflow', async (t) => {
  const spec = {
    hosts: [DUBBO_HOST],
    addresses: ['240.240.0.10'],
    ports: [{ number: 20880, name: 'tcp-dubbo', protocol: 'TCP' }],
  };
  for (const iface of ['a.'.repeat(3 * MiB), 'a'.repeat(6 * MiB), `${IFACE}.`.repeat(MiB / 8)]) {
    const r = validateServiceEntry(se(spec, { interface: iface }), ctx());
    t.same(
      r.problems.map((p) => p.path),
      ['metadata.annotations[interface]'],
    );
    t.match(r.problems[0]?.message, /characters\) is not a Dubbo interface: a Java fully-qualified name/);
    assertBounded(t, r, `interface of ${iface.length} characters`);
  }
  t.same(validateServiceEntry(se(spec, { interface: IFACE }), ctx()).problems, [], 'a real interface');
});

t.test(
  'finding 2: a 1 MiB regex is denied before it is compiled, naming the limit and Envoy rule',
  async (t) => {
    const vs = (regex: unknown): JsonRecord => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'demo', namespace: 'dubbo' },
      spec: {
        hosts: [DUBBO_HOST],
        http: [
          {
            match: [{ method: { regex }, headers: { 'x-user': { regex } } }],
            route: [{ destination: { host: DUBBO_HOST } }],
          },
        ],
      },
    });
    const r = validateVirtualService(vs(`(${'a'.repeat(MiB)})`), ctx(dubboStore()));
    t.same(
      r.problems.map((p) => p.path),
      ['spec.http[0].match[0].method.regex', 'spec.http[0].match[0].headers[x-user].regex'],
    );
    t.match(
      r.problems[0]?.message,
      `is ${MiB + 2} characters long; Breeze compiles regexes of at most ${MAX_REGEX_LENGTH}`,
    );
    t.match(
      r.problems[0]?.message,
      /re2\.max_program_size\.error_level \(100 by default, 32768 in Istio's sidecars\)/,
    );
    assertBounded(t, r, '1 MiB regex');
    t.match(
      re2Error('(?:a{1000})'.repeat(40)),
      /expand to 40000 copies, more than 32768/,
      'counted repetitions',
    );
    t.match(re2Error('\\pL'.repeat(65)), /uses 65 Unicode classes/);
    t.equal(re2Error('[a-z]'.repeat(1000)), undefined, 'a long but ordinary pattern compiles');
    t.equal(re2Error('\\{1000\\}[{]\\Q{9999}\\E'), undefined, 'escaped and quoted braces are no repetition');
  },
);

t.test('finding 2: 100k Redis routes and 4,000 bad ports stop at the CPU budget', async (t) => {
  const routes = Array.from({ length: 100_000 }, (_, i) => ({
    match: { key: { prefix: `k${i}:` } },
    route: { host: 'redis.redis.svc.cluster.local' },
  }));
  const rs: JsonRecord = {
    apiVersion: 'redis.aeraki.io/v1alpha1',
    kind: 'RedisService',
    metadata: { name: 'r', namespace: 'redis' },
    spec: { host: ['redis.redis.svc.cluster.local'], redis: routes },
  };
  t.same(validateRedisService(rs, ctx()).problems, [], 'no budget (offline validate): a decision');
  t.ok(
    stopsAtBudget(() => validateRedisService(rs, { ...ctx(), budget: countingBudget(1000) })),
    'with a budget: stopped, the handler denies',
  );

  // 4,000 bad ports (a ServiceEntry lists at most MAX_SERVICE_ENTRY_PORTS; test/admission/denial-size.test.ts).
  const ports = Array.from({ length: 4_000 }, (_, i) => ({
    number: -1,
    name: `tcp-dubbo-${i}`,
    protocol: 'TCP',
  }));
  const bad = se({ hosts: [DUBBO_HOST], addresses: ['240.240.0.1'], ports }, { interface: IFACE });
  const r = validateServiceEntry(bad, ctx());
  t.equal(r.problems.length + (r.problemsNotKept ?? 0), 4_000, 'no budget: every port denied');
  t.equal(r.problems.length, 50, 'the first 50 kept, the rest counted');
  assertBounded(t, r, '4,000 bad ports');
  t.ok(
    stopsAtBudget(() => validateServiceEntry(bad, { ...ctx(), budget: countingBudget(1000) })),
    'ports',
  );

  // Every validator checks the budget on its lists: a budget already spent stops each one.
  const spent = { ...ctx(dubboStore()), budget: countingBudget(0) };
  const lists: [HandledKind, JsonRecord][] = [
    ['ServiceEntry', bad],
    ['RedisService', rs],
    [
      'VirtualService',
      {
        kind: 'VirtualService',
        metadata: { name: 'v', namespace: 'dubbo' },
        spec: { hosts: [DUBBO_HOST], http: [{ route: [{ destination: { host: DUBBO_HOST } }] }] },
      },
    ],
    ['DestinationRule', { kind: 'DestinationRule', spec: { host: 'x', subsets: [{ name: 'v1' }] } }],
    [
      'RedisDestination',
      {
        kind: 'RedisDestination',
        spec: { host: 'r.b', trafficPolicy: { connectionPool: { redis: { discoveryEndpoints: ['a:1'] } } } },
      },
    ],
  ];
  for (const [kind, object] of lists) {
    t.ok(
      stopsAtBudget(() => VALIDATORS[kind](object, spent)),
      `${kind} checks the budget`,
    );
  }
});

t.test('quoting: a megabyte in any quoted field gives a bounded message', async (t) => {
  const huge = 'x'.repeat(MiB);
  const store = dubboStore();
  const cases: [HandledKind, JsonRecord][] = [
    ['ServiceEntry', se({ hosts: [`*.${huge}`], ports: [{ number: 1, name: 'tcp-dubbo', protocol: huge }] })],
    [
      'ServiceEntry',
      se({ hosts: [DUBBO_HOST], ports: [{ number: 1, name: 'tcp-redis' }], addresses: [huge] }),
    ],
    [
      'ServiceEntry',
      se(
        { hosts: ['a.b'], addresses: ['240.240.0.1'], ports: [{ number: 1, name: 'tcp-thrift' }] },
        { workloadSelector: `${huge}:a:b` },
      ),
    ],
    [
      'VirtualService',
      {
        kind: 'VirtualService',
        metadata: { name: 'v', namespace: 'dubbo' },
        spec: {
          hosts: [DUBBO_HOST],
          http: [
            {
              match: [{ headers: { [huge]: { regex: '(' }, 'x-a': { exact: [huge] } }, port: huge }],
              route: [
                { destination: { host: DUBBO_HOST, subset: huge, port: { number: huge } }, weight: huge },
              ],
            },
          ],
        },
      },
    ],
    [
      'DestinationRule',
      {
        kind: 'DestinationRule',
        spec: { host: DUBBO_HOST, subsets: [{ name: huge, labels: { [huge]: 5 } }] },
      },
    ],
    [
      'RedisService',
      {
        kind: 'RedisService',
        spec: {
          host: [huge],
          settings: { opTimeout: `${'1'.repeat(MiB)}s`, readPolicy: huge },
          redis: [{ match: { key: { prefix: huge } }, route: { host: 'a.b' } }],
          faults: [{ type: huge, percentage: { value: 5 }, delay: `${'9'.repeat(MiB)}h` }],
        },
      },
    ],
    [
      'RedisDestination',
      {
        kind: 'RedisDestination',
        spec: {
          host: huge,
          trafficPolicy: { connectionPool: { redis: { discoveryEndpoints: [huge, `[${huge}]:1`] } } },
        },
      },
    ],
  ];
  for (const [kind, object] of cases) {
    const r = VALIDATORS[kind](object, ctx(store));
    t.ok(r.problems.length > 0, `${kind} denied`);
    assertBounded(t, r, kind);
  }
});

t.test('finding 9: no message contains a value from an auth subtree or a misplaced password', async (t) => {
  const PW = 'Hunter2-unique-9f3c1';
  const auths: unknown[] = [
    PW,
    { plain: PW },
    { plain: { password: PW } },
    { plain: { password: [PW], username: { PW } } },
    { secret: PW },
    { secret: { name: PW.toLowerCase(), passwordField: { PW } } },
    [{ plain: { password: PW } }],
  ];
  const rsSpecs = (a: unknown): unknown[] => [
    { host: ['r.b'], settings: { auth: a } },
    { host: ['r.b'], settings: a },
    { host: a },
    { host: [a] },
    { host: ['r.b'], redis: a },
    { host: ['r.b'], redis: [a] },
    { host: ['r.b'], redis: [{ route: a }] },
    { host: ['r.b'], redis: [{ route: { host: a } }] },
    { host: ['r.b'], redis: [{ match: a, route: { host: 'a.b' } }] },
    { host: ['r.b'], redis: [{ match: { key: a }, route: { host: 'a.b' } }] },
    { host: ['r.b'], redis: [{ route: { host: 'a.b' }, mirror: a }] },
    { host: ['r.b'], redis: [{ route: { host: 'a.b' }, mirror: [a] }] },
    { host: ['r.b'], faults: a },
    { host: ['r.b'], faults: [a] },
    { host: ['r.b'], faults: [{ percentage: a }] },
    a,
  ];
  const rdSpecs = (a: unknown): unknown[] => [
    { host: a },
    { host: 'a.b', trafficPolicy: a },
    { host: 'a.b', trafficPolicy: { connectionPool: a } },
    { host: 'a.b', trafficPolicy: { connectionPool: { redis: a } } },
    { host: 'a.b', trafficPolicy: { connectionPool: { redis: { auth: a } } } },
    { host: 'a.b', trafficPolicy: { connectionPool: { redis: { discoveryEndpoints: a } } } },
    { host: 'a.b', trafficPolicy: { connectionPool: { redis: { discoveryEndpoints: [a] } } } },
    { host: 'a.b', trafficPolicy: { connectionPool: { tcp: a } } },
    { host: 'a.b', trafficPolicy: { connectionPool: { tcp: { tcpKeepalive: a } } } },
    a,
  ];
  let checked = 0;
  for (const a of auths) {
    for (const spec of rsSpecs(a)) {
      const r = validateRedisService({ kind: 'RedisService', spec }, ctx());
      const text = JSON.stringify(r);
      t.notOk(
        text.toLowerCase().includes(PW.toLowerCase()),
        `RedisService ${JSON.stringify(spec).slice(0, 80)}`,
      );
      checked++;
    }
    for (const spec of rdSpecs(a)) {
      const r = validateRedisDestination({ kind: 'RedisDestination', spec }, ctx());
      t.notOk(
        JSON.stringify(r).toLowerCase().includes(PW.toLowerCase()),
        `RedisDestination ${JSON.stringify(spec).slice(0, 80)}`,
      );
      checked++;
    }
  }
  t.ok(checked > 100);
  t.equal(
    lines(validateRedisService({ kind: 'RedisService', spec: { host: ['r.b'], settings: PW } }, ctx()))[0],
    'spec.settings: must be an object with proxy settings such as opTimeout and auth, got a string',
  );
});

t.test('finding 5: a protocol ServiceEntry beyond the listener cap is allowed with a warning', async (t) => {
  const addresses = Array.from(
    { length: 20_000 },
    (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  );
  const r = validateServiceEntry(
    se({
      hosts: ['redis.redis.svc.cluster.local'],
      addresses,
      ports: [{ number: 6379, name: 'tcp-redis', protocol: 'TCP' }],
      resolution: 'STATIC',
    }),
    ctx(),
  );
  t.same(r.problems, [], 'Istio accepts it: allowed');
  t.same(r.warnings, [
    `spec.addresses: 20000 addresses x 1 ports: only the first ${MAX_LISTENERS_PER_SERVICE} listeners get redis filters, the rest stay plain TCP`,
  ]);
  const atCap = validateServiceEntry(
    se({
      hosts: ['redis.redis.svc.cluster.local'],
      addresses: addresses.slice(0, MAX_LISTENERS_PER_SERVICE / 2),
      ports: [
        { number: 6379, name: 'tcp-redis', protocol: 'TCP' },
        { number: 6380, name: 'tcp-redis-2', protocol: 'TCP' },
        { number: 80, name: 'http' },
      ],
      resolution: 'STATIC',
    }),
    ctx(),
  );
  t.same(atCap, { problems: [], warnings: [] }, 'exactly at the cap: no warning');
});

t.test('finding 11: of two VirtualServices for one host, only the one Breeze uses is told so', async (t) => {
  const vs = (namespace: string, name: string, created?: string): JsonRecord => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace, ...(created === undefined ? {} : { creationTimestamp: created }) },
    spec: { hosts: [DUBBO_HOST], http: [{ route: [{ destination: { host: DUBBO_HOST } }] }] },
  });
  const verdict = (admitted: JsonRecord, stored: JsonRecord): string => {
    const store = dubboStore();
    store.upsert(stored, 'file');
    const meta = admitted.metadata as JsonRecord;
    const r = validateVirtualService(admitted, ctx(store, String(meta.namespace)));
    t.same(r.problems, []);
    return r.warnings[0] ?? '';
  };
  // Undated (admission requests of new objects, files): namespace/name decides, as compareEntries.
  const a = vs('dubbo', 'a-routes');
  const b = vs('dubbo', 'b-routes');
  t.match(
    verdict(a, b),
    /also routed by VirtualService dubbo\/b-routes; Breeze uses this one \(same age: first by name\)/,
  );
  t.match(
    verdict(b, a),
    /also routed by VirtualService dubbo\/a-routes; Breeze uses that one \(same age: first by name\)/,
  );
  // A new object (no timestamp yet) against a stored, dated one: the stored one is older.
  const old = vs('dubbo', 'z-routes', '2024-01-01T00:00:00Z');
  t.match(
    verdict(a, old),
    /Breeze uses that one \(the oldest wins\)/,
    'the new one is told the old one wins',
  );
  // An UPDATE keeps its own timestamp.
  const olderA = vs('dubbo', 'a-routes', '2023-01-01T00:00:00Z');
  t.match(verdict(olderA, old), /Breeze uses this one \(the oldest wins\)/);
  t.match(verdict(old, olderA), /Breeze uses that one \(the oldest wins\)/);
  // Never both: for every pair, exactly one of the two is told "this one".
  const all = [a, b, old, olderA, vs('other', 'a-routes'), vs('dubbo', 'c', '2024-01-01T00:00:00Z')];
  for (const x of all) {
    for (const y of all) {
      const [mx, my] = [x.metadata as JsonRecord, y.metadata as JsonRecord];
      if (mx.namespace === my.namespace && mx.name === my.name) continue; // the same object
      const xy = verdict(x, y).includes('uses this one');
      const yx = verdict(y, x).includes('uses this one');
      t.ok(xy !== yx, `${JSON.stringify(x.metadata)} vs ${JSON.stringify(y.metadata)}`);
    }
  }
});
