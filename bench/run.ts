// `npm run bench [-- name...] [--duration N] [--changes N] [--hostile-seconds N] [--rounds N]
// [--cpu-prof DIR] [--no-app-alone] [--update-readme]`: runs the named
// benchmarks (all by default), then writes the report of every benchmark's latest results,
// bench/results/latest.json and latest.md (a bench that did not run this time contributes its
// last results file, with its own date). --update-readme also puts latest.md into README.md
// between the bench markers.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import * as prettier from 'prettier';
import { runAdmissionBench } from './admission.js';
import { runCacheBench } from './cache.js';
import { runGenerateBench } from './generate.js';
import { runHostileBench } from './hostile.js';
import { runPipelineBench } from './pipeline.js';
import { runReconcileBench } from './reconcile.js';
import {
  BENCH_NAMES,
  computeTargets,
  renderMarkdown,
  replaceBetweenMarkers,
  type BenchName,
  type Machine,
  type Report,
  type Results,
} from './report.js';

interface Options {
  readonly duration: number;
  /** --duration as given; the admission bench's rounds are 5 s without it. */
  readonly durationGiven: boolean;
  readonly rounds: number;
  readonly cpuProf: string | undefined;
  readonly appAlone: boolean;
  readonly changes: number;
  readonly hostileSeconds: number;
}

const BENCHES: Record<BenchName, (o: Options) => Promise<unknown>> = {
  admission: (o) =>
    runAdmissionBench({
      duration: o.durationGiven ? o.duration : 5,
      rounds: o.rounds,
      appAlone: o.appAlone,
      ...(o.cpuProf === undefined ? {} : { cpuProfDir: o.cpuProf }),
    }),
  generate: () => runGenerateBench(),
  cache: () => runCacheBench(),
  reconcile: () => runReconcileBench(),
  pipeline: (o) => runPipelineBench({ changes: o.changes }),
  hostile: (o) => runHostileBench({ seconds: o.hostileSeconds, floodSeconds: o.duration }),
};

const isBench = (n: string): n is BenchName => (BENCH_NAMES as readonly string[]).includes(n);

const { values, positionals } = parseArgs({
  options: {
    duration: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    'cpu-prof': { type: 'string' },
    'no-app-alone': { type: 'boolean', default: false },
    changes: { type: 'string', default: '200' },
    'hostile-seconds': { type: 'string', default: '60' },
    'update-readme': { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
const names = positionals.length > 0 ? positionals : [...BENCH_NAMES];
const unknown = names.filter((n) => !isBench(n));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${JSON.stringify(unknown[0])}; known: ${BENCH_NAMES.join(', ')}`);
  process.exit(2);
}
const cpu = cpus();
const machine: Machine = {
  cpu: cpu[0]?.model.trim() ?? 'unknown CPU',
  cores: cpu.length,
  memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  node: process.version,
  platform: `${process.platform}/${process.arch}`,
};
const options: Options = {
  duration: Number(values.duration ?? '10'),
  durationGiven: values.duration !== undefined,
  rounds: Number(values.rounds),
  cpuProf: values['cpu-prof'],
  appAlone: !values['no-app-alone'],
  changes: Number(values.changes),
  hostileSeconds: Number(values['hostile-seconds']),
};
for (const [flag, v] of Object.entries(options)) {
  if (typeof v !== 'number') continue;
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a positive integer`);
    process.exit(2);
  }
}
const resultsDir = new URL('./results/', import.meta.url);
for (const n of names.filter(isBench)) {
  await BENCHES[n](options);
  // Every benchmark writes bench/results/<name>.json with its date; the machine goes with it.
  const file = new URL(`${n}.json`, resultsDir);
  const written = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, `${JSON.stringify({ ...written, machine }, null, 2)}\n`);
  console.log('');
}

// The report reads every results file, so the benchmarks not run this time are still covered.
// The files are trusted to have the shapes the benches write (report.ts types them).
const results: Results = Object.fromEntries(
  BENCH_NAMES.map((n) => [n, new URL(`${n}.json`, resultsDir)] as const)
    .filter(([, file]) => existsSync(file))
    .map(([n, file]) => [n, JSON.parse(readFileSync(file, 'utf8'))]),
);
const report: Report = { date: new Date().toISOString(), machine, results, targets: computeTargets(results) };
writeFileSync(new URL('latest.json', resultsDir), `${JSON.stringify(report, null, 2)}\n`);
const readmePath = new URL('../README.md', import.meta.url).pathname;
const format = async (text: string): Promise<string> =>
  prettier.format(text, { ...(await prettier.resolveConfig(readmePath)), parser: 'markdown' });
const markdown = await format(renderMarkdown(report));
writeFileSync(new URL('latest.md', resultsDir), markdown);
console.log(markdown);
if (values['update-readme']) {
  const readme = readFileSync(readmePath, 'utf8');
  writeFileSync(readmePath, await format(replaceBetweenMarkers(readme, markdown)));
  console.log('README.md updated between the bench markers');
}
const missed = report.targets.filter((t) => !t.met);
if (missed.length > 0) console.log(`targets not met: ${missed.map((t) => t.target).join('; ')}`);
