// `breeze generate --check` runs both ends of the support range and names the end that fails:
// the real schema for the examples, and a schema module with one end broken or one end failing
// (through t.mockImport) for the wiring.
import t from 'tap';
import { runGenerate } from '../../src/cli/generate.js';
import * as schema from '../../src/envoy/schema.js';
import { BreezeError } from '../../src/errors.js';

type Run = typeof runGenerate;

async function run(fn: Run, argv: string[]) {
  let out = '';
  const err: string[] = [];
  const summary = await fn(
    argv,
    (s) => (out += s),
    (l) => err.push(l),
  );
  return { out, err, summary };
}

t.test('the examples pass --check at both ends', async (t) => {
  const { err, summary } = await run(runGenerate, ['-f', 'examples/zookeeper.yaml', '--check']);
  t.same(err, []);
  t.equal(summary.exitCode, 0);
  t.ok(summary.envoyFilters > 0);
  // Both ends were loaded by the check.
  for (const end of schema.SCHEMA_ENDS) t.ok(schema.schemaLoadMillis(end) !== undefined, `${end} loaded`);
});

t.test('a problem at one end is printed with that end and fails the run', async (t) => {
  const seen: (readonly string[])[] = [];
  const { runGenerate: mocked } = await t.mockImport<typeof import('../../src/cli/generate.js')>(
    '../../src/cli/generate.js',
    {
      '../../src/envoy/schema.js': {
        ...schema,
        checkEnvoyFilterAtEnds: (_ef: unknown, _o: unknown, ends: readonly string[]) => {
          seen.push(ends);
          return [`${schema.schemaEndLabel('oldest')}: spec.x: field needs a newer Envoy`];
        },
      },
    },
  );
  const { err, summary } = await run(mocked, ['-f', 'examples/zookeeper.yaml', '--check']);
  t.equal(summary.exitCode, 1);
  t.ok(err.length > 0);
  t.match(
    err[0],
    /^EnvoyFilter breeze-\S+: oldest end \(Envoy 1\.28 floor; envoy-api-oldest = @grpc\/grpc-js-xds@1\.10\.1, [^)]*\): spec\.x: field needs a newer Envoy$/,
  );
  t.same(seen[0], ['oldest', 'newest'], 'both ends checked');
});

t.test('an end whose protos cannot be loaded is named, and the other end still runs', async (t) => {
  const seen: (readonly string[])[] = [];
  const missing = new BreezeError(
    'SCHEMA',
    "the oldest end's protos are missing: package envoy-api-oldest is not installed",
  );
  const { runGenerate: mocked } = await t.mockImport<typeof import('../../src/cli/generate.js')>(
    '../../src/cli/generate.js',
    {
      '../../src/envoy/schema.js': {
        ...schema,
        schemaRoot: (end: schema.SchemaEnd) => {
          if (end === 'oldest') throw missing;
          return schema.schemaRoot(end);
        },
        checkEnvoyFilterAtEnds: (
          ef: Record<string, unknown>,
          o: object,
          ends: readonly schema.SchemaEnd[],
        ) => {
          seen.push(ends);
          return schema.checkEnvoyFilterAtEnds(ef, o, ends);
        },
      },
    },
  );
  const { err, summary } = await run(mocked, ['-f', 'examples/zookeeper.yaml', '--check']);
  t.equal(summary.exitCode, 1);
  t.same(err, [`--check: ${schema.schemaEndLabel('oldest')}: ${missing.message}`]);
  t.ok(seen.length > 0);
  for (const ends of seen) t.same(ends, ['newest']);
});
