// The fake API server's admission chain behaves as the real API server's: order, patches, denials,
// failure policies, dry runs, selectors, match conditions and version equivalence.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { writeDevCertificates } from '../../src/pki/certs.js';
import { FakeKubeApiServer } from './kube-apiserver.js';

type Json = Record<string, any>;
type Answer = (review: Json) => Json;

/** A webhook server whose answers the test scripts; every review it receives is kept. */
async function webhookServer(t: Test, dir: string) {
  const certs = await writeDevCertificates(join(dir, 'tls'), ['127.0.0.1']);
  const reviews: { path: string; review: Json }[] = [];
  const answers = new Map<string, Answer>();
  const server = createServer(
    { cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) },
    (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const review = JSON.parse(body) as Json;
        const path = (req.url ?? '').split('?')[0]!;
        reviews.push({ path, review });
        const answer = answers.get(path) ?? (() => ({ allowed: true }));
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: { uid: review.request.uid, ...answer(review) },
          }),
        );
      });
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  return {
    reviews,
    answers,
    port,
    caBundle: readFileSync(certs.caFile).toString('base64'),
    url: (path: string) => `https://127.0.0.1:${port}${path}`,
  };
}

function call(
  api: FakeKubeApiServer,
  method: string,
  path: string,
  body?: unknown,
  user = 'alice',
): Promise<{ status: number; json: Json; warning: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${api.url}${path}`,
      {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer fake:${user}` },
      },
      (res) => {
        let data = '';
        res.on('data', (c: Buffer) => (data += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(data) as Json,
            warning: res.headers.warning,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const SE_PATH = '/apis/networking.istio.io/v1/namespaces/apps/serviceentries';
const se = (name: string, labels: Record<string, string> = {}): Json => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: 'apps', labels },
  spec: { hosts: [`${name}.example`] },
});

function configuration(kind: 'Mutating' | 'Validating', name: string, webhooks: Json[]): Json {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: `${kind}WebhookConfiguration`,
    metadata: { name },
    webhooks,
  };
}

function hook(name: string, clientConfig: Json, extra: Json = {}): Json {
  return {
    name,
    clientConfig,
    rules: [
      {
        apiGroups: ['networking.istio.io'],
        apiVersions: ['v1'],
        resources: ['serviceentries'],
        operations: ['CREATE', 'UPDATE', 'DELETE'],
        scope: 'Namespaced',
      },
    ],
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    failurePolicy: 'Fail',
    timeoutSeconds: 5,
    ...extra,
  };
}

async function setup(t: Test) {
  const api = await FakeKubeApiServer.start();
  t.teardown(() => api.close());
  const wh = await webhookServer(t, t.testdir({}));
  return { api, wh, at: (path: string) => ({ url: wh.url(path), caBundle: wh.caBundle }) };
}

t.test('mutate first, then validate the patched object; warnings pass through', async (t) => {
  const { api, wh, at } = await setup(t);
  wh.answers.set('/mutate', () => ({
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(
      JSON.stringify([{ op: 'add', path: '/spec/addresses', value: ['240.0.0.1'] }]),
    ).toString('base64'),
    warnings: ['defaulted addresses'],
  }));
  wh.answers.set('/validate', () => ({ allowed: true, warnings: ['looks fine'] }));
  api.put(configuration('Validating', 'v', [hook('v.example', at('/validate'))]));
  api.put(configuration('Mutating', 'm', [hook('m.example', at('/mutate'))]));
  const r = await call(api, 'POST', SE_PATH, se('a'));
  t.equal(r.status, 201);
  t.same(r.json.spec.addresses, ['240.0.0.1']);
  t.equal(r.warning, '299 - "defaulted addresses", 299 - "looks fine"');
  t.same(
    wh.reviews.map((x) => x.path),
    ['/mutate', '/validate'],
  );
  const seen = wh.reviews[1]!.review.request;
  t.same(seen.object.spec.addresses, ['240.0.0.1'], 'the validating webhook sees the patched object');
  t.equal(seen.operation, 'CREATE');
  t.same(seen.userInfo.username, 'alice');
  t.equal(seen.oldObject, null);
  t.equal(seen.dryRun, false);
  t.same((api.get('networking.istio.io/v1', 'ServiceEntry', 'apps', 'a') as Json).spec.addresses, [
    '240.0.0.1',
  ]);
  t.equal(api.requests.at(-1)?.user, 'alice', 'the requesting user is recorded');
});

