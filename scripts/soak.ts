// `npm run soak`: Breeze (`serve --mode cluster`, a child process) under mixed admission load,
// config churn, API faults and istiod disconnects for --duration; then the cluster state must
// converge to the desired state; then an overload of slow, half-sent and oversized requests must
// not stall valid ones, nor may issue 11's hostile bodies, reviews with random kinds (metric
// labels stay bounded) and forged reviews (they change no EnvoyFilter). Memory and handles come
// from Breeze's own /metrics. Writes
// bench/results/soak.json; exits 1 when an assertion fails, naming each.
//
//   npm run soak -- --duration 10m          (the default)
//   npm run soak -- --duration 1m --overload 45s
//
// Not part of `npm test`: it takes minutes and wants the machine to itself.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseGoDuration } from '../src/model/duration.js';
import { writeDevCertificates } from '../src/pki/certs.js';
import { FakeIstiod } from '../test/fakes/istiod.js';
import { FakeKubeApiServer } from '../test/fakes/kube-apiserver.js';
import { loopbackClusterArgs } from '../test/e2e/loopback.js';
import {
  buildBreeze,
  httpStatus,
  httpText,
  startBreezeProcess,
  stopBreezeProcess,
  type BreezeProcess,
} from './soak-breeze.js';
import { Churn, compareState, Faults, IstiodChurn, sameState, type StateDiff } from './soak-churn.js';
import { loadReviews, loadStream, mismatch, Paced, WebhookClient, type StreamResult } from './soak-load.js';
import {
  admissionKindLabels,
  forgedReviews,
  hostileBodies,
  HostileSenders,
  seededRedisService,
} from './soak-hostile.js';
import { Attack, OVERSIZE_BYTES, Probe, summarize } from './soak-overload.js';
import {
  median,
  metricSeries,
  metricValue,
  MiB,
  percentile,
  round,
  sampleOf,
  slope,
  windowMinima,
  type Sample,
} from './soak-stats.js';

const repo = new URL('../', import.meta.url).pathname;

/** Preloaded into Breeze with --expose-gc: SIGUSR2 runs a full collection. */
const GC_HOOK = 'data:text/javascript,process.on("SIGUSR2",()=>globalThis.gc())';

// ---- flags --------------------------------------------------------------------------------------

const FLAGS = {
  duration: { default: '10m', help: 'soak phase: load, churn, faults, disconnects' },
  warmup: {
    default: '',
    help: 'excluded from the slopes (default 20% of --duration, at least 60s for JIT and allocator warm-up, at most half)',
  },
  rate: { default: '5', help: 'churn operations per second' },
  'admission-rate': { default: '200', help: 'admission requests per second (3/4 valid, 1/4 invalid)' },
  connections: { default: '8', help: 'autocannon connections (3/4 valid stream, 1/4 invalid)' },
  slots: { default: '60', help: 'service slots the churn cycles through' },
  'fault-every': { default: '10s', help: 'one fake-API fault of the cycle this often' },
  'istiod-push-every': { default: '8s', help: 'one istiod change pushed this often' },
  'istiod-disconnect-every': { default: '30s', help: 'istiod drops every stream this often' },
  'sample-every': { default: '5s', help: '/metrics scrape interval during the soak phase' },
  'settle-timeout': { default: '3m', help: 'longest wait for the cluster state to converge' },
  overload: {
    default: '60s',
    help: 'overload phase length (0 skips it); 40s at least to see requestTimeout',
  },
  'slow-headers': { default: '300', help: 'slowloris connections (headers never finished)' },
  'silent-tcp': { default: '100', help: 'TCP connections that never start TLS' },
  'half-bodies': { default: '100', help: 'requests whose body never completes' },
  'oversize-declared': { default: '4', help: 'workers sending Content-Length: 8 MiB' },
  'oversize-chunked': { default: '2', help: 'workers streaming a chunked body past 7 MiB' },
  'max-heap-slope': { default: '1', help: 'MiB/min: heap floor slope after warm-up' },
  'max-rss-slope': { default: '3', help: 'MiB/min: RSS slope after warm-up' },
  'probe-rate': { default: '100', help: 'valid requests per second measured during the overload' },
  'max-p99': { default: '1000', help: 'ms: p99 of valid requests during the overload' },
  gc: {
    default: 'true',
    help: 'true: a full GC in Breeze (SIGUSR2, --expose-gc) before each memory sample outside the overload, so the heap series is the live set',
  },
  out: { default: 'bench/results/soak.json', help: 'report file' },
  tsx: { default: 'false', help: 'true: run src/ through tsx instead of compiling it first' },
} as const;

function usage(): string {
  return [
    'Usage: npm run soak -- [flags]',
    '',
    ...Object.entries(FLAGS).map(([k, v]) => `  --${k.padEnd(24)} ${v.help} [${v.default || 'see help'}]`),
  ].join('\n');
}

