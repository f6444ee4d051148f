// Issue 11: what a body may cost before Breeze reads a field. JSON.parse's cost is the number of
// values it builds, so bodies past the limits are refused by one scan, unparsed, and answered
// in-band whenever the review's uid can be read from their first bytes.
import t from 'tap';
import {
  envelopeOf,
  MAX_BODY_CONTAINERS,
  MAX_BODY_DEPTH,
  MAX_BODY_TOKENS,
  parseBody,
  RefusedBody,
  scanBody,
} from '../../src/server/body.js';
import { send, startHarness, validV1 } from './helpers.js';

const CONTAINERS_MESSAGE = `the body opens more than ${MAX_BODY_CONTAINERS} JSON objects and arrays, Breeze's limit for one review (two objects of etcd's 1.5 MiB stay far below it)`;
const TOKENS_MESSAGE = `the body holds more than ${MAX_BODY_TOKENS} JSON tokens (strings, commas, brackets), Breeze's limit for one review (two objects of etcd's 1.5 MiB stay far below it)`;

/** A review as the API server writes it (envelope first, request.uid first), `spec` spliced in. */
function reviewText(uid: string, spec: string, apiVersion = 'admission.k8s.io/v1'): string {
  return (
    `{"kind":"AdmissionReview","apiVersion":"${apiVersion}","request":{"uid":${JSON.stringify(uid)},` +
    `"kind":{"group":"networking.istio.io","version":"v1","kind":"ServiceEntry"},"namespace":"a","name":"b",` +
    `"operation":"CREATE","userInfo":{"username":"u"},"object":{"apiVersion":"networking.istio.io/v1",` +
    `"kind":"ServiceEntry","metadata":{"name":"b","namespace":"a"},"spec":${spec}}}}`
  );
}

/** The largest plausible real ServiceEntry: inline endpoints filling etcd's 1.5 MiB. */
function endpoints(count: number): string {
  const one = '{"address":"10.0.0.1","ports":{"tcp-dubbo":20880},"labels":{"app":"x"}}';
  return `{"hosts":["a.b"],"ports":[{"number":20880,"name":"tcp-dubbo"}],"resolution":"STATIC","endpoints":[${Array.from({ length: count }, () => one).join(',')}]}`;
}

t.test('the scan counts containers and tokens outside strings, and stops at the first limit', async (t) => {
  t.equal(scanBody('{"a":[1,2,3],"b":{}}'), undefined);
  t.equal(scanBody(`[${'{},'.repeat(MAX_BODY_CONTAINERS - 2)}{}]`), undefined, 'exactly at the limit');
  t.equal(scanBody(`[${'{},'.repeat(MAX_BODY_CONTAINERS - 1)}{}]`), 'containers');
  t.equal(scanBody(`[${'0,'.repeat(MAX_BODY_TOKENS - 1)}0]`), undefined, 'exactly at the limit');
  t.equal(scanBody(`[${'0,'.repeat(MAX_BODY_TOKENS)}0]`), 'tokens');
  t.equal(scanBody(`[${'"",'.repeat(MAX_BODY_TOKENS / 2)}0]`), 'tokens', 'strings count');
  t.equal(scanBody('['.repeat(MAX_BODY_DEPTH + 1)), 'depth');
  // Brackets, commas and escaped quotes inside strings do not count.
  const inString = `"${'{[,'.repeat(MAX_BODY_TOKENS)}\\"x\\\\"`;
  t.equal(scanBody(`{"a":${inString}}`), undefined);
  t.same(parseBody(`{"a":"x\\\\","c":"\\"[[["}`), { a: 'x\\', c: '"[[[' });
});

