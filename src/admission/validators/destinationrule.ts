import { asArray, asRecord, isRecord, type JsonRecord } from '../../model/json.js';
import { isIstioDns1123Label } from '../../model/names.js';
import { field, FindingsBuilder, type Findings } from '../findings.js';
import { key, show } from './render.js';
import type { ValidationContext } from './types.js';

const EXAMPLE_HOST = 'org.apache.dubbo.samples.basic.api.demoservice';

/**
 * DestinationRule: a host, and subsets whose names are unique DNS-1123 labels as Istio checks
 * them (either case: `V1`, `canaryV2`; VirtualService destinations and Breeze's generated routes
 * refer to them by name, and Istio keeps the case in cluster names) with string labels.
 */
export function validateDestinationRule(object: JsonRecord, ctx: ValidationContext): Findings {
  const f = new FindingsBuilder();
  const spec = asRecord(object.spec);
  if (spec === undefined) {
    return f.deny('spec', `must be an object with host and subsets, got ${got(object.spec)}`).build();
  }
  if (typeof spec.host !== 'string' || spec.host.trim() === '') {
    f.deny(
      'spec.host',
      `must name the service the rule applies to (e.g. ${EXAMPLE_HOST}), got ${got(spec.host)}`,
    );
  }
  if (spec.subsets === undefined) return f.build();
  const subsets = asArray(spec.subsets);
  if (subsets === undefined) {
    return f
      .deny('spec.subsets', `must be a list of subsets with name and labels, got ${show(spec.subsets)}`)
      .build();
  }

  const firstIndexOf = new Map<string, number>();
  subsets.forEach((raw, i) => {
    ctx.budget?.check();
    const path = field('spec', 'subsets', i);
    const s = asRecord(raw);
    if (s === undefined) {
      f.deny(
        path,
        `must be an object with name and labels (e.g. {"name": "v1", "labels": {"version": "v1"}}), got ${show(raw)}`,
      );
      return;
    }
    const name = s.name;
    if (typeof name !== 'string' || !isIstioDns1123Label(name)) {
      f.deny(
        field(path, 'name'),
        `must be a DNS-1123 label as Istio checks it: letters, digits and '-', alphanumeric at both ends, 63 characters at most (e.g. v1), got ${got(name)}`,
      );
    } else {
      const first = firstIndexOf.get(name);
      if (first === undefined) {
        firstIndexOf.set(name, i);
      } else {
        f.deny(
          field(path, 'name'),
          `${got(name)} is already used by spec.subsets[${first}]; subset names must be unique in a rule`,
        );
      }
    }
    checkLabels(s.labels, field(path, 'labels'), f, ctx);
  });
  return f.build();
}

/** A value for a message: its JSON, or `none` when the field is missing. */
function got(value: unknown): string {
  return value === undefined ? 'none' : show(value);
}

function checkLabels(raw: unknown, path: string, f: FindingsBuilder, ctx: ValidationContext): void {
  if (raw === undefined) return;
  if (!isRecord(raw)) {
    f.deny(path, `must be a map of label names to string values (e.g. {"version": "v1"}), got ${show(raw)}`);
    return;
  }
  for (const [n, [k, v]] of Object.entries(raw).entries()) {
    if (n % 64 === 0) ctx.budget?.check();
    if (typeof v === 'string') continue;
    const quoted = typeof v === 'number' || typeof v === 'boolean' ? `; quote it: ${show(String(v))}` : '';
    f.deny(key(path, k), `label values must be strings, got ${show(v)}${quoted}`);
  }
}
