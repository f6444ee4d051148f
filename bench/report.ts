// The benchmark report: the issue's targets computed from the per-bench results, rendered as
// Markdown (bench/results/latest.md, and the README between its bench markers). Pure: no I/O.

/** Where the report was made. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
}

interface Load {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly runs?: readonly number[];
  /** Server CPU ms per 1,000 requests (median of the rounds; absent in older files). */
  readonly cpuMsPer1k?: number | null;
  readonly p99Runs?: readonly number[];
}

/** bench/results/admission.json */
export interface AdmissionResult {
  readonly date?: string;
  /** Recorded by bench/run.ts when it ran the bench (absent in older files). */
  readonly machine?: Machine;
  /** What ran as Breeze (absent in older files, which measured the webhook app alone). */
  readonly process?: string;
  readonly rounds?: number;
  readonly durationSeconds?: number;
  readonly connections?: number;
  readonly bodyBytes?: number;
  readonly ratioValidate: number;
  readonly ratioMutate: number;
  /** The webhook app alone (in its own process, no sources) over the bare server. */
  readonly ratioAppAlone?: number;
  /** Every round's ratio. */
  readonly ratioRuns?: { readonly validate: readonly number[]; readonly mutate: readonly number[] };
  /** p99 at a fixed 1,000 req/s, Breeze's over the bare server's: median of the per-round ratios. */
  readonly p99RatioAt1000?: { readonly validate: number; readonly mutate: number };
  readonly [target: string]: unknown;
}

export interface GenerateRun {
  readonly services: number;
  readonly fillMs: number;
  readonly generateMs: number;
  readonly jsonMs: number;
  readonly yamlMs: number;
  readonly totalJsonMs: number;
  readonly outputs: number;
  readonly problems: number;
  readonly peakRssMiB: number;
}

/** bench/results/generate.json: per size, the generation run and its baseline. */
export interface GenerateResult {
  readonly date?: string;
  /** Recorded by bench/run.ts when it ran the bench (absent in older files). */
  readonly machine?: Machine;
  readonly [services: string]:
    { readonly baseline: GenerateRun; readonly generate: GenerateRun } | Machine | string | undefined;
}

/** bench/results/cache.json */
export interface CacheResult {
  readonly date?: string;
  /** Recorded by bench/run.ts when it ran the bench (absent in older files). */
  readonly machine?: Machine;
  readonly services: number;
  readonly rounds: number;
  readonly fullMs: number;
  readonly incrementalMs: number;
  readonly speedup: number;
  readonly affectedKeys: number;
  readonly regeneratedEnvoyFilters: number;
  /** The initial list of the config through client-node (absent in older files). */
  readonly initialSync?: {
    readonly ms: number;
    readonly serviceEntries: number;
    readonly virtualServices: number;
    readonly destinationRules: number;
    readonly peakRssMiB: number;
    readonly rssBeforeSyncMiB: number;
  };
}

/** bench/results/reconcile.json */
export interface ReconcileResult {
  readonly date?: string;
  /** Recorded by bench/run.ts when it ran the bench (absent in older files). */
  readonly machine?: Machine;
  readonly services: number;
  readonly fromEmpty: { ms: number; writes: number; requests: number; created: number; objects: number };
  readonly noopResync: { ms: number; writes: number; unchanged: number };
  readonly singleChange: { ms: number; writes: number; updated: number; keys: number };
}

/** bench/results/pipeline.json */
export interface PipelineReport {
  readonly date?: string;
  /** Recorded by bench/run.ts when it ran the bench (absent in older files). */
  readonly machine?: Machine;
  readonly changes: number;
  readonly creates: number;
  readonly updates: number;
  readonly debounceMs: number;
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  readonly admissionMs: { p50: number; p99: number };
  readonly p99OverDebounceMs: number;
  readonly targetMs: number;
  readonly envoyFilterWrites: number;
  readonly changesWithOneWrite: number;
}

