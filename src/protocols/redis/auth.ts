/**
 * The `Auth` message of RedisService (downstream: clients AUTH to Envoy) and RedisDestination
 * (upstream: Envoy AUTHs to Redis): `secret{name, passwordField, usernameField}` or
 * `plain{password, username}`. Errors name the object, the field and the Secret, never a value.
 */
import { isRecord, type JsonRecord } from '../../model/json.js';
import type { PortContext, SourceRef } from '../types.js';
import { isDns1123Subdomain } from '../../model/names.js';
import { authModeOf, DEFAULT_REDIS_AUTH_MODE, fileDataSource, isSecretKey } from './authmode.js';
import { fail, failAt, type Origin } from './fields.js';

export const DEFAULT_PASSWORD_FIELD = 'password';
export const FALLBACK_PASSWORD_FIELD = 'token';
export const DEFAULT_USERNAME_FIELD = 'username';

/** Envoy `DataSource`s for the password and username, and the Secret they come from. */
export interface Credentials {
  /** `{inlineString}` (inline mode, plain) or `{filename}` (file mode). */
  readonly password: JsonRecord;
  readonly username: JsonRecord | undefined;
  /** The Secret read (inline mode), for FilterPlan.sources. */
  readonly secret: SourceRef | undefined;
}

/** A `DataSource` with the value inline (Envoy's `inlineString`). */
export function inlineString(value: string): JsonRecord {
  return { inlineString: value };
}

/** The JSON type of a value, never the value: anything under auth may be a password. */
function typeOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** An optional object under auth; a wrong type is named, its value never shown. */
function authRecord(origin: Origin, path: string, value: unknown): JsonRecord | undefined {
  if (value === undefined || value === null) return undefined;
  if (isRecord(value)) return value;
  return failAt(origin, path, `must be an object, got ${typeOf(value)}`);
}

/** An optional string under auth; a wrong type is named, its value never shown. */
function authString(origin: Origin, path: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  return failAt(origin, path, `must be a string, got ${typeOf(value)}`);
}

/**
 * Reads an optional Auth. A Secret is looked up in `secretNamespace` (the RedisService's
 * namespace for downstream auth, the service's for upstream auth). `owner` (the RedisService or
 * RedisDestination) may choose the auth mode with its annotation (authmode.ts).
 */
export function resolveAuth(
  ctx: PortContext,
  origin: Origin,
  path: string,
  value: unknown,
  secretNamespace: string,
  owner?: JsonRecord,
): Credentials | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) {
    return failAt(origin, path, 'must be an object with either secret (a Secret reference) or plain');
  }
  const hasSecret = value.secret !== undefined && value.secret !== null;
  const hasPlain = value.plain !== undefined && value.plain !== null;
  if (hasSecret && hasPlain) return failAt(origin, path, 'sets both secret and plain; keep only one');
  if (hasSecret) {
    const mode = authModeOf(owner, ctx.options.redisAuthMode ?? DEFAULT_REDIS_AUTH_MODE);
    if (typeof mode !== 'string') return fail(`${origin.object} ${mode.problem}`);
    return mode === 'file'
      ? fromMountedSecret(origin, `${path}.secret`, value.secret, secretNamespace)
      : fromSecret(ctx, origin, `${path}.secret`, value.secret, secretNamespace);
  }
  if (hasPlain) return fromPlain(origin, `${path}.plain`, value.plain);
  return failAt(origin, path, 'sets neither secret nor plain; remove auth for no password');
}

function fromPlain(origin: Origin, path: string, value: unknown): Credentials {
  if (!isRecord(value)) return failAt(origin, path, 'must be an object with password and optional username');
  const password = value.password;
  if (typeof password !== 'string' || password === '') {
    return failAt(origin, `${path}.password`, 'must be a non-empty string');
  }
  const username = value.username;
  if (username !== undefined && username !== null && typeof username !== 'string') {
    return failAt(origin, `${path}.username`, 'must be a string');
  }
  return {
    password: inlineString(password),
    username: typeof username === 'string' && username !== '' ? inlineString(username) : undefined,
    secret: undefined,
  };
}

