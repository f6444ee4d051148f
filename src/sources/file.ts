import { watch, type FSWatcher } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { asString, canonicalJson, type JsonRecord } from '../model/json.js';
import { parseManifestText, type ParsedManifest } from './manifest-parse.js';
import { readManifest, walkManifests, type ManifestReader } from './manifest-walk.js';
import type { ConfigSink, Source } from './types.js';
import { startSiblingWorker } from '../worker.js';

export { parseManifestText, MAX_YAML_ALIAS_COUNT, MAX_EXPANDED_UNITS } from './manifest-parse.js';
export type { ParsedManifest } from './manifest-parse.js';
export {
  MAX_MANIFEST_FILE_BYTES,
  MAX_WALK_DEPTH,
  MAX_WALK_ENTRIES,
  readManifest,
  type ManifestReader,
} from './manifest-walk.js';

export interface LoadedObject {
  readonly file: string;
  readonly object: JsonRecord;
}

export interface LoadError {
  readonly file: string;
  readonly message: string;
}

export interface LoadResult {
  readonly objects: readonly LoadedObject[];
  /** Manifests that could not be read or parsed, in full or in part: the input is invalid. */
  readonly errors: readonly LoadError[];
  /** Paths skipped without losing a manifest (a symlink loop, a directory past the depth limit). */
  readonly warnings: readonly LoadError[];
}

/**
 * Reads Kubernetes manifests from files and directories (recursively; .yaml, .yml, .json;
 * multi-document YAML; `List` kinds expanded), bounded as the file source is (size cap, no
 * FIFOs or devices, symlink loops skipped, limited aliases). A file that cannot be read or
 * parsed is reported and the others still load: nothing is lost silently. Never throws.
 */
export async function loadManifests(
  paths: readonly string[],
  reader: ManifestReader = readManifest,
): Promise<LoadResult> {
  const objects: LoadedObject[] = [];
  const errors: LoadError[] = [];
  const warnings: LoadError[] = [];
  // Path by path, so problems are reported in the order the paths were given.
  for (const p of paths) {
    const walk = await walkManifests([p]);
    for (const problem of walk.problems)
      (problem.severity === 'error' ? errors : warnings).push({
        file: problem.path,
        message: problem.message,
      });
    for (const { path: file } of walk.files) {
      const read = await reader(file);
      if (!read.ok) {
        errors.push({ file, message: read.message });
        continue;
      }
      const parsed = parseManifestText(read.text);
      for (const message of parsed.errors) errors.push({ file, message });
      for (const object of parsed.objects) objects.push({ file, object });
    }
  }
  return { objects, errors, warnings };
}

/** How long the worker may parse one file (at most 4 MiB, about 4 s of CPU) before it is stopped. */
export const PARSE_TIMEOUT_MS = 60_000;

/**
 * Parses manifest text in a worker thread, one file at a time, so the event loop never waits on
 * a large or hostile file. A worker that cannot start at all (it never answered its first
 * message: a broken install) makes it parse on the calling thread from then on, and say so once.
 */
export class ManifestParseWorker {
  private worker: Worker | undefined;
  /** The current worker answered its start-up ping: a failure from now on is the file's. */
  private ready = false;
  private inline = false;
  private nextId = 0;
  private waiting: { id: number; text: string; done: (r: ParsedManifest) => void } | undefined;

  constructor(
    private readonly onInline: (why: string) => void = () => undefined,
    /** The worker's entry module (tests); default manifest-worker next to this module. */
    private readonly entry?: URL,
  ) {}

