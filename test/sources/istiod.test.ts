// The istiod ADS source against a fake istiod speaking the real protos over gRPC.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import grpc from '@grpc/grpc-js';
import t, { type Test } from 'tap';
import { waitFor } from '../wait.js';
import type { Origin } from '../../src/cache/store.js';
import type { JsonRecord } from '../../src/model/json.js';
import { createCa, createServingCert } from '../../src/pki/certs.js';
import { authAdvice, Backoff, IstiodSource, type IstiodSourceOptions } from '../../src/sources/istiod/ads.js';
import { decodeMcpEnvelope, istioTypeUrl, mcpToObject, objectToMcp } from '../../src/sources/istiod/mcp.js';
import type { ConfigSink } from '../../src/sources/types.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { FakeIstiod } from '../fakes/istiod.js';

const SE_V1 = istioTypeUrl('v1', 'ServiceEntry');
const VS_V1 = istioTypeUrl('v1', 'VirtualService');
const DR_V1 = istioTypeUrl('v1', 'DestinationRule');
const SE_A3 = istioTypeUrl('v1alpha3', 'ServiceEntry');
const VS_A3 = istioTypeUrl('v1alpha3', 'VirtualService');
const DR_A3 = istioTypeUrl('v1alpha3', 'DestinationRule');
const ALL = [SE_V1, SE_A3, VS_V1, VS_A3, DR_V1, DR_A3];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Replace {
  origin: Origin;
  kind: string;
  objects: readonly JsonRecord[];
}

class RecordingSink implements ConfigSink {
  readonly replaces: Replace[] = [];
  applies = 0;
  apply(): void {
    this.applies++;
  }
  replace(origin: Origin, kind: string, objects: readonly JsonRecord[]): void {
    this.replaces.push({ origin, kind, objects });
  }
  of(kind: string): Replace[] {
    return this.replaces.filter((r) => r.kind === kind);
  }
  names(kind: string): string[] {
    const last = this.of(kind).at(-1);
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

function se(name: string, version: string, extra: JsonRecord = {}): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: {
      name,
      namespace: 'demo',
      resourceVersion: version,
      labels: { app: name },
      annotations: { interface: 'org.apache.dubbo.samples.basic.api.DemoService' },
      creationTimestamp: '2024-05-01T10:00:00Z',
    },
    spec: {
      hosts: [`${name}.demo.svc.cluster.local`],
      addresses: ['240.240.0.1'],
      ports: [{ number: 20880, name: 'tcp-dubbo', protocol: 'TCP', targetPort: 20881 }],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      workloadSelector: { labels: { app: name } },
      ...extra,
    },
  };
}

function vs(name: string, version: string): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: 'demo', resourceVersion: version },
    spec: {
      hosts: ['a.demo.svc.cluster.local'],
      http: [
        {
          name: 'hello',
          match: [{ method: { exact: 'sayHello' }, headers: { user: { prefix: 'vip-' } } }],
          route: [
            { destination: { host: 'a.demo.svc.cluster.local', subset: 'v1' }, weight: 20 },
            {
              destination: { host: 'a.demo.svc.cluster.local', subset: 'v2', port: { number: 20880 } },
              weight: 80,
            },
          ],
        },
      ],
    },
  };
}

function dr(name: string, version: string): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace: 'demo', resourceVersion: version },
    spec: {
      host: 'a.demo.svc.cluster.local',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
      exportTo: ['*'],
    },
  };
}

interface Setup {
  fake: FakeIstiod;
  source: IstiodSource;
  sink: RecordingSink;
  lines: () => JsonRecord[];
  started: Promise<void>;
}

async function setup(
  t: Test,
  opts: {
    fake?: FakeIstiod;
    source?: Partial<IstiodSourceOptions>;
    beforeStart?: (f: FakeIstiod) => void;
  } = {},
): Promise<Setup> {
  const fake = opts.fake ?? new FakeIstiod();
  if (fake.port === 0) await fake.start();
  fake.setObjects(SE_V1, [se('a', '10'), se('b', '11')]);
  fake.setObjects(VS_V1, [vs('a', '12')]);
  fake.setObjects(DR_V1, [dr('a', '13')]);
  opts.beforeStart?.(fake);
  const { logger, lines } = captureLogger();
  const source = new IstiodSource({
    address: fake.address,
    podName: 'breeze-7d9f',
    podNamespace: 'istio-system',
    podIp: '10.1.2.3',
    logger,
    backoff: { initialMs: 20, maxMs: 200 },
    authBackoff: { initialMs: 20, maxMs: 200 },
    ...opts.source,
  });
  const sink = new RecordingSink();
  const started = source.start(sink);
  t.teardown(async () => {
    await source.stop();
    await fake.stop();
  });
  return { fake, source, sink, lines, started };
}

