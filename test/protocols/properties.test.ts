// Properties of generation as a whole: order independence and Envoy-schema validity at scale.
import { readFileSync } from 'node:fs';
import t from 'tap';
import fc from 'fast-check';
import { syntheticConfig } from '../../bench/synthetic.js';
import { ConfigStore } from '../../src/cache/store.js';
import { checkEnvoyFilter } from '../../src/envoy/schema.js';
import { generateAll, generateForKeys } from '../../src/protocols/generate.js';
import { toYamlStream } from '../../src/protocols/output.js';
import type { JsonRecord } from '../../src/model/json.js';
import { parseManifestText } from '../../src/sources/file.js';

const options = { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' };
const examples = ['dubbo', 'thrift', 'kafka', 'zookeeper', 'redis'].flatMap(
  (f) =>
    parseManifestText(readFileSync(new URL(`../../examples/${f}.yaml`, import.meta.url), 'utf8')).objects,
);
const objects: JsonRecord[] = [...examples, ...syntheticConfig(60)];

function generate(input: readonly JsonRecord[]): string {
  const store = new ConfigStore();
  for (const o of input) store.upsert(o, 'file');
  return toYamlStream(generateAll(store, options).envoyFilters);
}

t.test('shuffled inputs give byte-identical output', async (t) => {
  const reference = generate(objects);
  t.ok(reference.length > 0);
  fc.assert(
    fc.property(
      fc.shuffledSubarray(objects, { minLength: objects.length, maxLength: objects.length }),
      (shuffled) => {
        return generate(shuffled) === reference;
      },
    ),
    { numRuns: 25 },
  );
});

t.test('every generated EnvoyFilter passes the strict Envoy schema check', async (t) => {
  const store = new ConfigStore();
  for (const o of objects) store.upsert(o, 'file');
  const result = generateAll(store, options);
  t.same(result.problems, [], 'the examples and synthetic services generate without problems');
  t.ok(result.envoyFilters.length >= 120);
  for (const ef of result.envoyFilters) {
    const problems = checkEnvoyFilter(ef);
    if (problems.length > 0) t.same(problems, [], String((ef.metadata as JsonRecord).name));
  }
  t.pass('checked');
});

t.test(
  'incremental generation of the affected keys equals the same services in a full generation',
  async (t) => {
    const store = new ConfigStore();
    for (const o of objects) store.upsert(o, 'kubernetes');
    const vs = store.list('VirtualService').find((e) => e.name === 'dubbo-demoservice');
    t.ok(vs, 'the Dubbo example VirtualService');
    const changed = structuredClone(vs!.object);
    ((changed.spec as JsonRecord).http as JsonRecord[]).reverse();
    const keys = store.apply('kubernetes', 'VirtualService', vs!.namespace, vs!.name, changed);
    t.same([...keys], ['ServiceEntry/dubbo/dubbo-demoservice']);
    const incremental = generateForKeys(store, keys, options);
    const full = generateAll(store, options).envoyFilters.filter((ef) =>
      String(((ef.metadata as JsonRecord).annotations as JsonRecord)['breeze.io/sources']).includes(
        'ServiceEntry/dubbo/dubbo-demoservice',
      ),
    );
    t.equal(
      toYamlStream(
        [...incremental.get('ServiceEntry/dubbo/dubbo-demoservice')!.envoyFilters].sort((a, b) =>
          String((a.metadata as JsonRecord).name) < String((b.metadata as JsonRecord).name) ? -1 : 1,
        ),
      ),
      toYamlStream(full),
    );
    store.remove('ServiceEntry', 'dubbo', 'dubbo-demoservice', 'kubernetes');
    t.same(
      generateForKeys(store, keys, options).get('ServiceEntry/dubbo/dubbo-demoservice')?.envoyFilters,
      [],
      'a deleted service has no output',
    );
  },
);
