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