/** Every response sent so far was answered (ACK or NACK). */
function allAnswered(fake: FakeIstiod): boolean {
  return fake.sent.every((s) => fake.replyTo(s.nonce) !== undefined);
}

t.test('initial sync: per kind, synced only after every type URL answered, node and ACKs', async (t) => {
  const { fake, source, sink, started } = await setup(t, { beforeStart: (f) => f.hold(DR_A3) });
  let resolved = false;
  void started.then(() => (resolved = true));
  await waitFor(
    'SE and VS delivered',
    () => sink.of('ServiceEntry').length > 0 && sink.of('VirtualService').length > 0,
  );
  await waitFor('five type URLs answered', () => fake.sent.length === 5 && allAnswered(fake));
  await sleep(50);
  t.equal(source.synced(), false, 'not synced while one type URL is unanswered');
  t.equal(resolved, false, 'start() still pending');
  t.equal(sink.of('DestinationRule').length, 0, 'a kind waits for all of its type URLs');

  fake.release(DR_A3);
  await started;
  t.equal(source.synced(), true);
  t.same(
    sink.replaces.map((r) => [r.origin, r.kind, r.objects.length]),
    [
      ['istiod', 'ServiceEntry', 2],
      ['istiod', 'VirtualService', 1],
      ['istiod', 'DestinationRule', 1],
    ],
  );
  t.equal(sink.applies, 0);
  t.same(sink.of('ServiceEntry')[0]?.objects[0], se('a', '10'), 'Kubernetes-shaped JSON, apiVersion v1');
  t.same(sink.of('VirtualService')[0]?.objects[0], vs('a', '12'));
  t.same(sink.of('DestinationRule')[0]?.objects[0], dr('a', '13'));

  // Subscriptions: one initial request per type URL, wildcard, node on each.
  const initial = fake.requests.filter((r) => r.nonce === '');
  t.same(initial.map((r) => r.typeUrl).sort(), [...ALL].sort());
  for (const r of fake.requests) {
    t.equal(r.nodeId, 'sidecar~10.1.2.3~breeze-7d9f.istio-system~istio-system.svc.cluster.local');
    t.same(r.metadata, { GENERATOR: 'api', CLUSTER_ID: '', NAMESPACE: 'istio-system' });
    t.same(r.resourceNames, []);
  }
  t.ok(initial.every((r) => r.versionInfo === ''));
  // Every response ACKed with its own version and nonce.
  await waitFor('all ACKed', () => allAnswered(fake));
  for (const s of fake.sent) {
    const ack = fake.replyTo(s.nonce);
    t.equal(ack?.versionInfo, s.version, `ACK of ${s.typeUrl} carries its version`);
    t.equal(ack?.typeUrl, s.typeUrl);
    t.equal(ack?.errorDetail, undefined);
  }
});

t.test('updates and deletes replace the kind; unchanged resends cause no sink call', async (t) => {
  const { fake, sink, started } = await setup(t);
  await started;
  t.equal(sink.replaces.length, 3);

  fake.setObjects(SE_V1, [se('a', '20', { resolution: 'DNS' }), se('c', '21')]);
  fake.push([SE_V1]);
  await waitFor('update delivered', () => sink.of('ServiceEntry').length === 2);
  t.same(sink.names('ServiceEntry'), ['demo/a@20', 'demo/c@21'], 'b deleted, a updated, c added');
  const a = sink.of('ServiceEntry')[1]?.objects[0] as JsonRecord;
  t.equal((a.spec as JsonRecord).resolution, 'DNS');

  // istiod resends every watched type on every push: identical states cost nothing.
  const before = sink.replaces.length;
  const sentBefore = fake.sent.length;
  fake.push();
  fake.push();
  await waitFor('resends ACKed', () => fake.sent.length === sentBefore + 12 && allAnswered(fake));
  t.equal(sink.replaces.length, before, 'no sink call for unchanged resends');

  // Deleting everything of a kind is delivered as an empty replace.
  fake.setObjects(VS_V1, []);
  fake.push();
  await waitFor('VS emptied', () => sink.of('VirtualService').length === 2);
  t.same(sink.of('VirtualService')[1]?.objects, []);
  await waitFor('ACKed', () => allAnswered(fake));
  t.equal(sink.replaces.length, before + 1, 'only the kind that changed');
});

