// Plumbing for the hostile-input suite: a real Breeze in local mode started in this process (the
// way `breeze serve --mode local` starts it, on ephemeral loopback ports, with the Dubbo and Redis
// examples as its files), a keep-alive HTTPS client that trusts its CA, fixture reviews to mutate,
// and the checks every attack ends with (an in-band answer echoing the uid, never a 500, /healthz
// answering during and after, the cache and the written EnvoyFilters unchanged for denied input).
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Test } from 'tap';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startBreeze, type RunningBreeze } from '../../src/cli/serve.js';
import { parseServeConfig } from '../../src/config/serve.js';
import { writeDevCertificates } from '../../src/pki/certs.js';
import { MAX_WARNINGS } from '../../src/model/limits.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { send, type Response } from '../server/helpers.js';
import { loopbackArgs } from '../e2e/loopback.js';

export { send, type Response };

/** The answer bodies a denial may take at most: MAX_PROBLEMS_LISTED problems of bounded length. */
export const MAX_ANSWER_BYTES = 64 * 1024;

/** The webhook's body limit (src/server/app.ts BODY_LIMIT_BYTES). */
export const BODY_LIMIT = 7 * 1024 * 1024;

export interface LocalBreeze {
  readonly breeze: RunningBreeze;
  readonly ca: string;
  readonly outDir: string;
  readonly agent: Agent;
  /** Log lines at warn and above, for checks that nothing crashed. */
  readonly logs: string[];
}

type TapLike = Pick<Test, 'teardown'>;

const repo = new URL('../../', import.meta.url).pathname;

/**
 * `breeze serve --mode local` in this process: files from a copy of examples/dubbo.yaml and
 * examples/redis.yaml, EnvoyFilters into a scratch out dir, admission grace `grace`.
 */
export async function startLocal(t: TapLike, opts: { grace?: string } = {}): Promise<LocalBreeze> {
  // Our own scratch dir, removed after Breeze has stopped writing into it.
  const dir = mkdtempSync(join(tmpdir(), 'breeze-hostile-'));
  const configDir = join(dir, 'config');
  const outDir = join(dir, 'out');
  mkdirSync(configDir, { recursive: true });
  for (const f of ['dubbo.yaml', 'redis.yaml']) copyFileSync(join(repo, 'examples', f), join(configDir, f));
  const certs = await writeDevCertificates(join(dir, 'tls'), ['127.0.0.1', 'localhost']);
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      // Keep the head of each line only: an attack may make a log line as large as its body.
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') logs.push(l.slice(0, 2000));
      done();
    },
  });
  const config = parseServeConfig(
    [
      ...loopbackArgs('local', certs),
      '--config-dir',
      configDir,
      '--out-dir',
      outDir,
      '--debounce-after',
      '50ms',
      '--admission-grace',
      opts.grace ?? '30s',
    ],
    {},
  );
  const breeze = await startBreeze(config, {}, { logger: createLogger({ level: 'warn', destination }) });
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  t.teardown(async () => {
    agent.destroy();
    const started = Date.now();
    await breeze.stop();
    if (process.env.BREEZE_HOSTILE_DEBUG) console.error(`stop took ${Date.now() - started} ms`);
    rmSync(dir, { recursive: true, force: true });
  });
  await breeze.writing;
  return { breeze, ca: readFileSync(certs.caFile, 'utf8'), outDir, agent, logs };
}

/** POSTs a body to the webhook over verified TLS on the instance's keep-alive agent. */
export function post(
  b: LocalBreeze,
  body: string | Buffer,
  opts: { path?: string; headers?: Record<string, string>; fresh?: boolean } = {},
): Promise<Response> {
  return send({
    port: b.breeze.webhookPort,
    ca: b.ca,
    path: opts.path ?? '/validate',
    body,
    agent: opts.fresh === true ? false : b.agent,
    ...(opts.headers === undefined ? {} : { headers: opts.headers }),
  });
}

/** GET on the health listener; `undefined` status when it did not answer within `timeoutMs`. */
export async function health(
  b: LocalBreeze,
  path = '/healthz',
  timeoutMs = 60_000,
): Promise<{ status: number | undefined; text: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${b.breeze.healthPort}${path}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, text: await res.text() };
  } catch (err) {
    return { status: undefined, text: String(err) };
  }
}

/** What the cache and the out dir hold: compared before and after a denied attack. */
export function snapshot(b: LocalBreeze): { cache: string[]; out: string[] } {
  const cache = b.breeze.store
    .list()
    .map((e) => {
      let content: string;
      try {
        content = JSON.stringify(e.object);
      } catch {
        content = '<not serializable>';
      }
      return `${e.key} ${e.origin} ${String(e.confirmed)} ${content.length} ${content.slice(0, 200)}`;
    })
    .sort();
  const out = readdirSync(b.outDir)
    .sort()
    .map((f) => `${f} ${readFileSync(join(b.outDir, f), 'utf8')}`);
  return { cache, out };
}

const fixtures = new URL('../fixtures/admission/', import.meta.url);

/** The review of a fixture (`serviceentry/allow-dubbo.v1.json`), with a fresh uid. */
export function fixtureReview(file: string, uid: string): any {
  const fx = JSON.parse(readFileSync(new URL(file, fixtures), 'utf8')) as { review: any };
  const r = structuredClone(fx.review);
  r.request.uid = uid;
  return r;
}

