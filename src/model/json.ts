/** Narrowing helpers for untrusted JSON: every object Breeze reads arrives as `unknown`. */
export type JsonRecord = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function asRecord(value: unknown): JsonRecord | undefined {
  return isRecord(value) ? value : undefined;
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function asArray(value: unknown): readonly unknown[] | undefined {
  return Array.isArray(value) ? value : undefined;
}

/** A string-to-string map such as labels or annotations; non-string values are dropped. */
export function asStringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRecord(value)) return out;
  // Object.keys, not Object.entries: no pair array per key (3x faster on a 300k-key map).
  for (const k of Object.keys(value)) {
    const v = value[k];
    if (typeof v === 'string') setOwn(out, k, v);
  }
  return out;
}

/**
 * `target[key] = value` for a key that comes from input: a `__proto__` key (which JSON.parse
 * makes an own property, and which the API server stores as any other key) stays an own data
 * property instead of replacing the target's prototype.
 */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

export function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

/**
 * Whether JSON.stringify(value) would be at most `limit` characters, without building it: a walk
 * over an explicit stack that counts what each value writes (numbers as at least one character)
 * and stops once the count passes the limit, so its cost is bounded by the limit, not the value.
 */
export function jsonLengthAtMost(value: unknown, limit: number): boolean {
  let length = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') length += v.length + 2;
    else if (typeof v === 'number') length += 1;
    else if (v === null || v === true) length += 4;
    else if (v === false) length += 5;
    else if (Array.isArray(v)) {
      length += 1 + Math.max(1, v.length);
      if (length > limit) return false;
      for (const item of v as unknown[]) stack.push(item);
    } else if (typeof v === 'object') {
      const keys = Object.keys(v);
      length += 1 + Math.max(1, keys.length);
      if (length > limit) return false;
      for (const k of keys) {
        length += k.length + 3;
        stack.push((v as JsonRecord)[k]);
      }
    }
    if (length > limit) return false;
  }
  return true;
}

/**
 * JSON with object keys sorted at every level: the input of content hashes, so a hash can also
 * be recomputed from an object read back from the API server (whose key order differs). Written
 * as one string builder because it runs for every generated object, and as a loop over an explicit
 * stack (no recursion), so an object nested 100,000 deep costs memory, never the call stack.
 * Object values that are undefined are left out; array items that are undefined become null.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object')
    return value === undefined ? 'null' : JSON.stringify(value);
  const stack: CanonicalFrame[] = [];
  let out = '';
  let v: unknown = value;
  for (;;) {
    // Write v: a scalar in full, a container's opening bracket (its items follow from the stack).
    if (v === null || typeof v !== 'object') out += v === undefined ? 'null' : JSON.stringify(v);
    else if (Array.isArray(v)) {
      out += '[';
      stack.push(new CanonicalFrame(v, undefined));
    } else {
      out += '{';
      stack.push(new CanonicalFrame(v as JsonRecord, Object.keys(v).sort()));
    }
    // Find the next value to write, closing every container that has none left.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) return out;
      const keys = top.keys;
      if (keys === undefined) {
        const items = top.container as readonly unknown[];
        if (top.index < items.length) {
          if (top.index > 0) out += ',';
          v = items[top.index++];
          break;
        }
        out += ']';
        stack.pop();
        continue;
      }
      const record = top.container as JsonRecord;
      let found = false;
      while (top.index < keys.length) {
        const k = keys[top.index++] as string;
        const item = record[k];
        if (item === undefined) continue;
        out += `${top.wrote ? ',' : ''}${JSON.stringify(k)}:`;
        top.wrote = true;
        v = item;
        found = true;
        break;
      }
      if (found) break;
      out += '}';
      stack.pop();
    }
  }
}

/** One open array (keys undefined) or object (keys sorted) of canonicalJson. */
class CanonicalFrame {
  index = 0;
  /** Whether an object member was written yet (the next one needs a comma). */
  wrote = false;
  constructor(
    readonly container: readonly unknown[] | JsonRecord,
    readonly keys: readonly string[] | undefined,
  ) {}
}
