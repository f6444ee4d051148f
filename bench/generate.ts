// Generation benchmark: full generation of 1k, 10k and 50k synthetic services against a baseline
// in the same run (the same objects read into the cache and serialized, without generating).
// Each run is its own process so peak RSS belongs to it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';

interface Run {
  mode: string;
  services: number;
  fillMs: number;
  generateMs: number;
  jsonMs: number;
  yamlMs: number;
  totalJsonMs: number;
  outputs: number;
  problems: number;
  peakRssMiB: number;
}

function run(mode: string, n: number): Run {
  const worker = new URL('./generate-worker.ts', import.meta.url).pathname;
  const out = execFileSync(process.execPath, ['--import', 'tsx', worker, mode, String(n)], {
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Run;
}

const f0 = (x: number): string => x.toFixed(0);

export async function runGenerateBench(opts: { sizes?: number[] } = {}): Promise<Record<string, unknown>> {
  const sizes = opts.sizes ?? [1000, 10_000, 50_000];
  const rows: string[] = [];
  const results: Record<string, unknown> = {};
  for (const n of sizes) {
    const base = run('baseline', n);
    const gen = run('generate', n);
    results[String(n)] = { baseline: base, generate: gen };
    const cells = [
      n,
      f0(gen.fillMs),
      f0(gen.generateMs),
      f0(gen.jsonMs),
      f0(gen.totalJsonMs),
      f0(base.totalJsonMs),
      (gen.totalJsonMs / base.totalJsonMs).toFixed(2),
      f0(gen.yamlMs),
      gen.outputs,
      gen.problems,
      `${f0(gen.peakRssMiB)} / ${f0(base.peakRssMiB)}`,
      ((gen.generateMs / n) * 1000).toFixed(1),
    ];
    rows.push(`| ${cells.join(' | ')} |`);
  }
  console.log('Generation benchmark: synthetic ServiceEntries (dubbo/thrift/kafka/zookeeper/redis in turn);');
  console.log(
    'every other Dubbo/Thrift service has a VirtualService (method match, 80/20 split) and DestinationRule.',
  );
  console.log(
    'total = cache fill + generate + JSON (what the reconciler sends); baseline = cache fill + JSON of the inputs.',
  );
  console.log(
    '| services | cache fill ms | generate ms | JSON ms | total ms | baseline total ms | ratio | YAML ms | EnvoyFilters | problems | peak RSS MiB (gen / base) | generate µs/service |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL('./results/generate.json', import.meta.url);
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2)}\n`);
  return results;
}
