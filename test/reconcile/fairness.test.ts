// Issue 11 finding 5: one ServiceEntry with 20,000 addresses and a `tcp-redis` port queued 20,000
// EnvoyFilter writes at 20/s; a service admitted 3 s later waited for the whole backlog (about
// 16 min), and SIGTERM did not stop the process meanwhile. Everything here runs on a fake clock:
// the bounds are in fake time, never wall time.
import { guarded } from '../../src/errors.js';
import t from 'tap';
import { ConfigStore } from '../../src/cache/store.js';
import type { JsonRecord } from '../../src/model/json.js';
import { generateForKeys } from '../../src/protocols/generate.js';
import { sleepOn, type Clock } from '../../src/reconcile/clock.js';
import { Controller } from '../../src/reconcile/controller.js';
import { Debouncer } from '../../src/reconcile/debouncer.js';
import { RecordingEventer } from '../../src/reconcile/events.js';
import { idOf } from '../../src/reconcile/owned.js';
import { TokenBucket } from '../../src/reconcile/ratelimit.js';
import { Reconciler, type ReconcilerOptions } from '../../src/reconcile/reconciler.js';
import type { ApplyOutcome, EnvoyFilterSink } from '../../src/reconcile/types.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { FakeClock, settle } from './fakeclock.js';
import { dubboSE, GEN, logger, memoryEnv } from './fixtures.js';

const BIG = 'ServiceEntry/apps/big';
const HASH = 'breeze.io/content-hash';

/** The attack object: one ServiceEntry, `n` addresses, a `tcp-redis` port. */
function bigSE(n: number, port = 6379): JsonRecord {
  const addresses = Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'big', namespace: 'apps' },
    spec: {
      hosts: ['big.example.com'],
      addresses,
      ports: [{ number: port, name: 'tcp-redis', protocol: 'TCP' }],
      resolution: 'STATIC',
    },
  };
}

interface Call {
  readonly op: 'apply' | 'delete';
  readonly id: string;
  readonly at: number;
}

/** A sink whose every write takes `latencyMs` of fake time; it records overlapping writes of one object. */
class SlowSink implements EnvoyFilterSink {
  readonly objects = new Map<string, JsonRecord>();
  readonly calls: Call[] = [];
  readonly inFlight = new Set<string>();
  overlaps = 0;

  constructor(
    private readonly clock: Clock,
    private readonly latencyMs = 50,
  ) {}

  async apply(ef: JsonRecord, signal: AbortSignal): Promise<ApplyOutcome> {
    const id = idOf(ef);
    await this.write('apply', id, signal);
    const existed = this.objects.has(id);
    this.objects.set(id, structuredClone(ef));
    return existed ? 'updated' : 'created';
  }

  async delete(namespace: string, name: string, signal: AbortSignal): Promise<void> {
    await this.write('delete', `${namespace}/${name}`, signal);
    this.objects.delete(`${namespace}/${name}`);
  }

  private async write(op: 'apply' | 'delete', id: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.inFlight.has(id)) this.overlaps++;
    this.inFlight.add(id);
    this.calls.push({ op, id, at: this.clock.now() });
    try {
      await sleepOn(this.clock, this.latencyMs, signal);
      signal.throwIfAborted();
    } finally {
      this.inFlight.delete(id);
    }
  }

  actual(): JsonRecord[] {
    return [...this.objects.values()];
  }

  /** When the first write of an object whose id contains `part` was sent. */
  firstWrite(part: string): number | undefined {
    return this.calls.find((c) => c.id.includes(part))?.at;
  }

  count(part: string): number {
    return this.calls.filter((c) => c.id.includes(part)).length;
  }
}

function setup(extra: Partial<ReconcilerOptions> = {}) {
  const clock = new FakeClock();
  const store = new ConfigStore();
  const sink = new SlowSink(clock);
  // The API limits of `breeze serve`: 20 writes/s, bursts of 40, 4 in flight.
  const reconciler = new Reconciler({
    store,
    sink,
    generation: GEN,
    actual: () => sink.actual(),
    logger,
    clock,
    random: () => 0.5,
    qps: 20,
    burst: 40,
    concurrency: 4,
    ...extra,
  });
  const controller = new Controller({
    store,
    reconciler,
    logger,
    clock,
    quietMs: 500,
    maxMs: 10_000,
    resyncIntervalMs: 3_600_000,
  });
  return { clock, store, sink, reconciler, controller };
}

