import t from 'tap';
import { ConfigStore, visibleIn } from '../../src/cache/store.js';
import type { JsonRecord } from '../../src/model/json.js';

const se = (name: string, ns: string, host: string, extra: JsonRecord = {}): JsonRecord => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: ns, resourceVersion: '1', ...extra },
  spec: {
    hosts: [host],
    addresses: ['240.240.1.1'],
    ports: [{ number: 20880, name: 'tcp-dubbo' }],
    resolution: 'STATIC',
  },
});
const vs = (name: string, ns: string, hosts: string[], rv = '1', extra: JsonRecord = {}): JsonRecord => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: ns, resourceVersion: rv },
  spec: { hosts, http: [{ route: [{ destination: { host: hosts[0] } }] }], ...extra },
});
const keys = (s: ReadonlySet<string>) => [...s].sort();
const HOST = 'demo.dubbo.svc.cluster.local';

t.test('a change reports the services it touches', async (t) => {
  const store = new ConfigStore();
  t.same(keys(store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', se('demo', 'dubbo', HOST))), [
    'ServiceEntry/dubbo/demo',
  ]);
  t.same(
    keys(store.apply('kubernetes', 'VirtualService', 'dubbo', 'r', vs('r', 'dubbo', ['demo']))),
    ['ServiceEntry/dubbo/demo'],
    'short host resolved in the VS namespace',
  );
  t.same(
    keys(store.apply('kubernetes', 'VirtualService', 'dubbo', 'r', vs('r', 'dubbo', ['demo'], '2'))),
    [],
    'same content, new resourceVersion: nothing',
  );
  const withStatus = { ...vs('r', 'dubbo', ['demo'], '3'), status: { conditions: [{ type: 'Reconciled' }] } };
  t.same(
    keys(store.apply('kubernetes', 'VirtualService', 'dubbo', 'r', withStatus)),
    [],
    'status-only: nothing',
  );
  const annotated = vs('r', 'dubbo', ['demo'], '4');
  (annotated.metadata as JsonRecord).annotations = { owner: 'team-a' };
  t.same(
    keys(store.apply('kubernetes', 'VirtualService', 'dubbo', 'r', annotated)),
    ['ServiceEntry/dubbo/demo'],
    'annotations count',
  );
  t.same(
    keys(
      store.apply(
        'kubernetes',
        'VirtualService',
        'dubbo',
        'r',
        vs('r', 'dubbo', ['other.ns.svc.cluster.local'], '5'),
      ),
    ),
    ['ServiceEntry/dubbo/demo'],
    'moving away touches the old host',
  );
  t.same(
    keys(
      store.apply('kubernetes', 'DestinationRule', 'dubbo', 'd', {
        kind: 'DestinationRule',
        metadata: { name: 'd', namespace: 'dubbo' },
        spec: { host: HOST },
      }),
    ),
    ['ServiceEntry/dubbo/demo'],
  );
  t.same(
    keys(
      store.apply('kubernetes', 'Deployment', 'dubbo', 'x', {
        kind: 'Deployment',
        metadata: { name: 'x', namespace: 'dubbo' },
      }),
    ),
    [],
  );
});

t.test(
  'a Secret change reaches the Redis services using it; a routed-to service reaches the RedisService',
  async (t) => {
    const store = new ConfigStore();
    const svc = (name: string, port = 6379): JsonRecord => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'redis' },
      spec: { clusterIP: '10.0.0.1', ports: [{ name: 'tcp-redis', port }] },
    });
    store.upsert(svc('cache'), 'kubernetes');
    store.upsert(svc('backend'), 'kubernetes');
    store.upsert(
      {
        kind: 'RedisService',
        metadata: { name: 'cache', namespace: 'redis' },
        spec: {
          host: ['cache.redis.svc.cluster.local'],
          settings: { auth: { secret: { name: 'auth' } } },
          redis: [{ route: { host: 'backend' } }],
        },
      },
      'kubernetes',
    );
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'auth', namespace: 'redis' },
      data: { password: 'YQ==' },
    };
    t.same(keys(store.apply('kubernetes', 'Secret', 'redis', 'auth', secret)), ['Service/redis/cache']);
    t.same(
      keys(store.apply('kubernetes', 'Secret', 'redis', 'auth', { ...secret, data: { password: 'Yg==' } })),
      ['Service/redis/cache'],
    );
    t.same(keys(store.apply('kubernetes', 'Service', 'redis', 'backend', svc('backend', 6380))), [
      'Service/redis/backend',
      'Service/redis/cache',
    ]);
    t.same(
      keys(store.apply('kubernetes', 'Secret', 'other', 'auth', secret)),
      [],
      'a Secret elsewhere: nothing',
    );
  },
);

