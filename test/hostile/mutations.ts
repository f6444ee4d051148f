// Hostile AdmissionReviews for the fuzz test and the `hostile` benchmark: the real fixtures of
// test/fixtures/admission, each mutated by one attack family at one place of its object (deep
// nesting, huge strings, long lists, wrong types, odd unicode, `__proto__`/`constructor` keys,
// huge numbers, NaN-like strings, and the shapes of issue 11's findings), always within the body
// limit. A case is a pure function of a few numbers, so fast-check shrinks it.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';

export const FAMILIES = [
  'nesting',
  'huge-string',
  'long-list',
  'wrong-type',
  'unicode',
  'proto-keys',
  'huge-number',
  'nan-string',
  'request-field',
  'port-name',
  'interface',
  'regex',
  'redis-routes',
  'bad-ports',
] as const;
export type Family = (typeof FAMILIES)[number];

export interface HostileCase {
  readonly family: Family;
  readonly fixture: string;
  readonly path: '/validate' | '/mutate';
  readonly uid: string;
  readonly body: string;
}

/** The webhook's body limit (src/server/app.ts BODY_LIMIT_BYTES). */
export const BODY_LIMIT = 7 * 1024 * 1024;

interface Fixture {
  readonly name: string;
  readonly path: '/validate' | '/mutate';
  readonly review: Record<string, any>;
}

const root = new URL('../fixtures/admission/', import.meta.url).pathname;

let loaded: Fixture[] | undefined;

/** Every fixture whose review carries a request with an object (what the mutations work on). */
export function fixtures(): Fixture[] {
  loaded ??= readdirSync(root)
    .sort()
    .flatMap((dir) =>
      readdirSync(join(root, dir))
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => ({ dir, f, fx: JSON.parse(readFileSync(join(root, dir, f), 'utf8')) })),
    )
    .filter(({ fx }) => fx.review?.request?.object !== null && typeof fx.review?.request?.object === 'object')
    .map(({ dir, f, fx }) => ({
      name: `${dir}/${f}`,
      path: fx.webhook === 'mutate' ? '/mutate' : '/validate',
      review: fx.review,
    }));
  return loaded;
}

const HOLE = '@@HOLE@@';

type Key = string | number;

/** Paths to every value of `object`, at most `max` of them and at most 30 levels down. */
function pathsOf(object: unknown, max = 400): Key[][] {
  const out: Key[][] = [];
  const stack: { v: unknown; p: Key[] }[] = [{ v: object, p: [] }];
  while (stack.length > 0 && out.length < max) {
    const { v, p } = stack.pop()!;
    out.push(p);
    if (p.length >= 30 || v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) v.forEach((x, i) => stack.push({ v: x, p: [...p, i] }));
    else for (const [k, x] of Object.entries(v)) stack.push({ v: x, p: [...p, k] });
  }
  return out;
}

/** Sets `value` at `path` under `root` (as an own property, whatever the key). */
function setAt(rootValue: Record<string, any>, path: readonly Key[], value: unknown): void {
  if (path.length === 0) return;
  let v: any = rootValue;
  for (const k of path.slice(0, -1)) {
    if (v[k] === null || typeof v[k] !== 'object') v[k] = {};
    v = v[k];
  }
  Object.defineProperty(v, path.at(-1)!, { value, enumerable: true, writable: true, configurable: true });
}

const ODD = [
  '\u0000',
  '\ud800',
  '\udfff',
  '\ufeff',
  '\u202e',
  '\u200b',
  '\u0301',
  '😀',
  'İ',
  'ß',
  '\u2028',
  '\\',
  '"',
  'ｔｃｐ-ｄｕｂｂｏ',
];
const WRONG: unknown[] = [null, true, false, 0, -1, 1.5, '', 'x', [], {}, [null], { a: null }, [[]], '[]'];
const HUGE_NUMBERS = [
  '1e400',
  '-1e400',
  '1e308',
  '-0',
  '9007199254740993',
  '123456789012345678901234567890123456789',
  '0.00000000000000000000000001',
  '20880.5',
];
const NAN_LIKE = ['NaN', 'Infinity', '-Infinity', '0x50', '1e3', ' 80 ', '８０', '80abc', 'null', 'true'];
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf'];
const REQUEST_FIELDS = [
  'kind',
  'resource',
  'operation',
  'userInfo',
  'dryRun',
  'namespace',
  'name',
  'oldObject',
];

export interface CaseSpec {
  readonly fixture: number;
  readonly family: Family;
  /** Picks the place of the mutation among the object's paths. */
  readonly at: number;
  /** Picks among a family's variants. */
  readonly variant: number;
  /** 0..1: how large the attack is, as a share of what the body limit leaves. */
  readonly size: number;
}

/** Builds the case a spec describes, shrinking its size until the body is within `maxBytes`. */
export function buildCase(spec: CaseSpec, n: number, maxBytes = BODY_LIMIT - 4096): HostileCase {
  const all = fixtures();
  const fx = all[spec.fixture % all.length]!;
  let size = spec.size;
  for (;;) {
    const body = render(fx, spec, size, maxBytes, `fuzz-${n}`);
    if (Buffer.byteLength(body) <= maxBytes || size < 1e-6) {
      return { family: spec.family, fixture: fx.name, path: fx.path, uid: `fuzz-${n}`, body };
    }
    size /= 2;
  }
}