t.test(
  'denials as ToStatusErr makes them: the message names the webhook, codes below 400 become 400, reason, details and warnings kept',
  async (t) => {
    const { api, wh, at } = await setup(t);
    api.put(configuration('Validating', 'v', [hook('v.example', at('/validate'))]));
    wh.answers.set('/validate', () => ({ allowed: false, status: { code: 200, message: 'no' } }));
    let r = await call(api, 'POST', SE_PATH, se('a'));
    t.equal(r.status, 400);
    t.equal(r.json.message, 'admission webhook "v.example" denied the request: no');
    wh.answers.set('/validate', () => ({ allowed: false, status: { code: 422, reason: 'Invalid' } }));
    r = await call(api, 'POST', SE_PATH, se('a'));
    t.equal(r.status, 422);
    t.equal(r.json.message, 'admission webhook "v.example" denied the request: Invalid');
    t.equal(r.json.reason, 'Invalid');
    wh.answers.set('/validate', () => ({ allowed: false, status: {} }));
    r = await call(api, 'POST', SE_PATH, se('a'));
    t.equal(r.status, 400);
    t.equal(r.json.message, 'admission webhook "v.example" denied the request without explanation');
    t.notOk('reason' in r.json, 'an empty reason is left out, as the real server encodes it');
    const details = { name: 'a', kind: 'ServiceEntry', causes: [{ field: 'spec.hosts', message: 'bad' }] };
    wh.answers.set('/validate', () => ({
      allowed: false,
      status: { code: 422, message: 'bad', details },
      warnings: ['careful'],
    }));
    r = await call(api, 'POST', SE_PATH, se('a'));
    t.equal(r.status, 422);
    t.same(r.json.details, details, 'details kept');
    t.equal(r.warning, '299 - "careful"', "the denying webhook's warnings are sent as headers");
    t.equal(api.list('networking.istio.io/v1', 'ServiceEntry').length, 0, 'nothing persisted');
  },
);

t.test('failurePolicy: Fail refuses when the webhook cannot be called, Ignore lets it through', async (t) => {
  const { api } = await setup(t);
  const down = { service: { namespace: 'breeze', name: 'gone', path: '/validate', port: 443 } };
  api.put(configuration('Validating', 'v', [hook('v.example', down)]));
  const r = await call(api, 'POST', SE_PATH, se('a'));
  t.equal(r.status, 500);
  t.equal(
    r.json.message,
    'Internal error occurred: failed calling webhook "v.example": service "gone" not found',
  );
  api.put(configuration('Validating', 'v', [hook('v.example', down, { failurePolicy: 'Ignore' })]));
  t.equal((await call(api, 'POST', SE_PATH, se('a'))).status, 201);
  t.same(
    api.admission.calls.map((c) => c.outcome),
    ['failed', 'ignored'],
  );
});

t.test('dry run: reviews say so, nothing is stored, webhooks with side effects refuse', async (t) => {
  const { api, wh, at } = await setup(t);
  api.put(configuration('Validating', 'v', [hook('v.example', at('/validate'))]));
  const r = await call(api, 'POST', `${SE_PATH}?dryRun=All`, se('a'));
  t.equal(r.status, 201);
  t.equal(wh.reviews[0]?.review.request.dryRun, true);
  t.equal(api.list('networking.istio.io/v1', 'ServiceEntry').length, 0);
  api.put(configuration('Validating', 'v', [hook('v.example', at('/validate'), { sideEffects: 'Some' })]));
  const refused = await call(api, 'POST', `${SE_PATH}?dryRun=All`, se('a'));
  t.equal(refused.status, 400);
  t.equal(refused.json.message, 'admission webhook "v.example" does not support dry run');
});

t.test('selectors and match conditions decide which requests a webhook sees', async (t) => {
  const { api, wh, at } = await setup(t);
  api.put({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'apps', labels: { team: 'blue' } },
  });
  api.put(
    configuration('Validating', 'v', [
      hook('v.example', at('/validate'), {
        namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['blue'] }] },
        objectSelector: { matchLabels: { checked: 'yes' } },
        matchConditions: [{ name: 'not-bob', expression: "request.userInfo.username != 'bob'" }],
      }),
    ]),
  );
  await call(api, 'POST', SE_PATH, se('unlabelled'));
  await call(api, 'POST', SE_PATH, se('by-bob', { checked: 'yes' }), 'bob');
  await call(api, 'POST', SE_PATH, se('seen', { checked: 'yes' }));
  await call(api, 'POST', '/apis/networking.istio.io/v1/namespaces/other/serviceentries', {
    ...se('elsewhere', { checked: 'yes' }),
    metadata: { name: 'elsewhere', namespace: 'other', labels: { checked: 'yes' } },
  });
  t.same(
    wh.reviews.map((x) => x.review.request.name),
    ['seen'],
  );
});