t.test('the largest plausible real review, an UPDATE of it included, is within the limits', async (t) => {
  // 21,000 inline endpoints: 1.5 MiB of spec, etcd's default limit for one object.
  const spec = endpoints(21_000);
  t.ok(spec.length > 1.4 * 1024 * 1024 && spec.length < 1.5 * 1024 * 1024, `${spec.length} bytes`);
  const update = reviewText('u-1', spec).replace(
    '"object":',
    `"oldObject":{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"b","namespace":"a"},"spec":${spec}},"object":`,
  );
  t.equal(scanBody(update), undefined);
  const parsed = parseBody(update) as { request: { object: { spec: { endpoints: unknown[] } } } };
  t.equal(parsed.request.object.spec.endpoints.length, 21_000);
});

t.test('a body over a limit is refused unparsed: in-band when its uid is readable', async (t) => {
  const dense = `[${'{},'.repeat(MAX_BODY_CONTAINERS)}{}]`;
  const refused = parseBody(reviewText('uid-dense', dense, 'admission.k8s.io/v1beta1'));
  t.ok(refused instanceof RefusedBody);
  const { apiVersion, uid, message } = refused as RefusedBody;
  t.same(
    { apiVersion, uid, message },
    {
      apiVersion: 'admission.k8s.io/v1beta1',
      uid: 'uid-dense',
      message: CONTAINERS_MESSAGE,
    },
  );
  // No uid where the API server puts it: a bare 400.
  t.throws(() => parseBody(`{"spec":${dense}}`), { code: 'BAD_REQUEST', message: CONTAINERS_MESSAGE });
  t.throws(() => parseBody(`[${'0,'.repeat(MAX_BODY_TOKENS)}0]`), {
    code: 'BAD_REQUEST',
    message: TOKENS_MESSAGE,
  });
});

t.test('the envelope is read only where the API server writes it', async (t) => {
  t.same(envelopeOf(reviewText('a-"quoted"-uid', '{}')), {
    apiVersion: 'admission.k8s.io/v1',
    uid: 'a-"quoted"-uid',
  });
  t.same(envelopeOf('{"request":{"uid":"x"}}'), { apiVersion: 'admission.k8s.io/v1', uid: 'x' });
  t.equal(envelopeOf('{"request":{"uid":""}}'), undefined, 'empty uid');
  t.equal(envelopeOf(`{"request":{"uid":"${'u'.repeat(257)}"}}`), undefined, 'uid over 256 characters');
  t.equal(envelopeOf(`{"pad":"${'x'.repeat(5000)}","request":{"uid":"late"}}`), undefined, 'past 4 KiB');
  t.equal(envelopeOf('{"request":{"kind":{},"uid":"x"}}'), undefined, 'uid not first');
  t.equal(
    envelopeOf('{"apiVersion":"admission.k8s.io/v2","request":{"uid":"x"}}')?.apiVersion,
    'admission.k8s.io/v1',
  );
});

t.test('over HTTPS: a dense review is denied in-band with 413, an ordinary one still allowed', async (t) => {
  const h = await startHarness(t);
  const dense = `[${'{},'.repeat(MAX_BODY_CONTAINERS)}{}]`;
  const res = await send({ port: h.port, ca: h.certs.ca, body: reviewText('uid-flood', dense) });
  t.equal(res.status, 200);
  t.same(res.json, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid: 'uid-flood',
      allowed: false,
      status: { status: 'Failure', code: 413, reason: 'RequestEntityTooLarge', message: CONTAINERS_MESSAGE },
    },
  });
  t.same(h.admitted, [], 'nothing recorded');
  const bare = await send({ port: h.port, ca: h.certs.ca, body: `[${'0,'.repeat(MAX_BODY_TOKENS)}0]` });
  t.equal(bare.status, 400);
  t.same(bare.json, { message: TOKENS_MESSAGE });
  const ok = await send({ port: h.port, ca: h.certs.ca, body: JSON.stringify(validV1('uid-ok')) });
  t.equal(ok.json?.response?.allowed, true);
  const metrics = await h.metrics.registry.metrics();
  t.match(metrics, /breeze_admission_requests_total\{[^}]*allowed="false"[^}]*\} 1/);
});
