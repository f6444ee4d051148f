// Property: random interleavings of admission events (some never persisted, some dry runs),
// watch events (some lost), relists and istiod pushes (some stale) converge to exactly the
// authoritative state once every source has caught up and the grace period has passed.
import t from 'tap';
import fc from 'fast-check';
import { ConfigStore } from '../../src/cache/store.js';
import { canonicalJson, type JsonRecord } from '../../src/model/json.js';

const KINDS = ['ServiceEntry', 'VirtualService'] as const;
const NAMES = ['a', 'b', 'c'] as const;
const GRACE = 30_000;

type Kind = (typeof KINDS)[number];
interface Truth {
  rv: number;
  objects: Map<string, JsonRecord>; // key kind/ns/name → persisted object
}

function objectOf(kind: Kind, name: string, rv: string | undefined, port: number): JsonRecord {
  const host = `${name}.ns.svc.cluster.local`;
  const spec =
    kind === 'ServiceEntry'
      ? {
          hosts: [host],
          addresses: [`240.240.0.${port % 250}`],
          ports: [{ number: port, name: 'tcp-redis' }],
          resolution: 'STATIC',
        }
      : {
          hosts: [host],
          tcp: [{ route: [{ destination: { host }, weight: 100 }] }],
          exportTo: [String(port)],
        };
  return {
    apiVersion: 'networking.istio.io/v1',
    kind,
    metadata: { name, namespace: 'ns', ...(rv ? { resourceVersion: rv } : {}) },
    spec,
  };
}

const step = fc.oneof(
  // An admitted change that the API server persists (a watch event may or may not follow).
  fc.record({
    t: fc.constant('persist' as const),
    kind: fc.constantFrom(...KINDS),
    name: fc.constantFrom(...NAMES),
    port: fc.integer({ min: 1, max: 9 }),
    del: fc.boolean(),
    watched: fc.boolean(),
  }),
  // Admitted but never persisted (a later webhook denied it, or a conflict).
  fc.record({
    t: fc.constant('lost' as const),
    kind: fc.constantFrom(...KINDS),
    name: fc.constantFrom(...NAMES),
    port: fc.integer({ min: 1, max: 9 }),
    del: fc.boolean(),
  }),
  // A dry run: the webhook never records it (nothing reaches the store).
  fc.record({ t: fc.constant('dryrun' as const) }),
  // A full relist of one kind.
  fc.record({ t: fc.constant('relist' as const), kind: fc.constantFrom(...KINDS) }),
  // istiod pushes its (possibly stale) snapshot of one kind.
  fc.record({ t: fc.constant('ads' as const), kind: fc.constantFrom(...KINDS), stale: fc.boolean() }),
  fc.record({ t: fc.constant('time' as const), ms: fc.integer({ min: 0, max: 20_000 }) }),
);

function listOf(truth: Map<string, JsonRecord>, kind: Kind): JsonRecord[] {
  return [...truth].filter(([k]) => k.startsWith(`${kind}/`)).map(([, o]) => o);
}

t.test('the store converges to the authoritative state', async (t) => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), (steps) => {
      let now = 0;
      const store = new ConfigStore('cluster.local', () => now);
      const truth: Truth = { rv: 1, objects: new Map() };
      let adsSnapshot = new Map<string, JsonRecord>();
      for (const s of steps) {
        switch (s.t) {
          case 'persist':
          case 'lost': {
            const key = `${s.kind}/ns/${s.name}`;
            const current = truth.objects.get(key);
            const base = (current?.metadata as JsonRecord | undefined)?.resourceVersion as string | undefined;
            if (s.del) {
              if (current === undefined) break; // the API server would 404; the webhook never sees it
              store.apply('admission', s.kind, 'ns', s.name, undefined, base);
            } else {
              store.apply('admission', s.kind, 'ns', s.name, objectOf(s.kind, s.name, base, s.port));
            }
            if (s.t === 'lost') break;
            const rv = String(++truth.rv);
            const persisted = s.del ? undefined : objectOf(s.kind, s.name, rv, s.port);
            if (persisted === undefined) truth.objects.delete(key);
            else truth.objects.set(key, persisted);
            if (s.watched) store.apply('kubernetes', s.kind, 'ns', s.name, persisted);
            break;
          }
          case 'dryrun':
            break;
          case 'relist':
            store.replace('kubernetes', s.kind, listOf(truth.objects, s.kind));
            break;
          case 'ads':
            if (!s.stale) adsSnapshot = new Map(truth.objects);
            store.replace('istiod', s.kind, listOf(adsSnapshot, s.kind));
            break;
          case 'time':
            now += s.ms;
            store.expirePending(GRACE);
            break;
        }
      }
      // Every source catches up (after the last admission), then the grace period passes.
      now += 1;
      for (const kind of KINDS) {
        store.replace('kubernetes', kind, listOf(truth.objects, kind));
        store.replace('istiod', kind, listOf(truth.objects, kind));
      }
      now += GRACE + 1;
      store.expirePending(GRACE);
      const actual = new Map(store.list().map((e) => [e.key, e.object]));
      if (actual.size !== truth.objects.size) return false;
      for (const [key, o] of truth.objects)
        if (canonicalJson(actual.get(key)) !== canonicalJson(o)) return false;
      return (
        store.pendingKeys().length === 0 &&
        store.list().every((e) => e.confirmed && e.origin === 'kubernetes')
      );
    }),
    { numRuns: 500 },
  );
  t.pass('converged in every run');
});
