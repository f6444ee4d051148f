// Pipeline benchmark: the time from an admission request to the EnvoyFilter written into the
// (fake) Kubernetes API, end to end through a Breeze started in-process in cluster mode with the
// default debounce. Each change is driven as the API server would: POST the review to /mutate,
// apply the returned JSONPatch, POST to /validate, persist the object (which emits the watch
// event Breeze's Kubernetes source follows). The clock stops when our own watch on EnvoyFilters
// sees the ADDED/MODIFIED event carrying that change's content. Changes are spaced out (wait for
// the EnvoyFilter, then a short random gap) so each is measured alone: the debounce coalesces bursts.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet, type ClientRequest } from 'node:http';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { startBreeze } from '../src/cli/serve.js';
import { parseServeConfig } from '../src/config/serve.js';
import { writeDevCertificates } from '../src/pki/certs.js';
import { outboundName } from '../src/protocols/shared/names.js';
import { createLogger } from '../src/telemetry/logger.js';
import { FakeKubeApiServer } from '../test/fakes/kube-apiserver.js';
import { loopbackClusterArgs } from '../test/e2e/loopback.js';

type JsonRecord = Record<string, unknown>;

export interface PipelineOptions {
  /** Measured changes; default 200. */
  readonly changes?: number;
  /** Unmeasured changes first (JIT, connections); default 5. */
  readonly warmup?: number;
  /** Seed of the gaps and of which service an update picks. */
  readonly seed?: number;
  /** Gap after each EnvoyFilter write before the next change, ms; default 50–250. */
  readonly gapMs?: readonly [number, number];
}

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
  readonly min: number;
}

export interface PipelineResult {
  readonly changes: number;
  readonly creates: number;
  readonly updates: number;
  readonly warmup: number;
  /** The debounce quiet period (`--debounce-after` default): the floor of every latency. */
  readonly debounceMs: number;
  readonly debounceMaxMs: number;
  /** Admission request → EnvoyFilter committed in the API. */
  readonly latencyMs: LatencySummary;
  /** /mutate + patch + /validate round trips, the part before the object is persisted. */
  readonly admissionMs: LatencySummary;
  readonly p99OverDebounceMs: number;
  readonly targetMs: number;
  readonly withinTarget: boolean;
  /** EnvoyFilter write requests (POST/PUT/PATCH/DELETE) Breeze sent during the measured changes. */
  readonly envoyFilterWrites: number;
  readonly changesWithOneWrite: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(xs: readonly number[]): LatencySummary {
  const s = [...xs].sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    p50: round(percentile(s, 50)),
    p90: round(percentile(s, 90)),
    p99: round(percentile(s, 99)),
    max: round(s.at(-1) ?? NaN),
    mean: round(s.reduce((a, b) => a + b, 0) / s.length),
    min: round(s[0] ?? NaN),
  };
}

/** mulberry32: a small seeded PRNG, so runs make the same choices. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface WatchEvent {
  readonly type: string;
  readonly name: string;
  /** performance.now() when the chunk holding the event arrived. */
  readonly at: number;
  readonly object: JsonRecord;
}

/** A raw watch on every EnvoyFilter (newline-delimited JSON), each event timestamped on arrival. */
class EnvoyFilterWatch {
  readonly events: WatchEvent[] = [];
  private readonly listeners = new Set<() => void>();
  private constructor(private readonly req: ClientRequest) {}

  static open(apiUrl: string): Promise<EnvoyFilterWatch> {
    return new Promise((resolve, reject) => {
      const req = httpGet(`${apiUrl}/apis/networking.istio.io/v1alpha3/envoyfilters?watch=1`, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`EnvoyFilter watch: HTTP ${res.statusCode}`));
          return;
        }
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const at = performance.now();
          buffer += chunk;
          let nl = buffer.indexOf('\n');
          while (nl >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            nl = buffer.indexOf('\n');
            if (line.trim() === '') continue;
            const e = JSON.parse(line) as { type: string; object: JsonRecord };
            const name = (e.object.metadata as { name?: string } | undefined)?.name ?? '';
            watch.events.push({ type: e.type, name, at, object: e.object });
          }
          for (const l of [...watch.listeners]) l();
        });
        resolve(watch);
      });
      const watch = new EnvoyFilterWatch(req);
      req.on('error', reject);
    });
  }

  /** The first event from index `from` on that satisfies `match`. */
  next(from: number, match: (e: WatchEvent) => boolean, timeoutMs: number): Promise<WatchEvent> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        for (let i = from; i < this.events.length; i++) {
          const e = this.events[i]!;
          if (match(e)) {
            done();
            resolve(e);
            return true;
          }
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching EnvoyFilter event within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      const listener = (): void => void check();
      this.listeners.add(listener);
      check();
    });
  }

  close(): void {
    this.req.destroy();
  }
}

