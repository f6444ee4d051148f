// The admission feed (local mode) on the request path: the same object admitted again only
// restarts its pending change's grace period (no re-read by the cache), and everything else (a
// changed object, a confirmation in between, a DELETE, an expiry) still goes the full way.
import t from 'tap';
import { ConfigStore } from '../../src/cache/store.js';
import type { JsonRecord } from '../../src/model/json.js';
import {
  AdmissionFeed,
  RECENT_MAX,
  RECENT_MAX_CHARS,
  sameJson,
  smallEnough,
} from '../../src/sources/admission.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';

function se(name: string, port = 20880, extra: JsonRecord = {}): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: 'dubbo', annotations: { interface: 'org.example.Demo' } },
    spec: {
      hosts: [`${name}.dubbo.svc.cluster.local`],
      addresses: ['240.240.1.1'],
      ports: [{ number: port, name: 'tcp-dubbo' }],
      resolution: 'STATIC',
      ...extra,
    },
  };
}

function setup(): {
  store: ConfigStore;
  feed: AdmissionFeed;
  clock: { now: number };
  changes: string[][];
  applies: { n: number };
} {
  const clock = { now: 1_000 };
  const store = new ConfigStore('cluster.local', () => clock.now);
  const changes: string[][] = [];
  store.subscribe((keys) => changes.push([...keys]));
  const applies = { n: 0 };
  const apply = store.apply.bind(store);
  store.apply = (...args: Parameters<ConfigStore['apply']>) => {
    applies.n++;
    return apply(...args);
  };
  const feed = new AdmissionFeed(store, {
    graceMs: 30_000,
    logger: createLogger({ level: 'silent' }),
    metrics: createMetrics(),
  });
  return { store, feed, clock, changes, applies };
}

const create = (object: JsonRecord) =>
  ({
    operation: 'CREATE',
    kind: 'ServiceEntry',
    namespace: 'dubbo',
    name: (object.metadata as { name: string }).name,
    object,
  }) as const;

t.test('the same object again restarts the grace period without a second apply', async (t) => {
  const { store, feed, clock, changes, applies } = setup();
  feed.record(create(se('demo')));
  t.equal(applies.n, 1);
  t.same(changes, [['ServiceEntry/dubbo/demo']], 'the first admission marks the service dirty');
  const first = store.get('ServiceEntry', 'dubbo', 'demo');
  t.equal(first?.confirmed, false);

  clock.now = 25_000;
  feed.record(create(se('demo'))); // an equal object, parsed from another request
  t.equal(applies.n, 1, 'not applied again');
  t.equal(changes.length, 1, 'nothing marked dirty');
  t.equal(store.get('ServiceEntry', 'dubbo', 'demo'), first, 'the entry is unchanged');

  // The grace period counts from the second admission: at 31 s after the first it is kept...
  store.progress('file', 'ServiceEntry');
  clock.now = 32_000;
  t.same(store.expirePending(30_000).dropped, [], 'kept: 7 s since the repeat');
  // ...and dropped 30 s after the repeat.
  clock.now = 56_000;
  store.progress('file', 'ServiceEntry');
  t.same(store.expirePending(30_000).dropped, ['ServiceEntry/dubbo/demo']);
  t.equal(store.get('ServiceEntry', 'dubbo', 'demo'), undefined);

  // Once dropped, the same object is a new change again.
  feed.record(create(se('demo')));
  t.equal(applies.n, 2, 'applied in full after the expiry');
  t.same(store.pendingKeys(), ['ServiceEntry/dubbo/demo']);
});

t.test('a changed object, a confirmation or a DELETE in between: applied in full', async (t) => {
  const { store, feed, changes, applies } = setup();
  feed.record(create(se('demo')));
  feed.record(create(se('demo', 20881)));
  t.equal(applies.n, 2, 'another port: applied');
  t.equal(changes.length, 2);
  t.same((store.get('ServiceEntry', 'dubbo', 'demo')?.object.spec as { ports: unknown }).ports, [
    { number: 20881, name: 'tcp-dubbo' },
  ]);

  // The file source confirms a different version: the pending change is gone, so the admitted
  // object is a change again.
  store.apply('file', 'ServiceEntry', 'dubbo', 'demo', se('demo', 20882));
  t.same(store.pendingKeys(), []);
  const before = applies.n;
  feed.record(create(se('demo', 20881)));
  t.equal(applies.n, before + 1, 'applied after the confirmation');
  t.same(store.pendingKeys(), ['ServiceEntry/dubbo/demo']);
  t.equal(
    (store.get('ServiceEntry', 'dubbo', 'demo')?.object.spec as { ports: { number: number }[] }).ports[0]
      ?.number,
    20881,
  );

  feed.record({
    operation: 'DELETE',
    kind: 'ServiceEntry',
    namespace: 'dubbo',
    name: 'demo',
    object: undefined,
  });
  t.equal(store.get('ServiceEntry', 'dubbo', 'demo'), undefined, 'the pending DELETE hides the file copy');
  feed.record(create(se('demo', 20881)));
  t.equal(applies.n, before + 3, 'after a DELETE the same object is applied again');
  t.equal(store.get('ServiceEntry', 'dubbo', 'demo')?.confirmed, false);
});

