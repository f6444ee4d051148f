/**
 * Checks shared by the RedisService and RedisDestination validators (redis.aeraki.io/v1alpha1):
 * hosts, ports, protobuf JSON durations, enums, plain JSON types and the `Auth` message.
 *
 * Everything under an `auth` field may hold a password, so messages about it describe a value's
 * type and never render the value itself. Nor does any message render a list or an object (it may
 * contain an auth), or a value found where a list or an object is expected (an auth, or a
 * password, may sit there by mistake): only scalars where a scalar is expected are quoted, bounded.
 */
import { asArray, asRecord, isInteger, type JsonRecord } from '../../model/json.js';
import { goDurationNanos, protoDurationText } from '../../model/duration.js';
import { isDns1123Subdomain, isDnsName } from '../../model/names.js';
import { field, type FindingsBuilder } from '../findings.js';
import { show } from './render.js';
import { isPortNumber } from './serviceentry.js';

export const EXAMPLE_REDIS_HOST = 'redis.redis.svc.cluster.local';
export const UINT32_MAX = 4294967295;

/**
 * protobuf JSON `google.protobuf.Duration`: non-negative seconds, at most 9 fraction digits, `s`
 * suffix; at most 315576000000s (10,000 years), the largest Duration there is.
 */
export const PROTO_DURATION = /^\d{1,12}(\.\d{1,9})?s$/;
const MAX_DURATION_NANOS = 315576000000n * 1_000_000_000n;

/** Longest text a duration suggestion is computed for (no real duration is longer). */
const MAX_DURATION_TEXT = 64;

/** A key of a Secret's `data`. */
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/** The kind of a value without its content: for fields that may hold a password. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return value === '' ? 'an empty string' : 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/** `show` for a scalar, only the type for a list or object (which may hold an auth). */
export function showScalar(value: unknown): string {
  return typeof value === 'object' && value !== null ? describeType(value) : show(value);
}

// ---------------------------------------------------------------------------------------------
// Durations

/**
 * The protobuf duration a user most likely meant by a value that is not one: `"500ms"` → `0.5s`,
 * `"1m"` → `60s`, `"1.5"` or `1.5` → `1.5s`. Undefined when there is no sensible equivalent
 * (negative, unparseable, or finer than a nanosecond).
 */
export function suggestProtoDuration(value: unknown): string | undefined {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return undefined;
    text = String(value);
    return /^\d+(\.\d{1,9})?$/.test(text) ? `${text}s` : undefined;
  }
  if (typeof value !== 'string' || value.length > MAX_DURATION_TEXT) return undefined;
  text = value.trim();
  if (text.startsWith('+')) text = text.slice(1);
  if (/^\d+(\.\d{1,9})?$/.test(text)) return `${text}s`;
  const nanos = goDurationNanos(text);
  return nanos === undefined ? undefined : protoDurationText(nanos);
}

function isNegativeDuration(value: unknown): boolean {
  if (typeof value === 'number') return value < 0;
  return typeof value === 'string' && /^\s*-\s*[\d.]/.test(value);
}

/**
 * Checks an optional protobuf JSON duration. Returns its nanoseconds when it is valid, undefined
 * when it is absent or denied.
 */
export function checkDuration(f: FindingsBuilder, path: string, value: unknown): bigint | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && PROTO_DURATION.test(value)) {
    const nanos = goDurationNanos(value);
    if (nanos !== undefined && nanos <= MAX_DURATION_NANOS) return nanos;
    if (nanos !== undefined) {
      f.deny(path, `${showScalar(value)} is longer than the largest protobuf duration, "315576000000s"`);
      return undefined;
    }
  }
  if (isNegativeDuration(value)) {
    f.deny(
      path,
      `${showScalar(value)} is negative; use zero or more seconds with an "s" suffix, e.g. "1.5s"`,
    );
    return undefined;
  }
  const suggestion = suggestProtoDuration(value);
  f.deny(
    path,
    suggestion === undefined
      ? `${showScalar(value)} is not a protobuf duration; write seconds with an "s" suffix, e.g. "1.5s"`
      : `${showScalar(value)} is not a protobuf duration; use "${suggestion}" (seconds with an "s" suffix)`,
  );
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Plain JSON types

