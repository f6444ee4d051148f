/**
 * Decoding a Secret's `data` and `stringData` as Kubernetes does, and no more leniently.
 *
 * `Buffer.from(x, 'base64')` skips characters outside the alphabet, so a value that is not
 * base64 at all (a password pasted into `data` instead of `stringData`) silently became another
 * password. The API server never stores such a value (it decodes `data` with Go's standard
 * base64, which only skips CR and LF), but a local-mode file can hold anything. A key whose value
 * cannot be decoded is kept as an {@link InvalidSecretValue} naming the reason (never the value),
 * so the reader of that key reports it, and a Secret with one bad key unrelated to Redis (a
 * binary certificate, say) still serves its other keys.
 */
import { asRecord, type JsonRecord } from './json.js';

/** A key whose value is unusable: `reason` says why, without any part of the value. */
export interface InvalidSecretValue {
  readonly invalid: string;
}

/** A Secret's keys, decoded to UTF-8 text, or the reason a key could not be. */
export type SecretData = Readonly<Record<string, string | InvalidSecretValue>>;

/**
 * Go's `base64.StdEncoding` (what the API server uses for `data`): the standard alphabet, padded
 * to a multiple of 4 with at most two `=` at the end. A loop, not a regex: a regex with a
 * repeated group overflows the stack on a multi-megabyte value.
 */
function isStdBase64(s: string): boolean {
  if (s.length % 4 !== 0) return false;
  let end = s.length;
  if (end > 0 && s.charCodeAt(end - 1) === 61) end--;
  if (end > 0 && s.charCodeAt(end - 1) === 61 && end === s.length - 1) end--;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
    if (!ok) return false;
  }
  return true;
}
/** A lone UTF-16 surrogate (with the u flag a valid pair is one code point and never matches). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** One `data` value: base64 that decodes to well-formed UTF-8, or why not. */
export function decodeDataValue(value: string): string | InvalidSecretValue {
  const compact = value.replace(/[\r\n]/g, '');
  if (!isStdBase64(compact)) {
    return { invalid: 'is not valid base64 (data values are base64; put plain text under stringData)' };
  }
  try {
    return utf8.decode(Buffer.from(compact, 'base64'));
  } catch {
    return { invalid: 'does not decode to UTF-8 text' };
  }
}

/** One `stringData` value: any string that is well-formed Unicode. */
export function checkStringDataValue(value: string): string | InvalidSecretValue {
  return LONE_SURROGATE.test(value) ? { invalid: 'is not well-formed Unicode text' } : value;
}

/**
 * A Secret object's keys: `data` decoded strictly, `stringData` merged over it (as the API server
 * does on write). Values that are not strings are skipped, as before.
 */
export function decodeSecret(secret: JsonRecord): SecretData {
  // Cached per object (cache entries are replaced, never mutated): a Secret of up to 1 MiB is
  // decoded once, not once per port of every service that reads it.
  const cached = decoded.get(secret);
  if (cached !== undefined) return cached;
  const out = decodeUncached(secret);
  decoded.set(secret, out);
  return out;
}

const decoded = new WeakMap<JsonRecord, SecretData>();

function decodeUncached(secret: JsonRecord): SecretData {
  // No prototype: a key named `__proto__` is just a key.
  const out = Object.create(null) as Record<string, string | InvalidSecretValue>;
  const data = asRecord(secret.data) ?? {};
  for (const [k, v] of Object.entries(data)) if (typeof v === 'string') out[k] = decodeDataValue(v);
  const stringData = asRecord(secret.stringData) ?? {};
  for (const [k, v] of Object.entries(stringData))
    if (typeof v === 'string') out[k] = checkStringDataValue(v);
  return Object.freeze(out);
}

export function isInvalidSecretValue(v: unknown): v is InvalidSecretValue {
  return typeof v === 'object' && v !== null && typeof (v as { invalid?: unknown }).invalid === 'string';
}
