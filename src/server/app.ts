import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { admit, type AdmissionDeps, type AdmissionResult, type Webhook } from '../admission/handler.js';
import { parseGoDuration } from '../model/duration.js';
import { BreezeError, isBreezeError, type BreezeErrorCode } from '../errors.js';
import { asRecord, asString } from '../model/json.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

export type WebhookApp = FastifyInstance<HttpsServer, IncomingMessage, ServerResponse>;

export interface WebhookAppOptions {
  readonly admission: AdmissionDeps;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /**
   * The serving pair; with `ca` (--client-ca-file) every client must present a certificate that
   * chains to it, or the TLS handshake fails.
   */
  readonly tls: { readonly cert: string; readonly key: string; readonly ca?: string };
  /**
   * True while the process drains before closing: answers then carry `Connection: close`, so the
   * API server moves its keep-alive connections to other replicas before this one stops listening.
   */
  readonly draining?: () => boolean;
}

/** The API server caps AdmissionReview bodies well below this; controller-runtime uses the same. */
export const BODY_LIMIT_BYTES = 7 * 1024 * 1024;

// Server timeouts, all against slow or idle clients rather than against the API server:
// - requestTimeout 30 s: the whole request must arrive within 30 s. A webhook's timeoutSeconds is
//   at most 30, so the API server has given up on anything slower.
// - headersTimeout 10 s: headers arrive at once from a real client; a slowloris does not.
// - handshakeTimeout 10 s: the same for the TLS handshake (Node's default is 120 s).
// - keepAliveTimeout 120 s: longer than the API server's idle-connection timeout (Go's
//   http.Transport default, 90 s), so the client always closes an idle connection first and never
//   sends a POST on a connection the server is closing at the same moment.
// - connectionsCheckingInterval 2 s: how often Node enforces the two request timeouts (default 30 s).
const REQUEST_TIMEOUT_MS = 30_000;
const HEADERS_TIMEOUT_MS = 10_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const KEEP_ALIVE_TIMEOUT_MS = 120_000;
const CONNECTIONS_CHECKING_INTERVAL_MS = 2_000;
/** Kept back from the API server's ?timeout= so our answer arrives before it gives up. */
const DEADLINE_MARGIN_MAX_MS = 500;

const STATUS_OF: Partial<Record<BreezeErrorCode, number>> = {
  BAD_REQUEST: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  DEADLINE_EXCEEDED: 500,
};

/** What one request to /validate or /mutate ended with; logged and counted when it closes. */
type Outcome =
  | { readonly type: 'decision'; readonly result: AdmissionResult }
  | { readonly type: 'rejected'; readonly status: number; readonly error: BreezeError }
  | { readonly type: 'deadline'; readonly timeoutMs: number }
  | { readonly type: 'internal'; readonly error: unknown };

interface Exchange {
  readonly webhook: Webhook;
  readonly start: bigint;
  /** The API server's ?timeout= in ms; undefined when absent or not a positive Go duration. */
  readonly timeoutMs: number | undefined;
  /** Epoch ms after which admit() must not run; undefined without a usable ?timeout=. */
  readonly deadline: number | undefined;
  timer: NodeJS.Timeout | undefined;
  outcome: Outcome | undefined;
}

/**
 * The HTTPS (HTTP/1.1 only) admission endpoints: POST /validate and POST /mutate. Every request
 * ends in exactly one log line and one observation of the admission metrics.
 */
