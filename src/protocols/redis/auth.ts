/**
 * The `Auth` message of RedisService (downstream: clients AUTH to Envoy) and RedisDestination
 * (upstream: Envoy AUTHs to Redis): `secret{name, passwordField, usernameField}` or
 * `plain{password, username}`. Errors name the object, the field and the Secret, never a value.
 */
import { isRecord, type JsonRecord } from '../../model/json.js';
import type { PortContext, SourceRef } from '../types.js';
import { fail, failAt, optRecord, optString, type Origin } from './fields.js';

export const DEFAULT_PASSWORD_FIELD = 'password';
export const FALLBACK_PASSWORD_FIELD = 'token';
export const DEFAULT_USERNAME_FIELD = 'username';

export interface Credentials {
  readonly password: string;
  readonly username: string | undefined;
  /** The Secret read, for FilterPlan.sources. */
  readonly secret: SourceRef | undefined;
}

/** A `DataSource` with the value inline (Envoy's `inlineString`). */
export function inlineString(value: string): JsonRecord {
  return { inlineString: value };
}

/**
 * Reads an optional Auth. A Secret is looked up in `secretNamespace` (the RedisService's
 * namespace for downstream auth, the service's for upstream auth).
 */
export function resolveAuth(
  ctx: PortContext,
  origin: Origin,
  path: string,
  value: unknown,
  secretNamespace: string,
): Credentials | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) {
    return failAt(origin, path, 'must be an object with either secret (a Secret reference) or plain');
  }
  const hasSecret = value.secret !== undefined && value.secret !== null;
  const hasPlain = value.plain !== undefined && value.plain !== null;
  if (hasSecret && hasPlain) return failAt(origin, path, 'sets both secret and plain; keep only one');
  if (hasSecret) return fromSecret(ctx, origin, `${path}.secret`, value.secret, secretNamespace);
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
    password,
    username: username === '' || username === null ? undefined : username,
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
  const ref = optRecord(origin, path, value) ?? {};
  const name = optString(origin, `${path}.name`, ref.name);
  if (name === undefined || name === '') {
    return failAt(origin, `${path}.name`, 'is required: the name of the Secret holding the password');
  }
  const passwordField = optString(origin, `${path}.passwordField`, ref.passwordField) ?? '';
  const usernameField = optString(origin, `${path}.usernameField`, ref.usernameField) ?? '';
  const secretName = `Secret ${namespace}/${name}`;
  const where = `(${path} of ${origin.object})`;
  const data = ctx.secret(namespace, name);
  if (data === undefined) return fail(`${secretName} ${where} not found`);
  const has = (k: string): boolean => Object.hasOwn(data, k);

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
  const password = (data[field] ?? '').trim();
  if (password === '') return fail(`${secretName} ${where}: the password in key "${field}" is empty`);

  // Aeraki documents `username` as the default key but never applies it; Breeze does.
  let username: string | undefined;
  if (usernameField !== '') {
    if (!has(usernameField))
      return fail(`${secretName} ${where} has no key "${usernameField}" (usernameField)`);
    username = (data[usernameField] ?? '').trim();
    if (username === '')
      return fail(`${secretName} ${where}: the username in key "${usernameField}" is empty`);
  } else if (has(DEFAULT_USERNAME_FIELD)) {
    const u = (data[DEFAULT_USERNAME_FIELD] ?? '').trim();
    username = u === '' ? undefined : u;
  }
  return { password, username, secret: { kind: 'Secret', namespace, name } };
}
