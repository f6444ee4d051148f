import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { admit, type AdmissionDeps, type AdmissionResult, type Webhook } from '../admission/handler.js';
import { encodeReview } from '../admission/review.js';
import { parseGoDuration } from '../model/duration.js';
import { BreezeError, isBreezeError, type BreezeErrorCode } from '../errors.js';
import { asRecord, asString } from '../model/json.js';
import { quote } from '../model/limits.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { parseBody, RefusedBody } from './body.js';

/** The admission endpoints: an HTTPS server and the request handler it runs. */
export interface WebhookApp {
  readonly server: HttpsServer;
  /** The handler the server runs for every request (tests drive it without TLS). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  listen(address: { readonly host: string; readonly port: number }): Promise<void>;
  /**
   * Stops accepting connections and closes the idle ones; answers still in flight carry
   * `Connection: close`. Resolves once every connection is closed.
   */
  close(): Promise<void>;
}

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
  /** Shorter timeouts for tests; the defaults are DEFAULT_TIMEOUTS. */
  readonly timeouts?: Partial<ServerTimeouts>;
}

/** The API server caps AdmissionReview bodies well below this; controller-runtime uses the same. */
export const BODY_LIMIT_BYTES = 7 * 1024 * 1024;

/**
 * Server timeouts, all against slow or idle clients rather than against the API server:
 * - requestMs 30 s: the whole request must arrive within 30 s. A webhook's timeoutSeconds is at
 *   most 30, so the API server has given up on anything slower.
 * - headersMs 10 s: headers arrive at once from a real client; a slowloris does not.
 * - handshakeMs 10 s: the same for the TLS handshake (Node's default is 120 s).
 * - keepAliveMs 120 s: longer than the API server's idle-connection timeout (Go's
 *   http.Transport default, 90 s), so the client always closes an idle connection first and never
 *   sends a POST on a connection the server is closing at the same moment.
 * - checkIntervalMs 2 s: how often Node enforces the two request timeouts (default 30 s).
 *
 * Node measures headersTimeout and requestTimeout from the first byte of the current request (or,
 * before any byte, from the end of the TLS handshake), so the handshake and the idle time before
 * the first byte came on top: a client that waited 9 s before a slowloris was closed at 20 s, one
 * that waited 9 s before a half-sent body at 40 s, one that also stretched the handshake later
 * still. The first request of a connection is therefore also held to deadlines counted from the
 * TCP accept (see guardFirstRequest): its headers by headersMs, all of it by requestMs.
 */
export interface ServerTimeouts {
  readonly requestMs: number;
  readonly headersMs: number;
  readonly handshakeMs: number;
  readonly keepAliveMs: number;
  readonly checkIntervalMs: number;
}

export const DEFAULT_TIMEOUTS: ServerTimeouts = {
  requestMs: 30_000,
  headersMs: 10_000,
  handshakeMs: 10_000,
  keepAliveMs: 120_000,
  checkIntervalMs: 2_000,
};
/** Kept back from the API server's ?timeout= so our answer arrives before it gives up. */
const DEADLINE_MARGIN_MAX_MS = 500;

const STATUS_OF: Partial<Record<BreezeErrorCode, number>> = {
  BAD_REQUEST: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
};

function tooLarge(): BreezeError {
  return new BreezeError('PAYLOAD_TOO_LARGE', `the body is larger than ${BODY_LIMIT_BYTES} bytes (7 MiB)`);
}

/** The two endpoints, by path. */
const WEBHOOKS = new Map<string, Webhook>([
  ['/validate', 'validate'],
  ['/mutate', 'mutate'],
]);

/** What one request to /validate or /mutate ended with; logged and counted when answered. */
type Outcome =
  | { readonly type: 'decision'; readonly result: AdmissionResult }
  | { readonly type: 'rejected'; readonly status: number; readonly error: BreezeError }
  | { readonly type: 'deadline'; readonly timeoutMs: number }
  | { readonly type: 'internal'; readonly error: unknown };

/** An answer decided in this event-loop turn, written at its end (see writeTurn). */
interface Decided {
  readonly ex: Exchange;
  readonly res: ServerResponse;
  readonly status: number;
  readonly body: unknown;
}

interface Exchange {
  readonly webhook: Webhook;
  /** performance.now() when the request arrived. */
  readonly start: number;
  /** The API server's ?timeout= in ms; undefined when absent or not a positive Go duration. */
  readonly timeoutMs: number | undefined;
  /** Epoch ms after which admit() must not run; undefined without a usable ?timeout=. */
  readonly deadline: number | undefined;
  timer: NodeJS.Timeout | undefined;
  outcome: Outcome | undefined;
  /** Logged and counted (once: when answered, or when the connection closed first). */
  finished: boolean;
}

