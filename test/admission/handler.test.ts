import { readFileSync } from 'node:fs';
import t from 'tap';
import { admit, type AdmittedChange } from '../../src/admission/handler.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore, type ConfigView } from '../../src/cache/store.js';

function seReview(over: { dryRun?: boolean; operation?: string; resolution?: string } = {}) {
  const object = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'thrift-hello', namespace: 'thrift' },
    spec: {
      hosts: ['thrift-hello.thrift.svc.cluster.local'],
      ports: [{ number: 9090, name: 'tcp-thrift' }],
      resolution: over.resolution ?? 'DNS',
    },
  };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-1',
      kind: { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' },
      namespace: 'thrift',
      name: 'thrift-hello',
      operation: over.operation ?? 'CREATE',
      userInfo: { username: 'alice' },
      object: over.operation === 'DELETE' ? null : object,
      oldObject: over.operation === 'DELETE' ? object : null,
      dryRun: over.dryRun ?? false,
    },
  };
}

function deps(view: ConfigView = new ConfigStore()) {
  const changes: AdmittedChange[] = [];
  const vips = new VipAllocator(new Ipv4Range('240.240.0.0/16'), view);
  return { deps: { view, vips, onAdmitted: (c: AdmittedChange) => changes.push(c) }, changes, vips };
}

t.test('bodies that are not reviews are HTTP 400 with a message', async (t) => {
  const { deps: d } = deps();
  const cases: [unknown, string][] = [
    [null, 'the body must be a JSON object (an AdmissionReview)'],
    [[1, 2], 'the body must be a JSON object (an AdmissionReview)'],
    [
      { kind: 'AdmissionReview', request: {} },
      'apiVersion must be admission.k8s.io/v1 or admission.k8s.io/v1beta1, got null',
    ],
    [
      { apiVersion: 'admission.k8s.io/v1', kind: 'Pod', request: {} },
      'kind must be AdmissionReview, got "Pod"',
    ],
    [
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' },
      'request is missing: not an AdmissionReview request',
    ],
    [
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: '' } },
      'request.uid is missing or empty',
    ],
  ];
  for (const [body, message] of cases) {
    const r = admit('validate', body, d);
    t.equal(r.httpStatus, 400);
    t.same(r.body, { message });
    t.equal(r.record, undefined);
  }
});

t.test('an exception inside a mutator is HTTP 500 that still echoes the uid', async (t) => {
  const view: ConfigView = {
    domain: 'cluster.local',
    protocolServices: () => [],
    destinationRuleSubsets: () => undefined,
    forHost: () => [],
    addressOwner: () => {
      throw new Error('boom');
    },
  };
  const { deps: d } = deps(view);
  const r = admit('mutate', seReview(), d);
  t.equal(r.httpStatus, 500);
  t.match(r.body, {
    apiVersion: 'admission.k8s.io/v1',
    response: { uid: 'u-1', allowed: false, status: { code: 500 } },
  });
  t.ok(r.error instanceof Error);
  t.match(r.record, { uid: 'u-1', allowed: false, code: 500, webhook: 'mutate', user: 'alice' });
});

t.test('allowed changes are recorded; dry runs never are', async (t) => {
  const { deps: d, changes, vips } = deps();
  admit('validate', seReview({ dryRun: true }), d);
  admit('mutate', seReview({ dryRun: true }), d);
  t.equal(changes.length, 0, 'dry-run validate records nothing');
  t.equal(vips.reservations, 0, 'dry-run mutate reserves no VIP');
  admit('validate', seReview({ resolution: 'NONE' }), d);
  t.equal(changes.length, 0, 'denied changes are not recorded');
  admit('validate', seReview(), d);
  admit('validate', seReview({ operation: 'DELETE' }), d);
  admit('validate', seReview({ operation: 'DELETE', dryRun: true }), d);
  t.match(changes, [
    { operation: 'CREATE', kind: 'ServiceEntry', namespace: 'thrift', name: 'thrift-hello' },
    {
      operation: 'DELETE',
      kind: 'ServiceEntry',
      namespace: 'thrift',
      name: 'thrift-hello',
      object: undefined,
    },
  ]);
  t.equal(changes.length, 2);
  admit('mutate', seReview(), d);
  t.equal(vips.reservations, 1, 'a real mutate reserves its VIP');
});