export function buildWebhookApp(opts: WebhookAppOptions): WebhookApp {
  const { logger, metrics, admission } = opts;
  const decisions = decisionLogger(logger);
  const app = Fastify({
    https: {
      cert: opts.tls.cert,
      key: opts.tls.key,
      minVersion: 'TLSv1.2',
      ...(opts.tls.ca === undefined ? {} : { ca: opts.tls.ca, requestCert: true, rejectUnauthorized: true }),
      // HTTP/1.1 only: no h2 (CVE-2023-44487, and the API server speaks HTTP/1.1 to webhooks).
      ALPNProtocols: ['http/1.1'],
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      headersTimeout: HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    },
    // fastify logs nothing itself: every line is ours (one per request, see finish()). Without a
    // logger instance fastify also skips making a child logger for each request.
    logger: false,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    return503OnClosing: true,
  });

  const exchanges = new WeakMap<FastifyRequest, Exchange>();
  let closing = false;

  // Only JSON: fastify answers 415 for any other media type it is sent.
  app.removeContentTypeParser('text/plain');

  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  // Draining, or in flight when close() began: the connection must not stay open for keep-alive
  // (server.close() waits for every connection, and an idle one would hold it for 120 s). Set on
  // each answer rather than in an onSend hook, which would cost every request a hook round.
  const answer = (reply: FastifyReply, status: number, body: unknown): void => {
    if (closing || opts.draining?.() === true) void reply.header('connection', 'close');
    void reply.code(status).send(body);
  };

  const finish = (ex: Exchange): void => {
    clearTimeout(ex.timer);
    metrics.admissionInFlight.dec();
    const seconds = Number(process.hrtime.bigint() - ex.start) / 1e9;
    const durationMs = Math.round(seconds * 1e6) / 1e3;
    const outcome = ex.outcome;
    if (outcome === undefined) {
      logger.warn({ webhook: ex.webhook, durationMs }, 'admission connection closed before an answer');
      return;
    }
    const labels = labelsOf(outcome);
    metrics.admissionDuration.observe(
      { webhook: ex.webhook, kind: labels.kind, operation: labels.operation, allowed: labels.allowed },
      seconds,
    );
    metrics.admissionRequests.inc({ ...labels, webhook: ex.webhook });
    if (outcome.type === 'internal' || (outcome.type === 'decision' && outcome.result.httpStatus === 500)) {
      metrics.admissionInternalErrors.inc();
    }
    logOutcome(logger, decisions, ex.webhook, outcome, durationMs);
  };

  const onRequest = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
    const webhook: Webhook = request.routeOptions.url === '/mutate' ? 'mutate' : 'validate';
    const start = process.hrtime.bigint();
    const timeoutMs = timeoutOf(request.query);
    const budgetMs =
      timeoutMs === undefined ? undefined : timeoutMs - Math.min(DEADLINE_MARGIN_MAX_MS, timeoutMs / 10);
    const ex: Exchange = {
      webhook,
      start,
      timeoutMs,
      deadline: budgetMs === undefined ? undefined : Date.now() + budgetMs,
      timer: undefined,
      outcome: undefined,
    };
    exchanges.set(request, ex);
    metrics.admissionInFlight.inc();
    reply.raw.once('close', () => finish(ex));
    if (budgetMs !== undefined) {
      ex.timer = setTimeout(() => expire(ex, reply), budgetMs);
      ex.timer.unref();
    }
    const contentType = request.headers['content-type'];
    const essence = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
    if (essence !== 'application/json') {
      done(
        new BreezeError(
          'UNSUPPORTED_MEDIA_TYPE',
          `Content-Type must be application/json, got ${JSON.stringify(contentType ?? null)}`,
        ),
      );
      return;
    }
    done();
  };

  const expire = (ex: Exchange, reply: FastifyReply): void => {
    if (reply.sent || ex.outcome !== undefined) return;
    const timeoutMs = ex.timeoutMs ?? 0;
    ex.outcome = { type: 'deadline', timeoutMs };
    // The body may still be arriving: close the connection rather than read the rest of it.
    void reply.header('connection', 'close');
    answer(reply, 500, {
      message: `deadline exceeded: no answer within the API server's timeout of ${timeoutMs}ms (less a safety margin)`,
    });
  };

  const handle = (request: FastifyRequest, reply: FastifyReply): void => {
    const ex = exchanges.get(request);
    if (ex === undefined || reply.sent || ex.outcome !== undefined) return;
    if (ex.deadline !== undefined && Date.now() >= ex.deadline) {
      expire(ex, reply);
      return;
    }
    let result: AdmissionResult;
    try {
      result = admit(ex.webhook, request.body, admission);
    } catch (error) {
      // admit() promises never to throw; this is the net under that promise.
      ex.outcome = { type: 'internal', error };
      answer(reply, 500, { message: 'internal error in Breeze' });
      return;
    }
    ex.outcome = { type: 'decision', result };
    answer(reply, result.httpStatus, result.body);
  };

  app.setErrorHandler((error, request, reply) => {
    const ex = exchanges.get(request);
    const breeze = toBreezeError(error);
    const status = STATUS_OF[breeze.code];
    if (status !== undefined && status < 500) {
      if (ex !== undefined && ex.outcome === undefined)
        ex.outcome = { type: 'rejected', status, error: breeze };
      if (ex === undefined) logger.warn({ url: request.url, reason: breeze.message }, 'rejected request');
      // The body was not (fully) read: close rather than drain it for the next request.
      if (status === 413 || status === 415) void reply.header('connection', 'close');
      answer(reply, status, { message: breeze.message });
      return;
    }
    if (ex !== undefined && ex.outcome === undefined) ex.outcome = { type: 'internal', error };
    if (ex === undefined) {
      metrics.admissionInternalErrors.inc();
      logger.error({ url: request.url, err: errorFields(error) }, 'internal error');
    }
    answer(reply, 500, { message: 'internal error in Breeze' });
  });

  app.setNotFoundHandler((request, reply) => {
    answer(reply, 404, { message: `${request.method} ${request.url} not found` });
  });

  for (const url of ['/validate', '/mutate'] as const) {
    app.route({
      method: 'POST',
      url,
      bodyLimit: BODY_LIMIT_BYTES,
      onRequest,
      handler: handle,
    });
  }
  return app;
}

