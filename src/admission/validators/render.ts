/**
 * Rendering input values into problem and warning messages, bounded whatever the input: a string
 * goes through `quote()` (at most MAX_QUOTED_LENGTH characters, with its length when cut), a list
 * or object is rendered only up to a few dozen characters (never serialized whole), and a map key
 * in a field path is cut the same way. So no message grows with the size of the object.
 */
import { quote } from '../../model/limits.js';

/** Longest rendering of a list or object in a message (before `...`). */
const MAX_RENDERED = 60;

/** A user value for a message: JSON, bounded (see the module comment). */
export function show(value: unknown): string {
  if (typeof value === 'string') return quote(value);
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value !== 'object') return typeof value;
  const out: string[] = [];
  let length = 0;
  const push = (s: string): boolean => {
    out.push(s);
    length += s.length;
    return length <= MAX_RENDERED;
  };
  // Depth-first with an explicit stack; stops as soon as the rendering is long enough, so neither
  // a huge nor a deeply nested value costs more than a few dozen steps.
  type Frame = { close: string; items: [string | undefined, unknown][]; next: number };
  const open = (v: object): Frame | undefined => {
    if (Array.isArray(v)) {
      if (!push('[')) return undefined;
      return { close: ']', items: v.slice(0, MAX_RENDERED).map((x) => [undefined, x]), next: 0 };
    }
    if (!push('{')) return undefined;
    const items: [string | undefined, unknown][] = [];
    for (const k in v) {
      if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
      items.push([k, (v as Record<string, unknown>)[k]]);
      if (items.length > MAX_RENDERED) break;
    }
    return { close: '}', items, next: 0 };
  };
  const first = open(value);
  const stack: Frame[] = first === undefined ? [] : [first];
  let complete = first !== undefined;
  while (stack.length > 0) {
    const frame = stack[stack.length - 1] as Frame;
    if (frame.next >= frame.items.length) {
      stack.pop();
      if (!push(frame.close)) {
        complete = stack.length === 0;
        break;
      }
      continue;
    }
    const [k, v] = frame.items[frame.next] as [string | undefined, unknown];
    if (frame.next > 0 && !push(',')) {
      complete = false;
      break;
    }
    frame.next++;
    if (k !== undefined && !push(`${quote(k, 20)}:`)) {
      complete = false;
      break;
    }
    if (v !== null && typeof v === 'object') {
      const child = open(v);
      if (child === undefined) {
        complete = false;
        break;
      }
      stack.push(child);
    } else if (!push(v === undefined ? 'null' : show(v))) {
      complete = false;
      break;
    }
  }
  const text = out.join('');
  if (complete && text.length <= MAX_RENDERED) return text;
  return `${text.slice(0, MAX_RENDERED - 3)}...`;
}

/** Map key path, bounded: `key('metadata.annotations', 'interface')` → `metadata.annotations[interface]`. */
export function key(path: string, k: string): string {
  return `${path}[${k.length <= MAX_RENDERED ? k : `${k.slice(0, MAX_RENDERED - 3)}...`}]`;
}
