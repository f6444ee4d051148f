import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asRecord, asString, type JsonRecord } from '../../model/json.js';
import { toYamlStream } from '../../protocols/output.js';

export interface DirectorySyncResult {
  readonly written: number;
  readonly unchanged: number;
  readonly removed: number;
}

/** `<namespace>.<name>.yaml`: names are DNS-1123 subdomains, so the file name is unambiguous per namespace. */
export function fileNameOf(envoyFilter: JsonRecord): string {
  const m = asRecord(envoyFilter.metadata);
  return `${asString(m?.namespace) ?? 'default'}.${asString(m?.name) ?? 'unnamed'}.yaml`;
}

/**
 * Makes `dir` hold exactly these EnvoyFilters, one YAML file each: changed files are written to a
 * temporary file and renamed (a reader never sees half a file), unchanged ones are not touched,
 * and other `.yaml` files (stale filters) are removed. The directory belongs to Breeze.
 */
export async function syncDirectory(
  dir: string,
  envoyFilters: readonly JsonRecord[],
): Promise<DirectorySyncResult> {
  await mkdir(dir, { recursive: true });
  const desired = new Map(envoyFilters.map((ef) => [fileNameOf(ef), toYamlStream([ef])]));
  let written = 0;
  let unchanged = 0;
  for (const [file, text] of desired) {
    const path = join(dir, file);
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current === text) {
      unchanged++;
      continue;
    }
    const tmp = join(dir, `.${file}.${process.pid}.tmp`);
    await writeFile(tmp, text);
    await rename(tmp, path);
    written++;
  }
  let removed = 0;
  for (const file of await readdir(dir)) {
    if (file.endsWith('.yaml') && !desired.has(file)) {
      await rm(join(dir, file), { force: true });
      removed++;
    }
  }
  return { written, unchanged, removed };
}
