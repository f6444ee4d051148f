// Self-managed webhook certificates (`--tls-mode self-managed`): Breeze keeps its own CA and
// serving pair in one Secret of the release namespace, every replica serves the pair from that
// Secret (written to files the CertificateReloader watches), and the elected leader keeps the
// webhook configurations' caBundle current and renews the serving pair and the CA.
//
// CA rotation never breaks admission: the new CA first joins the bundle next to the old one and
// the bundle is patched into the webhook configurations, only then is a serving pair issued by
// the new CA; the old CA leaves the bundle after `overlapMs`.
import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { isKubeApiError, kubeRequest } from '../kube/request.js';
import { asArray, asRecord, asString, type JsonRecord } from '../model/json.js';
import type { Logger } from '../telemetry/logger.js';
import { createCa, createServingCert, type PemPair } from './certs.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const BACKDATE_MS = 5 * 60 * 1000;
const REQUEST_TIMEOUT_MS = 15_000;
/** When the previous CA stops being trusted (RFC 3339); absent outside an overlap. */
export const PREVIOUS_CA_UNTIL_ANNOTATION = 'breeze.io/previous-ca-trusted-until';
export const CA_BUNDLE_KEY = 'ca-bundle.crt';

export interface WebhookConfigurationNames {
  readonly validating: string;
  readonly mutating: string;
}

export interface SelfManagedCertificatesOptions {
  readonly kubeConfig: KubeConfig;
  /** Namespace of the Secret and the Service: the release namespace. */
  readonly namespace: string;
  readonly secretName: string;
  /** The webhook Service (in `namespace`); the serving certificate covers its DNS names. */
  readonly serviceName: string;
  readonly webhookConfigurations: WebhookConfigurationNames;
  /** Writable directory where tls.crt and tls.key are written for the CertificateReloader. */
  readonly certDir: string;
  readonly logger: Logger;
  /** Epoch ms; default Date.now. */
  readonly clock?: () => number;
  /** Secret poll (followers) and leader round period; default 30 s. */
  readonly pollIntervalMs?: number;
  /** Default 1825 (5 years); renewed when less than a fifth of its life is left. */
  readonly caValidityDays?: number;
  /** Default 365. */
  readonly servingValidityDays?: number;
  /** The serving pair is renewed this close to its expiry; default 30 days. */
  readonly renewBeforeDays?: number;
  /** How long the previous CA stays in the bundle after a CA rotation; default 24 h. */
  readonly overlapMs?: number;
  /** Domain of the service's fully qualified name; default cluster.local. */
  readonly clusterDomain?: string;
}

/** What the Secret holds, decoded. */
interface Material {
  readonly tlsCrt: string;
  readonly tlsKey: string;
  readonly caCrt: string;
  readonly caKey: string;
  readonly bundle: string;
  /** Epoch ms when the previous CA leaves the bundle. */
  readonly previousUntil: number | undefined;
}

interface Read {
  readonly secret: JsonRecord;
  readonly material: Material;
}

function decode(data: JsonRecord | undefined, key: string): string {
  const v = asString(data?.[key]);
  return v === undefined ? '' : Buffer.from(v, 'base64').toString('utf8');
}

