// The plain-HTTP side: probes and Prometheus metrics after real admission traffic.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import t from 'tap';
import { getHealth, mutateV1beta1, sample, send, startHarness, validV1 } from './helpers.js';

t.test('probes', async (t) => {
  const h = await startHarness(t, { drainDelayMs: 300 });
  h.synced.value = false;

  const live = await getHealth(h.healthPort, '/healthz');
  t.equal(live.status, 200);
  t.equal(live.text, 'ok');
  t.equal((await getHealth(h.healthPort, '/livez')).status, 200);

  const notSynced = await getHealth(h.healthPort, '/readyz');
  t.equal(notSynced.status, 503);
  t.same(JSON.parse(notSynced.text), { ready: false, reasons: ['cache not synced'] });

  h.synced.value = true;
  const ready = await getHealth(h.healthPort, '/readyz');
  t.equal(ready.status, 200);
  t.same(JSON.parse(ready.text), { ready: true, reasons: [] });
  t.same(h.server.readiness(), { ready: true, reasons: [] });

  const stopping = h.server.shutdown();
  t.same(h.server.readiness(), { ready: false, reasons: ['draining'] }, 'not ready at once');
  const draining = await getHealth(h.healthPort, '/readyz');
  t.equal(draining.status, 503, 'the health port still answers during the drain delay');
  t.same(JSON.parse(draining.text).reasons, ['draining']);
  t.equal((await getHealth(h.healthPort, '/healthz')).status, 200, 'still live while draining');
  await stopping;
  await t.rejects(getHealth(h.healthPort, '/healthz'), 'health port closed after shutdown');
});

t.test('metrics after admission traffic', async (t) => {
  const h = await startHarness(t);
  const base = { port: h.port, ca: h.certs.ca };
  for (let i = 0; i < 3; i++) {
    t.equal((await send({ ...base, body: JSON.stringify(validV1(`v-${i}`)) })).status, 200);
  }
  t.equal((await send({ ...base, path: '/mutate', body: JSON.stringify(mutateV1beta1('m-1')) })).status, 200);
  const denied = validV1('d-1');
  delete denied.request.object.metadata.annotations;
  const deniedRes = await send({ ...base, body: JSON.stringify(denied) });
  t.equal(deniedRes.json.response.allowed, false);
  t.equal(deniedRes.json.response.status.code, 422);
  t.equal((await send({ ...base, headers: { 'content-type': 'text/plain' }, body: '{}' })).status, 415);
  t.equal((await send({ ...base, body: '{' })).status, 400);

  const text = (await getHealth(h.healthPort, '/metrics')).text;
  const se = { kind: 'ServiceEntry', operation: 'CREATE' };
  t.equal(
    sample(text, 'breeze_admission_requests_total', {
      webhook: 'validate',
      ...se,
      allowed: 'true',
      code: '200',
    }),
    3,
  );
  t.equal(
    sample(text, 'breeze_admission_requests_total', {
      webhook: 'validate',
      ...se,
      allowed: 'false',
      code: '422',
    }),
    1,
  );
  t.equal(
    sample(text, 'breeze_admission_requests_total', {
      webhook: 'mutate',
      ...se,
      allowed: 'true',
      code: '200',
    }),
    1,
  );
  t.equal(
    sample(text, 'breeze_admission_requests_total', {
      webhook: 'validate',
      kind: '',
      operation: '',
      allowed: 'false',
      code: '415',
    }),
    1,
    'a rejected request is counted with empty kind and operation',
  );
  t.equal(sample(text, 'breeze_admission_requests_total', { webhook: 'validate', kind: '', code: '400' }), 1);
  const hist = { webhook: 'validate', ...se, allowed: 'true' };
  t.equal(sample(text, 'breeze_admission_duration_seconds_count', hist), 3);
  t.ok((sample(text, 'breeze_admission_duration_seconds_sum', hist) ?? -1) > 0);
  t.equal(sample(text, 'breeze_admission_duration_seconds_bucket', { ...hist, le: '10' }), 3);
  t.ok(sample(text, 'breeze_admission_duration_seconds_bucket', { ...hist, le: '0.0005' }) !== undefined);
  t.equal(sample(text, 'breeze_admission_in_flight'), 0);
  t.equal(sample(text, 'breeze_admission_internal_errors_total'), 0);
  t.equal(sample(text, 'breeze_tls_reloads_total', { result: 'success' }), 0);
  t.equal(sample(text, 'breeze_tls_reloads_total', { result: 'failure' }), 0);
  const notAfter = Date.parse(new X509Certificate(readFileSync(h.certs.certFile)).validTo) / 1000;
  t.equal(sample(text, 'breeze_tls_certificate_expiry_seconds'), notAfter, "the serving cert's notAfter");
  t.match(text, /^# TYPE breeze_admission_duration_seconds histogram$/m);
  t.match(text, /^process_cpu_user_seconds_total /m, 'default process metrics');
  t.match(text, /^nodejs_eventloop_lag_seconds /m);
});

t.test('the in-flight gauge counts a request until it is answered', async (t) => {
  const h = await startHarness(t);
  const inFlight = async () =>
    sample((await getHealth(h.healthPort, '/metrics')).text, 'breeze_admission_in_flight');
  const body = JSON.stringify(validV1('uid-inflight'));
  const socket = tlsConnect({ host: '127.0.0.1', port: h.port, ca: h.certs.ca, servername: 'localhost' });
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString()));
  await new Promise((r) => socket.once('secureConnect', r));
  socket.write(
    `POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  socket.write(body.slice(0, 50));
  for (let i = 0; i < 50 && (await inFlight()) !== 1; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(await inFlight(), 1, 'one request in flight');
  socket.end(body.slice(50));
  await new Promise((r) => socket.once('close', r));
  t.match(answer, /^HTTP\/1\.1 200 /);
  t.match(answer, /uid-inflight/);
  t.equal(await inFlight(), 0, 'back to zero');
});
