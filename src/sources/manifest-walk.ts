import type { BigIntStats } from 'node:fs';
import { opendir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { readRegularFile } from './regular-file.js';

/**
 * Largest manifest file Breeze reads: 4 MiB. etcd refuses an object over 1.5 MiB, so no single
 * Kubernetes object is larger; a file of several big ones fits. Parsing 4 MiB of YAML costs about
 * 3.5 s of CPU on a 2-core machine (off the event loop, in the file source's worker); a 50 MB file
 * cost 57 s per poll before this cap. A larger file is skipped with one warning, never read.
 */
export const MAX_MANIFEST_FILE_BYTES = 4 * 1024 * 1024;

/** Deepest directory level read below a given directory (symlinked directories count as levels). */
export const MAX_WALK_DEPTH = 16;

/** Most directory entries one walk looks at (all names, manifests or not); the rest is ignored. */
export const MAX_WALK_ENTRIES = 20_000;

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** Entries of one directory stat'ed at once (libuv's pool has 4 threads; stats do not block). */
const STAT_BATCH = 32;

/** A manifest file found by the walk, with the identity that tells whether it changed. */
export interface WalkFile {
  readonly path: string;
  /** dev:ino:size:mtime:ctime (nanoseconds): any write, rename over or truncate changes it. */
  readonly identity: string;
}

/** A path the walk did not read, with why. `error`: a manifest could not be loaded. */
export interface WalkProblem {
  readonly path: string;
  readonly message: string;
  readonly severity: 'error' | 'warning';
  /** The path's identity when it has one (a FIFO, a large file), so a change re-reports it. */
  readonly identity?: string;
}

export interface WalkResult {
  readonly files: WalkFile[];
  readonly problems: WalkProblem[];
  /**
   * False when some part of the tree could not be listed or a limit cut the walk: files not seen
   * may still exist, so a caller must not treat them as deleted.
   */
  readonly complete: boolean;
}