/**
 * File mode: `{filename}` data sources under the Secret's mount directory. The Secret is not read
 * (it is mounted into the client sidecars, from their own namespace); the password key is
 * `passwordField` or `password`, and a username is used only when `usernameField` names its key.
 */
function fromMountedSecret(origin: Origin, path: string, value: unknown, namespace: string): Credentials {
  const ref = authRecord(origin, path, value) ?? {};
  const name = authString(origin, `${path}.name`, ref.name);
  if (name === undefined || name === '') {
    return failAt(origin, `${path}.name`, 'is required: the name of the Secret holding the password');
  }
  if (!isDns1123Subdomain(name)) {
    return failAt(origin, `${path}.name`, 'is not a Secret name (a DNS-1123 subdomain)');
  }
  const passwordField =
    authString(origin, `${path}.passwordField`, ref.passwordField) || DEFAULT_PASSWORD_FIELD;
  const usernameField = authString(origin, `${path}.usernameField`, ref.usernameField) ?? '';
  for (const [field, key] of [
    ['passwordField', passwordField],
    ['usernameField', usernameField],
  ] as const) {
    if (key !== '' && !isSecretKey(key)) {
      return failAt(
        origin,
        `${path}.${field}`,
        "is not a Secret key (letters, digits, '-', '_', '.'; not starting with '..'): file mode cannot mount it",
      );
    }
  }
  return {
    password: fileDataSource(namespace, name, passwordField),
    username: usernameField === '' ? undefined : fileDataSource(namespace, name, usernameField),
    secret: undefined,
  };
}

function fromSecret(
  ctx: PortContext,
  origin: Origin,
  path: string,
  value: unknown,
  namespace: string,
): Credentials {
  const ref = authRecord(origin, path, value) ?? {};
  const name = authString(origin, `${path}.name`, ref.name);
  if (name === undefined || name === '') {
    return failAt(origin, `${path}.name`, 'is required: the name of the Secret holding the password');
  }
  const passwordField = authString(origin, `${path}.passwordField`, ref.passwordField) ?? '';
  const usernameField = authString(origin, `${path}.usernameField`, ref.usernameField) ?? '';
  const secretName = `Secret ${namespace}/${name}`;
  const where = `(${path} of ${origin.object})`;
  const data = ctx.secret(namespace, name);
  if (data === undefined) return fail(`${secretName} ${where} not found`);
  const has = (k: string): boolean => Object.hasOwn(data, k);
  /** The text of a key; an undecodable value is an error naming the Secret and key, never the value. */
  const text = (k: string, what: string): string => {
    const v = data[k] ?? '';
    if (typeof v === 'string') return v;
    return fail(`${secretName} ${where}: the ${what} in key "${k}" ${v.invalid}`);
  };

  let field = passwordField;
  if (field === '') {
    field = has(DEFAULT_PASSWORD_FIELD) ? DEFAULT_PASSWORD_FIELD : FALLBACK_PASSWORD_FIELD;
    if (!has(field)) {
      return fail(
        `${secretName} ${where} has neither a "${DEFAULT_PASSWORD_FIELD}" nor a "${FALLBACK_PASSWORD_FIELD}" key; ` +
          'add one or set passwordField',
      );
    }
  } else if (!has(field)) {
    return fail(`${secretName} ${where} has no key "${field}" (passwordField)`);
  }
  const password = text(field, 'password').trim();
  if (password === '') return fail(`${secretName} ${where}: the password in key "${field}" is empty`);

  // Aeraki documents `username` as the default key but never applies it; Breeze does.
  let username: string | undefined;
  if (usernameField !== '') {
    if (!has(usernameField))
      return fail(`${secretName} ${where} has no key "${usernameField}" (usernameField)`);
    username = text(usernameField, 'username').trim();
    if (username === '')
      return fail(`${secretName} ${where}: the username in key "${usernameField}" is empty`);
  } else if (has(DEFAULT_USERNAME_FIELD)) {
    const u = text(DEFAULT_USERNAME_FIELD, 'username').trim();
    username = u === '' ? undefined : u;
  }
  return {
    password: inlineString(password),
    username: username === undefined ? undefined : inlineString(username),
    secret: { kind: 'Secret', namespace, name },
  };
}
