// Shared plumbing for the server tests: certificates in a tmp dir, a captured logger, a started
// BreezeServer on 127.0.0.1 port 0, and an HTTPS client that reports what it talked to.
import { readFileSync } from 'node:fs';
import { request as httpsRequest, type Agent } from 'node:https';
import { TLSSocket } from 'node:tls';
import { Writable } from 'node:stream';
import type { AdmissionDeps, AdmittedChange } from '../../src/admission/handler.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';
import { writeDevCertificates } from '../../src/pki/certs.js';
import { BreezeServer, type BreezeServerOptions } from '../../src/server/index.js';
import { createLogger, type Logger } from '../../src/telemetry/logger.js';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.js';

export const HOSTS = ['localhost', '127.0.0.1'];

export interface CertSet {
  dir: string;
  ca: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

export async function makeCerts(dir: string, hosts = HOSTS): Promise<CertSet> {
  const files = await writeDevCertificates(dir, hosts);
  return { dir, ca: readFileSync(files.caFile, 'utf8'), ...files };
}

export interface CapturedLog {
  logger: Logger;
  lines(): Record<string, any>[];
  raw(): string;
}

/** A pino logger writing into memory (synchronously), for assertions on every line. */
export function captureLogger(level = 'info'): CapturedLog {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ level, destination });
  const raw = (): string => chunks.join('');
  return {
    logger,
    raw,
    lines: () =>
      raw()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l)),
  };
}

export interface Harness {
  server: BreezeServer;
  metrics: Metrics;
  log: CapturedLog;
  admitted: AdmittedChange[];
  store: ConfigStore;
  certs: CertSet;
  port: number;
  healthPort: number;
  synced: { value: boolean };
}

interface TapLike {
  testdir(): string;
  teardown(fn: () => unknown): void;
}

export async function startHarness(
  t: TapLike,
  overrides: Partial<BreezeServerOptions> & { certs?: CertSet } = {},
): Promise<Harness> {
  const certs = overrides.certs ?? (await makeCerts(t.testdir()));
  const log = captureLogger();
  const metrics = overrides.metrics ?? createMetrics();
  const store = new ConfigStore();
  const admitted: AdmittedChange[] = [];
  const admission: AdmissionDeps = overrides.admission ?? {
    view: store,
    vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store),
    onAdmitted: (c) => admitted.push(c),
  };
  const synced = { value: true };
  const server = await BreezeServer.start({
    listen: { host: '127.0.0.1', port: 0 },
    healthListen: { host: '127.0.0.1', port: 0 },
    certFile: certs.certFile,
    keyFile: certs.keyFile,
    logger: log.logger,
    isSynced: () => synced.value,
    pollIntervalMs: 200,
    ...overrides,
    admission,
    metrics,
  });
  t.teardown(() => server.shutdown());
  return {
    server,
    metrics,
    log,
    admitted,
    store,
    certs,
    port: server.webhookPort,
    healthPort: server.healthPort,
    synced,
  };
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
  httpVersion: string;
  serial: string;
  reusedSocket: boolean;
}

export interface RequestOptions {
  port: number;
  ca: string;
  path?: string;
  method?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  agent?: Agent | false;
  servername?: string;
}

/** One HTTPS request over a real socket; resolves with the answer and the peer certificate serial. */
export function send(opts: RequestOptions): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: opts.port,
        method: opts.method ?? 'POST',
        path: opts.path ?? '/validate',
        ca: opts.ca,
        servername: opts.servername ?? 'localhost',
        agent: opts.agent ?? false,
        headers: { 'content-type': 'application/json', ...opts.headers },
      },
      (res) => {
        const socket = res.socket;
        const serial = socket instanceof TLSSocket ? socket.getPeerCertificate().serialNumber : '';
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json,
            httpVersion: res.httpVersion,
            serial,
            reusedSocket: req.reusedSocket,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const fixtures = new URL('../fixtures/admission/serviceentry/', import.meta.url);

/** A review from the ServiceEntry fixtures, with a fresh uid. */
export function review(file: string, uid: string): any {
  const fx = JSON.parse(readFileSync(new URL(file, fixtures), 'utf8'));
  const r = structuredClone(fx.review);
  r.request.uid = uid;
  return r;
}

/** A validating review of a valid Dubbo ServiceEntry (admission.k8s.io/v1). */
export const validV1 = (uid: string): any => review('allow-dubbo.v1.json', uid);
/** A mutating review of a Thrift ServiceEntry that needs a VIP (admission.k8s.io/v1beta1). */
export const mutateV1beta1 = (uid: string): any => review('mutate-vip-and-protocol.v1beta1.json', uid);

export async function getHealth(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

/** The value of one sample in Prometheus text, by exact name and label subset. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[pair[1]!] = pair[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}