function parseFlags(argv: string[]): Record<keyof typeof FLAGS, string> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' as const }])),
      help: { type: 'boolean' as const },
    },
    strict: true,
  });
  if (values.help === true) {
    console.log(usage());
    process.exit(0);
  }
  const given = values as Record<string, string | undefined>;
  return Object.fromEntries(Object.entries(FLAGS).map(([k, v]) => [k, given[k] ?? v.default])) as Record<
    keyof typeof FLAGS,
    string
  >;
}

function ms(flag: string, text: string): number {
  const v = parseGoDuration(text);
  if (v === undefined)
    throw new Error(`--${flag}: ${JSON.stringify(text)} is not a duration such as 90s or 10m`);
  return v;
}

function num(flag: string, text: string): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${flag}: ${JSON.stringify(text)} is not a number`);
  return v;
}

const sleep = (millis: number): Promise<void> => new Promise((r) => setTimeout(r, millis));

// ---- sampling -----------------------------------------------------------------------------------

class Sampler {
  readonly samples: Sample[] = [];
  phase = 'start';
  intervalMs = 2000;
  /** Ask for a full GC before each scrape. */
  gc: (() => void) | undefined;
  failures = 0;
  last = '';
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly url: string,
    private readonly t0: number,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      await this.scrape();
      await sleep(this.intervalMs);
    }
  }

  async scrape(): Promise<Sample | undefined> {
    if (this.gc !== undefined) {
      this.gc();
      await sleep(50); // the signal's round trip; longer lets the load refill the young generation
    }
    const text = await httpText(this.url, 5000);
    if (text === undefined) {
      this.failures++;
      return undefined;
    }
    this.last = text;
    const s = sampleOf(text, (Date.now() - this.t0) / 1000, this.phase);
    this.samples.push(s);
    return s;
  }

  of(phase: string): Sample[] {
    return this.samples.filter((s) => s.phase === phase);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

// ---- assertions ---------------------------------------------------------------------------------

interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

const checks: Check[] = [];
function check(name: string, ok: boolean, detail: string): void {
  checks.push({ name, ok, detail });
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}: ${detail}`);
}

