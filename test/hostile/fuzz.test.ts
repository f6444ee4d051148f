// Issue 11: a time-boxed fuzz of the webhook with hostile AdmissionReviews within the body limit
// (test/hostile/mutations.ts: the real fixtures mutated by deep nesting, huge strings, long lists,
// wrong types, odd unicode, `__proto__` keys, huge numbers, NaN-like strings and the findings'
// shapes). Every answer must be well-formed: HTTP 200 with an AdmissionReview echoing the uid, or
// a 4xx with a message; never a 500, never an exception (from the handler, the cache or the expiry
// of admitted changes), and bounded in size. The webhook app's handler is driven directly (light-my-request)
// for speed, then a few cases go through a real Breeze over TLS.
//
//   BREEZE_FUZZ_SECONDS=300 npx tap test/hostile/fuzz.test.ts --timeout 600   (a longer run)
//   BREEZE_FUZZ_SEED=1234 ...                                                  (replay a seed)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import inject from 'light-my-request';
import t, { type Test } from 'tap';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';
import { MAX_WARNINGS } from '../../src/model/limits.js';
import { writeDevCertificates } from '../../src/pki/certs.js';
import { buildWebhookApp } from '../../src/server/app.js';
import { AdmissionFeed } from '../../src/sources/admission.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { health, MAX_ANSWER_BYTES, post, startLocal } from './helpers.js';
import { buildCase, caseSpec, FAMILIES, type HostileCase } from './mutations.js';

const SECONDS = Number(process.env.BREEZE_FUZZ_SECONDS ?? '12');
const SEED = process.env.BREEZE_FUZZ_SEED === undefined ? Date.now() : Number(process.env.BREEZE_FUZZ_SEED);
const TLS_CASES = 12;

/** Why an answer is not well-formed, or undefined when it is. */
export function malformed(c: HostileCase, status: number, text: string): string | undefined {
  const where = `${c.family} on ${c.fixture}`;
  if (status === 500) return `${where}: HTTP 500 ${text.slice(0, 200)}`;
  if (Buffer.byteLength(text) >= MAX_ANSWER_BYTES)
    return `${where}: an answer of ${Buffer.byteLength(text)} bytes`;
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    return `${where}: HTTP ${status} with a body that is no JSON: ${text.slice(0, 200)}`;
  }
  if (status === 200) {
    if (json?.kind !== 'AdmissionReview') return `${where}: HTTP 200 without an AdmissionReview`;
    const r = json.response;
    if (r?.uid !== c.uid) return `${where}: the answer echoes uid ${JSON.stringify(r?.uid)}`;
    if (typeof r.allowed !== 'boolean') return `${where}: no decision`;
    if (r.allowed === false && (typeof r.status?.message !== 'string' || r.status.message === ''))
      return `${where}: a denial without a message`;
    if (r.allowed === false && r.status?.code === 500) return `${where}: in-band code 500`;
    if (Array.isArray(r.warnings) && r.warnings.length > MAX_WARNINGS)
      return `${where}: ${r.warnings.length} warnings`;
    return undefined;
  }
  if (status >= 400 && status < 500) {
    if (typeof json?.message !== 'string' || json.message === '')
      return `${where}: HTTP ${status} without a message`;
    return undefined;
  }
  return `${where}: HTTP ${status}`;
}

t.test(`fuzz the webhook app for ${SECONDS} s (seed ${SEED})`, async (t: Test) => {
  const dir = mkdtempSync(join(tmpdir(), 'breeze-fuzz-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const certs = await writeDevCertificates(dir, ['127.0.0.1']);
  const store = new ConfigStore();
  const metrics = createMetrics();
  const logger = createLogger({ level: 'silent' });
  // Allowed changes go into the cache as in local mode, and expire at once: the fuzz drives the
  // whole admission path, the one that crashed in the cache and in the expiry interval.
  const feed = new AdmissionFeed(store, { graceMs: 0, logger, metrics });
  const app = buildWebhookApp({
    admission: {
      view: store,
      vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store),
      onAdmitted: feed.record,
    },
    logger,
    metrics,
    tls: { cert: readFileSync(certs.certFile, 'utf8'), key: readFileSync(certs.keyFile, 'utf8') },
  });
  t.teardown(() => app.close());

  let n = 0;
  const perFamily = new Map<string, number>();
  const started = Date.now();
  const result = await fc.check(
    fc.asyncProperty(caseSpec(), async (spec) => {
      const c = buildCase(spec, n++);
      perFamily.set(c.family, (perFamily.get(c.family) ?? 0) + 1);
      const res = await inject(app.handler, {
        method: 'POST',
        url: c.path,
        headers: { 'content-type': 'application/json' },
        payload: c.body,
      });
      const why = malformed(c, res.statusCode, res.body);
      if (why !== undefined) throw new Error(why);
      feed.expire(); // must not throw, whatever the cache holds now
      if (!(store.size >= 0)) throw new Error('the cache cannot count its entries');
    }),
    {
      seed: SEED,
      numRuns: 1_000_000,
      interruptAfterTimeLimit: SECONDS * 1000,
      markInterruptAsFailure: false,
      endOnFailure: true,
    },
  );
  t.comment(
    `${n} cases in ${((Date.now() - started) / 1000).toFixed(1)} s: ${[...perFamily]
      .sort()
      .map(([f, k]) => `${f} ${k}`)
      .join(', ')}`,
  );
  t.notOk(
    result.failed,
    result.failed
      ? `counterexample (seed ${SEED}, path ${result.counterexamplePath}): ${String(result.errorInstance instanceof Error ? result.errorInstance.message : result.errorInstance)}`
      : 'every answer well-formed',
  );
  t.ok(n > FAMILIES.length, `ran more cases (${n}) than there are families`);
  const internal = await metrics.registry.getSingleMetricAsString('breeze_admission_internal_errors_total');
  t.match(internal, /breeze_admission_internal_errors_total 0\b/, 'no internal error counted');
});

t.test('a few hostile cases through real TLS', async (t: Test) => {
  const b = await startLocal(t);
  const specs = fc.sample(caseSpec(), { numRuns: TLS_CASES, seed: SEED });
  // One of each of the findings' shapes at full size, besides the random ones.
  for (const family of ['nesting', 'port-name', 'bad-ports'] as const)
    specs.push({ fixture: 0, family, at: 0, variant: 0, size: 1 });
  for (const [i, spec] of specs.entries()) {
    const c = buildCase(spec, 100_000 + i);
    const res = await post(b, c.body, { path: c.path, fresh: i % 4 === 0 });
    t.equal(malformed(c, res.status, res.text), undefined, `${c.family} on ${c.fixture}: well-formed`);
  }
  t.equal((await health(b)).status, 200, '/healthz answers after them');
});
