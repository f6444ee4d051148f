import type { JsonRecord } from '../src/model/json.js';

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