/** POSTs a review over HTTPS (keep-alive, like the API server's webhook client). */
function postReview(agent: Agent, port: number, path: string, review: JsonRecord): Promise<JsonRecord> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`${path}: HTTP ${res.statusCode}: ${data}`));
          else resolve(JSON.parse(data) as JsonRecord);
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(review));
  });
}

function review(
  uid: string,
  operation: 'CREATE' | 'UPDATE',
  object: JsonRecord,
  oldObject: JsonRecord | null,
): JsonRecord {
  const meta = object.metadata as JsonRecord;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' },
      resource: { group: 'networking.istio.io', version: 'v1', resource: 'serviceentries' },
      name: meta.name,
      namespace: meta.namespace,
      operation,
      userInfo: { username: 'system:serviceaccount:ci:deployer', groups: ['system:authenticated'] },
      object,
      oldObject,
      dryRun: false,
    },
  };
}

interface Service {
  readonly name: string;
  readonly host: string;
  revision: number;
}

const NAMESPACE = 'bench';
const PORT = 20880;
const interfaceOf = (s: Service): string => `org.example.bench.Service${s.name.slice(6)}V${s.revision}`;

/** A new Dubbo ServiceEntry as a client would apply it: no addresses, no port protocol. */
function newServiceEntry(s: Service): JsonRecord {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: s.name, namespace: NAMESPACE, annotations: { interface: interfaceOf(s) } },
    spec: {
      hosts: [s.host],
      ports: [{ number: PORT, name: 'tcp-dubbo' }],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
    },
  };
}

