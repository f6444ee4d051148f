// The webhook over real TLS sockets: the AdmissionReview contract, HTTP edge cases, the
// ?timeout= deadline, TLS/HTTP versions, and the decision log.
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { Agent } from 'node:https';
import t from 'tap';
import type { AdmissionDeps } from '../../src/admission/handler.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore, type ConfigView } from '../../src/cache/store.js';
import { mutateV1beta1, send, startHarness, validV1 } from './helpers.js';

const DECISION_FIELDS = [
  'uid',
  'kind',
  'namespace',
  'name',
  'operation',
  'dryRun',
  'user',
  'allowed',
  'code',
  'durationMs',
  'webhook',
].sort();
const PINO_FIELDS = ['level', 'time', 'pid', 'hostname', 'msg'];

t.test('AdmissionReview over HTTPS', async (t) => {
  const h = await startHarness(t);
  const base = { port: h.port, ca: h.certs.ca };

  t.test('v1 review to /validate: 200, uid echoed, HTTP/1.1, one decision line', async (t) => {
    const before = h.log.lines().length;
    const res = await send({ ...base, body: JSON.stringify(validV1('uid-v1')) });
    t.equal(res.status, 200);
    t.equal(res.httpVersion, '1.1');
    t.match(res.headers['content-type'], /^application\/json/);
    t.equal(res.json.apiVersion, 'admission.k8s.io/v1');
    t.equal(res.json.kind, 'AdmissionReview');
    t.equal(res.json.response.uid, 'uid-v1');
    t.equal(res.json.response.allowed, true);
    const lines = h.log.lines().slice(before);
    t.equal(lines.length, 1, 'exactly one log line');
    const line = lines[0]!;
    t.same(
      Object.keys(line)
        .filter((k) => !PINO_FIELDS.includes(k))
        .sort(),
      DECISION_FIELDS,
      'exactly the decision fields',
    );
    t.match(line, {
      level: 'info',
      uid: 'uid-v1',
      kind: 'ServiceEntry',
      namespace: 'dubbo',
      name: 'dubbo-demo',
      operation: 'CREATE',
      dryRun: false,
      user: 'kubernetes-admin',
      allowed: true,
      code: 200,
      webhook: 'validate',
    });
    t.type(line.durationMs, 'number');
    t.equal(h.admitted.length, 1, 'onAdmitted saw the allowed change');
  });

  t.test('v1beta1 review to /mutate: 200, answered in v1beta1 with a JSONPatch', async (t) => {
    const res = await send({ ...base, path: '/mutate', body: JSON.stringify(mutateV1beta1('uid-b1')) });
    t.equal(res.status, 200);
    t.equal(res.json.apiVersion, 'admission.k8s.io/v1beta1');
    t.equal(res.json.response.uid, 'uid-b1');
    t.equal(res.json.response.allowed, true);
    t.equal(res.json.response.patchType, 'JSONPatch');
    const patch = JSON.parse(Buffer.from(res.json.response.patch, 'base64').toString('utf8'));
    t.match(patch, [
      { op: 'add', path: '/spec/ports/0/protocol', value: 'TCP' },
      { path: '/spec/addresses' },
    ]);
  });

  t.test('v1 review to /mutate and v1beta1 to /validate', async (t) => {
    const m = await send({ ...base, path: '/mutate', body: JSON.stringify(validV1('uid-m1')) });
    t.equal(m.status, 200);
    t.equal(m.json.response.uid, 'uid-m1');
    const v = await send({ ...base, body: JSON.stringify(mutateV1beta1('uid-v-b1')) });
    t.equal(v.status, 200);
    t.equal(v.json.apiVersion, 'admission.k8s.io/v1beta1');
    t.equal(v.json.response.uid, 'uid-v-b1');
  });

  t.test('charset parameter is accepted', async (t) => {
    const res = await send({
      ...base,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(validV1('uid-charset')),
    });
    t.equal(res.status, 200);
    t.equal(res.json.response.uid, 'uid-charset');
  });

  t.test('wrong or missing content type: 415', async (t) => {
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', '']) {
      const res = await send({
        ...base,
        headers: { 'content-type': ct },
        body: JSON.stringify(validV1('x')),
      });
      t.equal(res.status, 415, `content-type ${JSON.stringify(ct)}`);
      t.match(res.json, { message: /application\/json/ });
    }
  });

  t.test('body over 7 MiB: 413', async (t) => {
    const big = JSON.stringify({ ...validV1('uid-big'), padding: 'x'.repeat(7 * 1024 * 1024) });
    const res = await send({ ...base, body: big });
    t.equal(res.status, 413);
    t.match(res.json, { message: /7 MiB/ });
    // Just under the limit is still read and decided.
    const review = validV1('uid-almost');
    const overhead = JSON.stringify({ ...review, padding: '' }).length;
    const almost = JSON.stringify({ ...review, padding: 'x'.repeat(7 * 1024 * 1024 - overhead) });
    t.equal(almost.length, 7 * 1024 * 1024);
    const ok = await send({ ...base, body: almost });
    t.equal(ok.status, 200);
    t.equal(ok.json.response.uid, 'uid-almost');
  });

  t.test('malformed JSON: 400 with a message', async (t) => {
    const res = await send({ ...base, body: '{"apiVersion": "admission.k8s.io/v1", ' });
    t.equal(res.status, 400);
    t.match(res.json, { message: /JSON/ });
    t.same(Object.keys(res.json), ['message']);
    const empty = await send({ ...base, body: '' });
    t.equal(empty.status, 400);
    t.type(empty.json.message, 'string');
  });

  t.test('JSON that is not a review (no request, no uid): 400 with a message', async (t) => {
    for (const body of [
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' },
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: {} } },
      [1, 2, 3],
      'just a string',
    ]) {
      const res = await send({ ...base, body: JSON.stringify(body) });
      t.equal(res.status, 400, JSON.stringify(body));
      t.type(res.json.message, 'string');
    }
  });

  t.test('garbage request.kind with a uid: 200, uid echoed, allowed false, code 400', async (t) => {
    const r = validV1('uid-garbage');
    r.request.kind = 'not-an-object';
    const before = h.log.lines().length;
    const res = await send({ ...base, body: JSON.stringify(r) });
    t.equal(res.status, 200);
    t.equal(res.json.response.uid, 'uid-garbage');
    t.equal(res.json.response.allowed, false);
    t.equal(res.json.response.status.code, 400);
    const lines = h.log.lines().slice(before);
    t.equal(lines.length, 1);
    t.match(lines[0], { uid: 'uid-garbage', allowed: false, code: 400, webhook: 'validate' });
  });

  t.test('dryRun validate does not call onAdmitted', async (t) => {
    const before = h.admitted.length;
    const r = validV1('uid-dry');
    r.request.dryRun = true;
    const res = await send({ ...base, body: JSON.stringify(r) });
    t.equal(res.status, 200);
    t.equal(res.json.response.allowed, true);
    t.equal(h.admitted.length, before);
    t.match(h.log.lines().at(-1), { uid: 'uid-dry', dryRun: true });
  });

  t.test('unknown path: 404; GET on a webhook path: 404', async (t) => {
    t.equal((await send({ ...base, path: '/nope', body: '{}' })).status, 404);
    t.equal((await send({ ...base, method: 'GET' })).status, 404);
    const long = await send({ ...base, path: `/${'a'.repeat(300)}?x=1`, body: '{}' });
    t.same([long.status, long.json], [404, { message: `POST /${'a'.repeat(199)}… not found` }]);
  });

  t.test('a keep-alive connection serves many requests', async (t) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const serials = new Set<string>();
    let reused = 0;
    for (let i = 0; i < 5; i++) {
      const res = await send({ ...base, agent, body: JSON.stringify(validV1(`uid-ka-${i}`)) });
      t.equal(res.status, 200);
      serials.add(res.serial);
      if (res.reusedSocket) reused++;
    }
    t.equal(serials.size, 1);
    t.equal(reused, 4, 'the socket was reused');
  });
});

