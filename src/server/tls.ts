import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { BreezeError } from '../errors.js';
import { readRegularFile } from '../sources/regular-file.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

export interface CertificateReloaderOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /**
   * CA bundle (PEM) that webhook clients' certificates must chain to (--client-ca-file). Reloaded
   * like the pair; a bundle that does not load is rejected once and the previous one stays.
   */
  readonly clientCaFile?: string;
  /** How often the files are re-read regardless of file events (default 10 s, like certwatcher). */
  readonly pollIntervalMs?: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface LoadedPair {
  readonly cert: string;
  readonly key: string;
  readonly notAfter: Date;
}

interface Loaded extends LoadedPair {
  readonly serial: string;
  readonly fingerprint256: string;
}

/** A client CA bundle that loaded: its certificate blocks (PEM) and the parsed certificates. */
export interface LoadedClientCa {
  readonly pem: string;
  readonly certificates: readonly X509Certificate[];
}

/**
 * Largest certificate, key or CA bundle file read (1 MiB: a bundle of a few thousand
 * certificates). A bigger file is rejected like a broken one, never read into memory.
 */
export const MAX_TLS_FILE_BYTES = 1024 * 1024;

/** Coalesces the burst of events one Secret update produces (several renames and a symlink swap). */
const DEBOUNCE_MS = 100;
const MIN_TLS_VERSION = 'TLSv1.2';

/**
 * Reads a regular file of at most MAX_TLS_FILE_BYTES as UTF-8. Opened non-blocking and checked
 * with fstat first, so a FIFO or a device in place of a certificate fails at once instead of
 * holding a libuv thread, and a huge file is never read.
 */
export async function readTlsFile(path: string, max = MAX_TLS_FILE_BYTES): Promise<string> {
  const read = await readRegularFile(path, max);
  if (read.ok) return read.text;
  throw new Error(
    read.reason === 'not-regular' ? `${path} is not a regular file` : `${path} is larger than ${max} bytes`,
  );
}

/** Reads and checks a certificate/key pair; throws TLS_MATERIAL with a message free of key bytes. */
async function loadPair(certFile: string, keyFile: string): Promise<Loaded> {
  let cert: string;
  let key: string;
  try {
    [cert, key] = await Promise.all([readTlsFile(certFile), readTlsFile(keyFile)]);
  } catch (err) {
    throw new BreezeError('TLS_MATERIAL', `cannot read ${certFile} or ${keyFile}: ${messageOf(err)}`, {
      cause: err,
    });
  }
  return checkPair(cert, key, certFile, keyFile);
}

function checkPair(cert: string, key: string, certFile: string, keyFile: string): Loaded {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new BreezeError('TLS_MATERIAL', `${certFile} is not a PEM certificate: ${messageOf(err)}`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    // Key parse errors come from OpenSSL and name no key bytes; keep only the message anyway.
    throw new BreezeError('TLS_MATERIAL', `${keyFile} is not a PEM private key: ${messageOf(err)}`);
  }
  if (!matches) {
    throw new BreezeError(
      'TLS_MATERIAL',
      `${keyFile} is not the private key of the certificate in ${certFile}`,
    );
  }
  try {
    // What setSecureContext will do: catches anything else OpenSSL refuses, before it matters.
    createSecureContext({ cert, key, minVersion: MIN_TLS_VERSION });
  } catch (err) {
    throw new BreezeError('TLS_MATERIAL', `${certFile}/${keyFile} cannot be used for TLS: ${messageOf(err)}`);
  }
  return {
    cert,
    key,
    notAfter: new Date(x509.validTo),
    serial: x509.serialNumber,
    fingerprint256: x509.fingerprint256,
  };
}

/** A PEM certificate block; anything between blocks (comments, other block types) is ignored. */
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/** Reads and checks a client CA bundle; also returns the digest of the file's content. */
async function loadClientCa(file: string): Promise<{ ca: LoadedClientCa; contentDigest: string }> {
  let pem: string;
  try {
    pem = await readTlsFile(file);
  } catch (err) {
    throw new BreezeError('TLS_MATERIAL', `cannot read ${file}: ${messageOf(err)}`, { cause: err });
  }
  return { ca: checkClientCa(pem, file), contentDigest: digest(pem) };
}

