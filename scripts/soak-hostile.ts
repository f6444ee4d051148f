// Issue 11's attack cases for the soak run's overload phase: hostile bodies within the body limit
// (20,000-deep nesting, a 1 MiB port name, arrays 10,000 deep in a quoted field, 60,000 bad
// ports), reviews with random `request.kind.kind` (metric labels must stay bounded), and reviews
// forged straight to /validate that the API server never saw (a DELETE and an UPDATE of a
// RedisService, a CREATE of another, a DELETE of a ServiceEntry): in cluster mode they must change
// no EnvoyFilter.
import { randomBytes } from 'node:crypto';
import type { JsonRecord } from '../src/model/json.js';
import type { FakeKubeApiServer } from '../test/fakes/kube-apiserver.js';
import type { WebhookClient } from './soak-load.js';
import { percentile, round } from './soak-stats.js';

const MiB = 1024 * 1024;

export interface HostileCase {
  readonly name: string;
  readonly path: '/validate' | '/mutate';
  /** A fresh body for each send (each with its own uid). */
  readonly body: (uid: string) => string;
}

/** How the hostile senders fared, per case. */
export interface HostileStats {
  sent: number;
  /** HTTP 200 with an AdmissionReview echoing the uid. */
  inBand: number;
  /** Of those, allowed (for a forged review: what reached the recording path). */
  allowed: number;
  /** A 4xx with a message. */
  rejected: number;
  /** HTTP 500, an in-band code 500, a wrong uid, no answer, or an answer over 64 KiB. */
  bad: number;
  badSamples: string[];
  latenciesMs: number[];
  maxAnswerBytes: number;
  byCase: Record<string, { sent: number; maxMs: number; bad: number }>;
}

const review = (
  uid: string,
  kind: { group: string; version: string; kind: string },
  resource: string,
  operation: string,
  object: JsonRecord | null,
  oldObject: JsonRecord | null,
): JsonRecord => {
  const meta = ((object ?? oldObject)?.metadata ?? {}) as { name?: string; namespace?: string };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind,
      resource: { group: kind.group, version: kind.version, resource },
      name: meta.name,
      namespace: meta.namespace,
      operation,
      userInfo: { username: 'system:serviceaccount:default:attacker', groups: ['system:authenticated'] },
      object,
      oldObject,
      dryRun: false,
    },
  };
};

const SE_KIND = { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' };
const REDIS_KIND = { group: 'redis.aeraki.io', version: 'v1alpha1', kind: 'RedisService' };

function serviceEntry(name: string): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: 'hostile', annotations: { interface: 'org.example.Demo' } },
    spec: {
      hosts: [`${name}.hostile.svc.cluster.local`],
      addresses: ['240.240.250.1'],
      ports: [{ number: 20880, name: 'tcp-dubbo', protocol: 'TCP' }],
      resolution: 'STATIC',
    },
  };
}

/** JSON text of `value` with `"@@HOLE@@"` replaced by `raw`. */
function withHole(value: unknown, raw: string): string {
  const text = JSON.stringify(value);
  const at = text.indexOf('"@@HOLE@@"');
  return `${text.slice(0, at)}${raw}${text.slice(at + 10)}`;
}