for (const garbage of ['resource', 'body', 'type'] as const) {
  t.test(`an undecodable ${garbage} is NACKed and the last good state kept`, async (t) => {
    const { fake, sink, started, lines } = await setup(t);
    await started;
    await waitFor('ACKed', () => allAnswered(fake));
    const accepted = fake.lastSent(SE_V1)!;
    fake.setObjects(SE_V1, [se('a', '30')]);
    fake.pushGarbage(SE_V1, garbage);
    const bad = fake.lastSent(SE_V1)!;
    await waitFor('NACK', () => fake.replyTo(bad.nonce) !== undefined);
    const nack = fake.replyTo(bad.nonce)!;
    t.equal(nack.typeUrl, SE_V1);
    t.equal(nack.versionInfo, accepted.version, 'NACK carries the last accepted version');
    t.equal(nack.errorDetail?.code, grpc.status.INVALID_ARGUMENT);
    t.match(nack.errorDetail?.message, /resources\[1\]/, 'error_detail names the resource');
    t.equal(sink.of('ServiceEntry').length, 1, 'no delivery: the last good state stays');
    t.same(sink.names('ServiceEntry'), ['demo/a@10', 'demo/b@11']);
    t.ok(lines().some((l) => l.level === 'error' && /NACK/.test(String(l.msg))));

    // The next good push is accepted and delivered.
    fake.push([SE_V1]);
    await waitFor('next push delivered', () => sink.of('ServiceEntry').length === 2);
    t.same(sink.names('ServiceEntry'), ['demo/a@30']);
    const good = fake.lastSent(SE_V1)!;
    await waitFor('ACK', () => fake.replyTo(good.nonce) !== undefined);
    t.equal(fake.replyTo(good.nonce)?.versionInfo, good.version);
    t.equal(fake.replyTo(good.nonce)?.errorDetail, undefined);
  });
}

t.test('disconnect: reconnects with backoff; the same state re-sent causes no sink call', async (t) => {
  const { fake, source, sink, started, lines } = await setup(t);
  await started;
  await waitFor('ACKed', () => allAnswered(fake));
  const calls = sink.replaces.length;

  for (let i = 2; i <= 3; i++) {
    fake.disconnect(grpc.status.UNAVAILABLE, 'max connection age');
    await waitFor(
      `stream ${i} answered`,
      () => fake.sent.filter((s) => s.stream === i).length === 6 && allAnswered(fake),
    );
    t.equal(sink.replaces.length, calls, `no sink calls after reconnect ${i - 1}`);
    t.equal(source.synced(), true, 'stays synced across reconnects');
  }
  // A clean close (status OK) reconnects too.
  fake.disconnect(grpc.status.OK, 'bye');
  await waitFor(
    'stream 4 answered',
    () => fake.sent.filter((s) => s.stream === 4).length === 6 && allAnswered(fake),
  );
  t.equal(sink.replaces.length, calls);
  t.ok(lines().some((l) => /reconnecting/.test(String(l.msg)) && typeof l.retryInMs === 'number'));

  // A deletion that happened while disconnected arrives with the new stream's full state.
  fake.disconnect();
  fake.setObjects(SE_V1, [se('a', '10')]);
  await waitFor('deletion delivered', () => sink.of('ServiceEntry').length === 2);
  t.same(sink.names('ServiceEntry'), ['demo/a@10']);
  await waitFor(
    'stream 5 answered',
    () => fake.sent.filter((s) => s.stream === 5).length === 6 && allAnswered(fake),
  );
  t.equal(sink.replaces.length, calls + 1, 'only the changed kind');
});

t.test('istiod down at first: retries with growing backoff, then syncs', async (t) => {
  const probe = new FakeIstiod();
  const port = await probe.start();
  await probe.stop(); // a free port with nothing listening
  const { logger, lines } = captureLogger();
  const source = new IstiodSource({
    address: `127.0.0.1:${port}`,
    podName: 'p',
    podNamespace: 'istio-system',
    podIp: '10.0.0.1',
    logger,
    backoff: { initialMs: 20, maxMs: 400 },
  });
  const started = source.start(new RecordingSink());
  t.teardown(() => source.stop());
  const failures = () => lines().filter((l) => /reconnecting/.test(String(l.msg)));
  await waitFor('three failed attempts', () => failures().length >= 3);
  const delays = failures().map((l) => l.retryInMs as number);
  t.ok(delays[2]! > delays[0]!, `backoff grows: ${delays.join(', ')}`);
  t.equal(failures()[0]?.level, 'warn');
  t.equal(source.synced(), false);
  const late = new FakeIstiod();
  await late.start(port);
  late.setObjects(SE_V1, [se('a', '1')]);
  t.teardown(() => late.stop());
  await started;
  t.equal(source.synced(), true);
});

