// Property tests: no input crashes the decoder or a validator, and every answer is well formed.
import { readFileSync } from 'node:fs';
import t from 'tap';
import fc from 'fast-check';
import { admit, type Webhook } from '../../src/admission/handler.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';
import { handledKindOf } from '../../src/model/kinds.js';
import { isRecord, type JsonRecord } from '../../src/model/json.js';
import { parseManifestText } from '../../src/sources/file.js';

const examples: JsonRecord[] = ['dubbo', 'thrift', 'redis']
  .flatMap(
    (f) =>
      parseManifestText(readFileSync(new URL(`../../examples/${f}.yaml`, import.meta.url), 'utf8')).objects,
  )
  .filter((o) => handledKindOf(o) !== undefined);

const store = new ConfigStore();
for (const o of examples) store.upsert(o, 'file');
const deps = () => ({ view: store, vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store) });
const RUNS = Number(process.env.BREEZE_FUZZ_RUNS ?? 400);

/** Every JSON path (as key lists) inside a value. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (isRecord(v)) for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

function replaceAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const copy: any = Array.isArray(root) ? [...root] : { ...(root as object) };
  copy[head!] = replaceAt(copy[head!], rest, value);
  return copy;
}

function review(object: unknown, uid: string, version: string, operation: string, dryRun: boolean) {
  const kind = isRecord(object) && typeof object.kind === 'string' ? object.kind : 'ServiceEntry';
  const apiVersion =
    isRecord(object) && typeof object.apiVersion === 'string' ? object.apiVersion : 'networking.istio.io/v1';
  const [group, ver] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return {
    apiVersion: version,
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group, version: ver, kind },
      namespace: 'fuzz',
      name: 'obj',
      operation,
      object,
      dryRun,
    },
  };
}

/** A realistic object of a handled kind with random subtrees replaced by arbitrary JSON. */
const mangled = fc
  .constantFrom(...examples)
  .chain((base) =>
    fc
      .array(
        fc.tuple(fc.constantFrom(...paths(base).filter((p) => p.length > 0)), fc.jsonValue({ maxDepth: 3 })),
        {
          minLength: 1,
          maxLength: 4,
        },
      )
      .map((edits) => edits.reduce<unknown>((acc, [p, v]) => replaceAt(acc, p, v), base)),
  )
  // Keep kind and apiVersion so the validator (not the dispatcher) sees the mangled object.
  .filter((o) => isRecord(o) && handledKindOf(o) !== undefined);

function checkAnswer(res: ReturnType<typeof admit>, uid: string, version: string): void {
  const body = res.body as any;
  if (res.httpStatus !== 200)
    throw new Error(`HTTP ${res.httpStatus}: ${JSON.stringify(body)} ${String(res.error)}`);
  if (body.apiVersion !== version || body.response?.uid !== uid) throw new Error('uid or version not echoed');
  const r = body.response;
  if (typeof r.allowed !== 'boolean') throw new Error('allowed not boolean');
  if (!r.allowed && !(r.status.code === 422 && r.status.message.length > 0))
    throw new Error(`bad status ${JSON.stringify(r.status)}`);
  for (const w of r.warnings ?? [])
    if (typeof w !== 'string' || w.length > 120) throw new Error(`bad warning ${w}`);
  if (r.patch !== undefined && !Array.isArray(JSON.parse(Buffer.from(r.patch, 'base64').toString())))
    throw new Error('patch');
}

t.test('arbitrary JSON bodies never throw and answer 200 or 400', async (t) => {
  fc.assert(
    fc.property(fc.constantFrom<Webhook>('validate', 'mutate'), fc.jsonValue(), (webhook, body) => {
      const res = admit(webhook, body, deps());
      return res.httpStatus === 400 || res.httpStatus === 200;
    }),
    { numRuns: RUNS },
  );
  t.pass('no throw');
});

t.test('arbitrary requests with a uid always echo it', async (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom<Webhook>('validate', 'mutate'),
      fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1'),
      fc.uuid(),
      fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })),
      (webhook, version, uid, request) => {
        const res = admit(
          webhook,
          { apiVersion: version, kind: 'AdmissionReview', request: { ...request, uid } },
          deps(),
        );
        const body = res.body as any;
        return res.httpStatus === 200 && body.response.uid === uid && body.apiVersion === version;
      },
    ),
    { numRuns: RUNS },
  );
  t.pass('uid echoed');
});

t.test('mangled objects of every handled kind get a well-formed decision', async (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom<Webhook>('validate', 'mutate'),
      fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1'),
      fc.constantFrom('CREATE', 'UPDATE'),
      fc.boolean(),
      fc.uuid(),
      mangled,
      (webhook, version, op, dryRun, uid, object) => {
        checkAnswer(admit(webhook, review(object, uid, version, op, dryRun), deps()), uid, version);
      },
    ),
    { numRuns: RUNS },
  );
  t.pass('well formed');
});

t.test('the unmangled examples are all allowed', async (t) => {
  t.ok(examples.length >= 8);
  for (const o of examples) {
    const body = admit('validate', review(o, 'u', 'admission.k8s.io/v1', 'CREATE', false), deps())
      .body as any;
    t.equal(
      body.response.allowed,
      true,
      `${String(o.kind)} ${JSON.stringify(body.response.status?.message ?? '')}`,
    );
  }
});
