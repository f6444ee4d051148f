// `npm run bench [-- name...] [-- --duration N]`: runs the named benchmarks (all by default).
import { parseArgs } from 'node:util';
import { runAdmissionBench } from './admission.js';
import { runCacheBench } from './cache.js';
import { runGenerateBench } from './generate.js';
import { runReconcileBench } from './reconcile.js';

const BENCHES: Record<string, (o: { duration: number }) => Promise<unknown>> = {
  admission: runAdmissionBench,
  generate: () => runGenerateBench(),
  cache: () => runCacheBench(),
  reconcile: () => runReconcileBench(),
};

const { values, positionals } = parseArgs({
  options: { duration: { type: 'string', default: '10' } },
  allowPositionals: true,
});
const names = positionals.length > 0 ? positionals : Object.keys(BENCHES);
for (const n of names) {
  const bench = BENCHES[n];
  if (bench === undefined) {
    console.error(`unknown benchmark ${JSON.stringify(n)}; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
  await bench({ duration: Number(values.duration) });
}
