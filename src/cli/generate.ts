import { parseArgs } from 'node:util';
import { moreProblems } from '../admission/findings.js';
import { VALIDATORS } from '../admission/validators/index.js';
import { ConfigStore } from '../cache/store.js';
import { checkEnvoyFilterAtEnds, SCHEMA_ENDS, schemaEndLabel, schemaRoot } from '../envoy/schema.js';
import { BreezeError } from '../errors.js';
import { asRecord, asString, type JsonRecord } from '../model/json.js';
import { handledKindOf, metaOf } from '../model/kinds.js';
import { isDnsName } from '../model/names.js';
import { formatProblem, generateAll } from '../protocols/generate.js';
import { isRedisAuthMode } from '../protocols/redis/authmode.js';
import { toJsonList, toYamlStream } from '../protocols/output.js';
import { DEFAULT_PROTOCOLS, parseProtocols, switchAdvice } from '../protocols/registry.js';
import { PROTOCOL_LABEL, SERVICE_ANNOTATION } from '../protocols/shared/envoyfilter.js';
import { PROTOCOLS, type Protocol } from '../model/protocol.js';
import { loadManifests } from '../sources/file.js';

export const GENERATE_USAGE = `Usage: breeze generate -f PATH [-f PATH ...] [-o yaml|json] [--check]
                      [--root-namespace istio-system] [--envoyfilter-namespace-scope] [--domain cluster.local]
                      [--redis-auth-mode inline|file] [--protocols dubbo,thrift,redis,zookeeper]

Reads manifests (files or directories, multi-document YAML): ServiceEntries, Kubernetes Services,
VirtualServices, DestinationRules, RedisServices, RedisDestinations and Secrets. Prints the
EnvoyFilters Breeze generates for them as a YAML stream (-o yaml, the default) or a JSON List.
--check also checks every generated typed config against Envoy's protos at both ends of the
support range (the Envoy 1.28 floor and the newest Envoy API on npm), naming the end that fails.
--redis-auth-mode file: Redis passwords from Secrets are read by Envoy from the mounted Secret
(README "Redis passwords") instead of being written into the EnvoyFilters.
--protocols: the protocols that get EnvoyFilters (default dubbo,thrift,redis,zookeeper; add kafka to
get Kafka filters, scoped to proxies with the metadata BREEZE_KAFKA_BROKER=true, README "Kafka").
A port of a protocol that is off, or a filter only some proxies get, is a note; it does not fail.
Problems go to stderr, one line each; exit 1 on invalid input or any generation error.`;

export interface GenerateSummary {
  readonly exitCode: 0 | 1;
  readonly envoyFilters: number;
}