t.test('the decision record carries what the log line needs and nothing else', async (t) => {
  const { deps: d } = deps();
  const r = admit('validate', seReview(), d);
  t.same(r.record, {
    webhook: 'validate',
    uid: 'u-1',
    kind: 'ServiceEntry',
    namespace: 'thrift',
    name: 'thrift-hello',
    operation: 'CREATE',
    dryRun: false,
    user: 'alice',
    allowed: true,
    code: 200,
  });
});

t.test(
  'a review whose uid is readable is always answered in-band (code 400), never a bare 400',
  async (t) => {
    const { deps: d } = deps();
    const base = { uid: 'u-9', kind: { group: 'networking.istio.io', version: 'v1', kind: 'EnvoyFilter' } };
    const cases: [unknown, string, string][] = [
      [
        {
          apiVersion: 'admission.k8s.io/v2',
          kind: 'AdmissionReview',
          request: { ...base, operation: 'UPDATE' },
        },
        'admission.k8s.io/v1',
        'apiVersion must be admission.k8s.io/v1 or admission.k8s.io/v1beta1, got "admission.k8s.io/v2"',
      ],
      [
        { apiVersion: 'admission.k8s.io/v1beta1', kind: 'Review', request: { ...base, operation: 'UPDATE' } },
        'admission.k8s.io/v1beta1',
        'kind must be AdmissionReview, got "Review"',
      ],
      [
        {
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: { uid: 'u-9', operation: 'UPDATE' },
        },
        'admission.k8s.io/v1',
        'request.kind must be an object with group, version and kind',
      ],
      [
        {
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: { ...base, operation: 'PATCH' },
        },
        'admission.k8s.io/v1',
        'request.operation must be one of CREATE, UPDATE, DELETE, CONNECT',
      ],
      [
        {
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: { ...base, operation: 'UPDATE', object: 'x'.repeat(10) },
        },
        'admission.k8s.io/v1',
        'request.object must be an object',
      ],
    ];
    for (const [body, apiVersion, message] of cases) {
      const r = admit('validate', body, d);
      t.equal(r.httpStatus, 200, message);
      t.same(r.body, {
        apiVersion,
        kind: 'AdmissionReview',
        response: {
          uid: 'u-9',
          allowed: false,
          status: { status: 'Failure', code: 400, message, reason: 'BadRequest' },
        },
      });
    }
    // A uid no API server sends (it sends a 36-character UUID) is not echoed.
    const long = admit(
      'validate',
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u'.repeat(257) } },
      d,
    );
    t.equal(long.httpStatus, 400);
    t.same(long.body, { message: 'request.uid is longer than 256 characters' });
  },
);

t.test('__proto__ and constructor.prototype keys: the EnvoyFilter guard still denies in-band', async (t) => {
  const fx = JSON.parse(
    readFileSync(
      new URL(
        '../fixtures/admission/envoyfilter/deny-user-edits-breeze-filter.v1beta1.json',
        import.meta.url,
      ),
      'utf8',
    ),
  );
  // As the API server sends it: own `__proto__` keys (JSON.parse keeps them as data).
  const text = JSON.stringify(fx.review)
    .replace('"labels":{', '"labels":{"__proto__":"x",')
    .replace(
      '"spec":{',
      '"spec":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},',
    );
  const body = JSON.parse(text);
  t.ok(Object.hasOwn(body.request.object.metadata.labels, '__proto__'));
  const { deps: d } = deps();
  const r = admit('validate', body, { ...d, breezeUsers: ['system:serviceaccount:istio-system:breeze'] });
  t.equal(r.httpStatus, 200);
  t.same(r.body, {
    apiVersion: 'admission.k8s.io/v1beta1',
    kind: 'AdmissionReview',
    response: {
      uid: fx.review.request.uid,
      allowed: false,
      status: {
        status: 'Failure',
        code: 403,
        message: fx.expect.message,
        reason: 'Forbidden',
        details: {
          name: fx.review.request.name,
          group: 'networking.istio.io',
          kind: 'EnvoyFilter',
          causes: [
            {
              reason: 'FieldValueInvalid',
              field: 'metadata.labels[app.kubernetes.io/managed-by]',
              message: String(fx.expect.message).split('managed-by]: ')[1],
            },
          ],
        },
      },
    },
  });
  t.equal(({} as { polluted?: boolean }).polluted, undefined, 'no prototype was touched');
});

