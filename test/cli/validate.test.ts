import { execFileSync, spawnSync } from 'node:child_process';
import { symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { runValidate } from '../../src/cli/validate.js';

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const summary = await runValidate(
    argv,
    (l) => out.push(l),
    (l) => err.push(l),
  );
  return { out, err, summary };
}

t.test('the examples validate clean', async (t) => {
  const { out, summary } = await run(['-f', 'examples']);
  t.equal(summary.exitCode, 0, out.join('\n'));
  t.equal(summary.denied, 0);
  t.ok(summary.checked >= 8);
});

t.test('one line per problem, exit 1 on a denial, warnings do not fail', async (t) => {
  const dir = t.testdir({
    'bad.yaml': `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: orders
  namespace: dubbo
spec:
  hosts: [orders.dubbo.svc.cluster.local]
  ports:
    - {number: 20880, name: tcp-dubbo, protocol: TCP}
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: typo
spec:
  hosts: [typo.default.svc.cluster.local]
  ports:
    - {number: 6379, name: tcp-reddis}
`,
  });
  const file = join(dir, 'bad.yaml');
  const { out, err, summary } = await run(['-f', file]);
  t.same(out, [
    `${file}: ServiceEntry dubbo/orders: spec.ports[0]: port "tcp-dubbo" needs the annotation "interface" (the Dubbo interface, e.g. org.apache.dubbo.samples.DemoService)`,
    `${file}: ServiceEntry dubbo/orders: spec.addresses: a dubbo service needs an IP for its listener and resolution NONE cannot get one: add spec.addresses, or set spec.resolution to DNS or STATIC so Breeze allocates a VIP`,
    `${file}: ServiceEntry default/typo: warning: spec.ports[0].name: "tcp-reddis" looks like a misspelling of "tcp-redis" (protocol redis)`,
  ]);
  t.same(err, ['2 object(s) checked: 1 denied, 1 warning(s)']);
  t.equal(summary.exitCode, 1);
});

t.test('warnings alone exit 0; unreadable and unparsable files exit 1', async (t) => {
  const dir = t.testdir({ 'broken.yaml': 'kind: [unclosed\n' });
  writeFileSync(
    join(dir, 'warn.yaml'),
    'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: w}\nspec:\n  hosts: [w.default.svc.cluster.local]\n  ports: [{number: 1, name: tcp-dubo}]\n',
  );
  t.equal((await run(['-f', join(dir, 'warn.yaml')])).summary.exitCode, 0);
  const broken = await run(['-f', join(dir, 'broken.yaml'), join(dir, 'missing.yaml')]);
  t.equal(broken.summary.exitCode, 1);
  t.match(broken.out[0], `${join(dir, 'broken.yaml')}: `);
  t.equal(broken.out[1], `${join(dir, 'missing.yaml')}: cannot read: ENOENT`);
});

t.test('usage errors', async (t) => {
  await t.rejects(run([]), { code: 'BAD_FLAG', message: /no manifests given/ });
  await t.rejects(run(['-f', 'x', '--domain', '_']), { code: 'BAD_FLAG' });
});

const wildcardSe = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts:
  - *.example.com
  ports: [{number: 443, name: tls}]
  resolution: NONE
`;

const aliasBomb = `apiVersion: v1
kind: ConfigMap
metadata: {name: lol}
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
`;

t.test('an unquoted *.example.com host and an alias bomb are invalid input, not a crash', async (t) => {
  const dir = t.testdir({ 'wildcard.yaml': wildcardSe, 'bomb.yaml': aliasBomb });
  const wildcard = join(dir, 'wildcard.yaml');
  const bomb = join(dir, 'bomb.yaml');
  const { out, err, summary } = await run(['-f', wildcard, '-f', bomb]);
  t.same(out, [
    `${wildcard}: document 1, line 6: "*.example.com" is a YAML alias to an anchor that is not defined (YAML reads an unquoted value starting with * as an alias; if a string such as a wildcard host was meant, quote it: "*.example.com")`,
    `${bomb}: document 1, line 1: YAML aliases expand too much (an anchor is used more than Breeze's limit of 50 times, nested uses multiplied)`,
  ]);
  t.same(err, ['0 object(s) checked: 0 denied, 0 warning(s), 2 file error(s)']);
  t.equal(summary.exitCode, 1);

  // The quoted form is what was meant, and validates.
  writeFileSync(wildcard, wildcardSe.replace('- *.example.com', '- "*.example.com"'));
  t.equal((await run(['-f', wildcard])).summary.exitCode, 0);
});

t.test('the real command prints the problem line and exits 1, never "unexpected error"', async (t) => {
  const dir = t.testdir({ 'wildcard.yaml': wildcardSe });
  const file = join(dir, 'wildcard.yaml');
  const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', main, 'validate', '-f', file], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(r.status, 1);
  t.match(r.stdout, `${file}: document 1, line 6: "*.example.com" is a YAML alias`);
  t.notMatch(r.stderr, /unexpected error/);
});

t.test('FIFOs, files over the cap and symlink loops in a directory', async (t) => {
  const dir = t.testdir({
    'ok.yaml':
      'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ok}\nspec:\n  hosts: [ok.default.svc.cluster.local]\n  ports: [{number: 1, name: tcp}]\n',
  });
  execFileSync('mkfifo', [join(dir, 'x.yaml')]);
  execFileSync('truncate', ['-s', '50M', join(dir, 'big.yaml')]);
  symlinkSync('.', join(dir, 'loop'));
  const { out, err, summary } = await run(['-f', dir]);
  t.same(out, [
    `${join(dir, 'big.yaml')}: 52428800 bytes is larger than Breeze's limit of 4194304 bytes (4 MiB) for a manifest file: skipped, not read`,
    `${join(dir, 'x.yaml')}: a FIFO, not a regular file: skipped, not opened`,
    `${join(dir, 'loop')}: warning: a symlink loop (it leads back to a directory above it): skipped`,
  ]);
  t.same(err, ['1 object(s) checked: 0 denied, 0 warning(s), 2 file error(s)']);
  t.equal(summary.exitCode, 1, 'a manifest that could not be read fails the run');

  // A loop alone loses no manifest: a warning, exit 0.
  unlinkSync(join(dir, 'x.yaml'));
  unlinkSync(join(dir, 'big.yaml'));
  const again = await run(['-f', dir]);
  t.equal(again.summary.exitCode, 0);
  t.same(again.out, [
    `${join(dir, 'loop')}: warning: a symlink loop (it leads back to a directory above it): skipped`,
  ]);
});
