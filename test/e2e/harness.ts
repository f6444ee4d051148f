// The whole system in one process, the way a cluster drives it: the fake API server holding the
// chart's own webhook configurations (rendered by helm), Breeze in cluster mode started as
// `breeze serve` starts it, and "kubectl" (client-node as user alice) writing through the fake, so
// every write goes mutate → validate → persist → watch.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { KubernetesObjectApi } from '@kubernetes/client-node';
import { ConfigStore } from '../../src/cache/store.js';
import { startBreeze, type RunningBreeze } from '../../src/cli/serve.js';
import { parseServeConfig } from '../../src/config/serve.js';
import { canonicalJson, type JsonRecord } from '../../src/model/json.js';
import { handledKindOf } from '../../src/model/kinds.js';
import { isBreezeOwned } from '../../src/reconcile/owned.js';
import { writeDevCertificates } from '../../src/pki/certs.js';
import { generateAll } from '../../src/protocols/generate.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { find, FULLNAME, NAMESPACE, render } from '../chart/helm.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { bannerReader, loopbackClusterArgs, type ServePorts } from './loopback.js';

export const BREEZE_USER = `system:serviceaccount:${NAMESPACE}:${FULLNAME}`;
export const EF_API = 'networking.istio.io/v1alpha3';
export const GEN = { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' };

/** Renders the chart (existingSecret mode, caBundle = our CA) and stores its webhook configurations. */
export async function installWebhooks(api: FakeKubeApiServer, caFile: string): Promise<void> {
  const caBundle = Buffer.from(readFileSync(caFile)).toString('base64');
  const objects = await render([
    'tls.mode=existingSecret',
    'tls.existingSecret=breeze-tls',
    `tls.caBundle=${caBundle}`,
  ]);
  const configs = [
    ...find(objects, 'MutatingWebhookConfiguration'),
    ...find(objects, 'ValidatingWebhookConfiguration'),
  ];
  if (configs.length !== 2) throw new Error(`the chart rendered ${configs.length} webhook configurations`);
  for (const c of configs) api.put(c);
}

export interface Instance {
  readonly breeze: RunningBreeze;
  /** Every log line, for checks that no secret is ever logged. */
  readonly logs: string[];
  /** The CA that signed its serving certificate (the chart's tls.caBundle). */
  readonly caFile: string;
}

/** Breeze in cluster mode as the chart runs it, with its Service's endpoint pointed at it. */
export async function startInstance(
  api: FakeKubeApiServer,
  dir: string,
  opts: { podName?: string; extraArgs?: readonly string[]; istiodAddress?: string; user?: string } = {},
): Promise<Instance> {
  const certs = await writeDevCertificates(join(dir, 'tls'), ['127.0.0.1']);
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  const argv = [
    ...loopbackClusterArgs(certs),
    '--debounce-after',
    '100ms',
    '--drain-delay',
    '0s',
    ...(opts.istiodAddress === undefined ? [] : ['--istiod-address', opts.istiodAddress]),
    ...(opts.extraArgs ?? []),
  ];
  const env = {
    POD_NAME: opts.podName ?? 'breeze-0',
    POD_NAMESPACE: NAMESPACE,
    POD_SERVICE_ACCOUNT: FULLNAME,
    POD_IP: '127.0.0.1',
  };
  const config = parseServeConfig(argv, env);
  const breeze = await startBreeze(config, env, {
    kubeConfig: api.kubeConfig(opts.user ?? BREEZE_USER),
    logger: createLogger({ level: 'debug', destination }),
  });
  api.serviceEndpoint(NAMESPACE, FULLNAME, `127.0.0.1:${breeze.webhookPort}`);
  return { breeze, logs, caFile: certs.caFile };
}

/** "kubectl" as a user: client-node's generic object API against the fake. */
export function kubectl(api: FakeKubeApiServer, user = 'alice'): KubernetesObjectApi {
  return KubernetesObjectApi.makeApiClient(api.kubeConfig(user));
}

export type K8s = Record<string, any>;

/** What Breeze should have written for the config now in the fake (plus istiod's objects). */
export function desiredFilters(
  api: FakeKubeApiServer,
  istiod: readonly JsonRecord[] = [],
): Map<string, string> {
  const store = new ConfigStore();
  const read = (apiVersion: string, kind: string): void => {
    for (const o of api.list(apiVersion, kind)) store.upsert(o, 'kubernetes');
  };
  read('networking.istio.io/v1', 'ServiceEntry');
  read('networking.istio.io/v1', 'VirtualService');
  read('networking.istio.io/v1', 'DestinationRule');
  read('redis.aeraki.io/v1alpha1', 'RedisService');
  read('redis.aeraki.io/v1alpha1', 'RedisDestination');
  read('v1', 'Service');
  read('v1', 'Secret');
  for (const o of istiod) if (handledKindOf(o) !== undefined) store.upsert(o, 'istiod');
  return filterContents(generateAll(store, GEN).envoyFilters);
}

/** The EnvoyFilters Breeze owns in the fake, by name → content (namespace and spec). */
export function writtenFilters(api: FakeKubeApiServer): Map<string, string> {
  return filterContents(api.list(EF_API, 'EnvoyFilter').filter(isBreezeOwned));
}

/** name → the canonical JSON of what Envoy gets (namespace and spec). */
function filterContents(objects: Iterable<JsonRecord>): Map<string, string> {
  return new Map(
    [...objects]
      .map((o) => {
        const m = o.metadata as { name: string; namespace: string };
        return [m.name, canonicalJson({ namespace: m.namespace, spec: o.spec })] as [string, string];
      })
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
}

export const sameMap = (a: Map<string, string>, b: Map<string, string>): boolean =>
  a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

/** Writes of EnvoyFilters (anything but GET) that reached the fake. */
export function filterWrites(api: FakeKubeApiServer, from = 0) {
  return api.requests
    .slice(from)
    .filter(
      (r) => r.path.startsWith(`/apis/${EF_API}/`) && r.path.includes('/envoyfilters') && r.method !== 'GET',
    );
}

export interface BreezeProcess {
  readonly child: ChildProcess;
  readonly name: string;
  /** Resolves with the webhook and health ports once it printed its banner. */
  readonly started: Promise<ServePorts>;
  readonly exited: Promise<number | null>;
  /** The CA of its serving certificate. */
  readonly caFile: string;
  stderr(): string;
}

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

/**
 * `breeze serve --mode cluster` as its own process (killable for real), against the fake API with
 * its own user (`breeze-<name>`), so the fake's request log tells the instances apart.
 */
export async function spawnBreeze(
  api: FakeKubeApiServer,
  dir: string,
  name: string,
  extraArgs: readonly string[] = [],
): Promise<BreezeProcess> {
  const kubeconfig = join(dir, `kubeconfig-${name}.json`);
  writeFileSync(kubeconfig, api.kubeConfig(`breeze-${name}`).exportConfig());
  const certs = await writeDevCertificates(join(dir, `tls-${name}`), ['127.0.0.1']);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'serve',
      ...loopbackClusterArgs(certs),
      '--kubeconfig',
      kubeconfig,
      '--drain-delay',
      '0s',
      ...extraArgs,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BREEZE_LOG_LEVEL: 'warn', POD_NAME: name, POD_NAMESPACE: 'istio-system' },
    },
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started = new Promise<ServePorts>((resolve, reject) => {
    const read = bannerReader();
    createInterface({ input: child.stdout }).on('line', (line) => {
      const ports = read(line);
      if (ports) resolve(ports);
    });
    void exited.then((code) => reject(new Error(`breeze ${name} exited with ${code}: ${stderr}`)));
  });
  return { child, name, started, exited, caFile: certs.caFile, stderr: () => stderr };
}

/** The holder of the leader Lease now ('' when released). */
export function leaseHolder(api: FakeKubeApiServer): string | undefined {
  const lease = api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', 'breeze-leader');
  return (lease?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;
}

/** How many writes it takes to go from the filters in the fake to the desired ones. */
export function necessaryWrites(actual: Map<string, string>, desired: Map<string, string>): number {
  let n = 0;
  for (const [name, content] of desired) if (actual.get(name) !== content) n++;
  for (const name of actual.keys()) if (!desired.has(name)) n++;
  return n;
}
