// Issue 11, finding 2: single requests within the 7 MiB body limit stalled the event loop for
// seconds (a quadratic port-name check, a 6 MiB annotation, a 1 MiB regex, 100k Redis routes) or
// built an 11 MiB denial (60,000 bad ports). Each is answered in-band echoing its uid, with a
// bounded answer, while /healthz keeps answering; denied input changes nothing. How long each
// takes is the benchmark's business (bench/hostile.ts), not this test's: machines are loaded.
import t, { type Test } from 'tap';
import {
  attack,
  BODY_LIMIT,
  deniedForBound,
  fixtureReview,
  inBand,
  judged,
  startLocal,
  stayedUp,
  unchanged,
} from './helpers.js';

const MiB = 1024 * 1024;

t.test('stalls and huge denials from one request', async (t) => {
  const b = await startLocal(t);
  const within = (t: Test, body: string): string => {
    const bytes = Buffer.byteLength(body);
    t.ok(bytes < BODY_LIMIT, `the body is within the limit (${bytes} bytes)`);
    return body;
  };

  await t.test('a 1 MiB port name', async (t) => {
    const uid = 'hostile-port-name';
    const review = fixtureReview('serviceentry/allow-dubbo.v1.json', uid);
    // A second token close to nothing: every edit-distance comparison runs on the whole of it.
    review.request.object.spec.ports[0].name = `tcp-${'dubo'.repeat(MiB / 4)}`;
    await judged(t, b, await attack(b, within(t, JSON.stringify(review))), uid);
  });

  await t.test('a 6 MiB interface annotation', async (t) => {
    const uid = 'hostile-interface';
    const review = fixtureReview('serviceentry/allow-dubbo.v1.json', uid);
    // A well-formed Java name, so every check and the generators run on all of it.
    review.request.object.metadata.annotations.interface = `org.${'a'.repeat(6 * MiB)}.Demo`;
    const o = await attack(b, within(t, JSON.stringify(review)));
    // Longer than any string etcd stores: denied at the bound, naming the annotation.
    deniedForBound(t, inBand(t, o.res, uid), /annotations/, /1,?572,?864|1\.5 MiB/);
    stayedUp(t, o);
    await unchanged(t, b, o);
  });

  await t.test('a 1 MiB regex', async (t) => {
    const uid = 'hostile-regex';
    const review = fixtureReview('virtualservice/allow-valid-re2-regexes.v1.json', uid);
    review.request.object.spec.http[0].match[0].method = { regex: `(a|b)*${'(x|y)?'.repeat(MiB / 6)}c` };
    await judged(t, b, await attack(b, within(t, JSON.stringify(review))), uid);
  });

  await t.test('100,000 Redis routes', async (t) => {
    const uid = 'hostile-redis-routes';
    const review = fixtureReview('redisservice/allow-routes-mirror-faults.v1.json', uid);
    const spec = review.request.object.spec;
    spec.redis = Array.from({ length: 100_000 }, (_, i) => ({
      match: { key: { prefix: `k${i}:` } },
      route: { host: 'a.b' },
    }));
    await judged(t, b, await attack(b, within(t, JSON.stringify(review))), uid);
  });

  await t.test('60,000 bad ports: a bounded denial', async (t) => {
    const uid = 'hostile-bad-ports';
    const review = fixtureReview('serviceentry/allow-dubbo.v1.json', uid);
    review.request.object.spec.ports = Array.from({ length: 60_000 }, (_, i) => ({
      number: 70_000 + i,
      name: `tcp-dubbo-${i}`,
      protocol: 'UDP',
    }));
    const o = await attack(b, within(t, JSON.stringify(review)));
    const response = inBand(t, o.res, uid); // < 64 KiB is checked there
    t.equal(response.allowed, false, 'denied');
    const code: unknown = response.status?.code;
    t.ok(typeof code === 'number' && code >= 400 && code < 500, `a 4xx code (${String(code)})`);
    // More ports than Breeze checks in one entry: one problem naming the limit.
    t.match(
      String(response.status?.message),
      /spec\.ports: 60000 ports are more than Breeze checks in one ServiceEntry \(4096;/,
      'saying why',
    );
    stayedUp(t, o);
    await unchanged(t, b, o);
  });
});
