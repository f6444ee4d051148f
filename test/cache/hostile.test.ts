// Finding 1 of issue 11 (store part): a ServiceEntry nested 20,000 levels deep crashed
// ConfigStore.settle() after slot.effective was already replaced, poisoned the slot, and the
// admission feed's expiry interval then threw and ended the process. Now every object is checked
// against the bounds before anything changes, every step that can throw runs before the commit,
// rejections are reported once per version, and the expiry interval cannot throw out.
import t from 'tap';
import { ConfigStore, MAX_ADMITTED_JSON_LENGTH, type Rejection } from '../../src/cache/store.js';
import { jsonLengthAtMost, type JsonRecord } from '../../src/model/json.js';
import { MAX_OBJECT_DEPTH } from '../../src/model/limits.js';
import { AdmissionFeed } from '../../src/sources/admission.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { waitFor } from '../wait.js';

const HOST = 'demo.dubbo.svc.cluster.local';

function se(rv: string, extra: JsonRecord = {}, ports = [{ number: 20880, name: 'tcp-dubbo' }]): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'demo', namespace: 'dubbo', resourceVersion: rv },
    spec: { hosts: [HOST], addresses: ['240.240.1.1'], ports, resolution: 'STATIC', ...extra },
  };
}

/** A value nested `depth` levels deep, built without recursion. */
function deep(depth: number): JsonRecord {
  let v: JsonRecord = { leaf: true };
  for (let i = 0; i < depth; i++) v = { x: v };
  return v;
}

/** What a reader of the store sees of the demo service. */
function snapshot(store: ConfigStore): unknown {
  const entry = store.get('ServiceEntry', 'dubbo', 'demo');
  return {
    origin: entry?.origin,
    rv: (entry?.object.metadata as JsonRecord | undefined)?.resourceVersion,
    ports: store.protocolServices(HOST).map((s) => s.ports.map((p) => p.number)),
    address: store.addressOwner('240.240.1.1'),
    confirmedAddress: store.confirmedAddressOwner('240.240.1.1'),
    all: store.allProtocolServices().map((s) => s.key),
    pending: store.pendingKeys(),
    size: store.size,
  };
}

function recording(now: () => number = Date.now): { store: ConfigStore; rejections: Rejection[] } {
  const rejections: Rejection[] = [];
  const store = new ConfigStore('cluster.local', now, { onRejected: (r) => rejections.push(r) });
  return { store, rejections };
}

