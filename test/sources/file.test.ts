import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { waitFor } from '../wait.js';
import { ConfigStore } from '../../src/cache/store.js';
import {
  FileSource,
  ManifestParseWorker,
  MAX_EXPANDED_UNITS,
  MAX_MANIFEST_FILE_BYTES,
  MAX_WALK_DEPTH,
  MAX_YAML_ALIAS_COUNT,
  parseManifestText,
  readManifest,
  type ManifestReader,
} from '../../src/sources/file.js';
import { walkManifests } from '../../src/sources/manifest-walk.js';

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

const bomb = `apiVersion: v1
kind: ConfigMap
metadata: {name: lol, namespace: ns}
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`;

const wildcard = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: ns}
spec:
  hosts:
  - *.example.com
  ports: [{number: 443, name: tls}]
`;

t.test('an alias to an unknown anchor is an error on its line, with the quoting hint', async (t) => {
  const r = parseManifestText(`${se('a', 1)}---\n${wildcard}`);
  t.same(
    r.objects.map((o) => (o.metadata as any).name),
    ['a'],
    'the other documents still load',
  );
  t.same(r.errors, [
    'document 2, line 14: "*.example.com" is a YAML alias to an anchor that is not defined (YAML reads an unquoted value starting with * as an alias; if a string such as a wildcard host was meant, quote it: "*.example.com")',
  ]);
});

t.test('an alias bomb is an error, not an exception or a billion strings', async (t) => {
  const r = parseManifestText(`${bomb}---\n${se('b', 2)}`);
  t.same(
    r.objects.map((o) => (o.metadata as any).name),
    ['b'],
  );
  t.same(r.errors, [
    `document 1, line 1: YAML aliases expand too much (an anchor is used more than Breeze's limit of ${MAX_YAML_ALIAS_COUNT} times, nested uses multiplied)`,
  ]);
});

t.test('aliases under the count limit still cannot expand a file past the size cap', async (t) => {
  const big = 'x'.repeat(200_000);
  const refs = Array.from({ length: 30 }, () => '*big').join(', ');
  const r = parseManifestText(
    `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: wide}\ndata:\n  one: &big "${big}"\n  all: [${refs}]\n`,
  );
  t.same(r.objects, []);
  t.same(r.errors, [
    `document 1, line 1: with its YAML aliases expanded the file holds more than Breeze's limit of ${MAX_EXPANDED_UNITS} values and characters; the rest of the file is skipped`,
  ]);
  // A few aliases, as people use them, are fine.
  const ok = parseManifestText(
    'apiVersion: v1\nkind: Service\nmetadata: {name: s, labels: &l {app: s}}\nspec: {selector: *l, ports: [{port: 1}]}\n',
  );
  t.same(ok.errors, []);
  t.same((ok.objects[0] as any).spec.selector, { app: 's' });
});

t.test('an object past the shared bounds is skipped with an error naming it', async (t) => {
  const deep = `${'{a: '.repeat(150)}1${'}'.repeat(150)}`;
  const r = parseManifestText(
    `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep, namespace: ns}\ndata: ${deep}\n---\n${se('c', 3)}`,
  );
  t.same(
    r.objects.map((o) => (o.metadata as any).name),
    ['c'],
  );
  t.equal(r.errors.length, 1);
  t.match(
    r.errors[0],
    /^document 1, line 1: ConfigMap ns\/deep: data\.a\.a.*: nested deeper than Breeze's limit of 100 levels; skipped$/,
  );
});

/** Parses on the test's thread (the worker is covered by the tests that omit this). */
const inline = { parse: async (text: string) => Promise.resolve(parseManifestText(text)) };

/** A sink that records what the source delivered and can be made to throw. */
function recordingStore() {
  const store = new ConfigStore();
  let replaces = 0;
  let fail = false;
  const sink = {
    apply: store.apply.bind(store),
    replace: (...args: Parameters<ConfigStore['replace']>) => {
      if (fail) throw new Error('sink down');
      replaces++;
      store.replace(...args);
    },
  };
  return {
    store,
    sink,
    replaces: () => replaces,
    failNext: (f: boolean) => (fail = f),
  };
}

