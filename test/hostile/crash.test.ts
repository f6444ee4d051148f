// Issue 11, finding 1: one request crashed Breeze. A ServiceEntry nested 20,000 levels deep in a
// field no validator reads was allowed, recorded, and overflowed the stack in the cache after the
// slot was replaced (a 500, a poisoned slot, then the process exited when the pending change
// expired); arrays 10,000 deep in a field a denial quotes gave a 500. Each is now refused naming
// the limit, nothing is recorded, and the process outlives the admission grace. A body nested
// deeper than the API server's own JSON decoder allows (10,000 levels) is refused before it is
// parsed, in-band (code 413) when its uid is readable, else HTTP 400 (no real review is that deep,
// so no real request can be refused that way); anything shallower is denied in-band naming Breeze's 100-level bound.
import t from 'tap';
import type { Test } from 'tap';
import {
  attack,
  deniedForBound,
  fixtureReview,
  health,
  HOLE,
  inBand,
  nestedArrays,
  nestedObjects,
  post,
  startLocal,
  stayedUp,
  unchanged,
  withHole,
} from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A body deeper than any API server sends: refused before parsing, naming the nesting limit; in-band
 * (code 413) since its uid is readable where the API server writes it.
 */
function refusedBeforeParsing(t: Test, res: { status: number; text: string }, uid: string): void {
  t.equal(res.status, 200, 'an AdmissionReview answer');
  t.match(JSON.parse(res.text), {
    response: {
      uid,
      allowed: false,
      status: { code: 413, reason: 'RequestEntityTooLarge', message: /nested deeper than 10010 levels/ },
    },
  });
}

// A short grace: a change admitted and never confirmed expires (and is dropped by the interval
// that crashed the process) within 10 × grace when no source reports its kind.
const GRACE_MS = 300;
const NEST_NAME = 'dubbo-demo-nested';

t.test('deep nesting: denied in-band, nothing recorded, the process outlives the grace', async (t) => {
  const b = await startLocal(t, { grace: `${GRACE_MS}ms` });

  await t.test('20,000-deep nesting in a field no validator reads (spec.exportTo)', async (t) => {
    const uid = 'hostile-nest-20000';
    const review = fixtureReview('serviceentry/allow-dubbo.v1.json', uid);
    // An object of its own: no later request of this file replaces it before the grace expires.
    review.request.name = NEST_NAME;
    review.request.object.metadata.name = NEST_NAME;
    review.request.object.spec.exportTo = HOLE;
    const o = await attack(b, withHole(review, nestedObjects(20_000)));
    refusedBeforeParsing(t, o.res, uid);
    stayedUp(t, o);
    await unchanged(t, b, o);
    t.strictSame(b.breeze.store.pendingKeys(), [], 'no admission change pending');
  });

  await t.test('5,000-deep nesting (parsed): denied in-band naming the 100-level bound', async (t) => {
    const uid = 'hostile-nest-5000';
    const review = fixtureReview('serviceentry/allow-dubbo.v1.json', uid);
    review.request.name = `${NEST_NAME}-5000`;
    review.request.object.metadata.name = `${NEST_NAME}-5000`;
    review.request.object.spec.exportTo = HOLE;
    const o = await attack(b, withHole(review, nestedObjects(5_000)));
    deniedForBound(t, inBand(t, o.res, uid), /spec\.exportTo/, /\b100\b/);
    stayedUp(t, o);
    await unchanged(t, b, o);
    t.strictSame(b.breeze.store.pendingKeys(), [], 'no admission change pending');
  });

  await t.test('5,000-deep nesting in metadata.managedFields', async (t) => {
    const uid = 'hostile-nest-managed';
    const review = fixtureReview('serviceentry/allow-dubbo.v1.json', uid);
    // managedFields' fieldsV1 is free-form JSON in every real object.
    review.request.object.metadata.managedFields = [
      { manager: 'kubectl', operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1: HOLE },
    ];
    const o = await attack(b, withHole(review, nestedObjects(5_000)));
    deniedForBound(t, inBand(t, o.res, uid), /managedFields/, /\b100\b/);
    stayedUp(t, o);
    await unchanged(t, b, o);
  });

  await t.test('arrays 10,000 deep in a field a denial quotes (spec.ports)', async (t) => {
    const uid = 'hostile-arrays-10000';
    const review = fixtureReview('serviceentry/allow-dubbo.v1.json', uid);
    review.request.object.spec.ports = HOLE;
    const o = await attack(b, withHole(review, nestedArrays(10_000)));
    deniedForBound(t, inBand(t, o.res, uid), /spec\.ports/, /\b100\b/);
    stayedUp(t, o);
    await unchanged(t, b, o);
  });

  await t.test('the same arrays through /mutate', async (t) => {
    const uid = 'hostile-arrays-mutate';
    const review = fixtureReview('serviceentry/mutate-vip-and-protocol.v1beta1.json', uid);
    review.request.object.spec.ports = HOLE;
    const o = await attack(b, withHole(review, nestedArrays(10_000)), { path: '/mutate' });
    // Allowed (the validating webhook denies it) or denied: answered in-band either way.
    inBand(t, o.res, uid);
    stayedUp(t, o);
    await unchanged(t, b, o);
  });

  await t.test('every pending change expires and the process is still up', async (t) => {
    const deadline = Date.now() + 10 * GRACE_MS + 3000;
    while (b.breeze.store.pendingKeys().length > 0 && Date.now() < deadline) await sleep(100);
    await sleep(2 * GRACE_MS); // one more expiry pass after the last drop
    t.strictSame(b.breeze.store.pendingKeys(), [], 'nothing pending');
    t.equal((await health(b)).status, 200, '/healthz answers');
    t.equal((await health(b, '/readyz')).status, 200, '/readyz answers');
  });

  await t.test('the attacked object is not poisoned: a valid change of it still goes through', async (t) => {
    const uid = 'hostile-after-nest';
    const review = fixtureReview('serviceentry/allow-dubbo.v1.json', uid);
    review.request.name = NEST_NAME;
    review.request.object.metadata.name = NEST_NAME;
    const res = await post(b, JSON.stringify(review));
    t.equal(inBand(t, res, uid).allowed, true, 'allowed');
    const entry = b.breeze.store.get('ServiceEntry', 'dubbo', NEST_NAME);
    t.equal(entry?.origin, 'admission', 'recorded (local mode records admitted changes)');
    t.equal(
      (entry?.object.metadata as Record<string, unknown> | undefined)?.managedFields,
      undefined,
      'the valid version, not the attack',
    );
  });
});
