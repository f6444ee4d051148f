// Redis auth mode file: the password never enters an EnvoyFilter. Envoy reads it from the Secret
// mounted into the client sidecars (Istio's userVolume annotations). The mode comes from
// `--redis-auth-mode` (serve and generate) or the object's annotation; admission says which mode
// applies and, in file mode, the exact pod annotations clients need.
import t from 'tap';
import { validateRedisDestination } from '../../src/admission/validators/redisdestination.js';
import { validateRedisService } from '../../src/admission/validators/redisservice.js';
import { MAX_WARNING_LENGTH } from '../../src/admission/findings.js';
import { ConfigStore } from '../../src/cache/store.js';
import { runGenerate } from '../../src/cli/generate.js';
import { parseServeConfig } from '../../src/config/serve.js';
import { checkEnvoyFilter } from '../../src/envoy/schema.js';
import type { JsonRecord } from '../../src/model/json.js';
import { formatProblem, generateAll } from '../../src/protocols/generate.js';
import {
  authModeFindings,
  inlineModeWarning,
  isSecretKey,
  podAnnotations,
  volumeName,
} from '../../src/protocols/redis/authmode.js';
import { parseManifestText } from '../../src/sources/file.js';
import { redisServiceYaml } from './manifests.js';

const PASSWORD = 'file-mode-never-shows-this';
const MANIFESTS = `
${redisServiceYaml('10.96.70.1')}
---
apiVersion: v1
kind: Secret
metadata: {name: redis-auth, namespace: cache}
stringData: {password: ${PASSWORD}, username: app}
---
apiVersion: redis.aeraki.io/v1alpha1
kind: RedisService
metadata: {name: redis, namespace: cache}
spec:
  host: [redis.cache.svc.cluster.local]
  settings: {auth: {secret: {name: redis-auth}}}
---
apiVersion: redis.aeraki.io/v1alpha1
kind: RedisDestination
metadata: {name: redis, namespace: cache}
spec:
  host: redis.cache.svc.cluster.local
  trafficPolicy: {connectionPool: {redis: {auth: {secret: {name: redis-auth, usernameField: username}}}}}
`;

function generate(redisAuthMode?: 'inline' | 'file', yaml = MANIFESTS) {
  const store = new ConfigStore();
  for (const o of parseManifestText(yaml).objects) store.upsert(o, 'file');
  return generateAll(store, {
    rootNamespace: 'istio-system',
    namespaceScope: false,
    domain: 'cluster.local',
    ...(redisAuthMode === undefined ? {} : { redisAuthMode }),
  });
}

/** Every DataSource under the auth fields of the outbound filter. */
function authSources(efs: readonly JsonRecord[]): unknown[] {
  const text = JSON.stringify(efs);
  const out: unknown[] = [];
  for (const m of text.matchAll(
    /"(downstreamAuthPasswords|downstreamAuthUsername|authPassword|authUsername)":(\[?\{[^}]*\}\]?)/g,
  ))
    out.push([m[1], JSON.parse(m[2] ?? 'null')]);
  return out;
}

t.test('default (no flag): inline, unchanged output', async (t) => {
  const r = generate();
  t.same(r.problems, []);
  t.same(
    JSON.stringify(generate('inline').envoyFilters),
    JSON.stringify(r.envoyFilters),
    'inline = the default',
  );
  t.ok(JSON.stringify(r.envoyFilters).includes(PASSWORD));
});

t.test('--redis-auth-mode file: filename data sources, no password, schema-valid', async (t) => {
  const r = generate('file');
  t.same(r.problems, []);
  t.notOk(JSON.stringify(r.envoyFilters).includes(PASSWORD), 'the password is in no EnvoyFilter');
  t.same(authSources(r.envoyFilters), [
    ['downstreamAuthPasswords', [{ filename: '/etc/breeze/redis/cache/redis-auth/password' }]],
    ['authPassword', { filename: '/etc/breeze/redis/cache/redis-auth/password' }],
    ['authUsername', { filename: '/etc/breeze/redis/cache/redis-auth/username' }],
  ]);
  for (const ef of r.envoyFilters) t.same(checkEnvoyFilter(ef), [], 'passes the strict schema check');
  const sources = r.envoyFilters.map((ef) => (ef.metadata as any).annotations['breeze.io/sources']).join();
  t.notOk(sources.includes('Secret/'), 'the Secret is not a source: it is not read');

  // Without the Secret at all, file mode generates the same filters.
  const noSecret = generate('file', MANIFESTS.replace(/kind: Secret/, 'kind: ConfigMap'));
  t.same(noSecret.problems, []);
  t.equal(JSON.stringify(noSecret.envoyFilters), JSON.stringify(r.envoyFilters));
});

