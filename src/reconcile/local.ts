import type { ConfigStore } from '../cache/store.js';
import { formatProblem, generateAll } from '../protocols/generate.js';
import type { GenerationOptions } from '../protocols/types.js';
import type { Logger } from '../telemetry/logger.js';
import { syncDirectory, type DirectorySyncResult } from './sinks/directory.js';

/**
 * Local mode's output: regenerates every EnvoyFilter and syncs `--out-dir` when the cache
 * changes, coalescing bursts (after `quietMs` without changes, at most `maxMs` after the first).
 * A stand-in for the debounced reconciler, which writes only the affected services.
 */
export class DirectoryPublisher {
  private quiet: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly store: ConfigStore,
    private readonly o: {
      dir: string;
      options: GenerationOptions;
      logger: Logger;
      quietMs: number;
      maxMs: number;
    },
  ) {}

  /** Writes once now, then follows the cache. */
  async start(): Promise<DirectorySyncResult & { envoyFilters: number; problems: number }> {
    const first = await this.publish();
    this.unsubscribe = this.store.subscribe(() => this.schedule());
    return first;
  }

  private schedule(): void {
    clearTimeout(this.quiet);
    this.quiet = setTimeout(() => this.flush(), this.o.quietMs);
    this.deadline ??= setTimeout(() => this.flush(), this.o.maxMs);
  }

  private flush(): void {
    clearTimeout(this.quiet);
    clearTimeout(this.deadline);
    this.deadline = undefined;
    this.running = this.running.then(
      () => this.publish().then(() => undefined),
      () => undefined,
    );
  }

  private async publish(): Promise<DirectorySyncResult & { envoyFilters: number; problems: number }> {
    const result = generateAll(this.store, this.o.options);
    for (const p of result.problems) {
      this.o.logger.warn({ service: p.service, port: p.port }, `generation: ${formatProblem(p)}`);
    }
    for (const n of result.notes) {
      this.o.logger.warn({ service: n.service, port: n.port }, `generation note: ${formatProblem(n)}`);
    }
    const synced = await syncDirectory(this.o.dir, result.envoyFilters);
    this.o.logger.info({ outDir: this.o.dir, ...synced }, 'EnvoyFilters written');
    return { ...synced, envoyFilters: result.envoyFilters.length, problems: result.problems.length };
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearTimeout(this.quiet);
    clearTimeout(this.deadline);
    await this.running;
  }
}
