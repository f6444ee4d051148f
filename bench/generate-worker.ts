// One generation run in its own process (so peak RSS is this run's): `generate` or `baseline`
// for N synthetic services. Prints one JSON line.
import { ConfigStore } from '../src/cache/store.js';
import type { JsonRecord } from '../src/model/json.js';
import { generateAll } from '../src/protocols/generate.js';
import { toYamlStream } from '../src/protocols/output.js';

const PROTOCOLS = ['dubbo', 'thrift', 'kafka', 'zookeeper', 'redis'] as const;

/** N services, mixed protocols; every other one has a VirtualService and DestinationRule. */
export function syntheticConfig(n: number): JsonRecord[] {
  const out: JsonRecord[] = [];
  for (let i = 0; i < n; i++) {
    const protocol = PROTOCOLS[i % PROTOCOLS.length]!;
    const ns = `team-${i % 50}`;
    const host = `svc-${i}.${ns}.svc.cluster.local`;
    const port = { dubbo: 20880, thrift: 9090, kafka: 9092, zookeeper: 2181, redis: 6379 }[protocol];
    out.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: {
        name: `svc-${i}`,
        namespace: ns,
        annotations: protocol === 'dubbo' ? { interface: `com.example.team${i % 50}.Service${i}` } : {},
      },
      spec: {
        hosts: [host],
        addresses: [`240.${240 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`],
        ports: [{ number: port, name: `tcp-${protocol}`, protocol: 'TCP' }],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        workloadSelector: { labels: { app: `svc-${i}` } },
      },
    });
    if (i % 2 === 0 && (protocol === 'dubbo' || protocol === 'thrift')) {
      out.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: `svc-${i}`, namespace: ns },
        spec: {
          host,
          subsets: [
            { name: 'v1', labels: { version: 'v1' } },
            { name: 'v2', labels: { version: 'v2' } },
          ],
        },
      });
      out.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: `svc-${i}`, namespace: ns },
        spec: {
          hosts: [host],
          http: [
            { match: [{ method: { exact: 'sayHello' } }], route: [{ destination: { host, subset: 'v2' } }] },
            {
              route: [
                { destination: { host, subset: 'v1' }, weight: 80 },
                { destination: { host, subset: 'v2' }, weight: 20 },
              ],
            },
          ],
        },
      });
    }
  }
  return out;
}

const [mode, countText] = process.argv.slice(2);
const n = Number(countText);
const input = syntheticConfig(n);
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const t0 = now();
const store = new ConfigStore();
for (const o of input) store.upsert(o, 'file');
const t1 = now();
let objects: JsonRecord[] = input;
let problems = 0;
if (mode === 'generate') {
  const result = generateAll(store, {
    rootNamespace: 'istio-system',
    namespaceScope: false,
    domain: 'cluster.local',
  });
  objects = result.envoyFilters;
  problems = result.problems.length;
}
const t2 = now();
// JSON is what the reconciler sends to the API server; YAML is what `breeze generate` prints.
const jsonBytes = objects.reduce((b, o) => b + JSON.stringify(o).length, 0);
const t3 = now();
const yamlBytes = toYamlStream(objects).length;
const t4 = now();
process.stdout.write(
  `${JSON.stringify({
    mode,
    services: n,
    fillMs: t1 - t0,
    generateMs: t2 - t1,
    jsonMs: t3 - t2,
    yamlMs: t4 - t3,
    totalJsonMs: t3 - t0,
    outputs: objects.length,
    problems,
    jsonBytes,
    yamlBytes,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  })}\n`,
);
