// The benchmark report: targets from real-shaped results, the Markdown, and the README markers.
import t from 'tap';
import {
  computeTargets,
  int,
  ms,
  renderMarkdown,
  replaceBetweenMarkers,
  type Machine,
  type Results,
} from '../../bench/report.js';

const machine: Machine = {
  cpu: 'AMD EPYC',
  cores: 2,
  memoryGiB: 23.5,
  node: 'v20.20.2',
  platform: 'linux/x64',
};

const load = (rps: number, p99: number, runs: number[], cpuMsPer1k: number) => ({
  max: { rps, p50: 0, p99: 1, errors: 0, runs, cpuMsPer1k },
  at1000: { rps: 1000, p50: 0, p99, errors: 0, runs: [1000, 1000, 1000] },
});

const genRun = (mode: string, over: Record<string, number>) => ({
  mode,
  services: 10000,
  fillMs: 138.97469000006095,
  generateMs: 399.50237599993125,
  jsonMs: 99.5386109999381,
  yamlMs: 3000.762556000147,
  totalJsonMs: 638.0156769999303,
  outputs: 20000,
  problems: 0,
  jsonBytes: 20775746,
  yamlBytes: 24911796,
  peakRssMiB: 227.0078125,
  ...over,
});

/** Shaped as bench/results/*.json are (figures from the 2026-11-21 runs). */
const results: Results = {
  admission: {
    date: '2026-11-21T21:35:04.470Z',
    process: 'node dist/cli/main.js serve --mode local --log-level warn',
    bodyBytes: 3555,
    durationSeconds: 5,
    connections: 16,
    rounds: 3,
    'baseline /validate': load(34019.64, 2, [34532, 34020, 30801], 130.5),
    'breeze /validate': load(21296.73, 3, [21297, 20767, 22799], 210.25),
    'breeze /mutate': load(21862.55, 4, [22411, 19929, 21863], 200),
    'app alone /validate': { max: { rps: 23000, p50: 0, p99: 1, errors: 0, runs: [23000, 22000, 24000] } },
    ratioValidate: 0.6260127973135519,
    ratioMutate: 0.6426449545027519,
    ratioAppAlone: 0.7,
    ratioRuns: { validate: [0.617, 0.626, 0.74], mutate: [0.649, 0.643, 0.586] },
    p99RatioAt1000: { validate: 1.5, mutate: 1.8 },
  },
  generate: {
    '10000': {
      baseline: genRun('baseline', {
        fillMs: 155.13565099984407,
        generateMs: 0.00953999999910593,
        totalJsonMs: 182.31650099996477,
        yamlMs: 1027.4692540001124,
        outputs: 14000,
        peakRssMiB: 165.34375,
      }),
      generate: genRun('generate', {}),
    },
    date: '2026-11-21T21:52:45.217Z',
  },
  cache: {
    date: '2026-11-21T22:23:14.991Z',
    services: 10000,
    rounds: 7,
    fullMs: 291.18237799999997,
    incrementalMs: 0.29615000000012515,
    speedup: 983.2259935839166,
    affectedKeys: 1,
    regeneratedEnvoyFilters: 2,
    initialSync: {
      ms: 489.4,
      serviceEntries: 10000,
      virtualServices: 5000,
      destinationRules: 5000,
      peakRssMiB: 306.2,
      rssBeforeSyncMiB: 230.1,
    },
  },
  reconcile: {
    date: '2026-11-21T23:11:51.524Z',
    services: 10000,
    fromEmpty: { ms: 9045.69549, writes: 20000, requests: 20001, created: 20000, objects: 20000 },
    noopResync: { ms: 745.9429929999988, writes: 0, unchanged: 20000 },
    singleChange: { ms: 9.153516000000309, writes: 1, updated: 1, keys: 1 },
  },
  pipeline: {
    date: '2026-11-21T23:35:18.470Z',
    machine,
    changes: 200,
    creates: 67,
    updates: 133,
    debounceMs: 500,
    latencyMs: { p50: 506.21, p90: 509.2, p99: 512.64, max: 530.08, mean: 507.03 },
    admissionMs: { p50: 2.2, p99: 4.41 },
    p99OverDebounceMs: 12.64,
    targetMs: 700,
    envoyFilterWrites: 200,
    changesWithOneWrite: 200,
  },
  hostile: {
    date: '2026-12-03T15:02:11.000Z',
    seed: 42,
    fuzzSeconds: 60,
    bodyLimitBytes: 7340032,
    targetMs: 50,
    cases: 420,
    timeouts: [],
    breeze: { count: 420, p50: 2.1, p99: 31.7, max: 44.2 },
    baseline: { count: 420, p50: 1.2, p99: 29.8, max: 40.5 },
    worst: {
      family: 'huge-string',
      fixture: 'serviceentry/allow-dubbo.v1.json',
      bodyBytes: 7330000,
      breezeMs: 44.2,
      baselineMs: 40.5,
      status: '200',
    },
    families: {
      nesting: {
        breeze: { count: 30, p50: 1.5, p99: 6.25, max: 6.25 },
        baseline: { count: 30, p50: 1.1, p99: 5.5, max: 5.5 },
        ratioP99: 1.1,
        ratioMax: 1.1,
        maxBodyBytes: 181350,
        maxAnswerBytes: 310,
        statuses: { '200': 30 },
        worst: {
          fixture: 'serviceentry/allow-dubbo.v1.json',
          bodyBytes: 181350,
          breezeMs: 6.3,
          baselineMs: 5.5,
        },
      },
      'huge-string': {
        breeze: { count: 30, p50: 12.5, p99: 44.2, max: 44.2 },
        baseline: { count: 30, p50: 11.25, p99: 40.5, max: 40.5 },
        ratioP99: 1.1,
        ratioMax: 1.1,
        maxBodyBytes: 7330000,
        maxAnswerBytes: 512,
        statuses: { '200': 29, '413': 1 },
        worst: {
          fixture: 'serviceentry/allow-dubbo.v1.json',
          bodyBytes: 7330000,
          breezeMs: 44.2,
          baselineMs: 40.5,
        },
        excess: {
          p99Ms: 3.5,
          maxMs: 3.7,
          fixture: 'serviceentry/allow-dubbo.v1.json',
          bodyBytes: 7330000,
          breezeMs: 44.2,
          baselineMs: 40.5,
          confirmedMs: 2.1,
          confirmedFixture: 'serviceentry/allow-dubbo.v1.json',
          confirmedBodyBytes: 7330000,
        },
      },
    },
    health: {
      seconds: 10,
      quiet: { count: 900, p50: 0.61, p99: 1.52, max: 3.1, failures: 0 },
      flood: { count: 700, p50: 1.9, p99: 38.4, max: 47.9, failures: 0 },
      floodFamilies: ['huge-string', 'nesting'],
      floodRequests: 230,
      floodStatuses: { '200': 230 },
      floodLatency: { count: 230, p50: 30.1, p99: 45.2, max: 48.3 },
    },
    breezeExitCode: null,
  },
};

