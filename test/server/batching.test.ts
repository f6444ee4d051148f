// Issue 14: answers decided in one event-loop turn are written together at its end. Whatever the
// batching, every request gets exactly its own answer, once, in order on its connection, and is
// logged and counted once.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import inject from 'light-my-request';
import t from 'tap';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';
import { buildWebhookApp } from '../../src/server/app.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { captureLogger, makeCerts, sample, send, startHarness, validV1, mutateV1beta1 } from './helpers.js';

t.test(
  '400 concurrent reviews on 16 kept-alive connections: each answered once with its own uid',
  async (t) => {
    const h = await startHarness(t);
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    t.teardown(() => agent.destroy());
    let connections = 0;
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (...args: Parameters<typeof create>) => {
      connections++;
      return create(...args);
    };
    const N = 400;
    const results = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const uid = `uid-${i}`;
        // Three kinds of answer in the same turns: allowed, patched (mutate), and a 400 in-band.
        const kind = i % 3;
        const body =
          kind === 0
            ? JSON.stringify(validV1(uid))
            : kind === 1
              ? JSON.stringify(mutateV1beta1(uid))
              : JSON.stringify({
                  apiVersion: 'admission.k8s.io/v1',
                  kind: 'AdmissionReview',
                  request: { uid },
                });
        const res = await send({
          port: h.port,
          ca: h.certs.ca,
          agent,
          path: kind === 1 ? '/mutate' : '/validate',
          body,
        });
        return { i, kind, res };
      }),
    );
    let wrong = 0;
    for (const { i, kind, res } of results) {
      const ok =
        res.status === 200 &&
        res.json?.response?.uid === `uid-${i}` &&
        (kind === 2 ? res.json.response.allowed === false : res.json.response.allowed === true) &&
        (kind !== 1 || typeof res.json.response.patch === 'string');
      if (!ok) wrong++;
    }
    t.equal(wrong, 0, 'every answer is the one for its request');
    t.ok(connections <= 16, `at most 16 connections, kept alive (${connections})`);

    const metrics = await h.metrics.registry.metrics();
    // Each counted once: i % 3 === 0 allowed by /validate, 1 patched by /mutate, 2 a 400 in-band.
    const requests = (labels: Record<string, string>): number | undefined =>
      sample(metrics, 'breeze_admission_requests_total', labels);
    t.equal(requests({ webhook: 'validate', allowed: 'true' }), Math.ceil(N / 3));
    t.equal(requests({ webhook: 'mutate', allowed: 'true' }), Math.floor(N / 3));
    t.equal(requests({ webhook: 'validate', allowed: 'false', code: '400' }), Math.floor(N / 3));
    t.match(metrics, /^breeze_admission_in_flight 0$/m);
    const uids = h.log
      .lines()
      .filter(
        (l) => l.msg === 'admission decision' || l.msg === 'admission request is not an AdmissionReview',
      )
      .map((l) => l.uid);
    t.equal(uids.length, N, 'one log line per request');
    t.equal(new Set(uids).size, N, 'logged uids are distinct');
  },
);

t.test('pipelined requests in one write: both answered, in order, on the one connection', async (t) => {
  const h = await startHarness(t);
  const socket = tlsConnect({ host: '127.0.0.1', port: h.port, ca: h.certs.ca, servername: 'localhost' });
  t.teardown(() => socket.destroy());
  await new Promise((r) => socket.once('secureConnect', r));
  const request = (uid: string, path: string, body: string): string =>
    `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  socket.write(
    request('first', '/mutate', JSON.stringify(mutateV1beta1('first'))) +
      request('second', '/validate', JSON.stringify(validV1('second'))) +
      request('third', '/validate', JSON.stringify(validV1('third'))),
  );
  for (let i = 0; i < 200 && (text.match(/HTTP\/1\.1 200 /g) ?? []).length < 3; i++)
    await new Promise((r) => setTimeout(r, 10));
  const uids = [...text.matchAll(/"uid":"([a-z]+)"/g)].map((m) => m[1]);
  t.same(uids, ['first', 'second', 'third'], 'three answers, in request order');
  t.match(text.split('HTTP/1.1 200 ')[1] ?? '', /"patch":/, 'the first is the mutation with its patch');
});

t.test('the answers of a turn are written before what the admission feed does at its end', async (t) => {
  // The local-mode feed records admitted objects in a setImmediate of its own (AdmissionFeed):
  // an object that is costly to record must not hold back the turn's answers. An answer is
  // logged as it is written, so the decision lines count the answers written so far.
  const store = new ConfigStore();
  const answeredFirst: boolean[] = [];
  const log = { written: (): number => 0 };
  const h = await startHarness(t, {
    admission: {
      view: store,
      vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store),
      onAdmitted: () => {
        const before = log.written();
        setImmediate(() => answeredFirst.push(log.written() > before));
      },
    },
  });
  log.written = () => h.log.lines().filter((l) => l.msg === 'admission decision').length;
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(() => agent.destroy());
  const answers = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      send({ port: h.port, ca: h.certs.ca, agent, body: JSON.stringify(validV1(`uid-${i}`)) }),
    ),
  );
  t.ok(answers.every((a) => a.json?.response?.allowed === true));
  t.equal(answeredFirst.length, 40, 'every allowed review reached the feed');
  t.equal(answeredFirst.filter((x) => !x).length, 0, 'each answer was written before the feed ran');
});

t.test(
  'a connection closed between the decision and the end of its turn: logged as closed before an answer',
  async (t) => {
    const certs = await makeCerts(t.testdir());
    const store = new ConfigStore();
    const log = captureLogger();
    const metrics = createMetrics();
    const app = buildWebhookApp({
      admission: { view: store, vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store) },
      logger: log.logger,
      metrics,
      tls: { cert: readFileSync(certs.certFile, 'utf8'), key: readFileSync(certs.keyFile, 'utf8') },
    });
    const answer = inject(
      (req, res) => {
        app.handler(req, res);
        // Runs after the app's own 'end' listener, which decided and queued the answer.
        req.once('end', () => res.destroy());
      },
      {
        method: 'POST',
        url: '/validate',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(validV1('uid-gone')),
      },
    );
    await t.rejects(answer, /destroyed/);
    await new Promise((resolve) => setImmediate(resolve));
    t.same(
      log.lines().map((l) => l.msg),
      ['admission connection closed before an answer'],
      'not logged as a decision nobody received',
    );
    const text = await metrics.registry.metrics();
    t.notMatch(text, /^breeze_admission_requests_total\{/m, 'not counted as answered');
    t.match(text, /^breeze_admission_in_flight 0$/m);
  },
);