t.test('matchPolicy Equivalent converts; UPDATE and DELETE carry the old object', async (t) => {
  const { api, wh, at } = await setup(t);
  api.put(configuration('Validating', 'v', [hook('v.example', at('/validate'))]));
  api.put(configuration('Validating', 'x', [hook('x.example', at('/exact'), { matchPolicy: 'Exact' })]));
  const path = '/apis/networking.istio.io/v1alpha3/namespaces/apps/serviceentries';
  await call(api, 'POST', path, { ...se('a'), apiVersion: 'networking.istio.io/v1alpha3' });
  t.same(
    wh.reviews.map((x) => x.path),
    ['/validate'],
    'Exact does not match v1alpha3',
  );
  const req = wh.reviews[0]!.review.request;
  t.same(req.kind, { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' });
  t.same(req.requestKind, { group: 'networking.istio.io', version: 'v1alpha3', kind: 'ServiceEntry' });
  t.equal(req.object.apiVersion, 'networking.istio.io/v1');

  const stored = api.get('networking.istio.io/v1', 'ServiceEntry', 'apps', 'a') as Json;
  await call(api, 'PUT', `${SE_PATH}/a`, { ...stored, spec: { hosts: ['b.example'] } });
  const update = wh.reviews.at(-1)!.review.request;
  t.equal(update.operation, 'UPDATE');
  t.same(update.oldObject.spec.hosts, ['a.example']);
  t.same(update.object.spec.hosts, ['b.example']);
  const del = await call(api, 'DELETE', `${SE_PATH}/a`);
  t.equal(del.status, 200);
  const deletion = wh.reviews.at(-1)!.review.request;
  t.equal(deletion.operation, 'DELETE');
  t.equal(deletion.object, null);
  t.same(deletion.oldObject.spec.hosts, ['b.example']);
});

t.test("a mutation Istio's schema rejects fails the write: 422 Invalid, nothing stored", async (t) => {
  const { api, wh, at } = await setup(t);
  const patchWith = (ops: Json[]) => () => ({
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
  });
  wh.answers.set('/mutate', patchWith([{ op: 'add', path: '/spec/resolution', value: 'BOGUS' }]));
  api.put(configuration('Validating', 'v', [hook('v.example', at('/validate'))]));
  api.put(configuration('Mutating', 'm', [hook('m.example', at('/mutate'))]));
  const r = await call(api, 'POST', SE_PATH, se('a'));
  t.equal(r.status, 422);
  t.same(r.json, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message:
      'ServiceEntry.networking.istio.io "a" is invalid: spec.resolution: Unsupported value: "BOGUS": supported values: "NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"',
    reason: 'Invalid',
    details: {
      name: 'a',
      group: 'networking.istio.io',
      kind: 'ServiceEntry',
      causes: [
        {
          reason: 'FieldValueNotSupported',
          message: 'Unsupported value: "BOGUS": supported values: "NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"',
          field: 'spec.resolution',
        },
      ],
    },
    code: 422,
  });
  t.same(
    wh.reviews.map((r) => r.path),
    ['/mutate'],
    'the schema is checked after the mutating webhooks, before the validating ones',
  );
  t.equal(api.list('networking.istio.io/v1', 'ServiceEntry').length, 0, 'nothing persisted');

  // A mutation that turns an invalid object valid is fine: the input is only pruned before.
  wh.answers.set('/mutate', patchWith([{ op: 'replace', path: '/spec/ports/0/number', value: 80 }]));
  const fixed = se('b');
  fixed.spec.ports = [{ number: 'eighty', name: 'http' }];
  const ok = await call(api, 'POST', SE_PATH, fixed);
  t.equal(ok.status, 201);
  t.same(ok.json.spec.ports, [{ number: 80, name: 'http' }]);

  // An update whose mutation breaks the schema fails the same way and leaves the stored object.
  wh.answers.set('/mutate', patchWith([{ op: 'add', path: '/spec/hosts/0', value: 7 }]));
  const upd = await call(api, 'PUT', `${SE_PATH}/b`, {
    ...ok.json,
    spec: { ...ok.json.spec, location: 'MESH_INTERNAL' },
  });
  t.equal(upd.status, 422);
  t.equal(
    upd.json.message,
    'ServiceEntry.networking.istio.io "b" is invalid: spec.hosts[0]: Invalid value: "integer": spec.hosts[0] in body must be of type string: "integer"',
  );
  t.equal((api.get('networking.istio.io/v1', 'ServiceEntry', 'apps', 'b') as Json).spec.location, undefined);
});
