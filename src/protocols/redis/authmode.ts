/**
 * Where Envoy gets a Redis password from a Secret.
 *
 * - `inline` (the default): Breeze reads the Secret and writes the password into the EnvoyFilter
 *   (`inlineString`). Every sidecar that receives the service's outbound config then holds it, and
 *   any workload can read it from its own proxy (`pilot-agent request GET config_dump`).
 * - `file`: the EnvoyFilter names a file (`{filename: <mount dir>/<key>}`) and never holds the
 *   password. The Secret is mounted into the sidecars that need it with Istio's
 *   `sidecar.istio.io/userVolume` and `sidecar.istio.io/userVolumeMount` pod annotations; Breeze
 *   does not read the Secret at all. Envoy reads the file when the listener or cluster is loaded,
 *   so a rotated password takes effect at the next push of that listener or cluster.
 *
 * The mode is `--redis-auth-mode` (GenerationOptions.redisAuthMode), overridden per object by the
 * annotation `breeze.io/redis-auth-mode: inline|file` on a RedisService or RedisDestination.
 * A `plain` password is always inline: it is in the object already and there is no Secret to mount.
 */
import { createHash } from 'node:crypto';
import { asRecord, asString, type JsonRecord } from '../../model/json.js';
import { FindingsBuilder, MAX_WARNING_LENGTH, type Findings } from '../../admission/findings.js';
import { isDns1123Subdomain } from '../../model/names.js';

export type RedisAuthMode = 'inline' | 'file';
export const REDIS_AUTH_MODES: readonly RedisAuthMode[] = ['inline', 'file'];
export const DEFAULT_REDIS_AUTH_MODE: RedisAuthMode = 'inline';
export const AUTH_MODE_ANNOTATION = 'breeze.io/redis-auth-mode';
/** Secret `<secret>` of the object's namespace `<ns>` is mounted at `<root>/<ns>/<secret>/`. */
export const AUTH_MOUNT_ROOT = '/etc/breeze/redis';
export const USER_VOLUME_ANNOTATION = 'sidecar.istio.io/userVolume';
export const USER_VOLUME_MOUNT_ANNOTATION = 'sidecar.istio.io/userVolumeMount';

export function isRedisAuthMode(v: unknown): v is RedisAuthMode {
  return v === 'inline' || v === 'file';
}

/**
 * The mode of one RedisService or RedisDestination: its annotation, else `fallback`. An
 * annotation with another value is a problem (generation keeps the service's filters).
 */
export function authModeOf(
  object: JsonRecord | undefined,
  fallback: RedisAuthMode,
): RedisAuthMode | { readonly problem: string } {
  const raw = asRecord(asRecord(object?.metadata)?.annotations)?.[AUTH_MODE_ANNOTATION];
  if (raw === undefined || raw === null) return fallback;
  if (isRedisAuthMode(raw)) return raw;
  return { problem: `metadata.annotations[${AUTH_MODE_ANNOTATION}] must be inline or file` };
}

/**
 * A Secret key usable as a file name in a Secret volume: Kubernetes' key rule
 * (`[-._a-zA-Z0-9]+`, at most 253, not `.` or `..`, not starting with `..`). Anything else could
 * name a file outside the mount (`../../proc/self/environ`).
 */
export function isSecretKey(key: string): boolean {
  return (
    key.length > 0 &&
    key.length <= 253 &&
    /^[-._a-zA-Z0-9]+$/.test(key) &&
    key !== '.' &&
    key !== '..' &&
    !key.startsWith('..')
  );
}

/** `/etc/breeze/redis/<namespace>/<secret>` */
export function mountDir(namespace: string, secret: string): string {
  return `${AUTH_MOUNT_ROOT}/${namespace}/${secret}`;
}

/** A volume name (DNS-1123 label, at most 63 characters) that is stable per namespace/Secret. */
export function volumeName(namespace: string, secret: string): string {
  const hash = createHash('sha256').update(`${namespace}/${secret}`).digest('hex').slice(0, 10);
  return `breeze-${hash}`;
}

/** Envoy's `DataSource` reading a file. */
export function fileDataSource(namespace: string, secret: string, key: string): JsonRecord {
  return { filename: `${mountDir(namespace, secret)}/${key}` };
}

/**
 * The pod annotations that mount Secret `secret` (a copy of it in the pod's own namespace, since a
 * pod can only mount Secrets of its namespace) where the EnvoyFilter of an object in `namespace`
 * expects it. Pods with userVolume annotations of their own merge the JSON arrays.
 */
