import { dirname, join, relative } from 'node:path';
import type { AdmissionDeps } from '../admission/handler.js';
import { Ipv4Range, VipAllocator } from '../admission/vip.js';
import { ConfigStore } from '../cache/store.js';
import { formatListenAddress } from '../config/address.js';
import { parseServeConfig, SERVE_FLAGS } from '../config/serve.js';
import { BreezeError } from '../errors.js';
import { asString, type JsonRecord } from '../model/json.js';
import { handledKindOf } from '../model/kinds.js';
import { ensureDevCertificates } from '../pki/certs.js';
import { DirectoryPublisher } from '../reconcile/local.js';
import { BreezeServer } from '../server/index.js';
import { AdmissionFeed } from '../sources/admission.js';
import { FileSource } from '../sources/file.js';
import { createLogger } from '../telemetry/logger.js';
import { createMetrics } from '../telemetry/metrics.js';

/** Kinds the cache keeps besides the handled ones: Services read as ServiceEntries, Secrets for Redis auth. */
function cacheable(object: JsonRecord): boolean {
  if (handledKindOf(object) !== undefined) return true;
  const kind = asString(object.kind);
  return asString(object.apiVersion) === 'v1' && (kind === 'Service' || kind === 'Secret');
}

/** `breeze serve`: runs until SIGTERM or SIGINT, then drains and exits. */
export async function runServe(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
): Promise<void> {
  const config = parseServeConfig(argv, env);
  if (config.mode === 'cluster' || config.sources.some((s) => s !== 'file')) {
    throw new BreezeError(
      'BAD_FLAG',
      '--mode cluster and the kubernetes and istiod sources are not available in this version yet; use --mode local',
    );
  }
  const logger = createLogger({ level: config.logLevel });
  const metrics = createMetrics();

  const usesDefaultCerts =
    config.tlsCertFile === SERVE_FLAGS['tls-cert-file'].local &&
    config.tlsKeyFile === SERVE_FLAGS['tls-key-file'].local;
  let caFile: string | undefined;
  if (usesDefaultCerts) {
    const hosts = ['localhost', '127.0.0.1', '::1'];
    if (!['0.0.0.0', '::', ...hosts].includes(config.listen.host)) hosts.push(config.listen.host);
    const certs = await ensureDevCertificates(dirname(config.tlsCertFile), hosts);
    caFile = certs.caFile;
    logger.info(
      { dir: dirname(config.tlsCertFile), created: certs.created },
      'development certificates ready',
    );
  }

  // Local mode's sources: the config dir (watched) and the admission feed.
  const store = new ConfigStore(config.domain);
  store.subscribe(() => metrics.cacheChanges.inc({ origin: 'any' }));
  const files = new FileSource(config.configDir, { logger, kinds: cacheable });
  await files.start(store);
  const objects = store.size;
  const feed = new AdmissionFeed(store, { graceMs: config.admissionGraceMs, logger, metrics });
  feed.start();
  const publisher = new DirectoryPublisher(store, {
    dir: config.outDir,
    options: {
      rootNamespace: config.rootNamespace,
      namespaceScope: config.envoyfilterNamespaceScope,
      domain: config.domain,
    },
    logger,
    quietMs: config.debounceAfterMs,
    maxMs: config.debounceMaxMs,
  });
  const generated = await publisher.start();
  const admission: AdmissionDeps = {
    view: store,
    vips: new VipAllocator(new Ipv4Range(config.vipCidr), store),
    onAdmitted: feed.record,
  };
  const server = await BreezeServer.start({
    listen: config.listen,
    healthListen: config.healthListen,
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    admission,
    logger,
    metrics,
    isSynced: () => true,
    drainDelayMs: config.drainDelayMs,
  });

  const host = ['0.0.0.0', '::'].includes(config.listen.host) ? '127.0.0.1' : config.listen.host;
  const base = `https://${formatListenAddress({ host, port: server.webhookPort })}`;
  const sample = join(
    relative(process.cwd(), config.configDir) || '.',
    'reviews',
    'serviceentry-invalid.json',
  );
  out(`Breeze ${config.mode} mode: ${objects} objects from ${config.configDir}/ in the config cache`);
  out(
    `  envoyfilters  ${generated.envoyFilters} in ${config.outDir}/ (${generated.problems} problems), kept current as the cache changes`,
  );
  out(`  webhook  POST ${base}/validate  POST ${base}/mutate`);
  out(
    `  health   http://${formatListenAddress({ host: config.healthListen.host, port: server.healthPort })}/readyz  /healthz  /metrics`,
  );
  out('Try:');
  out(
    `  curl --cacert ${caFile ?? '<your CA file>'} -H 'Content-Type: application/json' --data @${sample} ${base}/validate`,
  );

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: not ready, draining in-flight requests');
    feed.stop();
    Promise.all([server.shutdown(), files.stop(), publisher.stop()]).then(
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
