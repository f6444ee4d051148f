// Starting and stopping: bad certificate material, port 0, graceful shutdown with a request in
// flight, idle keep-alive connections, idempotence.
import { writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import t from 'tap';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';
import { BreezeServer } from '../../src/server/index.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { captureLogger, getHealth, makeCerts, send, startHarness, validV1 } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('start refuses unusable certificate material', async (t) => {
  const certs = await makeCerts(t.testdir());
  const other = await makeCerts(join(t.testdir(), 'other'));
  const store = new ConfigStore();
  const start = (certFile: string, keyFile: string) =>
    BreezeServer.start({
      listen: { host: '127.0.0.1', port: 0 },
      healthListen: { host: '127.0.0.1', port: 0 },
      certFile,
      keyFile,
      admission: { view: store, vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store) },
      logger: captureLogger().logger,
      metrics: createMetrics(),
      isSynced: () => true,
    });
  const tlsMaterial = { name: 'BreezeError', code: 'TLS_MATERIAL' };
  await t.rejects(start(join(certs.dir, 'nope.crt'), certs.keyFile), tlsMaterial, 'missing file');
  await t.rejects(start(certs.certFile, other.keyFile), tlsMaterial, 'key of another pair');
  const garbage = join(certs.dir, 'garbage.crt');
  writeFileSync(garbage, 'not a certificate');
  await t.rejects(start(garbage, certs.keyFile), tlsMaterial, 'garbage');
});

t.test('ports: port 0 gives real, distinct ports', async (t) => {
  const h = await startHarness(t);
  t.ok(h.port > 0 && h.healthPort > 0 && h.port !== h.healthPort);
});

t.test('graceful shutdown lets an in-flight request finish, then refuses connections', async (t) => {
  const h = await startHarness(t, { drainDelayMs: 200 });
  const body = JSON.stringify(validV1('uid-drain'));
  const socket = tlsConnect({ host: '127.0.0.1', port: h.port, ca: h.certs.ca, servername: 'localhost' });
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString()));
  const closed = new Promise((r) => socket.once('close', r));
  await new Promise((r) => socket.once('secureConnect', r));
  socket.write(
    'POST /validate HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n' +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 100)}`,
  );
  await sleep(50);

  // An idle keep-alive connection must not hold the shutdown up.
  const agent = new Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  t.equal(
    (await send({ port: h.port, ca: h.certs.ca, agent, body: JSON.stringify(validV1('idle')) })).status,
    200,
  );

  const started = Date.now();
  const stopping = h.server.shutdown();
  t.equal(h.server.shutdown(), stopping, 'idempotent: the same promise');
  t.same(h.server.readiness().reasons, ['draining']);
  const during = await send({ port: h.port, ca: h.certs.ca, agent, body: JSON.stringify(validV1('during')) });
  t.equal(during.status, 200, 'still served during the drain delay');
  t.equal(during.headers.connection, 'close', 'but told to take its keep-alive connection elsewhere');
  await sleep(350); // past the drain delay: the webhook is closing now
  socket.write(body.slice(100));
  await closed;
  t.match(answer, /^HTTP\/1\.1 200 /, 'the in-flight request completed with 200');
  t.match(answer, /\r\nconnection: close\r\n/i, 'and its connection was closed, not kept alive');
  t.match(answer, /"uid":"uid-drain"/);
  await stopping;
  const took = Date.now() - started;
  t.ok(took < 2000, `shutdown finished promptly (${took} ms)`);

  const refused = await send({ port: h.port, ca: h.certs.ca, body: '{}' }).then(
    () => 'answered',
    (e: unknown) => (e as NodeJS.ErrnoException).code,
  );
  t.equal(refused, 'ECONNREFUSED', 'new connections are refused after close');
  await t.rejects(getHealth(h.healthPort, '/healthz'), 'health port closed too');
  await h.server.shutdown();
  t.pass('a second shutdown after completion resolves');
});
