import t from 'tap';
import { Ipv4Range, MAX_VIP_PROBES, VipAllocator } from '../../src/admission/vip.js';
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

/** A ServiceEntry the API server persisted (the watch delivered it) using these addresses. */
function persisted(store: ConfigStore, namespace: string, name: string, addresses: string[]): void {
  store.apply('kubernetes', 'ServiceEntry', namespace, name, {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace, resourceVersion: '1' },
    spec: { hosts: [`${name}.${namespace}`], addresses, ports: [{ number: 6379, name: 'tcp-redis' }] },
  });
}

/** The review body of a real protocol ServiceEntry without addresses, mutated as /mutate does. */
function mutate(alloc: VipAllocator, namespace: string, name: string, dryRun = false) {
  const object = {
    spec: {
      hosts: [`${name}.${namespace}`],
      resolution: 'DNS',
      ports: [{ number: 6379, name: 'tcp-redis' }],
    },
  };
  return mutateServiceEntry(object, { namespace, name, oldObject: undefined, vips: alloc, dryRun });
}

t.test('reservations expire', async (t) => {
  let now = 0;
  const alloc = new VipAllocator(new Ipv4Range('10.0.0.0/29'), new ConfigStore(), 1000, () => now);
  const x = alloc.allocate('ns', 'a', true);
  t.ok(x);
  t.equal(alloc.reservations, 1);
  now = 5000;
  alloc.prune();
  t.equal(alloc.reservations, 0);
  t.equal(alloc.allocate('ns', 'a', true), x, 'the same start address again');
});

t.test('one reservation per ServiceEntry; capped at a quarter of the range, oldest evicted', async (t) => {
  const alloc = new VipAllocator(new Ipv4Range('10.0.0.0/24'), new ConfigStore(), 60_000, () => 0);
  t.equal(alloc.maxReservations, 63);
  const first = alloc.allocate('ns', 'same', true);
  for (let i = 0; i < 10; i++) t.equal(alloc.allocate('ns', 'same', true), first, 'asking again: same VIP');
  t.equal(alloc.reservations, 1, 'one entry holds one reservation');
  for (let i = 0; i < 500; i++) alloc.allocate('forged', `f-${i}`, true);
  t.equal(alloc.reservations, 63, 'never more than the cap');
});

t.test('finding 7: a flood of forged /mutate calls cannot make a real ServiceEntry fail', async (t) => {
  // Forged reviews POSTed to /mutate: never persisted, so never in the confirmed cache.
  const store = new ConfigStore();
  const alloc = new VipAllocator(new Ipv4Range('10.0.0.0/28'), store, 60_000, () => 0);
  let patched = 0;
  for (let i = 0; i < 10_000; i++) if (mutate(alloc, 'attacker', `forged-${i}`).ok) patched++;
  t.equal(patched, 10_000, 'every forged mutation was answered with a VIP');
  t.ok(alloc.reservations <= alloc.maxReservations, `${alloc.reservations} reservations`);
  // Real ServiceEntries: each gets a VIP no confirmed ServiceEntry uses, and once persisted owns it.
  const seen = new Set<string>();
  for (let i = 0; i < 14; i++) {
    const r = mutate(alloc, 'prod', `real-${i}`);
    if (!r.ok) {
      t.fail(`real-${i} denied: ${r.message}`);
      break;
    }
    const vip = JSON.stringify(r.patch.at(-1)?.value).replace(/[^0-9.]/g, '');
    t.notOk(seen.has(vip), `real-${i}: ${vip} is not used by another real ServiceEntry`);
    seen.add(vip);
    persisted(store, 'prod', `real-${i}`, [vip]);
  }
  t.equal(seen.size, 14, 'the whole /28 (14 addresses) went to real ServiceEntries');
  t.same(mutate(alloc, 'prod', 'one-too-many'), {
    ok: false,
    path: 'spec.addresses',
    message:
      'no free VIP left in --vip-cidr 10.0.0.0/28 (14 addresses, all in use); set spec.addresses explicitly or widen --vip-cidr',
  });
});

t.test('concurrent real creates (before the watch shows them) get distinct VIPs', async (t) => {
  const store = new ConfigStore();
  const alloc = new VipAllocator(new Ipv4Range('10.0.0.0/24'), store, 60_000, () => 0);
  for (let i = 0; i < 200; i++) alloc.allocate('attacker', `forged-${i}`, true);
  const vips = Array.from({ length: 40 }, (_, i) => alloc.allocate('prod', `svc-${i}`, true));
  t.equal(new Set(vips).size, 40, 'distinct');
  t.ok(vips.every((v) => v !== undefined));
});

t.test('pending admission entries (local mode) do not own addresses; confirmed ones do', async (t) => {
  const store = new ConfigStore();
  const alloc = new VipAllocator(new Ipv4Range('10.0.0.0/30'), store, 60_000, () => 0);
  store.apply('admission', 'ServiceEntry', 'x', 'pending', {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'pending', namespace: 'x' },
    spec: { hosts: ['p.x'], addresses: ['10.0.0.1', '10.0.0.2'] },
  });
  t.equal(store.addressOwner('10.0.0.1'), 'ServiceEntry/x/pending', 'validators still see it');
  t.ok(alloc.allocate('ns', 'a', false), 'but it takes no VIP from a real request');
  persisted(store, 'o', 'p', ['10.0.0.1', '10.0.0.2']);
  t.equal(alloc.allocate('ns', 'a', false), undefined, 'confirmed owners do');
});

t.test('one allocation probes a bounded number of addresses, even in a /8', async (t) => {
  let probes = 0;
  const everyAddressUsed = {
    addressOwner: () => undefined,
    confirmedAddressOwner: () => {
      probes++;
      return 'ServiceEntry/o/other';
    },
  };
  const alloc = new VipAllocator(new Ipv4Range('10.0.0.0/8'), everyAddressUsed);
  t.equal(alloc.allocate('ns', 'a', true), undefined);
  t.equal(probes, MAX_VIP_PROBES);
});

t.test('a full range is a clear denial from the mutator', async (t) => {
  const store = new ConfigStore();
  persisted(store, 'o', 'x', ['10.0.0.1', '10.0.0.2']);
  const alloc = new VipAllocator(new Ipv4Range('10.0.0.0/30'), store);
  t.same(mutate(alloc, 'ns', 'c'), {
    ok: false,
    path: 'spec.addresses',
    message:
      'no free VIP left in --vip-cidr 10.0.0.0/30 (2 addresses, all in use); set spec.addresses explicitly or widen --vip-cidr',
  });
});
