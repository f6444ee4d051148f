import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { syncDirectory } from '../../src/reconcile/sinks/directory.js';

const ef = (name: string, v = 1) => ({
  apiVersion: 'networking.istio.io/v1alpha3',
  kind: 'EnvoyFilter',
  metadata: { name, namespace: 'istio-system' },
  spec: { configPatches: [{ applyTo: 'NETWORK_FILTER', v }] },
});

t.test('writes, skips unchanged, rewrites changed, removes stale', async (t) => {
  const dir = t.testdir({ 'stale.yaml': 'old', 'keep.txt': 'not ours to judge' });
  t.same(await syncDirectory(dir, [ef('a'), ef('b')]), { written: 2, unchanged: 0, removed: 1 });
  t.same(readdirSync(dir).sort(), ['istio-system.a.yaml', 'istio-system.b.yaml', 'keep.txt']);
  t.match(readFileSync(join(dir, 'istio-system.a.yaml'), 'utf8'), /name: a\n/);
  t.same(
    await syncDirectory(dir, [ef('a'), ef('b')]),
    { written: 0, unchanged: 2, removed: 0 },
    'no-op writes nothing',
  );
  writeFileSync(join(dir, 'istio-system.b.yaml'), 'tampered');
  t.same(await syncDirectory(dir, [ef('a', 2), ef('b')]), { written: 2, unchanged: 0, removed: 0 });
  t.same(await syncDirectory(dir, [ef('b')]), { written: 0, unchanged: 1, removed: 1 });
  t.notOk(
    readdirSync(dir).some((f) => f.endsWith('.tmp')),
    'no temporary files left',
  );
});
