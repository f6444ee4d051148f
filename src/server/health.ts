import type { Worker } from 'node:worker_threads';
import { BreezeError, guarded } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { startSiblingWorker } from '../worker.js';
import type { HealthWorkerData, MainToWorker, WorkerToMain } from './health-protocol.js';

export interface Readiness {
  readonly ready: boolean;
  readonly reasons: string[];
}

export interface HealthServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: Metrics;
  readonly readiness: () => Readiness;
  readonly logger: Logger;
  /** /healthz fails once the main event loop has not turned for this long (default 10 s). */
  readonly liveStallMs?: number;
  /** How long /readyz and /metrics wait for the main thread (default 2 s). */
  readonly answerTimeoutMs?: number;
}

/** How often the main thread marks that its event loop turns. */
const HEARTBEAT_MS = 100;
const DEFAULT_LIVE_STALL_MS = 10_000;
const DEFAULT_ANSWER_TIMEOUT_MS = 2_000;

/**
 * Plain HTTP probes and metrics, on their own port so kubelet and Prometheus need no TLS, served
 * by a worker thread so that a probe is answered at once whatever the main thread is doing:
 * - `GET /healthz` (and `/livez`): 200 `ok` while the main event loop turns (a heartbeat every
 *   100 ms in shared memory), 503 once it has not for liveStallMs (10 s), so kubelet restarts a
 *   process that is stuck, never one that is busy with a costly request.
 * - `GET /readyz`: asked of the main thread (certificate, cache sync, draining); 503 if it does not
 *   answer within answerTimeoutMs (2 s): a replica that cannot answer then should get no webhooks.
 * - `GET /metrics`: the Prometheus text, made by the main thread (same timeout).
 */
export class HealthServer {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly beat: NodeJS.Timeout,
    readonly port: number,
  ) {}

  static async start(opts: HealthServerOptions): Promise<HealthServer> {
    const shared = new SharedArrayBuffer(8);
    const heartbeat = new BigInt64Array(shared);
    Atomics.store(heartbeat, 0, process.hrtime.bigint());
    const data: HealthWorkerData = {
      host: opts.host,
      port: opts.port,
      heartbeat: shared,
      liveStallMs: opts.liveStallMs ?? DEFAULT_LIVE_STALL_MS,
      answerTimeoutMs: opts.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS,
    };
    const worker = startSiblingWorker(import.meta.url, 'health-worker', {
      workerData: data,
      resourceLimits: { maxOldGenerationSizeMb: 64 },
    });
    const report = (err: unknown): void =>
      opts.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'health server error');
    const beat = setInterval(
      guarded(() => Atomics.store(heartbeat, 0, process.hrtime.bigint()), report),
      HEARTBEAT_MS,
    );
    beat.unref();
    const port = await new Promise<number>((resolve, reject) => {
      const failed = (err: Error): void => reject(err);
      worker.once('error', failed);
      worker.once('exit', (code) =>
        reject(new BreezeError('INTERNAL', `the health server exited (${code})`)),
      );
      worker.on('message', (m: WorkerToMain) => {
        if (m.type === 'listening') resolve(m.port);
        else if (m.type === 'failed')
          reject(Object.assign(new Error(`health port: ${m.message}`), { code: m.code }));
      });
    }).catch(async (err: unknown) => {
      clearInterval(beat);
      await worker.terminate();
      throw err;
    });
    worker.unref();
    worker.removeAllListeners('error');
    worker.removeAllListeners('exit');
    worker.on('error', report);
    const answer = (m: MainToWorker): void => worker.postMessage(m);
    worker.on(
      'message',
      guarded((m: WorkerToMain) => {
        if (m.type !== 'ask') return;
        if (m.what === 'readiness') {
          const r = opts.readiness();
          answer({
            type: 'answer',
            id: m.id,
            status: r.ready ? 200 : 503,
            contentType: 'application/json; charset=utf-8',
            body: JSON.stringify({ ready: r.ready, reasons: r.reasons }),
          });
          return;
        }
        opts.metrics.registry.metrics().then(
          (text) =>
            answer({
              type: 'answer',
              id: m.id,
              status: 200,
              contentType: opts.metrics.registry.contentType,
              body: text,
            }),
          (err: unknown) => {
            report(err);
            answer({
              type: 'answer',
              id: m.id,
              status: 500,
              contentType: 'application/json; charset=utf-8',
              body: JSON.stringify({ message: 'the metrics could not be collected' }),
            });
          },
        );
      }, report),
    );
    return new HealthServer(worker, beat, port);
  }

  /** Stops listening (open connections are closed) and ends the thread. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    clearInterval(this.beat);
    // Held open until the thread has closed the port (unref'd, it would not keep the loop alive).
    this.worker.ref();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      timer.unref();
      this.worker.on('message', (m: WorkerToMain) => {
        if (m.type === 'closed') {
          clearTimeout(timer);
          resolve();
        }
      });
      this.worker.once('exit', () => resolve());
      this.worker.postMessage({ type: 'close' } satisfies MainToWorker);
    });
    await this.worker.terminate();
  }
}
