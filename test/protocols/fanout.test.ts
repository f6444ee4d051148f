// Issue 11, finding 5: one ServiceEntry with 20,000 addresses and a tcp-redis port made 20,000
// EnvoyFilters. Generation now stops at MAX_LISTENERS_PER_SERVICE address:port listeners (the
// first ones, ports in spec order, each with its addresses in order) and says so in a note, which
// is not a problem: the filters it does generate are complete and may be written.
import t from 'tap';
import { ConfigStore } from '../../src/cache/store.js';
import { formatProblem, generateAll, generateForKeys } from '../../src/protocols/generate.js';
import type { JsonRecord } from '../../src/model/json.js';
import { MAX_LISTENERS_PER_SERVICE } from '../../src/model/limits.js';

const options = { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' };
const HOST = 'redis.redis.svc.cluster.local';
const addresses = Array.from(
  { length: 20_000 },
  (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
);

function entry(ports: { number: number; name: string }[], addrs: string[]): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'redis', namespace: 'redis' },
    spec: {
      hosts: [HOST],
      addresses: addrs,
      resolution: 'STATIC',
      workloadSelector: { labels: { app: 'redis' } },
      ports: ports.map((p) => ({ ...p, protocol: 'TCP' })),
    },
  };
}

const listenerOf = (ef: JsonRecord): string =>
  String(
    (
      ((((ef.spec as JsonRecord).configPatches as JsonRecord[])[0] as JsonRecord).match as JsonRecord)
        .listener as JsonRecord
    ).name,
  );

t.test(
  '20,000 addresses on a tcp-redis port: the first 256 listeners get filters, with a note',
  async (t) => {
    const store = new ConfigStore();
    store.upsert(entry([{ number: 6379, name: 'tcp-redis' }], addresses), 'file');
    const out = generateForKeys(store, ['ServiceEntry/redis/redis'], options).get('ServiceEntry/redis/redis');
    t.ok(out);
    t.same(out!.problems, [], 'the cap is no generation problem: existing filters are not kept back');
    const outbound = out!.envoyFilters.map(listenerOf).filter((n) => n !== 'virtualInbound');
    t.equal(outbound.length, MAX_LISTENERS_PER_SERVICE);
    t.same(
      outbound,
      addresses.slice(0, MAX_LISTENERS_PER_SERVICE).map((a) => `${a}_6379`),
      'the first addresses, in spec order',
    );
    t.equal(out!.envoyFilters.length, MAX_LISTENERS_PER_SERVICE + 1, 'and the inbound filter');
    t.same(out!.notes.map(formatProblem), [
      `ServiceEntry/redis/redis outbound: ${20_000 - MAX_LISTENERS_PER_SERVICE} more address:port listeners than the ${MAX_LISTENERS_PER_SERVICE} one service may fan out to stay plain TCP (filters go to the first ones: ports in spec order, each with its addresses in order)`,
    ]);
  },
);

t.test('two ports: the first port takes its addresses first; duplicates count once', async (t) => {
  const store = new ConfigStore();
  const addrs = [...addresses.slice(0, 200), addresses[0]!, ...addresses.slice(200, 300)];
  store.upsert(
    entry(
      [
        { number: 6379, name: 'tcp-redis' },
        { number: 6380, name: 'tcp-redis-replica' },
      ],
      addrs,
    ),
    'file',
  );
  const result = generateAll(store, options);
  t.same(result.problems, [], 'a duplicate address is no EnvoyFilter name clash');
  const outbound = result.envoyFilters.map(listenerOf).filter((n) => n !== 'virtualInbound');
  t.equal(outbound.length, MAX_LISTENERS_PER_SERVICE);
  t.equal(outbound.filter((n) => n.endsWith('_6379')).length, 256, 'all 256 to the first port');
  t.equal(result.notes.length, 1);
  t.match(result.notes[0]?.message, /^344 more address:port listeners/);
});

t.test('under the cap: every listener, no note', async (t) => {
  const store = new ConfigStore();
  store.upsert(entry([{ number: 6379, name: 'tcp-redis' }], addresses.slice(0, 3)), 'file');
  const result = generateAll(store, options);
  t.same(result.problems, []);
  t.same(result.notes, []);
  t.equal(result.envoyFilters.length, 4);
});
