import { parseArgs } from 'node:util';
import { moreProblems } from '../admission/findings.js';
import { VALIDATORS } from '../admission/validators/index.js';
import { ConfigStore } from '../cache/store.js';
import { BreezeError } from '../errors.js';
import { handledKindOf, metaOf } from '../model/kinds.js';
import { isDnsName } from '../model/names.js';
import { DEFAULT_PROTOCOLS, parseProtocols } from '../protocols/registry.js';
import { loadManifests } from '../sources/file.js';

export const VALIDATE_USAGE = `Usage: breeze validate -f PATH [-f PATH ...] [--domain cluster.local]
                      [--protocols dubbo,thrift,redis,zookeeper]

Runs the admission webhook's validators offline on manifests (files or directories).
Cross-object checks see every object passed in. --protocols: the protocols Breeze serves (as
'breeze serve --protocols'; a port of another one, or of kafka, is a warning). Prints one line per problem:
  <file>: <Kind> <namespace>/<name>: <field path>: <message>
Exit status: 0 when nothing is denied (warnings are printed), 1 on any denial or on a file that
cannot be read or parsed (over 4 MiB, not a regular file, a YAML error such as an unquoted
*.example.com, which YAML reads as an alias).`;

export interface ValidateSummary {
  readonly checked: number;
  readonly denied: number;
  readonly warnings: number;
  readonly exitCode: 0 | 1;
}

/** `breeze validate`: lines go to `out`, the summary to `err`. */
export async function runValidate(
  argv: readonly string[],
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<ValidateSummary> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: {
        file: { type: 'string', short: 'f', multiple: true },
        domain: { type: 'string' },
        protocols: { type: 'string', default: DEFAULT_PROTOCOLS },
      },
      allowPositionals: true,
    }));
  } catch (e) {
    throw new BreezeError('BAD_FLAG', `${(e as Error).message}\n\n${VALIDATE_USAGE}`);
  }
  const paths = [...(values.file ?? []), ...positionals];
  if (paths.length === 0) throw new BreezeError('BAD_FLAG', `no manifests given\n\n${VALIDATE_USAGE}`);
  const domain = values.domain ?? 'cluster.local';
  if (!isDnsName(domain))
    throw new BreezeError('BAD_FLAG', `--domain: ${JSON.stringify(domain)} must be a DNS name`);

  const protocols = parseProtocols(values.protocols);
  if ('error' in protocols)
    throw new BreezeError('BAD_FLAG', `--protocols: ${JSON.stringify(values.protocols)} ${protocols.error}`);

  const loaded = await loadManifests(paths);
  for (const e of loaded.errors) out(`${e.file}: ${e.message}`);
  for (const w of loaded.warnings) out(`${w.file}: warning: ${w.message}`);
  const store = new ConfigStore(domain);
  for (const { object } of loaded.objects) store.upsert(object, 'file');

  let checked = 0;
  let denied = 0;
  let warnings = 0;
  for (const { file, object } of loaded.objects) {
    const kind = handledKindOf(object);
    if (kind === undefined) continue;
    checked++;
    const meta = metaOf(object);
    const prefix = `${file}: ${kind} ${meta.namespace}/${meta.name}`;
    const findings = VALIDATORS[kind](object, { view: store, namespace: meta.namespace, protocols });
    for (const p of findings.problems) out(`${prefix}: ${p.path}: ${p.message}`);
    if (findings.problemsNotKept !== undefined) out(`${prefix}: ${moreProblems(findings.problemsNotKept)}`);
    for (const w of findings.warnings) out(`${prefix}: warning: ${w}`);
    if (findings.warningsNotKept !== undefined)
      out(`${prefix}: warning: ... and ${findings.warningsNotKept} more warnings`);
    if (findings.problems.length > 0) denied++;
    warnings += findings.warnings.length + (findings.warningsNotKept ?? 0);
  }
  const exitCode = denied > 0 || loaded.errors.length > 0 ? 1 : 0;
  err(
    `${checked} object(s) checked: ${denied} denied, ${warnings} warning(s)` +
      (loaded.errors.length > 0 ? `, ${loaded.errors.length} file error(s)` : ''),
  );
  return { checked, denied, warnings, exitCode };
}