/** Advances the fake clock in steps until `cond` holds or `maxMs` passed; returns the time spent. */
async function until(clock: FakeClock, cond: () => boolean, maxMs: number, stepMs = 50): Promise<number> {
  const start = clock.now();
  while (!cond() && clock.now() - start < maxMs) await clock.advance(stepMs);
  return clock.now() - start;
}

t.test(
  "20,000 addresses on one tcp-redis ServiceEntry: another service's first write within 2 s; stop() at once",
  async (t) => {
    const { clock, store, sink, reconciler, controller } = setup();
    controller.start();
    await controller.startedLeading(new AbortController().signal);

    store.upsert(bigSE(20_000), 'kubernetes');
    await clock.advance(3000); // the attacker's backlog is being written
    const bigBefore = sink.count('big.example.com');
    t.ok(bigBefore > 0, 'the big service is being written');
    const backlog = reconciler.queuedWrites;
    t.ok(backlog > 0, `a backlog is queued (${backlog} writes)`);

    const t0 = clock.now();
    store.upsert(dubboSE(1), 'kubernetes');
    const waited = await until(clock, () => sink.firstWrite('svc-1.example.com') !== undefined, 60_000);
    const first = (sink.firstWrite('svc-1.example.com') ?? Infinity) - t0;
    t.ok(first <= 2000, `the unrelated service's first write came ${first} ms (fake) after its change`);
    t.ok(waited <= 2000);
    await until(clock, () => sink.count('svc-1.example.com') >= 2, 5000);
    t.equal(sink.count('svc-1.example.com'), 2, 'both of its filters are written');
    t.ok(reconciler.queuedWrites > 0, 'ahead of the backlog, which is still queued');
    t.ok(sink.count('big.example.com') > bigBefore, 'the backlog kept its share of the rate meanwhile');
    t.equal(sink.overlaps, 0, 'never two writes of one object at once');

    // SIGTERM during the backlog: stop() resolves without any fake time passing.
    const stop = { over: false };
    void controller.stop().then(() => (stop.over = true));
    for (let i = 0; i < 5 && !stop.over; i++) await settle();
    t.ok(stop.over, 'stop() resolved at once');
    t.equal(reconciler.queuedWrites, 0, 'the queued writes were dropped');
    const calls = sink.calls.length;
    await clock.advance(60_000);
    t.equal(sink.calls.length, calls, 'nothing is written after stop()');
    t.equal(clock.pendingTimers, 0, 'no timer left behind');
  },
);

t.test('stop() and lost leadership with thousands of writes queued: prompt, nothing lost', async (t) => {
  // 5,000 filters of ours recorded for a service that is gone: a backlog of deletes.
  const template = generateForKeys(
    (() => {
      const s = new ConfigStore();
      s.upsert(dubboSE(1), 'kubernetes');
      return s;
    })(),
    ['ServiceEntry/apps/svc-1'],
    GEN,
  ).get('ServiceEntry/apps/svc-1')?.envoyFilters[0];
  if (template === undefined) throw new Error('no template');
  const stale = (sink: SlowSink): void => {
    for (let i = 0; i < 5000; i++) {
      const ef = structuredClone(template);
      (ef.metadata as { name: string }).name = `breeze-outbound-gone-${i}`;
      sink.objects.set(idOf(ef), ef);
    }
  };

  for (const how of ['stop', 'lost lease'] as const) {
    const { clock, sink, reconciler, controller } = setup();
    stale(sink);
    controller.start();
    const term = new AbortController();
    let resynced = false;
    void controller.startedLeading(term.signal).then(() => (resynced = true));
    await clock.advance(1000);
    t.ok(reconciler.queuedWrites > 4000, `${how}: thousands of deletes queued (${reconciler.queuedWrites})`);
    t.notOk(resynced);

    const end = { over: false };
    if (how === 'stop') void controller.stop().then(() => (end.over = true));
    else {
      term.abort(new Error('lease lost'));
      controller.stoppedLeading();
      void controller.flush().then(() => (end.over = true));
    }
    for (let i = 0; i < 5 && !end.over; i++) await settle();
    t.ok(end.over, `${how}: settled without any fake time passing`);
    t.ok(resynced, `${how}: the aborted resync is over too`);
    t.equal(reconciler.queuedWrites, 0);
    const calls = sink.calls.length;
    await clock.advance(10_000);
    t.equal(sink.calls.length, calls, `${how}: no write after`);
    t.ok(sink.objects.size > 4000, `${how}: what was not deleted is still there`);

    // The next leader (or start) resyncs level-triggered: nothing half-applied is lost.
    const next = new Reconciler({
      store: new ConfigStore(),
      sink,
      generation: GEN,
      actual: () => sink.actual(),
      logger,
      clock,
      qps: 1e9,
      burst: 1e9,
      concurrency: 64,
    });
    let result: unknown;
    void next.resync(new AbortController().signal).then((r) => (result = r));
    await until(clock, () => result !== undefined, 60_000, 1000);
    t.match(result, { failed: 0 });
    t.equal(sink.objects.size, 0, `${how}: the next resync finished the job`);
  }
});

