// Self-managed certificates against the fake API server: the Secret is created once and reused,
// files follow the Secret, caBundle reaches every webhook (and a no-op round writes nothing),
// serving renewal keeps the CA, CA rotation overlaps and orders its writes, followers poll.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { waitFor } from '../wait.js';
import { createLogger } from '../../src/telemetry/logger.js';
import {
  CA_BUNDLE_KEY,
  PREVIOUS_CA_UNTIL_ANNOTATION,
  SelfManagedCertificates,
} from '../../src/pki/selfmanaged.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';

const DAY = 24 * 60 * 60 * 1000;
const NS = 'breeze-system';
const NAME = 'breeze';
const SECRET = 'breeze-tls';
const ADM = 'admissionregistration.k8s.io';
const logger = createLogger({ level: 'silent' });

type Rec = Record<string, unknown>;

async function setup(t: Test): Promise<FakeKubeApiServer> {
  const fake = await FakeKubeApiServer.start();
  t.teardown(() => fake.close());
  for (const [resource, kind] of [
    ['validatingwebhookconfigurations', 'ValidatingWebhookConfiguration'],
    ['mutatingwebhookconfigurations', 'MutatingWebhookConfiguration'],
  ] as const) {
    fake.register({ group: ADM, versions: ['v1'], resource, kind, namespaced: false });
  }
  const clientConfig = (path: string): Rec => ({
    service: { name: NAME, namespace: NS, path, port: 443 },
  });
  fake.put({
    apiVersion: `${ADM}/v1`,
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: NAME },
    webhooks: [
      { name: 'validate.breeze.io', clientConfig: clientConfig('/validate') },
      { name: 'envoyfilters.breeze.io', clientConfig: { ...clientConfig('/validate'), caBundle: '' } },
    ],
  });
  fake.put({
    apiVersion: `${ADM}/v1`,
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: NAME },
    webhooks: [{ name: 'mutate.breeze.io', clientConfig: clientConfig('/mutate') }],
  });
  return fake;
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'breeze-sm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'tls');
}

function manager(
  t: Test,
  fake: FakeKubeApiServer,
  clock: () => number,
  pollIntervalMs = 60_000,
): SelfManagedCertificates {
  const m = new SelfManagedCertificates({
    kubeConfig: fake.kubeConfig(),
    namespace: NS,
    secretName: SECRET,
    serviceName: NAME,
    webhookConfigurations: { validating: NAME, mutating: NAME },
    certDir: tempDir(t),
    logger,
    clock,
    pollIntervalMs,
  });
  t.teardown(() => m.stop());
  return m;
}

function secretData(fake: FakeKubeApiServer): Record<string, string> {
  const s = fake.get('v1', 'Secret', NS, SECRET);
  const data = (s?.data ?? {}) as Record<string, string>;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
}

function annotations(fake: FakeKubeApiServer): Record<string, string> {
  const s = fake.get('v1', 'Secret', NS, SECRET);
  return ((s?.metadata as Rec | undefined)?.annotations ?? {}) as Record<string, string>;
}

function caBundles(fake: FakeKubeApiServer): string[] {
  const out: string[] = [];
  for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
    const obj = fake.get(`${ADM}/v1`, kind, '', NAME);
    for (const w of (obj?.webhooks ?? []) as Rec[]) {
      const cc = w.clientConfig as Rec;
      out.push(Buffer.from(typeof cc.caBundle === 'string' ? cc.caBundle : '', 'base64').toString());
    }
  }
  return out;
}

function writes(fake: FakeKubeApiServer, from = 0): { method: string; path: string }[] {
  return fake.requests
    .slice(from)
    .filter((r) => r.method !== 'GET')
    .map((r) => ({ method: r.method, path: r.path }));
}

function pemCount(bundle: string): number {
  return bundle.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
}

t.test('Secret created once, reused on restart; files match and cover the service', async (t) => {
  const fake = await setup(t);
  const a = manager(t, fake, Date.now);
  await a.start();
  const posts = () => fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/secrets'));
  t.equal(posts().length, 1, 'one POST');
  const data = secretData(fake);
  t.equal(fake.get('v1', 'Secret', NS, SECRET)?.type, 'kubernetes.io/tls');
  for (const k of ['tls.crt', 'tls.key', 'ca.crt', 'ca.key', CA_BUNDLE_KEY]) t.ok(data[k], `${k} present`);
  t.equal(data[CA_BUNDLE_KEY], data['ca.crt'], 'bundle is the CA');
  const cert = readFileSync(a.certFile, 'utf8');
  const key = readFileSync(a.keyFile, 'utf8');
  t.equal(cert, data['tls.crt']);
  const x = new X509Certificate(cert);
  t.ok(x.checkPrivateKey(createPrivateKey(key)), 'files are a pair');
  t.ok(x.verify(new X509Certificate(data['ca.crt'] ?? '').publicKey), 'signed by the CA');
  for (const h of [NAME, `${NAME}.${NS}`, `${NAME}.${NS}.svc`, `${NAME}.${NS}.svc.cluster.local`])
    t.equal(x.checkHost(h), h, `covers ${h}`);

  const b = manager(t, fake, Date.now);
  await b.start();
  t.equal(posts().length, 1, 'no second POST');
  t.equal(writes(fake).length, 1, 'no other write either');
  t.equal(readFileSync(b.certFile, 'utf8'), cert, 'same serving cert in the new certDir');
  t.equal(secretData(fake)['ca.crt'], data['ca.crt'], 'same CA');
});