/** The bodies of findings 1, 2 and 4 (never persisted: dryRun or denied or an unknown kind). */
export function hostileBodies(): HostileCase[] {
  return [
    {
      name: 'nesting 20,000 deep (managedFields)',
      path: '/validate',
      body: (uid) => {
        const se = serviceEntry('nest');
        (se.metadata as JsonRecord).managedFields = [
          { manager: 'x', fieldsType: 'FieldsV1', fieldsV1: '@@HOLE@@' },
        ];
        const r = review(uid, SE_KIND, 'serviceentries', 'CREATE', se, null);
        (r.request as JsonRecord).dryRun = true;
        return withHole(r, `${'{"f:a":'.repeat(20_000)}{}${'}'.repeat(20_000)}`);
      },
    },
    {
      name: 'arrays 10,000 deep in spec.ports',
      path: '/validate',
      body: (uid) => {
        const se = serviceEntry('arrays');
        (se.spec as JsonRecord).ports = '@@HOLE@@';
        const r = review(uid, SE_KIND, 'serviceentries', 'CREATE', se, null);
        (r.request as JsonRecord).dryRun = true;
        return withHole(r, `${'['.repeat(10_000)}${']'.repeat(10_000)}`);
      },
    },
    {
      name: '1 MiB port name',
      path: '/validate',
      body: (uid) => {
        const se = serviceEntry('portname');
        (se.spec as JsonRecord).ports = [
          { number: 20880, name: `tcp-${'dubo'.repeat(MiB / 4)}`, protocol: 'TCP' },
        ];
        const r = review(uid, SE_KIND, 'serviceentries', 'CREATE', se, null);
        (r.request as JsonRecord).dryRun = true;
        return JSON.stringify(r);
      },
    },
    {
      name: '60,000 bad ports',
      path: '/validate',
      body: (uid) => {
        const se = serviceEntry('ports');
        (se.spec as JsonRecord).ports = Array.from({ length: 60_000 }, (_, i) => ({
          number: 70_000 + i,
          name: `tcp-dubbo-${i}`,
          protocol: 'UDP',
        }));
        return JSON.stringify(review(uid, SE_KIND, 'serviceentries', 'CREATE', se, null));
      },
    },
    {
      name: 'random kind',
      path: '/validate',
      body: (uid) => {
        const kind = `K${randomBytes(10).toString('hex')}`;
        const object = {
          apiVersion: 'x.example.com/v1',
          kind,
          metadata: { name: 'x', namespace: 'hostile' },
        };
        return JSON.stringify(
          review(
            uid,
            { group: 'x.example.com', version: 'v1', kind },
            kind.toLowerCase(),
            'CREATE',
            object,
            null,
          ),
        );
      },
    },
  ];
}

/** A RedisService without auth for a host the soak serves, seeded into the fake before the forgeries. */
export function seededRedisService(host: string): JsonRecord {
  return {
    apiVersion: 'redis.aeraki.io/v1alpha1',
    kind: 'RedisService',
    metadata: { name: 'soak-hostile-redis', namespace: 'default' },
    spec: {
      host: [host],
      redis: [{ match: { key: { prefix: 'user:' } }, route: { host } }, { route: { host } }],
    },
  };
}

/**
 * Reviews the API server never sent, of objects it holds (the seeded RedisService, a Redis
 * ServiceEntry) and of one it does not: each allowed by the validators, none persisted.
 */
export function forgedReviews(
  api: FakeKubeApiServer,
  redis: JsonRecord,
  redisHost: string,
  serviceEntry: JsonRecord | undefined,
): HostileCase[] {
  const stored = (): JsonRecord =>
    api.get('redis.aeraki.io/v1alpha1', 'RedisService', 'default', 'soak-hostile-redis') ?? redis;
  const cases: HostileCase[] = [
    {
      name: 'forged DELETE of a RedisService',
      path: '/validate',
      body: (uid) => JSON.stringify(review(uid, REDIS_KIND, 'redisservices', 'DELETE', null, stored())),
    },
    {
      name: 'forged UPDATE of a RedisService (100% mirror)',
      path: '/validate',
      body: (uid) => {
        const old = stored();
        const object = structuredClone(old);
        (object.spec as JsonRecord).redis = [
          {
            route: { host: redisHost },
            mirror: [{ route: { host: redisHost }, percentage: { value: 100 } }],
          },
        ];
        return JSON.stringify(review(uid, REDIS_KIND, 'redisservices', 'UPDATE', object, old));
      },
    },
    {
      name: 'forged CREATE of a RedisService',
      path: '/validate',
      body: (uid) => {
        const object = structuredClone(redis);
        (object.metadata as JsonRecord).name = 'soak-forged-redis';
        (object.spec as JsonRecord).redis = [{ route: { host: redisHost } }];
        return JSON.stringify(review(uid, REDIS_KIND, 'redisservices', 'CREATE', object, null));
      },
    },
  ];
  if (serviceEntry !== undefined) {
    cases.push({
      name: 'forged DELETE of a ServiceEntry',
      path: '/validate',
      body: (uid) => JSON.stringify(review(uid, SE_KIND, 'serviceentries', 'DELETE', null, serviceEntry)),
    });
  }
  return cases;
}

