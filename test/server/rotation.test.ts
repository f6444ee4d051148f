// Certificate rotation without a restart, laid out like a Kubernetes Secret volume (files behind a
// `..data` symlink that is swapped atomically), under a stream of requests that must all succeed.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { waitFor } from '../wait.js';
import { createCa, createServingCert, type PemPair } from '../../src/pki/certs.js';
import { CertificateReloader } from '../../src/server/tls.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { captureLogger, HOSTS, sample, send, startHarness, validV1, getHealth } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const serialOf = (p: PemPair) => new X509Certificate(p.cert).serialNumber;

/** A Secret-volume-like directory: tls.crt -> ..data/tls.crt, ..data -> ..<version>. */
function secretVolume(dir: string, first: PemPair) {
  let n = 0;
  const swap = (files: { cert: string; key: string }): void => {
    const version = `..v${++n}`;
    mkdirSync(join(dir, version));
    writeFileSync(join(dir, version, 'tls.crt'), files.cert);
    writeFileSync(join(dir, version, 'tls.key'), files.key, { mode: 0o600 });
    symlinkSync(version, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  swap(first);
  symlinkSync(join('..data', 'tls.crt'), join(dir, 'tls.crt'));
  symlinkSync(join('..data', 'tls.key'), join(dir, 'tls.key'));
  return { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), swap };
}

t.test('rotation under load: zero failed requests, new pair served, broken pair rejected', async (t) => {
  const ca = await createCa();
  const a = await createServingCert(ca, HOSTS);
  const b = await createServingCert(ca, HOSTS);
  const other = await createServingCert(ca, HOSTS);
  const vol = secretVolume(t.testdir(), a);
  const h = await startHarness(t, {
    certs: { dir: '', ca: ca.cert, caFile: '', certFile: vol.certFile, keyFile: vol.keyFile },
    pollIntervalMs: 200,
  });
  const base = { port: h.port, ca: ca.cert };
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  t.teardown(() => agent.destroy());
  const failures: string[] = [];
  const freshSerials: string[] = [];
  let total = 0;

  const one = async (i: number, keepAlive: boolean): Promise<void> => {
    const uid = `rot-${i}-${keepAlive ? 'ka' : 'new'}`;
    try {
      const res = await send({
        ...base,
        agent: keepAlive ? agent : false,
        body: JSON.stringify(validV1(uid)),
      });
      if (res.status !== 200 || res.json?.response?.uid !== uid) failures.push(`${uid}: ${res.status}`);
      if (!keepAlive) freshSerials.push(res.serial);
    } catch (err) {
      failures.push(`${uid}: ${(err as Error).message}`);
    } finally {
      total++;
    }
  };

  const failureCount = async () =>
    sample((await getHealth(h.healthPort, '/metrics')).text, 'breeze_tls_reloads_total', {
      result: 'failure',
    }) ?? 0;

  const serialA = serialOf(a);
  const serialB = serialOf(b);
  // Four requests at a time: two on keep-alive connections, two on fresh ones.
  let batch = 0;
  const run = async (): Promise<void> => {
    const i = batch++ * 4;
    await Promise.all([one(i, true), one(i + 1, true), one(i + 2, false), one(i + 3, false)]);
  };
  while (batch < 15) await run();
  vol.swap(b);
  // Keep going until new connections get B (file event or poll), at least to batch 35.
  while ((batch < 35 || freshSerials.at(-1) !== serialB) && batch < 500) {
    await run();
    if (batch % 5 === 0) await sleep(10);
  }
  // A cert with the key of another pair: must be rejected, B stays.
  const brokenAt = freshSerials.length;
  vol.swap({ cert: other.cert, key: b.key });
  while (batch < 45) await run();
  vol.swap({ cert: 'garbage', key: 'more garbage' });
  while (batch < 60) await run();
  t.equal(total, batch * 4);
  t.ok(total >= 240, `ran ${total} requests`);
  t.same(failures, [], 'zero failed requests');
  t.equal(freshSerials[0], serialA, 'A served first');
  t.ok(freshSerials.includes(serialB), 'new connections presented B during the stream');
  t.ok(
    freshSerials.slice(brokenAt).every((s) => s === serialB),
    'after the broken pair, new connections still get B',
  );

  await waitFor('the broken pairs to be rejected', async () => (await failureCount()) >= 1);
  const fresh = await send({ ...base, body: JSON.stringify(validV1('after-broken')) });
  t.equal(fresh.status, 200);
  t.equal(fresh.serial, serialB, 'B still served after the broken pair');
  const text = (await getHealth(h.healthPort, '/metrics')).text;
  t.ok((sample(text, 'breeze_tls_reloads_total', { result: 'success' }) ?? 0) >= 1, 'one successful reload');
  t.ok((sample(text, 'breeze_tls_reloads_total', { result: 'failure' }) ?? 0) >= 1, 'failures counted');
  t.equal(
    sample(text, 'breeze_tls_certificate_expiry_seconds'),
    Date.parse(new X509Certificate(b.cert).validTo) / 1000,
    'expiry gauge follows B',
  );

  const warnings = h.log
    .lines()
    .filter((l) => l.msg === 'rejected new serving certificate; keeping the current one');
  t.ok(warnings.length >= 1 && warnings.length <= 3, `one warning per broken pair (${warnings.length})`);
  t.notOk(h.log.raw().includes('PRIVATE KEY'), 'no key material logged');
  t.notOk(h.log.raw().includes(b.key.split('\n')[1]!), 'no key bytes logged');

  // Rotating again after the broken pairs works.
  vol.swap(a);
  await waitFor(
    'A again on new connections',
    async () => (await send({ ...base, body: JSON.stringify(validV1('back')) })).serial === serialA,
  );
  t.pass('rotated back to A');
});

t.test('CertificateReloader', async (t) => {
  const ca = await createCa();
  const a = await createServingCert(ca, HOSTS);
  const b = await createServingCert(ca, HOSTS);

  t.test('start refuses unusable material with TLS_MATERIAL', async (t) => {
    const dir = t.testdir();
    const make = (cert: string, key: string) => {
      writeFileSync(join(dir, 'tls.crt'), cert);
      writeFileSync(join(dir, 'tls.key'), key);
      return new CertificateReloader({
        certFile: join(dir, 'tls.crt'),
        keyFile: join(dir, 'tls.key'),
        logger: captureLogger().logger,
        metrics: createMetrics(),
      });
    };
    const tlsMaterial = { name: 'BreezeError', code: 'TLS_MATERIAL' };
    await t.rejects(
      new CertificateReloader({
        certFile: join(dir, 'missing.crt'),
        keyFile: join(dir, 'missing.key'),
        logger: captureLogger().logger,
        metrics: createMetrics(),
      }).start(),
      tlsMaterial,
      'missing files',
    );
    await t.rejects(make('garbage', a.key).start(), tlsMaterial, 'garbage cert');
    await t.rejects(make(a.cert, 'garbage').start(), tlsMaterial, 'garbage key');
    await t.rejects(
      make(a.cert, b.key).start(),
      { ...tlsMaterial, message: /is not the private key/ },
      'mismatch',
    );
    await t.rejects(make(a.cert.slice(0, 200), a.key).start(), tlsMaterial, 'half-written cert');
    const ok = make(a.cert, a.key);
    await ok.start();
    t.equal(ok.loaded, true);
    t.equal(ok.current().cert, a.cert);
    t.same(ok.current().notAfter, new Date(new X509Certificate(a.cert).validTo));
    ok.stop();
  });

  t.test('polling alone picks up a change (no file events needed)', async (t) => {
    const dir = t.testdir();
    writeFileSync(join(dir, 'tls.crt'), a.cert);
    writeFileSync(join(dir, 'tls.key'), a.key);
    const log = captureLogger();
    const metrics = createMetrics();
    const r = new CertificateReloader({
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      logger: log.logger,
      metrics,
      pollIntervalMs: 50,
    });
    await r.start();
    t.teardown(() => r.stop());
    // Make the watcher blind so only the poll can notice.
    (r as any).watchers.splice(0).forEach((w: { close(): void }) => w.close());
    writeFileSync(join(dir, 'tls.key'), b.key);
    writeFileSync(join(dir, 'tls.crt'), b.cert);
    await waitFor('the poll to load B', () => r.current().cert === b.cert, 3000);
    t.pass('B loaded by polling');
    // The same broken content seen by many polls is reported once.
    const failures = async () =>
      (await metrics.tlsReloads.get()).values.find((v) => v.labels.result === 'failure')?.value ?? 0;
    const warnings = () => log.lines().filter((l) => l.level === 'warn').length;
    const [failuresBefore, warningsBefore] = [await failures(), warnings()];
    writeFileSync(join(dir, 'tls.crt'), 'garbage');
    await sleep(300);
    t.equal((await failures()) - failuresBefore, 1, 'counted once over several polls');
    t.equal(warnings() - warningsBefore, 1, 'one warning');
    t.equal(r.current().cert, b.cert, 'B kept');
  });
});
