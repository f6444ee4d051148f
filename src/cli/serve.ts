import { hostname, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { AdmissionDeps } from '../admission/handler.js';
import { warmUpAdmission } from '../admission/warmup.js';
import { Ipv4Range, VipAllocator } from '../admission/vip.js';
import { ConfigStore } from '../cache/store.js';
import { formatListenAddress } from '../config/address.js';
import { parseServeConfig, SERVE_FLAGS, type ServeConfig } from '../config/serve.js';
import { BreezeError } from '../errors.js';
import { asString, type JsonRecord } from '../model/json.js';
import { handledKindOf } from '../model/kinds.js';
import { loadClientNode } from '../kube/client-node.js';
import { ensureDevCertificates } from '../pki/certs.js';
import { SelfManagedCertificates } from '../pki/selfmanaged.js';
import { Controller, SHUTDOWN_FLUSH_MS } from '../reconcile/controller.js';
import { KubernetesEventer } from '../reconcile/events.js';
import { LeaderElector } from '../reconcile/leader.js';
import { Reconciler } from '../reconcile/reconciler.js';
import { DirectoryEnvoyFilterSink } from '../reconcile/sinks/directory.js';
import { KubernetesEnvoyFilterSink } from '../reconcile/sinks/kubernetes.js';
import { BreezeServer } from '../server/index.js';
import { AdmissionFeed } from '../sources/admission.js';
import { FileSource } from '../sources/file.js';
import { IstiodSource, type IstiodEvents } from '../sources/istiod/ads.js';
import { sourceMetrics } from '../sources/istiod/metrics.js';
import { KubernetesSource } from '../sources/kubernetes/kubernetes.js';
import type { Source } from '../sources/types.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { createMetrics, type Metrics } from '../telemetry/metrics.js';

/**
 * Kinds the cache keeps besides the handled ones: Services read as ServiceEntries, Secrets for Redis
 * auth, Namespaces for their istio.io/dataplane-mode label (ambient warnings).
 */
function cacheable(object: JsonRecord): boolean {
  if (handledKindOf(object) !== undefined) return true;
  const kind = asString(object.kind);
  return (
    asString(object.apiVersion) === 'v1' && (kind === 'Service' || kind === 'Secret' || kind === 'Namespace')
  );
}

/** The sources `--sources` selects (admission is the feed, wired into the webhook, not a Source). */
function buildSources(
  config: ServeConfig,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  kubeConfig: KubeConfig | undefined,
  metrics: Metrics,
  /** The kubeconfig of the kubernetes source (local mode may read from an API server too). */
  sourceKubeConfig: KubeConfig | undefined,
): Source[] {
  const sources: Source[] = [];
  if (config.sources.includes('file'))
    sources.push(new FileSource(config.configDir, { logger, kinds: cacheable }));
  if (config.sources.includes('kubernetes')) {
    sources.push(
      new KubernetesSource({
        kubeConfig: required(sourceKubeConfig),
        logger,
        relistIntervalMs: config.relistIntervalMs,
      }),
    );
  }
  if (config.sources.includes('istiod') && config.istiodAddress !== undefined) {
    const podIp = env.POD_IP;
    const podNamespace = env.POD_NAMESPACE ?? 'istio-system';
    if (podIp === undefined || podIp === '') {
      throw new BreezeError(
        'BAD_FLAG',
        'the istiod source needs POD_IP (from the downward API) for its xDS node id',
      );
    }
    const podName = env.POD_NAME ?? hostname();
    // Refusals by istiod are reported as Events on Breeze's own Pod (cluster mode).
    const events: IstiodEvents | undefined =
      kubeConfig === undefined
        ? undefined
        : {
            eventer: new KubernetesEventer({ kubeConfig, logger, instance: podName }),
            object: {
              apiVersion: 'v1',
              kind: 'Pod',
              namespace: podNamespace,
              name: podName,
              ...(env.POD_UID === undefined || env.POD_UID === '' ? {} : { uid: env.POD_UID }),
            },
          };
    sources.push(
      new IstiodSource({
        address: config.istiodAddress,
        ...(config.istiodCaFile === undefined
          ? config.istiodTokenFile === undefined
            ? {}
            : { tokenFile: config.istiodTokenFile }
          : {
              tls: {
                caFile: config.istiodCaFile,
                ...(config.istiodTokenFile === undefined ? {} : { tokenFile: config.istiodTokenFile }),
              },
            }),
        podName,
        podNamespace,
        podIp,
        meshRootNamespace: config.rootNamespace,
        domain: config.domain,
        logger,
        metrics: sourceMetrics(metrics.registry),
        ...(events === undefined ? {} : { events }),
      }),
    );
  }
  return sources;
}

/** The EnvoyFilter writer: sink, reconciler, push loop and (cluster mode) leader election. */
function buildWriter(
  config: ServeConfig,
  env: NodeJS.ProcessEnv,
  store: ConfigStore,
  logger: Logger,
  metrics: Metrics,
  clusterConfig: KubeConfig | undefined,
  certs?: SelfManagedCertificates,
): { controller: Controller; begin: () => Promise<void>; stop: () => Promise<void> } {
  const generation = {
    rootNamespace: config.rootNamespace,
    namespaceScope: config.envoyfilterNamespaceScope,
    domain: config.domain,
    redisAuthMode: config.redisAuthMode,
    protocols: config.protocols,
  };
  const limits = { concurrency: config.apiConcurrency, qps: config.apiQps, burst: config.apiBurst };
  // The reconciler reports retries to the controller, which is built after it.
  const ref: { controller?: Controller } = {};
  const onRetry = (key: string, at: number): void => ref.controller?.onRetry(key, at);
  let reconciler: Reconciler;
  let kubeConfig: KubeConfig | undefined;
  if (config.mode === 'local') {
    const sink = new DirectoryEnvoyFilterSink(config.outDir);
    reconciler = new Reconciler({
      store,
      sink,
      actual: () => sink.actual(),
      generation,
      logger,
      metrics,
      onRetry,
      ...limits,
    });
  } else {
    kubeConfig = required(clusterConfig);
    reconciler = new Reconciler({
      store,
      sink: new KubernetesEnvoyFilterSink({ kubeConfig }),
      generation,
      logger,
      metrics,
      eventer: new KubernetesEventer({ kubeConfig, logger, instance: env.POD_NAME ?? hostname() }),
      adoptAeraki: config.adoptAeraki,
      onRetry,
      ...limits,
    });
  }
  const c = new Controller({
    store,
    reconciler,
    logger,
    metrics,
    quietMs: config.debounceAfterMs,
    maxMs: config.debounceMaxMs,
    resyncIntervalMs: config.resyncIntervalMs,
  });
  ref.controller = c;
  if (kubeConfig !== undefined && config.leaderElect) {
    const elector = new LeaderElector({
      kubeConfig,
      namespace: config.leaseNamespace ?? env.POD_NAMESPACE ?? 'istio-system',
      identity: env.POD_NAME ?? hostname(),
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
      logger,
      metrics,
      onStartedLeading: (signal) => {
        void c.startedLeading(signal);
        // Self-managed certificates: the leader keeps caBundle and the pairs current.
        void certs?.lead(signal);
      },
      onStoppedLeading: async () => {
        c.stoppedLeading();
        await certs?.stopLeading();
      },
    });
    return {
      controller: c,
      begin: () => {
        elector.start();
        return Promise.resolve();
      },
      stop: async () => {
        await elector.stop(); // steps down (no new writes), then releases the Lease
        await c.stop();
      },
    };
  }
  // One writer without election: local mode, or a single replica with --leader-elect=false.
  const always = new AbortController();
  return {
    controller: c,
    begin: () => {
      void certs?.lead(always.signal);
      return c.startedLeading(always.signal);
    },
    stop: async () => {
      await c.flush(SHUTDOWN_FLUSH_MS); // a backlog is not drained: the next start resyncs
      always.abort();
      c.stoppedLeading();
      await certs?.stopLeading();
      await c.stop();
    },
  };
}

/** True for an address only this host can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return (
    h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h)
  );
}

/**
 * The admission feed (admitted changes held as pending in the cache): local mode with a loopback
 * webhook only. Cluster mode never has it (config refuses the source): a review POSTed straight
 * to /validate would steer the EnvoyFilters. A local webhook on a non-loopback address is
 * reachable by others, so there the feed is off too (said once, at start).
 */
function admissionFeed(
  config: ServeConfig,
  store: ConfigStore,
  logger: Logger,
  metrics: Metrics,
): AdmissionFeed | undefined {
  if (config.mode !== 'local' || !config.sources.includes('admission')) return undefined;
  if (!isLoopback(config.listen.host)) {
    logger.warn(
      { listen: formatListenAddress(config.listen) },
      'admission source off: the webhook listens on a non-loopback address, so anyone reaching it could feed the cache; changes arrive from --config-dir only',
    );
    return undefined;
  }
  return new AdmissionFeed(store, { graceMs: config.admissionGraceMs, logger, metrics });
}

function required(kubeConfig: KubeConfig | undefined): KubeConfig {
  if (kubeConfig === undefined)
    throw new BreezeError('INTERNAL', 'no kubeconfig was loaded for the API server');
  return kubeConfig;
}

async function loadKubeConfig(config: ServeConfig): Promise<KubeConfig> {
  const { KubeConfig } = await loadClientNode();
  const kubeConfig = new KubeConfig();
  if (config.kubeconfig === undefined) kubeConfig.loadFromDefault();
  else kubeConfig.loadFromFile(config.kubeconfig);
  return kubeConfig;
}

/** A running Breeze: webhook, probes, config cache, sources and EnvoyFilter writer. */
export interface RunningBreeze {
  readonly config: ServeConfig;
  readonly store: ConfigStore;
  readonly metrics: Metrics;
  readonly webhookPort: number;
  readonly healthPort: number;
  /** The CA of the development certificates created for local mode, when it created them. */
  readonly devCaFile: string | undefined;
  /** Resolves once every source holds its initial state. */
  readonly synced: Promise<void>;
  /** Resolves once the writer has begun (local: first pass written; cluster: election running). */
  readonly writing: Promise<void>;
  /** Not ready, drain in-flight requests, step down, stop the sources. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Cluster mode: use this instead of loading --kubeconfig (in-process tests and benchmarks). */
  readonly kubeConfig?: KubeConfig;
  readonly logger?: Logger;
}

/** Starts every part `config` asks for; `runServe` adds the banner and signal handling. */
export async function startBreeze(
  config: ServeConfig,
  env: NodeJS.ProcessEnv,
  options: StartOptions = {},
): Promise<RunningBreeze> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const metrics = createMetrics();

  const usesDefaultCerts =
    config.mode === 'local' &&
    config.tlsCertFile === SERVE_FLAGS['tls-cert-file'].local &&
    config.tlsKeyFile === SERVE_FLAGS['tls-key-file'].local;
  let devCaFile: string | undefined;
  if (usesDefaultCerts) {
    const hosts = ['localhost', '127.0.0.1', '::1'];
    if (!['0.0.0.0', '::', ...hosts].includes(config.listen.host)) hosts.push(config.listen.host);
    const certs = await ensureDevCertificates(dirname(config.tlsCertFile), hosts);
    devCaFile = certs.caFile;
    logger.info(
      { dir: dirname(config.tlsCertFile), created: certs.created },
      'development certificates ready',
    );
  }

  // Cluster mode: one kubeconfig for sources, writer and certificates (read once). Local mode
  // reads one only for what asks for it (the kubernetes source, self-managed certificates).
  let loaded = options.kubeConfig;
  const kubeConfigNow = async (): Promise<KubeConfig> => (loaded ??= await loadKubeConfig(config));
  const kubeConfig = config.mode === 'cluster' ? await kubeConfigNow() : undefined;

  // Self-managed certificates: every replica serves the pair kept in the Secret (created on the
  // first start), written to files the certificate reloader follows.
  let certs: SelfManagedCertificates | undefined;
  if (config.tlsMode === 'self-managed' && config.tlsSecret !== undefined) {
    certs = new SelfManagedCertificates({
      kubeConfig: await kubeConfigNow(),
      namespace: env.POD_NAMESPACE ?? 'istio-system',
      secretName: config.tlsSecret,
      serviceName: config.webhookService,
      webhookConfigurations: {
        validating: config.webhookConfiguration,
        mutating: config.webhookConfiguration,
      },
      certDir: join(tmpdir(), 'breeze-tls'),
      clusterDomain: config.domain,
      logger,
    });
    await certs.start();
  }

  const store = new ConfigStore(config.domain, Date.now, {
    onRejected: (r) => {
      metrics.cacheRejected.inc({ origin: r.origin });
      logger.warn(
        { origin: r.origin, config: r.key, version: r.version, path: r.path, reason: r.message },
        'object not taken into the config cache; its previous version (if any) is kept',
      );
    },
    onListenerError: (err) => logger.error({ err }, 'a config cache listener failed'),
  });
  const sources = buildSources(
    config,
    env,
    logger,
    kubeConfig,
    metrics,
    config.sources.includes('kubernetes') ? await kubeConfigNow() : undefined,
  );
  const feed = admissionFeed(config, store, logger, metrics);
  const admission: AdmissionDeps = {
    view: store,
    vips: new VipAllocator(new Ipv4Range(config.vipCidr), store),
    ...(feed === undefined ? {} : { onAdmitted: feed.admitted }),
    redisAuthMode: config.redisAuthMode,
    protocols: config.protocols,
    // Who may change Breeze's EnvoyFilters: Breeze's own service account (downward API).
    breezeUsers:
      env.POD_NAMESPACE !== undefined && env.POD_SERVICE_ACCOUNT !== undefined
        ? [`system:serviceaccount:${env.POD_NAMESPACE}:${env.POD_SERVICE_ACCOUNT}`]
        : [],
  };
  feed?.start();
  // Compile the validators before the first request is timed against its CPU budget.
  warmUpAdmission(config.domain);
  // Serving starts at once (liveness); readiness waits for every source's initial state.
  const server = await BreezeServer.start({
    listen: config.listen,
    healthListen: config.healthListen,
    certFile: certs?.certFile ?? config.tlsCertFile,
    keyFile: certs?.keyFile ?? config.tlsKeyFile,
    ...(config.clientCaFile === undefined ? {} : { clientCaFile: config.clientCaFile }),
    clientAllowedNames: config.clientAllowedNames,
    admission,
    logger,
    metrics,
    isSynced: () => sources.every((s) => s.synced()),
    syncReasons: () =>
      sources.flatMap((s) => {
        const reason = s.synced() ? undefined : s.notReadyReason?.();
        return reason === undefined ? [] : [reason];
      }),
    drainDelayMs: config.drainDelayMs,
  });
  const synced = Promise.all(sources.map((s) => s.start(store))).then(() =>
    logger.info({ sources: sources.map((s) => s.name), objects: store.size }, 'config cache synced'),
  );

  const writer = buildWriter(config, env, store, logger, metrics, kubeConfig, certs);
  writer.controller.start();
  // Reconcile once the cache holds every source's initial state: never push from a partial view.
  const writing = synced.then(() => writer.begin());
  if (config.mode === 'cluster')
    writing.catch((err: unknown) => logger.error({ err }, 'could not start writing EnvoyFilters'));

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      feed?.stop();
      await Promise.all([
        server.shutdown(),
        writer.stop().then(() => Promise.all([...sources.map((s) => s.stop()), certs?.stop()])),
      ]);
    })();
    return stopped;
  };
  return {
    config,
    store,
    metrics,
    webhookPort: server.webhookPort,
    healthPort: server.healthPort,
    devCaFile,
    synced,
    writing,
    stop,
  };
}

