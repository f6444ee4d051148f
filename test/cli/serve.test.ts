// The real CLI in local mode, as `npm start` runs it: certificates created on first run and reused,
// the examples loaded, a review answered over TLS, and a clean exit on SIGTERM.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { AdmissionFeed } from '../../src/sources/admission.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { ConfigStore } from '../../src/cache/store.js';

const repo = new URL('../../', import.meta.url).pathname;
const main = join(repo, 'src/cli/main.ts');

function startServe(cwd: string) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      main,
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--health-listen',
      '127.0.0.1:0',
      '--config-dir',
      join(repo, 'examples'),
    ],
    { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BREEZE_LOG_LEVEL: 'warn' } },
  );
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout });
  const ready = new Promise<{ port: number }>((resolve, reject) => {
    let port = 0;
    rl.on('line', (line) => {
      lines.push(line);
      const m = /POST https:\/\/127\.0\.0\.1:(\d+)\/validate/.exec(line);
      if (m) port = Number(m[1]);
      if (line.trimStart().startsWith('curl ')) resolve({ port }); // the last line it prints
    });
    child.once('exit', (code) => reject(new Error(`serve exited early with ${code}`)));
  });
  return { child, lines, ready };
}

function post(port: number, path: string, body: string, ca: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', ca, headers: { 'content-type': 'application/json' } },
      (res) => {
        let data = '';
        res.on('data', (c: Buffer) => (data += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(data) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

t.test('breeze serve (local mode) end to end', async (t) => {
  const cwd = t.testdir({});
  const first = startServe(cwd);
  const { port } = await first.ready;
  t.match(first.lines.join('\n'), /Breeze local mode: 14 objects from .*examples\/ in the config cache/);
  t.match(
    first.lines.join('\n'),
    /curl --cacert certs\/ca\.crt -H 'Content-Type: application\/json' --data @.*reviews\/serviceentry-invalid\.json/,
  );
  const ca = readFileSync(join(cwd, 'certs/ca.crt'), 'utf8');
  const certBefore = readFileSync(join(cwd, 'certs/tls.crt'), 'utf8');

  const invalid = readFileSync(join(repo, 'examples/reviews/serviceentry-invalid.json'), 'utf8');
  const denied = await post(port, '/validate', invalid, ca);
  t.equal(denied.status, 200);
  t.equal(denied.json.response.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
  t.equal(denied.json.response.allowed, false);
  t.equal(denied.json.response.status.code, 422);
  t.match(
    denied.json.response.status.message,
    /^ServiceEntry\.networking\.istio\.io "[^"]+" is invalid:(\n\* | )spec\.ports\[1\]: port "tcp-dubbo" needs the annotation "interface"/,
  );

  const valid = readFileSync(join(repo, 'examples/reviews/serviceentry-valid.json'), 'utf8');
  const mutated = await post(port, '/mutate', valid, ca);
  const patch = JSON.parse(Buffer.from(mutated.json.response.patch, 'base64').toString());
  t.match(patch, [
    { op: 'add', path: '/spec/ports/0/protocol', value: 'TCP' },
    { op: 'add', path: '/spec/addresses', value: [/^240\.240\.\d+\.\d+$/] },
  ]);

  // The admitted (valid) entry reaches the cache at once and its inbound filter the out dir.
  const allowed = await post(port, '/validate', valid, ca);
  t.equal(allowed.json.response.allowed, true);
  const file = join(
    cwd,
    'out',
    'istio-system.breeze-inbound-org.apache.dubbo.samples.orders.api.orderservice-20880.yaml',
  );
  const deadline = Date.now() + 20_000;
  while (!existsSync(file) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.ok(existsSync(file), 'the EnvoyFilter for the admitted service is written');
  t.ok(
    existsSync(
      join(
        cwd,
        'out',
        'istio-system.breeze-outbound-org.apache.dubbo.samples.basic.api.demoservice-240.240.0.20-20880.yaml',
      ),
    ),
    'examples written at start',
  );

  first.child.kill('SIGTERM');
  const [code] = await once(first.child, 'exit');
  t.equal(code, 0, 'exits 0 after draining on SIGTERM');

  const second = startServe(cwd);
  await second.ready;
  t.equal(
    readFileSync(join(cwd, 'certs/tls.crt'), 'utf8'),
    certBefore,
    'certificates are reused on the next start',
  );
  second.child.kill('SIGINT');
  t.equal((await once(second.child, 'exit'))[0], 0);
});

t.test('bad flags exit 2 with the flag named', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve', '--listen', 'nowhere'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const [code] = await once(child, 'exit');
  t.equal(code, 2);
  t.match(err, 'breeze: --listen (BREEZE_LISTEN): "nowhere" must be host:port, :port or [ipv6]:port');
});

t.test('breeze certs writes a CA and a serving pair', async (t) => {
  const dir = t.testdir({});
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      main,
      'certs',
      '--out-dir',
      dir,
      '--host',
      'breeze.istio-system.svc',
      '--host',
      '10.0.0.7',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const [code] = await once(child, 'exit');
  t.equal(code, 0);
  const { X509Certificate } = await import('node:crypto');
  const cert = new X509Certificate(readFileSync(join(dir, 'tls.crt')));
  t.equal(cert.checkHost('breeze.istio-system.svc'), 'breeze.istio-system.svc');
  t.equal(cert.checkIP('10.0.0.7'), '10.0.0.7');
  t.ok(cert.verify(new X509Certificate(readFileSync(join(dir, 'ca.crt'))).publicKey));
});

t.test('the admission feed: pending at once, dropped after the grace period unless confirmed', async (t) => {
  let now = 0;
  const store = new ConfigStore('cluster.local', () => now);
  const metrics = createMetrics();
  const feed = new AdmissionFeed(store, {
    graceMs: 30_000,
    logger: createLogger({ level: 'silent' }),
    metrics,
  });
  const object = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'a' },
    spec: {
      hosts: ['a.ns.svc.cluster.local'],
      addresses: ['240.240.1.1'],
      ports: [{ number: 6379, name: 'tcp-redis' }],
    },
  };
  feed.record({ operation: 'CREATE', kind: 'ServiceEntry', namespace: 'ns', name: 'a', object });
  t.match(store.get('ServiceEntry', 'ns', 'a'), { origin: 'admission', confirmed: false, namespace: 'ns' });
  t.equal(store.addressOwner('240.240.1.1'), 'ServiceEntry/ns/a', 'its VIP is taken at once');
  t.equal(store.protocolServices('a.ns.svc.cluster.local').length, 1);
  now = 31_000;
  feed.expire();
  t.equal(store.get('ServiceEntry', 'ns', 'a'), undefined, 'never persisted: dropped');
  t.equal(store.addressOwner('240.240.1.1'), undefined);
  t.match(
    await metrics.registry.getSingleMetricAsString('breeze_cache_admission_unconfirmed_dropped_total'),
    / 1$/m,
  );
  feed.record({ operation: 'CREATE', kind: 'ServiceEntry', namespace: 'ns', name: 'a', object });
  store.apply('kubernetes', 'ServiceEntry', 'ns', 'a', {
    ...object,
    metadata: { name: 'a', namespace: 'ns', resourceVersion: '9' },
  });
  now = 90_000;
  feed.expire();
  t.match(store.get('ServiceEntry', 'ns', 'a'), { origin: 'kubernetes', confirmed: true }, 'confirmed: kept');
});
