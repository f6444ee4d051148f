import { MAX_PROBLEMS_LISTED, MAX_WARNINGS, quote } from '../model/limits.js';

/** What a validator found: hard problems (deny) with the field path, and soft ones (warnings). */
export interface Problem {
  /** Kubernetes field path, e.g. `spec.ports[1]` or `metadata.annotations[interface]`. */
  readonly path: string;
  /** What is wrong and how to fix it. */
  readonly message: string;
}

export interface Findings {
  /** The first MAX_PROBLEMS_LISTED problems found (all a denial can list). */
  readonly problems: readonly Problem[];
  /** The first MAX_WARNINGS distinct warnings found (all an answer can carry). */
  readonly warnings: readonly string[];
  /** Problems found after the first MAX_PROBLEMS_LISTED: counted, never built or kept. */
  readonly problemsNotKept?: number;
  /** Warnings found after the first MAX_WARNINGS distinct ones: counted, never built or kept. */
  readonly warningsNotKept?: number;
}

/** Kubernetes truncates warnings past 256 characters; Breeze keeps each at 120 at most. */
export const MAX_WARNING_LENGTH = 120;

/**
 * A path or message, or a function that builds it: a validator looping over input-sized lists
 * passes functions, so what it finds past the caps costs a count, not a string.
 */
export type Text = string | (() => string);

function textOf(t: Text): string {
  return typeof t === 'string' ? t : t();
}

/**
 * Collects problems and warnings in the order they are found, keeping only what an answer can
 * show: the first MAX_PROBLEMS_LISTED problems and the first MAX_WARNINGS distinct warnings. The
 * rest are counted without building their text, so an object with 100,000 bad items costs a
 * counter per item, not a string per item (issue 11). Warnings past the cap are counted without
 * being compared, so a repeat of a kept warning counts as one more.
 */
export class FindingsBuilder {
  private readonly problemList: Problem[] = [];
  private readonly warningSet = new Set<string>();
  private problemsNotKept = 0;
  private warningsNotKept = 0;

  deny(path: Text, message: Text): this {
    if (this.problemList.length < MAX_PROBLEMS_LISTED)
      this.problemList.push({ path: textOf(path), message: textOf(message) });
    else this.problemsNotKept++;
    return this;
  }

  /** A warning is rendered `<path>: <message>` and cut to 120 characters with an ellipsis. */
  warn(path: Text, message: Text): this {
    if (this.warningSet.size >= MAX_WARNINGS) {
      this.warningsNotKept++;
      return this;
    }
    const p = textOf(path);
    const m = textOf(message);
    const text = p === '' ? m : `${p}: ${m}`;
    this.warningSet.add(
      text.length <= MAX_WARNING_LENGTH ? text : `${text.slice(0, MAX_WARNING_LENGTH - 1)}…`,
    );
    return this;
  }

  merge(other: Findings): this {
    for (const p of other.problems) this.deny(p.path, p.message);
    for (const w of other.warnings) this.warn('', w);
    this.problemsNotKept += other.problemsNotKept ?? 0;
    this.warningsNotKept += other.warningsNotKept ?? 0;
    return this;
  }

  get denied(): boolean {
    return this.problemList.length > 0;
  }

  build(): Findings {
    return {
      problems: [...this.problemList],
      warnings: [...this.warningSet],
      ...(this.problemsNotKept > 0 ? { problemsNotKept: this.problemsNotKept } : {}),
      ...(this.warningsNotKept > 0 ? { warningsNotKept: this.warningsNotKept } : {}),
    };
  }
}

/** Field path builder: `field('spec', 'ports', 1, 'name')` → `spec.ports[1].name`. */
export function field(...parts: readonly (string | number)[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? p : `.${p}`;
  }
  return out;
}

/** Map key path: `key('metadata.annotations', 'interface')` → `metadata.annotations[interface]`. */
export function key(path: string, k: string): string {
  return `${path}[${k}]`;
}

/** A problem's field path is cut to this many characters in a denial (map keys come from input). */
export const MAX_PROBLEM_PATH_LENGTH = 200;
/** A problem's message is cut to this many characters in a denial. */
export const MAX_PROBLEM_MESSAGE_LENGTH = 400;
/** The listed problems of one denial stop once their rendering passes this many characters. */
export const MAX_DENIAL_MESSAGE_LENGTH = 16_000;

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * The problems a denial lists: at most MAX_PROBLEMS_LISTED, each with its path and message cut,
 * stopping early once the rendering passes MAX_DENIAL_MESSAGE_LENGTH; `more` counts the rest.
 * Whatever the input, a denial stays a few tens of KiB.
 */
export function listProblems(
  problems: readonly Problem[],
  notKept = 0,
): {
  readonly listed: readonly Problem[];
  readonly more: number;
} {
  const listed: Problem[] = [];
  let length = 0;
  for (const p of problems) {
    if (listed.length >= MAX_PROBLEMS_LISTED || length >= MAX_DENIAL_MESSAGE_LENGTH) break;
    const shown = {
      path: cut(p.path, MAX_PROBLEM_PATH_LENGTH),
      message: cut(p.message, MAX_PROBLEM_MESSAGE_LENGTH),
    };
    listed.push(shown);
    length += shown.path.length + shown.message.length + 4;
  }
  return { listed, more: problems.length - listed.length + notKept };
}

/** The line that stands for the problems a denial does not list. */
export function moreProblems(more: number): string {
  return `... and ${more} more problem${more === 1 ? '' : 's'}`;
}

/**
 * Renders problems as the denial message: `<path>: <message>` joined by `; `, at most
 * MAX_PROBLEMS_LISTED of them (see listProblems), then `... and N more problems`.
 */
