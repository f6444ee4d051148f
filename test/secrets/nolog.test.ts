// Finding 9 (secrets): no password in any log line, Event or failure message. Generation with a
// unique password (downstream and upstream auth), a Secret whose data is not base64, and a write
// the API server rejects with a message quoting the whole EnvoyFilter (as a verbose validating
// webhook or a schema error does): the password appears nowhere, in any escaping.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ConfigStore } from '../../src/cache/store.js';
import { toApiError, KubeApiError } from '../../src/kube/request.js';
import type { JsonRecord } from '../../src/model/json.js';
import { generateAll } from '../../src/protocols/generate.js';
import { RecordingEventer } from '../../src/reconcile/events.js';
import { inlinedCredentials, redactText, REDACTED } from '../../src/telemetry/secrets.js';
import { parseManifestText } from '../../src/sources/file.js';
import { captureLogger } from '../server/helpers.js';
import { GEN, memoryEnv } from '../reconcile/fixtures.js';
import { redisServiceYaml } from './manifests.js';

const signal = new AbortController().signal;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Every way a message could carry `s`: as is, JSON-escaped once, twice, three times. */
function forms(s: string): string[] {
  const out = [s];
  for (let i = 0; i < 3; i++) out.push(JSON.stringify(out[i]).slice(1, -1));
  return out;
}

t.test('a failing write quoting the EnvoyFilter: no password in logs, Events or failures', async (t) => {
  const unique = randomBytes(6).toString('hex');
  const PASSWORD = `Un1que"Pa\\ss-${unique}`; // a quote and a backslash: escaped forms differ
  const USER = `user-${unique}`;
  const GARBLED = `not-base64-${unique}!`;
  const manifests = `
${redisServiceYaml('10.96.60.1')}
---
${redisServiceYaml('10.96.60.2', 'broken')}
---
apiVersion: v1
kind: Secret
metadata: {name: pw, namespace: cache}
data: {password: ${b64(PASSWORD)}, username: ${b64(USER)}}
---
apiVersion: v1
kind: Secret
metadata: {name: garbled, namespace: cache}
data: {password: "${GARBLED}"}
---
apiVersion: redis.aeraki.io/v1alpha1
kind: RedisService
metadata: {name: redis, namespace: cache}
spec:
  host: [redis.cache.svc.cluster.local]
  settings: {auth: {secret: {name: pw}}}
---
apiVersion: redis.aeraki.io/v1alpha1
kind: RedisDestination
metadata: {name: redis, namespace: cache}
spec:
  host: redis.cache.svc.cluster.local
  trafficPolicy: {connectionPool: {redis: {auth: {secret: {name: pw}}}}}
---
apiVersion: redis.aeraki.io/v1alpha1
kind: RedisService
metadata: {name: broken, namespace: cache}
spec:
  host: [broken.cache.svc.cluster.local]
  settings: {auth: {secret: {name: garbled}}}
`;
  const log = captureLogger('trace');
  const eventer = new RecordingEventer();
  const { store, sink, reconciler } = memoryEnv({ logger: log.logger, eventer });
  const parsed = parseManifestText(manifests);
  t.same(parsed.errors, []);
  for (const o of parsed.objects) store.upsert(o, 'kubernetes');

  const outboundName = 'breeze-outbound-redis.cache.svc.cluster.local-10.96.60.1-6379';
  const desired = generateAll(store, GEN).envoyFilters.find(
    (ef) => (ef.metadata as { name: string }).name === outboundName,
  ) as JsonRecord;
  t.ok(
    JSON.stringify(desired).includes(JSON.stringify(PASSWORD)),
    'inline mode: the password is in the filter',
  );
  t.same(inlinedCredentials(desired).sort(), [PASSWORD, USER].sort(), 'both auth sides found');

  // What the API server answers when a webhook denies the object and quotes it.
  const body = JSON.stringify(desired);
  sink.failing.set(
    outboundName,
    toApiError(
      new KubeApiError(
        422,
        'Invalid',
        `admission webhook "guard.example.com" denied the request: spec: Invalid value: ${JSON.stringify(body)}: password ${PASSWORD} for ${USER} rejected`,
      ),
      `create EnvoyFilter istio-system/${outboundName}`,
    ),
  );
  const first = await reconciler.resync(signal);
  t.equal(first.failed, 1, 'the write failed');
  await reconciler.resync(signal); // again: a rejected object is reported, not resent
  const failure = reconciler.failures().get(`istio-system/${outboundName}`);
  t.match(failure, { code: 'API_INVALID', status: 422 });
  t.ok(failure?.message.includes(REDACTED), 'the message keeps its shape with the secret redacted');
  t.ok(failure?.message.includes('guard.example.com'), 'and the rest of the message');

  const haystacks: [string, string][] = [
    ['log', log.raw()],
    ['events', JSON.stringify(eventer.events)],
    ['conditions', JSON.stringify(eventer.conditions)],
    ['failures', JSON.stringify([...reconciler.failures().values()])],
  ];
  t.ok(log.raw().includes('denied the request'), 'the failure is logged');
  t.ok(
    eventer.events.some((e) => e.message.includes('denied the request')),
    'and sent as an Event',
  );
  t.ok(log.raw().includes('Secret cache/garbled'), 'the garbled Secret is reported by name');
  for (const [where, text] of haystacks) {
    for (const secret of [PASSWORD, USER, GARBLED]) {
      for (const f of forms(secret)) t.notOk(text.includes(f), `${where}: no ${JSON.stringify(f)}`);
    }
    t.notOk(text.includes(unique), `${where}: not even the unique part`);
  }
});