function encode(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

function materialOf(secret: JsonRecord): Material {
  const data = asRecord(secret.data);
  const ann = asRecord(asRecord(secret.metadata)?.annotations);
  const until = Date.parse(asString(ann?.[PREVIOUS_CA_UNTIL_ANNOTATION]) ?? '');
  return {
    tlsCrt: decode(data, 'tls.crt'),
    tlsKey: decode(data, 'tls.key'),
    caCrt: decode(data, 'ca.crt'),
    caKey: decode(data, 'ca.key'),
    bundle: decode(data, CA_BUNDLE_KEY),
    previousUntil: Number.isNaN(until) ? undefined : until,
  };
}

/** A certificate whose key matches; undefined when either does not parse or they do not belong together. */
function parsePair(cert: string, key: string): X509Certificate | undefined {
  if (cert === '' || key === '') return undefined;
  try {
    const x = new X509Certificate(cert);
    return x.checkPrivateKey(createPrivateKey(key)) ? x : undefined;
  } catch {
    return undefined;
  }
}

function verifies(cert: X509Certificate, caPem: string): boolean {
  try {
    const ca = new X509Certificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

function withNewline(pem: string): string {
  return pem === '' || pem.endsWith('\n') ? pem : `${pem}\n`;
}

function digest(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Writes through a temporary file and a rename, so a watcher never reads half a file. */
async function writeAtomic(file: string, content: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode);
  await rename(tmp, file);
}

/**
 * Self-managed CA and serving pair in a Secret. `start()` on every replica; `lead(signal)` on the
 * elected leader only; `stop()` on shutdown.
 */
export class SelfManagedCertificates {
  readonly certFile: string;
  readonly keyFile: string;
  readonly hosts: readonly string[];
  private readonly kc: KubeConfig;
  private readonly secretPath: string;
  private readonly clock: () => number;
  private readonly pollIntervalMs: number;
  private readonly caValidityDays: number;
  private readonly servingValidityDays: number;
  private readonly renewBeforeMs: number;
  private readonly overlapMs: number;
  private readonly logger: Logger;
  private writtenDigest = '';
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private leading: Promise<void> | undefined;
  private readonly stopped = new AbortController();

  constructor(private readonly opts: SelfManagedCertificatesOptions) {
    this.kc = opts.kubeConfig;
    this.certFile = join(opts.certDir, 'tls.crt');
    this.keyFile = join(opts.certDir, 'tls.key');
    const svc = opts.serviceName;
    const ns = opts.namespace;
    this.hosts = [
      svc,
      `${svc}.${ns}`,
      `${svc}.${ns}.svc`,
      `${svc}.${ns}.svc.${opts.clusterDomain ?? 'cluster.local'}`,
    ];
    this.secretPath = `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(opts.secretName)}`;
    this.clock = opts.clock ?? Date.now;
    this.pollIntervalMs = opts.pollIntervalMs ?? 30_000;
    this.caValidityDays = opts.caValidityDays ?? 1825;
    this.servingValidityDays = opts.servingValidityDays ?? 365;
    this.renewBeforeMs = (opts.renewBeforeDays ?? 30) * DAY_MS;
    this.overlapMs = opts.overlapMs ?? DAY_MS;
    this.logger = opts.logger;
  }

  /**
   * Reads (or creates) the Secret, writes tls.crt/tls.key into certDir, then follows the Secret by
   * polling. A Secret whose serving pair is unusable is repaired (with the existing CA when it is
   * still good); a working Secret is always reused as it is.
   */
  async start(): Promise<void> {
    let read = await this.readOrCreate();
    for (let attempt = 0; parsePair(read.material.tlsCrt, read.material.tlsKey) === undefined; attempt++) {
      if (attempt >= 5) throw new Error(`cannot repair the serving pair in Secret ${this.secretName()}`);
      try {
        read = await this.repair(read);
      } catch (err) {
        if (!isKubeApiError(err, 409)) throw err;
        read = await this.readOrCreate();
      }
    }
    await mkdir(this.opts.certDir, { recursive: true, mode: 0o700 });
    await this.writeFiles(read.material);
    this.pollTimer = setInterval(() => {
      if (this.polling === undefined) {
        this.polling = this.pollOnce().finally(() => (this.polling = undefined));
      }
    }, this.pollIntervalMs);
    this.pollTimer.unref();
  }

  /** Re-reads the Secret and rewrites the files when its serving pair changed. */
  async pollOnce(signal?: AbortSignal): Promise<void> {
    try {
      const secret = await this.request({
        method: 'GET',
        path: this.secretPath,
        ...(signal ? { signal } : {}),
      });
      const m = materialOf(secret);
      if (digest(m.tlsCrt, m.tlsKey) === this.writtenDigest) return;
      if (parsePair(m.tlsCrt, m.tlsKey) === undefined) {
        this.logger.warn(
          { secret: this.secretName() },
          'the Secret holds no usable serving pair; keeping the current one',
        );
        return;
      }
      await this.writeFiles(m);
    } catch (err) {
      if (this.stopped.signal.aborted) return;
      this.logger.warn(
        { secret: this.secretName(), reason: messageOf(err) },
        'cannot read the certificate Secret',
      );
    }
  }

  /**
   * Leader duties until `signal` aborts: one round (reconcileOnce) every pollIntervalMs. Failed
   * rounds (a 409 from a concurrent write included) are logged and retried next round.
   */
  lead(signal: AbortSignal): Promise<void> {
    const both = AbortSignal.any([signal, this.stopped.signal]);
    const run = async (): Promise<void> => {
      while (!both.aborted) {
        try {
          await this.reconcileOnce(both);
        } catch (err) {
          // The signal may have aborted while the round awaited (the linter cannot know).
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
          if (both.aborted) break;
          this.logger.warn(
            { secret: this.secretName(), reason: messageOf(err) },
            'certificate round failed; retrying',
          );
        }
        try {
          await sleep(this.pollIntervalMs, undefined, { signal: both });
        } catch {
          break;
        }
      }
    };
    const p = run();
    this.leading = p;
    void p.finally(() => {
      if (this.leading === p) this.leading = undefined;
    });
    return p;
  }

  /** Resolves once the current leader round (if any) has ended; its signal must be aborted. */
  async stopLeading(): Promise<void> {
    await this.leading;
  }

  /** Stops polling and leading. */
  async stop(): Promise<void> {
    this.stopped.abort();
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    await Promise.all([this.leading, this.polling]);
  }

  /**
   * One leader round: end an expired CA overlap, rotate a CA near its expiry (new CA joins the
   * bundle), patch the bundle into both webhook configurations, and only then renew a serving pair
   * that is near expiry, not issued by the current CA or does not cover the service's names.
   */
  async reconcileOnce(signal?: AbortSignal): Promise<void> {
    let read = await this.readOrCreate(signal);
    let m = read.material;
    const now = this.clock();
    if (m.previousUntil !== undefined && now >= m.previousUntil) {
      m = { ...m, bundle: withNewline(m.caCrt), previousUntil: undefined };
      read = await this.update(read.secret, m, signal);
      this.logger.info({ secret: this.secretName() }, 'previous CA removed from the webhook CA bundle');
    }
    const ca = parsePair(m.caCrt, m.caKey);
    const caGood = ca !== undefined && ca.ca && !this.caDue(ca, now);
    if (!caGood) {
      const next = await createCa({ days: this.caValidityDays, notBefore: new Date(now - BACKDATE_MS) });
      const keepOld = ca !== undefined && Date.parse(ca.validTo) > now;
      m = {
        ...m,
        caCrt: next.cert,
        caKey: next.key,
        bundle: next.cert + (keepOld ? withNewline(m.caCrt) : ''),
        previousUntil: keepOld ? now + this.overlapMs : undefined,
      };
      read = await this.update(read.secret, m, signal);
      const x = new X509Certificate(next.cert);
      this.logger.info(
        {
          secret: this.secretName(),
          serial: x.serialNumber,
          notAfter: new Date(x.validTo).toISOString(),
          previousTrustedUntil:
            m.previousUntil === undefined ? undefined : new Date(m.previousUntil).toISOString(),
        },
        'rotated the webhook CA; the previous CA stays trusted during the overlap',
      );
    }
    // The bundle reaches the webhook configurations before any serving pair it must verify.
    await this.ensureCaBundle(m.bundle, signal);
    if (!this.servingGood(m, now)) {
      const serving = await createServingCert({ cert: m.caCrt, key: m.caKey }, [...this.hosts], {
        days: this.servingValidityDays,
        notBefore: new Date(now - BACKDATE_MS),
      });
      m = { ...m, tlsCrt: serving.cert, tlsKey: serving.key };
      read = await this.update(read.secret, m, signal);
      const x = new X509Certificate(serving.cert);
      this.logger.info(
        { secret: this.secretName(), serial: x.serialNumber, notAfter: new Date(x.validTo).toISOString() },
        'issued a new serving certificate',
      );
    }
    if (digest(read.material.tlsCrt, read.material.tlsKey) !== this.writtenDigest) {
      if (parsePair(read.material.tlsCrt, read.material.tlsKey) !== undefined)
        await this.writeFiles(read.material);
    }
  }

  /** Patches `bundle` into every webhook of both configurations where it differs; no write otherwise. */
  async ensureCaBundle(bundle: string, signal?: AbortSignal): Promise<void> {
    const value = encode(bundle);
    const { validating, mutating } = this.opts.webhookConfigurations;
    for (const [resource, name] of [
      ['validatingwebhookconfigurations', validating],
      ['mutatingwebhookconfigurations', mutating],
    ] as const) {
      const path = `/apis/admissionregistration.k8s.io/v1/${resource}/${encodeURIComponent(name)}`;
      const current = await this.request({ method: 'GET', path, ...(signal ? { signal } : {}) });
      const ops: JsonRecord[] = [];
      (asArray(current.webhooks) ?? []).forEach((w, i) => {
        const webhook = asRecord(w);
        const clientConfig = asRecord(webhook?.clientConfig);
        if (asString(clientConfig?.caBundle) === value) return;
        ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: asString(webhook?.name) ?? '' });
        ops.push(
          clientConfig === undefined
            ? { op: 'add', path: `/webhooks/${i}/clientConfig`, value: { caBundle: value } }
            : { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value },
        );
      });
      if (ops.length === 0) continue;
      await this.request({
        method: 'PATCH',
        path,
        body: ops,
        contentType: 'application/json-patch+json',
        ...(signal ? { signal } : {}),
      });
      this.logger.info({ resource, name, webhooks: ops.length / 2 }, 'patched the webhook CA bundle');
    }
  }

  private secretName(): string {
    return `${this.opts.namespace}/${this.opts.secretName}`;
  }

  private caDue(ca: X509Certificate, now: number): boolean {
    const from = Date.parse(ca.validFrom);
    const to = Date.parse(ca.validTo);
    return to - now < (to - from) / 5;
  }

  private servingGood(m: Material, now: number): boolean {
    const x = parsePair(m.tlsCrt, m.tlsKey);
    if (x === undefined || !verifies(x, m.caCrt)) return false;
    if (Date.parse(x.validTo) - now <= this.renewBeforeMs) return false;
    return this.hosts.every((h) => x.checkHost(h) !== undefined);
  }

  private request(req: Parameters<typeof kubeRequest>[1]): Promise<JsonRecord> {
    return kubeRequest(this.kc, { timeoutMs: REQUEST_TIMEOUT_MS, ...req });
  }

  /** GET the Secret; absent → create a new CA and serving pair (409: another replica won → re-read). */
  private async readOrCreate(signal?: AbortSignal): Promise<Read> {
    const s = signal === undefined ? {} : { signal };
    try {
      const secret = await this.request({ method: 'GET', path: this.secretPath, ...s });
      return { secret, material: materialOf(secret) };
    } catch (err) {
      if (!isKubeApiError(err, 404)) throw err;
    }
    const material = await this.fresh();
    const body = this.secretBody(
      { metadata: { name: this.opts.secretName, namespace: this.opts.namespace } },
      material,
    );
    try {
      const secret = await this.request({
        method: 'POST',
        path: `/api/v1/namespaces/${encodeURIComponent(this.opts.namespace)}/secrets`,
        body,
        ...s,
      });
      const x = new X509Certificate(material.caCrt);
      this.logger.info(
        {
          secret: this.secretName(),
          caSerial: x.serialNumber,
          caNotAfter: new Date(x.validTo).toISOString(),
        },
        'created the self-managed certificate Secret',
      );
      return { secret, material: materialOf(secret) };
    } catch (err) {
      if (!isKubeApiError(err, 409)) throw err;
      const secret = await this.request({ method: 'GET', path: this.secretPath, ...s });
      return { secret, material: materialOf(secret) };
    }
  }

  private async fresh(): Promise<Material> {
    const now = this.clock();
    const ca = await createCa({ days: this.caValidityDays, notBefore: new Date(now - BACKDATE_MS) });
    const serving = await this.issue(ca, now);
    return {
      tlsCrt: serving.cert,
      tlsKey: serving.key,
      caCrt: ca.cert,
      caKey: ca.key,
      bundle: ca.cert,
      previousUntil: undefined,
    };
  }

  private issue(ca: PemPair, now: number): Promise<PemPair> {
    return createServingCert(ca, [...this.hosts], {
      days: this.servingValidityDays,
      notBefore: new Date(now - BACKDATE_MS),
    });
  }

  /** A Secret without a usable serving pair: a new pair from its CA when that is still good, else everything new. */
  private async repair(read: Read): Promise<Read> {
    const m = read.material;
    const now = this.clock();
    const ca = parsePair(m.caCrt, m.caKey);
    let next: Material;
    if (ca !== undefined && ca.ca && Date.parse(ca.validTo) > now && m.bundle.includes(m.caCrt.trim())) {
      const serving = await this.issue({ cert: m.caCrt, key: m.caKey }, now);
      next = { ...m, tlsCrt: serving.cert, tlsKey: serving.key };
    } else {
      next = await this.fresh();
    }
    this.logger.warn(
      { secret: this.secretName() },
      'the certificate Secret held no usable serving pair; replacing it',
    );
    return this.update(read.secret, next, undefined);
  }

  /** PUT the Secret with its resourceVersion (a 409 propagates: the caller re-reads). */
  private async update(secret: JsonRecord, m: Material, signal: AbortSignal | undefined): Promise<Read> {
    const updated = await this.request({
      method: 'PUT',
      path: this.secretPath,
      body: this.secretBody(secret, m),
      ...(signal ? { signal } : {}),
    });
    return { secret: updated, material: materialOf(updated) };
  }

  private secretBody(base: JsonRecord, m: Material): JsonRecord {
    const metadata = { ...(asRecord(base.metadata) ?? {}) };
    const annotations: Record<string, unknown> = Object.fromEntries(
      Object.entries(asRecord(metadata.annotations) ?? {}).filter(
        ([k]) => k !== PREVIOUS_CA_UNTIL_ANNOTATION,
      ),
    );
    if (m.previousUntil !== undefined)
      annotations[PREVIOUS_CA_UNTIL_ANNOTATION] = new Date(m.previousUntil).toISOString();
    metadata.annotations = annotations;
    metadata.labels = { ...(asRecord(metadata.labels) ?? {}), 'app.kubernetes.io/managed-by': 'breeze' };
    return {
      ...base,
      apiVersion: 'v1',
      kind: 'Secret',
      metadata,
      type: asString(base.type) ?? 'kubernetes.io/tls',
      data: {
        ...(asRecord(base.data) ?? {}),
        'tls.crt': encode(m.tlsCrt),
        'tls.key': encode(m.tlsKey),
        'ca.crt': encode(m.caCrt),
        'ca.key': encode(m.caKey),
        [CA_BUNDLE_KEY]: encode(m.bundle),
      },
    };
  }

  private async writeFiles(m: Material): Promise<void> {
    await mkdir(this.opts.certDir, { recursive: true, mode: 0o700 });
    // The key goes first: a reloader that sees the new certificate next to the old key rejects the
    // pair and picks up the matching one on the next event or poll.
    await writeAtomic(this.keyFile, m.tlsKey, 0o600);
    await writeAtomic(this.certFile, m.tlsCrt, 0o644);
    this.writtenDigest = digest(m.tlsCrt, m.tlsKey);
    let serial: string | undefined;
    try {
      serial = new X509Certificate(m.tlsCrt).serialNumber;
    } catch {
      serial = undefined;
    }
    this.logger.info({ certFile: this.certFile, serial }, 'wrote the serving certificate from the Secret');
  }
}
