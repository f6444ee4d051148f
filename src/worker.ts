import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on the module `name` next to `from` (an `import.meta.url`). From the
 * built package that is `<name>.js`; from source (tests, the bench, `node --import tsx`) it is
 * `<name>.ts`, and workers do not inherit the TypeScript loader, so it is registered first.
 */
export function startSiblingWorker(from: string, name: string, options: WorkerOptions = {}): Worker {
  const ext = extname(fileURLToPath(from));
  const entry = new URL(`./${name}${ext}`, from);
  if (ext !== '.ts') return new Worker(entry, options);
  return new Worker(
    `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
      `.then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`,
    { ...options, eval: true },
  );
}