/** `breeze serve`: runs until SIGTERM or SIGINT, then drains and exits. */
export async function runServe(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
): Promise<void> {
  const config = parseServeConfig(argv, env);
  const logger = createLogger({ level: config.logLevel });
  const breeze = await startBreeze(config, env, { logger });
  const { store } = breeze;

  const host = ['0.0.0.0', '::'].includes(config.listen.host) ? '127.0.0.1' : config.listen.host;
  const base = `https://${formatListenAddress({ host, port: breeze.webhookPort })}`;
  if (config.mode === 'local') {
    await breeze.writing;
    out(`Breeze local mode: ${store.size} objects from ${config.configDir}/ in the config cache`);
    out(`  envoyfilters  written to ${config.outDir}/ and kept current as the cache changes`);
  } else {
    out(`Breeze cluster mode: sources ${config.sources.join(', ')}; ready once every source has synced`);
    out(
      `  envoyfilters  reconciled into the cluster ${config.leaderElect ? 'by the elected leader' : 'by this replica'}`,
    );
  }
  out(`  webhook  POST ${base}/validate  POST ${base}/mutate`);
  out(
    `  health   http://${formatListenAddress({ host: config.healthListen.host, port: breeze.healthPort })}/readyz  /healthz  /metrics`,
  );
  if (config.mode === 'local') {
    const sample = join(
      relative(process.cwd(), config.configDir) || '.',
      'reviews',
      'serviceentry-invalid.json',
    );
    out('Try:');
    out(
      `  curl --cacert ${breeze.devCaFile ?? '<your CA file>'} -H 'Content-Type: application/json' --data @${sample} ${base}/validate`,
    );
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: not ready, draining in-flight requests');
    breeze.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