/**
 * The HTTPS (HTTP/1.1 only) admission endpoints: POST /validate and POST /mutate, on a plain
 * node:https server with one handler (a framework's routing, hooks and reply objects cost about
 * as much per review as deciding it). Every request ends in exactly one log line and one
 * observation of the admission metrics. What the handler does, in order:
 * - any other method or path: 404; a request while the server closes: 503;
 * - Content-Encoding other than identity, or a media type other than application/json: 415;
 * - a body over BODY_LIMIT_BYTES (by Content-Length, or as it arrives): 413, not read further;
 * - the body is scanned for its cost, parsed (400 when it is not JSON) and decided by admit();
 * - the API server's ?timeout= less a margin: past it, 500 and the connection closed.
 * 413, 415 and deadline answers close the connection (the body may still be arriving).
 */
export function buildWebhookApp(opts: WebhookAppOptions): WebhookApp {
  const { logger, metrics, admission } = opts;
  const decisions = decisionLogger(logger);
  const timeouts: ServerTimeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  let closing = false;

  // Draining, or in flight when close() began: the connection must not stay open for keep-alive
  // (server.close() waits for every connection, and an idle one would hold it for 120 s).
  const answer = (res: ServerResponse, status: number, body: unknown, close = false): void => {
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    let text: string;
    try {
      text = JSON.stringify(body);
    } catch {
      status = 500;
      text = '{"message":"internal error in Breeze"}';
    }
    // A flat list: Node takes it as is, with no object to walk.
    const headers = [
      'content-type',
      'application/json; charset=utf-8',
      'content-length',
      String(Buffer.byteLength(text)),
    ];
    if (close || closing || opts.draining?.() === true) headers.push('connection', 'close');
    res.writeHead(status, headers);
    res.end(text);
  };

  const finish = (ex: Exchange): void => {
    if (ex.finished) return;
    ex.finished = true;
    clearTimeout(ex.timer);
    metrics.admissionInFlight.dec();
    const seconds = (performance.now() - ex.start) / 1e3;
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

  /** A request refused before a decision (4xx), with the reason as its message. */
  const reject = (ex: Exchange, res: ServerResponse, error: BreezeError): void => {
    if (ex.outcome !== undefined) return;
    const status = STATUS_OF[error.code] ?? 400;
    ex.outcome = { type: 'rejected', status, error };
    // 413 and 415: the body was not (fully) read, so close rather than drain it for the next request.
    reply(ex, res, status, { message: error.message }, status === 413 || status === 415);
  };

  const expire = (ex: Exchange, res: ServerResponse): void => {
    if (res.headersSent || ex.outcome !== undefined) return;
    const timeoutMs = ex.timeoutMs ?? 0;
    ex.outcome = { type: 'deadline', timeoutMs };
    // The body may still be arriving: close the connection rather than read the rest of it.
    reply(
      ex,
      res,
      500,
      {
        message: `deadline exceeded: no answer within the API server's timeout of ${timeoutMs}ms (less a safety margin)`,
      },
      true,
    );
  };

  const decide = (ex: Exchange, res: ServerResponse, bytes: Buffer): void => {
    if (res.headersSent || ex.outcome !== undefined) return;
    if (ex.deadline !== undefined && Date.now() >= ex.deadline) {
      expire(ex, res);
      return;
    }
    let body: unknown;
    try {
      body = parseBody(bytes);
    } catch (error) {
      if (isBreezeError(error) && STATUS_OF[error.code] !== undefined) reject(ex, res, error);
      else {
        ex.outcome = { type: 'internal', error };
        reply(ex, res, 500, { message: 'internal error in Breeze' });
      }
      return;
    }
    // Before admit(): this turn's answers are written before what admit() schedules for the turn's
    // end (the local-mode admission feed records the admitted objects then).
    scheduleTurn();
    let result: AdmissionResult;
    try {
      result = body instanceof RefusedBody ? refused(body) : admit(ex.webhook, body, admission);
    } catch (error) {
      // admit() promises never to throw; this is the net under that promise.
      ex.outcome = { type: 'internal', error };
      reply(ex, res, 500, { message: 'internal error in Breeze' });
      return;
    }
    ex.outcome = { type: 'decision', result };
    decided.push({ ex, res, status: result.httpStatus, body: result.body });
  };

  /**
   * Decided answers are written together at the end of the event-loop turn that decided them
   * (setImmediate), back to back. Each write to a client that is waiting in epoll wakes it, and
   * on a busy host that wake-up cost the writer more CPU than deciding a review did: written one
   * by one as decided, 16 concurrent reviews woke the client up to 16 times per turn. The delay
   * is the rest of the turn's work, which the answers decided last waited for anyway. A decision
   * made in a turn's poll phase (every one: the body's last bytes arrive there) is written before
   * that loop's timers run again, so no deadline fires in between; expire() would leave a decided
   * exchange alone anyway. The write is scheduled before the decision is made, so the answers
   * go out before the admission feed records the turn's admitted objects.
   */
  let decided: Decided[] = [];
  let turnScheduled = false;
  const writeDecided = (answers: readonly Decided[]): void => {
    for (const a of answers) {
      try {
        reply(a.ex, a.res, a.status, a.body);
      } catch (error) {
        // Never out of setImmediate; the connection is dropped rather than left waiting.
        logger.error({ err: errorFields(error) }, 'could not write an admission answer');
        a.res.destroy();
      }
    }
  };
  const writeTurn = (): void => {
    // Taken whole first: nothing written below adds to this turn's list.
    const answers = decided;
    decided = [];
    turnScheduled = false;
    writeDecided(answers);
  };
  const scheduleTurn = (): void => {
    if (turnScheduled) return;
    turnScheduled = true;
    setImmediate(writeTurn);
  };
  /**
   * A client that half-closes after its request (sends FIN) makes Node end the connection at
   * once: its answer is written first, before Node's own 'end' listener runs.
   */
  const writeDecidedOf = (socket: Socket): void => {
    if (decided.length > 0) writeDecided(decided.filter((a) => a.res.socket === socket));
  };

  /** Answers an exchange and logs and counts it (at once: not when the connection closes). */
  const reply = (ex: Exchange, res: ServerResponse, status: number, body: unknown, close = false): void => {
    answer(res, status, body, close);
    finish(ex);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const webhook = req.method === 'POST' ? WEBHOOKS.get(q < 0 ? url : url.slice(0, q)) : undefined;
    if (webhook === undefined) {
      req.resume();
      // The URL comes from the client: at most 200 characters of it in the answer.
      const shown = url.length <= 200 ? url : `${url.slice(0, 200)}…`;
      answer(res, 404, { message: `${req.method ?? ''} ${shown} not found` });
      return;
    }
    if (closing) {
      req.resume();
      answer(res, 503, { message: 'Breeze is shutting down: retry on another replica' }, true);
      return;
    }
    const start = performance.now();
    const timeoutMs = q < 0 ? undefined : timeoutOf(url.slice(q + 1));
    const budgetMs =
      timeoutMs === undefined ? undefined : timeoutMs - Math.min(DEADLINE_MARGIN_MAX_MS, timeoutMs / 10);
    const ex: Exchange = {
      webhook,
      start,
      timeoutMs,
      deadline: budgetMs === undefined ? undefined : Date.now() + budgetMs,
      timer: undefined,
      outcome: undefined,
      finished: false,
    };
    metrics.admissionInFlight.inc();
    // A connection closed before the answer is logged then, as such: a decision whose answer
    // was still waiting for the end of its turn was never delivered.
    res.once('close', () => {
      if (!res.headersSent && ex.outcome?.type === 'decision') ex.outcome = undefined;
      finish(ex);
    });
    if (budgetMs !== undefined) {
      ex.timer = setTimeout(() => expire(ex, res), budgetMs);
      ex.timer.unref();
    }
    // Bodies are read as sent: a compressed one would only fail later as "not valid JSON".
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      reject(
        ex,
        res,
        new BreezeError(
          'UNSUPPORTED_MEDIA_TYPE',
          `Content-Encoding ${quote(encoding)} is not supported: send the AdmissionReview uncompressed (identity)`,
        ),
      );
      return;
    }
    const contentType = req.headers['content-type'];
    const essence = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
    if (essence !== 'application/json') {
      reject(
        ex,
        res,
        new BreezeError(
          'UNSUPPORTED_MEDIA_TYPE',
          `Content-Type must be application/json, got ${contentType === undefined ? 'null' : quote(contentType)}`,
        ),
      );
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > BODY_LIMIT_BYTES) {
      reject(ex, res, tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      if (ex.outcome !== undefined) return;
      received += chunk.length;
      if (received > BODY_LIMIT_BYTES) {
        chunks.length = 0;
        reject(ex, res, tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      decide(ex, res, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received));
    });
    // A reset mid-body: 'close' logs it (no answer); nothing else to do.
    req.once('error', () => undefined);
  };

  const server = createServer(
    {
      cert: opts.tls.cert,
      key: opts.tls.key,
      minVersion: 'TLSv1.2',
      ...(opts.tls.ca === undefined ? {} : { ca: opts.tls.ca, requestCert: true, rejectUnauthorized: true }),
      // HTTP/1.1 only: no h2 (CVE-2023-44487, and the API server speaks HTTP/1.1 to webhooks).
      ALPNProtocols: ['http/1.1'],
      handshakeTimeout: timeouts.handshakeMs,
      requestTimeout: timeouts.requestMs,
      headersTimeout: timeouts.headersMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      connectionsCheckingInterval: timeouts.checkIntervalMs,
    },
    handler,
  );
  guardFirstRequest(server, timeouts);
  server.on('secureConnection', (tls: TLSSocket) => tls.prependListener('end', () => writeDecidedOf(tls)));

  return {
    server,
    handler,
    listen: (address) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(address.port, address.host, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        if (!server.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** The first request of one connection, watched against deadlines counted from its TCP accept. */
interface FirstRequest {
  tls: TLSSocket | undefined;
  req: IncomingMessage | undefined;
  res: ServerResponse | undefined;
  readonly timers: NodeJS.Timeout[];
}

const REQUEST_TIMEOUT_ANSWER = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';

/**
 * Holds the first request of every connection to deadlines counted from the TCP accept: headers
 * within headersMs, the whole request within requestMs, the TLS handshake and any idle time
 * before the first byte included (Node counts both timeouts only from the first byte of a
 * request). Later requests on a kept-alive connection are Node's: counted from their first byte.
 * A connection past its deadline gets a 408 (as Node sends) when nothing was answered yet, and
 * is closed. Two unref'd timers per connection, cleared when it closes.
 */
function guardFirstRequest(server: HttpsServer, t: ServerTimeouts): void {
  const first = new WeakMap<Socket, FirstRequest>();
  const expire = (raw: Socket, state: FirstRequest): void => {
    const { tls, res } = state;
    if (tls !== undefined && !tls.destroyed && tls.writable && res?.headersSent !== true) {
      tls.write(REQUEST_TIMEOUT_ANSWER, () => tls.destroy());
      // A client that reads nothing still loses the connection.
      setTimeout(() => raw.destroy(), 1_000).unref();
    } else raw.destroy();
  };
  server.on('connection', (raw: Socket) => {
    const state: FirstRequest = { tls: undefined, req: undefined, res: undefined, timers: [] };
    first.set(raw, state);
    state.timers.push(
      setTimeout(() => {
        if (state.req === undefined) expire(raw, state);
      }, t.headersMs).unref(),
      setTimeout(() => {
        if (state.req?.complete !== true) expire(raw, state);
      }, t.requestMs).unref(),
    );
    raw.once('close', () => {
      for (const timer of state.timers) clearTimeout(timer);
    });
  });
  const stateOf = (tls: Socket): FirstRequest | undefined =>
    first.get((tls as { _parent?: Socket })._parent ?? tls);
  server.on('secureConnection', (tls: TLSSocket) => {
    const state = stateOf(tls);
    if (state !== undefined) state.tls = tls;
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const state = stateOf(req.socket);
    if (state === undefined || state.req !== undefined) return;
    state.req = req;
    state.res = res;
    clearTimeout(state.timers[0]);
  });
}

/** The in-band denial of a body refused before parsing (its uid read from its first bytes). */
function refused(body: RefusedBody): AdmissionResult {
  const decision = { allowed: false, code: 413, reason: 'RequestEntityTooLarge', message: body.message };
  return { httpStatus: 200, body: encodeReview(body.apiVersion, body.uid, decision), record: undefined };
}

/** The last query and its ?timeout= value: the API server sends the same one with every request. */
let lastTimeout: { readonly query: string; readonly ms: number | undefined } = { query: '', ms: undefined };

/** The ?timeout= of a query string (the first one), in ms; undefined when absent or not a positive Go duration. */
function timeoutOf(query: string): number | undefined {
  if (query !== lastTimeout.query) {
    const text = new URLSearchParams(query).get('timeout');
    const ms = text === null ? undefined : parseGoDuration(text);
    lastTimeout = { query, ms: ms !== undefined && ms > 0 ? ms : undefined };
  }
  return lastTimeout.ms;
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
      // The admission metrics keep their label sets closed themselves (unknown values: other).
      return { kind: r.kind, operation: r.operation, allowed: String(r.allowed), code: String(r.code) };
    }
    case 'rejected':
      return {
        kind: '',
        operation: '',
        allowed: 'false',
        code: String(outcome.status),
      };
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
      // The decision line is info: at warn (as Breeze runs in production) nothing is built for it.
      if (result.httpStatus !== 500 && result.httpStatus !== 400 && !decisions.isLevelEnabled('info')) return;
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