t.test('an internal error is a 500, logged, counted, and the server keeps serving', async (t) => {
  const store = new ConfigStore();
  const broken: ConfigView = {
    domain: store.domain,
    protocolServices: (fqdn) => store.protocolServices(fqdn),
    destinationRuleSubsets: (fqdn) => store.destinationRuleSubsets(fqdn),
    forHost: (kind, fqdn) => store.forHost(kind, fqdn),
    addressOwner: () => {
      throw new Error('view exploded');
    },
  };
  const admission: AdmissionDeps = {
    view: broken,
    vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), broken),
  };
  const h = await startHarness(t, { admission });
  const base = { port: h.port, ca: h.certs.ca };
  const res = await send({ ...base, path: '/mutate', body: JSON.stringify(mutateV1beta1('uid-boom')) });
  t.equal(res.status, 500);
  t.equal(res.json.response.uid, 'uid-boom', 'the uid is still echoed');
  t.equal(res.json.response.allowed, false);
  t.equal(res.json.response.status.code, 500);
  const errLine = h.log.lines().find((l) => l.uid === 'uid-boom');
  t.match(errLine, { level: 'error', code: 500, err: { message: 'view exploded' } });
  t.notOk(JSON.stringify(errLine).includes('thrift-hello.thrift.svc'), 'no object body in the log');
  t.equal((await h.metrics.admissionInternalErrors.get()).values[0]?.value, 1);
  const next = await send({ ...base, body: JSON.stringify(validV1('uid-after')) });
  t.equal(next.status, 200);
  t.equal(next.json.response.uid, 'uid-after');
});

