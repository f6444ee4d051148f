// Config churn, faults and the desired state of the soak run.
//
// - Churn: a pool of service slots across four namespaces, each a Dubbo, Thrift or Redis
//   ServiceEntry (with a DestinationRule and VirtualService for Dubbo and Thrift) or a Kafka or
//   ZooKeeper Service. Every operation goes the way the API server goes: the review to /mutate
//   and /validate (not a dry run, so the admission feed holds it), then, when allowed, the write
//   to the fake API server. A recreated slot gets a new name (`-g<generation>`), so state kept
//   per object name shows up as growth. A few creates are admitted and never written: the
//   admission feed must drop them after --admission-grace.
// - istiod: its own ServiceEntries (namespace soak-istiod), changed and pushed now and then.
// - Faults: a cycle of API failures (500, 429 and 503 with Retry-After, hung writes and lists,
//   dropped watches, compaction to 410, failed Lease renewals).
// - Desired state: generateAll over what the fake API server and the fake istiod hold.
import { randomUUID } from 'node:crypto';
import { ConfigStore } from '../src/cache/store.js';
import { canonicalJson, type JsonRecord } from '../src/model/json.js';
import { generateAll } from '../src/protocols/generate.js';
import { CONTENT_HASH_ANNOTATION, MANAGED_BY_LABEL } from '../src/protocols/shared/envoyfilter.js';
import { decodeMcpEnvelope, istioTypeUrl, mcpToObject, objectToMcp } from '../src/sources/istiod/mcp.js';
import type { FakeIstiod } from '../test/fakes/istiod.js';
import type { FakeKubeApiServer } from '../test/fakes/kube-apiserver.js';
import { mismatch, type WebhookClient } from './soak-load.js';

export const GENERATION = { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' };
const ISTIO = 'networking.istio.io/v1';
const PROTOCOLS = ['dubbo', 'thrift', 'redis', 'kafka', 'zookeeper'] as const;
type Protocol = (typeof PROTOCOLS)[number];

interface Slot {
  readonly index: number;
  readonly namespace: string;
  readonly protocol: Protocol;
  generation: number;
  /** Objects of this slot in the cluster, by kind. */
  readonly objects: Map<string, JsonRecord>;
  busy: boolean;
}

export interface ChurnStats {
  ops: number;
  creates: number;
  updates: number;
  deletes: number;
  phantoms: number;
  /** Skipped because the slot still had an operation in flight, or too many were in flight. */
  skipped: number;
  /** Reviews sent for churn operations (mutate and validate). */
  admissions: number;
  /** Reviews of valid churn objects that were not answered 200 allowed (each a failure). */
  admissionFailures: number;
  admissionFailureSamples: string[];
  patches: number;
  writeErrors: number;
  writeErrorSamples: string[];
}

const rand = (n: number): number => Math.floor(Math.random() * n);

function name(slot: Slot): string {
  return `${slot.protocol}-${slot.index}-g${slot.generation}`;
}

function host(slot: Slot): string {
  return slot.protocol === 'dubbo'
    ? `org.apache.dubbo.soak.service${slot.index}g${slot.generation}`
    : `${name(slot)}.${slot.namespace}.svc.cluster.local`;
}

function address(slot: Slot): string {
  return `240.240.${200 + (slot.index >> 8)}.${slot.index & 255}`;
}

function serviceEntry(slot: Slot, rev: number): JsonRecord {
  const port =
    slot.protocol === 'dubbo'
      ? { number: 20880, name: 'tcp-dubbo', protocol: 'TCP' }
      : slot.protocol === 'thrift'
        ? { number: 9090, name: 'tcp-thrift', protocol: 'TCP', targetPort: 9091 + (rev % 3) }
        : { number: 6379, name: 'tcp-redis', protocol: 'TCP' };
  return {
    apiVersion: ISTIO,
    kind: 'ServiceEntry',
    metadata: {
      name: name(slot),
      namespace: slot.namespace,
      labels: { app: name(slot), soak: 'true' },
      ...(slot.protocol === 'dubbo'
        ? { annotations: { interface: `org.apache.dubbo.soak.Service${slot.index}g${slot.generation}` } }
        : {}),
    },
    spec: {
      hosts: [host(slot)],
      addresses: [address(slot)],
      ports: [port],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      workloadSelector: { labels: { app: name(slot), rev: `r${rev % 4}` } },
    },
  };
}

function service(slot: Slot, rev: number): JsonRecord {
  const ip = `10.96.${200 + (slot.index >> 8)}.${slot.index & 255}`;
  const ports =
    slot.protocol === 'kafka'
      ? [{ name: 'tcp-kafka', port: 9092, targetPort: 9092 + (rev % 2), protocol: 'TCP' }]
      : [
          { name: 'tcp-zookeeper', port: 2181, targetPort: 2181 + (rev % 2), protocol: 'TCP' },
          { name: 'tcp-follower', port: 2888, targetPort: 2888, protocol: 'TCP' },
        ];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: name(slot), namespace: slot.namespace, labels: { app: name(slot) } },
    spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], selector: { app: name(slot) }, ports },
  };
}

