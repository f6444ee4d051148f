// Admission load of the soak run: the AdmissionReview fixtures (test/fixtures/admission, and
// examples/reviews) as valid and invalid streams through autocannon, every answer checked against
// the fixture's expected decision; and a verifying HTTPS client (the CA is checked) for the churn,
// the preflight and the overload probes.
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import autocannon from 'autocannon';

const repo = new URL('../', import.meta.url).pathname;

/** What a fixture's answer must be. */
export interface Expectation {
  readonly httpStatus: number;
  /** For HTTP 200: the decision; and for a denial its status code. */
  readonly allowed?: boolean;
  readonly code?: number;
  /** The uid the answer must echo (each review has its own, so no answer is taken for another's). */
  readonly uid?: string;
}

export interface Review {
  readonly name: string;
  readonly path: '/validate' | '/mutate';
  readonly contentType: string;
  readonly body: string;
  readonly expect: Expectation;
  /** Valid: a well-formed review of an object the webhook allows. Invalid: everything else. */
  readonly valid: boolean;
}

interface FixtureFile {
  webhook: 'validate' | 'mutate';
  cache?: unknown[];
  review: { request?: Record<string, unknown> };
  expect: { httpStatus?: number; allowed: boolean; code?: number };
}

/**
 * The fixtures whose decision depends on nothing but the review (no `cache`), each sent with
 * `dryRun: true` so the admission feed never holds them and the decisions stay what the fixture
 * says whatever the churn does; plus the two example reviews and two malformed bodies.
 */
export function loadReviews(): Review[] {
  const out: Review[] = [];
  const root = join(repo, 'test/fixtures/admission');
  for (const dir of readdirSync(root).sort()) {
    for (const file of readdirSync(join(root, dir)).sort()) {
      if (!file.endsWith('.json')) continue;
      const fx = JSON.parse(readFileSync(join(root, dir, file), 'utf8')) as FixtureFile;
      if (fx.cache !== undefined && fx.cache.length > 0) continue;
      const httpStatus = fx.expect.httpStatus ?? 200;
      const uid = `soak-${out.length}`;
      if (httpStatus === 200 && fx.review.request !== undefined) {
        fx.review.request.dryRun = true;
        fx.review.request.uid = uid;
      }
      out.push({
        name: `${dir}/${file}`,
        path: fx.webhook === 'mutate' ? '/mutate' : '/validate',
        contentType: 'application/json',
        body: JSON.stringify(fx.review),
        expect:
          httpStatus === 200
            ? {
                httpStatus,
                uid,
                allowed: fx.expect.allowed,
                ...(fx.expect.allowed ? {} : { code: fx.expect.code ?? 422 }),
              }
            : { httpStatus },
        valid: httpStatus === 200 && fx.expect.allowed,
      });
    }
  }
  for (const [file, allowed] of [
    ['serviceentry-valid.json', true],
    ['serviceentry-invalid.json', false],
  ] as const) {
    const review = JSON.parse(
      readFileSync(join(repo, 'examples/reviews', file), 'utf8'),
    ) as FixtureFile['review'];
    const uid = `soak-${out.length}`;
    if (review.request !== undefined) {
      review.request.dryRun = true;
      review.request.uid = uid;
    }
    out.push({
      name: `examples/reviews/${file}`,
      path: '/validate',
      contentType: 'application/json',
      body: JSON.stringify(review),
      expect: allowed ? { httpStatus: 200, uid, allowed } : { httpStatus: 200, uid, allowed, code: 422 },
      valid: allowed,
    });
  }
  // These two make the server close the connection (the body cannot be read as a request), so
  // they go through their own loop, one connection each, not through autocannon.
  out.push({
    name: 'malformed/not-json',
    path: '/validate',
    contentType: 'application/json',
    body: '{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionRev',
    expect: { httpStatus: 400 },
    valid: false,
  });
  out.push({
    name: 'malformed/text-plain',
    path: '/mutate',
    contentType: 'text/plain',
    body: 'hello',
    expect: { httpStatus: 415 },
    valid: false,
  });
  return out;
}

/** Why an answer does not match the expectation, or undefined when it does. */
export function mismatch(expect: Expectation, status: number, body: string): string | undefined {
  if (status !== expect.httpStatus)
    return `HTTP ${status}, expected ${expect.httpStatus}: ${body.slice(0, 200)}`;
  if (expect.allowed === undefined) return undefined;
  let response:
    { uid?: unknown; allowed?: unknown; status?: { code?: unknown; message?: unknown } } | undefined;
  try {
    response = (JSON.parse(body) as { response?: typeof response }).response;
  } catch {
    return `not JSON: ${body.slice(0, 200)}`;
  }
  if (expect.uid !== undefined && response?.uid !== expect.uid)
    return `answer for uid ${String(response?.uid)}, expected ${expect.uid}`;
  if (response?.allowed !== expect.allowed)
    return `allowed ${String(response?.allowed)}, expected ${expect.allowed}: ${JSON.stringify(response?.status?.message ?? '')}`;
  if (expect.code !== undefined && response.status?.code !== expect.code)
    return `status.code ${String(response.status?.code)}, expected ${expect.code}`;
  return undefined;
}

