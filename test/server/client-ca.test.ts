// --client-ca-file over real TLS: the webhook port requires a client certificate that chains to
// the bundle (no certificate or a foreign one fails the handshake and never reaches /validate),
// the bundle is reloaded on change (a broken one is kept out), --client-allowed-names filters by
// Common Name, and the plain-HTTP health port is unaffected. Attack reproduced: a pod POSTing a
// forged review straight to the webhook port (issue 11, finding 3).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { createCa, createServingCert, type PemPair } from '../../src/pki/certs.js';
import { checkClientCa, readTlsFile, MAX_TLS_FILE_BYTES } from '../../src/server/tls.js';
import { isBreezeError } from '../../src/errors.js';
import { waitFor } from '../wait.js';
import { getHealth, HOSTS, makeCerts, sample, startHarness, validV1, type Harness } from './helpers.js';

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A client certificate (EKU clientAuth, CN `cn`) signed by `ca`. */
async function clientCert(ca: PemPair, cn: string): Promise<PemPair> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await globalThis.crypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(ca.key),
    ALGORITHM,
    false,
    ['sign'],
  );
  const keys = await globalThis.crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `4${randomBytes(15).toString('hex')}`,
    subject: [{ CN: [cn] }],
    issuer: caCert.subjectName,
    notBefore: new Date(Date.now() - 300_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  const der = await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: cert.toString('pem'), key: x509.PemConverter.encode(der, 'PRIVATE KEY') };
}

interface Answer {
  status: number;
  json: any;
}

/** POSTs a review to /validate with an optional client certificate; rejects on any TLS failure. */
function post(h: Harness, uid: string, client?: PemPair, agent: Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: h.port,
        method: 'POST',
        path: '/validate',
        ca: h.certs.ca,
        servername: 'localhost',
        agent,
        ...(client === undefined ? {} : { cert: client.cert, key: client.key }),
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(validV1(uid)));
  });
}

/** The request fails below HTTP: the error code (an OpenSSL alert or a reset), never an answer. */
async function refused(p: Promise<Answer>): Promise<string> {
  try {
    const a = await p;
    return `answered ${a.status}`;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? code : (err as Error).message;
  }
}

/** Replaces `file` atomically (as a ConfigMap volume update does). */
function replace(file: string, content: string): void {
  writeFileSync(`${file}.tmp`, content);
  renameSync(`${file}.tmp`, file);
}

const admissions = async (h: Harness): Promise<number> => {
  const text = (await getHealth(h.healthPort, '/metrics')).text;
  return sample(text, 'breeze_admission_requests_total', { webhook: 'validate' }) ?? 0;
};

t.test('forged review without a client certificate never reaches /validate', async (t) => {
  const dir = t.testdir();
  const clientCa = await createCa({ commonName: 'apiserver-client-ca' });
  const otherCa = await createCa({ commonName: 'attacker-ca' });
  const caFile = join(dir, 'client-ca.crt');
  writeFileSync(caFile, clientCa.cert);
  const h = await startHarness(t, { certs: await makeCerts(dir), clientCaFile: caFile });

  // The attack: a pod POSTs a review straight to the webhook port, with no certificate.
  const none = await refused(post(h, 'no-cert'));
  t.match(none, /CERTIFICATE_REQUIRED|ECONNRESET|socket hang up/, `no certificate: ${none}`);
  // A certificate from another CA (self-made by the attacker).
  const forged = await clientCert(otherCa, 'kube-apiserver');
  const wrong = await refused(post(h, 'wrong-ca', forged));
  t.match(wrong, /UNKNOWN_CA|ECONNRESET|socket hang up/, `wrong CA: ${wrong}`);
  // The bundle's own key pair used as a "client certificate" is not enough either without clientAuth.
  t.equal(h.admitted.length, 0, 'nothing reached the admission feed');
  t.equal(await admissions(h), 0, 'no admission request was counted');
  await waitFor('a rate-limited handshake warning', () =>
    h.log.lines().some((l) => l.msg.startsWith('webhook client failed the TLS handshake')),
  );

  // The API server's certificate from the right CA: a normal answer.
  const good = await post(h, 'good', await clientCert(clientCa, 'kube-apiserver'));
  t.equal(good.status, 200);
  t.equal(good.json.response.uid, 'good');
  t.equal(good.json.response.allowed, true);
  t.equal(h.admitted.length, 1);

  // The health port stays plain HTTP with no client certificate.
  t.equal((await getHealth(h.healthPort, '/healthz')).status, 200);
  t.equal((await getHealth(h.healthPort, '/readyz')).status, 200);
});