/** Checks a client CA bundle: at least one certificate, every one parses, OpenSSL takes it. */
export function checkClientCa(pem: string, file: string): LoadedClientCa {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    throw new BreezeError('TLS_MATERIAL', `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  const certificates: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch (err) {
      throw new BreezeError(
        'TLS_MATERIAL',
        `${file}: certificate ${i + 1} of ${blocks.length} does not parse: ${messageOf(err)}`,
      );
    }
  }
  // Only the certificate blocks reach OpenSSL (a stray key or comment in the file is left out).
  const certs = `${blocks.join('\n')}\n`;
  try {
    createSecureContext({ ca: certs, minVersion: MIN_TLS_VERSION });
  } catch (err) {
    throw new BreezeError('TLS_MATERIAL', `${file} cannot be used as a CA bundle: ${messageOf(err)}`);
  }
  return { pem: certs, certificates };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function digest(...parts: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/** An ISO time that never throws (an unparseable notAfter must not crash a log line). */
function isoTime(d: Date): string {
  return Number.isNaN(d.getTime()) ? 'unknown' : d.toISOString();
}

/**
 * Keeps the serving certificate (and, with --client-ca-file, the client CA bundle) current without
 * a restart. Kubernetes updates a Secret or ConfigMap volume by swapping a `..data` symlink, so
 * the files' directories are watched (not the files) and any event triggers a debounced re-read;
 * a periodic poll compares the content as well, because file events are lost on some filesystems
 * and when the target lives elsewhere. The pair and the CA bundle are checked independently: one
 * that does not load (half-written, mismatched, garbage, too large, not a regular file) is
 * rejected once, with one warning, and the previous one stays in use. No check can throw out of
 * a timer or a watch callback: every failure ends in a log line.
 */
export class CertificateReloader {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string | undefined;
  private readonly pollIntervalMs: number;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private pair: Loaded | undefined;
  private pairDigest = '';
  /** Digest of the last rejected content, so a broken pair is reported once, not on every poll. */
  private rejectedDigest = '';
  private clientCa: LoadedClientCa | undefined;
  private clientCaDigest = '';
  private rejectedClientCaDigest = '';
  private readonly clientCaListeners = new Set<(ca: LoadedClientCa) => void>();
  private readonly servers = new Set<TlsServer>();
  private readonly watchers: FSWatcher[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private recheck = false;
  private stopped = false;

  constructor(opts: CertificateReloaderOptions) {
    this.certFile = opts.certFile;
    this.keyFile = opts.keyFile;
    this.clientCaFile = opts.clientCaFile;
    this.pollIntervalMs = opts.pollIntervalMs ?? 10_000;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
  }

  get loaded(): boolean {
    return this.pair !== undefined && (this.clientCaFile === undefined || this.clientCa !== undefined);
  }

  /**
   * Loads the pair and the client CA bundle (TLS_MATERIAL when either is unusable), then starts
   * watching and polling.
   */
  async start(): Promise<void> {
    const pair = await loadPair(this.certFile, this.keyFile);
    const ca = this.clientCaFile === undefined ? undefined : await loadClientCa(this.clientCaFile);
    this.accept(pair, 'initial');
    if (ca !== undefined) this.acceptClientCa(ca.ca, ca.contentDigest, 'initial');
    this.stopped = false;
    const files = [
      this.certFile,
      this.keyFile,
      ...(this.clientCaFile === undefined ? [] : [this.clientCaFile]),
    ];
    for (const dir of new Set(files.map((f) => dirname(f)))) this.watchDir(dir);
    this.pollTimer = setInterval(() => this.check(), this.pollIntervalMs);
    this.pollTimer.unref();
  }

  current(): LoadedPair {
    const pair = this.pair;
    if (pair === undefined)
      throw new BreezeError('TLS_MATERIAL', 'the serving certificate is not loaded yet');
    return { cert: pair.cert, key: pair.key, notAfter: pair.notAfter };
  }

  /** The client CA bundle in use; undefined without --client-ca-file (or before start()). */
  currentClientCa(): LoadedClientCa | undefined {
    return this.clientCa;
  }

  /** Calls `listener` after every reloaded client CA bundle (applied to the servers already). */
  onClientCaChange(listener: (ca: LoadedClientCa) => void): () => void {
    this.clientCaListeners.add(listener);
    return () => {
      this.clientCaListeners.delete(listener);
    };
  }

  /** Applies every accepted pair to `server` from now on; returns a function that detaches it. */
  attach(server: TlsServer): () => void {
    this.servers.add(server);
    if (this.pair !== undefined) this.apply(server);
    return () => {
      this.servers.delete(server);
    };
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watchers.splice(0)) w.close();
    clearInterval(this.pollTimer);
    clearTimeout(this.debounceTimer);
    this.pollTimer = undefined;
    this.debounceTimer = undefined;
    this.servers.clear();
    this.clientCaListeners.clear();
  }

  private watchDir(dir: string): void {
    try {
      const w = watch(dir, { persistent: false }, () => this.schedule());
      w.on('error', (err) => {
        this.logger.warn(
          { dir, reason: messageOf(err) },
          'certificate directory watch failed; relying on polling',
        );
        w.close();
      });
      this.watchers.push(w);
    } catch (err) {
      // ENOSPC (inotify limits) or a directory that vanished: the poll still catches changes.
      this.logger.warn(
        { dir, reason: messageOf(err) },
        'cannot watch certificate directory; relying on polling',
      );
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => this.check(), DEBOUNCE_MS);
    this.debounceTimer.unref();
  }

  /**
   * Runs one check at a time; a trigger during a check causes exactly one more. Called from the
   * poll interval, the debounce timer and itself: it never throws and its promise never rejects.
   */
  private check(): void {
    if (this.stopped) return;
    if (this.checking !== undefined) {
      this.recheck = true;
      return;
    }
    this.checking = this.checkOnce()
      .catch((err: unknown) => {
        this.logger.error({ reason: messageOf(err) }, 'certificate reload check failed');
      })
      .finally(() => {
        this.checking = undefined;
        if (this.recheck) {
          this.recheck = false;
          this.check();
        }
      });
  }

  private async checkOnce(): Promise<void> {
    const pairBefore = this.pair;
    const caBefore = this.clientCa;
    try {
      await this.checkPairOnce();
      await this.checkClientCaOnce();
    } finally {
      // What was accepted is applied even if reporting it (a log line, a metric) threw: the
      // servers never lag behind the reloader's state.
      const caChanged = this.clientCa !== caBefore;
      if (!this.stopped && (this.pair !== pairBefore || caChanged)) this.propagate(caChanged);
    }
  }

  private propagate(caChanged: boolean): void {
    for (const server of this.servers) this.apply(server);
    const ca = this.clientCa;
    if (!caChanged || ca === undefined) return;
    for (const listener of this.clientCaListeners) {
      try {
        listener(ca);
      } catch (err) {
        this.logger.error({ reason: messageOf(err) }, 'client CA change listener failed');
      }
    }
  }

  /** True when a new pair was accepted. */
  private async checkPairOnce(): Promise<boolean> {
    let cert: string;
    let key: string;
    try {
      [cert, key] = await Promise.all([readTlsFile(this.certFile), readTlsFile(this.keyFile)]);
    } catch (err) {
      this.reject(`unreadable:${messageOf(err)}`, messageOf(err));
      return false;
    }
    const d = digest(cert, key);
    if (this.stopped) return false;
    if (d === this.pairDigest) {
      // Back to (or still on) the pair in use: a broken pair seen again later is news again.
      this.rejectedDigest = '';
      return false;
    }
    let pair: Loaded;
    try {
      pair = checkPair(cert, key, this.certFile, this.keyFile);
    } catch (err) {
      this.reject(d, messageOf(err));
      return false;
    }
    this.accept(pair, 'reload');
    return true;
  }

  /** True when a new client CA bundle was accepted. */
  private async checkClientCaOnce(): Promise<boolean> {
    const file = this.clientCaFile;
    if (file === undefined) return false;
    let pem: string;
    try {
      pem = await readTlsFile(file);
    } catch (err) {
      this.rejectClientCa(`unreadable:${messageOf(err)}`, messageOf(err));
      return false;
    }
    const d = digest(pem);
    if (this.stopped) return false;
    if (d === this.clientCaDigest) {
      this.rejectedClientCaDigest = '';
      return false;
    }
    let ca: LoadedClientCa;
    try {
      ca = checkClientCa(pem, file);
    } catch (err) {
      this.rejectClientCa(d, messageOf(err));
      return false;
    }
    this.acceptClientCa(ca, d, 'reload');
    return true;
  }

  private reject(contentId: string, reason: string): void {
    if (contentId === this.rejectedDigest) return;
    this.rejectedDigest = contentId;
    this.metrics.tlsReloads.inc({ result: 'failure' });
    this.logger.warn(
      { certFile: this.certFile, keyFile: this.keyFile, reason, serial: this.pair?.serial },
      'rejected new serving certificate; keeping the current one',
    );
  }

  private rejectClientCa(contentId: string, reason: string): void {
    if (contentId === this.rejectedClientCaDigest) return;
    this.rejectedClientCaDigest = contentId;
    this.metrics.tlsReloads.inc({ result: 'failure' });
    this.logger.warn(
      { clientCaFile: this.clientCaFile, reason, certificates: this.clientCa?.certificates.length },
      'rejected new client CA bundle; keeping the current one',
    );
  }

  private accept(pair: Loaded, why: 'initial' | 'reload'): void {
    this.pair = pair;
    this.pairDigest = digest(pair.cert, pair.key);
    this.rejectedDigest = '';
    this.metrics.tlsCertificateExpiry.set(Math.floor(pair.notAfter.getTime() / 1000));
    if (why === 'reload') this.metrics.tlsReloads.inc({ result: 'success' });
    if (pair.notAfter.getTime() <= Date.now()) {
      this.logger.warn(
        { certFile: this.certFile, serial: pair.serial, notAfter: isoTime(pair.notAfter) },
        'the serving certificate has expired',
      );
    }
    this.logger.info(
      {
        certFile: this.certFile,
        serial: pair.serial,
        fingerprint256: pair.fingerprint256,
        notAfter: isoTime(pair.notAfter),
      },
      why === 'initial' ? 'loaded serving certificate' : 'reloaded serving certificate',
    );
  }

  private acceptClientCa(ca: LoadedClientCa, contentDigest: string, why: 'initial' | 'reload'): void {
    this.clientCa = ca;
    this.clientCaDigest = contentDigest;
    this.rejectedClientCaDigest = '';
    if (why === 'reload') this.metrics.tlsReloads.inc({ result: 'success' });
    const now = Date.now();
    const expired = ca.certificates.filter((c) => new Date(c.validTo).getTime() <= now).length;
    const notCa = ca.certificates.filter((c) => !c.ca).length;
    if (expired > 0 || notCa > 0) {
      this.logger.warn(
        { clientCaFile: this.clientCaFile, expired, notCa },
        'the client CA bundle holds expired or non-CA certificates (they authenticate no client, or only themselves)',
      );
    }
    this.logger.info(
      {
        clientCaFile: this.clientCaFile,
        certificates: ca.certificates.length,
        // Bounded: the first few subjects are enough to tell which bundle is in use.
        subjects: ca.certificates.slice(0, 5).map((c) => c.subject.slice(0, 256)),
      },
      why === 'initial' ? 'loaded client CA bundle' : 'reloaded client CA bundle',
    );
  }

  private apply(server: TlsServer): void {
    const pair = this.pair;
    if (pair === undefined) return;
    try {
      server.setSecureContext({
        cert: pair.cert,
        key: pair.key,
        minVersion: MIN_TLS_VERSION,
        // setSecureContext replaces the whole context: the CA must be passed on every change.
        ...(this.clientCa === undefined ? {} : { ca: this.clientCa.pem }),
      });
    } catch (err) {
      this.logger.error({ reason: messageOf(err) }, 'cannot apply the serving certificate to the server');
    }
  }
}
