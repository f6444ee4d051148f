// No reload callback can throw out of a timer (issue 11: "no timer or interval callback can throw
// out"). A failure anywhere in a reload check (here: the metrics counter itself throwing) must end
// in a log line, leave the process running and keep later checks working.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import t from 'tap';
import { createCa, createServingCert } from '../../src/pki/certs.js';
import { CertificateReloader } from '../../src/server/tls.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import { waitFor } from '../wait.js';
import { captureLogger, HOSTS } from './helpers.js';

t.test('a throwing reload step is logged, not thrown out of the poll timer', async (t) => {
  const dir = t.testdir();
  const ca = await createCa();
  const [a, b, c] = await Promise.all([1, 2, 3].map(() => createServingCert(ca, HOSTS)));
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  const caFile = join(dir, 'client-ca.crt');
  const put = (file: string, content: string): void => {
    writeFileSync(`${file}.tmp`, content);
    renameSync(`${file}.tmp`, file);
  };
  put(certFile, a!.cert);
  put(keyFile, a!.key);
  put(caFile, ca.cert);
  let throwOnReload = true;
  const metrics = {
    tlsCertificateExpiry: { set: () => undefined },
    tlsReloads: {
      inc: () => {
        if (throwOnReload) throw new Error('counter exploded');
      },
    },
  } as unknown as Metrics;
  const log = captureLogger();
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown): void => {
    unhandled.push(err);
  };
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  const reloader = new CertificateReloader({
    certFile,
    keyFile,
    clientCaFile: caFile,
    pollIntervalMs: 50,
    logger: log.logger,
    metrics,
  });
  await reloader.start();
  t.teardown(() => reloader.stop());
  const contexts: SecureContextOptions[] = [];
  reloader.attach({
    setSecureContext: (o: SecureContextOptions) => contexts.push(o),
  } as unknown as TlsServer);
  t.equal(contexts.at(-1)?.cert, a!.cert);
  t.equal(contexts.at(-1)?.ca, ca.cert, 'the client CA is part of every secure context');
  let listenerCalls = 0;
  reloader.onClientCaChange(() => {
    listenerCalls++;
    throw new Error('listener exploded');
  });

  put(certFile, b!.cert);
  put(keyFile, b!.key);
  await waitFor('the failed check to be logged', () =>
    log.lines().some((l) => l.msg === 'certificate reload check failed' && l.reason === 'counter exploded'),
  );
  // The accepted pair reached the server although reporting it threw.
  t.equal(reloader.current().cert, b!.cert);
  t.equal(contexts.at(-1)?.cert, b!.cert, 'applied to the server');
  t.equal(contexts.at(-1)?.ca, ca.cert);
  // Later checks still run: the next pair and a new CA bundle are picked up once the counter works.
  throwOnReload = false;
  put(certFile, c!.cert);
  put(keyFile, c!.key);
  const other = await createCa();
  put(caFile, other.cert + ca.cert);
  await waitFor('the CA listener to run', () => listenerCalls === 1);
  await waitFor('the listener failure to be logged', () =>
    log.lines().some((l) => l.msg === 'client CA change listener failed' && l.reason === 'listener exploded'),
  );
  t.equal(reloader.current().cert, c!.cert, 'the newest pair is in use');
  t.equal(reloader.currentClientCa()?.certificates.length, 2, 'the new bundle is in use');
  t.equal(contexts.at(-1)?.cert, c!.cert);
  t.equal(contexts.at(-1)?.ca, `${other.cert}${ca.cert}`);
  t.same(unhandled, [], 'no unhandled rejection');
});