t.test('number formats', async (t) => {
  t.equal(int(34019.64), '34,020');
  t.equal(int(983.2), '983');
  t.equal(int(1234567), '1,234,567');
  t.equal(ms(0.29615), '0.30');
  t.equal(ms(99.53), '99.5');
  t.equal(ms(9045.69), '9,046');
});

t.test('targets from the results', async (t) => {
  t.strictSame(
    computeTargets(results).map(({ target, measured, met }) => ({ target, measured, met })),
    [
      {
        target: 'admission throughput ≥ 60% of a bare TLS server (/validate; aim 80%)',
        measured: '62.6% (21,297 vs 34,020 req/s); rounds 61.7%, 62.6%, 74.0%',
        met: true,
      },
      {
        target: 'admission throughput ≥ 60% of a bare TLS server (/mutate; aim 80%)',
        measured: '64.3% (21,863 vs 34,020 req/s); rounds 64.9%, 64.3%, 58.6%',
        met: true,
      },
      {
        target: "admission p99 at 1,000 req/s ≤ 2× the bare server's (/validate)",
        measured: '1.50× (p99 3.0 ms vs 2.0 ms)',
        met: true,
      },
      {
        target: "admission p99 at 1,000 req/s ≤ 2× the bare server's (/mutate)",
        measured: '1.80× (p99 4.0 ms vs 2.0 ms)',
        met: true,
      },
      { target: 'generation of 10k services < 1 s', measured: '638 ms (generate alone 400 ms)', met: true },
      {
        target: 'incremental change ≥ 100× cheaper than full',
        measured: '983× (0.30 ms vs 291 ms)',
        met: true,
      },
      {
        target: 'pipeline p99 ≤ debounce + 200 ms',
        measured: 'p99 512.6 ms = debounce 500 ms + 12.6 ms',
        met: true,
      },
      {
        target: 'zero writes on a no-op resync',
        measured: '0 writes (20,000 EnvoyFilters unchanged)',
        met: true,
      },
      {
        target: 'hostile request cost beyond a bare server parsing it < 50 ms (bodies up to 7 MiB)',
        measured:
          '+2.1 ms (huge-string, 7.0 MiB, median of 5 repeats; +3.7 ms once in the fuzz); slowest 44.2 ms (huge-string, 7.0 MiB; baseline 40.5 ms)',
        met: true,
      },
      {
        target: '/healthz p99 < 50 ms during a hostile flood',
        measured: 'p99 38.4 ms (max 47.9 ms, 0 failed; quiet p99 1.5 ms)',
        met: true,
      },
    ],
  );
});