function destinationRule(slot: Slot, rev: number): JsonRecord {
  return {
    apiVersion: ISTIO,
    kind: 'DestinationRule',
    metadata: { name: name(slot), namespace: slot.namespace },
    spec: {
      host: host(slot),
      subsets: [
        { name: 'v1', labels: { version: 'v1', rev: `r${rev % 3}` } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  };
}

function virtualService(slot: Slot, rev: number): JsonRecord {
  const w = 10 * (1 + (rev % 9));
  const h = host(slot);
  return {
    apiVersion: ISTIO,
    kind: 'VirtualService',
    metadata: { name: name(slot), namespace: slot.namespace },
    spec: {
      hosts: [h],
      http: [
        {
          name: 'by-method',
          match: [{ method: { exact: slot.protocol === 'dubbo' ? 'sayHello' : 'ping' } }],
          route: [{ destination: { host: h, subset: 'v2' } }],
        },
        {
          name: 'split',
          route: [
            { destination: { host: h, subset: 'v1' }, weight: w },
            { destination: { host: h, subset: 'v2' }, weight: 100 - w },
          ],
        },
      ],
    },
  };
}

const RESOURCES: Record<string, string> = {
  ServiceEntry: 'serviceentries',
  VirtualService: 'virtualservices',
  DestinationRule: 'destinationrules',
};

function meta(o: JsonRecord): { name: string; namespace: string; resourceVersion?: string } {
  return o.metadata as { name: string; namespace: string; resourceVersion?: string };
}

/** The AdmissionReview the API server would send for this change. */
function review(
  operation: 'CREATE' | 'UPDATE' | 'DELETE',
  object: JsonRecord | null,
  old: JsonRecord | null,
): string {
  const o = object ?? old ?? {};
  const kind = o.kind as string;
  const m = meta(o);
  const gvk = { group: 'networking.istio.io', version: 'v1', kind };
  const gvr = { group: 'networking.istio.io', version: 'v1', resource: RESOURCES[kind] ?? '' };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: gvk,
      resource: gvr,
      requestKind: gvk,
      requestResource: gvr,
      name: m.name,
      namespace: m.namespace,
      operation,
      userInfo: { username: 'system:serviceaccount:soak:deployer', groups: ['system:authenticated'] },
      object,
      oldObject: old,
      dryRun: false,
      options: {
        apiVersion: 'meta.k8s.io/v1',
        kind: `${operation[0]}${operation.slice(1).toLowerCase()}Options`,
      },
    },
  });
}

