// One generation run in its own process (so peak RSS is this run's): `generate` or `baseline`
// for N synthetic services. Prints one JSON line.
import { ConfigStore } from '../src/cache/store.js';
import type { JsonRecord } from '../src/model/json.js';
import { generateAll } from '../src/protocols/generate.js';
import { toYamlStream } from '../src/protocols/output.js';
import { syntheticConfig } from './synthetic.js';

const [mode, countText] = process.argv.slice(2);
const n = Number(countText);
const input = syntheticConfig(n);
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const t0 = now();
const store = new ConfigStore();
for (const o of input) store.upsert(o, 'file');
const t1 = now();
let objects: JsonRecord[] = input;
let problems = 0;
if (mode === 'generate') {
  const result = generateAll(store, {
    rootNamespace: 'istio-system',
    namespaceScope: false,
    domain: 'cluster.local',
  });
  objects = result.envoyFilters;
  problems = result.problems.length;
}
const t2 = now();
// JSON is what the reconciler sends to the API server; YAML is what `breeze generate` prints.
const jsonBytes = objects.reduce((b, o) => b + JSON.stringify(o).length, 0);
const t3 = now();
const yamlBytes = toYamlStream(objects).length;
const t4 = now();
process.stdout.write(
  `${JSON.stringify({
    mode,
    services: n,
    fillMs: t1 - t0,
    generateMs: t2 - t1,
    jsonMs: t3 - t2,
    yamlMs: t4 - t3,
    totalJsonMs: t3 - t0,
    outputs: objects.length,
    problems,
    jsonBytes,
    yamlBytes,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  })}\n`,
);
