// Admission benchmark (issue 14): the real `breeze serve` process, as a user runs it, against a
// bare node:https server, each in its own process, with the load generator (autocannon) in this
// third process. Breeze is compiled with tsc and started as `node dist/cli/main.js serve --mode
// local --log-level warn` over a config dir of a few services (Dubbo, Thrift, Redis with its
// RedisService/RedisDestination, ZooKeeper); both servers use the same certificate. The body is a
// realistic review: a ServiceEntry with a Dubbo and a Redis port and a kubectl last-applied
// annotation. Rounds alternate bare / Breeze /validate / Breeze /mutate (and the webhook app
// alone, in its own process, to locate a gap), 16 keep-alive connections each; the result is the
// median of the per-round ratios, every round listed, then p99 at a fixed 1,000 req/s.
//
// `--cpu-prof DIR` (bench/run.ts) starts Breeze under `node --cpu-prof` and prints the profile's
// top self-time items (bench/profile-top.ts) after the rounds.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { writeDevCertificates } from '../src/pki/certs.js';
import {
  buildBreeze,
  startBreezeProcess,
  stopBreezeProcess,
  type BreezeProcess,
} from '../scripts/soak-breeze.js';
import { loopbackArgs } from '../test/e2e/loopback.js';
import { formatTop, topSelfTime } from './profile-top.js';

const repo = new URL('../', import.meta.url).pathname;

export interface LoadResult {
  readonly rps: number;
  /** Server CPU ms per 1,000 answered requests (Linux; undefined elsewhere). */
  readonly cpuPer1k?: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly non2xx: number;
}

/** A ServiceEntry review of about 3 KB (a Dubbo service with several ports and endpoints). */
export function sampleReview(): string {
  const endpoints = Array.from({ length: 12 }, (_, i) => ({
    address: `10.244.${i}.${10 + i}`,
    labels: { app: 'dubbo-sample-provider', version: i % 2 === 0 ? 'v1' : 'v2', zone: `zone-${i % 3}` },
    ports: { 'tcp-dubbo': 20880 },
  }));
  return review('dubbo-demoservice', 'dubbo', {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: {
      name: 'dubbo-demoservice',
      namespace: 'dubbo',
      labels: { app: 'dubbo-sample-provider', team: 'payments', 'app.kubernetes.io/managed-by': 'argocd' },
      annotations: {
        interface: 'org.apache.dubbo.samples.basic.api.DemoService',
        owner: 'payments-team@example.com',
      },
    },
    spec: {
      hosts: ['org.apache.dubbo.samples.basic.api.demoservice'],
      ports: [
        { number: 20880, name: 'tcp-dubbo' },
        { number: 8080, name: 'http-admin', protocol: 'HTTP' },
      ],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      endpoints,
    },
  });
}

function review(name: string, namespace: string, object: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' },
      resource: { group: 'networking.istio.io', version: 'v1', resource: 'serviceentries' },
      requestKind: { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' },
      requestResource: { group: 'networking.istio.io', version: 'v1', resource: 'serviceentries' },
      name,
      namespace,
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:ci:deployer',
        uid: '9d4c1a52-8f5e-4f0b-a3a6-1c2d3e4f5a6b',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:ci', 'system:authenticated'],
      },
      object,
      oldObject: null,
      dryRun: false,
      options: {
        apiVersion: 'meta.k8s.io/v1',
        kind: 'CreateOptions',
        fieldManager: 'kubectl-client-side-apply',
      },
    },
  });
}

/**
 * The issue's review: a ServiceEntry of about 1.6 KB with a Dubbo and a Redis port, plus a
 * kubectl.kubernetes.io/last-applied-configuration annotation of about 1.2 KB (what `kubectl
 * apply` sends), as a CREATE that Breeze allows.
 */
