// Admission benchmark: Breeze's webhook vs a bare node:https server in the same run, over TLS
// with keep-alive, a realistic ~3 KB ServiceEntry review. Prints req/s, p50/p99 and the ratio,
// then latency at a fixed 1,000 req/s.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { writeDevCertificates } from '../src/pki/certs.js';

export interface LoadResult {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly non2xx: number;
}

/** A realistic ServiceEntry review of about 3 KB (a Dubbo service with several ports and endpoints). */
export function sampleReview(): string {
  const endpoints = Array.from({ length: 12 }, (_, i) => ({
    address: `10.244.${i}.${10 + i}`,
    labels: { app: 'dubbo-sample-provider', version: i % 2 === 0 ? 'v1' : 'v2', zone: `zone-${i % 3}` },
    ports: { 'tcp-dubbo': 20880 },
  }));
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' },
      resource: { group: 'networking.istio.io', version: 'v1', resource: 'serviceentries' },
      requestKind: { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' },
      name: 'dubbo-demoservice',
      namespace: 'dubbo',
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:ci:deployer',
        groups: ['system:serviceaccounts', 'system:authenticated'],
      },
      object: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: {
          name: 'dubbo-demoservice',
          namespace: 'dubbo',
          labels: {
            app: 'dubbo-sample-provider',
            team: 'payments',
            'app.kubernetes.io/managed-by': 'argocd',
          },
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
      },
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

async function startTarget(
  which: string,
  cert: string,
  key: string,
): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('./admission-target.ts', import.meta.url).pathname, which, cert, key],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const rl = createInterface({ input: child.stdout });
  const line = await new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${which} exited with ${code}`)));
  });
  return { port: Number(line), child };
}

async function load(
  url: string,
  body: string,
  opts: { duration: number; connections: number; rate?: number },
): Promise<LoadResult> {
  const r = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: opts.connections,
    duration: opts.duration,
    ...(opts.rate !== undefined ? { overallRate: opts.rate } : {}),
  });
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/**
 * Runs rounds that alternate baseline and Breeze (so both see the same machine noise) and reports
 * medians (the throughput ratio per round, then its median): max throughput with 10 keep-alive connections, then latency at a fixed 1,000 req/s.
 */
export async function runAdmissionBench(opts: {
  duration: number;
  rounds?: number;
}): Promise<Record<string, unknown>> {
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the load generator trusts the bench's own throw-away CA
  const rounds = opts.rounds ?? 5;
  const dir = mkdtempSync(join(tmpdir(), 'breeze-bench-'));
  const certs = await writeDevCertificates(dir, ['127.0.0.1', 'localhost']);
  const body = sampleReview();
  const targets = [
    { name: 'baseline', path: '/validate' },
    { name: 'breeze', path: '/validate' },
    { name: 'breeze', path: '/mutate' },
  ] as const;
  const servers = new Map<string, { port: number; child: ChildProcess }>();
  const runs = new Map<string, { max: LoadResult[]; fixed: LoadResult[] }>();
  try {
    for (const name of ['baseline', 'breeze'])
      servers.set(name, await startTarget(name, certs.certFile, certs.keyFile));
    for (const t of targets) {
      const url = `https://127.0.0.1:${servers.get(t.name)!.port}${t.path}`;
      await load(url, body, { duration: 2, connections: 10 }); // warm-up (JIT, TLS session setup)
      runs.set(`${t.name} ${t.path}`, { max: [], fixed: [] });
    }
    for (let round = 0; round < rounds; round++) {
      for (const t of targets) {
        const url = `https://127.0.0.1:${servers.get(t.name)!.port}${t.path}`;
        const r = runs.get(`${t.name} ${t.path}`)!;
        r.max.push(await load(url, body, { duration: opts.duration, connections: 10 }));
        r.fixed.push(await load(url, body, { duration: opts.duration, connections: 10, rate: 1000 }));
      }
    }
  } finally {
    for (const s of servers.values()) s.child.kill('SIGTERM');
  }
  const summary = (rs: LoadResult[]) => ({
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    errors: rs.reduce((n, r) => n + r.errors + r.non2xx, 0),
    runs: rs.map((r) => Math.round(r.rps)),
  });
  const results: Record<string, unknown> = {
    bodyBytes: Buffer.byteLength(body),
    durationSeconds: opts.duration,
    rounds,
  };
  const rows: string[] = [];
  for (const [key, r] of runs) {
    const max = summary(r.max);
    const fixed = summary(r.fixed);
    results[key] = { max, at1000: fixed };
    rows.push(
      `| ${key} | ${max.rps.toFixed(0)} (${max.runs.join(', ')}) | ${max.p50} | ${max.p99} | ${fixed.rps.toFixed(0)} | ${fixed.p50} | ${fixed.p99} | ${max.errors + fixed.errors} |`,
    );
  }
  // Each round runs the baseline and Breeze back to back, so they share that moment's machine
  // noise: the ratio is taken per round, and the median of those is the result.
  const perRound = (key: string): number[] => {
    const breeze = runs.get(key)?.max ?? [];
    const base = runs.get('baseline /validate')?.max ?? [];
    return breeze.map((r, i) => r.rps / (base[i]?.rps ?? NaN));
  };
  const validateRatios = perRound('breeze /validate');
  const mutateRatios = perRound('breeze /mutate');
  results.ratioValidate = median(validateRatios);
  results.ratioMutate = median(mutateRatios);
  results.ratioRuns = {
    validate: validateRatios.map((r) => Math.round(r * 1000) / 1000),
    mutate: mutateRatios.map((r) => Math.round(r * 1000) / 1000),
  };
  console.log(
    `Admission benchmark: ${Buffer.byteLength(body)}-byte ServiceEntry review over TLS, keep-alive, 10 connections; median of ${rounds} alternating rounds of ${opts.duration}s`,
  );
  console.log(
    '| target | max req/s (runs) | p50 ms | p99 ms | req/s @1000 | p50 ms @1000 | p99 ms @1000 | errors |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(
    `Breeze/baseline throughput: validate ${((results.ratioValidate as number) * 100).toFixed(1)}%, mutate ${((results.ratioMutate as number) * 100).toFixed(1)}%`,
  );
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/admission.json', import.meta.url),
    `${JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2)}\n`,
  );
  return results;
}
