import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { asArray, asString, canonicalJson, isRecord, type JsonRecord } from '../model/json.js';
import type { ConfigSink, Source } from './types.js';

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
  readonly errors: readonly LoadError[];
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * Reads Kubernetes manifests from files and directories (recursively; .yaml, .yml, .json;
 * multi-document YAML; `List` kinds expanded). A file that cannot be read or parsed is reported
 * and the others still load: nothing is lost silently.
 */
export async function loadManifests(paths: readonly string[]): Promise<LoadResult> {
  const objects: LoadedObject[] = [];
  const errors: LoadError[] = [];
  // Path by path, so problems are reported in the order the paths were given.
  for (const p of paths) {
    for (const file of await expand([p], errors)) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        errors.push({ file, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
        continue;
      }
      const parsed = parseManifestText(text);
      for (const message of parsed.errors) errors.push({ file, message });
      for (const object of parsed.objects) objects.push({ file, object });
    }
  }
  return { objects, errors };
}

/** Parses one file's text: YAML (multi-document) or JSON. */
export function parseManifestText(text: string): { objects: JsonRecord[]; errors: string[] } {
  const objects: JsonRecord[] = [];
  const errors: string[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: true });
  for (const [i, doc] of (Array.isArray(docs) ? docs : [docs]).entries()) {
    const where = `document ${i + 1}`;
    if (doc.errors.length > 0) {
      errors.push(...doc.errors.map((e) => `${where}: ${e.message.split('\n')[0] ?? e.message}`));
      continue;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    if (!isRecord(value)) {
      errors.push(`${where}: not an object with apiVersion and kind`);
      continue;
    }
    const kind = asString(value.kind);
    if (kind !== undefined && kind.endsWith('List') && Array.isArray(value.items)) {
      for (const item of asArray(value.items) ?? []) if (isRecord(item)) objects.push(item);
    } else {
      objects.push(value);
    }
  }
  return { objects, errors };
}

async function expand(paths: readonly string[], errors: LoadError[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let s;
    try {
      s = await stat(p);
    } catch (err) {
      errors.push({ file: p, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
      continue;
    }
    if (s.isDirectory()) {
      const names = (await readdir(p)).sort();
      const children = names.map((n) => join(p, n));
      const files: string[] = [];
      for (const c of children) {
        const cs = await stat(c).catch(() => undefined);
        if (cs?.isDirectory() === true) files.push(...(await expand([c], errors)));
        else if (MANIFEST_EXTENSIONS.has(extname(c))) files.push(c);
      }
      out.push(...files);
    } else {
      out.push(p);
    }
  }
  return out;
}

/**
 * The file source (local mode): the manifests under a directory, delivered per kind with
 * `replace`, and again whenever a file changes (directory events plus a poll, since events can be
 * missed). A file that does not parse is reported and skipped, never stopping the others; its
 * objects are kept from the last good read so a half-saved file deletes nothing.
 */
export class FileSource implements Source {
  readonly name = 'file';
  private sink: ConfigSink | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private lastGood = new Map<string, JsonRecord[]>();
  private fingerprint = '';
  private kinds = new Set<string>();
  private isSynced = false;

  constructor(
    private readonly dir: string,
    private readonly o: {
      logger: { warn: (obj: object, msg: string) => void };
      pollIntervalMs?: number;
      kinds?: (o: JsonRecord) => boolean;
    },
  ) {}

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
    return Promise.resolve();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), 100);
    this.timer.unref();
  }

  /** Reads everything; delivers only when some file's content changed. */
  async reload(): Promise<void> {
    const sink = this.sink;
    if (sink === undefined) return;
    const loaded = await loadManifests([this.dir]);
    const failed = new Set(loaded.errors.map((e) => e.file));
    const byFile = new Map<string, JsonRecord[]>();
    for (const { file, object } of loaded.objects) {
      if (this.o.kinds !== undefined && !this.o.kinds(object)) continue;
      let list = byFile.get(file);
      if (list === undefined) byFile.set(file, (list = []));
      list.push(object);
    }
    for (const file of failed) {
      const previous = this.lastGood.get(file);
      if (previous !== undefined) byFile.set(file, previous);
    }
    const fingerprint = canonicalJson([...byFile].sort(([a], [b]) => (a < b ? -1 : 1)));
    for (const e of loaded.errors) this.o.logger.warn({ file: e.file }, `config dir: ${e.message}`);
    if (fingerprint === this.fingerprint) return;
    this.fingerprint = fingerprint;
    this.lastGood = byFile;
    const byKind = new Map<string, JsonRecord[]>();
    for (const o of [...byFile.values()].flat()) {
      const kind = asString(o.kind) ?? '';
      let list = byKind.get(kind);
      if (list === undefined) byKind.set(kind, (list = []));
      list.push(o);
    }
    for (const kind of new Set([...this.kinds, ...byKind.keys()]))
      sink.replace('file', kind, byKind.get(kind) ?? []);
    this.kinds = new Set(byKind.keys());
  }
}
