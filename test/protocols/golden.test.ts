// Golden cases: test/golden/<case>/input.yaml → expected.yaml (the EnvoyFilters, byte for byte)
// and, when present, problems.txt / notes.txt (one line per problem). Generation runs with the
// default `--protocols` (kafka off) unless the case has options.json (`{"protocols": "..."}`, the
// flag's value). Every EnvoyFilter must pass the strict check against Envoy's proto schema, and
// every patch of a filter the stock proxy lacks must be scoped to the proxies that declare it.
// BREEZE_UPDATE_GOLDEN=1 rewrites expectations
// (review the diff before committing: a golden is only as good as its review).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigStore } from '../../src/cache/store.js';
import { checkEnvoyFilter } from '../../src/envoy/schema.js';
import { formatProblem, generateAll, type GenerationProblem } from '../../src/protocols/generate.js';
import { toYamlStream } from '../../src/protocols/output.js';
import { DEFAULT_PROTOCOLS, parseProtocols, proxyMetadataMatch } from '../../src/protocols/registry.js';
import type { GenerationOptions } from '../../src/protocols/types.js';
import type { Protocol } from '../../src/model/protocol.js';
import { parseManifestText } from '../../src/sources/file.js';

const root = new URL('../golden/', import.meta.url).pathname;
const update = process.env.BREEZE_UPDATE_GOLDEN === '1';

function optionsFor(dir: string): GenerationOptions {
  const file = join(dir, 'options.json');
  const given = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { protocols?: string }) : {};
  const protocols = parseProtocols(given.protocols ?? DEFAULT_PROTOCOLS);
  if ('error' in protocols) throw new Error(`${file}: protocols ${protocols.error}`);
  return { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local', protocols };
}

const problemLines = (ps: readonly GenerationProblem[]): string => ps.map(formatProblem).join('\n');

function expectFile(
  t: { equal: (a: string, b: string, m: string) => void },
  file: string,
  actual: string,
  what: string,
): void {
  if (update) {
    if (actual === '' && !existsSync(file)) return;
    writeFileSync(file, actual === '' ? '' : `${actual}\n`);
  }
  const expected = existsSync(file) ? readFileSync(file, 'utf8').trimEnd() : '';
  t.equal(actual.trimEnd(), expected, what);
}

for (const name of readdirSync(root).sort()) {
  const dir = join(root, name);
  if (!existsSync(join(dir, 'input.yaml'))) continue;
  t.test(name, async (t) => {
    const parsed = parseManifestText(readFileSync(join(dir, 'input.yaml'), 'utf8'));
    t.same(parsed.errors, [], 'input parses');
    const store = new ConfigStore();
    for (const o of parsed.objects) store.upsert(o, 'file');
    const options = optionsFor(dir);
    const result = generateAll(store, options);
    expectFile(
      t,
      join(dir, 'expected.yaml'),
      toYamlStream(result.envoyFilters),
      'EnvoyFilters, byte for byte',
    );
    expectFile(t, join(dir, 'problems.txt'), problemLines(result.problems), 'problems');
    expectFile(t, join(dir, 'notes.txt'), problemLines(result.notes), 'notes');
    for (const ef of result.envoyFilters) {
      t.same(checkEnvoyFilter(ef), [], `${String((ef.metadata as any).name)} passes Envoy's schema`);
      const protocol = (ef.metadata as any).labels['breeze.io/protocol'] as Protocol;
      t.ok(options.protocols?.has(protocol), `${protocol} is enabled`);
      const scope = proxyMetadataMatch(protocol);
      for (const patch of (ef.spec as any).configPatches) {
        t.same(
          patch.match?.proxy?.metadata,
          scope,
          `${protocol} ${patch.applyTo} patch: proxy metadata match`,
        );
      }
    }
    // Determinism: reversed input order gives identical bytes.
    const reversed = new ConfigStore();
    for (const o of [...parsed.objects].reverse()) reversed.upsert(o, 'file');
    const again = generateAll(reversed, options);
    t.equal(
      toYamlStream(again.envoyFilters),
      toYamlStream(result.envoyFilters),
      'input order does not matter',
    );
  });
}
