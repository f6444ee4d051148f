// Kubernetes label and field selectors as the API server parses them, for the fake API server.

/** One requirement of a label selector. */
export type LabelRequirement =
  | { op: '=' | '!='; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | '!exists'; key: string };

export type LabelSelector = readonly LabelRequirement[];

export class SelectorError extends Error {}

/** Splits at commas outside parentheses: `a in (x,y),b` → [`a in (x,y)`, `b`]. */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out.map((p) => p.trim()).filter((p) => p !== '');
}

const SET_RE = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^()]*)\)$/;
const EQ_RE = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/;
const KEY_RE = /^(!?)\s*([^\s!=(),]+)$/;

/** Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k`; throws SelectorError on anything else. */
export function parseLabelSelector(raw: string | null | undefined): LabelSelector {
  if (raw === null || raw === undefined || raw.trim() === '') return [];
  return splitTopLevel(raw).map((part): LabelRequirement => {
    const set = SET_RE.exec(part);
    if (set !== null) {
      const values = (set[3] ?? '')
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      return { op: set[2] === 'in' ? 'in' : 'notin', key: set[1] ?? '', values };
    }
    const eq = EQ_RE.exec(part);
    if (eq !== null) return { op: eq[2] === '!=' ? '!=' : '=', key: eq[1] ?? '', value: eq[3] ?? '' };
    const key = KEY_RE.exec(part);
    if (key !== null) return { op: key[1] === '!' ? '!exists' : 'exists', key: key[2] ?? '' };
    throw new SelectorError(`unable to parse requirement: ${JSON.stringify(part)}`);
  });
}

export function matchesLabels(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  return selector.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const v = labels[r.key];
    switch (r.op) {
      case '=':
        return has && v === r.value;
      case '!=':
        return !has || v !== r.value;
      case 'in':
        return has && v !== undefined && r.values.includes(v);
      case 'notin':
        return !has || v === undefined || !r.values.includes(v);
      case 'exists':
        return has;
      case '!exists':
        return !has;
    }
  });
}

export interface FieldRequirement {
  field: 'metadata.name' | 'metadata.namespace';
  negate: boolean;
  value: string;
}

export type FieldSelector = readonly FieldRequirement[];

/** Parses `metadata.name=x,metadata.namespace!=y` (the fields every resource supports). */
export function parseFieldSelector(raw: string | null | undefined): FieldSelector {
  if (raw === null || raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((part) => {
    const m = /^\s*([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)\s*$/.exec(part);
    if (m === null) throw new SelectorError(`invalid field selector: ${JSON.stringify(part)}`);
    const field = m[1];
    if (field !== 'metadata.name' && field !== 'metadata.namespace')
      throw new SelectorError(`field label not supported: ${field ?? ''}`);
    return { field, negate: m[2] === '!=', value: m[3] ?? '' };
  });
}

export function matchesFields(selector: FieldSelector, name: string, namespace: string): boolean {
  return selector.every((r) => {
    const v = r.field === 'metadata.name' ? name : namespace;
    return r.negate ? v !== r.value : v === r.value;
  });
}

/** A metav1.LabelSelector object (matchLabels, matchExpressions) as requirements; absent: everything. */
export function labelSelectorFromObject(raw: unknown): LabelSelector {
  if (raw === undefined || raw === null) return [];
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new SelectorError('a label selector must be an object');
  const sel = raw as { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
  const out: LabelRequirement[] = [];
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) out.push({ op: '=', key, value });
  for (const e of sel.matchExpressions ?? []) {
    const { key, operator, values } = e as { key: string; operator: string; values?: string[] };
    if (operator === 'In') out.push({ op: 'in', key, values: values ?? [] });
    else if (operator === 'NotIn') out.push({ op: 'notin', key, values: values ?? [] });
    else if (operator === 'Exists') out.push({ op: 'exists', key });
    else if (operator === 'DoesNotExist') out.push({ op: '!exists', key });
    else throw new SelectorError(`unknown label selector operator ${JSON.stringify(operator)}`);
  }
  return out;
}