function countingReader() {
  const reads: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const reader: ManifestReader = async (path) => {
    reads.push(path);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      return await readManifest(path);
    } finally {
      inFlight--;
    }
  };
  return { reader, reads, maxInFlight: () => maxInFlight };
}

function logs() {
  const warnings: string[] = [];
  const infos: string[] = [];
  const logger = {
    warn: (o: object, m: string) => warnings.push(`${(o as { file?: string }).file ?? ''}: ${m}`),
    info: (o: object, m: string) => infos.push(`${(o as { file?: string }).file ?? ''}: ${m}`),
  };
  return { logger, warnings, infos };
}

const names = (store: ConfigStore) =>
  store
    .list('ServiceEntry')
    .map((e) => e.name)
    .sort();

t.test('a poll re-reads only changed files; a deleted file removes its objects', async (t) => {
  const dir = t.testdir({ 'a.yaml': se('a', 1), 'b.yaml': se('b', 2), sub: { 'c.yml': se('c', 3) } });
  const { reader, reads, maxInFlight } = countingReader();
  const { logger } = logs();
  const { store, sink, replaces } = recordingStore();
  const source = new FileSource(dir, { logger, reader, pollIntervalMs: 3_600_000, ...inline });
  t.teardown(() => source.stop());
  await source.start(sink);
  t.same(names(store), ['a', 'b', 'c']);
  t.equal(reads.length, 3);
  const delivered = replaces();
  await source.reload();
  await source.reload();
  t.equal(reads.length, 3, 'unchanged files are neither read nor parsed again');
  t.equal(replaces(), delivered, 'nothing is delivered again');

  writeFileSync(join(dir, 'b.yaml'), se('b', 22));
  await source.reload();
  t.same(reads.slice(3), [join(dir, 'b.yaml')], 'only the changed file is read');
  t.same(store.get('ServiceEntry', 'ns', 'b')?.object.spec, {
    hosts: ['b.ns.svc.cluster.local'],
    addresses: ['240.240.3.22'],
    ports: [{ number: 22, name: 'tcp-redis' }],
  });

  unlinkSync(join(dir, 'sub', 'c.yml'));
  await source.reload();
  t.same(names(store), ['a', 'b'], 'the deleted file took its objects');
  t.equal(reads.length, 4);

  // Overlapping reloads never run at once: the extra calls fold into one more run.
  writeFileSync(join(dir, 'a.yaml'), se('a', 11));
  await Promise.all([source.reload(), source.reload(), source.reload()]);
  t.equal(maxInFlight(), 1);
  t.same(reads.slice(4), [join(dir, 'a.yaml')]);
});

t.test('a broken file is reported once per change; a fixed one says it loaded', async (t) => {
  const dir = t.testdir({ 'a.yaml': se('a', 1), 'w.yaml': wildcard });
  const { logger, warnings, infos } = logs();
  const { store, sink } = recordingStore();
  const source = new FileSource(dir, { logger, pollIntervalMs: 3_600_000 });
  t.teardown(() => source.stop());
  await source.start(sink);
  const w = join(dir, 'w.yaml');
  t.same(warnings, [
    `${w}: config dir: document 1, line 6: "*.example.com" is a YAML alias to an anchor that is not defined (YAML reads an unquoted value starting with * as an alias; if a string such as a wildcard host was meant, quote it: "*.example.com")`,
  ]);
  for (let i = 0; i < 3; i++) await source.reload();
  t.equal(warnings.length, 1, 'not again on every poll');

  writeFileSync(w, bomb);
  await source.reload();
  t.equal(warnings.length, 2, 'a change that is still broken is reported again');
  t.match(warnings[1], /YAML aliases expand too much/);
  await source.reload();
  t.equal(warnings.length, 2);

  writeFileSync(w, wildcard.replace('- *.example.com', '- "*.example.com"'));
  await source.reload();
  t.same(infos, [`${w}: config dir: loaded (1 object(s))`]);
  t.ok(store.get('ServiceEntry', 'ns', 'ext'));
  await source.reload();
  t.equal(infos.length, 1);
  t.equal(warnings.length, 2);
});

