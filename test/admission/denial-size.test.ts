// Finding 2 of issue 11 (the answer's size): 60,000 bad ports gave an 11.2 MiB denial. A denial
// lists at most MAX_PROBLEMS_LISTED problems and counts the rest; warnings are capped at
// MAX_WARNINGS; every piece that quotes input is cut. The whole answer stays a few KiB. What is
// past the caps is counted without being built (FindingsBuilder), and a ServiceEntry lists at most
// MAX_SERVICE_ENTRY_PORTS ports.
import t from 'tap';
import { admit } from '../../src/admission/handler.js';
import { CpuBudget } from '../../src/admission/budget.js';
import { decisionOf, deny, encodeReview } from '../../src/admission/review.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';
import { FindingsBuilder } from '../../src/admission/findings.js';
import { MAX_PROBLEMS_LISTED, MAX_SERVICE_ENTRY_PORTS, MAX_WARNINGS } from '../../src/model/limits.js';

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

function deps() {
  const store = new ConfigStore();
  return {
    view: store,
    vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store),
    // The listing bound is under test here, not the CPU budget (test/admission/budget.test.ts).
    newBudget: () => CpuBudget.unlimited(),
  };
}

t.test('4,000 bad ports: 50 problems listed, the rest counted, answer under 64 KiB', async (t) => {
  const r = admit('validate', badPortsReview(4_000), deps());
  t.equal(r.httpStatus, 200);
  const size = Buffer.byteLength(JSON.stringify(r.body));
  t.ok(size < 64 * 1024, `answer is ${size} bytes`);
  const status = (r.body.response as any).status;
  t.equal(status.code, 422);
  const port = (i: number) => `spec.ports[${i}].number: must be an integer from 1 to 65535, got 0`;
  const expected = [
    ...Array.from({ length: MAX_PROBLEMS_LISTED }, (_, i) => port(i)),
    '... and 3950 more problems',
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
    message: '... and 3950 more problems',
  });
});

t.test(
  'more ports than MAX_SERVICE_ENTRY_PORTS: one problem naming the limit, no port checked',
  async (t) => {
    for (const n of [MAX_SERVICE_ENTRY_PORTS + 1, 60_000]) {
      const r = admit('validate', badPortsReview(n), deps());
      const status = (r.body.response as any).status;
      t.equal(
        status.message,
        `ServiceEntry.networking.istio.io "many" is invalid: spec.ports: ${n} ports are more than Breeze checks in one ServiceEntry (4096; Istio's own CRD allows 256 since 1.23): split the ports over several entries`,
      );
      t.equal(status.details.causes.length, 1);
    }
    // The mutating webhook defaults nothing on such an entry (the validating one denies it).
    const mutated = admit('mutate', badPortsReview(60_000), deps()).body.response as any;
    t.same([mutated.allowed, mutated.patch], [true, undefined]);
    const at = admit('validate', badPortsReview(MAX_SERVICE_ENTRY_PORTS), deps());
    t.match(
      (at.body.response as any).status.message,
      /\n\* \.\.\. and 4046 more problems$/,
      'at the limit: checked',
    );
  },
);

t.test('past the caps, problems and warnings are counted without building their text', async (t) => {
  const f = new FindingsBuilder();
  let built = 0;
  const text = (s: string) => () => {
    built++;
    return s;
  };
  for (let i = 0; i < 1000; i++) f.deny(text(`p${i}`), text('bad'));
  for (let i = 0; i < 1000; i++) f.warn(text(`w${i}`), text('odd'));
  f.warn('w0', 'odd'); // a repeat of a kept warning, past the cap
  const got = f.build();
  t.equal(built, 2 * MAX_PROBLEMS_LISTED + 2 * MAX_WARNINGS, 'only the kept ones were built');
  t.equal(got.problems.length, MAX_PROBLEMS_LISTED);
  t.equal(got.problemsNotKept, 1000 - MAX_PROBLEMS_LISTED);
  t.equal(got.warnings.length, MAX_WARNINGS);
  t.equal(got.warningsNotKept, 1000 - MAX_WARNINGS + 1, 'past the cap a repeat is counted, not compared');
  const merged = new FindingsBuilder().deny('a', 'b').merge(got).build();
  t.equal(merged.problems.length, MAX_PROBLEMS_LISTED);
  t.equal(merged.problemsNotKept, 1000 - MAX_PROBLEMS_LISTED + 1);

  const small = new FindingsBuilder().warn('x', 'y').warn('x', 'y').build();
  t.same(small, { problems: [], warnings: ['x: y'] }, 'no counts when nothing was dropped');

  // The answer counts what was not kept.
  const body = encodeReview(
    'admission.k8s.io/v1',
    'u',
    decisionOf(got, { kind: 'ServiceEntry', group: 'networking.istio.io', name: 'x' }),
  );
  const response = body.response as any;
  t.equal(response.status.details.causes.at(-1).message, '... and 950 more problems');
  t.equal(response.warnings.length, MAX_WARNINGS);
  t.equal(response.warnings.at(-1), `... and ${1000 - MAX_WARNINGS + 2} more warnings`);
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