t.test('the annotation overrides the flag both ways, per object', async (t) => {
  const annotate = (kind: string, mode: string) =>
    MANIFESTS.replace(
      `kind: ${kind}\nmetadata: {name: redis, namespace: cache}`,
      `kind: ${kind}\nmetadata: {name: redis, namespace: cache, annotations: {breeze.io/redis-auth-mode: ${mode}}}`,
    );
  const upstreamInline = generate('file', annotate('RedisDestination', 'inline'));
  t.same(upstreamInline.problems, []);
  t.match(authSources(upstreamInline.envoyFilters), [
    ['downstreamAuthPasswords', [{ filename: /password$/ }]],
    ['authPassword', { inlineString: PASSWORD }],
    ['authUsername', { inlineString: 'app' }],
  ]);
  const downstreamFile = generate(undefined, annotate('RedisService', 'file'));
  t.match(authSources(downstreamFile.envoyFilters), [
    ['downstreamAuthPasswords', [{ filename: /password$/ }]],
    ['authPassword', { inlineString: PASSWORD }],
  ]);
  const bad = generate(undefined, annotate('RedisService', '"FILE "'));
  t.same(bad.problems.map(formatProblem), [
    'Service/cache/redis port 6379 outbound: RedisService cache/redis metadata.annotations[breeze.io/redis-auth-mode] must be inline or file',
  ]);
});

t.test('file mode: keys that could leave the mount are refused', async (t) => {
  for (const key of ['../../proc/self/environ', '..data', '.', '..', 'a/b', '', 'x'.repeat(254)])
    t.notOk(isSecretKey(key), JSON.stringify(key.slice(0, 20)));
  for (const key of ['password', 'redis-password', 'tls.key', '.hidden', 'A_B']) t.ok(isSecretKey(key), key);
  const r = generate(
    'file',
    MANIFESTS.replace(
      '{secret: {name: redis-auth}}',
      '{secret: {name: redis-auth, passwordField: ../../etc/shadow}}',
    ),
  );
  t.match(r.problems.map(formatProblem), [
    /passwordField is not a Secret key .*: file mode cannot mount it$/,
  ]);
});

t.test('pod annotations: the exact userVolume JSON arrays, valid volume name', async (t) => {
  const a = podAnnotations('cache', 'redis-auth');
  const name = volumeName('cache', 'redis-auth');
  t.match(name, /^breeze-[0-9a-f]{10}$/);
  t.ok(name.length <= 63);
  t.same(JSON.parse(a['sidecar.istio.io/userVolume'] ?? ''), [
    { name, secret: { secretName: 'redis-auth' } },
  ]);
  t.same(JSON.parse(a['sidecar.istio.io/userVolumeMount'] ?? ''), [
    { name, mountPath: '/etc/breeze/redis/cache/redis-auth' },
  ]);
  t.not(
    volumeName('cache', 'redis-auth'),
    volumeName('cach', 'e/redis-auth'),
    'distinct per namespace/Secret',
  );
});

const object = (kind: string, spec: unknown, annotations?: Record<string, string>): JsonRecord => ({
  apiVersion: 'redis.aeraki.io/v1alpha1',
  kind,
  metadata: { name: 'redis', namespace: 'cache', ...(annotations ? { annotations } : {}) },
  spec,
});
const ctx = { view: new ConfigStore(), namespace: 'cache' };

