// The reconciler against an in-memory sink: level-triggered convergence and the regressions of
// Aeraki's reconcile bugs (reference/aeraki.md 5.4).
import t from 'tap';
import { BreezeError } from '../../src/errors.js';
import { RecordingEventer } from '../../src/reconcile/events.js';
import type { Clock } from '../../src/reconcile/clock.js';
import { TokenBucket } from '../../src/reconcile/ratelimit.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { dubboSE, memoryEnv } from './fixtures.js';

const signal = new AbortController().signal;
const names = (m: Map<string, unknown>): string[] => [...m.keys()].sort();

t.test('creates, leaves unchanged, updates on change, deletes a vanished service', async (t) => {
  const { store, sink, reconciler } = memoryEnv();
  for (const i of [1, 2, 3]) store.upsert(dubboSE(i), 'kubernetes');
  const keys = ['ServiceEntry/apps/svc-1', 'ServiceEntry/apps/svc-2', 'ServiceEntry/apps/svc-3'];
  t.match(await reconciler.reconcile(keys, signal), {
    keys: 3,
    created: 6,
    updated: 0,
    deleted: 0,
    failed: 0,
  });
  t.equal(sink.objects.size, 6);

  const before = sink.writes();
  t.match(await reconciler.resync(signal), { created: 0, updated: 0, deleted: 0, unchanged: 6, failed: 0 });
  t.equal(sink.writes(), before, 'an unchanged cache rewrites nothing');

  store.remove('ServiceEntry', 'apps', 'svc-3', 'kubernetes');
  t.match(
    await reconciler.resync(signal),
    { deleted: 2, unchanged: 4 },
    'the vanished service is found by annotation',
  );
  t.notOk(names(sink.objects).some((n) => n.includes('svc-3')));
});

t.test('an annotation-only change (the Dubbo interface) regenerates and updates', async (t) => {
  const { store, reconciler } = memoryEnv();
  store.upsert(dubboSE(1), 'kubernetes');
  await reconciler.reconcile(['ServiceEntry/apps/svc-1'], signal);
  store.upsert(dubboSE(1, { iface: 'org.example.Other' }), 'kubernetes');
  t.match(await reconciler.reconcile(['ServiceEntry/apps/svc-1'], signal), { updated: 1, unchanged: 1 });
});

t.test("a generator error or empty hosts never deletes other services' filters, nor its own", async (t) => {
  const { store, sink, reconciler } = memoryEnv();
  for (const i of [1, 2, 3, 4]) store.upsert(dubboSE(i), 'kubernetes');
  await reconciler.resync(signal);
  const all = names(sink.objects);
  t.equal(all.length, 8);

  // svc-2 loses its interface annotation (outbound: generator problem), svc-3 its hosts.
  store.upsert(dubboSE(2, { iface: null }), 'kubernetes');
  store.upsert(dubboSE(3, { hosts: [] }), 'kubernetes');
  const result = await reconciler.resync(signal);
  t.equal(result.deleted, 0, 'nothing deleted');
  t.same(names(sink.objects), all, 'every filter is still there, including the failing services’ own');

  // Once svc-2 generates again, its stale filters converge.
  store.upsert(dubboSE(2, { iface: 'org.example.Changed' }), 'kubernetes');
  t.match(await reconciler.resync(signal), { updated: 1, deleted: 0 });
});

t.test('errors stay reported per object: a later success does not mask them', async (t) => {
  const metrics = createMetrics();
  const eventer = new RecordingEventer();
  const retries: string[] = [];
  const { store, sink, reconciler } = memoryEnv({ metrics, eventer, onRetry: (k) => retries.push(k) });
  store.upsert(dubboSE(1), 'kubernetes');
  store.upsert(dubboSE(2), 'kubernetes');
  const failing = 'breeze-outbound-svc-1.example.com-240.240.0.1-20880';
  sink.failing.set(failing, new BreezeError('API_RETRYABLE', 'HTTP 500 InternalError', { status: 500 }));
  const r = await reconciler.reconcile(['ServiceEntry/apps/svc-1', 'ServiceEntry/apps/svc-2'], signal);
  t.match(r, { created: 3, failed: 1 });
  await reconciler.reconcile(['ServiceEntry/apps/svc-2'], signal); // B succeeds (no-op) afterwards
  const f = reconciler.failures().get(`istio-system/${failing}`);
  t.match(f, { service: 'ServiceEntry/apps/svc-1', operation: 'create', code: 'API_RETRYABLE', status: 500 });
  t.same(retries, ['ServiceEntry/apps/svc-1']);
  t.ok(reconciler.nextRetryAt() !== undefined);
  t.same(reconciler.retryDue(Date.now() + 60_000), ['ServiceEntry/apps/svc-1']);
  t.ok(eventer.events.some((e) => e.reason === 'EnvoyFilterFailed' && e.message.includes(failing)));
  t.match(
    await metrics.registry.getSingleMetricAsString('breeze_reconcile_failures'),
    /code="API_RETRYABLE"} 1/,
  );

  sink.failing.clear();
  t.match(await reconciler.reconcile(reconciler.retryDue(Date.now() + 60_000), signal), {
    created: 1,
    failed: 0,
  });
  t.equal(reconciler.failures().size, 0, 'repaired');
  t.equal(reconciler.nextRetryAt(), undefined);
});

