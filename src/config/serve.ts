import { parseArgs } from 'node:util';
import { BreezeError } from '../errors.js';
import { Ipv4Range } from '../admission/vip.js';
import { isDnsName } from '../model/names.js';
import { parseListenAddress, type ListenAddress } from './address.js';
import { parseGoDuration } from '../model/duration.js';
import { REDIS_AUTH_MODES, type RedisAuthMode } from '../protocols/redis/authmode.js';
import type { Protocol } from '../model/protocol.js';
import { DEFAULT_PROTOCOLS, parseProtocols } from '../protocols/registry.js';

export type Mode = 'local' | 'cluster';
export const TLS_MODES = ['files', 'self-managed'] as const;
export type TlsMode = (typeof TLS_MODES)[number];
export const SOURCES = ['admission', 'file', 'kubernetes', 'istiod'];
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `breeze serve` configuration, parsed and checked once at start-up. */
export interface ServeConfig {
  readonly mode: Mode;
  readonly listen: ListenAddress;
  readonly healthListen: ListenAddress;
  readonly tlsCertFile: string;
  readonly tlsKeyFile: string;
  /** files: --tls-cert-file/--tls-key-file; self-managed: Breeze's own CA and pair in --tls-secret. */
  readonly tlsMode: TlsMode;
  readonly tlsSecret: string | undefined;
  /** CA bundle webhook clients must present a certificate from; undefined: none asked for. */
  readonly clientCaFile: string | undefined;
  /** Client certificate Common Names accepted (with clientCaFile); empty: any. */
  readonly clientAllowedNames: readonly string[];
  /** The webhook Service in POD_NAMESPACE (self-managed: the serving certificate's names). */
  readonly webhookService: string;
  /** Name of both webhook configurations (self-managed: where caBundle is patched). */
  readonly webhookConfiguration: string;
  readonly kubeconfig: string | undefined;
  readonly sources: readonly string[];
  readonly istiodAddress: string | undefined;
  readonly istiodCaFile: string | undefined;
  readonly istiodTokenFile: string | undefined;
  readonly relistIntervalMs: number;
  readonly resyncIntervalMs: number;
  readonly adoptAeraki: boolean;
  readonly leaderElect: boolean;
  readonly leaseNamespace: string | undefined;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly apiQps: number;
  readonly apiBurst: number;
  readonly apiConcurrency: number;
  readonly configDir: string;
  readonly outDir: string;
  readonly rootNamespace: string;
  readonly envoyfilterNamespaceScope: boolean;
  readonly domain: string;
  readonly debounceAfterMs: number;
  readonly debounceMaxMs: number;
  readonly vipCidr: string;
  readonly logLevel: LogLevel;
  readonly drainDelayMs: number;
  readonly admissionGraceMs: number;
  /** `--redis-auth-mode`: Redis passwords from Secrets inline in EnvoyFilters, or read from a mounted file. */
  readonly redisAuthMode: RedisAuthMode;
  /** `--protocols`: the protocols that get EnvoyFilters (kafka only when asked for). */
  readonly protocols: ReadonlySet<Protocol>;
}

interface FlagSpec {
  readonly help: string;
  /** Default per mode; undefined means "not set". */
  readonly local?: string;
  readonly cluster?: string;
}