t.test('v1 answers with data, v1alpha3 empty (Istio 1.24+): objects kept; merge prefers v1', async (t) => {
  const { fake, sink, started } = await setup(t);
  await started;
  await waitFor('ACKed', () => allAnswered(fake));
  const calls = sink.replaces.length;
  fake.push([SE_A3, VS_A3, DR_A3]);
  await waitFor('v1alpha3 resends ACKed', () => allAnswered(fake) && fake.sent.length === 9);
  t.equal(sink.replaces.length, calls, 'empty v1alpha3 answers never wipe v1 state');
  t.same(sink.names('ServiceEntry'), ['demo/a@10', 'demo/b@11']);

  // Istio before 1.24 answers v1alpha3; an object in both comes from v1.
  fake.setObjects(SE_A3, [se('a', '9'), se('old', '5')]);
  fake.push([SE_A3]);
  await waitFor('merged', () => sink.of('ServiceEntry').length === 2);
  t.same(sink.names('ServiceEntry'), ['demo/a@10', 'demo/b@11', 'demo/old@5']);
  fake.setObjects(SE_V1, []);
  fake.push([SE_V1]);
  await waitFor('v1 emptied', () => sink.of('ServiceEntry').length === 3);
  t.same(sink.names('ServiceEntry'), ['demo/a@9', 'demo/old@5'], 'v1alpha3 state stands on its own');
});

t.test('Unauthenticated: the log names the istiod setting that fixes it, and retries go on', async (t) => {
  const fake = new FakeIstiod();
  await fake.start();
  fake.failWith(
    grpc.status.UNAUTHENTICATED,
    'the api generator requires an authenticated control-plane identity',
  );
  const { source, started, lines } = await setup(t, { fake });
  await waitFor('three refused streams', () => fake.streamsOpened >= 3);
  const errors = lines().filter((l) => l.level === 'error' && l.code === 'UNAUTHENTICATED');
  t.ok(errors.length >= 2, 'each refusal is logged');
  const msg = String(errors[0]?.msg);
  t.match(msg, /ENABLE_XDS_API_GENERATOR_AUTH=false/);
  t.match(msg, /15012/);
  t.match(msg, /istio-ca-root-cert/);
  t.match(msg, /audience istio-ca/);
  t.match(msg, /root namespace/);
  t.match(msg, /XDS_AUTH_PLAINTEXT=true/);
  t.match(msg, /requires an authenticated control-plane identity/, 'istiod details included');
  t.ok((errors[0]?.retryInMs as number) <= 24, 'the first auth retry comes after the initial auth interval');
  t.ok((errors[1]?.retryInMs as number) >= 32, 'and the next one a backoff step later');
  t.equal(source.synced(), false);

  fake.failWith(grpc.status.PERMISSION_DENIED, 'namespace demo is not the root namespace');
  await waitFor('permission denied logged', () => lines().some((l) => l.code === 'PERMISSION_DENIED'));
  const denied = String(lines().find((l) => l.code === 'PERMISSION_DENIED')?.msg);
  t.match(denied, /mesh root namespace/);
  t.match(denied, /NAMESPACE/);
  t.match(denied, /ENABLE_XDS_API_GENERATOR_AUTH=false/);

  fake.failWith(undefined);
  await started;
  t.equal(source.synced(), true, 'syncs once istiod lets it in');
});