t.test('admission changes are pending until confirmed, and dropped after the grace period', async (t) => {
  let now = 1000;
  const store = new ConfigStore('cluster.local', () => now);
  t.same(
    keys(
      store.apply(
        'admission',
        'ServiceEntry',
        'dubbo',
        'demo',
        se('demo', 'dubbo', HOST, { resourceVersion: undefined }),
      ),
    ),
    ['ServiceEntry/dubbo/demo'],
  );
  t.match(store.get('ServiceEntry', 'dubbo', 'demo'), { origin: 'admission', confirmed: false });
  now += 10_000;
  t.same(store.expirePending(30_000).dropped, [], 'not yet');
  store.apply(
    'kubernetes',
    'ServiceEntry',
    'dubbo',
    'demo',
    se('demo', 'dubbo', HOST, { resourceVersion: '7' }),
  );
  t.match(
    store.get('ServiceEntry', 'dubbo', 'demo'),
    { origin: 'kubernetes', confirmed: true },
    'the watch confirms it',
  );
  t.same(store.pendingKeys(), []);

  // An UPDATE never persisted: the old, confirmed state comes back after the grace period.
  const changed = se('demo', 'dubbo', HOST, { resourceVersion: '7' });
  (changed.spec as JsonRecord).addresses = ['240.240.9.9'];
  store.apply('admission', 'ServiceEntry', 'dubbo', 'demo', changed);
  t.equal(store.addressOwner('240.240.9.9'), 'ServiceEntry/dubbo/demo');
  store.apply(
    'kubernetes',
    'ServiceEntry',
    'dubbo',
    'demo',
    se('demo', 'dubbo', HOST, { resourceVersion: '7' }),
  );
  t.equal(
    store.pendingKeys().length,
    1,
    'an event carrying the version the update was based on does not confirm it',
  );
  now += 31_000;
  store.progress('kubernetes', 'ServiceEntry'); // a bookmark: the watch is current
  t.same(store.expirePending(30_000), { dropped: ['ServiceEntry/dubbo/demo'], held: 0 });
  t.equal(store.addressOwner('240.240.9.9'), undefined);
  t.equal(store.addressOwner('240.240.1.1'), 'ServiceEntry/dubbo/demo', 'back to the persisted state');

  // A DELETE hides the object until the watch confirms, or comes back when never persisted.
  store.apply('admission', 'ServiceEntry', 'dubbo', 'demo', undefined);
  t.equal(store.get('ServiceEntry', 'dubbo', 'demo'), undefined);
  now += 31_000;
  store.progress('kubernetes', 'ServiceEntry');
  store.expirePending(30_000);
  t.ok(store.get('ServiceEntry', 'dubbo', 'demo'), 'a denied delete restores it');
  store.apply('admission', 'ServiceEntry', 'dubbo', 'demo', undefined);
  store.apply('kubernetes', 'ServiceEntry', 'dubbo', 'demo', undefined);
  now += 31_000;
  store.expirePending(30_000);
  t.equal(store.get('ServiceEntry', 'dubbo', 'demo'), undefined, 'confirmed delete stays deleted');
  t.equal(store.size, 0);
});

t.test('a pending change outlives the grace period while its sources are silent', async (t) => {
  let now = 1000;
  const store = new ConfigStore('cluster.local', () => now);
  store.replace('kubernetes', 'ServiceEntry', []); // the initial list: kubernetes serves this kind
  now += 5;
  store.apply('admission', 'ServiceEntry', 'dubbo', 'demo', se('demo', 'dubbo', HOST));
  now += 31_000;
  t.same(store.expirePending(30_000), { dropped: [], held: 1 }, 'the watch said nothing since: held');
  t.ok(store.get('ServiceEntry', 'dubbo', 'demo'), 'its config stays in the cache');
  store.apply('kubernetes', 'VirtualService', 'dubbo', 'other', vs('other', 'dubbo', [HOST], '3'));
  t.same(store.expirePending(30_000).held, 1, 'another kind speaking does not count');
  store.replace('istiod', 'ServiceEntry', []);
  t.same(
    store.expirePending(30_000).held,
    1,
    'istiod speaking does not count where Kubernetes serves the kind',
  );
  store.replace('kubernetes', 'ServiceEntry', [se('demo', 'dubbo', HOST, { resourceVersion: '1' })], 1002);
  t.same(
    store.expirePending(30_000).held,
    1,
    'a slow relist requested before the admission is no sign of progress',
  );
  store.progress('kubernetes', 'ServiceEntry');
  t.same(
    store.expirePending(30_000),
    { dropped: ['ServiceEntry/dubbo/demo'], held: 0 },
    'a bookmark: dropped',
  );

  store.apply('admission', 'ServiceEntry', 'dubbo', 'stuck', se('stuck', 'dubbo', 'stuck.example'));
  now += 299_999;
  t.same(store.expirePending(30_000).held, 1);
  now += 1;
  t.same(
    store.expirePending(30_000),
    { dropped: ['ServiceEntry/dubbo/stuck'], held: 0 },
    'never longer than 10 times the grace period',
  );

  store.apply('admission', 'DestinationRule', 'dubbo', 'x', { kind: 'DestinationRule', spec: {} });
  now += 30_000;
  t.same(
    store.expirePending(30_000),
    { dropped: ['DestinationRule/dubbo/x'], held: 0 },
    'a kind no source serves: the grace period alone',
  );
});