function render(fx: Fixture, spec: CaseSpec, share: number, maxBytes: number, uid: string): string {
  const review = structuredClone(fx.review);
  const request = review.request as Record<string, any>;
  request.uid = uid;
  const object = request.object as Record<string, any>;
  const paths = pathsOf(object).filter((p) => p.length > 0);
  const at = paths[spec.at % Math.max(1, paths.length)] ?? ['spec'];
  const v = spec.variant;
  // Room for the attack: what is left of the limit after the review itself.
  const room = Math.max(0, maxBytes - JSON.stringify(review).length - 1024);
  const n = (perItem: number, cap = Number.MAX_SAFE_INTEGER): number =>
    Math.max(1, Math.min(cap, Math.floor((room * share) / perItem)));
  let raw: string | undefined;
  const spec0 = (): Record<string, any> => {
    if (object.spec === null || typeof object.spec !== 'object' || Array.isArray(object.spec))
      object.spec = {};
    return object.spec as Record<string, any>;
  };
  switch (spec.family) {
    case 'nesting': {
      const depth = n(8, 30_000);
      setAt(object, at, HOLE);
      raw =
        v % 2 === 0
          ? `${'{"a":'.repeat(depth)}{}${'}'.repeat(depth)}`
          : `${'['.repeat(depth)}${']'.repeat(depth)}`;
      break;
    }
    case 'huge-string': {
      const unit = ['x', 'a.', 'tcp-', '-', '*.', '(a|b)', '0'][v % 7]!;
      setAt(object, at, unit.repeat(n(unit.length)));
      break;
    }
    case 'long-list': {
      const item = [0, 'a', { number: 1, name: 'tcp-dubbo' }, null, [], '240.240.0.1'][v % 6];
      const per = JSON.stringify(item).length + 1;
      setAt(
        object,
        at,
        Array.from({ length: n(per, 200_000) }, () => item),
      );
      break;
    }
    case 'wrong-type':
      setAt(object, at, WRONG[v % WRONG.length]);
      break;
    case 'unicode': {
      const odd = ODD[v % ODD.length]!;
      const s = odd.repeat(n(odd.length * 6, 200_000));
      if (v % 3 === 0) setAt(object, [...at.slice(0, -1), s.slice(0, 200)], 'x');
      else setAt(object, at, s);
      break;
    }
    case 'proto-keys': {
      const key = PROTO_KEYS[v % PROTO_KEYS.length]!;
      const target = at.slice(0, -1);
      const value = [
        { allowed: true, hosts: ['evil.example.com'] },
        null,
        'x',
        { prototype: { polluted: 1 } },
      ][v % 4];
      setAt(object, [...target, key], value);
      if (v % 5 === 0) setAt(object, ['metadata', key], { labels: { 'app.kubernetes.io/managed-by': 'x' } });
      break;
    }
    case 'huge-number':
      setAt(object, at, HOLE);
      raw = HUGE_NUMBERS[v % HUGE_NUMBERS.length];
      break;
    case 'nan-string':
      setAt(object, at, NAN_LIKE[v % NAN_LIKE.length]);
      break;
    case 'request-field': {
      const field = REQUEST_FIELDS[v % REQUEST_FIELDS.length]!;
      request[field] = WRONG[Math.floor(v / REQUEST_FIELDS.length) % WRONG.length];
      break;
    }
    case 'port-name': {
      const spec = spec0();
      const name = `tcp-${['dubo', 'thirft', 'x', 'redis-'][v % 4]!.repeat(n(6))}`;
      spec.ports = [{ number: 20880, name, protocol: 'TCP' }];
      break;
    }
    case 'interface': {
      object.metadata = { ...(object.metadata ?? {}) };
      object.metadata.annotations = {
        ...(object.metadata.annotations ?? {}),
        interface: v % 2 === 0 ? `org.${'a'.repeat(n(1))}.Demo` : `${'a.'.repeat(n(2))}!`,
      };
      break;
    }
    case 'regex': {
      const unit = ['(x|y)?', 'a*', '(a+)+', '[a-z]'][v % 4]!;
      setAt(object, at, { regex: `^${unit.repeat(n(unit.length))}$` });
      break;
    }
    case 'redis-routes': {
      const count = n(60, 150_000);
      spec0().redis = Array.from({ length: count }, (_, i) => ({
        match: { key: { prefix: v % 2 === 0 ? `k${i}:` : 'dup:' } },
        route: { host: 'a.b' },
      }));
      break;
    }
    case 'bad-ports': {
      const count = n(55, 150_000);
      spec0().ports = Array.from({ length: count }, (_, i) => ({
        number: 70_000 + i,
        name: `tcp-dubbo-${i}`,
        protocol: 'UDP',
      }));
      break;
    }
  }
  const text = JSON.stringify(review);
  if (raw === undefined) return text;
  const hole = text.indexOf(`"${HOLE}"`);
  return `${text.slice(0, hole)}${raw}${text.slice(hole + HOLE.length + 2)}`;
}

/**
 * Case specs: any fixture, family, place and variant; sizes skewed small (the cube of a uniform
 * share), so most cases are cheap and some reach the limit.
 */
export function caseSpec(families: readonly Family[] = FAMILIES): fc.Arbitrary<CaseSpec> {
  return fc.record({
    fixture: fc.nat(),
    family: fc.constantFrom(...families),
    at: fc.nat(),
    variant: fc.nat(1000),
    size: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x ** 3),
  });
}