export async function runPipelineBench(opts: PipelineOptions = {}): Promise<PipelineResult> {
  const changes = opts.changes ?? 200;
  const warmup = opts.warmup ?? 5;
  const [gapMin, gapMax] = opts.gapMs ?? [50, 250];
  const random = prng(opts.seed ?? 7);
  const dir = mkdtempSync(join(tmpdir(), 'breeze-bench-pipeline-'));
  const api = await FakeKubeApiServer.start();
  let breeze: Awaited<ReturnType<typeof startBreeze>> | undefined;
  let watch: EnvoyFilterWatch | undefined;
  let agent: Agent | undefined;
  try {
    const certs = await writeDevCertificates(dir, ['127.0.0.1']);
    agent = new Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(certs.caFile, 'utf8') });
    const env = { POD_NAME: 'bench-0', POD_NAMESPACE: 'istio-system' };
    const config = parseServeConfig(
      [...loopbackClusterArgs(certs), '--leader-elect', 'false', '--drain-delay', '0s'],
      env,
    );
    breeze = await startBreeze(config, env, {
      kubeConfig: api.kubeConfig(),
      logger: createLogger({ level: 'warn' }),
    });
    await breeze.writing; // cache synced and the initial resync done
    watch = await EnvoyFilterWatch.open(api.url);
    const port = breeze.webhookPort;

    const services: Service[] = [];
    const latencies: number[] = [];
    const admission: number[] = [];
    let creates = 0;
    let updates = 0;
    let writes = 0;
    let oneWrite = 0;
    const isWrite = (r: { method: string; path: string }): boolean =>
      r.path.includes('/envoyfilters') && r.method !== 'GET';

    for (let i = 0; i < warmup + changes; i++) {
      const measured = i >= warmup;
      const create = services.length === 0 || i % 3 === 0;
      let service: Service;
      let object: JsonRecord;
      let oldObject: JsonRecord | null = null;
      if (create) {
        const n = services.length;
        service = { name: `bench-${n}`, host: `service${n}.bench.example.org`, revision: 0 };
        services.push(service);
        object = newServiceEntry(service);
      } else {
        service = services[Math.floor(random() * services.length)]!;
        service.revision++;
        oldObject = api.get('networking.istio.io/v1', 'ServiceEntry', NAMESPACE, service.name)!;
        object = structuredClone(oldObject);
        (object.metadata as JsonRecord).annotations = { interface: interfaceOf(service) };
      }
      const iface = interfaceOf(service);
      const mark = api.requests.length;
      const fromEvent = watch.events.length;

      const t0 = performance.now();
      const mutated = await postReview(
        agent,
        port,
        '/mutate',
        review(`m-${i}`, create ? 'CREATE' : 'UPDATE', object, oldObject),
      );
      const mResponse = mutated.response as JsonRecord;
      if (mResponse.allowed !== true)
        throw new Error(`/mutate denied change ${i}: ${JSON.stringify(mResponse)}`);
      if (typeof mResponse.patch === 'string') {
        const ops = JSON.parse(Buffer.from(mResponse.patch, 'base64').toString('utf8')) as Operation[];
        object = fastJsonPatch.applyPatch(object, ops, true, false).newDocument;
      }
      const validated = await postReview(
        agent,
        port,
        '/validate',
        review(`v-${i}`, create ? 'CREATE' : 'UPDATE', object, oldObject),
      );
      const vResponse = validated.response as JsonRecord;
      if (vResponse.allowed !== true)
        throw new Error(`/validate denied change ${i}: ${JSON.stringify(vResponse)}`);
      const t1 = performance.now();
      api.put(object);

      const vip = String(((object.spec as JsonRecord).addresses as string[] | undefined)?.[0]);
      const efName = outboundName(service.host, vip, PORT);
      const needle = `"interface":"${iface}"`;
      const event = await watch.next(
        fromEvent,
        (e) =>
          e.name === efName &&
          (e.type === 'ADDED' || e.type === 'MODIFIED') &&
          JSON.stringify(e.object.spec).includes(needle),
        10_000 + config.debounceMaxMs,
      );
      await sleep(gapMin + random() * (gapMax - gapMin));
      if (!measured) continue;
      if (create) creates++;
      else updates++;
      latencies.push(event.at - t0);
      admission.push(t1 - t0);
      const w = api.requests.slice(mark).filter(isWrite).length;
      writes += w;
      if (w === 1) oneWrite++;
    }

    const latencyMs = summarize(latencies);
    const debounceMs = config.debounceAfterMs;
    const targetMs = debounceMs + 200;
    const result: PipelineResult = {
      changes,
      creates,
      updates,
      warmup,
      debounceMs,
      debounceMaxMs: config.debounceMaxMs,
      latencyMs,
      admissionMs: summarize(admission),
      p99OverDebounceMs: Math.round((latencyMs.p99 - debounceMs) * 100) / 100,
      targetMs,
      withinTarget: latencyMs.p99 <= targetMs,
      envoyFilterWrites: writes,
      changesWithOneWrite: oneWrite,
    };
    printResult(result);
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(
      new URL('./results/pipeline.json', import.meta.url),
      `${JSON.stringify({ date: new Date().toISOString(), ...result }, null, 2)}\n`,
    );
    return result;
  } finally {
    watch?.close();
    await breeze?.stop();
    agent?.destroy();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function printResult(r: PipelineResult): void {
  const f = (x: number): string => x.toFixed(1);
  console.log(
    `Pipeline benchmark: ${r.changes} changes (${r.creates} creates, ${r.updates} updates of Dubbo ServiceEntries) one at a time, admission request → EnvoyFilter written into the fake API; debounce ${r.debounceMs} ms`,
  );
  console.log(
    '| p50 ms | p90 ms | p99 ms | max ms | mean ms | p99 − debounce ms | admission p50 / p99 ms | EnvoyFilter writes |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  const l = r.latencyMs;
  console.log(
    `| ${f(l.p50)} | ${f(l.p90)} | ${f(l.p99)} | ${f(l.max)} | ${f(l.mean)} | ${f(r.p99OverDebounceMs)} | ${f(r.admissionMs.p50)} / ${f(r.admissionMs.p99)} | ${r.envoyFilterWrites} (${r.changesWithOneWrite} of ${r.changes} changes with exactly one) |`,
  );
  console.log(
    `p99 ${f(l.p99)} ms ${r.withinTarget ? '≤' : '>'} debounce + 200 ms = ${r.targetMs} ms: target ${r.withinTarget ? 'met' : 'NOT met'}`,
  );
}
