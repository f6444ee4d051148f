// Finding 1 of issue 11: objects beyond Breeze's bounds (depth, string and list lengths) are
// denied with a 422 naming the field and the limit before any validator, mutator or the cache
// sees them; never a 500, never recorded, no VIP reserved.
import t from 'tap';
import { admit, type AdmittedChange } from '../../src/admission/handler.js';
import { show } from '../../src/admission/findings.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';

function nested(depth: number, shape: 'object' | 'array', leaf: unknown = 1): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = shape === 'object' ? { a: v } : [v];
  return v;
}

function serviceEntry(spec: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'thrift-hello', namespace: 'thrift' },
    spec: {
      hosts: ['thrift-hello.thrift.svc.cluster.local'],
      ports: [{ number: 9090, name: 'tcp-thrift' }],
      resolution: 'DNS',
      ...spec,
    },
    ...extra,
  };
}

function review(object: unknown, over: { operation?: string; oldObject?: unknown } = {}) {
  // Through JSON text, as the server parses it.
  return JSON.parse(
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'deep-1',
        kind: { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' },
        namespace: 'thrift',
        name: 'thrift-hello',
        operation: over.operation ?? 'CREATE',
        userInfo: { username: 'mallory' },
        object,
        oldObject: over.oldObject ?? null,
        dryRun: false,
      },
    }),
  ) as unknown;
}

/** JSON.stringify recurses: build the review text for very deep values by hand. */
function deepReviewText(depth: number, shape: 'object' | 'array', at: 'object' | 'ports'): string {
  const open = shape === 'object' ? '{"a":'.repeat(depth) : '['.repeat(depth);
  const close = shape === 'object' ? '}'.repeat(depth) : ']'.repeat(depth);
  const deep = `${open}1${close}`;
  const spec =
    at === 'object'
      ? `{"hosts":["thrift-hello.thrift.svc.cluster.local"],"ports":[{"number":9090,"name":"tcp-thrift"}],"resolution":"DNS","x":${deep}}`
      : `{"hosts":["thrift-hello.thrift.svc.cluster.local"],"ports":[{"number":${deep},"name":"tcp-thrift"}],"resolution":"DNS"}`;
  return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"deep-2","kind":{"group":"networking.istio.io","version":"v1","kind":"ServiceEntry"},"namespace":"thrift","name":"thrift-hello","operation":"CREATE","userInfo":{"username":"mallory"},"object":{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"thrift-hello","namespace":"thrift"},"spec":${spec}}}}`;
}

function deps() {
  const store = new ConfigStore();
  const changes: AdmittedChange[] = [];
  const vips = new VipAllocator(new Ipv4Range('240.240.0.0/16'), store);
  return { d: { view: store, vips, onAdmitted: (c: AdmittedChange) => changes.push(c) }, changes, vips };
}

const DEPTH_MESSAGE = "nested deeper than Breeze's limit of 100 levels";

t.test('a ServiceEntry with a field nested 20,000 deep is denied (422), not recorded', async (t) => {
  const { d, changes } = deps();
  for (const webhook of ['validate', 'mutate'] as const) {
    const r = admit(webhook, JSON.parse(deepReviewText(20_000, 'object', 'object')), d);
    t.equal(r.httpStatus, 200, webhook);
    t.same(r.body, {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: 'deep-2',
        allowed: false,
        status: {
          status: 'Failure',
          code: 422,
          message: `ServiceEntry.networking.istio.io "thrift-hello" is invalid: spec.x.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a...: ${DEPTH_MESSAGE}`,
          details: {
            name: 'thrift-hello',
            group: 'networking.istio.io',
            kind: 'ServiceEntry',
            causes: [
              {
                reason: 'FieldValueInvalid',
                field: 'spec.x.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a...',
                message: DEPTH_MESSAGE,
              },
            ],
          },
        },
      },
    });
  }
  t.equal(changes.length, 0, 'nothing reaches the cache feed');
});

t.test('arrays nested 10,000 deep in a field a denial quotes: 422, not 500', async (t) => {
  const { d, changes } = deps();
  const r = admit('validate', JSON.parse(deepReviewText(10_000, 'array', 'ports')), d);
  t.equal(r.httpStatus, 200);
  t.match(r.body, {
    response: {
      uid: 'deep-2',
      allowed: false,
      status: {
        code: 422,
        message: `spec.ports[0].number${'[0]'.repeat(16)}...: ${DEPTH_MESSAGE}`,
      },
    },
  });
  t.equal(changes.length, 0);
  // The quoting itself no longer recurses either (a value at the bound, or past it offline).
  t.equal(show(nested(100_000, 'array')), `${'['.repeat(57)}...`);
  t.equal(show(nested(100_000, 'object')), `${'{"a":'.repeat(11)}{"...`);
  t.equal(show(new Array(100_000).fill(7)), `[${'7,'.repeat(28)}...`);
  t.equal(show('x'.repeat(10_000_000)), `"${'x'.repeat(56)}...`);
  t.equal(show({ a: undefined, b: [undefined, () => 1], c: 'd' }), '{"b":[null,null],"c":"d"}');
  t.equal(show(undefined), 'undefined');
});

t.test('long strings and lists are denied naming the limit', async (t) => {
  const { d } = deps();
  const long = admit('validate', review(serviceEntry({ exportTo: ['x'.repeat(1_572_865)] })), d);
  t.match(long.body, {
    response: {
      allowed: false,
      status: {
        code: 422,
        message:
          "spec.exportTo[0]: a string of 1572865 characters is longer than Breeze's limit of 1572864 (no object etcd stores holds one)",
      },
    },
  });
  const many = admit('validate', review(serviceEntry({ addresses: new Array(100_001).fill('10.0.0.1') })), d);
  t.match(many.body, {
    response: {
      allowed: false,
      status: {
        code: 422,
        message: "spec.addresses: a list of 100001 items is longer than Breeze's limit of 100000",
      },
    },
  });
});

t.test('mutate: an object beyond the bounds reserves no VIP', async (t) => {
  const { d, vips } = deps();
  const object = serviceEntry({ x: nested(150, 'object') });
  const r = admit('mutate', review(object), d);
  t.match(r.body, { response: { allowed: false, status: { code: 422 } } });
  t.equal(vips.reservations, 0);
});

t.test('an UPDATE whose stored object is beyond the bounds is judged on the new object', async (t) => {
  // Stored before Breeze was installed: the update that fixes it must go through.
  const { d, changes } = deps();
  const oldObject = serviceEntry({ x: nested(150, 'object') });
  const r = admit('validate', review(serviceEntry({}), { operation: 'UPDATE', oldObject }), d);
  t.match(r.body, { response: { uid: 'deep-1', allowed: true } });
  t.equal(changes.length, 1);
  const del = admit('validate', review(null, { operation: 'DELETE', oldObject }), d);
  t.match(del.body, { response: { allowed: true } }, 'a DELETE is never denied for its size');
});