export function identityOf(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

function kindOf(s: BigIntStats): string {
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function tooLarge(size: bigint | number | string): string {
  return `${size} bytes is larger than Breeze's limit of ${MAX_MANIFEST_FILE_BYTES} bytes (4 MiB) for a manifest file: skipped, not read`;
}

/**
 * Finds the manifest files under `roots` (files given directly are taken whatever their name;
 * in directories, *.yaml, *.yml and *.json, recursively, in name order). Only stats, never opens:
 * symlinks are followed to files and directories, a directory reached again through a symlink to
 * one of its ancestors is a loop (skipped with a warning), reached again elsewhere is read once;
 * FIFOs, sockets and devices and files over the size cap are reported, never opened. Bounded by
 * MAX_WALK_DEPTH and MAX_WALK_ENTRIES. Never throws.
 */
export async function walkManifests(
  roots: readonly string[],
  limits: { maxDepth?: number; maxEntries?: number } = {},
): Promise<WalkResult> {
  const maxDepth = limits.maxDepth ?? MAX_WALK_DEPTH;
  const maxEntries = limits.maxEntries ?? MAX_WALK_ENTRIES;
  const files: WalkFile[] = [];
  const problems: WalkProblem[] = [];
  const seen = new Set<string>(); // dev:ino of every directory and file taken
  let complete = true;
  let entries = 0;
  let entryLimitReported = false;

  const takeFile = (path: string, s: BigIntStats): void => {
    const key = `${s.dev}:${s.ino}`;
    if (seen.has(key)) return; // the same file through another path or symlink
    seen.add(key);
    if (!s.isFile()) {
      problems.push({
        path,
        message: `${kindOf(s)}, not a regular file: skipped, not opened`,
        severity: 'error',
        identity: identityOf(s),
      });
    } else if (s.size > BigInt(MAX_MANIFEST_FILE_BYTES)) {
      problems.push({ path, message: tooLarge(s.size), severity: 'error', identity: identityOf(s) });
    } else {
      files.push({ path, identity: identityOf(s) });
    }
  };

  const walkDir = async (dir: string, depth: number, ancestors: ReadonlySet<string>): Promise<void> => {
    if (depth > maxDepth) {
      problems.push({
        path: dir,
        message: `deeper than Breeze's limit of ${maxDepth} directory levels: skipped`,
        severity: 'warning',
      });
      return;
    }
    let names: string[];
    try {
      names = [];
      const handle = await opendir(dir);
      try {
        for await (const entry of handle) {
          if (++entries > maxEntries) {
            complete = false;
            if (!entryLimitReported) {
              entryLimitReported = true;
              problems.push({
                path: dir,
                message: `more than Breeze's limit of ${maxEntries} directory entries: the rest are not read`,
                severity: 'error',
              });
            }
            break;
          }
          // A plain file that is not a manifest needs no stat; anything else (a directory, a
          // symlink, a FIFO named x.yaml) is looked at with stat below.
          if (!entry.isFile() || MANIFEST_EXTENSIONS.has(extname(entry.name))) names.push(entry.name);
        }
      } finally {
        await handle.close().catch(() => undefined);
      }
    } catch (err) {
      complete = false;
      problems.push({ path: dir, message: `cannot list: ${code(err)}`, severity: 'error' });
      return;
    }
    names.sort();
    // stat (follows symlinks, never opens) a few entries at a time, then handle them in order.
    const stats: (BigIntStats | { error: unknown })[] = [];
    for (let i = 0; i < names.length; i += STAT_BATCH) {
      const batch = names
        .slice(i, i + STAT_BATCH)
        .map((name) => stat(join(dir, name), { bigint: true }).catch((error: unknown) => ({ error })));
      stats.push(...(await Promise.all(batch)));
    }
    for (const [i, name] of names.entries()) {
      const path = join(dir, name);
      const isManifest = MANIFEST_EXTENSIONS.has(extname(name));
      const s = stats[i];
      if (s === undefined) continue;
      if ('error' in s) {
        const c = code(s.error);
        if (c === 'ELOOP')
          problems.push({ path, message: 'a symlink loop (ELOOP): skipped', severity: 'warning' });
        else if (isManifest) problems.push({ path, message: `cannot read: ${c}`, severity: 'error' });
        continue;
      }
      if (s.isDirectory()) {
        const key = `${s.dev}:${s.ino}`;
        if (ancestors.has(key)) {
          problems.push({
            path,
            message: 'a symlink loop (it leads back to a directory above it): skipped',
            severity: 'warning',
          });
          continue;
        }
        if (seen.has(key)) continue; // read once already, through another path
        seen.add(key);
        await walkDir(path, depth + 1, new Set([...ancestors, key]));
      } else if (isManifest) {
        takeFile(path, s);
      }
    }
  };

  for (const root of roots) {
    let s: BigIntStats;
    try {
      s = await stat(root, { bigint: true });
    } catch (err) {
      complete = false;
      const c = code(err);
      problems.push({
        path: root,
        message: c === 'ELOOP' ? 'a symlink loop (ELOOP): skipped' : `cannot read: ${c}`,
        severity: 'error',
      });
      continue;
    }
    if (s.isDirectory()) {
      const key = `${s.dev}:${s.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      await walkDir(root, 1, new Set([key]));
    } else {
      takeFile(root, s);
    }
  }
  return { files, problems, complete };
}

export type ReadResult =
  | { readonly ok: true; readonly text: string; readonly identity: string }
  | { readonly ok: false; readonly message: string; readonly identity?: string };

/** Reads one manifest file, bounded: how the file source and the CLI read a file the walk found. */
export type ManifestReader = (path: string) => Promise<ReadResult>;

/**
 * Opens without blocking (O_NONBLOCK: a FIFO swapped in after the walk's stat opens at once
 * instead of holding a threadpool thread forever), checks on the open file that it is a regular
 * file under the cap, and reads at most cap + 1 bytes. Never throws.
 */
export const readManifest: ManifestReader = async (path) => {
  try {
    // Up to the file's size + 1 bytes (not the whole cap): a small file costs a small buffer.
    const read = await readRegularFile(path, MAX_MANIFEST_FILE_BYTES, (size) => size);
    const identity = identityOf(read.stats);
    if (read.ok) return { ok: true, text: read.text, identity };
    if (read.reason === 'not-regular')
      return { ok: false, message: `${kindOf(read.stats)}, not a regular file: skipped, not read`, identity };
    const size = read.grew ? `over ${read.stats.size}` : read.stats.size;
    return { ok: false, message: tooLarge(size), identity };
  } catch (err) {
    return { ok: false, message: `cannot read: ${code(err)}` };
  }
};