t.test('targets missed, and results missing', async (t) => {
  const slow: Results = {
    ...results,
    admission: {
      ...results.admission!,
      ratioMutate: 0.5512,
      ratioRuns: undefined,
      p99RatioAt1000: { validate: 1.5, mutate: 2.5 },
    },
    pipeline: { ...results.pipeline!, latencyMs: { ...results.pipeline!.latencyMs, p99: 700.01 } },
    reconcile: { ...results.reconcile!, noopResync: { ms: 800, writes: 3, unchanged: 19997 } },
    cache: undefined,
    hostile: {
      ...results.hostile!,
      worst: { ...results.hostile!.worst, family: 'nesting', bodyBytes: 3_980_000, breezeMs: 14_831 },
      families: {
        ...results.hostile!.families,
        nesting: {
          ...results.hostile!.families.nesting!,
          breeze: { count: 30, p50: 1.5, p99: 14_831, max: 14_831 },
        },
      },
      timeouts: [{ family: 'port-name', fixture: 'x', bytes: 7_000_000, recoveredMs: 190_000 }],
      health: {
        ...results.hostile!.health,
        flood: { count: 2, p50: 127, p99: 10_002, max: 10_002, failures: 1 },
      },
    },
  };
  const rows = computeTargets(slow);
  t.strictSame(
    rows.filter((r) => !r.met).map((r) => [r.target, r.measured, r.note]),
    [
      [
        'admission throughput ≥ 60% of a bare TLS server (/mutate; aim 80%)',
        '55.1% (21,863 vs 34,020 req/s)',
        'the real `breeze serve` process, max req/s; median of the per-round ratios (each round runs the bare node:https server, then Breeze /mutate); req/s in brackets are the medians of each',
      ],
      [
        "admission p99 at 1,000 req/s ≤ 2× the bare server's (/mutate)",
        '2.50× (p99 4.0 ms vs 2.0 ms)',
        'a fixed 1,000 req/s over the same connections; median of the per-round ratios of p99 (ms in brackets are the medians of each)',
      ],
      [
        'incremental change ≥ 100× cheaper than full',
        'not run',
        'no bench/results/cache.json: run `npm run bench -- cache`',
      ],
      [
        'pipeline p99 ≤ debounce + 200 ms',
        'p99 700.0 ms = debounce 500 ms + 200.0 ms',
        'admission request → EnvoyFilter written into the fake API, 200 changes one at a time; the debounce is the floor',
      ],
      [
        'zero writes on a no-op resync',
        '3 writes (19,997 EnvoyFilters unchanged)',
        'full resync of 10,000 services right after they were written',
      ],
      [
        'hostile request cost beyond a bare server parsing it < 50 ms (bodies up to 7 MiB)',
        '+14,826 ms (nesting, max 14,831 vs 5.5 ms); slowest 14,831 ms (nesting, 3.8 MiB; baseline 40.5 ms), 1 unanswered in 30 s',
        "420 fuzzed requests in 60 s (2 attack families, each at full size first), one at a time, each also sent to a bare node:https server that only receives and JSON-parses it; the most Breeze took beyond the bare server on the same body, confirmed by sending each family's 3 costliest requests again 5 times (the median), since one request's time also holds whatever the process did then (receiving and parsing 7 MiB alone takes the bare server over 50 ms, so an absolute 50 ms cannot hold at the limit)",
      ],
      [
        '/healthz p99 < 50 ms during a hostile flood',
        'p99 10,002 ms (max 10,002 ms, 1 failed; quiet p99 1.5 ms)',
        'probes every 10 ms for 10 s while one client sends the worst body of the 2 costliest families back to back (230 requests); the health port has its own thread, so a busy main thread must not slow it',
      ],
    ],
  );
  const md = renderMarkdown({ date: '2026-11-22T08:00:00.000Z', machine, results: slow, targets: rows });
  t.match(md, '| pipeline p99 ≤ debounce + 200 ms | p99 700.0 ms = debounce 500 ms + 200.0 ms | **no** |\n');
  t.match(md, '| incremental change ≥ 100× cheaper than full | not run | **no** |\n');
  t.notMatch(md, '### Cache', 'no section for a bench without results');
  t.equal(
    computeTargets({}).filter((r) => r.measured === 'not run').length,
    10,
    'nothing run: every row says so',
  );
});