t.test('caBundle in every webhook; a second round writes nothing; lead() stops on abort', async (t) => {
  const fake = await setup(t);
  const a = manager(t, fake, Date.now);
  await a.start();
  const mark = fake.requests.length;
  await a.reconcileOnce();
  const ca = secretData(fake)['ca.crt'];
  t.same(caBundles(fake), [ca, ca, ca], 'all three webhooks carry the CA');
  t.same(
    writes(fake, mark).map((w) => w.method),
    ['PATCH', 'PATCH'],
    'one patch per configuration',
  );
  const mark2 = fake.requests.length;
  await a.reconcileOnce();
  t.same(writes(fake, mark2), [], 'no-op round: zero writes');

  const ac = new AbortController();
  const leading = a.lead(ac.signal);
  await waitFor('a leader round', () => fake.requests.length > mark2 + 3);
  ac.abort();
  await a.stopLeading();
  await leading;
  t.same(writes(fake, mark2), [], 'lead() rounds are no-ops too');
});

t.test('serving renewal keeps the CA; CA rotation overlaps; followers poll', async (t) => {
  const fake = await setup(t);
  let now = Date.now();
  const clock = (): number => now;
  const leader = manager(t, fake, clock);
  await leader.start();
  await leader.reconcileOnce();
  const follower = manager(t, fake, clock, 100);
  await follower.start();
  const first = secretData(fake);

  // Serving renewal: 340 days on, inside the 30-day window.
  now += 340 * DAY;
  let mark = fake.requests.length;
  await leader.reconcileOnce();
  const renewed = secretData(fake);
  t.not(renewed['tls.crt'], first['tls.crt'], 'serving pair renewed');
  t.equal(renewed['ca.crt'], first['ca.crt'], 'CA kept');
  t.equal(renewed[CA_BUNDLE_KEY], first[CA_BUNDLE_KEY], 'bundle kept');
  t.same(
    writes(fake, mark).map((w) => w.method),
    ['PUT'],
    'only the Secret is written',
  );
  t.equal(readFileSync(leader.certFile, 'utf8'), renewed['tls.crt'], 'leader files updated');
  await waitFor('the follower to poll', () => readFileSync(follower.certFile, 'utf8') === renewed['tls.crt']);
  t.equal(readFileSync(follower.keyFile, 'utf8'), renewed['tls.key'], 'follower key updated');
  mark = fake.requests.length;
  await leader.reconcileOnce();
  t.same(writes(fake, mark), [], 'renewed state is stable');

  // CA rotation: 1533 days on, less than a fifth of the 1825-day CA life is left.
  now += (1533 - 340) * DAY;
  mark = fake.requests.length;
  await leader.reconcileOnce();
  const rotated = secretData(fake);
  const oldCa = first['ca.crt'] ?? '';
  const newCa = rotated['ca.crt'] ?? '';
  t.not(newCa, oldCa, 'new CA');
  t.equal(pemCount(rotated[CA_BUNDLE_KEY] ?? ''), 2, 'bundle holds two CAs');
  t.ok(rotated[CA_BUNDLE_KEY]?.includes(newCa) && rotated[CA_BUNDLE_KEY].includes(oldCa), 'new and old');
  t.same(
    caBundles(fake),
    [1, 2, 3].map(() => rotated[CA_BUNDLE_KEY]),
    'webhooks trust both',
  );
  t.ok(annotations(fake)[PREVIOUS_CA_UNTIL_ANNOTATION], 'overlap end recorded');
  const serving = new X509Certificate(rotated['tls.crt'] ?? '');
  t.ok(serving.verify(new X509Certificate(newCa).publicKey), 'serving pair issued by the new CA');
  const seq = writes(fake, mark).map((w) => `${w.method} ${w.path.split('/').slice(-2).join('/')}`);
  t.same(
    seq,
    [
      `PUT secrets/${SECRET}`,
      `PATCH validatingwebhookconfigurations/${NAME}`,
      `PATCH mutatingwebhookconfigurations/${NAME}`,
      `PUT secrets/${SECRET}`,
    ],
    'bundle Secret write, both patches, then the new serving pair',
  );
  await waitFor(
    'the follower to pick up the rotation',
    () => readFileSync(follower.certFile, 'utf8') === rotated['tls.crt'],
  );

  // Within the overlap nothing changes; after it the old CA leaves the bundle.
  now += 12 * 60 * 60 * 1000;
  mark = fake.requests.length;
  await leader.reconcileOnce();
  t.same(writes(fake, mark), [], 'nothing to do during the overlap');
  now += 13 * 60 * 60 * 1000;
  await leader.reconcileOnce();
  const after = secretData(fake);
  t.equal(after[CA_BUNDLE_KEY], newCa, 'only the new CA after the overlap');
  t.same(caBundles(fake), [newCa, newCa, newCa], 'webhooks patched again');
  t.equal(annotations(fake)[PREVIOUS_CA_UNTIL_ANNOTATION], undefined, 'annotation removed');
  t.equal(after['tls.crt'], rotated['tls.crt'], 'serving pair kept');
});

t.test('two replicas starting together create one Secret', async (t) => {
  const fake = await setup(t);
  const a = manager(t, fake, Date.now);
  const b = manager(t, fake, Date.now);
  await Promise.all([a.start(), b.start()]);
  t.equal(readFileSync(a.certFile, 'utf8'), readFileSync(b.certFile, 'utf8'), 'same pair');
  t.equal(readFileSync(a.certFile, 'utf8'), secretData(fake)['tls.crt']);
});
