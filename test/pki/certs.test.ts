// Development certificates: SANs, chain, key match, file modes, and when ensureDevCertificates
// reuses or replaces what is on disk. Checked with node:crypto, independently of @peculiar/x509.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  createCa,
  createServingCert,
  ensureDevCertificates,
  writeDevCertificates,
} from '../../src/pki/certs.js';

const DAY = 24 * 60 * 60 * 1000;

t.test('createCa and createServingCert', async (t) => {
  const ca = await createCa({ commonName: 'test-ca', days: 30 });
  const caX = new X509Certificate(ca.cert);
  t.ok(caX.ca, 'basicConstraints CA');
  t.equal(caX.subject, 'CN=test-ca');
  t.ok(caX.checkPrivateKey(createPrivateKey(ca.key)), 'CA key matches');
  t.ok(caX.verify(caX.publicKey), 'self-signed');
  t.match(ca.key, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8 PEM');
  t.equal(createPrivateKey(ca.key).asymmetricKeyDetails?.namedCurve, 'prime256v1', 'ECDSA P-256');
  const caDays = (Date.parse(caX.validTo) - Date.now()) / DAY;
  t.ok(caDays > 29.9 && caDays <= 30, `CA valid for 30 days (${caDays.toFixed(3)})`);

  const hosts = ['breeze.breeze-system.svc', 'localhost', '127.0.0.1', '::1'];
  const leaf = await createServingCert(ca, hosts, { days: 10 });
  const x = new X509Certificate(leaf.cert);
  t.notOk(x.ca, 'leaf is not a CA');
  t.equal(x.subject, 'CN=breeze.breeze-system.svc', 'CN is the first host');
  t.equal(x.issuer, caX.subject);
  t.match(x.subjectAltName, /DNS:breeze\.breeze-system\.svc/);
  t.match(x.subjectAltName, /DNS:localhost/);
  t.match(x.subjectAltName, /IP Address:127\.0\.0\.1/);
  t.notMatch(x.subjectAltName, /DNS:127\.0\.0\.1/, 'an IP is not a DNS SAN');
  t.equal(x.checkHost('breeze.breeze-system.svc'), 'breeze.breeze-system.svc');
  t.equal(x.checkHost('localhost'), 'localhost');
  t.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
  t.equal(x.checkIP('::1'), '::1');
  t.equal(x.checkHost('other.example.com'), undefined);
  t.equal(x.checkIP('10.0.0.1'), undefined);
  t.ok(x.verify(caX.publicKey), 'signed by the CA');
  t.ok(x.checkIssued(caX));
  const otherCa = new X509Certificate((await createCa()).cert);
  t.notOk(x.verify(otherCa.publicKey), 'not signed by another CA');
  t.ok(x.checkPrivateKey(createPrivateKey(leaf.key)), 'leaf key matches');
  t.notOk(x.checkPrivateKey(createPrivateKey(ca.key)), 'CA key does not match the leaf');
  t.same(x.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extKeyUsage serverAuth');
  const leafDays = (Date.parse(x.validTo) - Date.now()) / DAY;
  t.ok(leafDays > 9.9 && leafDays <= 10, `leaf valid for 10 days (${leafDays.toFixed(3)})`);

  const again = new X509Certificate((await createServingCert(ca, hosts)).cert);
  t.not(again.serialNumber, x.serialNumber, 'random serial');
  t.ok(x.serialNumber.length >= 30, `serial is long: ${x.serialNumber}`);

  const notBefore = new Date(Date.now() - 100 * DAY);
  const old = new X509Certificate(
    (await createServingCert(ca, ['a.example'], { notBefore, days: 101 })).cert,
  );
  t.equal(Date.parse(old.validFrom), Math.floor(notBefore.getTime() / 1000) * 1000, 'notBefore honoured');

  const long = `${'a'.repeat(60)}.example.com`;
  const longX = new X509Certificate((await createServingCert(ca, [long])).cert);
  t.equal(longX.checkHost(long), long, 'a host longer than a CN may be still works as a SAN');

  const tlsMaterial = { name: 'BreezeError', code: 'TLS_MATERIAL' };
  await t.rejects(createServingCert(ca, []), tlsMaterial);
  await t.rejects(createServingCert({ cert: ca.cert, key: 'garbage' }, ['x']), tlsMaterial);
});

t.test('writeDevCertificates writes four files, keys 0600', async (t) => {
  const dir = join(t.testdir(), 'nested', 'certs');
  const files = await writeDevCertificates(dir, ['localhost', '127.0.0.1']);
  t.same(files, {
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'tls.crt'),
    keyFile: join(dir, 'tls.key'),
  });
  t.equal(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600);
  t.equal(statSync(files.keyFile).mode & 0o777, 0o600);
  const x = new X509Certificate(readFileSync(files.certFile));
  t.ok(x.verify(new X509Certificate(readFileSync(files.caFile)).publicKey));
  t.ok(x.checkPrivateKey(createPrivateKey(readFileSync(files.keyFile))));
  t.ok(
    new X509Certificate(readFileSync(files.caFile)).checkPrivateKey(
      createPrivateKey(readFileSync(join(dir, 'ca.key'))),
    ),
  );
});

t.test('ensureDevCertificates reuses good files and replaces the rest', async (t) => {
  const dir = t.testdir();
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');

  const first = await ensureDevCertificates(dir, ['localhost', '127.0.0.1']);
  t.equal(first.created, true, 'created in an empty dir');
  const cert1 = read('tls.crt');
  const ca1 = read('ca.crt');

  const second = await ensureDevCertificates(dir, ['127.0.0.1', 'localhost']);
  t.equal(second.created, false, 'reused');
  t.equal(read('tls.crt'), cert1, 'files untouched');
  const subset = await ensureDevCertificates(dir, ['localhost']);
  t.equal(subset.created, false, 'a subset of the hosts is covered too');

  const third = await ensureDevCertificates(dir, ['localhost', '127.0.0.1', 'breeze.default.svc']);
  t.equal(third.created, true, 'regenerated when a host is missing');
  const x3 = new X509Certificate(read('tls.crt'));
  t.not(read('tls.crt'), cert1);
  t.equal(x3.checkHost('breeze.default.svc'), 'breeze.default.svc');
  t.equal(x3.checkIP('127.0.0.1'), '127.0.0.1');
  t.equal(read('ca.crt'), ca1, 'the CA is kept, so a registered caBundle stays valid');
  t.ok(x3.verify(new X509Certificate(ca1).publicKey));

  // A serving certificate expiring within 7 days is replaced.
  const ca = { cert: ca1, key: read('ca.key') };
  const expiring = await createServingCert(ca, ['localhost'], {
    notBefore: new Date(Date.now() - 360 * DAY),
    days: 365,
  });
  writeFileSync(join(dir, 'tls.crt'), expiring.cert);
  writeFileSync(join(dir, 'tls.key'), expiring.key);
  t.equal((await ensureDevCertificates(dir, ['localhost'])).created, true, 'expiring: regenerated');
  t.ok(Date.parse(new X509Certificate(read('tls.crt')).validTo) - Date.now() > 300 * DAY);

  // A key that does not belong to the certificate.
  writeFileSync(join(dir, 'tls.key'), (await createServingCert(ca, ['localhost'])).key);
  t.equal((await ensureDevCertificates(dir, ['localhost'])).created, true, 'mismatched key: regenerated');
  t.ok(new X509Certificate(read('tls.crt')).checkPrivateKey(createPrivateKey(read('tls.key'))));

  // Garbage everywhere, including the CA: a new CA too.
  writeFileSync(join(dir, 'tls.crt'), 'garbage');
  writeFileSync(join(dir, 'ca.key'), 'garbage');
  t.equal((await ensureDevCertificates(dir, ['localhost'])).created, true);
  t.not(read('ca.crt'), ca1, 'an unusable CA is replaced');
  t.ok(new X509Certificate(read('tls.crt')).verify(new X509Certificate(read('ca.crt')).publicKey));
  t.equal((await ensureDevCertificates(dir, ['localhost'])).created, false, 'and then reused');
});