/** Every fixture file under test/fixtures/admission, as `dir/file.json`. */
export function fixtureFiles(): string[] {
  const root = new URL('../fixtures/admission/', import.meta.url).pathname;
  return readdirSync(root)
    .sort()
    .flatMap((d) =>
      readdirSync(join(root, d))
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => `${d}/${f}`),
    );
}

/**
 * JSON text of `value` with the string `"@@HOLE@@"` replaced by `raw` (JSON text built by hand, for
 * nesting JSON.stringify itself cannot produce).
 */
export function withHole(value: unknown, raw: string): string {
  const text = JSON.stringify(value);
  const at = text.indexOf('"@@HOLE@@"');
  if (at < 0) throw new Error('no hole in the value');
  return `${text.slice(0, at)}${raw}${text.slice(at + '"@@HOLE@@"'.length)}`;
}

export const HOLE = '@@HOLE@@';

/** `depth` objects nested in each other: `{"f:a":{"f:a":...{}}}`. */
export const nestedObjects = (depth: number): string => `${'{"f:a":'.repeat(depth)}{}${'}'.repeat(depth)}`;

/** `depth` arrays nested in each other: `[[[...]]]`. */
export const nestedArrays = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

/**
 * The state once the out dir has stopped changing (two reads 250 ms apart agree, at most 10 s): a
 * push scheduled by an earlier, allowed request must not count against the next attack.
 */
export async function quiet(b: LocalBreeze): Promise<{ cache: string[]; out: string[] }> {
  let last = snapshot(b);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const now = snapshot(b);
    const same = now.out.length === last.out.length && now.out.every((f, i) => f === last.out[i]);
    last = now;
    if (same) break;
  }
  return last;
}

export interface AttackOutcome {
  readonly res: Response;
  /** /healthz, asked while the attack was in flight, and after its answer. */
  readonly during: { status: number | undefined };
  readonly after: { status: number | undefined };
  readonly before: { cache: string[]; out: string[] };
}

/**
 * Sends one attack body and probes /healthz while it is in flight; returns the answer, both probes
 * and the state before (compare with `snapshot(b)` for denied input).
 */
export async function attack(
  b: LocalBreeze,
  body: string | Buffer,
  opts: { path?: string; headers?: Record<string, string> } = {},
): Promise<AttackOutcome> {
  const before = await quiet(b);
  const answer = post(b, body, { ...opts, fresh: true });
  // Asked once the request is on its way: the loop must still serve the probe.
  await new Promise((r) => setImmediate(r));
  const during = health(b);
  const res = await answer;
  const after = await health(b);
  return { res, during: await during, after, before };
}

type Asserter = Test;

/** An in-band AdmissionReview answer echoing `uid` (HTTP 200), never a 500. Returns its response. */
export function inBand(t: Asserter, res: Response, uid: string): any {
  t.not(res.status, 500, 'never a 500');
  t.equal(res.status, 200, `answered in-band (got HTTP ${res.status}: ${res.text.slice(0, 200)})`);
  t.equal(res.json?.kind, 'AdmissionReview', 'an AdmissionReview');
  t.equal(res.json?.response?.uid, uid, 'echoing the uid');
  t.ok(
    Buffer.byteLength(res.text) < MAX_ANSWER_BYTES,
    `the answer is bounded (${Buffer.byteLength(res.text)} bytes < ${MAX_ANSWER_BYTES})`,
  );
  const warnings: unknown = res.json?.response?.warnings;
  if (Array.isArray(warnings)) {
    t.ok(warnings.length <= MAX_WARNINGS, `at most ${MAX_WARNINGS} warnings (got ${warnings.length})`);
    t.ok(
      warnings.every((w) => typeof w === 'string' && w.length <= 120),
      'each warning at most 120 characters',
    );
  }
  return res.json?.response ?? {};
}

/** A denial for exceeding a bound: allowed false, code 422, the message naming path and limit. */
export function deniedForBound(t: Asserter, response: any, path: RegExp, limit: RegExp): void {
  t.equal(response.allowed, false, 'denied');
  t.equal(response.status?.code, 422, 'with code 422');
  const message = String(response.status?.message ?? '');
  t.match(message, path, 'the message names the field path');
  t.match(message, limit, 'the message names the limit');
}

/** The health checks every attack ends with: /healthz answered during and after. */
export function stayedUp(t: Asserter, o: AttackOutcome): void {
  t.equal(o.during.status, 200, '/healthz answered while the attack was in flight');
  t.equal(o.after.status, 200, '/healthz answers after it');
}

/**
 * For denied input: the cache and the written EnvoyFilters are what they were before (looked at
 * after a few debounce periods, so a push the attack scheduled would have been written).
 */
export async function unchanged(t: Asserter, b: LocalBreeze, o: AttackOutcome): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  const now = snapshot(b);
  t.strictSame(now.cache, o.before.cache, 'the cache is unchanged');
  t.strictSame(now.out, o.before.out, 'the written EnvoyFilters are unchanged');
}

/**
 * The end of an attack whose decision the issue leaves open (allowed with a warning, or denied):
 * answered in-band, bounded, /healthz up; when denied, nothing changed. Returns the response.
 */
export async function judged(t: Asserter, b: LocalBreeze, o: AttackOutcome, uid: string): Promise<any> {
  const response = inBand(t, o.res, uid);
  stayedUp(t, o);
  if (response.allowed === false) {
    t.ok(typeof response.status?.message === 'string' && response.status.message !== '', 'a denial says why');
    await unchanged(t, b, o);
  }
  return response;
}