/** Every `serve` flag, its help and defaults. Each is also read from `BREEZE_<FLAG>`. */
export const SERVE_FLAGS = {
  mode: {
    help: 'local (files in, files out, dev certificates) or cluster',
    local: 'local',
    cluster: 'local',
  },
  listen: { help: 'webhook HTTPS address', local: '127.0.0.1:9443', cluster: ':9443' },
  'health-listen': {
    help: 'plain HTTP for /healthz, /readyz, /metrics',
    local: '127.0.0.1:8080',
    cluster: ':8080',
  },
  'tls-cert-file': {
    help: 'serving certificate (PEM), reloaded on change',
    local: 'certs/tls.crt',
    cluster: '/etc/breeze/tls/tls.crt',
  },
  'tls-key-file': {
    help: 'serving key (PEM), reloaded on change',
    local: 'certs/tls.key',
    cluster: '/etc/breeze/tls/tls.key',
  },
  'tls-mode': {
    help: "files (--tls-cert-file/--tls-key-file) or self-managed (Breeze's own CA and serving pair in --tls-secret, caBundle patched by the leader; cluster mode)",
    local: 'files',
    cluster: 'files',
  },
  'tls-secret': { help: 'self-managed: the Secret (in POD_NAMESPACE) holding the CA and serving pair' },
  'client-ca-file': {
    help: 'CA bundle (PEM), reloaded on change: the webhook port then requires a client certificate that chains to it (a client without one fails the TLS handshake); unset: no client certificate is asked for. The health port is not affected',
  },
  'client-allowed-names': {
    help: "with --client-ca-file: comma-separated subject Common Names accepted (e.g. the API server's webhook client certificate); unset: any certificate the CA bundle verifies",
  },
  'webhook-service': {
    help: "self-managed: the webhook's Service in POD_NAMESPACE (the certificate's DNS names)",
    local: 'breeze',
    cluster: 'breeze',
  },
  'webhook-configuration': {
    help: 'self-managed: name of the validating and the mutating webhook configuration',
    local: 'breeze',
    cluster: 'breeze',
  },
  kubeconfig: { help: 'kubeconfig path (cluster mode; in-cluster config when unset)' },
  sources: {
    help: 'config sources, comma-separated: admission (local mode only), file, kubernetes, istiod (istiod is added in cluster mode when --istiod-address is set)',
    local: 'admission,file',
    cluster: 'kubernetes',
  },
  'istiod-address': {
    help: 'istiod ADS address host:port (istiod source), e.g. istiod.istio-system.svc:15012 (TLS; current istiod refuses the api generator on plaintext 15010)',
  },
  'istiod-ca-file': {
    help: 'CA bundle to trust for TLS to istiod: root-cert.pem of the istio-ca-root-cert ConfigMap, mounted; plaintext when unset (warned at start: current istiod refuses it)',
  },
  'istiod-token-file': {
    help: "projected service-account token with audience istio-ca (e.g. /var/run/secrets/tokens/istio-token, as Istio's sidecar mounts it), re-read on every reconnect and sent to istiod as a bearer token; Breeze must run in the mesh root namespace (--root-namespace)",
  },
  'resync-interval': {
    help: 'full reconcile of every service (level-triggered repair)',
    local: '5m',
    cluster: '5m',
  },
  'adopt-aeraki': {
    help: "true: remove Aeraki's EnvoyFilters (manager=Aeraki) once Breeze's replacements exist",
    local: 'false',
    cluster: 'false',
  },
  'leader-elect': { help: 'elect one writer among replicas with a Lease', local: 'false', cluster: 'true' },
  'lease-namespace': { help: 'namespace of the leader Lease (default: POD_NAMESPACE, else istio-system)' },
  'leader-elect-lease-duration': {
    help: 'how long a standby waits after the last renewal before taking over',
    local: '15s',
    cluster: '15s',
  },
  'leader-elect-renew-deadline': {
    help: 'a leader that could not renew for this long stops writing',
    local: '10s',
    cluster: '10s',
  },
  'leader-elect-retry-period': { help: 'renew and acquire attempts this often', local: '2s', cluster: '2s' },
  'api-qps': { help: 'EnvoyFilter writes per second toward the API server', local: '20', cluster: '20' },
  'api-burst': { help: 'burst of EnvoyFilter writes', local: '40', cluster: '40' },
  'api-concurrency': { help: 'EnvoyFilter writes in flight at most', local: '4', cluster: '4' },
  'relist-interval': {
    help: 'full relist of every watched kind (repairs missed events)',
    local: '10m',
    cluster: '10m',
  },
  'config-dir': { help: 'manifests directory for the file source', local: 'examples', cluster: 'examples' },
  'out-dir': { help: 'where local mode writes EnvoyFilters', local: 'out', cluster: 'out' },
  'root-namespace': {
    help: 'namespace of generated EnvoyFilters',
    local: 'istio-system',
    cluster: 'istio-system',
  },
  'envoyfilter-namespace-scope': {
    help: "true: put each service's EnvoyFilters in the service's namespace",
    local: 'false',
    cluster: 'false',
  },
  domain: {
    help: 'cluster DNS domain for short host names',
    local: 'cluster.local',
    cluster: 'cluster.local',
  },
  'debounce-after': { help: 'push after this quiet time', local: '500ms', cluster: '500ms' },
  'debounce-max': { help: 'push at the latest after this', local: '10s', cluster: '10s' },
  'vip-cidr': {
    help: 'IPv4 range for ServiceEntry VIPs',
    local: '240.240.0.0/16',
    cluster: '240.240.0.0/16',
  },
  'log-level': { help: LOG_LEVELS.join('|'), local: 'info', cluster: 'info' },
  'redis-auth-mode': {
    help: 'inline: Redis passwords from Secrets written into EnvoyFilters; file: Envoy reads them from the Secret mounted into sidecars (README "Redis passwords")',
    local: 'inline',
    cluster: 'inline',
  },
  protocols: {
    help: 'protocols that get EnvoyFilters, comma-separated (dubbo, thrift, redis, zookeeper, kafka); other protocols\' ports stay plain TCP. kafka\'s filter is not in the stock istio/proxyv2: when enabled it reaches only sidecars with proxy metadata BREEZE_KAFKA_BROKER=true (README "Kafka")',
    local: DEFAULT_PROTOCOLS,
    cluster: DEFAULT_PROTOCOLS,
  },
  'drain-delay': { help: 'on SIGTERM, time between not-ready and closing', local: '0s', cluster: '3s' },
  'admission-grace': {
    help: 'drop an admitted change no source confirms within this time',
    local: '30s',
    cluster: '30s',
  },
} as const satisfies Record<string, FlagSpec>;

