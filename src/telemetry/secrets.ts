/**
 * Keeping inlined Redis passwords out of messages about EnvoyFilters.
 *
 * In inline mode an EnvoyFilter carries passwords (`inlineString` under `downstreamAuthPasswords`,
 * `downstreamAuthPassword`, `downstreamAuthUsername`, `authPassword`, `authUsername`). When a write
 * fails, the API server's or a webhook's message may quote the object (`Invalid value: "..."`),
 * and that message goes to the log, the failure list and Kubernetes Events. Every inlined
 * credential of the object is replaced by `[REDACTED]` in such a message, as written and as JSON
 * or Go `%q` would escape it.
 */
import { BreezeError } from '../errors.js';
import { isRecord, type JsonRecord } from '../model/json.js';

const CREDENTIAL_FIELDS = new Set([
  'downstreamAuthPasswords',
  'downstreamAuthPassword',
  'downstreamAuthUsername',
  'authPassword',
  'authUsername',
  'downstream_auth_passwords',
  'downstream_auth_password',
  'downstream_auth_username',
  'auth_password',
  'auth_username',
]);
const INLINE_KEYS = ['inlineString', 'inline_string', 'inlineBytes', 'inline_bytes'];
/** EnvoyFilters are bounded by the API server; this bounds the walk whatever the input. */
const MAX_NODES = 100_000;
export const REDACTED = '[REDACTED]';

/** The inlined credential strings of an object (an EnvoyFilter, a typed config), longest first. */
export function inlinedCredentials(object: unknown): string[] {
  const found = new Set<string>();
  const stack: { value: unknown; credential: boolean }[] = [{ value: object, credential: false }];
  let nodes = 0;
  while (stack.length > 0 && nodes++ < MAX_NODES) {
    const { value, credential } = stack.pop() as { value: unknown; credential: boolean };
    if (Array.isArray(value)) {
      for (const v of value) stack.push({ value: v, credential });
    } else if (isRecord(value)) {
      for (const [k, v] of Object.entries(value)) {
        if (credential && INLINE_KEYS.includes(k) && typeof v === 'string' && v !== '') {
          found.add(v);
          // Bytes are base64 in JSON: the decoded text is the secret too.
          if (k.endsWith('ytes')) found.add(Buffer.from(v, 'base64').toString('utf8'));
        } else {
          stack.push({ value: v, credential: credential || CREDENTIAL_FIELDS.has(k) });
        }
      }
    }
  }
  return [...found].filter((s) => s !== '').sort((a, b) => b.length - a.length);
}

/** `text` with every form of every secret replaced. */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    // As written, and escaped up to three times (a quoted object inside a quoted message...),
    // most escaped first so a shorter form does not break up a longer one.
    const forms = [s];
    for (let i = 0; i < 3; i++) forms.push(JSON.stringify(forms[i]).slice(1, -1));
    for (const form of new Set(forms.reverse())) {
      if (form !== '') out = out.split(form).join(REDACTED);
    }
  }
  return out;
}

/**
 * The error of a failed write of `objects` (the desired and the current EnvoyFilter) with its inlined credentials removed from the message
 * (same code, status and retry hint; the cause is dropped, as its message holds the same text).
 */
export function redactWriteError(
  err: BreezeError,
  objects: readonly (JsonRecord | undefined)[],
): BreezeError {
  const secrets = inlinedCredentials(objects);
  if (secrets.length === 0) return err;
  const message = redactText(err.message, secrets);
  if (message === err.message) return err;
  return new BreezeError(err.code, message, { status: err.status, retryAfterMs: err.retryAfterMs });
}
