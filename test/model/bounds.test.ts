// checkBounds (src/model/bounds.ts): the iterative depth / string / list check every object of a
// handled kind passes before anything else reads it, and the stack-safe canonicalJson.
import t from 'tap';
import { checkBounds, DEFAULT_BOUNDS } from '../../src/model/bounds.js';
import { asStringMap, canonicalJson, setOwn } from '../../src/model/json.js';
import { MAX_LIST_ITEMS, MAX_OBJECT_DEPTH, MAX_STRING_LENGTH } from '../../src/model/limits.js';

/** `{ a: { a: ... leaf } }` (or `[[...leaf]]`) `depth` containers deep, built without recursion. */
function nested(depth: number, shape: 'object' | 'array', leaf: unknown = 1): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = shape === 'object' ? { a: v } : [v];
  return v;
}

t.test('objects within the bounds pass', async (t) => {
  t.equal(checkBounds({}), undefined);
  t.equal(checkBounds(null), undefined);
  t.equal(checkBounds('x'.repeat(1000)), undefined);
  t.equal(checkBounds(nested(MAX_OBJECT_DEPTH, 'object')), undefined, 'exactly the limit');
  t.equal(checkBounds(nested(MAX_OBJECT_DEPTH, 'array')), undefined);
  t.equal(checkBounds({ s: 'x'.repeat(MAX_STRING_LENGTH) }), undefined);
  t.equal(checkBounds({ l: new Array(MAX_LIST_ITEMS).fill(0) }), undefined);
});

t.test('100,000-deep objects and arrays are caught without recursion', async (t) => {
  t.same(checkBounds(nested(100_000, 'object')), {
    path: 'a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a...',
    message: "nested deeper than Breeze's limit of 100 levels",
  });
  t.same(checkBounds({ spec: { x: nested(100_000, 'array') } }), {
    path: 'spec.x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]...',
    message: "nested deeper than Breeze's limit of 100 levels",
  });
  t.same(checkBounds(nested(MAX_OBJECT_DEPTH + 1, 'object')), {
    path: 'a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a...',
    message: "nested deeper than Breeze's limit of 100 levels",
  });
});

t.test('long strings, long keys and long lists name the path and the limit', async (t) => {
  t.same(checkBounds({ spec: { ports: [{ name: 'x'.repeat(MAX_STRING_LENGTH + 1) }] } }), {
    path: 'spec.ports[0].name',
    message: `a string of ${MAX_STRING_LENGTH + 1} characters is longer than Breeze's limit of ${MAX_STRING_LENGTH} (no object etcd stores holds one)`,
  });
  const longKey = 'k'.repeat(MAX_STRING_LENGTH + 1);
  t.same(checkBounds({ metadata: { annotations: { [longKey]: 'v' } } }), {
    path: 'metadata.annotations',
    message: `a key of ${MAX_STRING_LENGTH + 1} characters is longer than Breeze's limit of ${MAX_STRING_LENGTH}`,
  });
  t.same(checkBounds({ spec: { addresses: new Array(MAX_LIST_ITEMS + 1).fill('1.1.1.1') } }), {
    path: 'spec.addresses',
    message: `a list of ${MAX_LIST_ITEMS + 1} items is longer than Breeze's limit of ${MAX_LIST_ITEMS}`,
  });
});

t.test('paths quote odd keys, cut long ones and start at the root given', async (t) => {
  const short = { ...DEFAULT_BOUNDS, maxStringLength: 3 };
  t.equal(checkBounds({ m: { 'a.b': 'long' } }, short)?.path, 'm["a.b"]');
  t.equal(checkBounds({ m: { ['x'.repeat(50)]: 'long' } }, short)?.path, 'm');
  t.equal(
    checkBounds({ m: { ['x'.repeat(50)]: 'long' } }, { ...DEFAULT_BOUNDS, maxStringLength: 60 }),
    undefined,
  );
  t.equal(
    checkBounds({ m: { ['x'.repeat(50)]: 'y'.repeat(61) } }, { ...DEFAULT_BOUNDS, maxStringLength: 60 })
      ?.path,
    `m["${'x'.repeat(40)}..."]`,
  );
  t.equal(checkBounds({ m: 'long' }, short, ['oldObject'])?.path, 'oldObject.m');
});

t.test('canonicalJson: sorted keys, same bytes as before, any depth', async (t) => {
  t.equal(canonicalJson(undefined), 'null');
  t.equal(canonicalJson('x'), '"x"');
  t.equal(canonicalJson([undefined, 1, {}]), '[null,1,{}]');
  t.equal(canonicalJson({ b: 1, a: undefined, c: { z: [], y: null } }), '{"b":1,"c":{"y":null,"z":[]}}');
  t.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
  t.equal(canonicalJson({ a: undefined }), '{}');
  t.equal(canonicalJson([[], [[]], { '': 0 }]), '[[],[[]],{"":0}]');
  const deep = canonicalJson(nested(100_000, 'object'));
  t.equal(deep.length, 100_000 * 6 + 1);
  t.ok(deep.startsWith('{"a":{"a":') && deep.endsWith('}}}'));
  const deepArray = canonicalJson(nested(100_000, 'array'));
  t.equal(deepArray, `${'['.repeat(100_000)}1${']'.repeat(100_000)}`);
});

t.test('a __proto__ key stays an own data property', async (t) => {
  const parsed = JSON.parse('{"__proto__": "x", "a": "b", "n": 1}') as unknown;
  const map = asStringMap(parsed);
  t.same(Object.keys(map), ['__proto__', 'a']);
  t.equal(Object.getPrototypeOf(map), Object.prototype, 'prototype untouched');
  const target: Record<string, unknown> = {};
  setOwn(target, '__proto__', { polluted: true });
  t.equal((target as { polluted?: boolean }).polluted, undefined);
  t.equal(Object.getOwnPropertyDescriptor(target, '__proto__')?.enumerable, true);
  t.equal(canonicalJson(JSON.parse('{"b":1,"__proto__":{"x":1}}')), '{"__proto__":{"x":1},"b":1}');
});
