import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { BreezeError } from '../../errors.js';
import { asRecord, asString, isRecord, type JsonRecord } from '../../model/json.js';
import { toYamlStream } from '../../protocols/output.js';
import { isBreezeOwned } from '../owned.js';
import type { ApplyOutcome, EnvoyFilterSink } from '../types.js';

/** `<namespace>.<name>.yaml`: names are DNS-1123 subdomains, so the file name is unambiguous per namespace. */
export function fileNameOf(envoyFilter: JsonRecord): string {
  const m = asRecord(envoyFilter.metadata);
  return `${asString(m?.namespace) ?? 'default'}.${asString(m?.name) ?? 'unnamed'}.yaml`;
}

/**
 * EnvoyFilter files may hold Redis passwords (inline mode): owner read/write only. The temporary
 * file is created with this mode (exclusively: never through an existing file or symlink) before
 * any byte is written, and the rename keeps it.
 */
export const FILE_MODE = 0o600;
/** A directory Breeze creates for them: owner only. */
export const DIR_MODE = 0o700;

/** Writes `text` to `path` through a temporary file and a rename: a reader sees the old or the new file. */
async function writeAtomic(dir: string, file: string, text: string): Promise<void> {
  const tmp = join(dir, `.${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, text, { mode: FILE_MODE, flag: 'wx' });
    await rename(tmp, join(dir, file));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Local mode's EnvoyFilterSink: one `<namespace>.<name>.yaml` per EnvoyFilter in `dir`, written
 * atomically (temporary file + rename). As in the cluster, only files holding Breeze's label are
 * Breeze's: a file of the same name without it is a FOREIGN_OBJECT and is left alone.
 */
export class DirectoryEnvoyFilterSink implements EnvoyFilterSink {
  constructor(readonly dir: string) {}

  async apply(envoyFilter: JsonRecord, signal: AbortSignal): Promise<ApplyOutcome> {
    signal.throwIfAborted();
    await mkdir(this.dir, { recursive: true, mode: DIR_MODE });
    const file = fileNameOf(envoyFilter);
    const text = toYamlStream([envoyFilter]);
    const current = await readFile(join(this.dir, file), 'utf8').catch(() => undefined);
    if (current === text) {
      await tightenMode(join(this.dir, file));
      return 'unchanged';
    }
    if (current !== undefined && !ownedText(current))
      throw new BreezeError('FOREIGN_OBJECT', `${join(this.dir, file)} is not managed by Breeze: left alone`);
    await writeAtomic(this.dir, file, text);
    return current === undefined ? 'created' : 'updated';
  }

  async delete(namespace: string, name: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const path = join(this.dir, fileNameOf({ metadata: { namespace, name } }));
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current === undefined) return;
    if (!ownedText(current))
      throw new BreezeError('FOREIGN_OBJECT', `${path} is not managed by Breeze: left alone`);
    await rm(path, { force: true });
  }

  /** The EnvoyFilters in the directory that carry Breeze's label: the actual state in local mode. */
  async actual(): Promise<JsonRecord[]> {
    const files = await readdir(this.dir).catch(() => [] as string[]);
    const out: JsonRecord[] = [];
    for (const file of files.sort()) {
      if (!file.endsWith('.yaml') || file.startsWith('.')) continue;
      const text = await readFile(join(this.dir, file), 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      for (const o of parseObjects(text)) if (o.kind === 'EnvoyFilter' && isBreezeOwned(o)) out.push(o);
    }
    return out;
  }
}

/** A file written by an older version (0644) is made owner-only when found unchanged. */
async function tightenMode(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st !== undefined && st.isFile() && (st.mode & 0o077) !== 0) await chmod(path, FILE_MODE);
}

function parseObjects(text: string): JsonRecord[] {
  try {
    return parseAllDocuments(text)
      .map((d) => (d.errors.length === 0 ? (d.toJS() as unknown) : undefined))
      .filter(isRecord);
  } catch {
    return [];
  }
}

function ownedText(text: string): boolean {
  return parseObjects(text).some((o) => isBreezeOwned(o));
}
