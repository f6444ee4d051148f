import { MAX_LIST_ITEMS, MAX_OBJECT_DEPTH, MAX_STRING_LENGTH } from './limits.js';

/** The first place where a JSON value exceeds Breeze's bounds, with the limit it exceeds. */
export interface BoundsViolation {
  /** Field path of the offending value, e.g. `spec.ports[3].name` (cut at 20 segments). */
  readonly path: string;
  readonly message: string;
}

export interface Bounds {
  readonly maxDepth: number;
  readonly maxStringLength: number;
  readonly maxListItems: number;
}

export const DEFAULT_BOUNDS: Bounds = {
  maxDepth: MAX_OBJECT_DEPTH,
  maxStringLength: MAX_STRING_LENGTH,
  maxListItems: MAX_LIST_ITEMS,
};

const MAX_PATH_SEGMENTS = 20;

/**
 * One value still to check. The path is kept as a link to the parent frame (not a copied array),
 * so a value costs O(1) however deep it sits; it is rendered only for the one violation found.
 */
class Frame {
  constructor(
    readonly value: unknown,
    readonly depth: number,
    readonly parent: Frame | undefined,
    readonly key: string | number | undefined,
  ) {}
}

function segments(frame: Frame, rootPath: readonly (string | number)[]): (string | number)[] {
  const out: (string | number)[] = [];
  for (let f: Frame | undefined = frame; f !== undefined; f = f.parent)
    if (f.key !== undefined) out.push(f.key);
  out.reverse();
  return [...rootPath, ...out];
}

function render(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path.slice(0, MAX_PATH_SEGMENTS)) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const key = p.length > 40 ? `${p.slice(0, 40)}...` : p;
      out += out === '' ? key : /^[A-Za-z0-9_-]+$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
    }
  }
  return path.length > MAX_PATH_SEGMENTS ? `${out}...` : out;
}

/**
 * Checks a parsed JSON value against the depth, string length and list length bounds without
 * recursion (a value nested 100,000 deep costs a loop, not the stack). Keys count as strings.
 * Cost is linear in the value's size. Returns the first violation, or undefined. With a budget,
 * its check() is called now and then (and may throw BudgetExceeded).
 */
export function checkBounds(
  value: unknown,
  bounds: Bounds = DEFAULT_BOUNDS,
  rootPath: readonly (string | number)[] = [],
  budget?: { check(): void },
): BoundsViolation | undefined {
  // Most values are within bounds: a first walk keeps only values and depths (no object per
  // container, so a 100,000-item list costs no garbage), and only a value that breaks a bound is
  // walked again, in the same order, keeping paths to name the first violation.
  if (withinBounds(value, bounds, budget)) return undefined;
  return firstViolation(value, bounds, rootPath, budget);
}

/**
 * Whether a walk must visit a value: a container, or a string too long (other scalars cannot break
 * a bound, so they get no frame).
 */
function mayBreak(item: unknown, bounds: Bounds): boolean {
  return typeof item === 'string'
    ? item.length > bounds.maxStringLength
    : typeof item === 'object' && item !== null;
}

/** Whether a value is within the bounds: the walk of firstViolation without paths. */
function withinBounds(value: unknown, bounds: Bounds, budget: { check(): void } | undefined): boolean {
  const values: unknown[] = [value];
  const depths: number[] = [0];
  let visited = 0;
  while (values.length > 0) {
    if (budget !== undefined && (++visited & 1023) === 0) budget.check();
    const v = values.pop();
    const depth = depths.pop() as number;
    if (typeof v === 'string') {
      if (v.length > bounds.maxStringLength) return false;
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= bounds.maxDepth) return false;
    if (Array.isArray(v)) {
      if (v.length > bounds.maxListItems) return false;
      for (let i = v.length - 1; i >= 0; i--) {
        const item: unknown = v[i];
        if (mayBreak(item, bounds)) {
          values.push(item);
          depths.push(depth + 1);
        }
      }
      continue;
    }
    // for-in reads the keys without building an array of them; the order does not matter here.
    for (const k in v) {
      if (k.length > bounds.maxStringLength) return false;
      const item = (v as Record<string, unknown>)[k];
      if (mayBreak(item, bounds)) {
        values.push(item);
        depths.push(depth + 1);
      }
    }
  }
  return true;
}

/** The first violation in the walk's order, with its path (undefined when there is none). */
function firstViolation(
  value: unknown,
  bounds: Bounds,
  rootPath: readonly (string | number)[],
  budget: { check(): void } | undefined,
): BoundsViolation | undefined {
  const stack: Frame[] = [new Frame(value, 0, undefined, undefined)];
  const at = (frame: Frame): string => render(segments(frame, rootPath));
  let visited = 0;
  while (stack.length > 0) {
    // The request's CPU budget (when given) is checked every 1,024 containers or long strings.
    if (budget !== undefined && (++visited & 1023) === 0) budget.check();
    const frame = stack.pop() as Frame;
    const { value: v, depth } = frame;
    if (typeof v === 'string') {
      if (v.length > bounds.maxStringLength) {
        return {
          path: at(frame),
          message: `a string of ${v.length} characters is longer than Breeze's limit of ${bounds.maxStringLength} (no object etcd stores holds one)`,
        };
      }
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= bounds.maxDepth) {
      return {
        path: at(frame),
        message: `nested deeper than Breeze's limit of ${bounds.maxDepth} levels`,
      };
    }
    if (Array.isArray(v)) {
      if (v.length > bounds.maxListItems) {
        return {
          path: at(frame),
          message: `a list of ${v.length} items is longer than Breeze's limit of ${bounds.maxListItems}`,
        };
      }
      for (let i = v.length - 1; i >= 0; i--) {
        const item: unknown = v[i];
        // Scalars other than strings cannot break a bound: no frame for them.
        if (mayBreak(item, bounds)) stack.push(new Frame(item, depth + 1, frame, i));
      }
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i] as string;
      if (k.length > bounds.maxStringLength) {
        return {
          path: at(frame),
          message: `a key of ${k.length} characters is longer than Breeze's limit of ${bounds.maxStringLength}`,
        };
      }
      const item = (v as Record<string, unknown>)[k];
      if (mayBreak(item, bounds)) stack.push(new Frame(item, depth + 1, frame, k));
    }
  }
  return undefined;
}
