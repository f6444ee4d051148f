// Finding 9 (secrets): EnvoyFilter files in `out/` may hold Redis passwords (inline mode); they
// were written 0644 (world-readable). Now every file is 0600 whatever the umask: the temporary file
// is created with that mode (exclusively) before any byte is written, and the rename keeps it. A
// file an older version left 0644 is tightened when found unchanged.
import { chmod, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DirectoryEnvoyFilterSink, fileNameOf } from '../../src/reconcile/sinks/directory.js';

const signal = new AbortController().signal;

const envoyFilter = (name: string, password: string) => ({
  apiVersion: 'networking.istio.io/v1alpha3',
  kind: 'EnvoyFilter',
  metadata: { name, namespace: 'istio-system', labels: { 'app.kubernetes.io/managed-by': 'breeze' } },
  spec: {
    configPatches: [
      {
        applyTo: 'NETWORK_FILTER',
        patch: {
          operation: 'REPLACE',
          value: { typedConfig: { downstreamAuthPasswords: [{ inlineString: password }] } },
        },
      },
    ],
  },
});

const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

t.test('files are written 0600 even with umask 0; unchanged 0644 files are tightened', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'breeze-out-'));
  const previous = process.umask(0); // the mode must come from the open, not from the umask
  t.teardown(async () => {
    process.umask(previous);
    await rm(dir, { recursive: true, force: true });
  });
  const out = join(dir, 'out');
  const sink = new DirectoryEnvoyFilterSink(out);
  const ef = envoyFilter('breeze-redis', 'pw-1');
  t.equal(await sink.apply(ef, signal), 'created');
  const path = join(out, fileNameOf(ef));
  t.equal(await modeOf(path), 0o600, 'created 0600');
  t.equal(await modeOf(out), 0o700, 'a directory Breeze creates is owner-only');

  t.equal(await sink.apply(envoyFilter('breeze-redis', 'pw-2'), signal), 'updated');
  t.equal(await modeOf(path), 0o600, 'updated 0600');
  t.same(
    (await readdir(out)).filter((f) => f.endsWith('.tmp')),
    [],
    'no temporary file left',
  );

  // A file from an older version (0644) with the same content: tightened, not rewritten.
  await chmod(path, 0o644);
  t.equal(await sink.apply(envoyFilter('breeze-redis', 'pw-2'), signal), 'unchanged');
  t.equal(await modeOf(path), 0o600, 'tightened to 0600');
});

t.test('the temporary file is never opened through an existing path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'breeze-out-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // A symlink where a file goes is replaced by the rename, never written through.
  const target = join(dir, 'elsewhere.txt');
  await writeFile(target, 'untouched');
  const ef = envoyFilter('breeze-link', 'pw');
  await symlink(target, join(dir, fileNameOf(ef)));
  await t.rejects(
    new DirectoryEnvoyFilterSink(dir).apply(ef, signal),
    { code: 'FOREIGN_OBJECT' },
    'a foreign file is left alone',
  );
  t.equal(await readFile(target, 'utf8'), 'untouched');
});