function timeoutOf(query: unknown): number | undefined {
  const raw = asRecord(query)?.timeout;
  const text = asString(Array.isArray(raw) ? (raw as unknown[])[0] : raw);
  const ms = text === undefined ? undefined : parseGoDuration(text);
  return ms !== undefined && ms > 0 ? ms : undefined;
}

/** Maps what fastify or a hook threw onto a BreezeError code. */
function toBreezeError(error: unknown): BreezeError {
  if (isBreezeError(error)) return error;
  const e = error as { code?: unknown; statusCode?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : 'request failed';
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BreezeError(
        'PAYLOAD_TOO_LARGE',
        `the body is larger than ${BODY_LIMIT_BYTES} bytes (7 MiB)`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BreezeError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json');
    default:
      break;
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const prefix = error instanceof SyntaxError ? 'the body is not valid JSON: ' : '';
    return new BreezeError('BAD_REQUEST', `${prefix}${message}`);
  }
  return new BreezeError('INTERNAL', 'internal error', { cause: error });
}

/** An error as logged: type, message and stack, never other properties (which may hold objects). */
function errorFields(error: unknown): { type: string; message: string; stack?: string } {
  if (error instanceof Error) {
    return {
      type: error.name,
      message: error.message,
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  return { type: typeof error, message: String(error) };
}

interface Labels {
  readonly kind: string;
  readonly operation: string;
  readonly allowed: string;
  readonly code: string;
}

function labelsOf(outcome: Outcome): Labels {
  switch (outcome.type) {
    case 'decision': {
      const r = outcome.result.record ?? recordOfBody(outcome.result);
      return {
        kind: r.kind,
        operation: r.operation,
        allowed: String(r.allowed),
        code: String(r.code),
      };
    }
    case 'rejected':
      return { kind: '', operation: '', allowed: 'false', code: String(outcome.status) };
    case 'deadline':
    case 'internal':
      return { kind: '', operation: '', allowed: 'false', code: '500' };
  }
}

interface LoggedRecord {
  uid: string;
  kind: string;
  namespace: string;
  name: string;
  operation: string;
  dryRun: boolean;
  user: string;
  allowed: boolean;
  code: number;
}

/**
 * A record for a result admit() gave none for: a review answered in-band with code 400 (its uid is
 * known, the rest is not), or a body that is no review at all (HTTP 400).
 */
function recordOfBody(result: AdmissionResult): LoggedRecord {
  const response = asRecord(result.body.response);
  const status = asRecord(response?.status);
  const code = typeof status?.code === 'number' ? status.code : result.httpStatus;
  return {
    uid: asString(response?.uid) ?? '',
    kind: '',
    namespace: '',
    name: '',
    operation: '',
    dryRun: false,
    user: '',
    allowed: response?.allowed === true,
    code,
  };
}

/**
 * The logger for allowed/denied decision lines. Those lines carry only the fixed scalar fields
 * below (never an object, never a secret), so they skip the redaction walk, which costs about
 * three times the rest of a log call. Every other line keeps the redaction.
 */
function decisionLogger(logger: Logger): Logger {
  return logger.child({}, { redact: [] });
}

function logOutcome(
  logger: Logger,
  decisions: Logger,
  webhook: Webhook,
  outcome: Outcome,
  durationMs: number,
): void {
  switch (outcome.type) {
    case 'decision': {
      const { result } = outcome;
      const r = result.record ?? recordOfBody(result);
      const line = {
        uid: r.uid,
        kind: r.kind,
        namespace: r.namespace,
        name: r.name,
        operation: r.operation,
        dryRun: r.dryRun,
        user: r.user,
        allowed: r.allowed,
        code: r.code,
        durationMs,
        webhook,
      };
      if (result.httpStatus === 500) {
        logger.error({ ...line, err: errorFields(result.error) }, 'admission internal error');
      } else if (result.httpStatus === 400) {
        const message = asString(result.body.message) ?? '';
        logger.warn({ ...line, reason: message }, 'admission request is not an AdmissionReview');
      } else {
        decisions.info(line, 'admission decision');
      }
      return;
    }
    case 'rejected':
      logger.warn(
        { webhook, httpStatus: outcome.status, reason: outcome.error.message, durationMs },
        'admission request rejected',
      );
      return;
    case 'deadline':
      logger.warn({ webhook, timeoutMs: outcome.timeoutMs, durationMs }, 'admission deadline exceeded');
      return;
    case 'internal':
      logger.error({ webhook, err: errorFields(outcome.error), durationMs }, 'admission internal error');
      return;
  }
}