t.test('the Markdown report', async (t) => {
  const other: Machine = { ...machine, cpu: 'Apple M2', cores: 8, memoryGiB: 16, platform: 'darwin/arm64' };
  const md = renderMarkdown({
    date: '2026-11-22T08:00:00.000Z',
    machine,
    results: { ...results, cache: { ...results.cache!, machine: other } },
    targets: computeTargets(results),
  });
  t.equal(
    md,
    [
      'Report of 2026-11-22 08:00 UTC on AMD EPYC (2 cores, 23.5 GiB), Node v20.20.2, linux/x64. Each section is dated by its own run.',
      '',
      '| target | measured | met |',
      '| --- | --- | --- |',
      '| admission throughput ≥ 60% of a bare TLS server (/validate; aim 80%) | 62.6% (21,297 vs 34,020 req/s); rounds 61.7%, 62.6%, 74.0% | yes |',
      '| admission throughput ≥ 60% of a bare TLS server (/mutate; aim 80%) | 64.3% (21,863 vs 34,020 req/s); rounds 64.9%, 64.3%, 58.6% | yes |',
      "| admission p99 at 1,000 req/s ≤ 2× the bare server's (/validate) | 1.50× (p99 3.0 ms vs 2.0 ms) | yes |",
      "| admission p99 at 1,000 req/s ≤ 2× the bare server's (/mutate) | 1.80× (p99 4.0 ms vs 2.0 ms) | yes |",
      '| generation of 10k services < 1 s | 638 ms (generate alone 400 ms) | yes |',
      '| incremental change ≥ 100× cheaper than full | 983× (0.30 ms vs 291 ms) | yes |',
      '| pipeline p99 ≤ debounce + 200 ms | p99 512.6 ms = debounce 500 ms + 12.6 ms | yes |',
      '| zero writes on a no-op resync | 0 writes (20,000 EnvoyFilters unchanged) | yes |',
      '| hostile request cost beyond a bare server parsing it < 50 ms (bodies up to 7 MiB) | +2.1 ms (huge-string, 7.0 MiB, median of 5 repeats; +3.7 ms once in the fuzz); slowest 44.2 ms (huge-string, 7.0 MiB; baseline 40.5 ms) | yes |',
      '| /healthz p99 < 50 ms during a hostile flood | p99 38.4 ms (max 47.9 ms, 0 failed; quiet p99 1.5 ms) | yes |',
      '',
      '- admission throughput ≥ 60% of a bare TLS server (/validate; aim 80%): the real `breeze serve` process, max req/s; median of the per-round ratios (each round runs the bare node:https server, then Breeze /validate); req/s in brackets are the medians of each.',
      '- admission throughput ≥ 60% of a bare TLS server (/mutate; aim 80%): the real `breeze serve` process, max req/s; median of the per-round ratios (each round runs the bare node:https server, then Breeze /mutate); req/s in brackets are the medians of each.',
      "- admission p99 at 1,000 req/s ≤ 2× the bare server's (/validate): a fixed 1,000 req/s over the same connections; median of the per-round ratios of p99 (ms in brackets are the medians of each).",
      "- admission p99 at 1,000 req/s ≤ 2× the bare server's (/mutate): a fixed 1,000 req/s over the same connections; median of the per-round ratios of p99 (ms in brackets are the medians of each).",
      '- generation of 10k services < 1 s: total = cache fill + generate + JSON serialization (what the reconciler sends), 10,000 services.',
      '- incremental change ≥ 100× cheaper than full: one VirtualService change (affected keys + regenerate) against a full regeneration, 10,000 services.',
      '- pipeline p99 ≤ debounce + 200 ms: admission request → EnvoyFilter written into the fake API, 200 changes one at a time; the debounce is the floor.',
      '- zero writes on a no-op resync: full resync of 10,000 services right after they were written.',
      "- hostile request cost beyond a bare server parsing it < 50 ms (bodies up to 7 MiB): 420 fuzzed requests in 60 s (2 attack families, each at full size first), one at a time, each also sent to a bare node:https server that only receives and JSON-parses it; the most Breeze took beyond the bare server on the same body, confirmed by sending each family's 3 costliest requests again 5 times (the median), since one request's time also holds whatever the process did then (receiving and parsing 7 MiB alone takes the bare server over 50 ms, so an absolute 50 ms cannot hold at the limit).",
      '- /healthz p99 < 50 ms during a hostile flood: probes every 10 ms for 10 s while one client sends the worst body of the 2 costliest families back to back (230 requests); the health port has its own thread, so a busy main thread must not slow it.',
      '',
      '### Admission (2026-11-21 21:35 UTC)',
      '',
      'Breeze: `node dist/cli/main.js serve --mode local --log-level warn`; 3,555-byte review, 16 keep-alive TLS connections, 3 alternating rounds of 5 s. The webhook app alone (own process, no sources): 70.0% of the bare server.',
      '',
      '| target | max req/s (3 runs) | CPU ms / 1,000 req | p50 ms | p99 ms | p50 ms @1,000 req/s | p99 ms @1,000 req/s | errors |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      '| bare node:https /validate | 34,020 (34,532, 34,020, 30,801) | 131 | 0 | 1 | 0 | 2 | 0 |',
      '| Breeze /validate | 21,297 (21,297, 20,767, 22,799) | 210 | 0 | 1 | 0 | 3 | 0 |',
      '| Breeze /mutate | 21,863 (22,411, 19,929, 21,863) | 200 | 0 | 1 | 0 | 4 | 0 |',
      '| webhook app alone /validate | 23,000 (23,000, 22,000, 24,000) | - | 0 | 1 | - | - | 0 |',
      '',
      '### Generation (2026-11-21 21:52 UTC)',
      '',
      '| services | cache fill ms | generate ms | JSON ms | total ms | baseline total ms | YAML ms | EnvoyFilters | peak RSS MiB (gen / base) | generate µs/service |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      '| 10,000 | 139 | 400 | 99.5 | 638 | 182 | 3,001 | 20,000 | 227 / 165 | 40.0 |',
      '',
      '### Cache (2026-11-21 22:23 UTC, on Apple M2 (8 cores, 16.0 GiB), Node v20.20.2, darwin/arm64)',
      '',
      '| services | full regeneration ms | one VirtualService change ms | speedup | services affected | EnvoyFilters regenerated |',
      '| --- | --- | --- | --- | --- | --- |',
      '| 10,000 | 291 | 0.30 | 983× | 1 | 2 |',
      '',
      '| initial sync | objects listed | peak RSS MiB (fake API + cache) | RSS before the sync MiB |',
      '| --- | --- | --- | --- |',
      '| 489 ms | 10,000 ServiceEntries, 5,000 VirtualServices, 5,000 DestinationRules | 306 | 230 |',
      '',
      '### Reconcile (2026-11-21 23:11 UTC)',
      '',
      '| run | time ms | write requests | result |',
      '| --- | --- | --- | --- |',
      '| from empty (10,000 services) | 9,046 | 20,000 | 20,000 EnvoyFilters created |',
      '| no-op resync | 746 | 0 | 20,000 unchanged |',
      '| one VirtualService change | 9.2 | 1 | 1 updated |',
      '',
      '### Pipeline (2026-11-21 23:35 UTC)',
      '',
      '| changes | debounce ms | p50 ms | p90 ms | p99 ms | max ms | mean ms | p99 − debounce ms | admission p50 / p99 ms | EnvoyFilter writes |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      '| 200 (67 creates, 133 updates) | 500 | 506.2 | 509.2 | 512.6 | 530.1 | 507.0 | 12.6 | 2.2 / 4.4 | 200 (200 changes with exactly one) |',
      '',
      '### Hostile input (2026-12-03 15:02 UTC)',
      '',
      '| attack family | requests | largest body | Breeze p99 / max ms | baseline p99 / max ms | max ratio | Breeze − baseline, same body: p99 / max / confirmed ms | largest answer | answers |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      '| nesting | 30 | 177.1 KiB | 6.3 / 6.3 | 5.5 / 5.5 | 1.1× | n/a | 0.3 KiB | 200: 30 |',
      '| huge-string | 30 | 7.0 MiB | 44.2 / 44.2 | 40.5 / 40.5 | 1.1× | 3.5 / 3.7 / 2.1 | 0.5 KiB | 200: 29, 413: 1 |',
      '',
      '| /healthz | probes | p50 ms | p99 ms | max ms | failed |',
      '| --- | --- | --- | --- | --- | --- |',
      '| quiet | 900 | 0.61 | 1.5 | 3.1 | 0 |',
      '| hostile flood (huge-string, nesting) | 700 | 1.9 | 38.4 | 47.9 | 0 |',
      '',
    ].join('\n'),
  );
});