t.test('redactText: raw, JSON-escaped and doubly escaped forms; longest secret first', async (t) => {
  const s = 'a"b\\c';
  t.equal(
    redactText(`x ${s} y ${JSON.stringify(s)} z ${JSON.stringify(JSON.stringify(s))}`, [s]),
    `x ${REDACTED} y "${REDACTED}" z "\\"${REDACTED}\\""`,
  );
  t.equal(redactText('secret-long secret', ['secret-long', 'secret']), `${REDACTED} ${REDACTED}`);
  t.same(inlinedCredentials({ a: { inlineString: 'not under an auth field' } }), []);
  t.same(
    inlinedCredentials({ downstreamAuthPasswords: [{ inlineBytes: b64('bytes-pw') }] }).sort(),
    ['bytes-pw', b64('bytes-pw')].sort(),
  );
});

t.test('generation problems for wrong-typed auth fields name the type, never the value', async (t) => {
  const SECRET = `Wr0ng-Typed-${randomBytes(6).toString('hex')}`;
  const base = `
${redisServiceYaml('10.96.61.1')}
---
apiVersion: redis.aeraki.io/v1alpha1
kind: RedisService
metadata: {name: redis, namespace: cache, annotations: {breeze.io/redis-auth-mode: MODE}}
spec:
  host: [redis.cache.svc.cluster.local]
  settings: {auth: AUTH}
`;
  const cases: [string, RegExp][] = [
    [`{secret: "${SECRET}"}`, /auth\.secret must be an object, got a string$/],
    [`{secret: ["${SECRET}"]}`, /auth\.secret must be an object, got a list$/],
    [`{secret: {name: [${JSON.stringify(SECRET)}]}}`, /auth\.secret\.name must be a string, got a list$/],
    [
      `{secret: {name: pw, passwordField: {x: "${SECRET}"}}}`,
      /passwordField must be a string, got an object$/,
    ],
    [`{secret: {name: pw, usernameField: ["${SECRET}"]}}`, /usernameField must be a string, got a list$/],
  ];
  for (const mode of ['inline', 'file']) {
    for (const [auth, expected] of cases) {
      const store = new ConfigStore();
      for (const o of parseManifestText(base.replace('MODE', mode).replace('AUTH', auth)).objects)
        store.upsert(o, 'file');
      const problems = generateAll(store, GEN).problems.map((p) => p.message);
      t.match(problems, [expected], `${mode}: ${auth.slice(0, 30)}`);
      t.notOk(JSON.stringify(problems).includes(SECRET), 'the value is not shown');
    }
  }
});
