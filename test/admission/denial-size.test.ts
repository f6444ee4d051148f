// Finding 2 of issue 11 (the answer's size): 60,000 bad ports gave an 11.2 MiB denial. A denial
// lists at most MAX_PROBLEMS_LISTED problems and counts the rest; warnings are capped at
// MAX_WARNINGS; every piece that quotes input is cut. The whole answer stays a few KiB.
import t from 'tap';
import { admit } from '../../src/admission/handler.js';
import { CpuBudget } from '../../src/admission/budget.js';
import { deny, encodeReview } from '../../src/admission/review.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';
import { MAX_PROBLEMS_LISTED, MAX_WARNINGS } from '../../src/model/limits.js';

function badPortsReview(n: number): unknown {
  const ports = Array.from({ length: n }, (_, i) => ({ number: 0, name: `tcp-thrift-${i}` }));
  return JSON.parse(
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'ports-1',
        kind: { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' },
        namespace: 'thrift',
        name: 'many',
        operation: 'CREATE',
        userInfo: { username: 'mallory' },
        object: {
          apiVersion: 'networking.istio.io/v1',
          kind: 'ServiceEntry',
          metadata: { name: 'many', namespace: 'thrift' },
          spec: { hosts: ['many.thrift.svc.cluster.local'], resolution: 'DNS', ports },
        },
      },
    }),
  ) as unknown;
}

t.test('60,000 bad ports: 50 problems listed, the rest counted, answer under 64 KiB', async (t) => {
  const store = new ConfigStore();
  const deps = {
    view: store,
    vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store),
    // The listing bound is under test here, not the CPU budget (test/admission/budget.test.ts).
    newBudget: () => CpuBudget.unlimited(),
  };
  const r = admit('validate', badPortsReview(60_000), deps);
  t.equal(r.httpStatus, 200);
  const size = Buffer.byteLength(JSON.stringify(r.body));
  t.ok(size < 64 * 1024, `answer is ${size} bytes`);
  const status = (r.body.response as any).status;
  t.equal(status.code, 422);
  const port = (i: number) => `spec.ports[${i}].number: must be an integer from 1 to 65535, got 0`;
  const expected = [
    ...Array.from({ length: MAX_PROBLEMS_LISTED }, (_, i) => port(i)),
    '... and 59950 more problems',
  ];
  t.equal(
    status.message,
    `ServiceEntry.networking.istio.io "many" is invalid:${expected.map((l) => `\n* ${l}`).join('')}`,
  );
  t.equal(status.details.causes.length, MAX_PROBLEMS_LISTED + 1);
  t.same(status.details.causes[0], {
    reason: 'FieldValueInvalid',
    field: 'spec.ports[0].number',
    message: 'must be an integer from 1 to 65535, got 0',
  });
  t.same(status.details.causes[MAX_PROBLEMS_LISTED], {
    reason: 'FieldValueInvalid',
    field: '',
    message: '... and 59950 more problems',
  });
});

t.test('problems with huge paths and messages are cut, the listing stops by size', async (t) => {
  const problems = Array.from({ length: 200 }, (_, i) => ({
    path: `metadata.annotations[${'k'.repeat(1_000_000)}${i}]`,
    message: `bad value ${'"'.repeat(1_000_000)}`,
  }));
  const body = encodeReview('admission.k8s.io/v1', 'u', deny(problems));
  const size = Buffer.byteLength(JSON.stringify(body));
  t.ok(size < 64 * 1024, `answer is ${size} bytes`);
  const status = (body.response as any).status;
  const first = status.details.causes[0];
  t.equal(first.field.length, 200);
  t.ok(first.field.endsWith('…'));
  t.equal(first.message.length, 400);
  t.match(status.message, /; \.\.\. and \d+ more problems$/);
  t.equal(status.details.causes.at(-1).message, status.message.slice(status.message.lastIndexOf('... and')));
});

t.test('warnings: at most MAX_WARNINGS, the last one counts the rest, each cut', async (t) => {
  const warnings = Array.from({ length: 500 }, (_, i) => `w${i} ${'x'.repeat(i === 0 ? 1_000_000 : 0)}`);
  const body = encodeReview('admission.k8s.io/v1', 'u', { allowed: true, code: 200, warnings });
  const got = (body.response as any).warnings as string[];
  t.equal(got.length, MAX_WARNINGS);
  t.equal(got[0]!.length, 120);
  t.equal(got[1], 'w1 ');
  t.equal(got[MAX_WARNINGS - 1], `... and ${500 - (MAX_WARNINGS - 1)} more warnings`);
  const few = encodeReview('admission.k8s.io/v1', 'u', { allowed: true, code: 200, warnings: ['a', 'b'] });
  t.same((few.response as any).warnings, ['a', 'b']);
});