t.test('a service changed during its own backlog: queued writes replaced, never two at once', async (t) => {
  const { clock, store, sink, reconciler, controller } = setup();
  controller.start();
  await controller.startedLeading(new AbortController().signal);
  store.upsert(bigSE(200), 'kubernetes');
  await clock.advance(2000);
  const before = sink.calls.length;
  t.ok(before > 0 && before < 200, `partly written (${before})`);

  // New content for every filter of the service (another port: new listener, new names).
  store.upsert(bigSE(200, 6380), 'kubernetes');
  await clock.advance(600); // the debounced push has planned it
  const old = sink.calls.length; // writes of the old plan started (some still in flight)
  await until(clock, () => reconciler.queuedWrites === 0 && sink.inFlight.size === 0, 120_000, 500);
  await controller.flush();
  const want = generateForKeys(store, [BIG], GEN).get(BIG)?.envoyFilters ?? [];
  const hashes = (efs: JsonRecord[]): string[] =>
    efs
      .map(
        (ef) => `${idOf(ef)}@${(ef.metadata as { annotations: Record<string, string> }).annotations[HASH]}`,
      )
      .sort();
  t.same(hashes(sink.actual()), hashes(want), 'exactly the new desired set, no leftover of the old plan');
  t.equal(sink.overlaps, 0, 'never two writes of one object at once');
  // The old plan's writes already started, the new set's creates, and the deletes of what the old
  // plan wrote: its queued writes were dropped, not written and then undone.
  const total = sink.calls.length;
  t.equal(total, old + want.length + old, `${total} writes in all`);
  t.ok(total < 2 * (want.length + 1), 'far fewer than writing both plans in full');
  await controller.stop();
});

t.test(
  'new content for the same objects mid-backlog: each written once more, in-flight ones after',
  async (t) => {
    const { clock, store, sink, reconciler, controller } = setup();
    const redis = (opTimeout: string): JsonRecord => ({
      apiVersion: 'redis.aeraki.io/v1alpha1',
      kind: 'RedisService',
      metadata: { name: 'big', namespace: 'apps' },
      spec: { host: ['big.example.com'], settings: { opTimeout } },
    });
    controller.start();
    await controller.startedLeading(new AbortController().signal);
    store.upsert(redis('1s'), 'kubernetes');
    store.upsert(bigSE(100), 'kubernetes');
    await clock.advance(2000);
    store.upsert(redis('2s'), 'kubernetes');
    await clock.advance(600);
    const old = sink.calls.length;
    t.ok(old > 0 && old < 100, `partly written (${old})`);
    await until(clock, () => reconciler.queuedWrites === 0 && sink.inFlight.size === 0, 120_000, 500);
    await controller.flush();
    const want = generateForKeys(store, [BIG], GEN).get(BIG)?.envoyFilters ?? [];
    const hashes = (efs: JsonRecord[]): string[] =>
      efs
        .map(
          (ef) => `${idOf(ef)}@${(ef.metadata as { annotations: Record<string, string> }).annotations[HASH]}`,
        )
        .sort();
    t.same(hashes(sink.actual()), hashes(want), 'every object has the new content');
    t.equal(sink.overlaps, 0, 'never two writes of one object at once');
    t.equal(sink.calls.length, old + want.length, 'the new plan writes each object once');
    await controller.stop();
  },
);

