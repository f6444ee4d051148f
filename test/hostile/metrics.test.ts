// Issue 11, finding 4: `request.kind.kind` became a Prometheus label, so 3,000 forged reviews
// with random kinds grew RSS by over 1 GiB and /metrics answered 500 from then on. Labels now take
// known values only (plus `other`): /metrics stays small and its label sets closed.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { fixtureReview, health, inBand, post, startLocal } from './helpers.js';

const REVIEWS = 3000;
const CONCURRENCY = 16;

/** Distinct values of one label across the admission metrics' samples. */
function labelValues(metrics: string, label: string): Set<string> {
  const values = new Set<string>();
  const re = new RegExp(`[{,]${label}="((?:[^"\\\\]|\\\\.)*)"`, 'g');
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('breeze_admission')) continue;
    for (const m of line.matchAll(re)) values.add(m[1]!);
  }
  return values;
}

t.test('3,000 reviews with random kinds leave /metrics bounded', async (t) => {
  const b = await startLocal(t);
  const before = await health(b, '/metrics');
  t.equal(before.status, 200);

  const base = fixtureReview('serviceentry/allow-dubbo.v1.json', 'x');
  const operations = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];
  let sent = 0;
  const failures: string[] = [];
  const worker = async (): Promise<void> => {
    while (sent < REVIEWS) {
      const i = sent++;
      const review = structuredClone(base);
      const uid = `hostile-kind-${i}`;
      review.request.uid = uid;
      const kind = `K${randomBytes(12).toString('hex')}`;
      review.request.kind = { group: `g${i}.example.com`, version: `v${i}`, kind };
      review.request.resource = {
        group: `g${i}.example.com`,
        version: `v${i}`,
        resource: kind.toLowerCase(),
      };
      review.request.operation = i % 10 === 0 ? `OP${i}` : operations[i % operations.length];
      review.request.object.kind = kind;
      const res = await post(b, JSON.stringify(review), { path: i % 2 === 0 ? '/validate' : '/mutate' });
      if (res.status !== 200 || res.json?.response?.uid !== uid)
        failures.push(`${uid}: HTTP ${res.status} ${res.text.slice(0, 120)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  t.strictSame(failures.slice(0, 5), [], 'every forged review answered in-band (or as a 400 would be wrong)');

  const after = await health(b, '/metrics');
  t.equal(after.status, 200, '/metrics answers');
  const bytes = Buffer.byteLength(after.text);
  t.ok(bytes < 256 * 1024, `/metrics stays small (${bytes} bytes, ${Buffer.byteLength(before.text)} before)`);
  const kinds = labelValues(after.text, 'kind');
  t.ok(
    kinds.size <= 10,
    `the kind label takes known values only (${kinds.size}: ${[...kinds].slice(0, 12).join(', ')})`,
  );
  t.notOk(
    [...kinds].some((k) => k.startsWith('K') && k.length > 20),
    'no forged kind became a label value',
  );
  const ops = labelValues(after.text, 'operation');
  t.ok(ops.size <= 7, `the operation label takes known values only (${[...ops].slice(0, 12).join(', ')})`);
  t.equal((await health(b)).status, 200, '/healthz answers');

  // A real review after the flood is still counted under its own kind.
  const uid = 'hostile-kind-real';
  const res = await post(b, JSON.stringify(fixtureReview('serviceentry/allow-dubbo.v1.json', uid)));
  t.equal(inBand(t, res, uid).allowed, true);
  const last = await health(b, '/metrics');
  t.ok(labelValues(last.text, 'kind').has('ServiceEntry'), 'known kinds keep their own label value');
});
