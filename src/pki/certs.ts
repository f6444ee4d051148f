// Development certificates: a small ECDSA P-256 CA and a serving certificate for the webhook,
// generated with @peculiar/x509 on top of the WebCrypto implementation built into Node.
import { createPrivateKey, randomBytes, X509Certificate, type webcrypto } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type * as X509 from '@peculiar/x509';
import { BreezeError } from '../errors.js';

/** A certificate and its private key, both PEM (the key is PKCS#8). */
export interface PemPair {
  cert: string;
  key: string;
}

export interface DevCertificateFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates start a little in the past so a peer with a slightly slow clock accepts them. */
const BACKDATE_MS = 5 * 60 * 1000;
/** ensureDevCertificates replaces a serving certificate this close to its expiry. */
const RENEW_BEFORE_MS = 7 * DAY_MS;

/**
 * @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API:
 * the library's documented polyfill is loaded first. Loaded lazily, so commands that never make a
 * certificate do not pay for it.
 */
let x509Module: Promise<typeof X509> | undefined;

function loadX509(): Promise<typeof X509> {
  if (x509Module === undefined) {
    x509Module = import('reflect-metadata').then(() => import('@peculiar/x509'));
  }
  return x509Module;
}

/** A random 128-bit serial number as hex: positive, and without a leading zero nibble to strip. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40;
  return bytes.toString('hex');
}

async function exportKeyPem(x509: typeof X509, key: webcrypto.CryptoKey): Promise<string> {
  const der = await globalThis.crypto.subtle.exportKey('pkcs8', key);
  return withNewline(x509.PemConverter.encode(der, 'PRIVATE KEY'));
}

function withNewline(pem: string): string {
  const normalized = pem.replace(/\r\n/g, '\n');
  return normalized.endsWith('\n') ? normalized : `${normalized}\n`;
}

/** Creates a self-signed CA (basicConstraints CA, keyCertSign) valid for `days` (default 10 years). */
export async function createCa(
  opts: { commonName?: string; days?: number; notBefore?: Date } = {},
): Promise<PemPair> {
  const x509 = await loadX509();
  const keys = await globalThis.crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const notBefore = opts.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  const notAfter = new Date(notBefore.getTime() + (opts.days ?? 3650) * DAY_MS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [opts.commonName ?? 'breeze-webhook-ca'] }],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: withNewline(cert.toString('pem')), key: await exportKeyPem(x509, keys.privateKey) };
}

/**
 * Creates a serving certificate signed by `ca` (an ECDSA P-256 CA such as createCa makes). Hosts
 * that are IP addresses become IP SANs, the others DNS SANs; the first host is also the CN.
 */
export async function createServingCert(
  ca: PemPair,
  hosts: string[],
  opts: { days?: number; notBefore?: Date } = {},
): Promise<PemPair> {
  const first = hosts[0];
  if (first === undefined || hosts.some((h) => h.trim() === '')) {
    throw new BreezeError('TLS_MATERIAL', 'a serving certificate needs at least one non-empty host');
  }
  const x509 = await loadX509();
  let caCert: X509.X509Certificate;
  let caKey: webcrypto.CryptoKey;
  try {
    caCert = new x509.X509Certificate(ca.cert);
    caKey = await globalThis.crypto.subtle.importKey(
      'pkcs8',
      x509.PemConverter.decodeFirst(ca.key),
      ALGORITHM,
      false,
      ['sign'],
    );
  } catch (err) {
    throw new BreezeError('TLS_MATERIAL', 'the CA certificate or key is not a usable ECDSA P-256 pair', {
      cause: err,
    });
  }
  const keys = await globalThis.crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const notBefore = opts.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  const notAfter = new Date(notBefore.getTime() + (opts.days ?? 365) * DAY_MS);
  const names = hosts.map((h) => ({ type: isIP(h) !== 0 ? ('ip' as const) : ('dns' as const), value: h }));
  // ub-common-name is 64 characters; clients match on the SANs anyway.
  const commonName = first.length <= 64 ? first : 'breeze-webhook';
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [commonName] }],
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return { cert: withNewline(cert.toString('pem')), key: await exportKeyPem(x509, keys.privateKey) };
}

