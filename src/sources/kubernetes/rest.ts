import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { asString, isRecord, type JsonRecord } from '../../model/json.js';

/** A non-2xx answer of the API server, with the `Status` reason when it sent one. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    /** From Retry-After (429, 503), in milliseconds. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export function isKubeApiError(err: unknown, status?: number): err is KubeApiError {
  return err instanceof KubeApiError && (status === undefined || err.status === status);
}

/** The API path of a collection: `/api/v1/services`, `/apis/<group>/<version>/<resource>`. */
export function collectionPath(group: string, version: string, resource: string, namespace?: string): string {
  const base = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
  const ns = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  return `${base}${ns}/${resource}`;
}

export interface GetOptions {
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly signal?: AbortSignal;
  /** Whole-request deadline. */
  readonly timeoutMs: number;
}

/**
 * GETs JSON from the API server of the kubeconfig's current context. Authentication and TLS come
 * from client-node (`applyToHTTPSOptions`: tokens, client certificates, exec plugins, CA), as for
 * its own requests. The body is returned raw: no typed model, timestamps stay strings.
 */
export async function getJson(kc: KubeConfig, path: string, opts: GetOptions): Promise<JsonRecord> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
  const options: RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(options);
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal === undefined ? deadline : AbortSignal.any([opts.signal, deadline]);
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise<JsonRecord>((resolve, reject) => {
    const req = send(url, { ...options, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(new Error(`connection closed while reading ${url.pathname}`));
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        if (status >= 200 && status < 300 && isRecord(body)) resolve(body);
        else reject(apiError(status, body, text, res.headers['retry-after']));
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function apiError(status: number, body: unknown, text: string, retryAfter: string | undefined): KubeApiError {
  const record = isRecord(body) ? body : {};
  const reason = asString(record.reason) ?? (status >= 200 && status < 300 ? 'BadResponse' : 'Unknown');
  const message = asString(record.message) ?? (text.slice(0, 200) || `HTTP ${status}`);
  const seconds = retryAfter === undefined ? NaN : Number(retryAfter);
  return new KubeApiError(status, reason, message, Number.isFinite(seconds) ? seconds * 1000 : undefined);
}