t.test('?timeout= deadline', async (t) => {
  const h = await startHarness(t);

  /** Sends headers and half the body, then stalls; resolves with the answer and when it came. */
  const slow = (path: string) =>
    new Promise<{ status: number; body: any; ms: number }>((resolve, reject) => {
      const body = JSON.stringify(validV1('uid-slow'));
      const started = Date.now();
      const c = tlsConnect(
        { host: '127.0.0.1', port: h.port, ca: h.certs.ca, servername: 'localhost' },
        () => {
          c.write(
            `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
              `Content-Length: ${body.length}\r\n\r\n${body.slice(0, 100)}`,
          );
        },
      );
      let data = '';
      c.on('data', (d: Buffer) => (data += d.toString()));
      c.on('error', reject);
      c.on('close', () => {
        const status = Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1]);
        const json = data.slice(data.indexOf('\r\n\r\n') + 4);
        resolve({ status, body: JSON.parse(json), ms: Date.now() - started });
      });
    });

  const res = await slow('/validate?timeout=1s');
  t.equal(res.status, 500);
  t.match(res.body, { message: /deadline exceeded/ });
  t.ok(res.ms < 1000, `answered before the API server's 1s (${res.ms} ms)`);
  t.ok(res.ms >= 850, `not before the 900 ms deadline (${res.ms} ms)`);
  const line = h.log.lines().find((l) => l.msg === 'admission deadline exceeded');
  t.match(line, { level: 'warn', webhook: 'validate', timeoutMs: 1000 });

  const ms = await slow('/mutate?timeout=500ms');
  t.equal(ms.status, 500);
  t.ok(ms.ms < 500, `500ms: answered within ${ms.ms} ms`);

  // A fast request with a timeout is answered normally.
  const ok = await send({
    port: h.port,
    ca: h.certs.ca,
    path: '/validate?timeout=10s',
    body: JSON.stringify(validV1('uid-fast')),
  });
  t.equal(ok.status, 200);
  t.equal(ok.json.response.uid, 'uid-fast');
  // The stalled requests produced nothing else: no stray "reply already sent" warnings.
  await new Promise((r) => setTimeout(r, 100));
  t.same(
    h.log
      .lines()
      .filter((l) => l.level !== 'info')
      .map((l) => l.msg),
    ['admission deadline exceeded', 'admission deadline exceeded'],
  );
});

t.test('transport: plain HTTP refused, TLS 1.1 refused, h2 not offered', async (t) => {
  const h = await startHarness(t);

  const plain = await new Promise<string>((resolve) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: h.port,
        method: 'POST',
        path: '/validate',
        headers: { 'content-type': 'application/json' },
      },
      (res) => resolve(`status ${res.statusCode}`),
    );
    req.on('error', (e) => resolve(`error ${e.message}`));
    req.end('{}');
  });
  t.notOk(plain.startsWith('status 200'), `plain HTTP does not get an answer: ${plain}`);

  const tls11 = await new Promise<string>((resolve) => {
    const c = tlsConnect(
      {
        host: '127.0.0.1',
        port: h.port,
        ca: h.certs.ca,
        servername: 'localhost',
        maxVersion: 'TLSv1.1',
        minVersion: 'TLSv1',
      },
      () => {
        resolve(`connected ${c.getProtocol()}`);
        c.destroy();
      },
    );
    c.on('error', (e) => resolve(`error ${e.message}`));
  });
  t.match(tls11, /^error/, `TLS 1.1 refused: ${tls11}`);

  const alpn = await new Promise<string | false>((resolve, reject) => {
    const c = tlsConnect(
      {
        host: '127.0.0.1',
        port: h.port,
        ca: h.certs.ca,
        servername: 'localhost',
        ALPNProtocols: ['h2', 'http/1.1'],
      },
      () => {
        resolve(c.alpnProtocol ?? false);
        c.destroy();
      },
    );
    c.on('error', reject);
  });
  t.equal(alpn, 'http/1.1', 'ALPN picks HTTP/1.1 even when h2 is offered');

  const raw = await new Promise<string>((resolve) => {
    const c = netConnect({ host: '127.0.0.1', port: h.port }, () => c.write('GET / HTTP/1.1\r\n\r\n'));
    c.on('error', () => resolve('error'));
    c.on('close', () => resolve('closed'));
  });
  t.ok(['error', 'closed'].includes(raw), 'a raw TCP client speaking HTTP is disconnected');
});

t.test('no secret reaches the log', async (t) => {
  const h = await startHarness(t);
  const secret = 's3cr3t-value';
  const body = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'uid-redis',
      kind: { group: 'redis.aeraki.io', version: 'v1alpha1', kind: 'RedisService' },
      resource: { group: 'redis.aeraki.io', version: 'v1alpha1', resource: 'redisservices' },
      name: 'redis-single',
      namespace: 'redis',
      operation: 'CREATE',
      userInfo: { username: 'kubernetes-admin' },
      object: {
        apiVersion: 'redis.aeraki.io/v1alpha1',
        kind: 'RedisService',
        metadata: { name: 'redis-single', namespace: 'redis' },
        spec: {
          host: ['redis-single.redis.svc.cluster.local'],
          settings: { auth: { plain: { password: secret } } },
          redis: [{ route: { host: 'redis-single.redis.svc.cluster.local' } }],
        },
      },
    },
  };
  for (const path of ['/validate', '/mutate']) {
    const res = await send({ port: h.port, ca: h.certs.ca, path, body: JSON.stringify(body) });
    t.equal(res.status, 200);
    t.equal(res.json.response.uid, 'uid-redis');
  }
  // Also as an UPDATE with oldObject, and as garbage that fails decoding.
  const update = structuredClone(body) as any;
  update.request.operation = 'UPDATE';
  update.request.oldObject = structuredClone(body.request.object);
  await send({ port: h.port, ca: h.certs.ca, body: JSON.stringify(update) });
  const broken = structuredClone(body) as any;
  broken.request.operation = 'EXPLODE';
  await send({ port: h.port, ca: h.certs.ca, body: JSON.stringify(broken) });
  const lines = h.log.lines().filter((l) => l.uid === 'uid-redis');
  t.equal(lines.length, 4, 'one line per decision');
  t.notOk(h.log.raw().includes(secret), 'the password never appears in any log line');
  t.notOk(h.log.raw().includes('redis-single.redis.svc'), 'no object body in any log line');

  // The logger itself censors secret-bearing paths even when someone logs them.
  h.log.logger.info({ object: body.request.object, spec: { password: secret }, tls: { key: 'PEM' } }, 'oops');
  h.log.logger.info({ req: { headers: { authorization: `Bearer ${secret}` } } }, 'oops');
  t.notOk(h.log.raw().includes(secret), 'redaction catches object, *.password and authorization');
  t.notOk(h.log.raw().includes('"PEM"'), 'redaction catches *.tls.key');
});