function log(line: string): void {
  console.log(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

// ---- the run ------------------------------------------------------------------------------------

async function waitConverged(
  api: FakeKubeApiServer,
  istiod: IstiodChurn,
  timeoutMs: number,
): Promise<{ ms: number; diff: StateDiff; ok: boolean }> {
  const start = Date.now();
  let diff = compareState(api, istiod.delivered());
  // Equal twice in a row, 2 s apart: not a moment between two pushes.
  let equalSince: number | undefined;
  while (Date.now() - start < timeoutMs) {
    diff = compareState(api, istiod.delivered());
    if (sameState(diff)) {
      equalSince ??= Date.now();
      if (Date.now() - equalSince >= 2000) return { ms: equalSince - start, diff, ok: true };
    } else equalSince = undefined;
    await sleep(250);
  }
  return { ms: Date.now() - start, diff, ok: false };
}

async function main(): Promise<number> {
  const f = parseFlags(process.argv.slice(2));
  const durationMs = ms('duration', f.duration);
  const warmupMs =
    f.warmup === '' ? Math.min(durationMs / 2, Math.max(60_000, durationMs * 0.2)) : ms('warmup', f.warmup);
  if (durationMs - warmupMs < 20_000)
    throw new Error(`--warmup ${f.warmup} leaves under 20 s of --duration ${f.duration} to measure`);
  const overloadMs = ms('overload', f.overload);
  const admissionRate = num('admission-rate', f['admission-rate']);
  const connections = Math.max(2, Math.round(num('connections', f.connections)));
  const maxHeapSlope = num('max-heap-slope', f['max-heap-slope']);
  const maxRssSlope = num('max-rss-slope', f['max-rss-slope']);
  const maxP99 = num('max-p99', f['max-p99']);

  const dir = mkdtempSync(join(tmpdir(), 'breeze-soak-'));
  const t0 = Date.now();
  let breeze: BreezeProcess | undefined;
  const api = await FakeKubeApiServer.start();
  const istiod = new FakeIstiod();
  await istiod.start();
  try {
    log(`scratch dir ${dir}`);
    const main = f.tsx === 'true' ? undefined : buildBreeze(join(dir, 'build'));
    log(main === undefined ? 'running src/ through tsx' : `compiled Breeze to ${main}`);
    const certs = await writeDevCertificates(join(dir, 'tls'), ['127.0.0.1']);
    const ca = readFileSync(certs.caFile, 'utf8');
    const kubeconfig = join(dir, 'kubeconfig.json');
    writeFileSync(kubeconfig, api.kubeConfig().exportConfig());

    const churn = new Churn(api, Math.round(num('slots', f.slots)));
    churn.seed();
    const remote = new IstiodChurn(istiod);

    breeze = await startBreezeProcess({
      main,
      args: [
        'serve',
        ...loopbackClusterArgs(certs),
        '--kubeconfig',
        kubeconfig,
        '--sources',
        'kubernetes,istiod',
        '--istiod-address',
        istiod.address,
        // The churn includes Kafka services, and the desired state is generated with every protocol.
        '--protocols',
        'dubbo,thrift,redis,kafka,zookeeper',
        '--log-level',
        'info',
      ],
      node: f.gc === 'true' ? ['--expose-gc', '--import', GC_HOOK] : [],
      env: {
        POD_NAME: 'breeze-soak-0',
        POD_NAMESPACE: 'istio-system',
        POD_SERVICE_ACCOUNT: 'breeze',
        POD_IP: '127.0.0.1',
      },
    });
    const b = breeze;
    const health = `http://127.0.0.1:${b.healthPort}`;
    log(`breeze pid ${b.child.pid}: webhook ${b.webhookPort}, health ${b.healthPort}`);
    const readyBy = Date.now() + 60_000;
    while ((await httpStatus(`${health}/readyz`)) !== 200) {
      if (Date.now() > readyBy) throw new Error('Breeze not ready within 60 s');
      await sleep(200);
    }
    const sampler = new Sampler(`${health}/metrics`, t0);
    const gc = f.gc === 'true' ? (): void => void b.child.kill('SIGUSR2') : undefined;
    sampler.gc = gc;
    const initial = await waitConverged(api, remote, 60_000);
    log(`initial state: ${initial.diff.desired} EnvoyFilters, converged ${initial.ok} in ${initial.ms} ms`);
    check(
      'initial state converges',
      initial.ok,
      `${initial.diff.actual}/${initial.diff.desired} EnvoyFilters in ${initial.ms} ms`,
    );

    // ---- preflight: every review once, verified TLS, decision as the fixture says ----
    const reviews = loadReviews();
    const client = new WebhookClient(b.webhookPort, ca, 8);
    const preflight: string[] = [];
    for (const r of reviews) {
      const a = await client.post(r.path, r.body, { contentType: r.contentType });
      const why = a.error ?? mismatch(r.expect, a.status, a.body);
      if (why !== undefined) preflight.push(`${r.name}: ${why}`);
    }
    const valid = reviews.filter((r) => r.valid);
    const invalid = reviews.filter((r) => !r.valid);
    const malformed = invalid.filter((r) => r.name.startsWith('malformed/'));
    const wellFormedInvalid = invalid.filter((r) => !r.name.startsWith('malformed/'));
    check(
      'preflight: every review answered as its fixture expects',
      preflight.length === 0,
      preflight.length === 0
        ? `${reviews.length} reviews (${valid.length} valid, ${invalid.length} invalid)`
        : preflight.slice(0, 5).join('; '),
    );

    // ---- soak ----
    sampler.phase = 'soak';
    sampler.intervalMs = ms('sample-every', f['sample-every']);
    const soakStart = Date.now();
    log(
      `soak for ${f.duration}: ${admissionRate} admission req/s, ${f.rate} churn ops/s, a fault every ${f['fault-every']}, istiod disconnect every ${f['istiod-disconnect-every']}`,
    );
    const validConns = Math.max(1, Math.round((connections * 3) / 4));
    const streams = [
      loadStream({
        name: 'valid',
        port: b.webhookPort,
        reviews: valid,
        connections: validConns,
        rate: Math.max(1, Math.round((admissionRate * 3) / 4)),
        durationS: Math.round(durationMs / 1000),
      }),
      loadStream({
        name: 'invalid',
        port: b.webhookPort,
        reviews: wellFormedInvalid,
        connections: Math.max(1, connections - validConns),
        rate: Math.max(1, Math.round(admissionRate / 4)),
        durationS: Math.round(durationMs / 1000),
      }),
    ];
    // Bodies that are no request at all: the server answers and closes, so one connection each.
    const malformedLoop = new Paced(client, malformed, 2, true);
    malformedLoop.start();
    churn.start(client, num('rate', f.rate));
    const faults = new Faults(api);
    faults.start(ms('fault-every', f['fault-every']));
    remote.start(
      ms('istiod-push-every', f['istiod-push-every']),
      ms('istiod-disconnect-every', f['istiod-disconnect-every']),
    );
    const progress = setInterval(() => {
      const s = sampler.samples.at(-1);
      log(
        `t+${Math.round((Date.now() - soakStart) / 1000)}s churn ${churn.stats.ops} ops, faults ${faults.total}, istiod disconnects ${remote.disconnects}` +
          (s === undefined
            ? ''
            : `; breeze rss ${round(s.rss / MiB, 1)} MiB heap ${round(s.heapUsed / MiB, 1)} MiB handles ${s.handles}`),
      );
    }, 30_000);
    const [validResult, invalidResult] = (await Promise.all(streams.map((s) => s.done))) as [
      StreamResult,
      StreamResult,
    ];
    clearInterval(progress);
    const soakMs = Date.now() - soakStart;
    const malformedResult = await malformedLoop.stop();
    await churn.stop();
    faults.stop();
    remote.stop();
    log(`soak done after ${Math.round(soakMs / 1000)} s; settling`);

    // ---- settle ----
    sampler.phase = 'settle';
    sampler.intervalMs = 2000;
    const settled = await waitConverged(api, remote, ms('settle-timeout', f['settle-timeout']));
    const d = settled.diff;
    check(
      'cluster state equals the desired state after churn and faults stop',
      settled.ok,
      settled.ok
        ? `${d.actual} EnvoyFilters, converged ${round(settled.ms / 1000, 1)} s after the churn stopped`
        : `after ${round(settled.ms / 1000)} s: ${d.missing.length} missing, ${d.extra.length} extra, ${d.different.length} different (e.g. ${[...d.missing, ...d.extra, ...d.different].slice(0, 4).join(', ')})`,
    );
    await sleep(4000);
    const afterSettle = sampler.samples.at(-1);

    // ---- overload ----
    let overload: Record<string, unknown> | undefined;
    if (overloadMs > 0) {
      log(`overload for ${f.overload}`);
      sampler.phase = 'overload-baseline';
      sampler.gc = undefined; // the overload's memory as it comes, no forced collections
      // Issue 11: a RedisService the forged reviews below pretend to delete and rewrite.
      const redisSe = api
        .list('networking.istio.io/v1', 'ServiceEntry')
        .find((o) => JSON.stringify(o.spec).includes('"tcp-redis"'));
      const redisHost =
        (redisSe?.spec as { hosts?: string[] } | undefined)?.hosts?.[0] ?? 'redis.default.svc.cluster.local';
      const seeded = seededRedisService(redisHost);
      api.put(seeded);
      const seededConverged = await waitConverged(api, remote, 60_000);
      log(
        `seeded RedisService for ${redisHost}: converged ${seededConverged.ok} in ${seededConverged.ms} ms`,
      );
      const otherSe = api
        .list('networking.istio.io/v1', 'ServiceEntry')
        .find((o) => o !== redisSe && JSON.stringify(o.spec).includes('"tcp-'));
      const probe = new Probe(
        new WebhookClient(b.webhookPort, ca, 4),
        valid,
        num('probe-rate', f['probe-rate']),
        4,
      );
      probe.start();
      const baseStart = Date.now();
      await sleep(5000);
      const baseEnd = Date.now();
      sampler.phase = 'overload';
      const attack = new Attack({
        port: b.webhookPort,
        ca,
        slowHeaders: num('slow-headers', f['slow-headers']),
        silentTcp: num('silent-tcp', f['silent-tcp']),
        halfBodies: num('half-bodies', f['half-bodies']),
        oversizeDeclared: num('oversize-declared', f['oversize-declared']),
        oversizeChunked: num('oversize-chunked', f['oversize-chunked']),
      });
      // Issue 11: hostile bodies, random kinds and forged reviews, alongside the connection attacks.
      const hostileClient = new WebhookClient(b.webhookPort, ca, 4);
      const writesFrom = api.requests.length;
      const hostile = new HostileSenders({
        client: hostileClient,
        cases: hostileBodies(),
        workers: 1,
        pauseMs: 100,
      });
      const randomKinds = new HostileSenders({
        client: hostileClient,
        cases: hostileBodies().filter((c) => c.name === 'random kind'),
        workers: 2,
        pauseMs: 5,
      });
      const forged = new HostileSenders({
        client: hostileClient,
        cases: forgedReviews(api, seeded, redisHost, otherSe),
        workers: 1,
        pauseMs: 250,
      });
      attack.start();
      hostile.start();
      randomKinds.start();
      forged.start();
      const attackStart = Date.now();
      await sleep(overloadMs);
      const attackEnd = Date.now();
      await Promise.all([hostile.stop(), randomKinds.stop(), forged.stop()]);
      hostileClient.close();
      // headersTimeout 10 s, handshakeTimeout 10 s, requestTimeout 30 s, each checked every 2 s
      // (connectionsCheckingInterval) at worst, plus 3 s for a busy machine.
      const bounds = { headersMs: 15_000, handshakeMs: 13_000, bodyMs: 35_000 };
      await attack.stop(bounds);
      sampler.phase = 'overload-recovery';
      await sleep(10_000);
      const probeResult = await probe.stop();
      await sleep(5000);
      sampler.phase = 'after-overload';
      sampler.gc = gc;
      await sleep(4000);
      const during = probe.between(attackStart, attackEnd);
      const baseline = probe.between(baseStart, baseEnd);
      const attacked = sampler.of('overload');
      const peakRss = Math.max(...attacked.map((s) => s.rss));
      const peakHeap = Math.max(...attacked.map((s) => s.heapUsed));
      const peakHandles = Math.max(...attacked.map((s) => s.handles));
      const preRss = afterSettle?.rss ?? NaN;
      const holders =
        num('slow-headers', f['slow-headers']) +
        num('silent-tcp', f['silent-tcp']) +
        num('half-bodies', f['half-bodies']);
      const oversizers =
        num('oversize-declared', f['oversize-declared']) + num('oversize-chunked', f['oversize-chunked']);
      // Per held connection: socket, TLS state and HTTP parser, well under 64 KiB. Per oversized
      // body in flight: the webhook buffers at most the 7 MiB limit, counted twice (chunks + concat).
      // Plus 64 MiB for the young generation and allocator slack.
      const rssBound = preRss + holders * 64 * 1024 + oversizers * 2 * 7 * MiB + 64 * MiB;
      const after = sampler.of('after-overload').at(-1);
      const p99 = percentile(during, 99);
      overload = {
        durationS: round(overloadMs / 1000, 0),
        probe: {
          requests: probeResult.requests,
          failures: probeResult.failures,
          failureSamples: probeResult.failureSamples,
          baselineP50Ms: round(percentile(baseline, 50)),
          baselineP99Ms: round(percentile(baseline, 99)),
          duringP50Ms: round(percentile(during, 50)),
          duringP99Ms: round(p99),
          duringMaxMs: round(Math.max(0, ...during)),
          duringRequests: during.length,
        },
        slowHeaders: summarize(attack.slowHeaders.stats, bounds.headersMs),
        silentTcp: summarize(attack.silentTcp.stats, bounds.handshakeMs),
        halfBodies: summarize(attack.halfBodies.stats, bounds.bodyMs),
        oversizeDeclared: oversizeSummary(attack.declared.stats),
        oversizeChunked: oversizeSummary(attack.chunked.stats),
        memory: {
          preRssMiB: round(preRss / MiB, 1),
          peakRssMiB: round(peakRss / MiB, 1),
          rssBoundMiB: round(rssBound / MiB, 1),
          rssBoundRule: `pre-overload RSS + ${holders} held connections x 64 KiB + ${oversizers} oversized bodies x 2 x 7 MiB + 64 MiB`,
          peakHeapMiB: round(peakHeap / MiB, 1),
          afterRssMiB: round((after?.rss ?? NaN) / MiB, 1),
          afterHeapMiB: round((after?.heapUsed ?? NaN) / MiB, 1),
        },
        handles: { pre: afterSettle?.handles, peak: peakHandles, after: after?.handles },
      };
      check(
        'overload: no failed valid request',
        probeResult.failures === 0,
        `${probeResult.requests} requests, ${probeResult.failures} failed${probeResult.failureSamples.length > 0 ? ` (${probeResult.failureSamples.slice(0, 3).join('; ')})` : ''}`,
      );
      check(
        'overload: valid-request p99 bounded',
        during.length > 0 && p99 <= maxP99,
        `p99 ${round(p99)} ms under attack (limit ${maxP99} ms; baseline p99 ${round(percentile(baseline, 99))} ms), ${during.length} requests`,
      );
      for (const [label, stats, bound] of [
        ['slowloris headers closed by headersTimeout', attack.slowHeaders.stats, bounds.headersMs],
        ['silent TCP closed by handshakeTimeout', attack.silentTcp.stats, bounds.handshakeMs],
        ['half-sent bodies closed by requestTimeout', attack.halfBodies.stats, bounds.bodyMs],
      ] as const) {
        const over = stats.lifetimesMs.filter((x) => x > bound).length + stats.overdueAtEnd;
        check(
          `overload: ${label}`,
          stats.closedByServer > 0 && over === 0,
          `${stats.closedByServer} closed by the server, max lifetime ${round(Math.max(0, ...stats.lifetimesMs) / 1000, 1)} s (bound ${bound / 1000} s), ${over} over the bound`,
        );
      }
      for (const [label, s, limitMs] of [
        ['declared oversized bodies answered 413 at once', attack.declared.stats, 2000],
        ['chunked oversized bodies cut off at the limit', attack.chunked.stats, 5000],
      ] as const) {
        const other = Object.values(s.otherAnswers).reduce((a, x) => a + x, 0);
        const p = percentile(s.timesMs, 99);
        check(
          `overload: ${label}`,
          s.rejected + s.resetAfterLimit > 0 && other === 0 && s.unanswered === 0 && p <= limitMs,
          `${s.rejected}/${s.attempts} answered 413, ${s.resetAfterLimit} reset after the limit, ${other} other answers, ${s.unanswered} unanswered, p99 ${round(p)} ms (limit ${limitMs} ms)`,
        );
      }
      check(
        'overload: memory bounded',
        peakRss <= rssBound,
        `peak RSS ${round(peakRss / MiB, 1)} MiB <= ${round(rssBound / MiB, 1)} MiB (pre-overload ${round(preRss / MiB, 1)} MiB); after ${round((after?.rss ?? NaN) / MiB, 1)} MiB`,
      );
      // Issue 11's cases: answered in-band (or 4xx), labels bounded, forgeries change nothing.
      const hs = hostile.stats;
      check(
        'overload: hostile bodies (deep nesting, long port names, bad ports) answered in-band, never a 500',
        hs.sent > 0 && hs.bad === 0,
        `${hs.sent} sent, ${hs.inBand} in-band, ${hs.rejected} 4xx, ${hs.bad} bad, p99 ${round(percentile(hs.latenciesMs, 99))} ms, max ${round(Math.max(0, ...hs.latenciesMs))} ms, largest answer ${hs.maxAnswerBytes} bytes${hs.badSamples.length > 0 ? ` (${hs.badSamples.slice(0, 3).join('; ')})` : ''}`,
      );
      const metricsNow = (await httpText(`${health}/metrics`, 10_000)) ?? '';
      const labels = admissionKindLabels(metricsNow);
      check(
        'overload: metric labels bounded after reviews with random kinds',
        metricsNow !== '' && labels.kinds <= 10 && labels.bytes < 256 * 1024,
        `${randomKinds.stats.sent} random kinds sent; ${labels.kinds} kind label values (${labels.sample.join(', ')}), /metrics ${labels.bytes} bytes`,
      );
      const forgedWrites = api.requests
        .slice(writesFrom)
        .filter(
          (r) =>
            r.path.startsWith('/apis/networking.istio.io/v1alpha3/') &&
            r.path.includes('/envoyfilters') &&
            r.method !== 'GET',
        );
      const afterForged = compareState(api, remote.delivered());
      const fs = forged.stats;
      check(
        'overload: forged reviews (never persisted) change no EnvoyFilter',
        fs.sent > 0 && forgedWrites.length === 0 && sameState(afterForged),
        `${fs.sent} forged reviews (${Object.keys(fs.byCase).join(', ')}), ${fs.allowed} allowed; ${forgedWrites.length} EnvoyFilter writes during and after them; state ${sameState(afterForged) ? 'equals the API server' : `differs: ${[...afterForged.missing, ...afterForged.extra, ...afterForged.different].slice(0, 3).join(', ')}`}`,
      );
      overload.hostile = {
        bodies: hostile.summary(),
        randomKinds: { ...randomKinds.summary(), kindLabelValues: labels.kinds, metricsBytes: labels.bytes },
        forged: {
          ...forged.summary(),
          envoyFilterWrites: forgedWrites.length,
          sameState: sameState(afterForged),
        },
        seededRedisConverged: seededConverged.ok,
      };
      const handleMargin = 5 + Math.ceil((afterSettle?.handles ?? 0) * 0.1);
      check(
        'overload: handles back to the pre-overload level',
        after !== undefined &&
          afterSettle !== undefined &&
          after.handles <= afterSettle.handles + handleMargin,
        `pre ${afterSettle?.handles}, peak ${peakHandles}, after ${after?.handles} (margin ${handleMargin})`,
      );
    }
    client.close();

    // ---- memory and handles over the soak ----
    const soakSamples = sampler.of('soak');
    const warmEnd = (soakStart - t0 + warmupMs) / 1000;
    const steady = soakSamples.filter((s) => s.t >= warmEnd);
    // Slopes in MiB per minute, time in seconds.
    const perMin = (pts: [number, number][]): number => slope(pts) * 60;
    const heapPts = steady.map((s): [number, number] => [s.t, s.heapUsed / MiB]);
    const rssPts = steady.map((s): [number, number] => [s.t, s.rss / MiB]);
    const span = (steady.at(-1)?.t ?? 0) - (steady[0]?.t ?? 0);
    const windowS = Math.max(15, Math.min(60, span / 8));
    // The minimum of each window: with a full GC before each scrape, the live heap (the load
    // still allocates a little between the GC and the scrape); without, the heap after the
    // collections that happened to run in that window.
    const heapFloor = windowMinima(heapPts, windowS);
    const heapSlope = perMin(heapFloor);
    const heapRawSlope = perMin(heapPts);
    const rssSlope = perMin(rssPts);
    const window30 = (from: number, to: number): Sample[] => steady.filter((s) => s.t >= from && s.t < to);
    const first = steady[0]?.t ?? 0;
    const last = steady.at(-1)?.t ?? 0;
    const startWin = window30(first, first + 30);
    const endWin = window30(last - 30, last + 1);
    const handlesStart = median(startWin.map((s) => s.handles));
    const handlesEnd = median(endWin.map((s) => s.handles));
    const handleMargin = 5 + Math.ceil(handlesStart * 0.1);
    const heapGrowth = (heapFloor.at(-1)?.[1] ?? NaN) - (heapFloor[0]?.[1] ?? NaN);
    const rssGrowth = median(endWin.map((s) => s.rss)) / MiB - median(startWin.map((s) => s.rss)) / MiB;

    check(
      'no failed valid admission request (load)',
      validResult.errors + validResult.timeouts + validResult.mismatches === 0 && validResult.responses > 0,
      `${validResult.responses} answered, ${validResult.errors} errors, ${validResult.timeouts} timeouts, ${validResult.mismatches} wrong answers${fmtSamples(validResult.mismatchSamples)}`,
    );
    check(
      'no failed valid admission request (churn reviews)',
      churn.stats.admissionFailures === 0,
      `${churn.stats.admissions} reviews, ${churn.stats.admissionFailures} not allowed or failed${churn.stats.admissionFailureSamples.length > 0 ? ` (${churn.stats.admissionFailureSamples.slice(0, 3).join('; ')})` : ''}`,
    );
    check(
      'invalid admission requests answered as expected',
      invalidResult.errors + invalidResult.timeouts + invalidResult.mismatches === 0 &&
        invalidResult.responses > 0,
      `${invalidResult.responses} answered, ${invalidResult.errors} errors, ${invalidResult.timeouts} timeouts, ${invalidResult.mismatches} wrong answers${fmtSamples(invalidResult.mismatchSamples)}`,
    );
    check(
      'malformed bodies answered 400/415',
      malformedResult.failures === 0 && malformedResult.requests > 0,
      `${malformedResult.requests} sent, ${malformedResult.failures} not answered as expected${malformedResult.failureSamples.length > 0 ? ` (${malformedResult.failureSamples.slice(0, 2).join('; ')})` : ''}`,
    );
    check(
      `heap flat after warm-up (floor slope <= ${maxHeapSlope} MiB/min)`,
      heapFloor.length >= 2 && heapSlope <= maxHeapSlope,
      `${round(heapSlope, 3)} MiB/min over ${heapFloor.length} windows of ${round(windowS, 0)} s${gc !== undefined ? ' (full GC before each sample)' : ''}, all samples ${round(heapRawSlope, 3)} MiB/min, growth ${round(heapGrowth, 1)} MiB`,
    );
    check(
      `RSS flat after warm-up (slope <= ${maxRssSlope} MiB/min)`,
      rssPts.length >= 2 && rssSlope <= maxRssSlope,
      `${round(rssSlope, 3)} MiB/min over ${rssPts.length} samples, growth ${round(rssGrowth, 1)} MiB`,
    );
    check(
      'no growth of open handles',
      handlesEnd <= handlesStart + handleMargin,
      `after warm-up ${handlesStart}, at the end ${handlesEnd} (margin ${handleMargin})`,
    );
    const internalErrors = metricValue(sampler.last, 'breeze_admission_internal_errors_total') ?? NaN;
    check(
      'no internal errors in Breeze',
      internalErrors === 0,
      `breeze_admission_internal_errors_total ${internalErrors}`,
    );
    check(
      '/metrics always answered',
      sampler.failures === 0,
      `${sampler.samples.length} scrapes, ${sampler.failures} failed`,
    );
    check('Breeze stayed up', b.exitCode() === undefined, `exit code ${String(b.exitCode())}`);

    await sampler.stop();
    const lastMetrics = sampler.last;
    const stopped = await stopBreezeProcess(b, 30_000);
    check(
      'clean shutdown on SIGTERM',
      stopped.code === 0 && !stopped.killed,
      `exit ${String(stopped.code)} after ${round(stopped.ms / 1000, 1)} s${stopped.killed ? ' (killed)' : ''}`,
    );

    const failed = checks.filter((c) => !c.ok);
    const report = {
      date: new Date().toISOString(),
      node: process.version,
      flags: f,
      passed: failed.length === 0,
      failed: failed.map((c) => `${c.name}: ${c.detail}`),
      durations: {
        soakS: round(soakMs / 1000, 1),
        warmupS: round(warmupMs / 1000, 1),
        convergenceS: round(settled.ms / 1000, 1),
        totalS: round((Date.now() - t0) / 1000, 1),
      },
      admission: {
        reqPerSec: round(
          validResult.reqPerSec + invalidResult.reqPerSec + malformedResult.requests / (soakMs / 1000),
          1,
        ),
        valid: validResult,
        invalid: invalidResult,
        malformed: malformedResult,
        reviews: { valid: valid.length, invalid: invalid.length },
      },
      churn: { ...churn.stats, ratePerSec: num('rate', f.rate), slots: num('slots', f.slots) },
      faults: Object.fromEntries(faults.injected),
      faultsTotal: faults.total,
      istiod: { pushes: remote.pushes, disconnects: remote.disconnects, streamsOpened: istiod.streamsOpened },
      convergence: { ok: settled.ok, seconds: round(settled.ms / 1000, 1), ...summaryDiff(settled.diff) },
      memory: {
        heapFloorSlopeMiBPerMin: round(heapSlope, 3),
        heapRawSlopeMiBPerMin: round(heapRawSlope, 3),
        heapFloorGrowthMiB: round(heapGrowth, 1),
        rssSlopeMiBPerMin: round(rssSlope, 3),
        rssGrowthMiB: round(rssGrowth, 1),
        thresholds: { heapMiBPerMin: maxHeapSlope, rssMiBPerMin: maxRssSlope },
        heapFloorWindows: heapFloor.map(([t, y]) => [round(t, 1), round(y, 1)]),
      },
      handles: { afterWarmup: handlesStart, end: handlesEnd, margin: handleMargin },
      overload,
      breeze: {
        reconcileWrites: metricSeries(lastMetrics, 'breeze_reconcile_writes_total'),
        pushes: metricSeries(lastMetrics, 'breeze_push_total'),
        leaderAcquisitions: metricValue(lastMetrics, 'breeze_leader_acquisitions_total'),
        unconfirmedDropped: metricValue(lastMetrics, 'breeze_cache_admission_unconfirmed_dropped_total'),
        cpuSeconds: metricValue(lastMetrics, 'process_cpu_seconds_total'),
        logs: Object.fromEntries([...b.logs].sort(([a], [z]) => (a < z ? -1 : 1))),
        problems: b.problems,
        shutdown: stopped,
      },
      fakeApi: { requests: api.requestsTo('/').length },
      samples: sampler.samples.map((s) => ({
        t: round(s.t, 1),
        phase: s.phase,
        rssMiB: round(s.rss / MiB, 1),
        heapMiB: round(s.heapUsed / MiB, 1),
        handles: s.handles,
        fds: s.fds,
        lagP99Ms: round(s.lagP99 * 1000, 1),
      })),
    };
    const out = resolve(repo, f.out);
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    printSummary(report);
    log(`report written to ${f.out}`);
    if (failed.length > 0) {
      console.log(`\nSOAK FAILED: ${failed.length} assertion(s)`);
      for (const c of failed) console.log(`  - ${c.name}: ${c.detail}`);
      return 1;
    }
    console.log('\nSOAK PASSED');
    return 0;
  } finally {
    if (breeze !== undefined && breeze.exitCode() === undefined) breeze.child.kill('SIGKILL');
    await istiod.stop();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function oversizeSummary(s: {
  attempts: number;
  rejected: number;
  otherAnswers: Record<string, number>;
  unanswered: number;
  timesMs: number[];
  bytesAtAnswer: number[];
}): Record<string, unknown> {
  return {
    bodyBytes: OVERSIZE_BYTES,
    attempts: s.attempts,
    rejected413: s.rejected,
    otherAnswers: s.otherAnswers,
    unanswered: s.unanswered,
    answerP50Ms: round(percentile(s.timesMs, 50)),
    answerP99Ms: round(percentile(s.timesMs, 99)),
    ...(s.bytesAtAnswer.length > 0 ? { bytesSentAt413P50: percentile(s.bytesAtAnswer, 50) } : {}),
  };
}

function summaryDiff(d: StateDiff): Record<string, unknown> {
  return {
    desired: d.desired,
    actual: d.actual,
    missing: d.missing.slice(0, 10),
    extra: d.extra.slice(0, 10),
    different: d.different.slice(0, 10),
  };
}

function fmtSamples(samples: Record<string, string>): string {
  const e = Object.entries(samples);
  return e.length === 0
    ? ''
    : ` (${e
        .slice(0, 3)
        .map(([k, v]) => `${k}: ${v}`)
        .join('; ')})`;
}

function printSummary(r: {
  durations: Record<string, number>;
  admission: { reqPerSec: number; valid: StreamResult; invalid: StreamResult };
  churn: { ops: number };
  faultsTotal: number;
  istiod: { disconnects: number };
  memory: Record<string, unknown>;
  handles: Record<string, number>;
  overload: Record<string, unknown> | undefined;
}): void {
  console.log('\nSoak summary');
  console.log(
    `  soak ${r.durations.soakS} s (warm-up ${r.durations.warmupS} s), converged ${r.durations.convergenceS} s after churn stopped, total ${r.durations.totalS} s`,
  );
  console.log(
    `  admission ${r.admission.reqPerSec} req/s: valid ${r.admission.valid.responses} (p99 ${r.admission.valid.latencyP99Ms} ms), invalid ${r.admission.invalid.responses} (p99 ${r.admission.invalid.latencyP99Ms} ms)`,
  );
  console.log(
    `  churn ${r.churn.ops} ops, faults ${r.faultsTotal}, istiod disconnects ${r.istiod.disconnects}`,
  );
  console.log(
    `  heap floor slope ${String(r.memory.heapFloorSlopeMiBPerMin)} MiB/min (growth ${String(r.memory.heapFloorGrowthMiB)} MiB), RSS slope ${String(r.memory.rssSlopeMiBPerMin)} MiB/min (growth ${String(r.memory.rssGrowthMiB)} MiB)`,
  );
  console.log(`  handles after warm-up ${r.handles.afterWarmup}, at the end ${r.handles.end}`);
  const o = r.overload as
    | { probe: Record<string, number>; memory: Record<string, number>; handles: Record<string, number> }
    | undefined;
  if (o !== undefined) {
    console.log(
      `  overload: valid p99 ${o.probe.duringP99Ms} ms (baseline ${o.probe.baselineP99Ms} ms), ${o.probe.failures} failed of ${o.probe.requests}; RSS ${o.memory.preRssMiB} -> peak ${o.memory.peakRssMiB} MiB (bound ${o.memory.rssBoundMiB}); handles peak ${o.handles.peak}, after ${o.handles.after}`,
    );
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('soak run aborted:', err);
    process.exit(2);
  },
);