export interface StreamResult {
  readonly name: string;
  readonly requests: number;
  readonly responses: number;
  readonly reqPerSec: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly mismatches: number;
  readonly mismatchSamples: Record<string, string>;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly latencyMaxMs: number;
}

export interface LoadStream {
  readonly done: Promise<StreamResult>;
  stop(): void;
}

/**
 * One autocannon instance cycling through `reviews` over TLS (autocannon never verifies the
 * server certificate: it hard-codes rejectUnauthorized false, so the CA is not passed), at
 * `rate` requests per second in total for `durationS` seconds; every answer is checked.
 */
export function loadStream(opts: {
  name: string;
  port: number;
  reviews: readonly Review[];
  connections: number;
  rate: number;
  durationS: number;
}): LoadStream {
  let responses = 0;
  let mismatches = 0;
  const samples: Record<string, string> = {};
  let settle: (r: StreamResult) => void = () => undefined;
  let fail: (err: unknown) => void = () => undefined;
  const done = new Promise<StreamResult>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const instance = autocannon(
    {
      url: `https://127.0.0.1:${opts.port}`,
      connections: opts.connections,
      overallRate: opts.rate,
      duration: opts.durationS,
      timeout: 10,
      requests: opts.reviews.map((r) => ({
        method: 'POST' as const,
        path: r.path,
        headers: { 'content-type': r.contentType },
        body: r.body,
        onResponse: (status: number, body: string) => {
          responses++;
          const why = mismatch(r.expect, status, body);
          if (why !== undefined) {
            mismatches++;
            samples[r.name] ??= why;
          }
        },
      })),
    },
    (err: unknown, result: autocannon.Result) => {
      if (err !== null && err !== undefined) {
        fail(err);
        return;
      }
      settle({
        name: opts.name,
        requests: result.requests.sent,
        responses,
        reqPerSec: result.requests.average,
        errors: result.errors,
        timeouts: result.timeouts,
        mismatches,
        mismatchSamples: samples,
        latencyP50Ms: result.latency.p50,
        latencyP99Ms: result.latency.p99,
        latencyMaxMs: result.latency.max,
      });
    },
  );
  return {
    done,
    stop: () => {
      (instance as unknown as { stop(): void }).stop();
    },
  };
}

export interface Answer {
  readonly status: number;
  readonly body: string;
  readonly ms: number;
  /** Transport failure or deadline (status 0). */
  readonly error?: string;
}

/** A verifying HTTPS client for the webhook (the soak run's CA), keep-alive unless `fresh`. */
export class WebhookClient {
  private readonly agent: Agent;

  constructor(
    private readonly port: number,
    private readonly ca: string,
    maxSockets = 8,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, ca });
  }

  post(
    path: string,
    body: string,
    opts: { contentType?: string; timeoutMs?: number; fresh?: boolean } = {},
  ): Promise<Answer> {
    const start = performance.now();
    return new Promise<Answer>((resolve) => {
      let settled = false;
      const finish = (a: Omit<Answer, 'ms'>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...a, ms: performance.now() - start });
      };
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          path,
          method: 'POST',
          ca: this.ca,
          agent: opts.fresh === true ? false : this.agent,
          headers: {
            'content-type': opts.contentType ?? 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', (err) => finish({ status: 0, body: '', error: err.message }));
        },
      );
      const timer = setTimeout(() => {
        req.destroy(new Error('deadline'));
        finish({ status: 0, body: '', error: `no answer within ${opts.timeoutMs ?? 10_000} ms` });
      }, opts.timeoutMs ?? 10_000);
      req.on('error', (err) => finish({ status: 0, body: '', error: err.message }));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface PacedResult {
  readonly requests: number;
  readonly failures: number;
  readonly failureSamples: string[];
}

/**
 * Reviews sent one at a time, round robin, at most `rate` per second, each checked; on a
 * keep-alive connection, or a new connection (and TLS handshake) for each when `fresh`.
 */
export class Paced {
  requests = 0;
  failures = 0;
  readonly failureSamples: string[] = [];
  readonly latencies: { t: number; ms: number }[] = [];
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: WebhookClient,
    private readonly reviews: readonly Review[],
    private readonly rate: number,
    private readonly fresh: boolean,
    private readonly offset = 0,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let i = this.offset;
    const interval = 1000 / this.rate;
    let next = performance.now();
    while (this.running) {
      const r = this.reviews[i++ % this.reviews.length];
      if (r === undefined) return;
      const a = await this.client.post(r.path, r.body, {
        contentType: r.contentType,
        timeoutMs: 10_000,
        fresh: this.fresh,
      });
      this.requests++;
      this.latencies.push({ t: Date.now(), ms: a.ms });
      const why = a.error ?? mismatch(r.expect, a.status, a.body);
      if (why !== undefined) {
        this.failures++;
        if (this.failureSamples.length < 10) this.failureSamples.push(`${r.name}: ${why}`);
      }
      next += interval;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
      else next = performance.now();
    }
  }

  async stop(): Promise<PacedResult> {
    this.running = false;
    await this.loop;
    return { requests: this.requests, failures: this.failures, failureSamples: this.failureSamples };
  }
}