t.test('a 20,000-deep object from Kubernetes: not taken, previous version kept, reported once', async (t) => {
  const { store, rejections } = recording();
  store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', se('1'));
  const before = snapshot(store);
  t.same(before, {
    origin: 'kubernetes',
    rv: '1',
    ports: [[20880]],
    address: 'ServiceEntry/dubbo/demo',
    confirmedAddress: 'ServiceEntry/dubbo/demo',
    all: ['ServiceEntry/dubbo/demo'],
    pending: [],
    size: 1,
  });
  const hostile = se('2', { endpoints: [{ address: '10.0.0.1', labels: deep(20_000) }] });
  t.same([...store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', hostile)], [], 'nothing affected');
  t.same(snapshot(store), before, 'the store is exactly as before');
  t.same(rejections, [
    {
      origin: 'kubernetes',
      key: 'ServiceEntry/dubbo/demo',
      version: '2',
      path: `spec.endpoints[0].labels${'.x'.repeat(16)}...`,
      message: `nested deeper than Breeze's limit of ${MAX_OBJECT_DEPTH} levels`,
    },
  ]);
  t.notMatch(JSON.stringify(rejections), /leaf/, 'no object body in the report');

  // The same version again (a relist): kept out, not reported again; a relist keeps the old one.
  store.replace('kubernetes', 'ServiceEntry', [hostile]);
  store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', hostile);
  t.equal(rejections.length, 1, 'once per object version');
  t.same(snapshot(store), before, 'a relist holding the rejected version does not delete the old one');
  store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', {
    ...hostile,
    metadata: { ...(hostile.metadata as JsonRecord), resourceVersion: '3' },
  });
  t.equal(rejections.length, 2, 'a new version is reported again');

  // A sane version is taken as usual.
  const fixed = se('4', {}, [{ number: 20881, name: 'tcp-dubbo' }]);
  t.same([...store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', fixed)], ['ServiceEntry/dubbo/demo']);
  t.same((snapshot(store) as { ports: unknown }).ports, [[20881]]);
  t.same(
    [...store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', hostile)],
    [],
    'after a good version the same bad one is reported again',
  );
  t.equal(rejections.length, 3);
});

t.test('every bound: long strings and long lists are kept out the same way', async (t) => {
  const { store, rejections } = recording();
  store.apply('istiod', 'ServiceEntry', 'dubbo', 'demo', se('1'));
  const before = snapshot(store);
  store.apply('istiod', 'ServiceEntry', 'dubbo', 'demo', se('2', { exportTo: ['x'.repeat(2_000_000)] }));
  store.apply('file', 'ServiceEntry', 'dubbo', 'demo', se('3', { endpoints: new Array(100_001).fill({}) }));
  t.same(snapshot(store), before);
  t.same(
    rejections.map((r) => [r.origin, r.path, r.message]),
    [
      [
        'istiod',
        'spec.exportTo[0]',
        "a string of 2000000 characters is longer than Breeze's limit of 1572864 (no object etcd stores holds one)",
      ],
      ['file', 'spec.endpoints', "a list of 100001 items is longer than Breeze's limit of 100000"],
    ],
  );
});

t.test('a 20,000-deep admission (local mode): not pending, the expiry keeps working', async (t) => {
  let now = 0;
  const { store, rejections } = recording(() => now);
  const feed = new AdmissionFeed(store, {
    graceMs: 30_000,
    logger: createLogger({ level: 'silent' }),
    metrics: createMetrics(),
  });
  store.apply('file', 'ServiceEntry', 'dubbo', 'demo', se('1'));
  const before = snapshot(store);
  const object = se('2', { endpoints: [{ address: '10.0.0.1', labels: deep(20_000) }] });
  feed.record({ operation: 'UPDATE', kind: 'ServiceEntry', namespace: 'dubbo', name: 'demo', object });
  t.same(snapshot(store), before, 'not pending, previous version effective');
  t.equal(rejections[0]?.origin, 'admission');
  now = 31_000;
  feed.expire();
  t.same(snapshot(store), before);
  // A sane admission still takes the fast path and expires.
  feed.record({
    operation: 'UPDATE',
    kind: 'ServiceEntry',
    namespace: 'dubbo',
    name: 'demo',
    object: se('5'),
  });
  t.same(store.pendingKeys(), ['ServiceEntry/dubbo/demo']);
  now = 70_000;
  store.progress('file', 'ServiceEntry'); // the file source reported since: it would have seen it
  feed.expire();
  t.same(snapshot(store), before, 'unconfirmed: dropped, back to the file version');
});

t.test('a step that throws after the bounds check changes nothing (plan, then commit)', async (t) => {
  const { store, rejections } = recording();
  store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', se('1'));
  const before = snapshot(store);
  // Within the bounds, but canonicalJson cannot serialize it: the content key throws.
  const odd = se('2', { weird: 10n as unknown as string });
  t.doesNotThrow(() => store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', odd));
  t.same(snapshot(store), before, 'previous version kept, indexes intact');
  t.match(rejections, [{ origin: 'kubernetes', version: '2', path: '', message: /^could not be read: / }]);
  t.doesNotThrow(() => store.replace('kubernetes', 'ServiceEntry', [odd, se('1')]));
  t.same(snapshot(store), before);
});

t.test('a listener that throws does not break the store or the other listeners', async (t) => {
  const errors: unknown[] = [];
  const store = new ConfigStore('cluster.local', Date.now, { onListenerError: (e) => errors.push(e) });
  const heard: string[][] = [];
  store.subscribe(() => {
    throw new Error('boom');
  });
  store.subscribe((keys) => heard.push([...keys]));
  t.doesNotThrow(() => store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', se('1')));
  t.same(heard, [['ServiceEntry/dubbo/demo']]);
  t.equal(errors.length, 1);
  t.equal(store.get('ServiceEntry', 'dubbo', 'demo')?.origin, 'kubernetes');
});

t.test('a confirmation with the same content moves the address into the confirmed index', async (t) => {
  const store = new ConfigStore();
  const created = se('1');
  delete (created.metadata as JsonRecord).resourceVersion; // a CREATE has none yet
  store.apply('admission', 'ServiceEntry', 'dubbo', 'demo', created);
  t.equal(store.addressOwner('240.240.1.1'), 'ServiceEntry/dubbo/demo');
  t.equal(store.confirmedAddressOwner('240.240.1.1'), undefined, 'pending owns no address for VIPs');
  t.same([...store.apply('file', 'ServiceEntry', 'dubbo', 'demo', se('1'))], [], 'same content: no push');
  t.equal(store.confirmedAddressOwner('240.240.1.1'), 'ServiceEntry/dubbo/demo');
  store.remove('ServiceEntry', 'dubbo', 'demo', 'file');
  t.equal(store.confirmedAddressOwner('240.240.1.1'), undefined);
});

t.test('the expiry interval survives a pass that throws', async (t) => {
  const store = new ConfigStore();
  let calls = 0;
  store.expirePending = () => {
    calls++;
    throw new RangeError('Maximum call stack size exceeded');
  };
  const lines: string[] = [];
  const feed = new AdmissionFeed(store, {
    graceMs: 1000,
    logger: createLogger({
      level: 'error',
      destination: { write: (l: string) => void lines.push(l) },
    }),
    metrics: createMetrics(),
  });
  t.doesNotThrow(() => feed.expire());
  feed.start();
  t.teardown(() => feed.stop());
  await waitFor('two more expiry ticks', () => calls >= 3, 10_000);
  t.ok(lines.length >= 3, 'each failure logged');
  t.match(lines[0], /expiring unconfirmed admitted changes failed/);
});

t.test('an admitted object over 256 KiB of JSON is not taken; the same from Kubernetes is', async (t) => {
  const { store, rejections } = recording();
  store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', se('1'));
  const before = snapshot(store);
  const big = se('1', {});
  big.metadata = {
    ...(big.metadata as JsonRecord),
    annotations: { a: 'x'.repeat(MAX_ADMITTED_JSON_LENGTH) },
  };
  store.apply('admission', 'ServiceEntry', 'dubbo', 'demo', big);
  t.same(snapshot(store), before, 'nothing changed');
  t.same(rejections, [
    {
      origin: 'admission',
      key: 'ServiceEntry/dubbo/demo',
      version: '1',
      path: '',
      message: `is larger than ${MAX_ADMITTED_JSON_LENGTH} characters of JSON, more than the admission fast path takes: its source of record (the file, or the API server) delivers it`,
    },
  ]);
  // Just below the limit, it is taken as pending.
  const fits = se('1', {});
  fits.metadata = {
    ...(fits.metadata as JsonRecord),
    annotations: { a: 'x'.repeat(MAX_ADMITTED_JSON_LENGTH - 400) },
  };
  store.apply('admission', 'ServiceEntry', 'dubbo', 'demo', fits);
  t.same(store.pendingKeys(), ['ServiceEntry/dubbo/demo']);
  // An authoritative source is not held to it.
  store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', {
    ...big,
    metadata: { ...(big.metadata as JsonRecord), resourceVersion: '2' },
  });
  t.equal((store.get('ServiceEntry', 'dubbo', 'demo')?.object.metadata as JsonRecord).resourceVersion, '2');
});

t.test('jsonLengthAtMost agrees with JSON.stringify and stops at the limit', async (t) => {
  const values: unknown[] = [
    null,
    true,
    'abc',
    [],
    {},
    [1, 'a', null, { b: [true, false] }],
    { a: { b: { c: 'ddd' } }, e: [1, 2, 3] },
    se('7'),
  ];
  for (const v of values) {
    const length = JSON.stringify(v).length;
    t.ok(jsonLengthAtMost(v, length), `${JSON.stringify(v).slice(0, 40)} fits its own length`);
    // Numbers count one character each, so only values without longer numbers are exact.
    if (!/\d\d/.test(JSON.stringify(v)))
      t.notOk(jsonLengthAtMost(v, length - 1), `${JSON.stringify(v).slice(0, 40)} does not fit one less`);
  }
  // A list of a million items past a limit of 100 is refused before it is walked.
  const huge = Array.from({ length: 1_000_000 }, () => ({ a: 1 }));
  t.notOk(jsonLengthAtMost(huge, 100));
  t.notOk(jsonLengthAtMost(deep(100_000), 1_000), 'deep values: no recursion');
});