t.test('admission warnings: the mode, and in file mode the annotations clients need', async (t) => {
  const rs = (annotations?: Record<string, string>) =>
    object(
      'RedisService',
      { host: ['redis.cache.svc.cluster.local'], settings: { auth: { secret: { name: 'redis-auth' } } } },
      annotations,
    );
  t.same(validateRedisService(rs(), ctx), { problems: [], warnings: [inlineModeWarning(false)] });
  t.same(validateRedisService(rs({ 'breeze.io/redis-auth-mode': 'inline' }), ctx).warnings, [
    inlineModeWarning(true),
  ]);
  const name = volumeName('cache', 'redis-auth');
  const file = validateRedisService(rs({ 'breeze.io/redis-auth-mode': 'file' }), ctx);
  // The server's --redis-auth-mode reaches the webhook: no annotation, flag file, same warnings.
  t.same(
    validateRedisService(rs(), { ...ctx, redisAuthMode: 'file' }),
    file,
    'the webhook knows the server flag: file mode warnings without the annotation',
  );
  t.same(validateRedisService(rs(), { ...ctx, redisAuthMode: 'inline' }).warnings, [inlineModeWarning(true)]);
  t.same(file, {
    problems: [],
    warnings: [
      'Redis auth mode file: Envoy reads /etc/breeze/redis/cache/redis-auth/password',
      'client pods need Secret redis-auth (key password) in their own namespace and these annotations:',
      `sidecar.istio.io/userVolume: [{"name":"${name}","secret":{"secretName":"redis-auth"}}]`,
      `sidecar.istio.io/userVolumeMount: [{"name":"${name}","mountPath":"/etc/breeze/redis/cache/redis-auth"}]`,
    ],
  });
  t.same(
    authModeFindings('RedisService', rs(), 'cache', 'file').warnings,
    file.warnings,
    'the server default',
  );

  const rd = object(
    'RedisDestination',
    {
      host: 'redis.cache.svc.cluster.local',
      trafficPolicy: {
        connectionPool: {
          redis: { auth: { secret: { name: 'redis-auth', passwordField: 'pw', usernameField: 'user' } } },
        },
      },
    },
    { 'breeze.io/redis-auth-mode': 'file' },
  );
  const up = validateRedisDestination(rd, ctx);
  t.same(up.problems, []);
  t.match(up.warnings, [
    'Redis auth mode file: Envoy reads /etc/breeze/redis/cache/redis-auth/pw',
    /^client pods need Secret redis-auth \(keys pw, user\)/,
    /^sidecar\.istio\.io\/userVolume: /,
    /^sidecar\.istio\.io\/userVolumeMount: /,
  ]);

  // Long names: each warning stays within 120 characters and still names the facts.
  const long = 's'.repeat(200);
  const lw = authModeFindings(
    'RedisService',
    object(
      'RedisService',
      { settings: { auth: { secret: { name: long } } } },
      { 'breeze.io/redis-auth-mode': 'file' },
    ),
    'cache',
  ).warnings;
  for (const w of lw) t.ok(w.length <= MAX_WARNING_LENGTH, `${w.length} chars`);
  t.match(lw[2], /^sidecar\.istio\.io\/userVolume: a volume named breeze-[0-9a-f]{10} of secret s+/);

  t.same(validateRedisService(rs({ 'breeze.io/redis-auth-mode': 'FILE' }), ctx).warnings, [
    "metadata.annotations[breeze.io/redis-auth-mode] must be inline or file: this service's filters stay as they are",
  ]);
  t.same(
    validateRedisService(object('RedisService', { host: ['redis'] }), ctx).warnings,
    [],
    'no auth: no warning',
  );
});

t.test('the flags: serve --redis-auth-mode and generate --redis-auth-mode', async (t) => {
  t.equal(parseServeConfig([], {}).redisAuthMode, 'inline');
  t.equal(parseServeConfig(['--redis-auth-mode', 'file'], {}).redisAuthMode, 'file');
  t.equal(parseServeConfig([], { BREEZE_REDIS_AUTH_MODE: 'file' }).redisAuthMode, 'file');
  t.throws(() => parseServeConfig(['--redis-auth-mode', 'secret'], {}), { code: 'BAD_FLAG' });

  let out = '';
  const err: string[] = [];
  const summary = await runGenerate(
    ['-f', 'test/golden/redis-secret-auth/input.yaml', '--redis-auth-mode', 'file', '--check'],
    (s) => (out += s),
    (l) => err.push(l),
  );
  t.same(err, []);
  t.equal(summary.exitCode, 0);
  t.match(out, /filename: \/etc\/breeze\/redis\/redis\/redis-a-auth\/password/);
  t.notOk(out.includes('testredis'), "redis-a's Secret password is not in the output");
  await t.rejects(
    runGenerate(
      ['-f', 'x.yaml', '--redis-auth-mode', 'mounted'],
      () => {},
      () => {},
    ),
    { code: 'BAD_FLAG' },
  );
});
