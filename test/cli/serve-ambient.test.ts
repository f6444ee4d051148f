// `breeze serve` in local mode with a Namespace manifest in --config-dir: the label reaches the
// cache (the file source keeps Namespaces), the webhook answers a real AdmissionReview over TLS
// with the ambient warnings, and the generation note is logged once.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { startBreeze } from '../../src/cli/serve.js';
import { parseServeConfig } from '../../src/config/serve.js';
import { writeDevCertificates } from '../../src/pki/certs.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { HOSTS, send } from '../server/helpers.js';

const entry = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: {
    name: 'demo',
    namespace: 'apps',
    annotations: { interface: 'org.apache.dubbo.samples.DemoService' },
  },
  spec: {
    hosts: ['demo.apps.svc.cluster.local'],
    addresses: ['240.240.0.10'],
    ports: [{ number: 20880, name: 'tcp-dubbo', protocol: 'TCP' }],
    resolution: 'STATIC',
    workloadSelector: { labels: { app: 'demo' } },
  },
};

t.test('local mode: Namespace manifest → admission warnings and one generation note', async (t) => {
  const dir = t.testdir({
    config: {
      'namespace.yaml':
        'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n  labels:\n    istio.io/dataplane-mode: ambient\n',
      'service.json': JSON.stringify(entry),
    },
    out: {},
  });
  const certs = await writeDevCertificates(join(dir, 'tls'), HOSTS);
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const config = parseServeConfig(
    [
      '--listen',
      '127.0.0.1:0',
      '--health-listen',
      '127.0.0.1:0',
      '--tls-cert-file',
      certs.certFile,
      '--tls-key-file',
      certs.keyFile,
      '--config-dir',
      join(dir, 'config'),
      '--out-dir',
      join(dir, 'out'),
    ],
    {},
  );
  const breeze = await startBreeze(config, {}, { logger: createLogger({ level: 'info', destination }) });
  t.teardown(() => breeze.stop());
  await breeze.writing;
  t.equal(breeze.store.namespaceDataplaneMode('apps'), 'ambient');

  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-serve-ambient',
      kind: { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' },
      namespace: 'apps',
      name: 'demo',
      operation: 'UPDATE',
      userInfo: { username: 'alice' },
      object: entry,
      oldObject: entry,
      dryRun: true,
    },
  };
  const ca = readFileSync(certs.caFile, 'utf8');
  const answer = await send({ port: breeze.webhookPort, body: JSON.stringify(review), ca });
  t.equal(answer.status, 200);
  t.same(answer.json.response, {
    uid: 'u-serve-ambient',
    allowed: true,
    warnings: [
      `namespace "apps" has istio.io/dataplane-mode=ambient: no sidecars, so Breeze's dubbo filters skip its pods`,
      'fix: sidecar mode for namespace "apps", or label its pods istio.io/dataplane-mode=none and inject sidecars',
    ],
  });

  const notes = logs.filter((l) => l.includes('is in ambient mode'));
  t.equal(notes.length, 1, 'the note is logged once');
  t.match(JSON.parse(notes[0] ?? '{}'), {
    level: 'warn',
    service: 'ServiceEntry/apps/demo',
    msg: /^generation: ServiceEntry\/apps\/demo: namespace "apps" is in ambient mode \(istio\.io\/dataplane-mode=ambient\)/,
  });
  // The filters are written all the same (sidecar pods, or a later switch back, use them).
  t.ok(
    readFileSync(
      join(dir, 'out', 'istio-system.breeze-inbound-demo.apps.svc.cluster.local-20880.yaml'),
      'utf8',
    ),
  );

  // The label removed from the manifest: the warning goes.
  writeFileSync(
    join(dir, 'config', 'namespace.yaml'),
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n',
  );
  const deadline = Date.now() + 60_000;
  while (breeze.store.namespaceDataplaneMode('apps') !== undefined && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  const after = await send({ port: breeze.webhookPort, body: JSON.stringify(review), ca });
  t.same(after.json.response, { uid: 'u-serve-ambient', allowed: true });
});