t.test('TLS with a bearer token re-read on each connect', async (t) => {
  const ca = await createCa({ commonName: 'istio-ca' });
  const serving = await createServingCert(ca, ['istiod.istio-system.svc', '127.0.0.1']);
  const dir = mkdtempSync(join(tmpdir(), 'breeze-istiod-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const caFile = join(dir, 'root-cert.pem');
  const tokenFile = join(dir, 'istio-token');
  writeFileSync(caFile, ca.cert);
  writeFileSync(tokenFile, 'token-1\n');
  const fake = new FakeIstiod({ tls: serving, token: 'token-1' });
  await fake.start();
  const { sink, started, lines } = await setup(t, {
    fake,
    source: { tls: { caFile, tokenFile, serverName: 'istiod.istio-system.svc' } },
  });
  await started;
  await waitFor('ACKed', () => allAnswered(fake));
  t.same(fake.authorizations, ['Bearer token-1']);
  t.equal(sink.of('ServiceEntry').length, 1);

  // The kubelet rotates the token; istiod only accepts the new one from now on.
  writeFileSync(tokenFile, 'token-2');
  fake.setToken('token-2');
  fake.disconnect();
  await waitFor('reconnected with the new token', () => fake.authorizations.includes('Bearer token-2'));
  await waitFor('answered', () => fake.sent.filter((s) => s.stream === 2).length === 6 && allAnswered(fake));
  t.equal(sink.of('ServiceEntry').length, 1, 'no sink call after the reconnect');

  // A rejected token names the token requirements.
  fake.setToken('token-3');
  fake.disconnect();
  await waitFor('rejected', () => lines().some((l) => l.code === 'UNAUTHENTICATED'));
  const msg = String(lines().find((l) => l.code === 'UNAUTHENTICATED')?.msg);
  t.match(msg, /rejected the token in .*istio-token/);
  t.match(msg, /audience istio-ca/);
});

t.test('TLS: an untrusted istiod certificate is not accepted', async (t) => {
  const ca = await createCa();
  const other = await createCa();
  const serving = await createServingCert(other, ['istiod.istio-system.svc']);
  const dir = mkdtempSync(join(tmpdir(), 'breeze-istiod-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ca.pem'), ca.cert);
  const fake = new FakeIstiod({ tls: serving });
  await fake.start();
  const { source, lines } = await setup(t, {
    fake,
    source: { tls: { caFile: join(dir, 'ca.pem'), serverName: 'istiod.istio-system.svc' } },
  });
  await waitFor('two failures', () => lines().filter((l) => /reconnecting/.test(String(l.msg))).length >= 2);
  t.equal(fake.streamsOpened, 0);
  t.equal(source.synced(), false);
});

t.test('a missing token file is retried, not fatal', async (t) => {
  const { source, lines, fake } = await setup(t, { source: { tokenFile: '/nonexistent/breeze/token' } });
  await waitFor('logged twice', () => lines().filter((l) => /CA or token/.test(String(l.msg))).length >= 2);
  t.equal(fake.streamsOpened, 0);
  t.equal(source.synced(), false);
});

t.test('resyncIntervalMs reopens the stream; unchanged state costs nothing', async (t) => {
  const { fake, sink, started } = await setup(t, { source: { resyncIntervalMs: 150 } });
  await started;
  await waitFor('three streams answered', () => fake.sent.filter((s) => s.stream === 3).length === 6);
  t.equal(sink.replaces.length, 3, 'no sink calls from resyncs');
  // A change that was never pushed (filtered by istiod) shows up on the next resync.
  fake.setObjects(DR_V1, []);
  await waitFor('picked up by a resync', () => sink.of('DestinationRule').length === 2);
  t.same(sink.of('DestinationRule')[1]?.objects, []);
});

t.test('stop() leaves no open handles and is idempotent', async (t) => {
  const baseline = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout');
  const fake = new FakeIstiod();
  await fake.start();
  fake.setObjects(SE_V1, [se('a', '1')]);
  const { logger } = captureLogger();
  const source = new IstiodSource({
    address: fake.address,
    podName: 'p',
    podNamespace: 'istio-system',
    podIp: '10.0.0.1',
    logger,
    backoff: { initialMs: 20, maxMs: 200 },
  });
  await source.start(new RecordingSink());
  fake.disconnect(); // a reconnect timer may be pending when stop() runs
  await source.stop();
  await source.stop();
  await fake.stop();
  const streams = fake.streamsOpened;
  await waitFor('handles released', () => {
    const now = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout');
    return now.length <= baseline.length;
  });
  await sleep(300);
  t.equal(fake.streamsOpened, streams, 'no reconnect after stop()');
  const start = await Promise.race([source.start(new RecordingSink()).then(() => 'resolved'), sleep(100)]);
  t.equal(start, 'resolved', 'start() after stop() resolves at once');
});

t.test('Backoff: 0.5 s doubling to 60 s, jittered, reset', async (t) => {
  const mid = new Backoff({}, () => 0.5);
  t.same(
    Array.from({ length: 10 }, () => mid.next()),
    [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000],
  );
  mid.reset();
  t.equal(mid.next(), 500);
  t.equal(new Backoff({}, () => 0).next(), 400);
  t.equal(new Backoff({}, () => 1).next(), 600);
  const high = new Backoff({}, () => 1);
  t.equal(high.max(), 60000, 'never above the maximum');
  t.equal(new Backoff({}, () => 0).max(), 48000);
});

t.test('authAdvice per transport', async (t) => {
  const base = { address: 'istiod:15010', namespace: 'breeze' };
  const plain = authAdvice(grpc.status.UNAUTHENTICATED, { ...base, tls: false, tokenFile: undefined });
  t.match(plain, /ENABLE_XDS_API_GENERATOR_AUTH=false/);
  t.match(plain, /15012/);
  t.match(plain, /XDS_AUTH_PLAINTEXT=true/);
  const plainToken = authAdvice(grpc.status.UNAUTHENTICATED, { ...base, tls: false, tokenFile: '/t' });
  t.match(plainToken, /XDS_AUTH_PLAINTEXT=true on istiod/);
  const tlsNoToken = authAdvice(grpc.status.UNAUTHENTICATED, { ...base, tls: true, tokenFile: undefined });
  t.match(tlsNoToken, /no token is configured/);
  const denied = authAdvice(grpc.status.PERMISSION_DENIED, { ...base, tls: true, tokenFile: '/t' });
  t.match(denied, /Breeze runs in namespace breeze \(node metadata NAMESPACE\)/);
  t.match(denied, /mesh root namespace \(meshConfig.rootNamespace, istio-system\)/);
});

t.test('MCP conversion: proto3 JSON, enums by name, no defaults, round trip', async (t) => {
  const object: JsonRecord = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'r', namespace: 'ns', resourceVersion: '7', creationTimestamp: '2024-01-02T03:04:05Z' },
    spec: {
      host: 'r.ns.svc.cluster.local',
      trafficPolicy: {
        loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } },
        connectionPool: { tcp: { maxConnections: 100, connectTimeout: '0.250s' } },
        outlierDetection: { consecutive5xxErrors: 0 },
        tls: { mode: 'ISTIO_MUTUAL' },
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' }, trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } },
      ],
      workloadSelector: { matchLabels: { app: 'r' } },
      exportTo: ['.'],
    },
  };
  const back = mcpToObject('DestinationRule', decodeMcpEnvelope(objectToMcp(object)));
  t.same(back, object);
  // Proto3 defaults vanish (as on the wire): MESH_EXTERNAL, NONE, port 0, empty lists.
  const plain = se('x', '1', { location: 'MESH_EXTERNAL', resolution: 'NONE', exportTo: [] });
  const spec = mcpToObject('ServiceEntry', decodeMcpEnvelope(objectToMcp(plain))).spec as JsonRecord;
  t.notOk('location' in spec);
  t.notOk('resolution' in spec);
  t.notOk('exportTo' in spec);
  // A synthetic ServiceEntry is just another object.
  const synthetic = se('synthetic-a', '', {});
  (synthetic.metadata as JsonRecord).resourceVersion = undefined;
  const got = mcpToObject('ServiceEntry', decodeMcpEnvelope(objectToMcp(synthetic)));
  t.equal((got.metadata as JsonRecord).name, 'synthetic-a');
  t.notOk('resourceVersion' in (got.metadata as JsonRecord));
  t.throws(
    () => mcpToObject('VirtualService', decodeMcpEnvelope(objectToMcp(object))),
    /is not a VirtualService/,
  );
});

t.test('objects without resourceVersion are compared by content', async (t) => {
  const synthetic = (ports: number) => ({
    ...se('synthetic-a', ''),
    metadata: { name: 'synthetic-a', namespace: 'demo' },
    spec: { hosts: ['a.demo.svc.cluster.local'], ports: [{ number: ports, name: 'tcp', protocol: 'TCP' }] },
  });
  const { fake, sink, started } = await setup(t, {
    beforeStart: (f) => f.setObjects(SE_V1, [synthetic(80)]),
  });
  await started;
  fake.push();
  await waitFor('ACKed', () => fake.sent.length === 12 && allAnswered(fake));
  t.equal(sink.of('ServiceEntry').length, 1, 'identical content, no re-delivery');
  fake.setObjects(SE_V1, [synthetic(81)]);
  fake.push([SE_V1]);
  await waitFor('changed content delivered', () => sink.of('ServiceEntry').length === 2);
  const spec = sink.of('ServiceEntry')[1]?.objects[0]?.spec as JsonRecord;
  t.same(spec.ports, [{ number: 81, name: 'tcp', protocol: 'TCP' }]);
});
