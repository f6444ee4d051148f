import t from 'tap';
import { Debouncer } from '../../src/reconcile/debouncer.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.js';
import { FakeClock, settle } from './fakeclock.js';

interface Push {
  readonly at: number;
  readonly keys: string[];
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A debouncer on a fake clock whose pushes are recorded; `gate` (if set) holds each push open. */
function setup(opts: { quietMs?: number; maxMs?: number } = {}) {
  const clock = new FakeClock();
  const metrics = createMetrics();
  const pushes: Push[] = [];
  const state = { running: 0, maxRunning: 0, gate: undefined as Deferred | undefined, fail: false };
  const d = new Debouncer(
    async (keys) => {
      state.running++;
      state.maxRunning = Math.max(state.maxRunning, state.running);
      pushes.push({ at: clock.now(), keys: [...keys].sort() });
      try {
        if (state.gate !== undefined) await state.gate.promise;
        if (state.fail) throw new Error('push failed on purpose');
      } finally {
        state.running--;
      }
    },
    { ...opts, clock, metrics, logger: createLogger({ level: 'silent' }) },
  );
  return { clock, metrics, pushes, state, d, t0: clock.now() };
}

async function counter(metrics: Metrics, name: 'debounceEvents' | 'pushes', labels = {}): Promise<number> {
  const { values } = await metrics[name].get();
  const want = Object.entries(labels);
  return values
    .filter((v) => want.every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val))
    .reduce((sum, v) => sum + v.value, 0);
}

async function histogramCount(metrics: Metrics, name: 'pushDuration' | 'pushKeys'): Promise<number> {
  const { values } = await metrics[name].get();
  return values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
}

async function histogramSum(metrics: Metrics, name: 'pushDuration' | 'pushKeys'): Promise<number> {
  const { values } = await metrics[name].get();
  return values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
}

t.test('pushes after the quiet period, which every new key restarts', async (t) => {
  const { clock, pushes, d, t0 } = setup();
  d.add(['a']);
  await clock.advance(499);
  t.equal(pushes.length, 0, 'not before 500 ms of quiet');
  d.add(['b', 'a']);
  await clock.advance(499);
  t.equal(pushes.length, 0, 'the second key restarted the quiet period');
  await clock.advance(1);
  t.same(pushes, [{ at: t0 + 999, keys: ['a', 'b'] }], 'one push with the distinct keys');
  await clock.advance(5000);
  t.equal(pushes.length, 1, 'nothing more without new keys');
  t.equal(clock.pendingTimers, 0, 'no timer left armed');
  d.add([]);
  await clock.advance(5000);
  t.equal(pushes.length, 1, 'an empty add changes nothing');
});

