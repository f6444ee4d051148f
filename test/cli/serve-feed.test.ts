// Which `breeze serve` configurations let admitted changes into the config cache: local mode on
// loopback only. A local webhook on another address is reachable by others: the feed is off there
// (said once at start), and an admitted review changes nothing but its own answer.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import { isLoopback, startBreeze } from '../../src/cli/serve.js';
import { parseServeConfig } from '../../src/config/serve.js';
import { writeDevCertificates } from '../../src/pki/certs.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { HOSTS, send } from '../server/helpers.js';

const repo = new URL('../../', import.meta.url).pathname;

async function local(t: Test, listenHost: string) {
  const dir = t.testdir({ config: {}, out: {} });
  const certs = await writeDevCertificates(join(dir, 'tls'), HOSTS);
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const config = parseServeConfig(
    [
      '--listen',
      `${listenHost}:0`,
      '--health-listen',
      '127.0.0.1:0',
      '--tls-cert-file',
      certs.certFile,
      '--tls-key-file',
      certs.keyFile,
      '--config-dir',
      join(dir, 'config'),
      '--out-dir',
      join(dir, 'out'),
    ],
    {},
  );
  const breeze = await startBreeze(config, {}, { logger: createLogger({ level: 'info', destination }) });
  t.teardown(() => breeze.stop());
  await breeze.writing;
  return { breeze, logs, ca: readFileSync(certs.caFile, 'utf8') };
}

const review = readFileSync(join(repo, 'examples/reviews/serviceentry-valid.json'), 'utf8');
const OFF = /admission source off: the webhook listens on a non-loopback address/;

t.test('loopback addresses', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
    t.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.7', 'breeze.example', '128.0.0.1']) t.notOk(isLoopback(h), h);
});

t.test('local mode on loopback: an admitted change is pending in the cache at once', async (t) => {
  const { breeze, logs, ca } = await local(t, '127.0.0.1');
  const answer = await send({ port: breeze.webhookPort, body: review, ca });
  t.equal(answer.json.response.allowed, true);
  t.equal(breeze.store.pendingKeys().length, 1, 'the fast path');
  t.notMatch(logs.join('\n'), OFF);
});

t.test('local mode on a non-loopback address: the feed is off, said once', async (t) => {
  const { breeze, logs, ca } = await local(t, '0.0.0.0');
  const answer = await send({ port: breeze.webhookPort, body: review, ca });
  t.equal(answer.json.response.allowed, true, 'the review is still answered');
  t.same(breeze.store.pendingKeys(), [], 'nothing entered the cache');
  t.equal(breeze.store.size, 0);
  t.equal(logs.filter((l) => OFF.test(l)).length, 1, 'one warning at start');
});
