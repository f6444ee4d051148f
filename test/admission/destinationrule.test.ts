// Edge cases of the DestinationRule validator that the AdmissionReview fixtures do not pin down.
import t from 'tap';
import fc from 'fast-check';
import { ConfigStore } from '../../src/cache/store.js';
import { validateDestinationRule } from '../../src/admission/validators/destinationrule.js';
import type { JsonRecord } from '../../src/model/json.js';

const DUBBO_HOST = 'org.apache.dubbo.samples.basic.api.demoservice';
const ctx = { view: new ConfigStore(), namespace: 'dubbo' };

function dr(spec: unknown): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'dubbo-demo', namespace: 'dubbo' },
    spec,
  };
}

const paths = (spec: unknown): string[] => validateDestinationRule(dr(spec), ctx).problems.map((p) => p.path);

t.test('a spec that is not an object is denied at spec', async (t) => {
  for (const spec of [undefined, null, [], 'host: x', 0, false]) {
    t.same(paths(spec), ['spec'], JSON.stringify(spec));
  }
  t.equal(
    validateDestinationRule(dr(undefined), ctx).problems[0]?.message,
    'must be an object with host and subsets, got none',
  );
});

t.test('host must be a non-empty string', async (t) => {
  for (const host of [undefined, '', '  ', 42, ['a'], null]) {
    t.same(paths({ host }), ['spec.host'], JSON.stringify(host));
  }
  t.same(paths({ host: 'thrift-hello' }), [], 'a short host');
  t.same(paths({ host: '*.example.com' }), [], 'a wildcard host is for Istio to judge');
  t.equal(
    validateDestinationRule(dr({}), ctx).problems[0]?.message,
    `must name the service the rule applies to (e.g. ${DUBBO_HOST}), got none`,
  );
});

t.test('subsets: a list of objects named with unique DNS-1123 labels', async (t) => {
  t.same(paths({ host: DUBBO_HOST, subsets: { name: 'v1' } }), ['spec.subsets']);
  t.same(paths({ host: DUBBO_HOST, subsets: [] }), []);
  t.same(paths({ host: DUBBO_HOST, subsets: ['v1', null, { name: 'v1' }] }), [
    'spec.subsets[0]',
    'spec.subsets[1]',
  ]);
  t.same(
    paths({
      host: DUBBO_HOST,
      subsets: [
        {},
        { name: 7 },
        { name: 'v1.2' },
        { name: '-v1' },
        { name: 'a'.repeat(64) },
        { name: 'a'.repeat(63) },
        { name: 'canary-2' },
        { name: 'V1' },
        { name: 'canaryV2' },
      ],
    }),
    [
      'spec.subsets[0].name',
      'spec.subsets[1].name',
      'spec.subsets[2].name',
      'spec.subsets[3].name',
      'spec.subsets[4].name',
    ],
  );
  const dup = validateDestinationRule(
    dr({
      host: DUBBO_HOST,
      subsets: [{ name: 'V1' }, { name: 'v1' }, { name: 'v2' }, { name: 'v1' }, { name: 'v2' }],
    }),
    ctx,
  );
  t.same(
    dup.problems,
    [
      {
        path: 'spec.subsets[3].name',
        message: '"v1" is already used by spec.subsets[1]; subset names must be unique in a rule',
      },
      {
        path: 'spec.subsets[4].name',
        message: '"v2" is already used by spec.subsets[2]; subset names must be unique in a rule',
      },
    ],
    'V1 and v1 are different names (Istio keeps the case), each used once',
  );
});

t.test('subset labels must be a string map', async (t) => {
  const r = validateDestinationRule(
    dr({
      host: DUBBO_HOST,
      subsets: [
        { name: 'v1', labels: { version: 'v1', canary: true, tier: null, nested: { a: 'b' } } },
        { name: 'v2', labels: 'version=v2' },
        { name: 'v3', labels: {} },
        { name: 'v4' },
      ],
    }),
    ctx,
  );
  t.same(r.problems, [
    {
      path: 'spec.subsets[0].labels[canary]',
      message: 'label values must be strings, got true; quote it: "true"',
    },
    { path: 'spec.subsets[0].labels[tier]', message: 'label values must be strings, got null' },
    { path: 'spec.subsets[0].labels[nested]', message: 'label values must be strings, got {"a":"b"}' },
    {
      path: 'spec.subsets[1].labels',
      message: 'must be a map of label names to string values (e.g. {"version": "v1"}), got "version=v2"',
    },
  ]);
  t.same(r.warnings, []);
});

t.test('never throws on any JSON', async (t) => {
  const subset = fc.oneof(
    fc.anything(),
    fc.record(
      {
        name: fc.oneof(fc.constantFrom('v1', 'v2', 'V1', ''), fc.anything()),
        labels: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.anything())), fc.anything()),
      },
      { requiredKeys: [] },
    ),
  );
  const spec = fc.oneof(
    fc.anything(),
    fc.record(
      {
        host: fc.oneof(fc.constant(DUBBO_HOST), fc.anything()),
        subsets: fc.oneof(fc.array(subset), fc.anything()),
      },
      { requiredKeys: [] },
    ),
  );
  fc.assert(
    fc.property(spec, (s) => {
      validateDestinationRule(dr(s), ctx);
    }),
    { numRuns: 500 },
  );
  t.pass('500 random DestinationRules validated');
});
