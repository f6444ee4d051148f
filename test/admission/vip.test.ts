import t from 'tap';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';
import { mutateServiceEntry } from '../../src/admission/mutators/serviceentry.js';

t.test('range excludes network and broadcast addresses', async (t) => {
  const r = new Ipv4Range('10.0.0.0/30');
  t.equal(r.size, 2);
  t.equal(r.at(0), '10.0.0.1');
  t.equal(r.at(1), '10.0.0.2');
  t.notOk(r.contains('10.0.0.0'));
  t.notOk(r.contains('10.0.0.3'));
  t.ok(r.contains('10.0.0.2'));
  const wide = new Ipv4Range('240.240.7.9/16');
  t.equal(wide.at(0), '240.240.0.1', 'host bits in the flag are ignored');
  t.equal(wide.at(wide.size - 1), '240.240.255.254');
  for (const bad of ['240.240.0.0', '300.0.0.0/16', '10.0.0.0/31', 'fd00::/64', '10.0.0.0/7']) {
    t.throws(() => new Ipv4Range(bad), { code: 'BAD_FLAG' }, bad);
  }
});

t.test('allocation is stable per namespace/name, unique, and reserved against quick repeats', async (t) => {
  const store = new ConfigStore();
  const now = 1_000;
  const a = new VipAllocator(new Ipv4Range('240.240.0.0/16'), store, 60_000, () => now);
  const b = new VipAllocator(new Ipv4Range('240.240.0.0/16'), store, 60_000, () => now);
  const v1 = a.allocate('ns', 'one', true);
  t.equal(b.allocate('ns', 'one', false), v1, 'another replica computes the same VIP');
  t.equal(a.allocate('ns', 'one', true), v1, 'the same entry asking again gets the same VIP');
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const v = a.allocate('ns', `svc-${i}`, true);
    t.ok(v !== undefined && !seen.has(v), `unique ${v}`);
    seen.add(v!);
  }
});

t.test('a VIP used in the cache is skipped; freed when the owner goes', async (t) => {
  const store = new ConfigStore();
  const alloc = new VipAllocator(new Ipv4Range('240.240.0.0/16'), store);
  const preferred = alloc.allocate('ns', 'two', false)!;
  store.upsert(
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'x', namespace: 'o' },
      spec: { hosts: ['x.o'], addresses: [preferred] },
    },
    'file',
  );
  const next = alloc.allocate('ns', 'two', false);
  t.not(next, preferred);
  store.remove('ServiceEntry', 'o', 'x');
  t.equal(alloc.allocate('ns', 'two', false), preferred, 'free again');
});

t.test('reservations expire', async (t) => {
  let now = 0;
  const alloc = new VipAllocator(new Ipv4Range('10.0.0.0/30'), new ConfigStore(), 1000, () => now);
  const x = alloc.allocate('ns', 'a', true);
  const y = alloc.allocate('ns', 'b', true);
  t.not(x, y);
  t.equal(alloc.allocate('ns', 'c', true), undefined, 'full');
  now = 5000;
  alloc.prune();
  t.equal(alloc.reservations, 0);
  t.ok(alloc.allocate('ns', 'c', true));
});

t.test('a full range is a clear denial from the mutator', async (t) => {
  const alloc = new VipAllocator(new Ipv4Range('10.0.0.0/30'), new ConfigStore());
  alloc.allocate('ns', 'a', true);
  alloc.allocate('ns', 'b', true);
  const object = {
    spec: { hosts: ['c.ns'], resolution: 'DNS', ports: [{ number: 6379, name: 'tcp-redis' }] },
  };
  const r = mutateServiceEntry(object, {
    namespace: 'ns',
    name: 'c',
    oldObject: undefined,
    vips: alloc,
    dryRun: false,
  });
  t.same(r, {
    ok: false,
    path: 'spec.addresses',
    message:
      'no free VIP left in --vip-cidr 10.0.0.0/30 (2 addresses, all in use); set spec.addresses explicitly or widen --vip-cidr',
  });
});