export function formatProblems(problems: readonly Problem[], notKept = 0): string {
  const { listed, more } = listProblems(problems, notKept);
  const parts = listed.map((p) => `${p.path}: ${p.message}`);
  if (more > 0) parts.push(moreProblems(more));
  return parts.join('; ');
}

/** The object a denial is about: its kind, group and name, as Kubernetes' own errors name it. */
export interface DenialSubject {
  readonly kind: string;
  readonly group: string;
  readonly name: string;
}

/**
 * How a denial names its object, the way Kubernetes' own errors do (`ServiceEntry.networking.istio.io
 * "x"`): kind, group when not core, the name quoted (and cut when long, since it comes from input).
 */
export function subjectOf(s: DenialSubject): string {
  return `${s.kind}${s.group === '' ? '' : `.${s.group}`} ${quote(s.name)}`;
}

/**
 * The denial message: `<Kind>.<group> "<name>" is invalid: <path>: <why>` for one problem, else
 * the same head followed by one `* <path>: <why>` line per problem (as kubectl lists causes), at
 * most MAX_PROBLEMS_LISTED of them (see listProblems), then `* ... and N more problems`. The API
 * server prefixes it with `admission webhook "<name>" denied the request: `, and kubectl with
 * `Error from server: error when creating "<file>": `, so a user sees the file, the webhook, the
 * object, and every field path with its reason.
 */
export function denialMessage(
  subject: DenialSubject,
  problems: readonly Problem[],
  verdict = 'is invalid',
  notKept = 0,
): string {
  const { listed, more } = listProblems(problems, notKept);
  const lines = listed.map((p) => `${p.path}: ${p.message}`);
  if (more > 0) lines.push(moreProblems(more));
  const head = `${subjectOf(subject)} ${verdict}`;
  if (lines.length === 1) return `${head}: ${lines[0] ?? ''}`;
  return `${head}:${lines.map((l) => `\n* ${l}`).join('')}`;
}

/**
 * The warnings an answer carries: each cut to MAX_WARNING_LENGTH, at most MAX_WARNINGS, the last
 * of which says how many more there were (`... and N more warnings`).
 */
export function boundWarnings(warnings: readonly string[], notKept = 0): string[] {
  const out: string[] = [];
  const total = warnings.length + notKept;
  const listed = total <= MAX_WARNINGS ? warnings.length : Math.min(warnings.length, MAX_WARNINGS - 1);
  for (let i = 0; i < listed; i++) out.push(cut(warnings[i] as string, MAX_WARNING_LENGTH));
  if (listed < total) out.push(`... and ${total - listed} more warnings`);
  return out;
}

/** Characters of a value show() renders before it cuts (its result is at most 60). */
const SHOW_LENGTH = 60;

/**
 * JSON rendering of a user value for messages, shortened so a message stays readable: what
 * JSON.stringify gives, cut to 60 characters. Renders only the first characters of the value
 * (a loop, no recursion), so a 100,000-item list or a value nested 100,000 deep costs no more
 * than a short one.
 */
export function show(value: unknown): string {
  const s = jsonPrefix(value, SHOW_LENGTH + 1);
  return s.length <= SHOW_LENGTH ? s : `${s.slice(0, SHOW_LENGTH - 3)}...`;
}

/** Scalar as JSON.stringify renders it at top level (undefined and functions: String()). */
function scalar(value: unknown, limit: number): string {
  if (typeof value === 'string') return JSON.stringify(value.length > limit ? value.slice(0, limit) : value);
  try {
    const json = JSON.stringify(value) as string | undefined;
    return json ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * The first `limit` (or more) characters of JSON.stringify(value), without rendering the rest:
 * an explicit stack of open containers instead of recursion. Array items JSON cannot render
 * become null and such object members are left out, as JSON.stringify does.
 */
function jsonPrefix(value: unknown, limit: number): string {
  if (value === null || typeof value !== 'object') return scalar(value, limit);
  type Open =
    | { items: readonly unknown[]; keys: undefined; i: number }
    | { items: Record<string, unknown>; keys: string[]; i: number; wrote: boolean };
  const stack: Open[] = [];
  let out = '';
  let v: unknown = value;
  const renderable = (x: unknown): boolean =>
    x !== undefined && typeof x !== 'function' && typeof x !== 'symbol';
  while (out.length < limit) {
    if (v === null || typeof v !== 'object') out += v === undefined ? 'null' : scalar(v, limit);
    else if (Array.isArray(v)) {
      out += '[';
      stack.push({ items: v, keys: undefined, i: 0 });
    } else {
      out += '{';
      stack.push({ items: v as Record<string, unknown>, keys: Object.keys(v), i: 0, wrote: false });
    }
    let next = false;
    while (!next && out.length < limit) {
      const top = stack[stack.length - 1];
      if (top === undefined) return out;
      if (top.keys === undefined) {
        if (top.i < top.items.length) {
          if (top.i > 0) out += ',';
          const item = top.items[top.i++];
          v = renderable(item) ? item : null;
          next = true;
        } else {
          out += ']';
          stack.pop();
        }
      } else {
        while (top.i < top.keys.length) {
          const k = top.keys[top.i++] as string;
          const item = top.items[k];
          if (!renderable(item)) continue;
          out += `${top.wrote ? ',' : ''}${JSON.stringify(k.length > limit ? k.slice(0, limit) : k)}:`;
          top.wrote = true;
          v = item;
          next = true;
          break;
        }
        if (!next) {
          out += '}';
          stack.pop();
        }
      }
    }
  }
  return out;
}