t.test('symlink loops are skipped with one warning each; symlinked files and dirs are read', async (t) => {
  const dir = t.testdir({ 'a.yaml': se('a', 1), real: { 'b.yaml': se('b', 2) } });
  symlinkSync('.', join(dir, 'loop')); // a directory that leads back to itself
  symlinkSync(join(dir, 'real'), join(dir, 'real', 'up')); // ... and to its parent, one down
  symlinkSync(join(dir, 'p.yaml'), join(dir, 'q.yaml')); // p -> q -> p: ELOOP
  symlinkSync(join(dir, 'q.yaml'), join(dir, 'p.yaml'));
  const other = mkdtempSync(join(tmpdir(), 'breeze-file-test-'));
  t.teardown(() => rmSync(other, { recursive: true, force: true }));
  writeFileSync(join(other, 'c.yaml'), se('c', 3));
  writeFileSync(join(other, 'd.yaml'), se('d', 4));
  symlinkSync(join(other, 'c.yaml'), join(dir, 'link-c.yaml'));
  symlinkSync(other, join(dir, 'linked-dir'));
  const { logger, warnings } = logs();
  const { store, sink } = recordingStore();
  const source = new FileSource(dir, { logger, pollIntervalMs: 3_600_000, ...inline });
  t.teardown(() => source.stop());
  await source.start(sink);
  t.same(names(store), ['a', 'b', 'c', 'd']);
  t.same(warnings.sort(), [
    `${join(dir, 'loop')}: config dir: a symlink loop (it leads back to a directory above it): skipped`,
    `${join(dir, 'p.yaml')}: config dir: a symlink loop (ELOOP): skipped`,
    `${join(dir, 'q.yaml')}: config dir: a symlink loop (ELOOP): skipped`,
    `${join(dir, 'real', 'up')}: config dir: a symlink loop (it leads back to a directory above it): skipped`,
  ]);
  await source.reload();
  await source.reload();
  t.equal(warnings.length, 4, 'once, not on every poll');
});

t.test('a FIFO named x.yaml is never opened; the walk goes on', async (t) => {
  const dir = t.testdir({ 'a.yaml': se('a', 1) });
  const fifo = join(dir, 'x.yaml');
  execFileSync('mkfifo', [fifo]);
  const { reader, reads } = countingReader();
  const { logger, warnings } = logs();
  const { store, sink } = recordingStore();
  const source = new FileSource(dir, { logger, reader, pollIntervalMs: 3_600_000, ...inline });
  t.teardown(() => source.stop());
  await source.start(sink);
  t.ok(source.synced());
  t.same(names(store), ['a']);
  t.same(reads, [join(dir, 'a.yaml')], 'the FIFO was not opened');
  t.same(warnings, [`${fifo}: config dir: a FIFO, not a regular file: skipped, not opened`]);
  await source.reload();
  t.equal(warnings.length, 1);
  // Even when a FIFO is swapped in after the walk, the reader opens it without blocking.
  t.same(await readManifest(fifo), {
    ok: false,
    message: 'a FIFO, not a regular file: skipped, not read',
    identity: ((await readManifest(fifo)) as { identity: string }).identity,
  });
});