export function realisticReview(): string {
  const spec = {
    hosts: ['org.apache.dubbo.samples.orders.api.orderservice', 'orders-cache.shop.svc.cluster.local'],
    ports: [
      { number: 20880, name: 'tcp-dubbo', protocol: 'TCP', targetPort: 20880 },
      { number: 6379, name: 'tcp-redis', protocol: 'TCP', targetPort: 6379 },
    ],
    location: 'MESH_INTERNAL',
    resolution: 'STATIC',
    endpoints: Array.from({ length: 4 }, (_, i) => ({
      address: `10.244.${i + 1}.${20 + i}`,
      labels: { app: 'orders', version: i % 2 === 0 ? 'v1' : 'v2' },
      ports: { 'tcp-dubbo': 20880, 'tcp-redis': 6379 },
    })),
  };
  const labels = { app: 'orders', team: 'shop', 'app.kubernetes.io/part-of': 'shop' };
  const annotations = {
    interface: 'org.apache.dubbo.samples.orders.api.OrderService',
    owner: 'shop-team@example.com',
  };
  const applied = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { annotations, labels, name: 'orders', namespace: 'shop' },
    spec,
  };
  return review('orders', 'shop', {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: {
      name: 'orders',
      namespace: 'shop',
      uid: '2f0c7e1a-5b3d-4c6e-9f8a-0b1c2d3e4f50',
      creationTimestamp: '2026-11-30T09:12:44Z',
      generation: 1,
      labels,
      annotations: {
        ...annotations,
        'kubectl.kubernetes.io/last-applied-configuration': `${JSON.stringify(applied)}\n`,
      },
      managedFields: [
        {
          manager: 'kubectl-client-side-apply',
          operation: 'Update',
          apiVersion: 'networking.istio.io/v1',
          time: '2026-11-30T09:12:44Z',
          fieldsType: 'FieldsV1',
          fieldsV1: { 'f:metadata': { 'f:labels': {}, 'f:annotations': {} }, 'f:spec': {} },
        },
      ],
    },
    spec,
  });
}

/** The bare server: node:https that reads and JSON-parses the body, then answers a fixed review. */
const BASELINE_SOURCE = `
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
const [certFile, keyFile] = process.argv.slice(1);
const fixed = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'fixed', allowed: true } });
const server = createServer({ cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), minVersion: 'TLSv1.2' }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(fixed);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(0));
`;

async function readPort(child: ChildProcess, what: string): Promise<number> {
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
  });
  return Number(line);
}

/**
 * Breeze as a user starts it: compiled into DIR/build, then `serve --mode local --log-level warn`
 * on loopback ports with these files of examples/ as its config dir (both benches' target).
 */
export async function startLocalBreeze(
  dir: string,
  certs: { readonly certFile: string; readonly keyFile: string },
  examples: readonly string[],
  node: readonly string[] = [],
): Promise<BreezeProcess> {
  const configDir = join(dir, 'config');
  mkdirSync(configDir);
  for (const f of examples) copyFileSync(join(repo, 'examples', f), join(configDir, f));
  const main = buildBreeze(join(dir, 'build'));
  return startBreezeProcess({
    main,
    node: [...node],
    args: [
      'serve',
      ...loopbackArgs('local', certs),
      '--config-dir',
      configDir,
      '--out-dir',
      join(dir, 'out'),
      '--log-level',
      'warn',
    ],
    env: {},
  });
}

/** The bare node:https server in its own process (plain JavaScript, no loader). */
export async function startBaseline(
  certFile: string,
  keyFile: string,
): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', BASELINE_SOURCE, certFile, keyFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return { port: await readPort(child, 'baseline'), child };
}

/** The webhook app alone (bench/admission-target.ts: empty store, logs to /dev/null), in its own process. */
async function startAppAlone(
  certFile: string,
  keyFile: string,
): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('./admission-target.ts', import.meta.url).pathname, certFile, keyFile],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return { port: await readPort(child, 'app alone'), child };
}

/**
 * CPU time (user + system, every thread) a process has used so far, ms, from /proc/PID/stat;
 * undefined off Linux. CPU per request is the figure the machine's noise disturbs least.
 */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) in parentheses; utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * 10 : undefined; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

export const CONNECTIONS = 16;
export const FIXED_RATE = 1000;