t.test('the CA bundle is reloaded: new CA accepted, old one refused, broken one kept out', async (t) => {
  const dir = t.testdir();
  const caA = await createCa({ commonName: 'client-ca-a' });
  const caB = await createCa({ commonName: 'client-ca-b' });
  const certA = await clientCert(caA, 'kube-apiserver');
  const certB = await clientCert(caB, 'kube-apiserver');
  const caFile = join(dir, 'client-ca.crt');
  writeFileSync(caFile, caA.cert);
  const h = await startHarness(t, {
    certs: await makeCerts(dir),
    clientCaFile: caFile,
    pollIntervalMs: 100,
  });
  const agentA = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agentA.destroy());
  t.equal((await post(h, 'a-1', certA, agentA)).status, 200);
  t.match(await refused(post(h, 'b-0', certB)), /UNKNOWN_CA|ECONNRESET|socket hang up/);

  // Rotate to B: B's clients get in, A's are refused, A's open keep-alive connection is closed.
  replace(caFile, caB.cert);
  await waitFor(
    'the new CA to be used',
    async () => (await refused(post(h, 'b-x', certB))) === 'answered 200',
  );
  t.match(await refused(post(h, 'a-2', certA)), /UNKNOWN_CA|ECONNRESET|socket hang up/);
  t.match(
    await refused(post(h, 'a-keepalive', certA, agentA)),
    /UNKNOWN_CA|ECONNRESET|socket hang up/,
    'the keep-alive connection authenticated by the old CA does not carry another request',
  );
  t.ok(
    h.log.lines().some((l) => l.msg === 'reloaded client CA bundle' && l.certificates === 1),
    'reload logged',
  );

  // A broken bundle (garbage, then a truncated certificate) is rejected and B stays in use.
  replace(caFile, 'not a certificate\n');
  await waitFor('the garbage bundle to be rejected', () =>
    h.log.lines().some((l) => l.msg === 'rejected new client CA bundle; keeping the current one'),
  );
  replace(caFile, caB.cert.slice(0, 200) + '\n-----END CERTIFICATE-----\n');
  await waitFor('the truncated bundle to be rejected', () =>
    h.log
      .lines()
      .some((l) => l.msg.startsWith('rejected new client CA bundle') && /does not parse/.test(l.reason)),
  );
  t.equal((await post(h, 'b-after-broken', certB)).status, 200, 'B still accepted');
  t.match(await refused(post(h, 'a-after-broken', certA)), /UNKNOWN_CA|ECONNRESET|socket hang up/);
  const failures = sample((await getHealth(h.healthPort, '/metrics')).text, 'breeze_tls_reloads_total', {
    result: 'failure',
  });
  t.equal(failures, 2, 'each broken bundle counted once, not on every poll');

  // A bundle holding both CAs (the overlap of a CA rotation) accepts both.
  replace(caFile, caA.cert + caB.cert);
  await waitFor('the two-CA bundle', async () => (await refused(post(h, 'a-3', certA))) === 'answered 200');
  t.equal((await post(h, 'b-3', certB)).status, 200);
});

t.test('a serving certificate reload keeps requiring client certificates', async (t) => {
  const dir = t.testdir();
  const servingCa = await createCa({ commonName: 'serving-ca' });
  const first = await createServingCert(servingCa, HOSTS);
  const second = await createServingCert(servingCa, HOSTS);
  const clientCa = await createCa({ commonName: 'client-ca' });
  const files = {
    certFile: join(dir, 'tls.crt'),
    keyFile: join(dir, 'tls.key'),
    caFile: join(dir, 'client-ca.crt'),
  };
  writeFileSync(files.certFile, first.cert);
  writeFileSync(files.keyFile, first.key);
  writeFileSync(files.caFile, clientCa.cert);
  const h = await startHarness(t, {
    certs: { dir, ca: servingCa.cert, caFile: '', certFile: files.certFile, keyFile: files.keyFile },
    clientCaFile: files.caFile,
    pollIntervalMs: 100,
  });
  const good = await clientCert(clientCa, 'kube-apiserver');
  t.equal((await post(h, 'before', good)).status, 200);
  // The new pair replaces the whole secure context: the client CA must come along with it.
  writeFileSync(`${files.keyFile}.tmp`, second.key);
  writeFileSync(`${files.certFile}.tmp`, second.cert);
  renameSync(`${files.keyFile}.tmp`, files.keyFile);
  renameSync(`${files.certFile}.tmp`, files.certFile);
  await waitFor('the new serving certificate', () =>
    h.log.lines().some((l) => l.msg === 'reloaded serving certificate'),
  );
  t.equal((await post(h, 'after', good)).status, 200, 'the right client certificate still works');
  t.match(await refused(post(h, 'after-none')), /CERTIFICATE_REQUIRED|ECONNRESET|socket hang up/);
  t.equal(h.admitted.length, 2);
});

