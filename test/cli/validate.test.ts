import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