/**
 * An optional object field: the record when it is one, undefined when absent (or null, as
 * protobuf JSON reads null as unset) or denied. `what` completes "must be an object with …".
 */
export function checkObject(
  f: FindingsBuilder,
  path: string,
  value: unknown,
  what: string,
): JsonRecord | undefined {
  if (value === undefined || value === null) return undefined;
  const r = asRecord(value);
  if (r === undefined) f.deny(path, `must be an object with ${what}, got ${describeType(value)}`);
  return r;
}

/** An optional list field: the list when it is one, undefined when absent or denied. */
export function checkList(
  f: FindingsBuilder,
  path: string,
  value: unknown,
  what: string,
): readonly unknown[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = asArray(value);
  if (list === undefined) f.deny(path, `must be a list of ${what}, got ${describeType(value)}`);
  return list;
}

export function checkBoolean(f: FindingsBuilder, path: string, value: unknown): void {
  if (value !== undefined && value !== null && typeof value !== 'boolean') {
    f.deny(path, `must be true or false, got ${showScalar(value)}`);
  }
}

/** An optional integer from `min` to `max`. */
export function checkInteger(
  f: FindingsBuilder,
  path: string,
  value: unknown,
  min: number,
  max: number,
): void {
  if (value === undefined || value === null) return;
  if (!isInteger(value) || value < min || value > max) {
    f.deny(path, `must be an integer from ${min} to ${max}, got ${showScalar(value)}`);
  }
}

/** An optional enum written as its name; a name in the wrong case gets the right spelling. */
export function checkEnum(f: FindingsBuilder, path: string, value: unknown, names: readonly string[]): void {
  if (value === undefined || value === null) return;
  if (typeof value === 'string' && names.includes(value)) return;
  const upper = typeof value === 'string' ? value.toUpperCase() : undefined;
  const hint = upper !== undefined && names.includes(upper) ? `; use "${upper}"` : '';
  f.deny(path, `must be one of ${names.join(', ')}, got ${showScalar(value)}${hint}`);
}

// ---------------------------------------------------------------------------------------------
// Hosts and ports

/** A required host: a DNS name without wildcard. */
export function checkHost(
  f: FindingsBuilder,
  path: string,
  value: unknown,
  example = EXAMPLE_REDIS_HOST,
): void {
  if (value === undefined || value === null) {
    f.deny(path, `is required: a service host name, e.g. ${example}`);
  } else if (typeof value !== 'string' || !isDnsName(value)) {
    f.deny(
      path,
      `${showScalar(value)} is not a DNS name; use a plain host name without wildcard, e.g. ${example}`,
    );
  }
}

/** An optional port: when set (0 included), 1 to 65535. */
export function checkPort(f: FindingsBuilder, path: string, value: unknown): void {
  if (value === undefined || value === null || isPortNumber(value)) return;
  f.deny(
    path,
    `must be an integer from 1 to 65535 (or omitted to use the service's port), got ${showScalar(value)}`,
  );
}

/**
 * A required `{host, port}` destination (a RedisService route or mirror target); `role` names it
 * in the message ("destination", "mirror destination").
 */
export function checkDestination(
  f: FindingsBuilder,
  path: string,
  value: unknown,
  role: string,
  example: string,
): void {
  if (value === undefined || value === null) {
    f.deny(path, `is required: the ${role}, e.g. {"host": "${example}"}`);
    return;
  }
  const r = checkObject(f, path, value, 'host and optional port');
  if (r === undefined) return;
  checkHost(f, field(path, 'host'), r.host, example);
  checkPort(f, field(path, 'port'), r.port);
}

/**
 * A required `Percent` (`{value}`): value greater than 0 and at most 100. `share` says what it is
 * the share of, e.g. "commands to mirror".
 */