t.test('a continuous stream of keys is pushed every maxMs', async (t) => {
  const { clock, pushes, d, t0 } = setup({ quietMs: 500, maxMs: 10_000 });
  for (let i = 0; i < 250; i++) {
    d.add([`k${i % 7}`]);
    await clock.advance(100);
  }
  t.ok(pushes.length >= 2, 'pushed despite never being quiet');
  t.equal(pushes[0]?.at, t0 + 10_000, 'the first push at maxMs after the first key');
  t.equal(pushes[1]?.at, t0 + 20_000, 'the next one maxMs after the first key following the push');
  t.same(pushes[0]?.keys, ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6']);
  await clock.advance(500);
  t.equal(pushes.at(-1)?.at, t0 + 24_900 + 500, 'the tail is pushed once quiet after the last key');
});

t.test('keys added during a push go to the next one; pushes never overlap', async (t) => {
  const { clock, pushes, state, d, t0 } = setup({ quietMs: 500, maxMs: 2000 });
  const gate = deferred();
  state.gate = gate;
  d.add(['a']);
  await clock.advance(500);
  t.same(pushes, [{ at: t0 + 500, keys: ['a'] }]);
  t.ok(d.pushing);
  d.add(['b']);
  await clock.advance(100);
  d.add(['c', 'a']);
  await clock.advance(5000);
  t.equal(pushes.length, 1, 'no second push while the first one runs, even past maxMs');
  t.equal(d.pendingCount, 3);
  state.gate = undefined;
  gate.resolve();
  await settle();
  await settle();
  t.same(
    pushes[1],
    { at: t0 + 5600, keys: ['a', 'b', 'c'] },
    'the overdue keys are pushed as soon as the running push ends',
  );
  t.equal(state.maxRunning, 1, 'never two pushes at once');

  // Keys added during a short push that ends before their quiet period is over.
  const gate2 = deferred();
  state.gate = gate2;
  d.add(['x']);
  await clock.advance(500);
  t.equal(pushes.length, 3);
  await clock.advance(100);
  d.add(['y']);
  await clock.advance(100);
  gate2.resolve();
  state.gate = undefined;
  await clock.advance(399);
  t.equal(pushes.length, 3, 'y is not due before its own quiet period');
  await clock.advance(1);
  t.same(pushes[3], { at: t0 + 6200 + 500, keys: ['y'] }, 'y pushed 500 ms after it was added');
  t.equal(state.maxRunning, 1);
});

t.test('flush pushes at once, after a running push', async (t) => {
  const { clock, pushes, state, d, t0 } = setup();
  d.add(['a']);
  await d.flush();
  t.same(pushes, [{ at: t0, keys: ['a'] }], 'pushed without waiting for the quiet period');
  await d.flush();
  t.equal(pushes.length, 1, 'nothing pending: no push');

  const gate = deferred();
  state.gate = gate;
  d.add(['b']);
  await clock.advance(500);
  t.equal(pushes.length, 2);
  d.add(['c']);
  let flushed = false;
  const f = d.flush().then(() => (flushed = true));
  await settle();
  t.notOk(flushed, 'flush waits for the running push');
  t.equal(pushes.length, 2, 'and does not run concurrently with it');
  state.gate = undefined;
  gate.resolve();
  await f;
  t.same(pushes[2]?.keys, ['c'], 'then pushes what is pending');
  t.equal(state.maxRunning, 1);
  await clock.advance(1000);
  t.equal(pushes.length, 3, 'the flushed keys are not pushed again');
});

t.test('stop cancels timers, drops pending keys and waits for the running push', async (t) => {
  const { clock, pushes, state, d } = setup();
  d.add(['a']);
  await d.stop();
  t.equal(clock.pendingTimers, 0);
  await clock.advance(60_000);
  t.equal(pushes.length, 0, 'a stopped debouncer never pushes');
  d.add(['b']);
  await d.flush();
  t.equal(pushes.length, 0, 'not even on add or flush after stop');

  const s = setup();
  const gate = deferred();
  s.state.gate = gate;
  s.d.add(['a']);
  await s.clock.advance(500);
  s.d.add(['b']);
  let stopped = false;
  const p = s.d.stop().then(() => (stopped = true));
  await settle();
  t.notOk(stopped, 'stop waits for the running push');
  gate.resolve();
  await p;
  await s.clock.advance(60_000);
  t.same(
    s.pushes.map((x) => x.keys),
    [['a']],
    'the key pending at stop is dropped',
  );
  t.equal(state.maxRunning, 0);
});

t.test('a failing push is logged and counted; the debouncer carries on', async (t) => {
  const { clock, metrics, pushes, state, d } = setup();
  state.fail = true;
  d.add(['a', 'b']);
  await clock.advance(500);
  t.equal(pushes.length, 1);
  t.equal(await counter(metrics, 'pushes', { result: 'failure' }), 1);
  t.notOk(d.pushing);
  state.fail = false;
  d.add(['c']);
  await clock.advance(500);
  t.same(pushes[1]?.keys, ['c'], 'the failed keys are not retried by the debouncer');
  t.equal(await counter(metrics, 'pushes', { result: 'success' }), 1);
});

t.test('a push may re-add the keys it failed: they are retried after a quiet period', async (t) => {
  const clock = new FakeClock();
  const seen: { at: number; keys: string[] }[] = [];
  let failures = 2;
  const d: Debouncer = new Debouncer(
    (keys) => {
      seen.push({ at: clock.now(), keys: [...keys] });
      if (failures-- > 0) {
        d.add(keys);
        return Promise.reject(new Error('conflict'));
      }
      return Promise.resolve();
    },
    { clock, quietMs: 500 },
  );
  d.add(['a']);
  await clock.advance(5000);
  t.same(
    seen.map((s) => s.at - seen[0]!.at),
    [0, 500, 1000],
    'each retry one quiet period after the failure',
  );
  t.equal(clock.pendingTimers, 0);
});

t.test('metrics count keys, pushes, durations and keys per push', async (t) => {
  const { clock, metrics, state, d } = setup();
  const gate = deferred();
  state.gate = gate;
  d.add(['a', 'b', 'a']);
  await clock.advance(500);
  await clock.advance(250);
  state.gate = undefined;
  gate.resolve();
  await settle();
  d.add(['c']);
  await d.flush();
  t.equal(await counter(metrics, 'debounceEvents'), 4, 'every key added, duplicates included');
  t.equal(await counter(metrics, 'pushes', { result: 'success' }), 2);
  t.equal(await counter(metrics, 'pushes', { result: 'failure' }), 0);
  t.equal(await histogramCount(metrics, 'pushDuration'), 2);
  t.equal(await histogramSum(metrics, 'pushDuration'), 0.25, 'durations from the clock');
  t.equal(await histogramCount(metrics, 'pushKeys'), 2);
  t.equal(await histogramSum(metrics, 'pushKeys'), 3, '2 distinct keys, then 1');
  const text = await metrics.registry.metrics();
  for (const name of [
    'breeze_debounce_events_total',
    'breeze_push_total',
    'breeze_push_duration_seconds',
    'breeze_push_keys',
  ])
    t.match(text, `# TYPE ${name} `);
});

t.test('rejects inconsistent options', async (t) => {
  t.throws(() => new Debouncer(() => Promise.resolve(), { quietMs: 1000, maxMs: 500 }));
  t.throws(() => new Debouncer(() => Promise.resolve(), { quietMs: -1 }));
});