export class Churn {
  readonly stats: ChurnStats = {
    ops: 0,
    creates: 0,
    updates: 0,
    deletes: 0,
    phantoms: 0,
    skipped: 0,
    admissions: 0,
    admissionFailures: 0,
    admissionFailureSamples: [],
    patches: 0,
    writeErrors: 0,
    writeErrorSamples: [],
  };
  private readonly slots: Slot[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private readonly idle = new Set<() => void>();
  private rev = 0;
  private phantom = 0;

  constructor(
    private readonly api: FakeKubeApiServer,
    private readonly slotCount: number,
  ) {
    for (let i = 0; i < slotCount; i++) {
      this.slots.push({
        index: i,
        namespace: `soak-${i % 4}`,
        protocol: PROTOCOLS[i % PROTOCOLS.length] ?? 'dubbo',
        generation: 0,
        objects: new Map(),
        busy: false,
      });
    }
  }

  /** Fills every other slot directly (no admission): the state Breeze finds at start-up. */
  seed(): void {
    for (const slot of this.slots)
      if (slot.index % 2 === 0) for (const o of this.objectsFor(slot)) this.write(slot, o);
  }

  /** Starts `rate` operations per second through `client`. */
  start(client: WebhookClient, rate: number): void {
    this.timer = setInterval(
      () => {
        if (this.inFlight >= 8) {
          this.stats.skipped++;
          return;
        }
        const slot = this.slots[rand(this.slots.length)];
        if (slot === undefined || slot.busy) {
          this.stats.skipped++;
          return;
        }
        this.inFlight++;
        slot.busy = true;
        void this.operate(client, slot).finally(() => {
          slot.busy = false;
          this.inFlight--;
          if (this.inFlight === 0) for (const f of this.idle) f();
        });
      },
      Math.max(1, Math.round(1000 / rate)),
    );
  }

  /** Stops issuing operations and waits for those in flight. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const f = (): void => {
        this.idle.delete(f);
        resolve();
      };
      this.idle.add(f);
    });
  }

  private objectsFor(slot: Slot): JsonRecord[] {
    const rev = ++this.rev;
    if (slot.protocol === 'kafka' || slot.protocol === 'zookeeper') return [service(slot, rev)];
    const se = serviceEntry(slot, rev);
    if (slot.protocol === 'redis') return [se];
    return [se, destinationRule(slot, rev), virtualService(slot, rev)];
  }

  private async operate(client: WebhookClient, slot: Slot): Promise<void> {
    this.stats.ops++;
    const r = Math.random();
    if (slot.objects.size === 0) {
      slot.generation++;
      this.stats.creates++;
      if (r < 0.05 && slot.protocol !== 'kafka' && slot.protocol !== 'zookeeper') {
        await this.phantomCreate(client, slot);
        return;
      }
      for (const o of this.objectsFor(slot)) await this.change(client, slot, 'CREATE', o, null);
      return;
    }
    const rev = ++this.rev;
    const kinds = [...slot.objects.keys()];
    if (r < 0.55) {
      this.stats.updates++;
      const kind = kinds[rand(kinds.length)] ?? 'ServiceEntry';
      const old = slot.objects.get(kind);
      if (old === undefined) return;
      const next =
        kind === 'Service'
          ? service(slot, rev)
          : kind === 'ServiceEntry'
            ? serviceEntry(slot, rev)
            : kind === 'DestinationRule'
              ? destinationRule(slot, rev)
              : virtualService(slot, rev);
      const m = next.metadata as JsonRecord;
      m.resourceVersion = meta(old).resourceVersion;
      await this.change(client, slot, 'UPDATE', next, old);
      return;
    }
    if (r < 0.8 && (slot.protocol === 'dubbo' || slot.protocol === 'thrift')) {
      // Toggle the routing objects: delete them when present, recreate them when not.
      const vs = slot.objects.get('VirtualService');
      const dr = slot.objects.get('DestinationRule');
      if (vs !== undefined && dr !== undefined) {
        this.stats.deletes++;
        await this.change(client, slot, 'DELETE', null, vs);
        await this.change(client, slot, 'DELETE', null, dr);
      } else {
        this.stats.creates++;
        if (dr === undefined) await this.change(client, slot, 'CREATE', destinationRule(slot, rev), null);
        if (vs === undefined) await this.change(client, slot, 'CREATE', virtualService(slot, rev), null);
      }
      return;
    }
    this.stats.deletes++;
    for (const kind of ['VirtualService', 'DestinationRule', 'ServiceEntry', 'Service']) {
      const old = slot.objects.get(kind);
      if (old !== undefined) await this.change(client, slot, 'DELETE', null, old);
    }
  }

  /** Admitted by the webhooks, then lost before it is persisted: Breeze must drop it. */
  private async phantomCreate(client: WebhookClient, slot: Slot): Promise<void> {
    this.stats.phantoms++;
    const n = ++this.phantom;
    const se = serviceEntry(slot, 0);
    const m = se.metadata as JsonRecord;
    m.name = `phantom-${n}`;
    (se.spec as JsonRecord).addresses = [`240.240.${220 + ((n >> 8) % 8)}.${n & 255}`];
    (se.spec as JsonRecord).hosts = [`phantom-${n}.${slot.namespace}.svc.cluster.local`];
    delete m.annotations;
    ((se.spec as JsonRecord).ports as JsonRecord[])[0] = { number: 6379, name: 'tcp-redis', protocol: 'TCP' };
    await this.admit(client, review('CREATE', se, null));
    slot.generation--; // nothing was created in the slot
  }

  /** Mutate and validate (skipped for Services, which Breeze's webhooks do not see), then write. */
  private async change(
    client: WebhookClient,
    slot: Slot,
    operation: 'CREATE' | 'UPDATE' | 'DELETE',
    object: JsonRecord | null,
    old: JsonRecord | null,
  ): Promise<void> {
    const o = object ?? old;
    if (o === null) return;
    if (o.kind !== 'Service') {
      const body = review(operation, object, old);
      if (!(await this.admit(client, body))) return;
    }
    try {
      if (object === null) {
        this.api.remove(o.apiVersion as string, o.kind as string, meta(o).namespace, meta(o).name);
        slot.objects.delete(o.kind as string);
      } else this.write(slot, object);
    } catch (err) {
      this.stats.writeErrors++;
      if (this.stats.writeErrorSamples.length < 5) this.stats.writeErrorSamples.push(String(err));
    }
  }

  private write(slot: Slot, object: JsonRecord): void {
    const copy = structuredClone(object);
    delete (copy.metadata as JsonRecord).resourceVersion;
    slot.objects.set(object.kind as string, this.api.put(copy));
  }

  /** Both webhooks must answer 200 allowed (these objects are valid); false otherwise. */
  private async admit(client: WebhookClient, body: string): Promise<boolean> {
    for (const path of ['/mutate', '/validate']) {
      this.stats.admissions++;
      const a = await client.post(path, body, { timeoutMs: 10_000 });
      const why = a.error ?? mismatch({ httpStatus: 200, allowed: true }, a.status, a.body);
      if (why !== undefined) {
        this.stats.admissionFailures++;
        if (this.stats.admissionFailureSamples.length < 10)
          this.stats.admissionFailureSamples.push(`${path}: ${why}`);
        return false;
      }
      if (path === '/mutate' && a.body.includes('"patch"')) this.stats.patches++;
    }
    return true;
  }
}

// ---- istiod ---------------------------------------------------------------------------------

const SE_V1 = istioTypeUrl('v1', 'ServiceEntry');

/** ServiceEntries only istiod knows (another config store behind it), changed and pushed. */
export class IstiodChurn {
  private objects: JsonRecord[] = [];
  private version = 0;
  private next = 0;
  private pushTimer: NodeJS.Timeout | undefined;
  private disconnectTimer: NodeJS.Timeout | undefined;
  pushes = 0;
  disconnects = 0;