t.test('README markers', async (t) => {
  const readme = [
    '## Benchmark',
    '',
    'Prose before.',
    '',
    '<!-- bench:start -->',
    'old table',
    '<!-- bench:end -->',
    '',
    '### Method',
    '',
  ].join('\n');
  const once = replaceBetweenMarkers(readme, '| target | measured | met |\n| --- | --- | --- |\n');
  t.equal(
    once,
    [
      '## Benchmark',
      '',
      'Prose before.',
      '',
      '<!-- bench:start -->',
      '',
      '| target | measured | met |',
      '| --- | --- | --- |',
      '',
      '<!-- bench:end -->',
      '',
      '### Method',
      '',
    ].join('\n'),
  );
  t.equal(
    replaceBetweenMarkers(once, '| target | measured | met |\n| --- | --- | --- |\n'),
    once,
    'idempotent',
  );
  t.equal(
    replaceBetweenMarkers('<!-- bench:start --><!-- bench:end -->', 'x'),
    '<!-- bench:start -->\n\nx\n\n<!-- bench:end -->',
    'empty block filled',
  );
  t.throws(() => replaceBetweenMarkers('no markers here', 'x'), /README\.md needs <!-- bench:start -->/);
  t.throws(
    () => replaceBetweenMarkers('<!-- bench:end -->\n<!-- bench:start -->', 'x'),
    /needs <!-- bench:start --> followed by <!-- bench:end -->/,
  );
});