function filesIn(dir: string): DevCertificateFiles & { caKeyFile: string } {
  return {
    caFile: join(dir, 'ca.crt'),
    caKeyFile: join(dir, 'ca.key'),
    certFile: join(dir, 'tls.crt'),
    keyFile: join(dir, 'tls.key'),
  };
}

/** Writes through a temporary file and a rename, so a watcher never reads half a file. */
async function writeAtomic(file: string, content: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode);
  await rename(tmp, file);
}

async function writePairs(dir: string, ca: PemPair, serving: PemPair): Promise<DevCertificateFiles> {
  await mkdir(dir, { recursive: true });
  const f = filesIn(dir);
  await writeAtomic(f.caFile, ca.cert, 0o644);
  await writeAtomic(f.caKeyFile, ca.key, 0o600);
  // The key goes first: a reloader that sees the new certificate next to the old key rejects the
  // pair and picks the matching one up on the next event or poll.
  await writeAtomic(f.keyFile, serving.key, 0o600);
  await writeAtomic(f.certFile, serving.cert, 0o644);
  return { caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile };
}

/** Writes a new CA (ca.crt, ca.key) and a serving pair for `hosts` (tls.crt, tls.key) into `dir`. */
export async function writeDevCertificates(dir: string, hosts: string[]): Promise<DevCertificateFiles> {
  const ca = await createCa();
  const serving = await createServingCert(ca, hosts);
  return writePairs(dir, ca, serving);
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Parses a certificate and key and checks they belong together; undefined when they do not. */
function parsePair(cert: string | undefined, key: string | undefined): X509Certificate | undefined {
  if (cert === undefined || key === undefined) return undefined;
  try {
    const x = new X509Certificate(cert);
    return x.checkPrivateKey(createPrivateKey(key)) ? x : undefined;
  } catch {
    return undefined;
  }
}

function covers(cert: X509Certificate, host: string): boolean {
  return isIP(host) !== 0 ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
}

/**
 * Reuses the certificates in `dir` when tls.crt and tls.key parse, belong together, were issued
 * by ca.crt, are not expiring within 7 days and cover every host. Otherwise writes a new serving
 * pair, signed by the existing CA when ca.crt/ca.key are still good (so a caBundle already
 * registered keeps working), else by a new CA.
 */
export async function ensureDevCertificates(
  dir: string,
  hosts: string[],
): Promise<DevCertificateFiles & { created: boolean }> {
  const f = filesIn(dir);
  const [caCertPem, caKeyPem, certPem, keyPem] = await Promise.all(
    [f.caFile, f.caKeyFile, f.certFile, f.keyFile].map(readOptional),
  );
  const now = Date.now();
  const ca = parsePair(caCertPem, caKeyPem);
  const caUsable = ca !== undefined && ca.ca && Date.parse(ca.validTo) - now > RENEW_BEFORE_MS;
  const serving = parsePair(certPem, keyPem);
  if (
    serving !== undefined &&
    caCertPem !== undefined &&
    safeVerify(serving, caCertPem) &&
    Date.parse(serving.validTo) - now > RENEW_BEFORE_MS &&
    hosts.every((h) => covers(serving, h))
  ) {
    return { caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile, created: false };
  }
  const caPair =
    caUsable && caCertPem !== undefined && caKeyPem !== undefined
      ? { cert: caCertPem, key: caKeyPem }
      : await createCa();
  let servingPair: PemPair;
  try {
    servingPair = await createServingCert(caPair, hosts);
  } catch (err) {
    // An existing CA with a key type we cannot sign with: start over with a new CA.
    if (caPair.cert !== caCertPem) throw err;
    const fresh = await createCa();
    return { ...(await writePairs(dir, fresh, await createServingCert(fresh, hosts))), created: true };
  }
  return { ...(await writePairs(dir, caPair, servingPair)), created: true };
}

function safeVerify(cert: X509Certificate, caPem: string): boolean {
  try {
    return cert.verify(new X509Certificate(caPem).publicKey);
  } catch {
    return false;
  }
}
