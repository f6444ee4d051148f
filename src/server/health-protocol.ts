/** Messages between the health server's worker thread and the main thread (src/server/health.ts). */

/** What the worker is started with (workerData). */
export interface HealthWorkerData {
  readonly host: string;
  readonly port: number;
  /** One BigInt64: the main thread's last heartbeat, process.hrtime.bigint() in ns. */
  readonly heartbeat: SharedArrayBuffer;
  /** /healthz fails once the main thread's loop has not turned for this long. */
  readonly liveStallMs: number;
  /** How long /readyz and /metrics wait for the main thread before answering 503. */
  readonly answerTimeoutMs: number;
}

export type WorkerToMain =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'failed'; readonly message: string; readonly code: string | undefined }
  | { readonly type: 'ask'; readonly id: number; readonly what: 'readiness' | 'metrics' }
  | { readonly type: 'closed' };

export type MainToWorker =
  | {
      readonly type: 'answer';
      readonly id: number;
      readonly status: number;
      readonly contentType: string;
      readonly body: string;
    }
  | { readonly type: 'close' };