  constructor(
    private readonly istiod: FakeIstiod,
    count = 10,
  ) {
    for (let i = 0; i < count; i++) this.objects.push(this.make(this.next++));
    this.istiod.setObjects(SE_V1, this.objects);
  }

  private make(i: number): JsonRecord {
    const dubbo = i % 2 === 0;
    return {
      apiVersion: ISTIO,
      kind: 'ServiceEntry',
      metadata: {
        name: `remote-${i}`,
        namespace: 'soak-istiod',
        resourceVersion: String(++this.version),
        creationTimestamp: '2026-01-01T00:00:00Z',
        ...(dubbo ? { annotations: { interface: `org.apache.dubbo.remote.Service${i}` } } : {}),
      },
      spec: {
        hosts: [dubbo ? `org.apache.dubbo.remote.service${i}` : `remote-${i}.soak-istiod.svc.cluster.local`],
        addresses: [`240.240.230.${i % 250}`],
        ports: [
          dubbo
            ? { number: 20880, name: 'tcp-dubbo', protocol: 'TCP' }
            : { number: 9090, name: 'tcp-thrift', protocol: 'TCP' },
        ],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        workloadSelector: { labels: { app: `remote-${i}`, v: String(this.version % 5) } },
      },
    };
  }

  /** One change (an update, or a replacement under a new name) pushed every `pushMs`; a disconnect every `disconnectMs`. */
  start(pushMs: number, disconnectMs: number): void {
    this.pushTimer = setInterval(() => {
      const k = rand(this.objects.length);
      const old = this.objects[k];
      if (old === undefined) return;
      // An update in place, or now and then a replacement under a new name (a delete and a create).
      const i = Number(meta(old).name.slice('remote-'.length));
      this.objects[k] = this.make(Math.random() < 0.3 ? this.next++ : i);
      this.istiod.setObjects(SE_V1, this.objects);
      this.istiod.push();
      this.pushes++;
    }, pushMs);
    this.disconnectTimer = setInterval(() => {
      this.istiod.disconnect();
      this.disconnects++;
    }, disconnectMs);
  }

  stop(): void {
    clearInterval(this.pushTimer);
    clearInterval(this.disconnectTimer);
    this.istiod.push();
  }

