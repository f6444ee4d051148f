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

interface Frame {
  readonly value: unknown;
  readonly depth: number;
  readonly path: readonly (string | number)[];
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
 * Cost is linear in the value's size. Returns the first violation, or undefined.
 */
export function checkBounds(
  value: unknown,
  bounds: Bounds = DEFAULT_BOUNDS,
  rootPath: readonly (string | number)[] = [],
): BoundsViolation | undefined {
  const stack: Frame[] = [{ value, depth: 0, path: rootPath }];
  while (stack.length > 0) {
    const { value: v, depth, path } = stack.pop() as Frame;
    if (typeof v === 'string') {
      if (v.length > bounds.maxStringLength) {
        return {
          path: render(path),
          message: `a string of ${v.length} characters is longer than Breeze's limit of ${bounds.maxStringLength} (no object etcd stores holds one)`,
        };
      }
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= bounds.maxDepth) {
      return {
        path: render(path),
        message: `nested deeper than Breeze's limit of ${bounds.maxDepth} levels`,
      };
    }
    if (Array.isArray(v)) {
      if (v.length > bounds.maxListItems) {
        return {
          path: render(path),
          message: `a list of ${v.length} items is longer than Breeze's limit of ${bounds.maxListItems}`,
        };
      }
      for (let i = v.length - 1; i >= 0; i--)
        stack.push({ value: v[i], depth: depth + 1, path: [...path.slice(0, MAX_PATH_SEGMENTS), i] });
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i] as string;
      if (k.length > bounds.maxStringLength) {
        return {
          path: render(path),
          message: `a key of ${k.length} characters is longer than Breeze's limit of ${bounds.maxStringLength}`,
        };
      }
      stack.push({
        value: (v as Record<string, unknown>)[k],
        depth: depth + 1,
        path: [...path.slice(0, MAX_PATH_SEGMENTS), k],
      });
    }
  }
  return undefined;
}
