// The request-path metrics (closed-metrics.ts) print exactly what prom-client's own Counter,
// Histogram and Gauge print for the same observations, and keep their label sets closed.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import t from 'tap';
import {
  ClosedCounter,
  ClosedGauge,
  ClosedHistogram,
  LevelGauge,
} from '../../src/telemetry/closed-metrics.js';
import { ADMISSION_DURATION_BUCKETS, createMetrics } from '../../src/telemetry/metrics.js';

const LABELS = {
  webhook: ['validate', 'mutate'],
  kind: ['ServiceEntry', ''],
  code: ['200', '400'],
} as const;

type Obs = { webhook: string; kind: string; code: string };
const OBSERVED: readonly [Obs, number][] = [
  [{ webhook: 'validate', kind: 'ServiceEntry', code: '200' }, 0.0003],
  [{ webhook: 'validate', kind: 'ServiceEntry', code: '200' }, 0.0005], // on a bound: that bucket
  [{ webhook: 'mutate', kind: '', code: '400' }, 0.02],
  [{ webhook: 'validate', kind: 'ServiceEntry', code: '200' }, 42], // past the last bound: +Inf only
  [{ webhook: 'mutate', kind: '', code: '400' }, 0.0011],
];

/** The lines of a registry's text, sorted (series order is first use in both, but need not be). */
const lines = async (r: Registry): Promise<string[]> => (await r.metrics()).split('\n').sort();

t.test('ClosedHistogram prints what prom-client Histogram prints', async (t) => {
  const ours = new Registry();
  const theirs = new Registry();
  const h = new ClosedHistogram({
    name: 'x_seconds',
    help: 'help "quoted" \\ text',
    labels: LABELS,
    buckets: ADMISSION_DURATION_BUCKETS,
    registers: [ours],
  });
  const p = new Histogram({
    name: 'x_seconds',
    help: 'help "quoted" \\ text',
    labelNames: ['webhook', 'kind', 'code'],
    buckets: [...ADMISSION_DURATION_BUCKETS],
    registers: [theirs],
  });
  for (const [labels, v] of OBSERVED) {
    h.observe(labels, v);
    p.observe(labels, v);
  }
  t.same(await lines(ours), await lines(theirs));
  const text = await ours.metrics();
  t.match(text, /^x_seconds_bucket\{le="0.0005",webhook="validate",kind="ServiceEntry",code="200"\} 2$/m);
  t.match(text, /^x_seconds_bucket\{le="10",webhook="validate",kind="ServiceEntry",code="200"\} 2$/m);
  t.match(text, /^x_seconds_bucket\{le="\+Inf",webhook="validate",kind="ServiceEntry",code="200"\} 3$/m);
  t.match(text, /^x_seconds_count\{webhook="mutate",kind="",code="400"\} 2$/m);
  h.observe(OBSERVED[0]![0], NaN);
  h.observe(OBSERVED[0]![0], Infinity);
  t.same(await lines(ours), await lines(theirs), 'a non-finite value is ignored, never thrown');
});

t.test('ClosedCounter prints what prom-client Counter prints; unknown values count as other', async (t) => {
  const ours = new Registry();
  const theirs = new Registry();
  const c = new ClosedCounter({ name: 'y_total', help: 'y', labels: LABELS, registers: [ours] });
  const p = new Counter({
    name: 'y_total',
    help: 'y',
    labelNames: ['webhook', 'kind', 'code'],
    registers: [theirs],
  });
  for (const [labels] of OBSERVED) {
    c.inc(labels);
    p.inc(labels);
  }
  c.inc({ webhook: 'validate', kind: 'ServiceEntry', code: '200' }, 2.5);
  p.inc({ webhook: 'validate', kind: 'ServiceEntry', code: '200' }, 2.5);
  c.inc({ webhook: 'validate', kind: 'ServiceEntry', code: '200' }, 0);
  t.same(await lines(ours), await lines(theirs));
  c.inc({ webhook: 'validate', kind: 'ServiceEntry', code: '200' }, -1);
  c.inc({ webhook: 'validate', kind: 'ServiceEntry', code: '200' }, NaN);
  t.same(await lines(ours), await lines(theirs), 'a negative or NaN amount is ignored');

  for (let i = 0; i < 1000; i++) c.inc({ webhook: `w${i}`, kind: `k${i}`, code: 999 });
  const text = await ours.metrics();
  t.match(text, /^y_total\{webhook="other",kind="other",code="other"\} 1000$/m);
  t.equal(
    text.split('\n').filter((l) => l.startsWith('y_total{')).length,
    3,
    'one series for every unknown value',
  );
  c.reset();
  t.equal((await c.get()).values.length, 0);
});

t.test('ClosedGauge prints what prom-client Gauge prints, set series by series', async (t) => {
  const ours = new Registry();
  const theirs = new Registry();
  const g = new ClosedGauge({ name: 'f', help: 'f', labels: { code: ['A', 'B'] }, registers: [ours] });
  const p = new Gauge({ name: 'f', help: 'f', labelNames: ['code'], registers: [theirs] });
  for (const [code, n] of [
    ['A', 3],
    ['B', 1],
    ['A', 2],
  ] as const) {
    g.set({ code }, n);
    p.set({ code }, n);
  }
  t.same(await lines(ours), await lines(theirs));
  g.reset();
  p.reset();
  g.set({ code: 'B' }, 5);
  p.set({ code: 'B' }, 5);
  g.set({ code: 'B' }, NaN);
  t.same(await lines(ours), await lines(theirs), 'reset forgets every series; NaN is ignored');
  g.set({ code: 'x'.repeat(1000) }, 1);
  t.match(await ours.metrics(), /^f\{code="other"\} 1$/m);
});

t.test('LevelGauge prints what prom-client Gauge prints', async (t) => {
  const ours = new Registry();
  const theirs = new Registry();
  const g = new LevelGauge({ name: 'z', help: 'z', registers: [ours] });
  const p = new Gauge({ name: 'z', help: 'z', registers: [theirs] });
  p.set(0);
  t.same(await lines(ours), await lines(theirs), '0 before any change');
  for (const step of [1, 1, -1, 1]) {
    if (step > 0) {
      g.inc();
      p.inc();
    } else {
      g.dec();
      p.dec();
    }
  }
  t.same(await lines(ours), await lines(theirs));
});

t.test('the admission series of createMetrics() are closed', async (t) => {
  const m = createMetrics();
  m.admissionRequests.inc({
    webhook: 'validate',
    kind: 'Pod',
    operation: 'PATCH',
    allowed: 'maybe',
    code: '302',
  });
  m.admissionDuration.observe(
    { webhook: 'x', kind: 'ServiceEntry', operation: 'CREATE', allowed: 'true' },
    0.001,
  );
  m.cacheChanges.inc({ origin: 'mars' });
  const text = await m.registry.metrics();
  t.match(
    text,
    /^breeze_admission_requests_total\{webhook="validate",kind="other",operation="other",allowed="other",code="other"\} 1$/m,
  );
  t.match(
    text,
    /^breeze_admission_duration_seconds_count\{webhook="other",kind="ServiceEntry",operation="CREATE",allowed="true"\} 1$/m,
  );
  t.match(text, /^breeze_cache_changes_total\{origin="other"\} 1$/m);
  t.match(text, /^breeze_admission_in_flight 0$/m);
});