/** `breeze generate`: the output to `out` (one string), problems to `err` line by line. */
export async function runGenerate(
  argv: readonly string[],
  out: (text: string) => void,
  err: (line: string) => void,
): Promise<GenerateSummary> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: {
        file: { type: 'string', short: 'f', multiple: true },
        output: { type: 'string', short: 'o', default: 'yaml' },
        check: { type: 'boolean', default: false },
        'root-namespace': { type: 'string', default: 'istio-system' },
        'envoyfilter-namespace-scope': { type: 'boolean', default: false },
        domain: { type: 'string', default: 'cluster.local' },
        'redis-auth-mode': { type: 'string', default: 'inline' },
        protocols: { type: 'string', default: DEFAULT_PROTOCOLS },
      },
      allowPositionals: true,
    }));
  } catch (e) {
    throw new BreezeError('BAD_FLAG', `${(e as Error).message}\n\n${GENERATE_USAGE}`);
  }
  const paths = [...(values.file ?? []), ...positionals];
  if (paths.length === 0) throw new BreezeError('BAD_FLAG', `no manifests given\n\n${GENERATE_USAGE}`);
  if (values.output !== 'yaml' && values.output !== 'json') {
    throw new BreezeError('BAD_FLAG', `-o: ${JSON.stringify(values.output)} must be yaml or json`);
  }
  for (const flag of ['domain', 'root-namespace'] as const) {
    if (!isDnsName(values[flag]))
      throw new BreezeError('BAD_FLAG', `--${flag}: ${JSON.stringify(values[flag])} must be a DNS name`);
  }

  const redisAuthMode = values['redis-auth-mode'];
  if (!isRedisAuthMode(redisAuthMode)) {
    throw new BreezeError(
      'BAD_FLAG',
      `--redis-auth-mode: ${JSON.stringify(redisAuthMode)} must be inline or file`,
    );
  }

  const protocols = parseProtocols(values.protocols);
  if ('error' in protocols)
    throw new BreezeError('BAD_FLAG', `--protocols: ${JSON.stringify(values.protocols)} ${protocols.error}`);

  const loaded = await loadManifests(paths);
  let failed = loaded.errors.length > 0;
  for (const e of loaded.errors) err(`${e.file}: ${e.message}`);
  for (const w of loaded.warnings) err(`${w.file}: warning: ${w.message}`);
  const store = new ConfigStore(values.domain);
  for (const { object } of loaded.objects) store.upsert(object, 'file');
  // Invalid input is reported as the admission webhook would deny it, with file and field.
  for (const { file, object } of loaded.objects) {
    const kind = handledKindOf(object);
    if (kind === undefined) continue;
    const meta = metaOf(object);
    const findings = VALIDATORS[kind](object, { view: store, namespace: meta.namespace });
    for (const p of findings.problems)
      err(`${file}: ${kind} ${meta.namespace}/${meta.name}: ${p.path}: ${p.message}`);
    if (findings.problemsNotKept !== undefined)
      err(`${file}: ${kind} ${meta.namespace}/${meta.name}: ${moreProblems(findings.problemsNotKept)}`);
    if (findings.problems.length > 0) failed = true;
  }

  const result = generateAll(store, {
    rootNamespace: values['root-namespace'],
    namespaceScope: values['envoyfilter-namespace-scope'],
    domain: values.domain,
    redisAuthMode,
    protocols,
  });
  for (const p of result.problems) err(formatProblem(p));
  for (const n of result.notes) err(`note: ${formatProblem(n)}`);
  for (const line of scopeNotes(result.envoyFilters, protocols)) err(`note: ${line}`);
  if (result.problems.length > 0) failed = true;
  if (values.check) {
    // Both ends of the support range (Envoy 1.28 floor, newest API on npm); an end whose protos
    // cannot be loaded fails the check by name, and the other end still runs.
    const usable = SCHEMA_ENDS.filter((end) => {
      try {
        schemaRoot(end);
        return true;
      } catch (e) {
        err(`--check: ${schemaEndLabel(end)}: ${(e as Error).message}`);
        failed = true;
        return false;
      }
    });
    for (const ef of usable.length > 0 ? result.envoyFilters : []) {
      const name = asString(asRecord(ef.metadata)?.name) ?? '';
      for (const p of checkEnvoyFilterAtEnds(ef, {}, usable)) {
        err(`EnvoyFilter ${name}: ${p}`);
        failed = true;
      }
    }
  }
  out(values.output === 'json' ? toJsonList(result.envoyFilters) : toYamlStream(result.envoyFilters));
  return { exitCode: failed ? 1 : 0, envoyFilters: result.envoyFilters.length };
}

/**
 * One line per service that got filters only some proxies load (Kafka): `<service>: <advice>`,
 * the admission warning's lines joined, in service order.
 */
function scopeNotes(envoyFilters: readonly JsonRecord[], enabled: ReadonlySet<Protocol>): string[] {
  const lines = new Set<string>();
  for (const ef of envoyFilters) {
    const metadata = asRecord(ef.metadata);
    const protocol = PROTOCOLS.find((p) => p === asString(asRecord(metadata?.labels)?.[PROTOCOL_LABEL]));
    const service = asString(asRecord(metadata?.annotations)?.[SERVICE_ANNOTATION]);
    if (protocol === undefined || service === undefined) continue;
    const advice = switchAdvice(protocol, enabled);
    if (advice.length > 0) lines.add(`${service}: ${advice.join('; ')}`);
  }
  return [...lines].sort();
}
