import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { waitFor } from '../wait.js';
import { ConfigStore } from '../../src/cache/store.js';
import { FileSource, parseManifestText } from '../../src/sources/file.js';

const se = (name: string, port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: ns}
spec:
  hosts: [${name}.ns.svc.cluster.local]
  addresses: [240.240.3.${port % 200}]
  ports: [{number: ${port}, name: tcp-redis}]
`;

t.test('malformed documents are reported with their index and skipped', async (t) => {
  const r = parseManifestText(`${se('a', 1)}---\nkind: [oops\n---\n- just\n- a list\n---\n${se('b', 2)}`);
  t.same(
    r.objects.map((o) => (o.metadata as any).name),
    ['a', 'b'],
  );
  t.equal(r.errors.length, 2);
  t.match(r.errors[0], /^document 2, line 10: /);
  t.equal(r.errors[1], 'document 3, line 11: not an object with apiVersion and kind');
});

t.test('the directory is delivered, then followed; a broken file deletes nothing', async (t) => {
  const dir = t.testdir({ 'a.yaml': se('a', 6379), sub: { 'b.yaml': se('b', 6380) } });
  const store = new ConfigStore();
  const warnings: string[] = [];
  const source = new FileSource(dir, { logger: { warn: (_o, m) => warnings.push(m) }, pollIntervalMs: 200 });
  t.teardown(() => source.stop());
  await source.start(store);
  t.ok(source.synced());
  t.same(
    store
      .list('ServiceEntry')
      .map((e) => e.name)
      .sort(),
    ['a', 'b'],
  );
  writeFileSync(join(dir, 'c.yaml'), se('c', 6381));
  await waitFor('a new file is picked up', () => store.get('ServiceEntry', 'ns', 'c') !== undefined, 10_000);
  writeFileSync(join(dir, 'a.yaml'), 'kind: [half-saved');
  await waitFor('the broken file is reported', () => warnings.some((w) => w.includes('document 1')), 10_000);
  t.ok(store.get('ServiceEntry', 'ns', 'a'), 'its objects stay from the last good read');
  writeFileSync(join(dir, 'a.yaml'), '# emptied\n');
  await waitFor(
    'an emptied file deletes its objects',
    () => store.get('ServiceEntry', 'ns', 'a') === undefined,
    10_000,
  );
  t.ok(store.get('ServiceEntry', 'ns', 'b'));
});
