// Issue 11, findings 6 and 11: a `__proto__` key made /validate answer a bare HTTP 400, and the
// EnvoyFilter guard's webhook is failurePolicy Ignore, so the API server let the edit of a
// Breeze-owned filter through. Every review whose uid can be read is now answered in-band (the
// guard denies what it cannot judge). Bodies with no readable uid get the right 4xx: 415 for a
// gzip body (it was 400), 413 over the limit, 400 for what is no JSON; never a 500.
import { gzipSync } from 'node:zlib';
import t from 'tap';
import {
  attack,
  BODY_LIMIT,
  fixtureReview,
  inBand,
  post,
  startLocal,
  stayedUp,
  unchanged,
} from './helpers.js';

/** Inserts `"<key>": <raw>` as the first member of the object that `"anchor":{` opens. */
function inject(body: string, anchor: string, key: string, raw: string): string {
  const at = body.indexOf(`"${anchor}":{`);
  if (at < 0) throw new Error(`no ${anchor} in the body`);
  const open = at + anchor.length + 4;
  return `${body.slice(0, open)}"${key}":${raw},${body.slice(open)}`;
}

t.test('the EnvoyFilter guard answers in-band whatever keys the object has', async (t) => {
  const b = await startLocal(t);
  for (const [name, key, raw] of [
    ['__proto__ in metadata', '__proto__', '{"labels":{"app.kubernetes.io/managed-by":"nobody"}}'],
    ['constructor.prototype in metadata', 'constructor', '{"prototype":{"allowed":true}}'],
  ] as const) {
    await t.test(name, async (t) => {
      const uid = `hostile-guard-${key}`;
      const review = fixtureReview('envoyfilter/deny-user-edits-breeze-filter.v1beta1.json', uid);
      t.not(review.request.userInfo.username.startsWith('system:serviceaccount:istio-system'), true);
      // In the new object and the old one: the filter is Breeze's, the user is not Breeze.
      let body = JSON.stringify(review);
      body = inject(body, 'object', key, raw);
      body = inject(body, 'oldObject', key, raw);
      t.ok(body.includes(`"${key}":`), 'the key is in the body sent');
      const o = await attack(b, body);
      const response = inBand(t, o.res, uid);
      t.equal(response.allowed, false, 'a non-Breeze user may not edit a Breeze-owned filter');
      t.ok(
        typeof response.status?.code === 'number' &&
          response.status.code >= 400 &&
          response.status.code < 500,
        `a 4xx code in the answer (${response.status?.code})`,
      );
      stayedUp(t, o);
      await unchanged(t, b, o);
    });
  }

  await t.test('__proto__ in a ServiceEntry review: answered in-band', async (t) => {
    const uid = 'hostile-se-proto';
    const body = inject(
      JSON.stringify(fixtureReview('serviceentry/allow-dubbo.v1.json', uid)),
      'spec',
      '__proto__',
      '{"hosts":["evil.example.com"]}',
    );
    const o = await attack(b, body);
    const response = inBand(t, o.res, uid);
    stayedUp(t, o);
    if (response.allowed !== true) await unchanged(t, b, o);
    else {
      const entry = b.breeze.store.get('ServiceEntry', 'dubbo', 'dubbo-demo');
      const spec = entry?.object.spec as Record<string, unknown> | undefined;
      t.strictSame(spec?.hosts, ['org.apache.dubbo.samples.basic.api.demoservice'], 'no host from __proto__');
      t.equal(Object.getPrototypeOf(spec), Object.prototype, 'the prototype is untouched');
    }
  });
});

t.test('bodies with no readable uid get the right 4xx, never a 500', async (t) => {
  const b = await startLocal(t);
  const review = JSON.stringify(fixtureReview('serviceentry/allow-dubbo.v1.json', 'hostile-4xx'));

  await t.test('a gzip body: 415', async (t) => {
    const o = await attack(b, gzipSync(review), { headers: { 'content-encoding': 'gzip' } });
    t.equal(
      o.res.status,
      415,
      `415 Unsupported Media Type (got ${o.res.status}: ${o.res.text.slice(0, 200)})`,
    );
    t.match(String(o.res.json?.message), /gzip|encoding/i, 'the message says what is not supported');
    stayedUp(t, o);
    await unchanged(t, b, o);
  });

  await t.test('a JSON body declared gzip: 415 too', async (t) => {
    const o = await attack(b, review, { headers: { 'content-encoding': 'gzip' } });
    t.equal(o.res.status, 415, `got ${o.res.status}: ${o.res.text.slice(0, 200)}`);
    stayedUp(t, o);
  });

  await t.test('over the body limit: 413', async (t) => {
    const big = review.replace('"dubbo-demo"', `"${'x'.repeat(BODY_LIMIT)}"`);
    const o = await attack(b, big);
    t.equal(o.res.status, 413, `got ${o.res.status}: ${o.res.text.slice(0, 200)}`);
    stayedUp(t, o);
    await unchanged(t, b, o);
  });

  await t.test('not JSON: 400', async (t) => {
    for (const body of ['{"apiVersion":', 'null', '[]', '"x"', '{"request":{"uid":{"$ne":1}}}']) {
      const res = await post(b, body, { fresh: true });
      t.ok(res.status === 400 || res.status === 200, `${body}: 400, or in-band (got ${res.status})`);
      t.not(res.status, 500, `${body}: never a 500`);
      if (res.status === 400) t.type(res.json?.message, 'string', 'with a message');
    }
  });

  await t.test('a text/plain body: 415', async (t) => {
    const res = await post(b, review, { headers: { 'content-type': 'text/plain' }, fresh: true });
    t.equal(res.status, 415);
  });
});
