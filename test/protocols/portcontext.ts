// A PortContext for generator unit tests: a one-port service plus an optional VirtualService and
// DestinationRule, without a ConfigStore.
import type { Test } from 'tap';
import { checkMessage } from '../../src/envoy/schema.js';
import { isBreezeError } from '../../src/errors.js';
import type { JsonRecord } from '../../src/model/json.js';
import type { Protocol } from '../../src/model/protocol.js';
import type { ServiceView } from '../../src/model/service.js';
import type { FilterPlan, PortContext } from '../../src/protocols/types.js';

export interface ContextOptions {
  protocol?: Protocol;
  host?: string;
  namespace?: string;
  port?: number;
  targetPort?: number;
  annotations?: Record<string, string>;
  virtualService?: JsonRecord;
  destinationRule?: JsonRecord;
}

export function portContext(o: ContextOptions = {}): PortContext {
  const protocol = o.protocol ?? 'dubbo';
  const namespace = o.namespace ?? 'dubbo';
  const host = o.host ?? 'org.apache.dubbo.samples.basic.api.demoservice';
  const port = {
    number: o.port ?? 20880,
    name: `tcp-${protocol}`,
    protocol,
    targetPort: o.targetPort,
  };
  const service: ServiceView = {
    kind: 'ServiceEntry',
    namespace,
    name: 'svc',
    hosts: [host],
    addresses: ['240.240.0.1'],
    ports: [port],
    workloadSelector: { app: 'provider' },
    annotations: o.annotations ?? { interface: 'org.apache.dubbo.samples.basic.api.DemoService' },
  };
  return {
    service,
    host,
    port,
    protocol,
    virtualService: o.virtualService,
    destinationRule: o.destinationRule,
    redisService: undefined,
    redisDestination: undefined,
    secret: () => undefined,
    servicesFor: () => [],
    options: { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' },
  };
}

/** A VirtualService in `namespace` with these http routes. */
export function virtualService(http: unknown, namespace = 'dubbo', name = 'vs'): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace },
    spec: { hosts: ['org.apache.dubbo.samples.basic.api.demoservice'], http },
  };
}

export const DESTINATION_RULE: JsonRecord = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'dr', namespace: 'dubbo' },
  spec: {
    host: 'org.apache.dubbo.samples.basic.api.demoservice',
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  },
};

/** Schema problems of a plan's network filter (envoy.config.listener.v3.Filter). */
export function filterProblems(plan: FilterPlan): string[] {
  return checkMessage('envoy.config.listener.v3.Filter', {
    name: plan.filter.name,
    typedConfig: plan.filter.typedConfig,
  });
}

/** Deterministic pseudo-random numbers (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD_VALUES: readonly unknown[] = [
  null,
  0,
  -1,
  1.5,
  '',
  'x',
  true,
  [],
  {},
  [null],
  { exact: 1 },
  { regex: '(?=x)' },
  { number: 'a' },
];

/**
 * Copies `value` with one randomly chosen node (object property or array item, at any depth)
 * replaced by an odd value, or deleted.
 */
export function mutate(value: unknown, random: () => number): unknown {
  const copy: unknown = structuredClone(value);
  const nodes: { parent: JsonRecord | unknown[]; key: string | number }[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        nodes.push({ parent: v, key: i });
        walk(item);
      });
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v as JsonRecord)) {
        nodes.push({ parent: v as JsonRecord, key: k });
        walk(item);
      }
    }
  };
  walk(copy);
  const node = nodes[Math.floor(random() * nodes.length)];
  if (node === undefined) return copy;
  const pick = Math.floor(random() * (ODD_VALUES.length + 1));
  if (pick === ODD_VALUES.length) {
    if (Array.isArray(node.parent)) node.parent.splice(node.key as number, 1);
    else Reflect.deleteProperty(node.parent, node.key);
  } else {
    (node.parent as Record<string | number, unknown>)[node.key] = structuredClone(ODD_VALUES[pick]);
  }
  return copy;
}

/** Runs `fn`, which must throw a GENERATION BreezeError, and returns its message. */
export function generationMessage(t: Test, fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    t.ok(isBreezeError(err, 'GENERATION'), 'a GENERATION BreezeError');
    return (err as Error).message;
  }
  t.fail('expected a GENERATION error');
  return '';
}