t.test('a file over the size cap is skipped, never read', async (t) => {
  const dir = t.testdir({ 'a.yaml': se('a', 1) });
  const big = join(dir, 'big.yaml');
  execFileSync('truncate', ['-s', '50M', big]); // sparse: instant, no disk
  const { reader, reads } = countingReader();
  const { logger, warnings } = logs();
  const { store, sink } = recordingStore();
  const source = new FileSource(dir, { logger, reader, pollIntervalMs: 3_600_000, ...inline });
  t.teardown(() => source.stop());
  await source.start(sink);
  t.same(names(store), ['a']);
  t.same(reads, [join(dir, 'a.yaml')]);
  t.same(warnings, [
    `${big}: config dir: 52428800 bytes is larger than Breeze's limit of ${MAX_MANIFEST_FILE_BYTES} bytes (4 MiB) for a manifest file: skipped, not read`,
  ]);
  await source.reload();
  t.equal(warnings.length, 1);
  // The reader checks the open file too (a file that grew after the walk).
  const r = await readManifest(big);
  t.equal(r.ok, false);
  t.match((r as { message: string }).message, /larger than Breeze's limit/);
});

t.test('the walk is bounded in depth and entries, and says so once', async (t) => {
  const dir = t.testdir({});
  let deep = dir;
  for (let i = 0; i < MAX_WALK_DEPTH + 2; i++) deep = join(deep, `d${i}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'far.yaml'), se('far', 9));
  writeFileSync(join(dir, 'a.yaml'), se('a', 1));
  const { logger, warnings } = logs();
  const { store, sink } = recordingStore();
  const source = new FileSource(dir, { logger, pollIntervalMs: 3_600_000, ...inline });
  t.teardown(() => source.stop());
  await source.start(sink);
  t.same(names(store), ['a']);
  t.equal(warnings.length, 1);
  t.match(warnings[0], `deeper than Breeze's limit of ${MAX_WALK_DEPTH} directory levels: skipped`);

  const many = join(dir, 'many');
  mkdirSync(many);
  for (let i = 0; i < 11; i++) writeFileSync(join(many, `n${i}`), '');
  t.equal((await walkManifests([many], { maxEntries: 11 })).complete, true);
  const walk = await walkManifests([many], { maxEntries: 10 });
  t.equal(walk.complete, false, 'files not seen are not taken as deleted');
  t.same(walk.problems, [
    {
      path: many,
      message: `more than Breeze's limit of 10 directory entries: the rest are not read`,
      severity: 'error',
    },
  ]);
});

t.test('a failing sink never throws out of the poll; the next poll delivers', async (t) => {
  const dir = t.testdir({ 'a.yaml': se('a', 1) });
  const { logger, warnings } = logs();
  const { store, sink, failNext } = recordingStore();
  const source = new FileSource(dir, { logger, pollIntervalMs: 50, ...inline });
  t.teardown(() => source.stop());
  await source.start(sink);
  failNext(true);
  writeFileSync(join(dir, 'b.yaml'), se('b', 2));
  await waitFor('the failure is logged', () => warnings.some((w) => w.includes('reload failed')), 10_000);
  failNext(false);
  await waitFor('a later poll delivers, with no further change', () => names(store).length === 2, 10_000);
  t.same(names(store), ['a', 'b']);
});

t.test('a parser worker that cannot start: parsing goes on, on the main thread, said once', async (t) => {
  const why: string[] = [];
  const worker = new ManifestParseWorker((w) => why.push(w), new URL('./no-such-worker.js', import.meta.url));
  t.teardown(() => worker.close());
  t.same(await worker.parse(se('a', 1)), parseManifestText(se('a', 1)));
  t.same(await worker.parse(wildcard), parseManifestText(wildcard));
  t.equal(why.length, 1);
  t.match(why[0], /the parser failed/);
});

t.test('the worker parses what the main thread would, and reports a file it cannot', async (t) => {
  const worker = new ManifestParseWorker();
  t.teardown(() => worker.close());
  for (const text of [se('a', 1), wildcard, bomb, `${se('b', 2)}---\nkind: [oops\n`])
    t.same(await worker.parse(text), parseManifestText(text));
});
