import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { BreezeError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

export interface CertificateReloaderOptions {
  readonly certFile: string;
  readonly keyFile: string;
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

/** Coalesces the burst of events one Secret update produces (several renames and a symlink swap). */
const DEBOUNCE_MS = 100;
const MIN_TLS_VERSION = 'TLSv1.2';

/** Reads and checks a certificate/key pair; throws TLS_MATERIAL with a message free of key bytes. */
async function loadPair(certFile: string, keyFile: string): Promise<Loaded> {
  let cert: string;
  let key: string;
  try {
    [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
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

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function digest(cert: string, key: string): string {
  return createHash('sha256').update(cert).update('\0').update(key).digest('hex');
}

/**
 * Keeps the serving certificate current without a restart. Kubernetes updates a Secret volume by
 * swapping a `..data` symlink, so the files' directory is watched (not the files) and any event
 * triggers a debounced re-read; a periodic poll compares the content as well, because file events
 * are lost on some filesystems and when the target lives elsewhere. A pair that does not load
 * (half-written, mismatched, garbage) is rejected once, with one warning, and the previous pair
 * stays in use.
 */
export class CertificateReloader {
  readonly certFile: string;
  readonly keyFile: string;
  private readonly pollIntervalMs: number;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private pair: Loaded | undefined;
  private pairDigest = '';
  /** Digest of the last rejected content, so a broken pair is reported once, not on every poll. */
  private rejectedDigest = '';
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
    this.pollIntervalMs = opts.pollIntervalMs ?? 10_000;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
  }

  get loaded(): boolean {
    return this.pair !== undefined;
  }

  /** Loads the pair (TLS_MATERIAL when it is unusable), then starts watching and polling. */
  async start(): Promise<void> {
    const pair = await loadPair(this.certFile, this.keyFile);
    this.accept(pair, 'initial');
    this.stopped = false;
    for (const dir of new Set([dirname(this.certFile), dirname(this.keyFile)])) this.watchDir(dir);
    this.pollTimer = setInterval(() => this.check(), this.pollIntervalMs);
    this.pollTimer.unref();
  }

  current(): LoadedPair {
    const pair = this.pair;
    if (pair === undefined)
      throw new BreezeError('TLS_MATERIAL', 'the serving certificate is not loaded yet');
    return { cert: pair.cert, key: pair.key, notAfter: pair.notAfter };
  }

  /** Applies every accepted pair to `server` from now on; returns a function that detaches it. */
  attach(server: TlsServer): () => void {
    this.servers.add(server);
    if (this.pair !== undefined) this.apply(server, this.pair);
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

  /** Runs one check at a time; a trigger during a check causes exactly one more. */
  private check(): void {
    if (this.stopped) return;
    if (this.checking !== undefined) {
      this.recheck = true;
      return;
    }
    this.checking = this.checkOnce().finally(() => {
      this.checking = undefined;
      if (this.recheck) {
        this.recheck = false;
        this.check();
      }
    });
  }

  private async checkOnce(): Promise<void> {
    let cert: string;
    let key: string;
    try {
      [cert, key] = await Promise.all([readFile(this.certFile, 'utf8'), readFile(this.keyFile, 'utf8')]);
    } catch (err) {
      this.reject(`unreadable:${messageOf(err)}`, messageOf(err));
      return;
    }
    const d = digest(cert, key);
    if (this.stopped) return;
    if (d === this.pairDigest) {
      // Back to (or still on) the pair in use: a broken pair seen again later is news again.
      this.rejectedDigest = '';
      return;
    }
    let pair: Loaded;
    try {
      pair = checkPair(cert, key, this.certFile, this.keyFile);
    } catch (err) {
      this.reject(d, messageOf(err));
      return;
    }
    this.accept(pair, 'reload');
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

  private accept(pair: Loaded, why: 'initial' | 'reload'): void {
    this.pair = pair;
    this.pairDigest = digest(pair.cert, pair.key);
    this.rejectedDigest = '';
    this.metrics.tlsCertificateExpiry.set(Math.floor(pair.notAfter.getTime() / 1000));
    if (why === 'reload') {
      for (const server of this.servers) this.apply(server, pair);
      this.metrics.tlsReloads.inc({ result: 'success' });
    }
    if (pair.notAfter.getTime() <= Date.now()) {
      this.logger.warn(
        { certFile: this.certFile, serial: pair.serial, notAfter: pair.notAfter.toISOString() },
        'the serving certificate has expired',
      );
    }
    this.logger.info(
      {
        certFile: this.certFile,
        serial: pair.serial,
        fingerprint256: pair.fingerprint256,
        notAfter: pair.notAfter.toISOString(),
      },
      why === 'initial' ? 'loaded serving certificate' : 'reloaded serving certificate',
    );
  }

  private apply(server: TlsServer, pair: Loaded): void {
    try {
      server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: MIN_TLS_VERSION });
    } catch (err) {
      this.logger.error({ reason: messageOf(err) }, 'cannot apply the serving certificate to the server');
    }
  }
}