t.test('generation notes: logged and sent as a Warning Event once per change', async (t) => {
  const eventer = new RecordingEventer();
  const { store, reconciler } = memoryEnv({ eventer });
  const signal = new AbortController().signal;
  const noSelector = (iface: string): JsonRecord => {
    const se = dubboSE(1, { iface });
    delete (se.spec as { workloadSelector?: unknown }).workloadSelector;
    return se;
  };
  store.upsert(noSelector('org.example.A'), 'kubernetes');
  const key = 'ServiceEntry/apps/svc-1';
  const warnings = (): string[] =>
    eventer.events.filter((e) => e.reason === 'GenerationWarning').map((e) => `${e.type} ${e.message}`);
  for (let i = 0; i < 3; i++) await reconciler.reconcile([key], signal);
  await reconciler.resync(signal);
  t.same(warnings(), [
    'Warning ServiceEntry/apps/svc-1 port 20880 inbound: no workload selector (spec.workloadSelector or the workloadSelector annotation): no inbound filter',
  ]);
  t.match(eventer.events.find((e) => e.reason === 'GenerationWarning')?.object, {
    kind: 'ServiceEntry',
    namespace: 'apps',
    name: 'svc-1',
  });

  // Another change with the same note: nothing new. The note gone and back: reported again.
  store.upsert(noSelector('org.example.B'), 'kubernetes');
  await reconciler.reconcile([key], signal);
  t.equal(warnings().length, 1);
  store.upsert(dubboSE(1), 'kubernetes');
  await reconciler.reconcile([key], signal);
  store.upsert(noSelector('org.example.C'), 'kubernetes');
  await reconciler.reconcile([key], signal);
  t.equal(warnings().length, 2);
});

t.test('token bucket: a waiter queued behind others rejects as soon as its signal aborts', async (t) => {
  const clock = new FakeClock();
  const bucket = new TokenBucket(1, 1, clock);
  await bucket.take();
  const other = new AbortController();
  const mine = new AbortController();
  const first = bucket.take(other.signal); // waits 1 s for the next token
  const second = bucket.take(mine.signal); // queued behind it
  let rejected: unknown;
  second.catch((err: unknown) => (rejected = err));
  mine.abort(new Error('stopping'));
  await settle();
  t.match(rejected, { message: 'stopping' }, 'no need to wait for the first waiter');
  await clock.advance(1000);
  await first;
  t.notOk(bucket.tryTake(), 'the aborted waiter took no token: the next one comes after 1 s');
  await clock.advance(1000);
  t.ok(bucket.tryTake());
});

t.test('guarded timer callbacks: a throw is reported, never escapes', async (t) => {
  const errors: unknown[] = [];
  const fn = guarded(
    () => {
      throw new Error('boom');
    },
    (err) => errors.push(err),
  );
  t.doesNotThrow(fn);
  t.match(errors, [{ message: 'boom' }]);
  const worse = guarded(
    () => {
      throw new Error('boom');
    },
    () => {
      throw new Error('logger down');
    },
  );
  t.doesNotThrow(worse);
});

t.test('timer callbacks of the push loop never throw out, whatever the metrics do', async (t) => {
  const clock = new FakeClock();
  const boom = (): never => {
    throw new Error('metrics broken');
  };
  const broken = createMetrics();
  broken.pushes.inc = boom;
  broken.debounceEvents.inc = boom;
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown): void => void unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));

  // The debouncer's timer starts a push whose bookkeeping throws.
  const pushed: string[][] = [];
  const d = new Debouncer(async (keys) => void pushed.push([...keys]), {
    quietMs: 10,
    maxMs: 100,
    clock,
    metrics: { ...broken, debounceEvents: createMetrics().debounceEvents },
  });
  d.add(['a']);
  await clock.advance(50);
  d.add(['b']);
  await clock.advance(50);
  t.same(pushed, [['a'], ['b']], 'the debouncer carries on');

  // A retry timer whose debouncer.add throws.
  const store = new ConfigStore();
  const reconciler = new Reconciler({ store, sink: new SlowSink(clock), generation: GEN, logger, clock });
  const controller = new Controller({
    store,
    reconciler,
    logger,
    clock,
    metrics: broken,
    quietMs: 10,
    maxMs: 100,
    resyncIntervalMs: 1000,
  });
  await controller.startedLeading(new AbortController().signal);
  controller.onRetry('ServiceEntry/apps/x', clock.now() + 10);
  await clock.advance(3000); // the retry timer and three resync timers fire
  await settle();
  t.same(unhandled, [], 'no unhandled rejection');
  await controller.stop();
});
