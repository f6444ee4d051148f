// One JSON request to the API server, with client-node's authentication and TLS
// (`applyToHTTPSOptions`: tokens, client certificates, exec plugins, CA) but no typed models:
// bodies stay raw JSON (timestamps stay strings, unknown fields survive). Every Kubernetes call
// of Breeze's own (lists, Secret reads, EnvoyFilter writes, Events, Leases) goes through here.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { BreezeError, isBreezeError } from '../errors.js';
import { asString, isRecord, type JsonRecord } from '../model/json.js';

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

export interface KubeRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly query?: Readonly<Record<string, string | undefined>>;
  /** A JSON body (serialized here) or text already in `contentType`. */
  readonly body?: unknown;
  /** Default application/json when there is a body. */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /** Whole-request deadline; none when unset (the caller's signal bounds it). */
  readonly timeoutMs?: number;
  /** Extra headers (e.g. a User-Agent naming the replica). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * One request to the API server of the kubeconfig's current context. Resolves with the JSON body
 * of a 2xx answer; rejects with KubeApiError (non-2xx, with the Status reason and Retry-After),
 * or the transport's error (connection refused, reset, deadline, abort).
 */
export async function kubeRequest(kc: KubeConfig, req: KubeRequest): Promise<JsonRecord> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + req.path);
  for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
  const body =
    req.body === undefined ? undefined : typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
  const headers: Record<string, string> = { Accept: 'application/json', ...req.headers };
  if (body !== undefined) {
    headers['Content-Type'] = req.contentType ?? 'application/json';
    headers['Content-Length'] = String(Buffer.byteLength(body));
  }
  const options: RequestOptions = { method: req.method, headers };
  await kc.applyToHTTPSOptions(options);
  req.signal?.throwIfAborted();
  // The deadline is a timer of our own, not AbortSignal.timeout() inside AbortSignal.any(): on
  // Node 20 that timeout signal is held only weakly, so a garbage collection before the deadline
  // drops it, and a request the API server never answers then waits forever (found by the soak
  // run: one hung EnvoyFilter write stalled every later push).
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort(req.signal?.reason);
  req.signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    req.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => ctl.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
          req.timeoutMs,
        ).unref();
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  try {
    return await new Promise<JsonRecord>((resolve, reject) => {
      const r = send(url, { ...options, signal: ctl.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('close', () => {
          if (!res.complete) reject(new Error(`connection closed while reading ${url.pathname}`));
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          if (status >= 200 && status < 300 && isRecord(parsed)) resolve(parsed);
          else if (status >= 200 && status < 300 && text.trim() === '') resolve({});
          else {
            const record = isRecord(parsed) ? parsed : {};
            const seconds = Number(res.headers['retry-after'] ?? NaN);
            reject(
              new KubeApiError(
                status,
                asString(record.reason) ?? (status >= 200 && status < 300 ? 'BadResponse' : 'Unknown'),
                asString(record.message) ?? (text.slice(0, 200) || `HTTP ${status}`),
                Number.isFinite(seconds) ? seconds * 1000 : undefined,
              ),
            );
          }
        });
      });
      r.on('error', reject);
      r.end(body);
    });
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The stable error for a failed API request about `what` (e.g. `create EnvoyFilter ns/name`):
 * 400/422 API_INVALID (the object itself is rejected), 401/403 API_FORBIDDEN, 409 API_CONFLICT,
 * everything else (429, 5xx, 404 of a resource type that is not served, timeouts, resets)
 * API_RETRYABLE. BreezeErrors pass through unchanged.
 */
export function toApiError(err: unknown, what: string): BreezeError {
  if (isBreezeError(err)) return err;
  if (err instanceof KubeApiError) {
    const code =
      err.status === 400 || err.status === 422
        ? 'API_INVALID'
        : err.status === 401 || err.status === 403
          ? 'API_FORBIDDEN'
          : err.status === 409
            ? 'API_CONFLICT'
            : 'API_RETRYABLE';
    return new BreezeError(code, `${what}: HTTP ${err.status} ${err.reason}: ${err.message}`, {
      cause: err,
      status: err.status,
      retryAfterMs: err.retryAfterMs,
    });
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new BreezeError('API_RETRYABLE', `${what}: ${message}`, { cause: err });
}
