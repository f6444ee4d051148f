// Issue 11: the health port answers from its own thread. While the main thread is blocked (one
// costly request), /healthz still answers at once: 200 while the loop stalled less than
// liveStallMs, then 503 saying so; /readyz says the main thread did not answer. No deadline here
// is under test: the block is long and the probes only need to be answered during it.
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { HealthServer } from '../../src/server/health.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';

interface Probe {
  readonly path: string;
  readonly at: number;
  readonly status: number;
  readonly body: string;
}

/** A thread that probes the health port every 50 ms until told to stop, then posts what it saw. */
const PROBER = `
const { parentPort, workerData } = require('node:worker_threads');
const flag = new Int32Array(workerData.stop);
const seen = [];
const now = () => Number(process.hrtime.bigint()) / 1e6;
(async () => {
  parentPort.postMessage({ started: true });
  while (Atomics.load(flag, 0) === 0) {
    for (const path of ['/healthz', '/readyz']) {
      try {
        const res = await fetch('http://127.0.0.1:' + workerData.port + path);
        seen.push({ path, at: now(), status: res.status, body: await res.text() });
      } catch (err) {
        seen.push({ path, at: now(), status: 0, body: String(err) });
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  parentPort.postMessage({ seen });
})();
`;

t.test('probes are answered while the main thread is blocked, and say when it is stuck', async (t) => {
  let ready = true;
  const health = await HealthServer.start({
    host: '127.0.0.1',
    port: 0,
    metrics: createMetrics(),
    logger: createLogger({ level: 'silent' }),
    readiness: () => (ready ? { ready: true, reasons: [] } : { ready: false, reasons: ['cache not synced'] }),
    liveStallMs: 1_000,
    answerTimeoutMs: 500,
  });
  t.teardown(() => health.close());
  const get = async (path: string, method = 'GET'): Promise<{ status: number; body: string }> => {
    const res = await fetch(`http://127.0.0.1:${health.port}${path}`, { method });
    return { status: res.status, body: await res.text() };
  };
  t.same(await get('/healthz'), { status: 200, body: 'ok' });
  t.same(await get('/livez'), { status: 200, body: 'ok' });
  t.same(await get('/readyz'), { status: 200, body: '{"ready":true,"reasons":[]}' });
  ready = false;
  t.same(await get('/readyz'), { status: 503, body: '{"ready":false,"reasons":["cache not synced"]}' });
  ready = true;
  t.match((await get('/metrics')).body, /# TYPE breeze_admission_requests_total counter/);
  t.same(await get('/nope'), { status: 404, body: '{"message":"GET /nope not found"}' });
  t.equal((await get('/healthz', 'POST')).status, 404);

  const stop = new SharedArrayBuffer(4);
  const prober = new Worker(PROBER, { eval: true, workerData: { port: health.port, stop } });
  const results = new Promise<Probe[]>((resolve, reject) => {
    prober.on('message', (m: { seen?: Probe[] }) => {
      if (m.seen !== undefined) resolve(m.seen);
    });
    prober.once('error', reject);
  });
  await new Promise<void>((resolve) => prober.once('message', () => resolve()));

  // The main thread blocks for 4 s, as a costly request would hold it (without spending CPU).
  const now = (): number => Number(process.hrtime.bigint()) / 1e6;
  const blockStart = now();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4_000);
  const blockEnd = now();
  // Probes after the block: the loop turns again.
  await new Promise((r) => setTimeout(r, 600));
  Atomics.store(new Int32Array(stop), 0, 1);
  const seen = await results;
  await prober.terminate();

  const during = seen.filter((p) => p.at > blockStart && p.at < blockEnd);
  const after = seen.filter((p) => p.at > blockEnd + 300);
  const live = during.filter((p) => p.path === '/healthz');
  t.ok(
    live.some((p) => p.status === 200 && p.at < blockStart + 900),
    '/healthz answered 200 while the block was young',
  );
  const stuck = live.filter((p) => p.status === 503);
  t.ok(stuck.length > 0, '/healthz answered 503 once the loop had not turned for 1 s');
  t.ok(
    stuck.every((p) => p.at > blockStart + 1_000),
    'never 503 before the loop had stalled for liveStallMs',
  );
  t.match(JSON.parse(stuck[0]?.body ?? '{}'), { message: /^the event loop has not turned for \d+ms$/ });
  const notReady = during.filter((p) => p.path === '/readyz' && p.status === 503);
  t.ok(notReady.length > 0, '/readyz answered while blocked');
  t.same(JSON.parse(notReady[0]?.body ?? '{}'), {
    ready: false,
    reasons: ['the main thread did not answer within 500ms'],
  });
  t.ok(
    after.some((p) => p.path === '/healthz' && p.status === 200),
    '/healthz 200 again once the loop turns',
  );
  t.ok(
    after.some((p) => p.path === '/readyz' && p.status === 200),
    '/readyz 200 again once the loop turns',
  );

  await health.close();
  await t.rejects(get('/healthz'), 'the port is closed');
});