t.test(
  'precedence: kubernetes, then file, then istiod; a kubernetes delete is not undone by istiod',
  async (t) => {
    const store = new ConfigStore();
    const a = vs('r', 'dubbo', [HOST], '1');
    const b = vs('r', 'dubbo', [HOST, 'x.dubbo.svc.cluster.local'], '2');
    store.apply('istiod', 'VirtualService', 'dubbo', 'r', a);
    t.equal(store.get('VirtualService', 'dubbo', 'r')?.origin, 'istiod', 'known only to istiod: used');
    store.apply('kubernetes', 'VirtualService', 'dubbo', 'r', b);
    t.equal(store.get('VirtualService', 'dubbo', 'r')?.object, b);
    store.apply('kubernetes', 'VirtualService', 'dubbo', 'r', undefined);
    t.equal(
      store.get('VirtualService', 'dubbo', 'r'),
      undefined,
      'istiod lagging behind does not resurrect it',
    );
    store.apply('istiod', 'VirtualService', 'dubbo', 'r', undefined);
    store.apply('istiod', 'VirtualService', 'dubbo', 'r', a);
    t.equal(
      store.get('VirtualService', 'dubbo', 'r')?.origin,
      'istiod',
      'a new object from istiod is used again',
    );
  },
);

t.test('replace deletes what that origin no longer has, and only that', async (t) => {
  const store = new ConfigStore();
  store.replace('kubernetes', 'VirtualService', [vs('a', 'ns', ['a.ns']), vs('b', 'ns', ['b.ns'])]);
  store.apply('istiod', 'VirtualService', 'ns', 'c', vs('c', 'ns', ['c.ns']));
  store.replace('kubernetes', 'VirtualService', [vs('a', 'ns', ['a.ns'])]);
  t.same(
    store
      .list('VirtualService')
      .map((e) => e.name)
      .sort(),
    ['a', 'c'],
  );
  store.replace('istiod', 'VirtualService', []);
  t.same(
    store.list('VirtualService').map((e) => e.name),
    ['a'],
  );
});

t.test('exportTo decides visibility; several VirtualServices are ordered oldest first', async (t) => {
  const store = new ConfigStore();
  store.upsert(vs('late', 'a', [HOST], '1', {}), 'kubernetes');
  const early = vs('early', 'b', [HOST]);
  (early.metadata as JsonRecord).creationTimestamp = '2024-01-01T00:00:00Z';
  store.upsert(early, 'kubernetes');
  const hidden = vs('hidden', 'c', [HOST], '1', { exportTo: ['.'] });
  (hidden.metadata as JsonRecord).creationTimestamp = '2020-01-01T00:00:00Z';
  store.upsert(hidden, 'kubernetes');
  t.same(
    store.forHost('VirtualService', HOST).map((e) => e.name),
    ['hidden', 'early', 'late'],
  );
  t.same(
    store.forHost('VirtualService', HOST, 'dubbo').map((e) => e.name),
    ['early', 'late'],
  );
  t.same(
    store.forHost('VirtualService', HOST, 'c').map((e) => e.name),
    ['hidden', 'early', 'late'],
  );
  t.ok(visibleIn(vs('x', 'a', [HOST], '1', { exportTo: ['b', 'c'] }), 'b'));
  t.notOk(visibleIn(vs('x', 'a', [HOST], '1', { exportTo: ['~'] }), 'a'));
});

t.test('subscribers hear affected keys', async (t) => {
  const store = new ConfigStore();
  const heard: string[][] = [];
  const off = store.subscribe((k) => heard.push(keys(k)));
  store.upsert(se('demo', 'dubbo', HOST), 'kubernetes');
  store.upsert(se('demo', 'dubbo', HOST), 'kubernetes');
  off();
  store.remove('ServiceEntry', 'dubbo', 'demo', 'kubernetes');
  t.same(heard, [['ServiceEntry/dubbo/demo']]);
});