async function load(
  url: string,
  body: string,
  opts: { duration: number; connections: number; rate?: number; pid?: number | undefined },
): Promise<LoadResult> {
  const cpuBefore = processCpuMs(opts.pid);
  const r = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: opts.connections,
    duration: opts.duration,
    ...(opts.rate !== undefined ? { overallRate: opts.rate } : {}),
  });
  const cpuAfter = processCpuMs(opts.pid);
  const answered = r.requests.total;
  return {
    rps: r.requests.average,
    ...(cpuBefore === undefined || cpuAfter === undefined || answered === 0
      ? {}
      : { cpuPer1k: Math.round(((cpuAfter - cpuBefore) / answered) * 1000 * 10) / 10 }),
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

/** The median of some figures (the mean of the two middle ones for an even count); NaN for none. */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** One POST answered as Breeze should answer the review (200, allowed), or an error naming what came back. */
async function checkAllowed(url: string, body: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  if (res.status !== 200 || !text.includes('"allowed":true'))
    throw new Error(`${url} answered ${res.status}: ${text.slice(0, 300)}`);
}

type TargetName = 'baseline /validate' | 'breeze /validate' | 'breeze /mutate' | 'app alone /validate';

export async function runAdmissionBench(opts: {
  duration: number;
  rounds?: number;
  /** Write Breeze's CPU profile into this directory and print its top self-time items. */
  cpuProfDir?: string;
  /** Skip the app-alone line (shorter runs while profiling). */
  appAlone?: boolean;
}): Promise<Record<string, unknown>> {
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the load generator trusts the bench's own throw-away CA
  const rounds = opts.rounds ?? 5;
  const dir = mkdtempSync(join(tmpdir(), 'breeze-bench-'));
  const certs = await writeDevCertificates(dir, ['127.0.0.1', 'localhost']);
  const body = realisticReview();
  const profDir = opts.cpuProfDir;
  if (profDir !== undefined) {
    rmSync(profDir, { recursive: true, force: true });
    mkdirSync(profDir, { recursive: true });
  }
  let breeze: BreezeProcess | undefined;
  const others: ChildProcess[] = [];
  const runs = new Map<TargetName, { max: LoadResult[]; fixed: LoadResult[] }>();
  try {
    console.log('Admission benchmark: compiling Breeze');
    breeze = await startLocalBreeze(
      dir,
      certs,
      ['dubbo.yaml', 'thrift.yaml', 'redis.yaml', 'zookeeper.yaml'],
      profDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir],
    );
    const baseline = await startBaseline(certs.certFile, certs.keyFile);
    others.push(baseline.child);
    // The API server appends its timeout to the webhook URL (?timeout=10s by default).
    const urls = new Map<TargetName, { url: string; pid: number | undefined }>([
      [
        'baseline /validate',
        { url: `https://127.0.0.1:${baseline.port}/validate?timeout=10s`, pid: baseline.child.pid },
      ],
      [
        'breeze /validate',
        { url: `https://127.0.0.1:${breeze.webhookPort}/validate?timeout=10s`, pid: breeze.child.pid },
      ],
      [
        'breeze /mutate',
        { url: `https://127.0.0.1:${breeze.webhookPort}/mutate?timeout=10s`, pid: breeze.child.pid },
      ],
    ]);
    if (opts.appAlone !== false) {
      const app = await startAppAlone(certs.certFile, certs.keyFile);
      others.push(app.child);
      urls.set('app alone /validate', {
        url: `https://127.0.0.1:${app.port}/validate?timeout=10s`,
        pid: app.child.pid,
      });
    }
    for (const [name, { url }] of urls) {
      await checkAllowed(url, body);
      await load(url, body, { duration: 2, connections: CONNECTIONS }); // warm-up (JIT, TLS sessions)
      runs.set(name, { max: [], fixed: [] });
    }
    for (let round = 0; round < rounds; round++) {
      for (const [name, { url, pid }] of urls) {
        const r = runs.get(name)!;
        r.max.push(await load(url, body, { duration: opts.duration, connections: CONNECTIONS, pid }));
        if (name !== 'app alone /validate')
          r.fixed.push(
            await load(url, body, { duration: opts.duration, connections: CONNECTIONS, rate: FIXED_RATE }),
          );
      }
      const ratio = (
        runs.get('breeze /validate')!.max[round]!.rps / runs.get('baseline /validate')!.max[round]!.rps
      ).toFixed(3);
      console.log(`round ${round + 1}/${rounds}: breeze/bare /validate ${ratio}`);
    }
  } finally {
    for (const c of others) c.kill('SIGTERM');
    if (breeze !== undefined) await stopBreezeProcess(breeze, 10_000);
  }
  const logged = breeze === undefined ? [] : [...breeze.logs].map(([k, n]) => `${k}: ${n}`);

  const summary = (rs: LoadResult[]) => ({
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    errors: rs.reduce((n, r) => n + r.errors + r.non2xx, 0),
    runs: rs.map((r) => Math.round(r.rps)),
    cpuMsPer1k: median(rs.flatMap((r) => (r.cpuPer1k === undefined ? [] : [r.cpuPer1k]))),
    p99Runs: rs.map((r) => r.p99),
  });
  const results: Record<string, unknown> = {
    process:
      'node dist/cli/main.js serve --mode local --log-level warn (dubbo, thrift, redis, zookeeper examples)',
    bodyBytes: Buffer.byteLength(body),
    durationSeconds: opts.duration,
    connections: CONNECTIONS,
    fixedRate: FIXED_RATE,
    rounds,
  };
  for (const [key, r] of runs) {
    results[key] = { max: summary(r.max), ...(r.fixed.length > 0 ? { at1000: summary(r.fixed) } : {}) };
  }
  // Each round runs the bare server and Breeze back to back, so they share that moment's machine
  // noise: the ratio is taken per round, and the median of those is the result.
  const perRound = (key: TargetName): number[] => {
    const base = runs.get('baseline /validate')?.max ?? [];
    return (runs.get(key)?.max ?? []).map((r, i) => r.rps / (base[i]?.rps ?? NaN));
  };
  const ratios = {
    validate: perRound('breeze /validate'),
    mutate: perRound('breeze /mutate'),
    appAlone: perRound('app alone /validate'),
  };
  results.ratioValidate = median(ratios.validate);
  results.ratioMutate = median(ratios.mutate);
  if (ratios.appAlone.length > 0) results.ratioAppAlone = median(ratios.appAlone);
  results.ratioRuns = {
    validate: ratios.validate.map(round3),
    mutate: ratios.mutate.map(round3),
    ...(ratios.appAlone.length > 0 ? { appAlone: ratios.appAlone.map(round3) } : {}),
  };
  // p99 at a fixed 1,000 req/s: per round, Breeze's over the bare server's; the median of those.
  const p99Ratio = (key: TargetName): number[] => {
    const base = runs.get('baseline /validate')?.fixed ?? [];
    return (runs.get(key)?.fixed ?? []).map((r, i) => r.p99 / Math.max(1, base[i]?.p99 ?? NaN));
  };
  results.p99RatioAt1000 = {
    validate: round3(median(p99Ratio('breeze /validate'))),
    mutate: round3(median(p99Ratio('breeze /mutate'))),
    validateRuns: p99Ratio('breeze /validate').map(round3),
    mutateRuns: p99Ratio('breeze /mutate').map(round3),
  };
  results.breezeLogLines = logged;

  console.log(
    `Admission benchmark: real breeze serve vs bare node:https, ${Buffer.byteLength(body)}-byte review, TLS keep-alive, ${CONNECTIONS} connections, ${rounds} alternating rounds of ${opts.duration} s`,
  );
  console.log(
    '| target | max req/s median (rounds) | CPU ms / 1k req | p50 ms | p99 ms | p99 ms @1,000 req/s (rounds) | errors |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const [key, r] of runs) {
    const max = summary(r.max);
    const fixed = r.fixed.length > 0 ? summary(r.fixed) : undefined;
    console.log(
      `| ${key} | ${max.rps.toFixed(0)} (${max.runs.join(', ')}) | ${max.cpuMsPer1k} | ${max.p50} | ${max.p99} | ${fixed === undefined ? '-' : `${fixed.p99} (${fixed.p99Runs.join(', ')})`} | ${max.errors + (fixed?.errors ?? 0)} |`,
    );
  }
  const rr = results.ratioRuns as Record<string, number[]>;
  console.log(
    `Breeze/bare throughput, median of rounds: validate ${(results.ratioValidate as number).toFixed(3)} (${rr.validate!.join(', ')}), mutate ${(results.ratioMutate as number).toFixed(3)} (${rr.mutate!.join(', ')})${ratios.appAlone.length > 0 ? `, app alone ${(results.ratioAppAlone as number).toFixed(3)} (${rr.appAlone!.join(', ')})` : ''}`,
  );
  const p = results.p99RatioAt1000 as { validate: number; mutate: number };
  console.log(`p99 @1,000 req/s, Breeze/bare: validate ${p.validate}x, mutate ${p.mutate}x`);
  if (logged.length > 0) console.log(`Breeze log lines during the run: ${logged.join('; ')}`);

  if (profDir !== undefined) {
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) console.log(`no .cpuprofile in ${profDir}`);
    else {
      const top = topSelfTime(join(profDir, file), 25);
      console.log(`CPU profile ${join(profDir, file)}, top self time:`);
      console.log(formatTop(top));
      results.profileTop = top;
    }
  }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/admission.json', import.meta.url),
    `${JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2)}\n`,
  );
  rmSync(dir, { recursive: true, force: true });
  return results;
}