t.test('the remembered objects are bounded in number and size', async (t) => {
  const { feed, applies } = setup();
  const big = se('big', 20880, {
    endpoints: [{ address: '10.0.0.1', labels: { x: 'y'.repeat(RECENT_MAX_CHARS) } }],
  });
  feed.record(create(big));
  feed.record(create(big));
  t.equal(applies.n, 2, 'an object over the size bound is not remembered: applied each time');

  for (let i = 0; i <= RECENT_MAX; i++) feed.record(create(se(`s${i}`)));
  const n = applies.n;
  feed.record(create(se(`s${RECENT_MAX}`)));
  t.equal(applies.n, n, 'the newest key is remembered');
  feed.record(create(se('s0')));
  t.equal(applies.n, n + 1, 'the oldest key was forgotten: applied in full');
});

t.test(
  'sameJson: equal parses are the same; any difference, in value, type, order or length, is not',
  async (t) => {
    const text = JSON.stringify(
      se('demo', 20880, { endpoints: [{ address: '10.0.0.1', labels: { a: '1' } }] }),
    );
    t.ok(sameJson(JSON.parse(text), JSON.parse(text)));
    const variants = [
      text.replace('"10.0.0.1"', '"10.0.0.2"'),
      text.replace('"a":"1"', '"a":1'),
      text.replace('"a":"1"', '"a":"1","b":"2"'),
      text.replace('"labels":{"a":"1"}', '"labels":["a","1"]'),
      text.replace('"resolution":"STATIC"', '"resolution":null'),
      text.replace('"name":"demo","namespace":"dubbo"', '"namespace":"dubbo","name":"demo"'),
    ];
    for (const v of variants) {
      t.not(v, text);
      t.notOk(sameJson(JSON.parse(text), JSON.parse(v)), v);
    }
    t.ok(smallEnough(JSON.parse(text)));
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100; i++) deep = { x: deep };
    t.notOk(smallEnough(deep), 'deeper than the bound');
    t.notOk(smallEnough(Array.from({ length: 5000 }, () => 1)), 'more values than the bound');
  },
);

t.test('a metadata that is not an object is not spread into one key per character', async (t) => {
  const { store, feed } = setup();
  const object = se('odd');
  object.metadata = '\u200b'.repeat(65_000);
  feed.record({ operation: 'CREATE', kind: 'ServiceEntry', namespace: 'dubbo', name: 'odd', object });
  t.same(store.get('ServiceEntry', 'dubbo', 'odd')?.object.metadata, { namespace: 'dubbo' });
});

t.test(
  'the webhook callback queues: one recording per key per event-loop turn, the last change',
  async (t) => {
    const { store, feed, changes, applies } = setup();
    feed.admitted(create(se('demo')));
    feed.admitted(create(se('other')));
    feed.admitted(create(se('demo', 20881)));
    feed.admitted(create(se('demo', 20882)));
    t.equal(applies.n, 0, 'nothing recorded while the turn runs');
    t.equal(store.get('ServiceEntry', 'dubbo', 'demo'), undefined);
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(applies.n, 2, 'one recording per key');
    const ports = (store.get('ServiceEntry', 'dubbo', 'demo')?.object.spec as { ports: { number: number }[] })
      .ports;
    t.same(ports, [{ number: 20882, name: 'tcp-dubbo' }], 'the last change of the key wins');
    t.same(
      changes,
      [['ServiceEntry/dubbo/other'], ['ServiceEntry/dubbo/demo']],
      'keys in the order of their last change',
    );

    // A DELETE queued after a CREATE of the same key: the key ends deleted.
    feed.admitted({
      operation: 'DELETE',
      kind: 'ServiceEntry',
      namespace: 'dubbo',
      name: 'other',
      object: undefined,
    });
    feed.admitted(create(se('later')));
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(store.get('ServiceEntry', 'dubbo', 'other'), undefined);
    t.ok(store.get('ServiceEntry', 'dubbo', 'later'));
  },
);

t.test('stop() records what is still queued', async (t) => {
  const { store, feed } = setup();
  feed.start();
  feed.admitted(create(se('demo')));
  feed.stop();
  t.ok(store.get('ServiceEntry', 'dubbo', 'demo'), 'recorded at stop, not lost');
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(store.get('ServiceEntry', 'dubbo', 'demo'));
});

t.test('a change that fails to record is logged and the rest of the queue still recorded', async (t) => {
  const { store, feed } = setup();
  const apply = store.apply.bind(store);
  store.apply = (...args: Parameters<ConfigStore['apply']>) => {
    if (args[3] === 'boom') throw new Error('bug');
    return apply(...args);
  };
  feed.admitted(create(se('boom')));
  feed.admitted(create(se('fine')));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(store.get('ServiceEntry', 'dubbo', 'boom'), undefined);
  t.ok(store.get('ServiceEntry', 'dubbo', 'fine'));
});
