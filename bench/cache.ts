// Cache benchmark, incremental part: at 10k services, one VirtualService change → affected
// keys → regenerate only those, against a full regeneration in the same run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { ConfigStore } from '../src/cache/store.js';
import type { JsonRecord } from '../src/model/json.js';
import { generateAll, generateForKeys } from '../src/protocols/generate.js';
import { syntheticConfig } from './synthetic.js';

const options = { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' };
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

interface SyncRun {
  ms: number;
  serviceEntries: number;
  virtualServices: number;
  destinationRules: number;
  peakRssMiB: number;
  rssBeforeSyncMiB: number;
}

/** The initial sync runs in its own process, so its peak RSS is its own. */
function initialSync(n: number): SyncRun {
  const worker = new URL('./cache-sync-worker.ts', import.meta.url).pathname;
  const out = execFileSync(process.execPath, ['--import', 'tsx', worker, String(n)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as SyncRun;
}

export async function runCacheBench(
  opts: { services?: number; rounds?: number } = {},
): Promise<Record<string, unknown>> {
  const n = opts.services ?? 10_000;
  const rounds = opts.rounds ?? 7;
  const sync = initialSync(n);
  console.log(
    `Cache benchmark (initial sync through the fake Kubernetes API, real client-node path): ${sync.serviceEntries} ServiceEntries + ${sync.virtualServices} VirtualServices + ${sync.destinationRules} DestinationRules`,
  );
  console.log('| initial sync ms | peak RSS MiB (fake API + cache) | RSS before sync MiB |');
  console.log('|---|---|---|');
  console.log(
    `| ${sync.ms.toFixed(0)} | ${sync.peakRssMiB.toFixed(0)} | ${sync.rssBeforeSyncMiB.toFixed(0)} |`,
  );
  const store = new ConfigStore();
  for (const o of syntheticConfig(n)) store.upsert(o, 'kubernetes');
  const vs = store.list('VirtualService')[0]?.object;
  if (vs === undefined) throw new Error('no VirtualService in the synthetic config');

  const full: number[] = [];
  const incremental: number[] = [];
  let affected = 0;
  let regenerated = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    generateAll(store, options);
    full.push(performance.now() - t0);

    const changed: JsonRecord = structuredClone(vs);
    (changed.metadata as JsonRecord).resourceVersion = String(1000 + r);
    // A real route change every round: shift the weighted split by one point.
    const split = ((changed.spec as JsonRecord).http as JsonRecord[])[1]?.route as JsonRecord[];
    split[0]!.weight = 79 - r;
    split[1]!.weight = 21 + r;
    const t1 = performance.now();
    const keys = store.apply(
      'kubernetes',
      'VirtualService',
      String((vs.metadata as JsonRecord).namespace),
      String((vs.metadata as JsonRecord).name),
      changed,
    );
    const outputs = generateForKeys(store, keys, options);
    incremental.push(performance.now() - t1);
    affected = keys.size;
    regenerated = [...outputs.values()].reduce((s, o) => s + o.envoyFilters.length, 0);
  }
  const fullMs = median(full);
  const incMs = median(incremental);
  const results = {
    services: n,
    rounds,
    fullMs,
    incrementalMs: incMs,
    speedup: fullMs / incMs,
    affectedKeys: affected,
    regeneratedEnvoyFilters: regenerated,
    initialSync: sync,
  };
  console.log(`Cache benchmark (incremental): ${n} services, median of ${rounds} rounds`);
  console.log(
    '| full regeneration ms | one VirtualService change: affected keys + regenerate ms | speedup | affected services | EnvoyFilters regenerated |',
  );
  console.log('|---|---|---|---|---|');
  console.log(
    `| ${fullMs.toFixed(1)} | ${incMs.toFixed(3)} | ${(fullMs / incMs).toFixed(0)}x | ${affected} | ${regenerated} |`,
  );
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL('./results/cache.json', import.meta.url);
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2)}\n`);
  return results;
}
