// Finding 9 (secrets): Secret data that is not valid base64, or not UTF-8 where a password is
// expected, used to become a different password silently (Buffer.from(x, 'base64') skips what it
// cannot read). Now it is a generation problem naming the Secret and the key, never the value, and
// the service keeps its previous filters. Local-mode files (data and stringData) and Secrets read
// from the API server both go through the same decoder.
import t from 'tap';
import { ConfigStore } from '../../src/cache/store.js';
import { decodeDataValue, decodeSecret } from '../../src/model/secret.js';
import { formatProblem, generateAll } from '../../src/protocols/generate.js';
import { parseManifestText } from '../../src/sources/file.js';
import { KubernetesSource } from '../../src/sources/kubernetes/kubernetes.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { memoryEnv } from '../reconcile/fixtures.js';
import { waitFor } from '../sources/helpers.js';
import { redisServiceYaml } from './manifests.js';

const GEN = { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' };
const logger = createLogger({ level: 'silent' });
const signal = new AbortController().signal;
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

t.test('data values: base64 as the API server reads it, and no more leniently', async (t) => {
  t.equal(decodeDataValue(b64('hunter2')), 'hunter2');
  t.equal(decodeDataValue('aHVu\ndGVyMg=='), 'hunter2', 'CR and LF are skipped (Go does the same)');
  t.equal(decodeDataValue(''), '', 'empty is empty (reported as an empty password later)');
  t.equal(decodeDataValue(b64('pässwörd')), 'pässwörd', 'UTF-8 text');
  for (const bad of [
    'hunter2', // plain text in data: Buffer.from decoded it to other bytes
    'p@ss:word!',
    'aHVudGVyMg', // unpadded
    'aHVudGVyMg=', // wrong padding
    'aHVu dGVyMg==', // a space
    'aHVu_dGVyMg==', // the URL-safe alphabet is not Kubernetes'
    '=aHVudGVyMg=',
  ]) {
    t.same(
      decodeDataValue(bad),
      { invalid: 'is not valid base64 (data values are base64; put plain text under stringData)' },
      JSON.stringify(bad),
    );
    t.notOk(JSON.stringify(decodeDataValue(bad)).includes(bad), 'the reason does not quote the value');
  }
  t.same(decodeDataValue(b64(Buffer.from([0xff, 0xfe, 0x41]))), { invalid: 'does not decode to UTF-8 text' });
});

t.test('multi-megabyte values are checked without a stack overflow (linear, no regex)', async (t) => {
  const big = Buffer.alloc(15_000_000, 97).toString('base64'); // 20 MB of base64
  t.equal(decodeDataValue(big), 'a'.repeat(15_000_000));
  t.match(decodeDataValue(`${big.slice(0, -4)}!!!!`), { invalid: /not valid base64/ });
  t.match(decodeDataValue(`${big}=`), { invalid: /not valid base64/ });
});

t.test('decodeSecret: stringData over data, bad keys kept apart, __proto__ is just a key', async (t) => {
  const d = decodeSecret(
    JSON.parse(
      JSON.stringify({
        data: { password: b64('from-data'), 'ca.crt': b64(Buffer.from([0xff])), other: 'not base64!' },
        stringData: { password: 'from-stringData', username: 'app' },
      }).replace('"other"', '"__proto__"'),
    ),
  );
  t.equal(d.password, 'from-stringData', 'stringData wins, as on the API server');
  t.equal(d.username, 'app');
  t.same(d['ca.crt'], { invalid: 'does not decode to UTF-8 text' }, 'a binary key is not an error by itself');
  t.ok(Object.hasOwn(d, '__proto__'), 'an own key');
  t.same(Object.getPrototypeOf(d), null, 'the prototype is untouched');
  const secret = { data: { password: b64('x') } };
  t.equal(decodeSecret(secret), decodeSecret(secret), 'decoded once per object');
  t.ok(Object.isFrozen(decodeSecret(secret)));
  t.same(decodeSecret({ stringData: { password: 'a\uD800b' } }).password, {
    invalid: 'is not well-formed Unicode text',
  });
});

const SERVICE = `
${redisServiceYaml('10.96.50.1')}
---
apiVersion: redis.aeraki.io/v1alpha1
kind: RedisService
metadata: {name: redis, namespace: cache}
spec:
  host: [redis.cache.svc.cluster.local]
  settings: {auth: {secret: {name: pw, usernameField: user}}}
`;

function generateFrom(yaml: string) {
  const parsed = parseManifestText(yaml);
  const store = new ConfigStore();
  for (const o of parsed.objects) store.upsert(o, 'file');
  return { parsed, result: generateAll(store, GEN) };
}

t.test('local-mode file: data that is not base64 is a problem naming Secret and key', async (t) => {
  const RAW = 'Plain-Text-Pa55word!';
  const secret = (body: string) => `${SERVICE}---
apiVersion: v1
kind: Secret
metadata: {name: pw, namespace: cache}
${body}
`;
  const where =
    'Service/cache/redis port 6379 outbound: Secret cache/pw (spec.settings.auth.secret of RedisService cache/redis)';
  const cases: [string, string, string][] = [
    [
      `data: {password: "${RAW}", user: ${b64('app')}}`,
      `${where}: the password in key "password" is not valid base64 (data values are base64; put plain text under stringData)`,
      'plain text under data',
    ],
    [
      `data: {password: ${b64(Buffer.from([0xc3, 0x28]))}, user: ${b64('app')}}`,
      `${where}: the password in key "password" does not decode to UTF-8 text`,
      'base64 of bytes that are not UTF-8',
    ],
    [
      `data: {password: ${b64(RAW)}, user: "not base64 ${RAW}"}`,
      `${where}: the username in key "user" is not valid base64 (data values are base64; put plain text under stringData)`,
      'the username key is checked too',
    ],
  ];
  for (const [body, message, what] of cases) {
    const { parsed, result } = generateFrom(secret(body));
    t.same(parsed.errors, [], `${what}: the file parses`);
    t.same(result.problems.map(formatProblem), [message], what);
    t.notOk(JSON.stringify(result).includes(RAW), `${what}: the value is in no message or filter`);
    t.notOk(
      result.envoyFilters.some((ef) => (ef.metadata as { name: string }).name.includes('outbound')),
      `${what}: no outbound filter from a garbled password`,
    );
  }
  // The same password under stringData is fine, and under data once encoded.
  for (const body of [
    `stringData: {password: "${RAW}", user: app}`,
    `data: {password: ${b64(RAW)}, user: ${b64('app')}}`,
  ]) {
    const { result } = generateFrom(secret(body));
    t.same(result.problems, [], body.split(':')[0] ?? '');
    t.ok(
      JSON.stringify(result.envoyFilters).includes(`"inlineString":"${RAW}"`),
      'the exact password is used',
    );
  }
});

t.test('Secret from the API server: invalid data is a problem and the previous filters stay', async (t) => {
  const fake = await FakeKubeApiServer.start({ bookmarkIntervalMs: 100 });
  const RAW = 'Api-Server-Only-Secret-7f3a';
  const parsed = parseManifestText(SERVICE);
  for (const o of parsed.objects) fake.put(o);
  const putSecret = (data: Record<string, string>) =>
    fake.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pw', namespace: 'cache' }, data });
  putSecret({ password: b64(RAW), user: b64('app') });

  const { store, sink, reconciler } = memoryEnv();
  const source = new KubernetesSource({
    kubeConfig: fake.kubeConfig(),
    logger,
    kinds: ['Service', 'RedisService', 'Secret'],
    backoff: { initialMs: 20, maxMs: 200 },
    secretRefreshMs: 100,
  });
  t.teardown(async () => {
    await source.stop();
    await fake.close();
  });
  await source.start(store);
  t.match(await reconciler.resync(signal), { created: 2, failed: 0 });
  const outbound = 'istio-system/breeze-outbound-redis.cache.svc.cluster.local-10.96.50.1-6379';
  const before = JSON.stringify(sink.objects.get(outbound));
  t.ok(before.includes(RAW), 'the first, valid password is inlined');

  // The API server never stores this, but a Secret read back must still be checked: not base64.
  putSecret({ password: `!${RAW}!`, user: b64('app') });
  await waitFor('the refreshed Secret', () => {
    const d = store.get('Secret', 'cache', 'pw')?.object.data as Record<string, string> | undefined;
    return d?.password === `!${RAW}!`;
  });
  const problems = generateAll(store, GEN).problems.map(formatProblem);
  t.same(problems, [
    'Service/cache/redis port 6379 outbound: Secret cache/pw (spec.settings.auth.secret of RedisService cache/redis): the password in key "password" is not valid base64 (data values are base64; put plain text under stringData)',
  ]);
  t.match(await reconciler.resync(signal), { created: 0, updated: 0, deleted: 0 });
  t.equal(
    JSON.stringify(sink.objects.get(outbound)),
    before,
    'the outbound filter keeps the last good password',
  );

  // Valid base64 of bytes that are not UTF-8 (the API server does store these).
  putSecret({ password: b64(Buffer.from([0x80, 0x81])), user: b64('app') });
  await waitFor('the second refresh', () => {
    const d = store.get('Secret', 'cache', 'pw')?.object.data as Record<string, string> | undefined;
    return d?.password === b64(Buffer.from([0x80, 0x81]));
  });
  t.match(generateAll(store, GEN).problems.map(formatProblem), [
    /key "password" does not decode to UTF-8 text$/,
  ]);
  t.match(await reconciler.resync(signal), { created: 0, updated: 0, deleted: 0 });
  t.equal(JSON.stringify(sink.objects.get(outbound)), before, 'still the last good filter');
});
