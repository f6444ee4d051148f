// The fake API server applies CRD schemas as the real one: pruning, field validation modes,
// Istio's and Breeze's own CRDs, int-or-string, nullable, preserve-unknown-fields.
import { request as httpRequest } from 'node:http';
import t from 'tap';
import { CrdSchemas } from './crd-schema.js';
import { FakeKubeApiServer } from './kube-apiserver.js';

type Json = Record<string, any>;

function call(
  api: FakeKubeApiServer,
  method: string,
  path: string,
  body: unknown,
): Promise<{ status: number; json: Json; warning: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${api.url}${path}`,
      { method, headers: { 'content-type': 'application/json', authorization: 'Bearer fake:alice' } },
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
    req.end(JSON.stringify(body));
  });
}

const SE = '/apis/networking.istio.io/v1/namespaces/apps/serviceentries';
const se = (spec: Json): Json => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: 'a', namespace: 'apps' },
  spec,
});

t.test(
  'unknown fields: pruned with a warning by default, refused under Strict, silent under Ignore',
  async (t) => {
    const api = await FakeKubeApiServer.start();
    t.teardown(() => api.close());
    const body = se({
      hosts: ['a.example'],
      colour: 'blue',
      ports: [{ number: 80, name: 'http', extra: 1 }],
    });
    const strict = await call(api, 'POST', `${SE}?fieldValidation=Strict`, body);
    t.equal(strict.status, 400);
    t.equal(
      strict.json.message,
      'strict decoding error: unknown field "spec.colour", unknown field "spec.ports[0].extra"',
    );
    t.equal(api.list('networking.istio.io/v1', 'ServiceEntry').length, 0);
    const warn = await call(api, 'POST', SE, body);
    t.equal(warn.status, 201);
    t.equal(
      warn.warning,
      '299 - "unknown field \\"spec.colour\\"", 299 - "unknown field \\"spec.ports[0].extra\\""',
    );
    t.same(warn.json.spec, { hosts: ['a.example'], ports: [{ number: 80, name: 'http' }] }, 'pruned');
    const ignore = await call(api, 'PUT', `${SE}/a?fieldValidation=Ignore`, {
      ...warn.json,
      spec: body.spec,
    });
    t.equal(ignore.status, 200);
    t.equal(ignore.warning, undefined);
    t.same(ignore.json.spec, { hosts: ['a.example'], ports: [{ number: 80, name: 'http' }] });
  },
);

t.test("Istio's schema: a missing required field and wrong types, every cause listed", async (t) => {
  const api = await FakeKubeApiServer.start();
  t.teardown(() => api.close());
  const r = await call(api, 'POST', SE, se({ ports: [{ number: 'x', name: 'http' }], exportTo: 'all' }));
  t.equal(r.status, 422);
  t.equal(r.json.reason, 'Invalid');
  t.equal(
    r.json.message,
    'ServiceEntry.networking.istio.io "a" is invalid: [spec.hosts: Required value, ' +
      'spec.exportTo: Invalid value: "string": spec.exportTo in body must be of type array: "string", ' +
      'spec.ports[0].number: Invalid value: "string": spec.ports[0].number in body must be of type integer: "string"]',
  );
  t.same(r.json.details.causes.map((c: Json) => `${c.reason} ${c.field}`).sort(), [
    'FieldValueRequired spec.hosts',
    'FieldValueTypeInvalid spec.exportTo',
    'FieldValueTypeInvalid spec.ports[0].number',
  ]);
  // The same in every served version (v1alpha3 shares the schema).
  const old = await call(api, 'POST', SE.replace('/v1/', '/v1alpha3/'), {
    ...se({ hosts: ['a.example'], resolution: 'dns' }),
    apiVersion: 'networking.istio.io/v1alpha3',
  });
  t.equal(old.status, 422);
  t.match(old.json.message, 'spec.resolution: Unsupported value: "dns"');
});

t.test("Breeze's own CRDs: a RedisService whose host is not a list is refused", async (t) => {
  const api = await FakeKubeApiServer.start();
  t.teardown(() => api.close());
  const r = await call(api, 'POST', '/apis/redis.aeraki.io/v1alpha1/namespaces/redis/redisservices', {
    apiVersion: 'redis.aeraki.io/v1alpha1',
    kind: 'RedisService',
    metadata: { name: 'r' },
    spec: { host: 'redis.redis.svc.cluster.local' },
  });
  t.equal(r.status, 422);
  t.equal(
    r.json.message,
    'RedisService.redis.aeraki.io "r" is invalid: spec.host: Invalid value: "string": spec.host in body must be of type array: "string"',
  );
});

t.test('no CRDs: no schema checks', async (t) => {
  const api = await FakeKubeApiServer.start({ crds: [] });
  t.teardown(() => api.close());
  const r = await call(api, 'POST', SE, se({ ports: 'x', colour: 'blue' }));
  t.equal(r.status, 201);
  t.same(r.json.spec, { ports: 'x', colour: 'blue' });
});

t.test('int-or-string, nullable, preserve-unknown-fields and additionalProperties', async (t) => {
  const crd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  group: example.com
  names: { kind: Widget }
  versions:
  - name: v1
    served: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              port: { x-kubernetes-int-or-string: true }
              note: { type: string, nullable: true }
              size: { type: integer }
              free: { type: object, x-kubernetes-preserve-unknown-fields: true }
              labels: { type: object, additionalProperties: { type: object, properties: { v: { type: string } } } }
`;
  const schemas = new CrdSchemas().load(crd);
  const check = (spec: Json) => schemas.check('example.com', 'Widget', 'v1', { spec });
  t.same(check({ port: 8080, note: null })?.causes, []);
  t.same(check({ port: 'http' })?.causes, []);
  t.same(
    check({ port: true })?.causes.map((c) => c.field),
    ['spec.port'],
  );
  t.same(check({ size: null })?.causes, [
    {
      reason: 'FieldValueTypeInvalid',
      message: 'Invalid value: "null": spec.size in body must be of type integer: "null"',
      field: 'spec.size',
    },
  ]);
  const kept = check({ free: { any: { thing: 1 } }, labels: { a: { v: 'x', w: 'y' } }, gone: 1 });
  t.same(kept?.object, { spec: { free: { any: { thing: 1 } }, labels: { a: { v: 'x' } } } });
  t.same(kept?.unknown, ['spec.labels.a.w', 'spec.gone']);
  t.equal(schemas.check('example.com', 'Widget', 'v2', {}), undefined, 'no schema for an unknown version');
});

t.test('ratcheting: an update may keep a value the schema refuses, not introduce one', async (t) => {
  const api = await FakeKubeApiServer.start();
  t.teardown(() => api.close());
  // Stored before the schema got stricter (put() bypasses the checks).
  api.put(se({ hosts: ['a.example'], resolution: 'dns' }));
  const status = await call(api, 'PUT', `${SE}/a/status`, {
    ...se({ hosts: ['a.example'], resolution: 'dns' }),
    status: { observedGeneration: 1 },
  });
  t.equal(status.status, 200, 'a status write is not refused for the stored spec');
  const same = await call(
    api,
    'PUT',
    `${SE}/a`,
    se({ hosts: ['a.example', 'b.example'], resolution: 'dns' }),
  );
  t.equal(same.status, 200, 'an unchanged bad value is tolerated');
  const worse = await call(
    api,
    'PUT',
    `${SE}/a`,
    se({ hosts: ['a.example'], resolution: 'dns', location: 'x' }),
  );
  t.equal(worse.status, 422);
  t.match(worse.json.message, 'spec.location: Unsupported value: "x"');
});
