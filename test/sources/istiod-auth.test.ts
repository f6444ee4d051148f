// The istiod source against current istiod: the api generator's auth (ENABLE_XDS_API_GENERATOR_AUTH:
// TLS, a projected istio-ca token, the mesh root namespace), both type URL versions, and how a
// refusal is reported (log, metrics, Event, readiness) and retried (backoff, never a crash).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { waitFor } from '../wait.js';
import type { Origin } from '../../src/cache/store.js';
import { parseServeConfig } from '../../src/config/serve.js';
import type { JsonRecord } from '../../src/model/json.js';
import { createCa, createServingCert } from '../../src/pki/certs.js';
import { RecordingEventer } from '../../src/reconcile/events.js';
import {
  authAdvice,
  Backoff,
  classifyRefusal,
  DEFAULT_AUTH_BACKOFF,
  IstiodSource,
  transportWarnings,
  type IstiodSourceOptions,
} from '../../src/sources/istiod/ads.js';
import { istioTypeUrl, type IstiodApiVersion } from '../../src/sources/istiod/mcp.js';
import { sourceMetrics } from '../../src/sources/istiod/metrics.js';
import type { ConfigSink } from '../../src/sources/types.js';
import { createLogger } from '../../src/telemetry/logger.js';
import {
  APIGEN_UNAUTHENTICATED,
  AUTHN_FAILURE,
  FakeIstiod,
  type FakeIstiodOptions,
} from '../fakes/istiod.js';

const ROOT_TOKEN = 'token-breeze-istio-system';
const TOKENS = {
  [ROOT_TOKEN]: { namespace: 'istio-system', serviceAccount: 'breeze' },
  'token-breeze-demo': { namespace: 'demo', serviceAccount: 'breeze' },
  'token-rotated': { namespace: 'istio-system', serviceAccount: 'breeze' },
};

class Sink implements ConfigSink {
  readonly replaces: { origin: Origin; kind: string; objects: readonly JsonRecord[] }[] = [];
  apply(): void {}
  replace(origin: Origin, kind: string, objects: readonly JsonRecord[]): void {
    this.replaces.push({ origin, kind, objects });
  }
  names(kind: string): string[] {
    const last = this.replaces.filter((r) => r.kind === kind).at(-1);
    return (last?.objects ?? []).map((o) => {
      const m = o.metadata as JsonRecord;
      return `${String(m.namespace)}/${String(m.name)}@${String(m.resourceVersion)}`;
    });
  }
}

function captureLogger() {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const lines = (): JsonRecord[] =>
    chunks
      .join('')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as JsonRecord);
  return { logger, lines };
}

function se(name: string, version: string): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: 'demo', resourceVersion: version },
    spec: {
      hosts: [`${name}.demo.svc.cluster.local`],
      ports: [{ number: 20880, name: 'tcp-dubbo', protocol: 'TCP' }],
      resolution: 'STATIC',
    },
  };
}

function dr(name: string, version: string): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace: 'demo', resourceVersion: version },
    spec: { host: `${name}.demo.svc.cluster.local`, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
  };
}