  parse(text: string): Promise<ParsedManifest> {
    if (this.inline) return Promise.resolve(parseManifestText(text));
    return new Promise((resolve) => {
      const id = ++this.nextId;
      const timer = setTimeout(() => {
        this.finish(id, {
          objects: [],
          errors: [`parsing took longer than ${PARSE_TIMEOUT_MS / 1000} s: skipped`],
        });
        void this.close();
      }, PARSE_TIMEOUT_MS);
      timer.unref();
      this.waiting = {
        id,
        text,
        done: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      try {
        this.ensure().postMessage({ id, text });
      } catch (e) {
        this.finish(id, { objects: [], errors: [`cannot parse: ${(e as Error).message}`] });
      }
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.ready = false;
    if (this.waiting !== undefined)
      this.finish(this.waiting.id, { objects: [], errors: ['the parser was stopped'] });
    if (w !== undefined) await w.terminate().catch(() => undefined);
  }

  private finish(id: number, result: ParsedManifest): void {
    const waiting = this.waiting;
    if (waiting === undefined || waiting.id !== id) return;
    this.waiting = undefined;
    waiting.done(result);
  }

  private ensure(): Worker {
    if (this.worker !== undefined) return this.worker;
    const options = { resourceLimits: { maxOldGenerationSizeMb: 1024, stackSizeMb: 16 } };
    const w =
      this.entry !== undefined
        ? new Worker(this.entry, options)
        : startSiblingWorker(import.meta.url, 'manifest-worker', options);
    w.unref();
    w.on('message', (m: { id: number; objects: JsonRecord[]; errors: string[] }) => {
      if (m.id === 0) this.ready = true;
      else this.finish(m.id, { objects: m.objects, errors: m.errors });
    });
    const lost = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const waiting = this.waiting;
      if (!this.ready) {
        this.inline = true;
        this.onInline(why);
        if (waiting !== undefined) this.finish(waiting.id, parseManifestText(waiting.text));
      } else if (waiting !== undefined) {
        this.finish(waiting.id, { objects: [], errors: [`cannot parse: ${why}`] });
      }
      this.ready = false;
    };
    w.on('error', (err) => lost(`the parser failed (${err.message.split('\n')[0] ?? ''})`));
    w.on('exit', () => lost('the parser stopped'));
    w.postMessage({ id: 0, text: '' }); // the start-up ping, answered before any file
    this.worker = w;
    return w;
  }
}

/** What the file source knows about one path. */
interface FileRecord {
  /** Identity of what was read (undefined when nothing could be): unchanged identity, no re-read. */
  readonly identity: string | undefined;
  /** The objects delivered for this path: from the last good read while it is broken. */
  readonly objects: readonly JsonRecord[];
  readonly fingerprint: string;
  /** Current problems; logged when they or the identity change, not on every poll. */
  readonly problems: readonly string[];
  readonly reportKey: string;
}

export interface FileSourceOptions {
  logger: { warn: (obj: object, msg: string) => void; info?: (obj: object, msg: string) => void };
  pollIntervalMs?: number;
  kinds?: (o: JsonRecord) => boolean;
  /** How files are read (tests count reads with it). */
  reader?: ManifestReader;
  /** How text is parsed; default: in a worker thread. */
  parse?: (text: string) => Promise<ParsedManifest>;
}

/**
 * The file source (local mode): the manifests under a directory, delivered per kind with
 * `replace`, and again whenever a file changes (directory events plus a poll, since events can be
 * missed). Each poll only stats: a file is read and parsed again only when its identity (dev,
 * inode, size, mtime, ctime) changed, in a worker thread. A file that does not parse, is too large
 * or is not a regular file is reported once per change and skipped, never stopping the others; its
 * objects are kept from the last good read so a half-saved file deletes nothing.
 */
export class FileSource implements Source {
  readonly name = 'file';
  private sink: ConfigSink | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private records = new Map<string, FileRecord>();
  /** What was last logged per path (see report). */
  private reported = new Map<string, { key: string; problems: number }>();
  private kinds = new Set<string>();
  private isSynced = false;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly worker: ManifestParseWorker;
  private readonly reader: ManifestReader;
  private readonly parse: (text: string) => Promise<ParsedManifest>;

  constructor(
    private readonly dir: string,
    private readonly o: FileSourceOptions,
  ) {
    this.reader = o.reader ?? readManifest;
    this.worker = new ManifestParseWorker((why) =>
      o.logger.warn({ why }, 'config dir: the parser worker cannot start; parsing on the main thread'),
    );
    this.parse = o.parse ?? ((text) => this.worker.parse(text));
  }

  async start(sink: ConfigSink): Promise<void> {
    this.sink = sink;
    await this.reload();
    this.isSynced = true;
    try {
      this.watcher = watch(this.dir, { recursive: true }, () => this.schedule());
      this.watcher.on('error', () => undefined);
    } catch {
      // Recursive watching is unavailable on this platform: the poll alone keeps us current.
    }
    this.pollTimer = setInterval(() => this.schedule(), this.o.pollIntervalMs ?? 2000);
    this.pollTimer.unref();
  }

  synced(): boolean {
    return this.isSynced;
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    clearTimeout(this.timer);
    clearInterval(this.pollTimer);
    this.sink = undefined;
    await this.worker.close();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.sink === undefined) return; // one pending reload at a time
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload();
    }, 100);
    this.timer.unref();
  }

  /**
   * Brings the sink up to date with the directory. Never rejects; never runs twice at once: a
   * call during a run makes that run go round once more, and resolves with it.
   */
  reload(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.again = false;
          try {
            await this.reloadOnce();
          } catch (err) {
            this.o.logger.warn({ err, dir: this.dir }, 'config dir: reload failed; will retry');
          }
        } while (this.wantsAgain());
      } finally {
        this.running = undefined;
      }
    };
    this.running = run();
    return this.running;
  }

  /** A reload was asked for during the current run (read through a call: it changes across awaits). */
  private wantsAgain(): boolean {
    return this.again && this.sink !== undefined;
  }

  private currentSink(): ConfigSink | undefined {
    return this.sink;
  }

  private async reloadOnce(): Promise<void> {
    if (this.sink === undefined) return;
    const walk = await walkManifests([this.dir]);
    const previous = this.records;
    const next = new Map<string, FileRecord>();
    const problem = (path: string, message: string, identity?: string): void => {
      const prev = previous.get(path);
      const had = next.get(path);
      const problems = [...(had?.problems ?? []), message];
      next.set(path, {
        identity,
        objects: prev?.objects ?? [],
        fingerprint: prev?.fingerprint ?? '[]',
        problems,
        reportKey: `${identity ?? ''}\n${problems.join('\n')}`,
      });
    };
    for (const p of walk.problems) problem(p.path, p.message, p.identity);
    for (const file of walk.files) {
      if (this.currentSink() === undefined) return; // stopped: start no worker again
      const prev = previous.get(file.path);
      if (prev !== undefined && prev.identity === file.identity) {
        next.set(file.path, prev); // unchanged: neither read nor parsed again
        continue;
      }
      const read = await this.reader(file.path);
      if (!read.ok) {
        problem(file.path, read.message, read.identity);
        continue;
      }
      const parsed = await this.parse(read.text);
      const kinds = this.o.kinds;
      const objects = kinds === undefined ? parsed.objects : parsed.objects.filter((o) => kinds(o));
      const broken = parsed.errors.length > 0;
      const kept = broken && prev !== undefined ? prev.objects : objects;
      next.set(file.path, {
        identity: read.identity,
        objects: kept,
        fingerprint: broken && prev !== undefined ? prev.fingerprint : canonicalJson(kept),
        problems: parsed.errors,
        reportKey: broken ? `${read.identity}\n${parsed.errors.join('\n')}` : '',
      });
    }
    if (!walk.complete) {
      // Part of the tree could not be listed: what was not seen may still be there.
      for (const [path, prev] of previous) if (!next.has(path)) next.set(path, prev);
    }
    const sink = this.currentSink(); // stop() may have run during the awaits above
    if (sink === undefined) return;
    this.report(next);

    let changed = previous.size !== next.size;
    for (const [path, rec] of next) if (previous.get(path)?.fingerprint !== rec.fingerprint) changed = true;
    if (changed) {
      const byKind = new Map<string, JsonRecord[]>();
      for (const path of [...next.keys()].sort()) {
        for (const o of next.get(path)?.objects ?? []) {
          const kind = asString(o.kind) ?? '';
          let list = byKind.get(kind);
          if (list === undefined) byKind.set(kind, (list = []));
          list.push(o);
        }
      }
      for (const kind of new Set([...this.kinds, ...byKind.keys()]))
        sink.replace('file', kind, byKind.get(kind) ?? []);
      this.kinds = new Set(byKind.keys());
    }
    // Only once delivered: a sink that throws leaves the old records, so the next poll retries.
    this.records = next;
  }

  /** Logs each path's problems once per change of the path, and that a fixed file loaded. */
  private report(next: ReadonlyMap<string, FileRecord>): void {
    const reported = new Map<string, { key: string; problems: number }>();
    for (const [file, rec] of next) {
      const prev = this.reported.get(file);
      reported.set(file, { key: rec.reportKey, problems: rec.problems.length });
      if (rec.reportKey === (prev?.key ?? '')) continue;
      if (rec.problems.length > 0) {
        const kept =
          rec.objects.length > 0 ? ` (${rec.objects.length} object(s) of this path stay in use)` : '';
        for (const message of rec.problems) this.o.logger.warn({ file }, `config dir: ${message}${kept}`);
      } else if (prev !== undefined && prev.problems > 0) {
        (this.o.logger.info ?? this.o.logger.warn)(
          { file },
          `config dir: loaded (${rec.objects.length} object(s))`,
        );
      }
    }
    this.reported = reported;
  }
}