  /** What Breeze receives: each object through the MCP encoding and back. */
  delivered(): JsonRecord[] {
    return this.objects.map((o) => mcpToObject('ServiceEntry', decodeMcpEnvelope(objectToMcp(o))));
  }
}

// ---- faults ---------------------------------------------------------------------------------

type FaultAction = (api: FakeKubeApiServer) => void;

const FAULTS: readonly (readonly [string, FaultAction])[] = [
  [
    'envoyfilter-write-500',
    (api) => api.injectFault({ status: 500, count: 3, path: /envoyfilters/, watch: false }),
  ],
  ['throttle-429-retry-after', (api) => api.injectFault({ status: 429, count: 5, retryAfterSeconds: 1 })],
  ['watch-drop', (api) => api.dropWatches()],
  [
    'envoyfilter-write-hang',
    (api) =>
      api.injectFault({ status: 'hang', count: 2, path: /envoyfilters/, watch: false, method: 'PATCH' }),
  ],
  [
    'compaction-410',
    (api) => {
      api.compact();
      api.dropWatches();
    },
  ],
  ['lease-500', (api) => api.injectFault({ status: 500, count: 2, path: /\/leases/ })],
  [
    'list-hang-after-410',
    (api) => {
      api.compact();
      api.injectFault({ status: 'hang', count: 1, path: /\/serviceentries$/, method: 'GET', watch: false });
      api.dropWatches('serviceentries');
    },
  ],
  ['unavailable-503-retry-after', (api) => api.injectFault({ status: 503, count: 5, retryAfterSeconds: 2 })],
  [
    'watch-500',
    (api) => {
      api.injectFault({ status: 500, count: 4, watch: true });
      api.dropWatches();
    },
  ],
];

/** Injects the next fault of the cycle every `everyMs`. */
export class Faults {
  readonly injected = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private next = 0;

  constructor(private readonly api: FakeKubeApiServer) {}

  start(everyMs: number): void {
    this.timer = setInterval(() => {
      const [name, action] = FAULTS[this.next++ % FAULTS.length] ?? FAULTS[0] ?? ['none', () => undefined];
      action(this.api);
      this.injected.set(name, (this.injected.get(name) ?? 0) + 1);
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.api.clearFaults();
  }

  get total(): number {
    let n = 0;
    for (const v of this.injected.values()) n += v;
    return n;
  }
}

// ---- desired state --------------------------------------------------------------------------

/** namespace/name → content hash and spec of every EnvoyFilter. */
type Filters = Map<string, { hash: string; spec: string }>;

function filters(objects: Iterable<JsonRecord>): Filters {
  const out: Filters = new Map();
  for (const o of objects) {
    const m = o.metadata as { name: string; namespace: string; annotations?: Record<string, string> };
    out.set(`${m.namespace}/${m.name}`, {
      hash: m.annotations?.[CONTENT_HASH_ANNOTATION] ?? '',
      spec: canonicalJson(o.spec),
    });
  }
  return out;
}

export interface StateDiff {
  readonly desired: number;
  readonly actual: number;
  readonly missing: string[];
  readonly extra: string[];
  readonly different: string[];
}

/** generateAll over the fake's config (and istiod's) against Breeze's EnvoyFilters in the fake. */
export function compareState(api: FakeKubeApiServer, istiodObjects: readonly JsonRecord[]): StateDiff {
  const store = new ConfigStore(GENERATION.domain);
  for (const [apiVersion, kind] of [
    [ISTIO, 'ServiceEntry'],
    [ISTIO, 'VirtualService'],
    [ISTIO, 'DestinationRule'],
    ['redis.aeraki.io/v1alpha1', 'RedisService'],
    ['redis.aeraki.io/v1alpha1', 'RedisDestination'],
    ['v1', 'Service'],
    ['v1', 'Secret'],
  ] as const) {
    for (const o of api.list(apiVersion, kind)) store.upsert(o, 'kubernetes');
  }
  for (const o of istiodObjects) store.upsert(o, 'istiod');
  const desired = filters(generateAll(store, GENERATION).envoyFilters);
  const actual = filters(
    api
      .list('networking.istio.io/v1alpha3', 'EnvoyFilter')
      .filter(
        (o) => (o.metadata as { labels?: Record<string, string> }).labels?.[MANAGED_BY_LABEL] === 'breeze',
      ),
  );
  const missing = [...desired.keys()].filter((k) => !actual.has(k));
  const extra = [...actual.keys()].filter((k) => !desired.has(k));
  const different = [...desired].filter(([k, d]) => {
    const a = actual.get(k);
    return a !== undefined && (a.hash !== d.hash || a.spec !== d.spec);
  });
  return {
    desired: desired.size,
    actual: actual.size,
    missing,
    extra,
    different: different.map(([k]) => k),
  };
}

export function sameState(d: StateDiff): boolean {
  return d.missing.length === 0 && d.extra.length === 0 && d.different.length === 0;
}