/** istiod's serving pair from a test CA, the CA file and a token file, in a temp dir. */
async function tlsFiles(t: Test, token = ROOT_TOKEN) {
  const ca = await createCa({ commonName: 'istio-ca' });
  const serving = await createServingCert(ca, ['istiod.istio-system.svc']);
  const dir = mkdtempSync(join(tmpdir(), 'breeze-istiod-auth-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const caFile = join(dir, 'root-cert.pem');
  const tokenFile = join(dir, 'istio-token');
  writeFileSync(caFile, ca.cert);
  writeFileSync(tokenFile, `${token}\n`);
  return { serving, caFile, tokenFile, dir };
}

interface Run {
  fake: FakeIstiod;
  source: IstiodSource;
  sink: Sink;
  lines: () => JsonRecord[];
  started: Promise<void>;
  registry: Registry;
  eventer: RecordingEventer;
}

async function run(
  t: Test,
  fakeOptions: FakeIstiodOptions,
  source: Partial<IstiodSourceOptions>,
  objects: (f: FakeIstiod) => void = (f) => {
    f.setConfig('ServiceEntry', [se('a', '10'), se('b', '11')]);
    f.setConfig('DestinationRule', [dr('a', '12')]);
  },
): Promise<Run> {
  const fake = new FakeIstiod(fakeOptions);
  await fake.start();
  objects(fake);
  const { logger, lines } = captureLogger();
  const registry = new Registry();
  const eventer = new RecordingEventer();
  const src = new IstiodSource({
    address: fake.address,
    podName: 'breeze-7d9f',
    podNamespace: 'istio-system',
    podIp: '10.1.2.3',
    logger,
    backoff: { initialMs: 20, maxMs: 200 },
    authBackoff: { initialMs: 20, maxMs: 160, jitter: 0 },
    metrics: sourceMetrics(registry),
    events: {
      eventer,
      object: { apiVersion: 'v1', kind: 'Pod', namespace: 'istio-system', name: 'breeze-7d9f' },
    },
    ...source,
  });
  const sink = new Sink();
  const started = src.start(sink);
  t.teardown(async () => {
    await src.stop();
    await fake.stop();
  });
  return { fake, source: src, sink, lines, started, registry, eventer };
}

async function gauge(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  const values = (await metric?.get())?.values ?? [];
  const found = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return found?.value;
}

const authErrors = (lines: () => JsonRecord[]) =>
  lines().filter((l) => l.level === 'error' && l.reason === 'auth');

for (const version of ['v1alpha3', 'v1'] as const satisfies readonly IstiodApiVersion[]) {
  const style = version === 'v1' ? 'Istio 1.24+ (v1)' : 'Istio 1.20-1.23 (v1alpha3)';
  t.test(`${style} with the generator auth: TLS, istio-ca token, root namespace: syncs`, async (t) => {
    const { caFile, tokenFile, serving } = await tlsFiles(t);
    const { fake, source, sink, started, registry, lines, eventer } = await run(
      t,
      { tls: serving, auth: { tokens: TOKENS }, apiVersion: version },
      { tls: { caFile, tokenFile, serverName: 'istiod.istio-system.svc' } },
    );
    await started;
    t.equal(source.synced(), true);
    t.same(sink.names('ServiceEntry'), ['demo/a@10', 'demo/b@11']);
    t.same(sink.names('DestinationRule'), ['demo/a@12']);
    t.same(sink.names('VirtualService'), []);
    t.same(fake.authorizations, [`Bearer ${ROOT_TOKEN}`], 'the token is sent as a bearer token');
    t.same(fake.refusals, []);
    // Both versions requested on one stream; only the served one carried objects.
    const served = fake.sent.filter((s) => s.resources > 0).map((s) => s.typeUrl);
    t.same(served.sort(), [istioTypeUrl(version, 'DestinationRule'), istioTypeUrl(version, 'ServiceEntry')]);
    t.equal(await gauge(registry, 'breeze_source_ready', { source: 'istiod' }), 1);
    t.equal(await gauge(registry, 'breeze_source_errors_total', { source: 'istiod', reason: 'auth' }), 0);
    t.equal(source.notReadyReason(), undefined);
    t.same(source.warnings(), [], 'the working setup is not warned about');
    t.same(
      lines().filter((l) => l.level === 'warn' || l.level === 'error'),
      [],
    );
    t.same(eventer.events, []);
  });
}

t.test(
  'an istiod upgrade from 1.23 to 1.24 moves every object to v1: no sink call, nothing lost',
  async (t) => {
    const { fake, sink, started } = await run(t, { apiVersion: 'v1alpha3' }, {});
    await started;
    const calls = sink.replaces.length;
    fake.setServedVersion('v1');
    fake.disconnect(); // the upgraded istiod: a new stream
    await waitFor('new stream answered', () => fake.sent.filter((s) => s.stream === 2).length === 6);
    await new Promise((r) => setTimeout(r, 50));
    t.equal(sink.replaces.length, calls, 'same objects, same resourceVersions: nothing to deliver');
    t.same(sink.names('ServiceEntry'), ['demo/a@10', 'demo/b@11']);
    // A change after the upgrade arrives over v1.
    fake.setConfig('ServiceEntry', [se('a', '20')]);
    fake.push();
    await waitFor('update over v1', () => sink.names('ServiceEntry').join() === 'demo/a@20');
  },
);

t.test(
  'outside the root namespace: PermissionDenied reported with the fix, backed off, never a crash',
  async (t) => {
    const { caFile, tokenFile, serving } = await tlsFiles(t, 'token-breeze-demo');
    const { fake, source, started, registry, lines, eventer } = await run(
      t,
      { tls: serving, auth: { tokens: TOKENS } },
      {
        tls: { caFile, tokenFile, serverName: 'istiod.istio-system.svc' },
        podNamespace: 'demo',
        events: {
          eventer: new RecordingEventer(),
          object: { apiVersion: 'v1', kind: 'Pod', namespace: 'demo', name: 'breeze-7d9f' },
        },
      },
    );
    void started;
    t.match(
      lines().find((l) => l.level === 'warn')?.msg,
      /runs in namespace demo, not the mesh root namespace istio-system/,
      'warned at start',
    );
    await waitFor('five refusals', () => fake.refusals.length >= 5);
    t.ok(
      fake.refusals.every(
        (r) => r.code === grpc.status.PERMISSION_DENIED && /root namespace istio-system/.test(r.details),
      ),
      'the fake refused with PermissionDenied and its message',
    );
    await waitFor('five logged', () => authErrors(lines).length >= 5);
    const errors = authErrors(lines);
    const first = errors[0]!;
    t.equal(first.code, 'PERMISSION_DENIED');
    t.match(
      String(first.msg),
      /Breeze runs in namespace demo \(node metadata NAMESPACE\), not the mesh root namespace istio-system/,
    );
    t.match(String(first.msg), /Fix: Breeze must run in the mesh root namespace/);
    t.match(String(first.msg), /audience istio-ca/);
    t.match(String(first.msg), /istiod said: PERMISSION_DENIED: the api generator is restricted/);
    // One line per attempt, attempts counted, each one backoff step later: 20, 40, 80, 160, 160 ms.
    t.same(
      errors.slice(0, 5).map((e) => e.attempt),
      [1, 2, 3, 4, 5],
    );
    t.same(
      errors.slice(0, 5).map((e) => e.retryInMs),
      [20, 40, 80, 160, 160],
    );
    const refused = fake.refusals.length;
    t.ok(
      errors.length <= refused && errors.length >= refused - 1,
      `one line per refusal (${errors.length} lines, ${refused} refusals; the last may be in flight)`,
    );
    t.equal(fake.sent.length, 0, 'nothing served');
    t.equal(source.synced(), false);
    t.match(
      source.notReadyReason(),
      /istiod refused Breeze's identity \(PERMISSION_DENIED, \d+ attempts\): Breeze must run in the mesh root namespace istio-system/,
    );
    t.equal(await gauge(registry, 'breeze_source_ready', { source: 'istiod' }), 0);
    t.ok((await gauge(registry, 'breeze_source_errors_total', { source: 'istiod', reason: 'auth' }))! >= 5);
    t.equal(await gauge(registry, 'breeze_source_errors_total', { source: 'istiod', reason: 'connect' }), 0);
    t.same(eventer.events, [], 'the default eventer was replaced');
  },
);

t.test(
  'a refusal becomes an Event on the Pod; a rotated token is picked up on reconnect and clears it',
  async (t) => {
    // The token in the file is of another namespace than the one Breeze claims: istiod's
    // connection identity check refuses it, until kubelet writes the right (rotated) token.
    const { caFile, tokenFile, serving } = await tlsFiles(t, 'token-breeze-demo');
    const { fake, source, sink, started, registry, lines, eventer } = await run(
      t,
      { tls: serving, auth: { tokens: TOKENS } },
      { tls: { caFile, tokenFile, serverName: 'istiod.istio-system.svc' } },
    );
    await waitFor('two refusals', () => fake.refusals.length >= 2);
    t.match(
      fake.refusals[0]?.details,
      /^authorization failed: no identities \(\[spiffe:\/\/cluster.local\/ns\/demo\/sa\/breeze\]\) matched istio-system\//,
    );
    await waitFor('an Event', () => eventer.events.length >= 1);
    const event = eventer.events[0]!;
    t.same(event.object, { apiVersion: 'v1', kind: 'Pod', namespace: 'istio-system', name: 'breeze-7d9f' });
    t.equal(event.type, 'Warning');
    t.equal(event.reason, 'IstiodAuthFailed');
    t.match(event.message, /token's namespace or service account does not match/);
    t.match(event.message, /Fix: Breeze must run in the mesh root namespace/);
    t.equal(
      new Set(eventer.events.map((e) => e.message)).size,
      1,
      'the same message on every refusal (the event sink deduplicates it)',
    );

    writeFileSync(tokenFile, 'token-rotated');
    await started;
    t.equal(fake.authorizations.at(-1), 'Bearer token-rotated', 're-read on reconnect');
    t.same(sink.names('ServiceEntry'), ['demo/a@10', 'demo/b@11']);
    t.equal(await gauge(registry, 'breeze_source_ready', { source: 'istiod' }), 1);
    t.equal(source.notReadyReason(), undefined);
    const recovered = lines().find((l) => /accepted Breeze's identity/.test(String(l.msg)));
    t.equal(recovered?.level, 'info');
    t.ok((recovered?.refusedAttempts as number) >= 2);
    const last = eventer.events.at(-1)!;
    t.equal(last.type, 'Normal');
    t.equal(last.reason, 'IstiodConnected');

    // A later refusal (the token expired) backs off from the start again: 20 ms, not the cap.
    writeFileSync(tokenFile, 'token-expired');
    const before = authErrors(lines).length;
    fake.disconnect();
    await waitFor('refused again', () => authErrors(lines).length > before);
    const again = authErrors(lines)[before]!;
    t.equal(again.code, 'UNAUTHENTICATED');
    t.equal(again.attempt, 1);
    t.equal(again.retryInMs, 20);
    t.match(String(again.msg), /rejected the token in .*istio-token/);
    t.match(String(again.msg), /not the default service-account token/);
    t.equal(source.synced(), true, 'the last good state stays');
    t.equal(
      source.notReadyReason(),
      undefined,
      'a synced source does not make Breeze unready (the webhook answers from the kept state)',
    );
    t.equal(
      await gauge(registry, 'breeze_source_ready', { source: 'istiod' }),
      0,
      'but the gauge says it is stale',
    );
  },
);

t.test('plaintext to an istiod with the generator auth: refused, warned at start with the fix', async (t) => {
  const { fake, source, lines, registry } = await run(t, { auth: { tokens: TOKENS } }, {});
  const warning = lines().find((l) => l.level === 'warn');
  t.match(warning?.msg, /connects in plaintext \(no --istiod-ca-file\)/);
  t.match(warning?.msg, /--istiod-address istiod\.istio-system\.svc:15012 --istiod-ca-file/);
  t.match(warning?.msg, /--istiod-token-file \/var\/run\/secrets\/tokens\/istio-token/);
  await waitFor('refused twice', () => authErrors(lines).length >= 2);
  t.same(
    fake.refusals.slice(0, 2).map((r) => [r.code, r.details]),
    [
      [grpc.status.UNAUTHENTICATED, APIGEN_UNAUTHENTICATED],
      [grpc.status.UNAUTHENTICATED, APIGEN_UNAUTHENTICATED],
    ],
  );
  const msg = String(authErrors(lines)[0]?.msg);
  t.match(msg, /a plaintext connection carries none/);
  t.match(msg, /Fix: Breeze must run in the mesh root namespace/);
  t.match(msg, /15012/);
  t.match(msg, /ENABLE_XDS_API_GENERATOR_AUTH=false/);
  t.match(source.notReadyReason(), /TLS to port 15012/);
  t.equal(await gauge(registry, 'breeze_source_ready', { source: 'istiod' }), 0);
});

t.test('plaintext with a token is still refused unless istiod sets XDS_AUTH_PLAINTEXT=true', async (t) => {
  const { tokenFile } = await tlsFiles(t);
  const { fake, lines } = await run(t, { auth: { tokens: TOKENS } }, { tokenFile });
  await waitFor('refused', () => authErrors(lines).length >= 1);
  t.equal(fake.refusals[0]?.details, APIGEN_UNAUTHENTICATED, 'istiod ignores the token on plaintext');
  t.match(String(authErrors(lines)[0]?.msg), /ignores tokens on plaintext unless XDS_AUTH_PLAINTEXT=true/);

  const { fake: open, started } = await run(t, { auth: { tokens: TOKENS, plaintext: true } }, { tokenFile });
  await started;
  t.same(open.refusals, [], 'XDS_AUTH_PLAINTEXT=true: the token is checked and accepted');
});

t.test('TLS without a token: refused (authentication failure), warned at start', async (t) => {
  const { caFile, serving } = await tlsFiles(t);
  const { fake, lines } = await run(
    t,
    { tls: serving, auth: { tokens: TOKENS } },
    { tls: { caFile, serverName: 'istiod.istio-system.svc' } },
  );
  t.ok(lines().some((l) => l.level === 'warn' && /no --istiod-token-file/.test(String(l.msg))));
  await waitFor('refused', () => authErrors(lines).length >= 1);
  t.equal(fake.refusals[0]?.details, AUTHN_FAILURE);
  t.match(String(authErrors(lines)[0]?.msg), /no token is configured/);
});

t.test("istiod's message under another status code is still reported as a refusal", async (t) => {
  const denied =
    'authorization failed: no identities ([spiffe://cluster.local/ns/x/sa/y]) matched istio-system/';
  const { lines, registry } = await run(t, {}, {}, (f) => f.failWith(grpc.status.UNKNOWN, denied));
  await waitFor('refused', () => authErrors(lines).length >= 1);
  t.equal(authErrors(lines)[0]?.code, 'UNKNOWN');
  t.match(String(authErrors(lines)[0]?.msg), /refused its identity/);
  t.ok((await gauge(registry, 'breeze_source_errors_total', { source: 'istiod', reason: 'auth' }))! >= 1);
});

t.test('a huge token file, a FIFO-like or empty one is refused before connecting, and retried', async (t) => {
  const { caFile, serving, dir } = await tlsFiles(t);
  const huge = join(dir, 'huge-token');
  writeFileSync(huge, 'x'.repeat(70 * 1024));
  const spaced = join(dir, 'spaced-token');
  writeFileSync(spaced, 'Bearer abc\r\nx-injected: 1');
  for (const [file, why] of [
    [huge, /larger than 65536 bytes/],
    [spaced, /does not hold a token/],
    [dir, /not a regular file/],
  ] as const) {
    const { fake, lines, registry, source } = await run(
      t,
      { tls: serving, auth: { tokens: TOKENS } },
      { tls: { caFile, tokenFile: file, serverName: 'istiod.istio-system.svc' } },
    );
    await waitFor('two failed setups', () => lines().filter((l) => l.reason === 'connect').length >= 2);
    t.match(lines().find((l) => l.reason === 'connect')?.err, why);
    t.equal(fake.streamsOpened, 0, 'never sent to istiod');
    t.ok(
      (await gauge(registry, 'breeze_source_errors_total', { source: 'istiod', reason: 'connect' }))! >= 2,
    );
    t.match(source.notReadyReason(), /not synced, \d+ failed attempts/);
    await source.stop();
  }
});

t.test('transportWarnings: what current istiod refuses, each with the fix', async (t) => {
  const ok = {
    address: 'istiod.istio-system.svc:15012',
    tls: true,
    tokenFile: '/t',
    namespace: 'istio-system',
  };
  t.same(transportWarnings(ok), []);
  const plain = transportWarnings({
    ...ok,
    address: 'istiod.istio-system.svc:15010',
    tls: false,
    tokenFile: undefined,
  });
  t.equal(plain.length, 1);
  t.match(plain[0], /plaintext \(no --istiod-ca-file, port 15010\)/);
  t.match(plain[0], /always refuses the api generator on plaintext/);
  const tls15010 = transportWarnings({ ...ok, address: 'istiod:15010' });
  t.match(
    tls15010[0],
    /plaintext port 15010 but --istiod-ca-file asks for TLS, which istiod serves on 15012/,
  );
  t.match(transportWarnings({ ...ok, tokenFile: undefined })[0], /no --istiod-token-file/);
  const ns = transportWarnings({ ...ok, namespace: 'breeze', rootNamespace: 'mesh-root' });
  t.equal(ns.length, 1);
  t.match(ns[0], /namespace breeze, not the mesh root namespace mesh-root/);
  t.match(ns[0], /Fix: install Breeze into mesh-root/);
});

t.test('classifyRefusal: codes, and istiod messages under other codes', async (t) => {
  t.equal(classifyRefusal(grpc.status.UNAUTHENTICATED, ''), 'unauthenticated');
  t.equal(classifyRefusal(grpc.status.PERMISSION_DENIED, ''), 'permission_denied');
  t.equal(classifyRefusal(grpc.status.UNKNOWN, APIGEN_UNAUTHENTICATED), 'unauthenticated');
  t.equal(classifyRefusal(grpc.status.INTERNAL, AUTHN_FAILURE), 'unauthenticated');
  t.equal(classifyRefusal(grpc.status.UNKNOWN, 'authorization failed: no identities'), 'permission_denied');
  t.equal(classifyRefusal(grpc.status.UNAVAILABLE, 'max connection age'), undefined);
  t.equal(classifyRefusal(grpc.status.OK, APIGEN_UNAUTHENTICATED), undefined);
});

t.test('authAdvice names the cause and the fix per setup', async (t) => {
  const base = { address: 'istiod:15012', namespace: 'breeze' };
  const denied = authAdvice(grpc.status.PERMISSION_DENIED, { ...base, tls: true, tokenFile: '/t' });
  t.match(
    denied,
    /runs in namespace breeze \(node metadata NAMESPACE\), not the mesh root namespace istio-system/,
  );
  t.match(denied, /install Breeze into istio-system/);
  t.match(denied, /audience istio-ca/);
  const rooted = authAdvice('permission_denied', {
    ...base,
    namespace: 'mesh',
    rootNamespace: 'mesh',
    tls: true,
    tokenFile: '/t',
  });
  t.match(rooted, /token's namespace or service account does not match the node metadata/);
  t.match(
    authAdvice(grpc.status.UNAUTHENTICATED, { ...base, tls: false, tokenFile: undefined }),
    /XDS_AUTH_PLAINTEXT=true on istiod and send the token on 15010/,
  );
  t.match(
    authAdvice(grpc.status.UNAUTHENTICATED, { ...base, tls: true, tokenFile: undefined }),
    /no token is configured/,
  );
  t.match(
    authAdvice(grpc.status.UNAUTHENTICATED, { ...base, tls: true, tokenFile: '/tok' }),
    /rejected the token in \/tok/,
  );
});

t.test('auth backoff: 5 s doubling to 5 minutes by default', async (t) => {
  const b = new Backoff({}, () => 0.5, DEFAULT_AUTH_BACKOFF);
  t.same(
    Array.from({ length: 8 }, () => b.next()),
    [5000, 10000, 20000, 40000, 80000, 160000, 300000, 300000],
  );
});

t.test(
  'serve flags: an empty --istiod-ca-file or --istiod-token-file is refused, naming the flag',
  async (t) => {
    const base = ['--mode', 'cluster', '--istiod-address', 'istiod.istio-system.svc:15012'];
    t.throws(
      () => parseServeConfig([...base, '--istiod-ca-file', ' '], {}),
      /--istiod-ca-file \(BREEZE_ISTIOD_CA_FILE\): " " must be the path of a file/,
    );
    t.throws(
      () => parseServeConfig([...base], { BREEZE_ISTIOD_TOKEN_FILE: '' }),
      /--istiod-token-file .* must be the path of a file/,
    );
    const ok = parseServeConfig(
      [
        ...base,
        '--istiod-ca-file',
        '/var/run/secrets/istio/root-cert.pem',
        '--istiod-token-file',
        '/var/run/secrets/tokens/istio-token',
      ],
      {},
    );
    t.equal(ok.istiodCaFile, '/var/run/secrets/istio/root-cert.pem');
    t.equal(ok.istiodTokenFile, '/var/run/secrets/tokens/istio-token');
    t.same(ok.sources, ['kubernetes', 'istiod']);
  },
);

t.test("istiod's status text is quoted cut to 500 characters, on one line", async (t) => {
  const long = `permission denied: ${'x'.repeat(6000)}\nsecond line`;
  const { lines } = await run(t, {}, {}, (f) => f.failWith(grpc.status.PERMISSION_DENIED, long));
  await waitFor('refused', () => authErrors(lines).length >= 1);
  const line = authErrors(lines)[0]!;
  t.equal(String(line.details).length, 503, '500 characters and an ellipsis');
  t.notMatch(String(line.msg), /\n/);
  t.ok(String(line.msg).length < 2500, 'the message stays short');
});
