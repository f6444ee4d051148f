import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { asArray, asString, isRecord, type JsonRecord } from '../model/json.js';

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
  for (const doc of parseAllDocuments(text, { prettyErrors: true })) {
    if (doc.errors.length > 0) {
      errors.push(...doc.errors.map((e) => e.message.split('\n')[0] ?? e.message));
      continue;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    if (!isRecord(value)) {
      errors.push('a document is not an object with apiVersion and kind');
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
