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
import type { Findings } from '../../admission/findings.js';

export type RedisAuthMode = 'inline' | 'file';
export const REDIS_AUTH_MODES: readonly RedisAuthMode[] = ['inline', 'file'];
export const DEFAULT_REDIS_AUTH_MODE: RedisAuthMode = 'inline';
export const AUTH_MODE_ANNOTATION = 'breeze.io/redis-auth-mode';
/** Secret `<secret>` of the object's namespace `<ns>` is mounted at `<root>/<ns>/<secret>/`. */
export const AUTH_MOUNT_ROOT = '/etc/breeze/redis-auth';
export const USER_VOLUME_ANNOTATION = 'sidecar.istio.io/userVolume';
export const USER_VOLUME_MOUNT_ANNOTATION = 'sidecar.istio.io/userVolumeMount';
/** Kubernetes keeps warnings up to 256 characters. */
const MAX_K8S_WARNING = 256;

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

/** `/etc/breeze/redis-auth/<namespace>/<secret>` */
export function mountDir(namespace: string, secret: string): string {
  return `${AUTH_MOUNT_ROOT}/${namespace}/${secret}`;
}

/** A volume name (DNS-1123 label, at most 63 characters) that is stable per namespace/Secret. */
export function volumeName(namespace: string, secret: string): string {
  const hash = createHash('sha256').update(`${namespace}/${secret}`).digest('hex').slice(0, 10);
  return `breeze-redis-${hash}`;
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
    [USER_VOLUME_MOUNT_ANNOTATION]: JSON.stringify([
      { name, mountPath: mountDir(namespace, secret), readOnly: true },
    ]),
  };
}

/** The auth field of a RedisService or RedisDestination, with its path. */
function authOf(kind: 'RedisService' | 'RedisDestination', object: JsonRecord): [string, JsonRecord | undefined] {
  const spec = asRecord(object.spec);
  if (kind === 'RedisService') return ['spec.settings.auth', asRecord(asRecord(spec?.settings)?.auth)];
  const redis = asRecord(asRecord(asRecord(spec?.trafficPolicy)?.connectionPool)?.redis);
  return ['spec.trafficPolicy.connectionPool.redis.auth', asRecord(redis?.auth)];
}

/**
 * Admission warnings naming the auth mode of a RedisService or RedisDestination with auth and, in
 * file mode, the exact pod annotations its client workloads need. `defaultMode` is the server's
 * `--redis-auth-mode` when known. Never a value from the object beyond the Secret's name and key.
 */
export function authModeFindings(
  kind: 'RedisService' | 'RedisDestination',
  object: JsonRecord,
  namespace: string,
  defaultMode?: RedisAuthMode,
): Findings {
  const [path, auth] = authOf(kind, object);
  const warnings: string[] = [];
  const done = (): Findings => ({
    problems: [],
    warnings: warnings.map((w) => (w.length <= MAX_K8S_WARNING ? w : `${w.slice(0, MAX_K8S_WARNING - 1)}…`)),
  });
  if (auth === undefined) return done();
  const annotated = authModeOf(object, defaultMode ?? DEFAULT_REDIS_AUTH_MODE);
  if (typeof annotated !== 'string') {
    warnings.push(`${annotated.problem}: generation fails for this service until fixed`);
    return done();
  }
  const explicit = asRecord(asRecord(object.metadata)?.annotations)?.[AUTH_MODE_ANNOTATION] !== undefined;
  const secretRef = asRecord(auth.secret);
  const secret = asString(secretRef?.name);
  if (secret === undefined || secret === '') {
    if (auth.plain !== undefined && auth.plain !== null) {
      warnings.push(
        `${path}: plain password: inlined in EnvoyFilters (every client sidecar's config dump); prefer a Secret with ${AUTH_MODE_ANNOTATION}: file`,
      );
    }
    return done();
  }
  if (annotated === 'inline') {
    const how = explicit || defaultMode !== undefined ? 'inline' : 'inline unless Breeze runs with --redis-auth-mode file';
    warnings.push(
      `${path}: Redis auth mode ${how}: the password is copied into EnvoyFilters, readable from every client sidecar's config dump; set annotation ${AUTH_MODE_ANNOTATION}: file to avoid it`,
    );
    return done();
  }
  const key = asString(secretRef?.passwordField) || 'password';
  const user = asString(secretRef?.usernameField);
  for (const k of [key, user ?? '']) {
    if (k !== '' && !isSecretKey(k)) {
      warnings.push(`${path}.secret: ${JSON.stringify(k.slice(0, 64))} is not a Secret key: file mode cannot use it`);
      return done();
    }
  }
  const dir = mountDir(namespace, secret);
  const who =
    kind === 'RedisService'
      ? 'every client workload of this service (its sidecar checks the AUTH of the client)'
      : 'every client workload of this host (its sidecar AUTHs to Redis)';
  warnings.push(
    `${path}: Redis auth mode file: Envoy reads ${dir}/${key}${user ? ` and ${dir}/${user}` : ''}; ${who} needs Secret ${secret} (keys as here) in its own namespace and these pod annotations:`,
  );
  for (const [k, v] of Object.entries(podAnnotations(namespace, secret))) warnings.push(`${k}: '${v}'`);
  return done();
}