export function checkPercentage(f: FindingsBuilder, path: string, value: unknown, share: string): void {
  if (value === undefined || value === null) {
    f.deny(path, `is required: the share of ${share}, e.g. {"value": 10} for 10%`);
    return;
  }
  const r = checkObject(f, path, value, 'value (a percentage)');
  if (r === undefined) return;
  const v = r.value;
  const valuePath = field(path, 'value');
  if (v === undefined || v === null) {
    f.deny(valuePath, 'is required: a number greater than 0 and at most 100, e.g. 10 for 10%');
  } else if (typeof v !== 'number' || !(v > 0 && v <= 100)) {
    f.deny(valuePath, `must be a number greater than 0 and at most 100, got ${showScalar(v)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Auth

/** The warning for an inline password; kept short so the longest auth path still fits in 120. */
export const PLAIN_PASSWORD_WARNING = 'password is readable by anyone who can read this object; use secret';

/**
 * An optional `Auth`: exactly one of `secret{name, passwordField, usernameField}` or
 * `plain{password, username}`. Never renders a value found under it, except the Secret name.
 */
export function checkAuth(f: FindingsBuilder, path: string, value: unknown): void {
  if (value === undefined || value === null) return;
  const auth = asRecord(value);
  if (auth === undefined) {
    f.deny(
      path,
      `must be an object with either secret (a Secret reference) or plain, got ${describeType(value)}`,
    );
    return;
  }
  const hasSecret = auth.secret !== undefined && auth.secret !== null;
  const hasPlain = auth.plain !== undefined && auth.plain !== null;
  if (hasSecret && hasPlain) {
    f.deny(path, 'sets both secret and plain; keep only one (secret keeps the password out of this object)');
  } else if (!hasSecret && !hasPlain) {
    f.deny(
      path,
      'must set one of secret ({name: <Secret name>}, preferred) or plain ({password}); remove auth for no password',
    );
  }
  if (hasSecret) checkSecretRef(f, field(path, 'secret'), auth.secret);
  if (hasPlain) checkPlainAuth(f, field(path, 'plain'), auth.plain);
}

function checkSecretRef(f: FindingsBuilder, path: string, value: unknown): void {
  const secret = asRecord(value);
  if (secret === undefined) {
    f.deny(path, `must be an object with name (a Secret holding the password), got ${describeType(value)}`);
    return;
  }
  const name = secret.name;
  const namePath = field(path, 'name');
  if (name === undefined || name === null || name === '') {
    f.deny(namePath, 'is required: the name of the Secret holding the password, e.g. redis-auth');
  } else if (typeof name !== 'string') {
    f.deny(namePath, `must be the name of a Secret, e.g. redis-auth, got ${describeType(name)}`);
  } else if (!isDns1123Subdomain(name)) {
    f.deny(
      namePath,
      "is not a valid Secret name (a DNS-1123 subdomain: lowercase letters, digits, '-', '.'), e.g. redis-auth",
    );
  }
  for (const k of ['passwordField', 'usernameField'] as const) {
    const v = secret[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') {
      f.deny(field(path, k), `must be a key of the Secret's data, e.g. password, got ${describeType(v)}`);
    } else if (v.length > 253 || !SECRET_KEY.test(v)) {
      f.deny(field(path, k), "is not a Secret data key (letters, digits, '-', '_' and '.'), e.g. password");
    }
  }
}

function checkPlainAuth(f: FindingsBuilder, path: string, value: unknown): void {
  const plain = asRecord(value);
  if (plain === undefined) {
    f.deny(path, `must be an object with password and optional username, got ${describeType(value)}`);
    return;
  }
  f.warn(path, PLAIN_PASSWORD_WARNING);
  const password = plain.password;
  const passwordPath = field(path, 'password');
  if (password === undefined || password === null || password === '') {
    f.deny(passwordPath, 'is required: set the password, or better, put it in a Secret and use auth.secret');
  } else if (typeof password !== 'string') {
    f.deny(passwordPath, `must be a string, got ${describeType(password)}`);
  }
  const username = plain.username;
  if (username !== undefined && username !== null && typeof username !== 'string') {
    f.deny(field(path, 'username'), `must be a string, got ${describeType(username)}`);
  }
}
