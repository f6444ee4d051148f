import { ConfigStore } from '../cache/store.js';
import { handledKindGvk } from '../model/kinds.js';
import type { JsonRecord } from '../model/json.js';
import { CpuBudget } from './budget.js';
import { admit } from './handler.js';
import type { VALIDATORS } from './validators/index.js';
import { Ipv4Range, VipAllocator } from './vip.js';

const META = { name: 'warm-up', namespace: 'default' };

/** Small objects that take every validator through its main paths, a regex compile included. */
const SAMPLES: readonly { kind: keyof typeof VALIDATORS; object: JsonRecord }[] = [
  {
    kind: 'ServiceEntry',
    object: {
      metadata: { ...META, annotations: { interface: 'org.example.WarmUp' } },
      spec: {
        hosts: ['warm-up.example.com'],
        addresses: ['240.240.0.1'],
        ports: [
          { number: 20880, name: 'tcp-dubbo', protocol: 'TCP' },
          { number: 6379, name: 'tcp-redis' },
        ],
        resolution: 'STATIC',
      },
    },
  },
  {
    kind: 'VirtualService',
    object: {
      metadata: META,
      spec: {
        hosts: ['warm-up.example.com'],
        http: [
          {
            match: [{ method: { regex: 'say(Hello|Bye)[0-9]*' }, headers: { x: { prefix: 'a' } } }],
            route: [{ destination: { host: 'warm-up.example.com', subset: 'v1' }, weight: 100 }],
          },
        ],
      },
    },
  },
  {
    kind: 'DestinationRule',
    object: { metadata: META, spec: { host: 'warm-up.example.com', subsets: [{ name: 'v1' }] } },
  },
  {
    kind: 'RedisService',
    object: {
      metadata: META,
      spec: {
        host: ['warm-up.example.com'],
        redis: [{ match: { key: { prefix: 'a' } }, route: { host: 'warm-up.example.com' } }],
        settings: { opTimeout: '1s' },
      },
    },
  },
  {
    kind: 'RedisDestination',
    object: {
      metadata: META,
      spec: { host: 'warm-up.example.com', trafficPolicy: { connectionPool: { redis: { mode: 'PROXY' } } } },
    },
  },
];

/**
 * Sends one dry-run review of each sample through the whole admission path (decode, bounds,
 * validators, mutator, encode) before the webhook serves, so the first real request does not pay
 * for compiling that code (and re2js) against its CPU budget. A scratch store and VIP range are
 * used and the answers are thrown away: nothing is recorded or reserved.
 */
export function warmUpAdmission(domain: string): void {
  const view = new ConfigStore(domain);
  const deps = {
    view,
    vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), view),
    newBudget: () => CpuBudget.unlimited(),
  };
  let n = 0;
  for (const { kind, object } of SAMPLES) {
    const gvk = handledKindGvk(kind);
    for (const webhook of ['mutate', 'validate'] as const) {
      const review = {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: `warm-up-${n++}`,
          kind: gvk,
          resource: { group: gvk.group, version: gvk.version, resource: `${kind.toLowerCase()}s` },
          namespace: 'default',
          name: 'warm-up',
          operation: 'CREATE',
          dryRun: true,
          userInfo: { username: 'breeze:warm-up' },
          object: { apiVersion: `${gvk.group}/${gvk.version}`, kind, ...object },
        },
      };
      try {
        admit(webhook, review, deps);
      } catch {
        // A warm-up never stops the server: the request path has its own net.
      }
    }
  }
}