t.test('--client-allowed-names: a verified certificate with another Common Name is refused', async (t) => {
  const dir = t.testdir();
  const clusterCa = await createCa({ commonName: 'kubernetes' });
  const caFile = join(dir, 'client-ca.crt');
  writeFileSync(caFile, clusterCa.cert);
  const h = await startHarness(t, {
    certs: await makeCerts(dir),
    clientCaFile: caFile,
    clientAllowedNames: ['kube-apiserver-webhook-client'],
  });
  // A kubelet's certificate from the same (cluster) CA: verified, but not the API server.
  const kubelet = await clientCert(clusterCa, 'system:node:worker-1');
  t.match(await refused(post(h, 'kubelet', kubelet)), /ECONNRESET|socket hang up/);
  t.equal(h.admitted.length, 0);
  await waitFor('the rejection line', () =>
    h.log
      .lines()
      .some(
        (l) =>
          l.msg === 'rejected a webhook client certificate' &&
          l.reason === 'common name not allowed' &&
          l.commonNames[0] === 'system:node:worker-1',
      ),
  );
  const ok = await post(h, 'apiserver', await clientCert(clusterCa, 'kube-apiserver-webhook-client'));
  t.equal(ok.status, 200);
  t.equal(ok.json.response.uid, 'apiserver');
});

t.test('a client CA file that does not load stops the start with TLS_MATERIAL', async (t) => {
  const dir = t.testdir();
  const certs = await makeCerts(dir);
  const caFile = join(dir, 'client-ca.crt');
  for (const content of ['', 'garbage', certs.ca.replace(/[A-Za-z0-9+/]{20}\n/, '!!!!\n')]) {
    writeFileSync(caFile, content);
    await t.rejects(startHarness(t, { certs, clientCaFile: caFile }), { code: 'TLS_MATERIAL' });
  }
  await t.rejects(startHarness(t, { certs, clientCaFile: join(dir, 'missing.crt') }), {
    code: 'TLS_MATERIAL',
    message: /cannot read/,
  });
});

t.test('checkClientCa and readTlsFile bound what they accept', async (t) => {
  const ca = await createCa();
  const other = await createCa();
  // Comments and non-certificate blocks around the certificates are left out of what OpenSSL sees.
  const loaded = checkClientCa(`# bundle\n${ca.cert}${ca.key}\n${other.cert}`, 'bundle.pem');
  t.equal(loaded.certificates.length, 2);
  t.notMatch(loaded.pem, /PRIVATE KEY/);
  t.throws(() => checkClientCa(ca.key, 'key.pem'), /holds no PEM certificate/);

  const dir = t.testdir();
  const big = join(dir, 'big.pem');
  writeFileSync(big, Buffer.alloc(MAX_TLS_FILE_BYTES + 1, 0x41));
  await t.rejects(readTlsFile(big), /larger than 1048576 bytes/);
  const exact = join(dir, 'exact.pem');
  writeFileSync(exact, Buffer.alloc(MAX_TLS_FILE_BYTES, 0x41));
  t.equal((await readTlsFile(exact)).length, MAX_TLS_FILE_BYTES);
  // A FIFO in place of the bundle fails at once instead of blocking a libuv thread.
  const fifo = join(dir, 'fifo.pem');
  execFileSync('mkfifo', [fifo]);
  await t.rejects(readTlsFile(fifo), /not a regular file/);
  await t.rejects(readTlsFile(dir), /not a regular file|EISDIR/);
  t.ok(isBreezeError(catchSync(() => checkClientCa('x', 'f'))), 'BreezeError');
});

function catchSync(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err;
  }
}
