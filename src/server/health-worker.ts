// The health port's server, on its own thread: kubelet's probes are answered even while the main
// thread's event loop is busy with one costly request, and say so when it has stopped turning.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import type { HealthWorkerData, MainToWorker, WorkerToMain } from './health-protocol.js';

const data = workerData as HealthWorkerData;
const port = parentPort;
if (port === null) throw new Error('health-worker.ts runs only as a worker thread');
const heartbeat = new BigInt64Array(data.heartbeat);

/** At most this many /readyz or /metrics requests wait on the main thread at once. */
const MAX_WAITING = 16;

const post = (m: WorkerToMain): void => port.postMessage(m);

interface Waiting {
  readonly res: ServerResponse;
  readonly timer: NodeJS.Timeout;
  readonly onTimeout: () => void;
}
const waiting = new Map<number, Waiting>();
let nextId = 1;

/** Milliseconds since the main thread's event loop last turned. */
function stalledMs(): number {
  return Number(process.hrtime.bigint() - Atomics.load(heartbeat, 0)) / 1e6;
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

const json = (res: ServerResponse, status: number, body: unknown): void =>
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));

/** Forwards a question to the main thread; answers 503 with `onTimeout` if it is not back in time. */
function ask(res: ServerResponse, what: 'readiness' | 'metrics', onTimeout: () => void): void {
  if (waiting.size >= MAX_WAITING) {
    json(res, 503, { message: `${MAX_WAITING} probes are already waiting for the main thread` });
    return;
  }
  const id = nextId++;
  const timer = setTimeout(() => {
    waiting.delete(id);
    onTimeout();
  }, data.answerTimeoutMs);
  waiting.set(id, { res, timer, onTimeout });
  res.once('close', () => {
    const w = waiting.get(id);
    if (w === undefined) return;
    clearTimeout(w.timer);
    waiting.delete(id);
  });
  post({ type: 'ask', id, what });
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    json(res, 404, { message: `${req.method} ${req.url} not found` });
    return;
  }
  const stalled = Math.round(stalledMs());
  switch (path) {
    case '/healthz':
    case '/livez':
      if (stalled > data.liveStallMs) {
        json(res, 503, { message: `the event loop has not turned for ${stalled}ms` });
      } else {
        send(res, 200, 'text/plain; charset=utf-8', 'ok');
      }
      return;
    case '/readyz':
      ask(res, 'readiness', () =>
        json(res, 503, {
          ready: false,
          reasons: [`the main thread did not answer within ${data.answerTimeoutMs}ms`],
        }),
      );
      return;
    case '/metrics':
      ask(res, 'metrics', () =>
        json(res, 503, { message: `the main thread did not answer within ${data.answerTimeoutMs}ms` }),
      );
      return;
    default:
      json(res, 404, { message: `${req.method} ${req.url} not found` });
  }
}

const server = createServer(
  { requestTimeout: 10_000, headersTimeout: 10_000, keepAliveTimeout: 10_000, maxHeaderSize: 16_384 },
  (req, res) => {
    try {
      handle(req, res);
    } catch {
      if (!res.headersSent) json(res, 500, { message: 'internal error in the health server' });
    }
  },
);

port.on('message', (m: MainToWorker) => {
  if (m.type === 'close') {
    for (const [id, w] of waiting) {
      clearTimeout(w.timer);
      waiting.delete(id);
      w.onTimeout();
    }
    server.close(() => post({ type: 'closed' }));
    server.closeAllConnections();
    return;
  }
  const w = waiting.get(m.id);
  if (w === undefined) return;
  clearTimeout(w.timer);
  waiting.delete(m.id);
  send(w.res, m.status, m.contentType, m.body);
});

server.once('error', (err: NodeJS.ErrnoException) =>
  post({ type: 'failed', message: err.message, code: err.code }),
);
server.listen({ host: data.host, port: data.port }, () => {
  const address = server.address();
  post({
    type: 'listening',
    port: typeof address === 'object' && address !== null ? address.port : data.port,
  });
});