export function podAnnotations(namespace: string, secret: string): Record<string, string> {
  const name = volumeName(namespace, secret);
  return {
    [USER_VOLUME_ANNOTATION]: JSON.stringify([{ name, secret: { secretName: secret } }]),
    // Secret volumes are always read-only.
    [USER_VOLUME_MOUNT_ANNOTATION]: JSON.stringify([{ name, mountPath: mountDir(namespace, secret) }]),
  };
}

/** The auth field of a RedisService or RedisDestination. */
function authOf(kind: 'RedisService' | 'RedisDestination', object: JsonRecord): JsonRecord | undefined {
  const spec = asRecord(object.spec);
  if (kind === 'RedisService') return asRecord(asRecord(spec?.settings)?.auth);
  return asRecord(asRecord(asRecord(asRecord(spec?.trafficPolicy)?.connectionPool)?.redis)?.auth);
}

/**
 * The warning for a Secret password in inline mode. `chosen`: by annotation or a known server
 * flag; otherwise the validator cannot know the server's `--redis-auth-mode` and says so.
 */
export function inlineModeWarning(chosen: boolean): string {
  return chosen
    ? `Redis auth mode inline: client sidecars' config dumps show the password; ${AUTH_MODE_ANNOTATION}: file avoids it`
    : `Redis auth mode from --redis-auth-mode (inline by default: client sidecars' config dumps show the password)`;
}

/**
 * `<annotation>: <JSON>` when it fits a warning; else the same facts in words (a Secret name of
 * up to 253 characters does not fit 120).
 */
function annotationWarning(key: string, json: string, words: string): string {
  const line = `${key}: ${json}`;
  return line.length <= MAX_WARNING_LENGTH ? line : `${key}: ${words}`;
}

/**
 * Admission warnings naming the auth mode of a RedisService or RedisDestination that takes its
 * password from a Secret and, in file mode, the exact pod annotations its client workloads need.
 * `defaultMode` is the server's `--redis-auth-mode` when the caller knows it. Each warning fits
 * Breeze's 120 characters (the FindingsBuilder cuts longer ones); none holds a value of the
 * object beyond the Secret's name and keys. (A plain password has its own warning already.)
 */
export function authModeFindings(
  kind: 'RedisService' | 'RedisDestination',
  object: JsonRecord,
  namespace: string,
  defaultMode?: RedisAuthMode,
): Findings {
  const f = new FindingsBuilder();
  const secretRef = asRecord(authOf(kind, object)?.secret);
  const secret = asString(secretRef?.name);
  if (secretRef === undefined || secret === undefined || !isDns1123Subdomain(secret)) return f.build();
  const mode = authModeOf(object, defaultMode ?? DEFAULT_REDIS_AUTH_MODE);
  if (typeof mode !== 'string')
    return f.warn('', `${mode.problem}: this service's filters stay as they are`).build();
  if (mode === 'inline') {
    const explicit = asRecord(asRecord(object.metadata)?.annotations)?.[AUTH_MODE_ANNOTATION] !== undefined;
    return f.warn('', inlineModeWarning(explicit || defaultMode !== undefined)).build();
  }
  const key = asString(secretRef.passwordField) || 'password';
  const user = asString(secretRef.usernameField) ?? '';
  for (const k of [key, user]) {
    if (k !== '' && !isSecretKey(k))
      return f.warn('', 'Redis auth mode file: a passwordField/usernameField is not a Secret key').build();
  }
  const keys = user === '' ? `key ${key}` : `keys ${key}, ${user}`;
  const name = volumeName(namespace, secret);
  const dir = mountDir(namespace, secret);
  const notes = podAnnotations(namespace, secret);
  return f
    .warn('', `Redis auth mode file: Envoy reads ${dir}/${key}`)
    .warn('', `client pods need Secret ${secret} (${keys}) in their own namespace and these annotations:`)
    .warn(
      '',
      annotationWarning(
        USER_VOLUME_ANNOTATION,
        notes[USER_VOLUME_ANNOTATION] ?? '',
        `a volume named ${name} of secret ${secret}`,
      ),
    )
    .warn(
      '',
      annotationWarning(
        USER_VOLUME_MOUNT_ANNOTATION,
        notes[USER_VOLUME_MOUNT_ANNOTATION] ?? '',
        `volume ${name} mounted at ${dir}`,
      ),
    )
    .build();
}