/** Latency of a set of requests, ms. */
export interface Latency {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** One attack family of bench/results/hostile.json. */
export interface HostileFamilyResult {
  readonly breeze: Latency;
  readonly baseline: Latency;
  readonly ratioP99: number;
  readonly ratioMax: number;
  readonly maxBodyBytes: number;
  readonly maxAnswerBytes: number;
  /** Breeze's answers by HTTP status ('timeout' after 30 s, 'error' for a reset). */
  readonly statuses: Record<string, number>;
  readonly worst: { fixture: string; bodyBytes: number; breezeMs: number; baselineMs: number };
  /**
   * Breeze's time less the bare server's for the same body: p99 and max over the family's
   * requests, and the request of the max (absent in files written before 2026-12-03).
   */
  readonly excess?: {
    p99Ms: number;
    maxMs: number;
    fixture: string;
    bodyBytes: number;
    breezeMs: number;
    baselineMs: number;
    /**
     * The family's costliest requests sent again 5 times each: the largest median of Breeze less
     * baseline, and its request (what the target is checked against; absent in older files).
     */
    confirmedMs?: number;
    confirmedFixture?: string;
    confirmedBodyBytes?: number;
    /** Rebuilds the request: buildCase(spec, n) of test/hostile/mutations.ts. */
    spec?: { fixture: number; family: string; at: number; variant: number; size: number };
    n?: number;
  };
}

/** bench/results/hostile.json */
export interface HostileResult {
  readonly date?: string;
  /** Recorded by bench/run.ts when it ran the bench (absent in older files). */
  readonly machine?: Machine;
  readonly seed: number;
  readonly fuzzSeconds: number;
  readonly bodyLimitBytes: number;
  readonly targetMs: number;
  readonly cases: number;
  readonly timeouts: readonly { family: string; fixture: string; bytes: number; recoveredMs: number }[];
  readonly breeze: Latency;
  readonly baseline: Latency;
  readonly worst: {
    family: string;
    fixture: string;
    bodyBytes: number;
    breezeMs: number;
    baselineMs: number;
    status: string;
  };
  readonly families: Record<string, HostileFamilyResult>;
  readonly health: {
    seconds: number;
    quiet: Latency & { failures: number };
    flood: Latency & { failures: number };
    floodFamilies: readonly string[];
    floodRequests: number;
    floodStatuses: Record<string, number>;
    floodLatency: Latency;
  };
  readonly breezeExitCode: number | null;
}

export interface Results {
  readonly admission?: AdmissionResult;
  readonly generate?: GenerateResult;
  readonly cache?: CacheResult;
  readonly reconcile?: ReconcileResult;
  readonly pipeline?: PipelineReport;
  readonly hostile?: HostileResult;
}

export const BENCH_NAMES = ['admission', 'generate', 'cache', 'reconcile', 'pipeline', 'hostile'] as const;
export type BenchName = (typeof BENCH_NAMES)[number];

export interface TargetRow {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
  readonly note: string;
}

export interface Report {
  readonly date: string;
  readonly machine: Machine;
  readonly results: Results;
  readonly targets: readonly TargetRow[];
}

// ---- formatting ----------------------------------------------------------------------------

/** A whole number with thousands separators (locale-independent). */
export function int(x: number): string {
  const s = Math.round(x).toString();
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Milliseconds: two decimals under 1, one under 100, whole (grouped) above. */
export function ms(x: number): string {
  if (Math.abs(x) < 1) return x.toFixed(2);
  if (Math.abs(x) < 100) return x.toFixed(1);
  return int(x);
}

/** Milliseconds with one decimal (the pipeline's latencies, where the part above the debounce matters). */
const ms1 = (x: number): string => x.toFixed(1);

const pct = (ratio: number): string => `${(ratio * 100).toFixed(1)}%`;

/** `2026-11-21 21:35 UTC` from an ISO timestamp; 'date not recorded' without one. */
export function day(iso: string | undefined): string {
  if (iso === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(iso)) return 'date not recorded';
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

export function machineLine(m: Machine): string {
  return `${m.cpu} (${m.cores} cores, ${m.memoryGiB.toFixed(1)} GiB), Node ${m.node}, ${m.platform}`;
}

// ---- targets -------------------------------------------------------------------------------

const notRun = (target: string, bench: BenchName): TargetRow => ({
  target,
  measured: 'not run',
  met: false,
  note: `no bench/results/${bench}.json: run \`npm run bench -- ${bench}\``,
});

function maxRps(a: AdmissionResult, key: string): number | undefined {
  const v = a[key] as { max?: Load } | undefined;
  return v?.max?.rps;
}

/** The issue's targets, each from the results that measure it. */
export function computeTargets(results: Results): TargetRow[] {
  const rows: TargetRow[] = [];
  const admission = results.admission;
  const real = admission?.process !== undefined;
  for (const [hook, ratioKey, runsKey] of [
    ['/validate', 'ratioValidate', 'validate'],
    ['/mutate', 'ratioMutate', 'mutate'],
  ] as const) {
    const target = `admission throughput ≥ 60% of a bare TLS server (${hook}; aim 80%)`;
    if (admission === undefined) {
      rows.push(notRun(target, 'admission'));
      continue;
    }
    const ratio = admission[ratioKey];
    const breeze = maxRps(admission, `breeze ${hook}`);
    const base = maxRps(admission, 'baseline /validate');
    const rounds = admission.ratioRuns?.[runsKey];
    rows.push({
      target,
      measured: `${pct(ratio)}${
        breeze === undefined || base === undefined ? '' : ` (${int(breeze)} vs ${int(base)} req/s)`
      }${rounds === undefined ? '' : `; rounds ${rounds.map(pct).join(', ')}`}`,
      met: ratio >= 0.6,
      note: `${real ? 'the real `breeze serve` process' : 'the webhook app alone'}, max req/s; median of the per-round ratios (each round runs the bare node:https server, then Breeze ${hook}); req/s in brackets are the medians of each`,
    });
  }
  for (const [hook, key] of [
    ['/validate', 'validate'],
    ['/mutate', 'mutate'],
  ] as const) {
    const target = `admission p99 at 1,000 req/s ≤ 2× the bare server's (${hook})`;
    const breeze = admission?.[`breeze ${hook}`] as { at1000?: Load } | undefined;
    const bare = admission?.['baseline /validate'] as { at1000?: Load } | undefined;
    if (admission === undefined || breeze?.at1000 === undefined || bare?.at1000 === undefined) {
      rows.push(notRun(target, 'admission'));
      continue;
    }
    const ratio = admission.p99RatioAt1000?.[key] ?? breeze.at1000.p99 / Math.max(1, bare.at1000.p99);
    rows.push({
      target,
      measured: `${ratio.toFixed(2)}× (p99 ${ms(breeze.at1000.p99)} ms vs ${ms(bare.at1000.p99)} ms)`,
      met: ratio <= 2,
      note: `a fixed 1,000 req/s over the same connections; median of the per-round ratios of p99 (ms in brackets are the medians of each)`,
    });
  }

  const tenK = results.generate?.['10000'];
  const genTarget = 'generation of 10k services < 1 s';
  if (tenK === undefined || typeof tenK === 'string' || !('generate' in tenK))
    rows.push(notRun(genTarget, 'generate'));
  else {
    const g = tenK.generate;
    rows.push({
      target: genTarget,
      measured: `${ms(g.totalJsonMs)} ms (generate alone ${ms(g.generateMs)} ms)`,
      met: g.totalJsonMs < 1000,
      note: 'total = cache fill + generate + JSON serialization (what the reconciler sends), 10,000 services',
    });
  }

  const cache = results.cache;
  const incTarget = 'incremental change ≥ 100× cheaper than full';
  if (cache === undefined) rows.push(notRun(incTarget, 'cache'));
  else
    rows.push({
      target: incTarget,
      measured: `${int(cache.speedup)}× (${ms(cache.incrementalMs)} ms vs ${ms(cache.fullMs)} ms)`,
      met: cache.speedup >= 100,
      note: `one VirtualService change (affected keys + regenerate) against a full regeneration, ${int(cache.services)} services`,
    });

  const pipeline = results.pipeline;
  const pipeTarget = 'pipeline p99 ≤ debounce + 200 ms';
  if (pipeline === undefined) rows.push(notRun(pipeTarget, 'pipeline'));
  else {
    const over = pipeline.latencyMs.p99 - pipeline.debounceMs;
    rows.push({
      target: pipeTarget,
      measured: `p99 ${ms1(pipeline.latencyMs.p99)} ms = debounce ${int(pipeline.debounceMs)} ms ${over < 0 ? '−' : '+'} ${ms1(Math.abs(over))} ms`,
      met: pipeline.latencyMs.p99 <= pipeline.debounceMs + 200,
      note: `admission request → EnvoyFilter written into the fake API, ${int(pipeline.changes)} changes one at a time; the debounce is the floor`,
    });
  }

  const reconcile = results.reconcile;
  const noopTarget = 'zero writes on a no-op resync';
  if (reconcile === undefined) rows.push(notRun(noopTarget, 'reconcile'));
  else
    rows.push({
      target: noopTarget,
      measured: `${int(reconcile.noopResync.writes)} writes (${int(reconcile.noopResync.unchanged)} EnvoyFilters unchanged)`,
      met: reconcile.noopResync.writes === 0,
      note: `full resync of ${int(reconcile.services)} services right after they were written`,
    });

  const hostile = results.hostile;
  const costTarget = 'hostile request cost beyond a bare server parsing it < 50 ms (bodies up to 7 MiB)';
  const healthTarget = '/healthz p99 < 50 ms during a hostile flood';
  if (hostile === undefined) {
    rows.push(notRun(costTarget, 'hostile'), notRun(healthTarget, 'hostile'));
  } else {
    const w = hostile.worst;
    const excess = worstExcess(hostile);
    rows.push({
      target: costTarget,
      measured: `${excess === undefined ? 'no family' : `+${ms(excess.ms)} ms (${excess.family}, ${excess.detail})`}; slowest ${ms(w.breezeMs)} ms (${w.family}, ${kib(w.bodyBytes)}; baseline ${ms(w.baselineMs)} ms)${hostile.timeouts.length > 0 ? `, ${int(hostile.timeouts.length)} unanswered in 30 s` : ''}`,
      met: excess !== undefined && excess.ms < hostile.targetMs && hostile.timeouts.length === 0,
      note: `${int(hostile.cases)} fuzzed requests in ${int(hostile.fuzzSeconds)} s (${int(Object.keys(hostile.families).length)} attack families, each at full size first), one at a time, each also sent to a bare node:https server that only receives and JSON-parses it; the most Breeze took beyond the bare server on the same body, confirmed by sending each family's 3 costliest requests again 5 times (the median), since one request's time also holds whatever the process did then (receiving and parsing 7 MiB alone takes the bare server over 50 ms, so an absolute 50 ms cannot hold at the limit)`,
    });
    const h = hostile.health;
    rows.push({
      target: healthTarget,
      measured: `p99 ${ms(h.flood.p99)} ms (max ${ms(h.flood.max)} ms, ${int(h.flood.failures)} failed; quiet p99 ${ms(h.quiet.p99)} ms)`,
      met: h.flood.p99 < 50 && h.flood.failures === 0,
      note: `probes every 10 ms for ${int(h.seconds)} s while one client sends the worst body of the ${int(h.floodFamilies.length)} costliest families back to back (${int(h.floodRequests)} requests); the health port has its own thread, so a busy main thread must not slow it`,
    });
  }
  return rows;
}

/**
 * The family whose requests cost Breeze the most beyond the bare server, with what that figure
 * is: the confirmed figure (its costliest requests re-measured), else the costliest single
 * request, else (files written before per-request figures) the slowest answer less the bare
 * server's slowest.
 */
function worstExcess(h: HostileResult): { family: string; ms: number; detail: string } | undefined {
  let worst: { family: string; ms: number; detail: string } | undefined;
  for (const [family, f] of Object.entries(h.families)) {
    const e = f.excess;
    const candidate =
      e === undefined
        ? {
            family,
            ms: f.breeze.max - f.baseline.max,
            detail: `max ${ms(f.breeze.max)} vs ${ms(f.baseline.max)} ms`,
          }
        : e.confirmedMs === undefined
          ? {
              family,
              ms: e.maxMs,
              detail: `${kib(e.bodyBytes)}: ${ms(e.breezeMs)} vs ${ms(e.baselineMs)} ms`,
            }
          : {
              family,
              ms: e.confirmedMs,
              detail: `${kib(e.confirmedBodyBytes ?? 0)}, median of 5 repeats; +${ms(e.maxMs)} ms once in the fuzz`,
            };
    if (worst === undefined || candidate.ms > worst.ms) worst = candidate;
  }
  return worst;
}

/** Bytes as KiB or MiB with one decimal. */
const kib = (bytes: number): string =>
  bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;

// ---- Markdown ------------------------------------------------------------------------------

function table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string[] {
  const line = (cells: readonly (string | number)[]): string =>
    `| ${cells.map((c) => String(c).replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)];
}

/** `### Title (date)`, plus the machine when the run recorded one other than the report's. */
function heading(title: string, r: { date?: string; machine?: Machine }, m: Machine): string {
  const other = r.machine !== undefined && machineLine(r.machine) !== machineLine(m);
  return `### ${title} (${day(r.date)}${other ? `, on ${machineLine(r.machine!)}` : ''})`;
}

function admissionSection(a: AdmissionResult, m: Machine): string[] {
  const rows: (string | number)[][] = [];
  for (const [key, label] of [
    ['baseline /validate', 'bare node:https /validate'],
    ['breeze /validate', 'Breeze /validate'],
    ['breeze /mutate', 'Breeze /mutate'],
    ['app alone /validate', 'webhook app alone /validate'],
  ] as const) {
    const r = a[key] as { max: Load; at1000?: Load } | undefined;
    if (r === undefined) continue;
    const runs = r.max.runs === undefined ? '' : ` (${r.max.runs.map(int).join(', ')})`;
    const cpu = r.max.cpuMsPer1k;
    rows.push([
      label,
      `${int(r.max.rps)}${runs}`,
      cpu === undefined || cpu === null ? '-' : ms(cpu),
      r.max.p50,
      r.max.p99,
      r.at1000?.p50 ?? '-',
      r.at1000?.p99 ?? '-',
      r.max.errors + (r.at1000?.errors ?? 0),
    ]);
  }
  const setup =
    a.process === undefined
      ? []
      : [
          '',
          `Breeze: \`${a.process}\`; ${a.bodyBytes === undefined ? '' : `${int(a.bodyBytes)}-byte review, `}${a.connections ?? '?'} keep-alive TLS connections, ${a.rounds ?? '?'} alternating rounds of ${a.durationSeconds ?? '?'} s.${
            a.ratioAppAlone === undefined
              ? ''
              : ` The webhook app alone (own process, no sources): ${pct(a.ratioAppAlone)} of the bare server.`
          }`,
        ];
  return [
    heading('Admission', a, m),
    ...setup,
    '',
    ...table(
      [
        'target',
        `max req/s${a.rounds === undefined ? '' : ` (${a.rounds} runs)`}`,
        'CPU ms / 1,000 req',
        'p50 ms',
        'p99 ms',
        'p50 ms @1,000 req/s',
        'p99 ms @1,000 req/s',
        'errors',
      ],
      rows,
    ),
  ];
}

function generateSection(g: GenerateResult, m: Machine): string[] {
  const rows: string[][] = [];
  for (const [size, v] of Object.entries(g)) {
    if (v === undefined || typeof v === 'string' || !('generate' in v)) continue;
    const { generate: r, baseline: b } = v;
    rows.push([
      int(Number(size)),
      ms(r.fillMs),
      ms(r.generateMs),
      ms(r.jsonMs),
      ms(r.totalJsonMs),
      ms(b.totalJsonMs),
      ms(r.yamlMs),
      int(r.outputs),
      `${int(r.peakRssMiB)} / ${int(b.peakRssMiB)}`,
      ((r.generateMs / r.services) * 1000).toFixed(1),
    ]);
  }
  return [
    heading('Generation', g, m),
    '',
    ...table(
      [
        'services',
        'cache fill ms',
        'generate ms',
        'JSON ms',
        'total ms',
        'baseline total ms',
        'YAML ms',
        'EnvoyFilters',
        'peak RSS MiB (gen / base)',
        'generate µs/service',
      ],
      rows,
    ),
  ];
}

function cacheSection(c: CacheResult, m: Machine): string[] {
  return [
    heading('Cache', c, m),
    '',
    ...table(
      [
        'services',
        'full regeneration ms',
        'one VirtualService change ms',
        'speedup',
        'services affected',
        'EnvoyFilters regenerated',
      ],
      [
        [
          int(c.services),
          ms(c.fullMs),
          ms(c.incrementalMs),
          `${int(c.speedup)}×`,
          int(c.affectedKeys),
          int(c.regeneratedEnvoyFilters),
        ],
      ],
    ),
    ...(c.initialSync === undefined
      ? []
      : [
          '',
          ...table(
            ['initial sync', 'objects listed', 'peak RSS MiB (fake API + cache)', 'RSS before the sync MiB'],
            [
              [
                `${ms(c.initialSync.ms)} ms`,
                `${int(c.initialSync.serviceEntries)} ServiceEntries, ${int(c.initialSync.virtualServices)} VirtualServices, ${int(c.initialSync.destinationRules)} DestinationRules`,
                int(c.initialSync.peakRssMiB),
                int(c.initialSync.rssBeforeSyncMiB),
              ],
            ],
          ),
        ]),
  ];
}

function reconcileSection(r: ReconcileResult, m: Machine): string[] {
  const { fromEmpty: e, noopResync: n, singleChange: s } = r;
  return [
    heading('Reconcile', r, m),
    '',
    ...table(
      ['run', 'time ms', 'write requests', 'result'],
      [
        [
          `from empty (${int(r.services)} services)`,
          ms(e.ms),
          int(e.writes),
          `${int(e.created)} EnvoyFilters created`,
        ],
        ['no-op resync', ms(n.ms), int(n.writes), `${int(n.unchanged)} unchanged`],
        ['one VirtualService change', ms(s.ms), int(s.writes), `${int(s.updated)} updated`],
      ],
    ),
  ];
}

function pipelineSection(p: PipelineReport, m: Machine): string[] {
  const l = p.latencyMs;
  return [
    heading('Pipeline', p, m),
    '',
    ...table(
      [
        'changes',
        'debounce ms',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        'mean ms',
        'p99 − debounce ms',
        'admission p50 / p99 ms',
        'EnvoyFilter writes',
      ],
      [
        [
          `${int(p.changes)} (${int(p.creates)} creates, ${int(p.updates)} updates)`,
          int(p.debounceMs),
          ms1(l.p50),
          ms1(l.p90),
          ms1(l.p99),
          ms1(l.max),
          ms1(l.mean),
          ms1(p.p99OverDebounceMs),
          `${ms1(p.admissionMs.p50)} / ${ms1(p.admissionMs.p99)}`,
          `${int(p.envoyFilterWrites)} (${int(p.changesWithOneWrite)} changes with exactly one)`,
        ],
      ],
    ),
  ];
}

function hostileSection(h: HostileResult, m: Machine): string[] {
  const rows = Object.entries(h.families).map(([family, f]) => [
    family,
    int(f.breeze.count),
    kib(f.maxBodyBytes),
    `${ms(f.breeze.p99)} / ${ms(f.breeze.max)}`,
    `${ms(f.baseline.p99)} / ${ms(f.baseline.max)}`,
    `${f.ratioMax.toFixed(1)}×`,
    f.excess === undefined
      ? 'n/a'
      : `${ms(f.excess.p99Ms)} / ${ms(f.excess.maxMs)}${f.excess.confirmedMs === undefined ? '' : ` / ${ms(f.excess.confirmedMs)}`}`,
    kib(f.maxAnswerBytes),
    Object.entries(f.statuses)
      .map(([s, n]) => `${s}: ${int(n)}`)
      .join(', '),
  ]);
  const hl = h.health;
  return [
    heading('Hostile input', h, m),
    '',
    ...table(
      [
        'attack family',
        'requests',
        'largest body',
        'Breeze p99 / max ms',
        'baseline p99 / max ms',
        'max ratio',
        'Breeze − baseline, same body: p99 / max / confirmed ms',
        'largest answer',
        'answers',
      ],
      rows,
    ),
    '',
    ...table(
      ['/healthz', 'probes', 'p50 ms', 'p99 ms', 'max ms', 'failed'],
      [
        [
          'quiet',
          int(hl.quiet.count),
          ms(hl.quiet.p50),
          ms(hl.quiet.p99),
          ms(hl.quiet.max),
          int(hl.quiet.failures),
        ],
        [
          `hostile flood (${hl.floodFamilies.join(', ')})`,
          int(hl.flood.count),
          ms(hl.flood.p50),
          ms(hl.flood.p99),
          ms(hl.flood.max),
          int(hl.flood.failures),
        ],
      ],
    ),
  ];
}

/** latest.md: the date and machine, the targets, then one short table per benchmark that has results. */
export function renderMarkdown(report: Report): string {
  const { results, machine: m } = report;
  const out: string[] = [
    `Report of ${day(report.date)} on ${machineLine(m)}. Each section is dated by its own run.`,
    '',
    ...table(
      ['target', 'measured', 'met'],
      report.targets.map((t) => [t.target, t.measured, t.met ? 'yes' : '**no**']),
    ),
    '',
    ...report.targets.map((t) => `- ${t.target}: ${t.note}.`),
  ];
  const sections: (string[] | undefined)[] = [
    results.admission && admissionSection(results.admission, m),
    results.generate && generateSection(results.generate, m),
    results.cache && cacheSection(results.cache, m),
    results.reconcile && reconcileSection(results.reconcile, m),
    results.pipeline && pipelineSection(results.pipeline, m),
    results.hostile && hostileSection(results.hostile, m),
  ];
  for (const s of sections) if (s !== undefined) out.push('', ...s);
  return `${out.join('\n')}\n`;
}

export const START_MARKER = '<!-- bench:start -->';
export const END_MARKER = '<!-- bench:end -->';

/** Replaces what lies between the bench markers of `readme` with `content`; throws without both markers. */
export function replaceBetweenMarkers(readme: string, content: string): string {
  const start = readme.indexOf(START_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (start < 0 || end < 0 || end < start)
    throw new Error(`README.md needs ${START_MARKER} followed by ${END_MARKER}`);
  return `${readme.slice(0, start + START_MARKER.length)}\n\n${content.trim()}\n\n${readme.slice(end)}`;
}