/** Senders of hostile cases back to back (round robin), each answer checked. */
export class HostileSenders {
  readonly stats: HostileStats = {
    sent: 0,
    inBand: 0,
    allowed: 0,
    rejected: 0,
    bad: 0,
    badSamples: [],
    latenciesMs: [],
    maxAnswerBytes: 0,
    byCase: {},
  };
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private n = 0;

  constructor(
    private readonly o: {
      client: WebhookClient;
      cases: readonly HostileCase[];
      workers: number;
      /** Pause between two sends of one worker. */
      pauseMs: number;
    },
  ) {}

  start(): void {
    for (let i = 0; i < this.o.workers; i++) this.loops.push(this.loop(i));
  }

  private async loop(worker: number): Promise<void> {
    let i = worker;
    while (this.running) {
      const c = this.o.cases[i++ % this.o.cases.length];
      if (c === undefined) return;
      await this.once(c);
      await new Promise((r) => setTimeout(r, this.o.pauseMs));
    }
  }

  private async once(c: HostileCase): Promise<void> {
    const uid = `soak-hostile-${this.n++}`;
    const a = await this.o.client.post(c.path, c.body(uid), { timeoutMs: 30_000 });
    const s = this.stats;
    s.sent++;
    s.latenciesMs.push(a.ms);
    s.maxAnswerBytes = Math.max(s.maxAnswerBytes, Buffer.byteLength(a.body));
    const per = (s.byCase[c.name] ??= { sent: 0, maxMs: 0, bad: 0 });
    per.sent++;
    per.maxMs = Math.max(per.maxMs, Math.round(a.ms));
    const why = judge(a.status, a.body, uid, a.error);
    if (why === undefined) {
      if (a.status === 200) {
        s.inBand++;
        if (a.body.includes('"allowed":true')) s.allowed++;
      } else s.rejected++;
      return;
    }
    s.bad++;
    per.bad++;
    if (s.badSamples.length < 10) s.badSamples.push(`${c.name}: ${why}`);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  summary(): Record<string, unknown> {
    const s = this.stats;
    return {
      sent: s.sent,
      inBand: s.inBand,
      allowed: s.allowed,
      rejected4xx: s.rejected,
      bad: s.bad,
      badSamples: s.badSamples,
      p50Ms: round(percentile(s.latenciesMs, 50)),
      p99Ms: round(percentile(s.latenciesMs, 99)),
      maxMs: round(Math.max(0, ...s.latenciesMs)),
      maxAnswerBytes: s.maxAnswerBytes,
      byCase: s.byCase,
    };
  }
}

function judge(status: number, body: string, uid: string, error: string | undefined): string | undefined {
  if (error !== undefined) return error;
  if (Buffer.byteLength(body) >= 64 * 1024) return `an answer of ${Buffer.byteLength(body)} bytes`;
  let json: { kind?: unknown; message?: unknown; response?: { uid?: unknown; status?: { code?: unknown } } };
  try {
    json = JSON.parse(body) as typeof json;
  } catch {
    return `HTTP ${status}, no JSON`;
  }
  if (status === 200) {
    if (json.kind !== 'AdmissionReview' || json.response?.uid !== uid)
      return 'no AdmissionReview echoing the uid';
    if (json.response.status?.code === 500) return 'in-band code 500';
    return undefined;
  }
  if (status >= 400 && status < 500 && typeof json.message === 'string') return undefined;
  return `HTTP ${status}: ${body.slice(0, 120)}`;
}

/** Distinct values of the `kind` label of the admission metrics, and the size of /metrics. */
export function admissionKindLabels(metrics: string): { kinds: number; bytes: number; sample: string[] } {
  const kinds = new Set<string>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('breeze_admission')) continue;
    const m = /[{,]kind="((?:[^"\\]|\\.)*)"/.exec(line);
    if (m?.[1] !== undefined) kinds.add(m[1]);
  }
  return { kinds: kinds.size, bytes: Buffer.byteLength(metrics), sample: [...kinds].slice(0, 8) };
}
