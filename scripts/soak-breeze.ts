// Breeze as a child process for the soak run: compiled once with tsc into a scratch directory
// (so its memory is that of `node dist/cli/main.js`, without tsx's loader thread), started with
// `serve --mode cluster` against the fakes, its ports read from the banner, its /metrics scraped.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bannerReader, type ServePorts } from '../test/e2e/loopback.js';

const repo = new URL('../', import.meta.url).pathname;

export interface BreezeProcess {
  readonly child: ChildProcess;
  readonly webhookPort: number;
  readonly healthPort: number;
  /** Log lines by level (pino numbers: 40 warn, 50 error, 60 fatal) and message. */
  readonly logs: Map<string, number>;
  /** Warn-or-worse lines (the first 200 that are not expected rejections), for the report. */
  readonly problems: string[];
  exitCode(): number | null | undefined;
}

/**
 * Compiles src/ into `dir`/dist with the repo's build config; `dir` gets the links dist needs
 * (protos/ next to it, node_modules/ above it) and a package.json marking it ESM.
 */
export function buildBreeze(dir: string): string {
  const out = join(dir, 'dist');
  const r = spawnSync(
    process.execPath,
    [
      join(repo, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(repo, 'tsconfig.build.json'),
      '--outDir',
      out,
      '--sourceMap',
      'false',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`tsc failed:\n${r.stdout}${r.stderr}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(repo, 'protos'), join(dir, 'protos'));
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  return join(out, 'cli/main.js');
}

export interface StartOptions {
  /** The compiled entry point, or undefined to run src/cli/main.ts through tsx. */
  readonly main: string | undefined;
  readonly args: readonly string[];
  /** Node options before the script. */
  readonly node?: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

export async function startBreezeProcess(opts: StartOptions): Promise<BreezeProcess> {
  const argv = [
    ...(opts.node ?? []),
    ...(opts.main === undefined ? ['--import', 'tsx', join(repo, 'src/cli/main.ts')] : [opts.main]),
    ...opts.args,
  ];
  const child = spawn(process.execPath, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  const logs = new Map<string, number>();
  const problems: string[] = [];
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-20_000);
  });
  let exit: number | null | undefined;
  child.once('exit', (code) => (exit = code));
  const ports = await new Promise<ServePorts>((resolve, reject) => {
    const read = bannerReader();
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('{')) {
        countLog(line, logs, problems);
        return;
      }
      const found = read(line);
      if (found) resolve(found);
    });
    child.once('exit', (code) => reject(new Error(`breeze exited with ${code}: ${stderr}`)));
  });
  return {
    child,
    webhookPort: ports.webhook,
    healthPort: ports.health,
    logs,
    problems,
    exitCode: () => exit,
  };
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** Counts log lines by level and message shape (names, paths and numbers folded to `*`). */
function countLog(line: string, logs: Map<string, number>, recent: string[]): void {
  // Decision lines are the bulk: count them without parsing.
  if (line.includes('"msg":"admission decision"')) {
    logs.set('info admission decision', (logs.get('info admission decision') ?? 0) + 1);
    return;
  }
  let level = 'unknown';
  let msg: string;
  try {
    const o = JSON.parse(line) as { level?: unknown; msg?: unknown };
    level = typeof o.level === 'string' ? o.level : String(o.level);
    msg = typeof o.msg === 'string' ? o.msg : '';
  } catch {
    msg = line.slice(0, 80);
  }
  const key = `${level} ${msg.replace(/\S*[/:.\d]\S*/g, '*')}`;
  logs.set(key, (logs.get(key) ?? 0) + 1);
  // Rejections of the overload's bad requests are expected: counted, not kept as problems.
  const expected =
    msg === 'admission request rejected' || msg === 'admission connection closed before an answer';
  if ((LEVELS[level] ?? 0) >= 40 && !expected) {
    if (recent.length < 200) recent.push(line.length > 500 ? `${line.slice(0, 500)}...` : line);
  }
}

/** GET over plain HTTP with a deadline; undefined when it fails or times out. */
export async function httpText(url: string, timeoutMs = 5000): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return await res.text();
  } catch {
    return undefined;
  }
}

export async function httpStatus(url: string, timeoutMs = 5000): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** SIGTERM, then the exit code and how long the drain took (SIGKILL after `timeoutMs`). */
export async function stopBreezeProcess(
  p: BreezeProcess,
  timeoutMs: number,
): Promise<{ code: number | null; ms: number; killed: boolean }> {
  const start = Date.now();
  if (p.exitCode() !== undefined) return { code: p.exitCode() ?? null, ms: 0, killed: false };
  const exited = once(p.child, 'exit') as Promise<[number | null]>;
  p.child.kill('SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  const first = await Promise.race([exited, timer]);
  if (first === 'timeout') {
    p.child.kill('SIGKILL');
    const [code] = await exited;
    return { code, ms: Date.now() - start, killed: true };
  }
  return { code: first[0], ms: Date.now() - start, killed: false };
}