t.test('state changes only after the answer is complete: failing requests record nothing', async (t) => {
  const throwing: ConfigView = {
    domain: 'cluster.local',
    protocolServices: () => {
      throw new Error('boom');
    },
    destinationRuleSubsets: () => undefined,
    forHost: () => [],
    addressOwner: () => undefined,
  };
  const { deps: d, changes } = deps(throwing);
  const vs = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-3',
      kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' },
      namespace: 'dubbo',
      operation: 'CREATE',
      object: { metadata: { name: 'demo' }, spec: { hosts: ['demo'] } },
    },
  };
  const r = admit('validate', vs, d);
  t.equal(r.httpStatus, 500);
  t.equal(changes.length, 0, 'a validator that throws records nothing');
  // The feed is called once the answer is built; if it throws, the answer is a 500, not a crash.
  const { deps: d2 } = deps();
  const r2 = admit('validate', seReview(), {
    ...d2,
    onAdmitted: () => {
      throw new Error('feed down');
    },
  });
  t.equal(r2.httpStatus, 500);
  t.match(r2.body, { response: { uid: 'u-1', allowed: false, status: { code: 500 } } });
});

t.test(
  'a denial names the object like Kubernetes does: one line for one problem, a list for several',
  async (t) => {
    const { deps: d } = deps();
    const one = seReview({ resolution: 'NONE' }) as any;
    one.request.object.spec.ports[0].name = 'tcp-dubbo';
    one.request.object.metadata.annotations = { interface: 'org.example.Demo' };
    one.request.object.spec.addresses = ['10.0.0.1'];
    one.request.object.spec.ports.push({ number: 0, name: 'tcp-dubbo-2' });
    const several = structuredClone(one);
    several.request.object.spec.ports.push({ number: 70000, name: 'tcp-dubbo-3' });
    const status = (review: unknown) => (admit('validate', review, d).body.response as any).status;
    const s1 = status(one);
    t.equal(
      s1.message,
      'ServiceEntry.networking.istio.io "thrift-hello" is invalid: spec.ports[1].number: must be an integer from 1 to 65535, got 0',
    );
    t.equal(s1.code, 422);
    t.equal(s1.reason, undefined, 'no reason: kubectl then prints the whole message, webhook name included');
    t.same(s1.details, {
      name: 'thrift-hello',
      group: 'networking.istio.io',
      kind: 'ServiceEntry',
      causes: [
        {
          reason: 'FieldValueInvalid',
          field: 'spec.ports[1].number',
          message: 'must be an integer from 1 to 65535, got 0',
        },
      ],
    });
    t.equal(
      status(several).message,
      'ServiceEntry.networking.istio.io "thrift-hello" is invalid:\n' +
        '* spec.ports[1].number: must be an integer from 1 to 65535, got 0\n' +
        '* spec.ports[2].number: must be an integer from 1 to 65535, got 70000',
    );
    // A hostile name is quoted and cut in the message, cut to 253 characters in the details.
    const long = structuredClone(one);
    long.request.name = 'n'.repeat(5000);
    const s3 = status(long);
    t.match(
      s3.message,
      /^ServiceEntry\.networking\.istio\.io "n{100}"\.\.\. \(5000 characters\) is invalid: /,
    );
    t.equal(s3.details.name, 'n'.repeat(253));
  },
);
