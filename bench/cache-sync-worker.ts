// Initial sync through the fake Kubernetes API, in its own process so peak RSS is this run's:
// 10k ServiceEntries + 5k VirtualServices + 5k DestinationRules, listed by the real
// client-node code path (paged lists) into the config cache. Prints one JSON line.
import { ConfigStore } from '../src/cache/store.js';
import { KubernetesSource } from '../src/sources/kubernetes/kubernetes.js';
import { createLogger } from '../src/telemetry/logger.js';
import { FakeKubeApiServer } from '../test/fakes/kube-apiserver.js';

const n = Number(process.argv[2] ?? 10_000);
const api = await FakeKubeApiServer.start();
const t = performance.now();
for (let i = 0; i < n; i++) {
  const ns = `team-${i % 50}`;
  const host = `svc-${i}.${ns}.svc.cluster.local`;
  const meta = { name: `svc-${i}`, namespace: ns };
  api.put(
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: meta,
      spec: {
        hosts: [host],
        addresses: [`240.240.${Math.floor(i / 256)}.${i % 256}`],
        ports: [{ number: 9090, name: 'tcp-thrift', protocol: 'TCP' }],
        resolution: 'STATIC',
        workloadSelector: { labels: { app: `svc-${i}` } },
      },
    },
    { emit: false },
  );
  if (i % 2 !== 0) continue;
  api.put(
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: meta,
      spec: {
        hosts: [host],
        http: [
          {
            route: [
              { destination: { host, subset: 'v1' }, weight: 80 },
              { destination: { host, subset: 'v2' }, weight: 20 },
            ],
          },
        ],
      },
    },
    { emit: false },
  );
  api.put(
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: meta,
      spec: {
        host,
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    },
    { emit: false },
  );
}
const fillMs = performance.now() - t;
const baseRss = process.resourceUsage().maxRSS / 1024;
const store = new ConfigStore();
const source = new KubernetesSource({
  kubeConfig: api.kubeConfig(),
  logger: createLogger({ level: 'silent' }),
  kinds: ['ServiceEntry', 'VirtualService', 'DestinationRule'],
});
const t0 = performance.now();
await source.start(store);
const ms = performance.now() - t0;
const counts = {
  serviceEntries: store.list('ServiceEntry').length,
  virtualServices: store.list('VirtualService').length,
  destinationRules: store.list('DestinationRule').length,
};
await source.stop();
await api.close();
process.stdout.write(
  `${JSON.stringify({ ms, fillMs, ...counts, peakRssMiB: process.resourceUsage().maxRSS / 1024, rssBeforeSyncMiB: baseRss })}\n`,
);