t.test('a 422 is not retried in a hot loop: same content waits for the long backoff', async (t) => {
  let now = 1_000_000;
  const clock: Clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => undefined };
  const { store, sink, reconciler } = memoryEnv({ clock, invalidRetryMs: 600_000 });
  store.upsert(dubboSE(1), 'kubernetes');
  const bad = 'breeze-inbound-svc-1.example.com-20880';
  sink.failing.set(bad, new BreezeError('API_INVALID', 'HTTP 422 Invalid', { status: 422 }));
  const key = 'ServiceEntry/apps/svc-1';
  await reconciler.reconcile([key], signal);
  for (let i = 0; i < 5; i++) t.match(await reconciler.reconcile([key], signal), { failed: 1 });
  t.equal(sink.calls.filter((c) => c.id.endsWith(bad)).length, 1, 'sent once');
  t.match(reconciler.failures().get(`istio-system/${bad}`), { code: 'API_INVALID' });
  t.same(reconciler.retryDue(now), [], 'not due right away');
  t.same(reconciler.retryDue(now + 600_001), [key], 'due after the long backoff');

  now += 600_001;
  await reconciler.reconcile([key], signal);
  t.equal(sink.calls.filter((c) => c.id.endsWith(bad)).length, 2, 'resent after the backoff');

  store.upsert(dubboSE(1, { iface: 'org.example.New' }), 'kubernetes');
  await reconciler.reconcile([key], signal); // the inbound content is unchanged: still held back
  t.equal(sink.calls.filter((c) => c.id.endsWith(bad)).length, 2);
  store.upsert(
    { ...dubboSE(1), spec: { ...(dubboSE(1).spec as object), workloadSelector: { labels: { app: 'x' } } } },
    'kubernetes',
  );
  await reconciler.reconcile([key], signal);
  t.equal(sink.calls.filter((c) => c.id.endsWith(bad)).length, 3, 'a changed object is tried at once');
});

t.test('retryable failures back off exponentially per key', async (t) => {
  const now = 0;
  const clock: Clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => undefined };
  const { store, sink, reconciler } = memoryEnv({ clock, retryBackoff: { initialMs: 100, maxMs: 1000 } });
  store.upsert(dubboSE(1), 'kubernetes');
  sink.failing.set('breeze-inbound-svc-1.example.com-20880', new BreezeError('API_RETRYABLE', 'HTTP 503'));
  const waits: number[] = [];
  for (let i = 0; i < 6; i++) {
    await reconciler.reconcile(['ServiceEntry/apps/svc-1'], signal);
    waits.push((reconciler.nextRetryAt() ?? 0) - now);
  }
  t.same(waits, [100, 200, 400, 800, 1000, 1000], 'doubling to the cap (random 0.5: no jitter)');
});

t.test('token bucket: burst, then qps', async (t) => {
  let now = 0;
  const slept: number[] = [];
  // Time jumps by whatever is slept: each timer fires at once, `ms` later.
  const clock: Clock = {
    now: () => now,
    setTimeout: (fn, ms) => {
      slept.push(ms);
      now += ms;
      queueMicrotask(fn);
      return 0;
    },
    clearTimeout: () => undefined,
  };
  const b = new TokenBucket(10, 3, clock);
  for (let i = 0; i < 5; i++) await b.take();
  t.equal(now, 200, '3 at once, then 100 ms each at 10 qps');
  t.same(slept, [100, 100]);
});