export type ServeFlag = keyof typeof SERVE_FLAGS;

export function envName(flag: string): string {
  return `BREEZE_${flag.toUpperCase().replaceAll('-', '_')}`;
}

export function serveUsage(): string {
  const lines = Object.entries(SERVE_FLAGS).map(([name, spec]: [string, FlagSpec]) => {
    const dflt =
      spec.local === spec.cluster
        ? spec.local
        : `${spec.local ?? '-'} (local) / ${spec.cluster ?? '-'} (cluster)`;
    return `  --${name.padEnd(16)} ${spec.help}${dflt === undefined ? '' : ` [default ${dflt}]`}  (${envName(name)})`;
  });
  return ['Usage: breeze serve [flags]', '', ...lines].join('\n');
}

/** Parses `serve` flags (argv wins over BREEZE_* env, env over defaults) and checks every value. */
export function parseServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServeConfig {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.keys(SERVE_FLAGS).map((k) => [k, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new BreezeError('BAD_FLAG', `${(err as Error).message}\n\n${serveUsage()}`);
  }
  const given = parsed.values as Record<string, string | undefined>;
  const raw = (flag: ServeFlag, mode?: Mode): string | undefined => {
    const spec: FlagSpec = SERVE_FLAGS[flag];
    return given[flag] ?? env[envName(flag)] ?? (mode === undefined ? undefined : spec[mode]);
  };
  const modeText = raw('mode') ?? 'local';
  if (modeText !== 'local' && modeText !== 'cluster') bad('mode', modeText, 'must be local or cluster');
  const mode: Mode = modeText === 'cluster' ? 'cluster' : 'local';
  const str = (flag: ServeFlag): string => raw(flag, mode) ?? '';

  const address = (flag: ServeFlag): ListenAddress =>
    parseListenAddress(str(flag)) ?? bad(flag, str(flag), 'must be host:port, :port or [ipv6]:port');
  const duration = (flag: ServeFlag): number => {
    const ms = parseGoDuration(str(flag));
    return ms === undefined || ms < 0
      ? bad(flag, str(flag), 'must be a duration such as 500ms, 10s or 1m')
      : ms;
  };
  const positive = (flag: ServeFlag): number => {
    const n = Number(str(flag));
    return Number.isInteger(n) && n > 0 ? n : bad(flag, str(flag), 'must be a positive integer');
  };
  const bool = (flag: ServeFlag): boolean => {
    const v = str(flag).toLowerCase();
    if (v !== 'true' && v !== 'false') bad(flag, str(flag), 'must be true or false');
    return v === 'true';
  };
  const logLevel =
    LOG_LEVELS.find((l) => l === str('log-level')) ??
    bad('log-level', str('log-level'), `must be one of ${LOG_LEVELS.join(', ')}`);
  const redisAuthMode =
    REDIS_AUTH_MODES.find((m) => m === str('redis-auth-mode')) ??
    bad('redis-auth-mode', str('redis-auth-mode'), `must be one of ${REDIS_AUTH_MODES.join(', ')}`);
  const protocols = parseProtocols(str('protocols'));
  if ('error' in protocols) bad('protocols', str('protocols'), protocols.error);
  const sources = str('sources')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of sources) {
    if (!SOURCES.includes(s)) bad('sources', s, `each source must be one of ${SOURCES.join(', ')}`);
  }
  if (mode === 'cluster' && raw('sources') === undefined && raw('istiod-address') !== undefined)
    sources.push('istiod');
  if (mode === 'local' && (sources.includes('kubernetes') || sources.includes('istiod'))) {
    bad('sources', str('sources'), 'kubernetes and istiod need --mode cluster');
  }
  if (mode === 'cluster' && sources.includes('admission')) {
    bad(
      'sources',
      str('sources'),
      'admission is a local-mode source: in cluster mode anyone who reaches the webhook port can POST a review the API server never saw, so only the kubernetes and istiod sources feed the cache (the watch delivers a persisted change within the debounce period)',
    );
  }
  const domain = str('domain');
  if (!isDnsName(domain)) bad('domain', domain, 'must be a DNS name such as cluster.local');
  try {
    new Ipv4Range(str('vip-cidr'));
  } catch (err) {
    throw new BreezeError('BAD_FLAG', (err as Error).message);
  }
  const tlsMode =
    TLS_MODES.find((m) => m === str('tls-mode')) ??
    bad('tls-mode', str('tls-mode'), `must be one of ${TLS_MODES.join(', ')}`);
  if (tlsMode === 'self-managed') {
    if (mode !== 'cluster') bad('tls-mode', tlsMode, 'needs --mode cluster');
    const secret = raw('tls-secret') ?? '';
    if (!isDnsName(secret)) bad('tls-secret', secret, 'must name a Secret when --tls-mode is self-managed');
    if (!isDnsName(str('webhook-service')))
      bad('webhook-service', str('webhook-service'), 'must be a Service name');
    if (!isDnsName(str('webhook-configuration')))
      bad('webhook-configuration', str('webhook-configuration'), 'must be a webhook configuration name');
  }
  const clientCaFile = raw('client-ca-file');
  if (clientCaFile !== undefined && clientCaFile.trim() === '')
    bad('client-ca-file', clientCaFile, 'must be the path of a PEM CA bundle');
  const namesText = raw('client-allowed-names');
  const clientAllowedNames = (namesText ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  if (namesText !== undefined) {
    if (clientCaFile === undefined)
      bad(
        'client-allowed-names',
        namesText,
        'needs --client-ca-file (names are checked on verified client certificates)',
      );
    if (clientAllowedNames.length === 0)
      bad('client-allowed-names', namesText, 'must list at least one Common Name');
  }
  const config: ServeConfig = {
    mode,
    listen: address('listen'),
    healthListen: address('health-listen'),
    tlsCertFile: str('tls-cert-file'),
    tlsKeyFile: str('tls-key-file'),
    tlsMode,
    tlsSecret: raw('tls-secret'),
    clientCaFile,
    clientAllowedNames,
    webhookService: str('webhook-service'),
    webhookConfiguration: str('webhook-configuration'),
    kubeconfig: raw('kubeconfig'),
    sources,
    istiodAddress: raw('istiod-address'),
    istiodCaFile: raw('istiod-ca-file'),
    istiodTokenFile: raw('istiod-token-file'),
    relistIntervalMs: duration('relist-interval'),
    resyncIntervalMs: duration('resync-interval'),
    adoptAeraki: bool('adopt-aeraki'),
    leaderElect: bool('leader-elect'),
    leaseNamespace: raw('lease-namespace'),
    leaseDurationMs: duration('leader-elect-lease-duration'),
    renewDeadlineMs: duration('leader-elect-renew-deadline'),
    retryPeriodMs: duration('leader-elect-retry-period'),
    apiQps: positive('api-qps'),
    apiBurst: positive('api-burst'),
    apiConcurrency: positive('api-concurrency'),
    configDir: str('config-dir'),
    outDir: str('out-dir'),
    rootNamespace: str('root-namespace'),
    envoyfilterNamespaceScope: bool('envoyfilter-namespace-scope'),
    domain,
    debounceAfterMs: duration('debounce-after'),
    debounceMaxMs: duration('debounce-max'),
    vipCidr: str('vip-cidr'),
    logLevel,
    drainDelayMs: duration('drain-delay'),
    admissionGraceMs: duration('admission-grace'),
    redisAuthMode,
    protocols,
  };
  if (config.debounceMaxMs < config.debounceAfterMs) {
    bad(
      'debounce-max',
      str('debounce-max'),
      `must not be shorter than --debounce-after (${str('debounce-after')})`,
    );
  }
  // As for Kubernetes controllers: retry < renew deadline < lease duration, or two leaders overlap.
  if (config.renewDeadlineMs >= config.leaseDurationMs)
    bad(
      'leader-elect-renew-deadline',
      str('leader-elect-renew-deadline'),
      `must be shorter than --leader-elect-lease-duration (${str('leader-elect-lease-duration')})`,
    );
  if (config.retryPeriodMs >= config.renewDeadlineMs)
    bad(
      'leader-elect-retry-period',
      str('leader-elect-retry-period'),
      `must be shorter than --leader-elect-renew-deadline (${str('leader-elect-renew-deadline')})`,
    );
  if (config.sources.includes('istiod') && config.istiodAddress === undefined) {
    throw new BreezeError('BAD_FLAG', '--istiod-address is required when --sources includes istiod');
  }
  for (const flag of ['istiod-ca-file', 'istiod-token-file'] as const) {
    const value = raw(flag);
    if (value !== undefined && value.trim() === '') bad(flag, value, 'must be the path of a file');
  }
  return config;
}

function bad(flag: string, value: string, why: string): never {
  throw new BreezeError('BAD_FLAG', `--${flag} (${envName(flag)}): ${JSON.stringify(value)} ${why}`);
}
