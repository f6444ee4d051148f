import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AdmissionDeps } from '../admission/handler.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { buildWebhookApp, type WebhookApp } from './app.js';
import { HealthServer, type Readiness } from './health.js';
import { ClientAuthGuard } from './client-auth.js';
import { CertificateReloader } from './tls.js';

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
}

export interface BreezeServerOptions {
  readonly listen: ListenOptions;
  readonly healthListen: ListenOptions;
  readonly certFile: string;
  readonly keyFile: string;
  /**
   * CA bundle (PEM) webhook clients must present a certificate from (--client-ca-file); the
   * handshake fails without one. Unset: no client certificate is asked for.
   */
  readonly clientCaFile?: string;
  /** Client certificate Common Names accepted (--client-allowed-names); empty: any. */
  readonly clientAllowedNames?: readonly string[];
  readonly admission: AdmissionDeps;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** True once the config cache holds a complete view (admission decisions depend on it). */
  readonly isSynced: () => boolean;
  /** While not synced: why, per source (added to the /readyz reasons). */
  readonly syncReasons?: () => readonly string[];
  /** Time between going not-ready and closing the listener, for endpoints to drop this pod. */
  readonly drainDelayMs?: number;
  /** /healthz fails once the main event loop has not turned for this long (default 10 s). */
  readonly liveStallMs?: number;
  /** Certificate poll interval (file events trigger reloads sooner). */
  readonly pollIntervalMs?: number;
}

/** The running webhook (HTTPS), probes and metrics (HTTP), and the certificate reloader. */
export class BreezeServer {
  private draining = false;
  private shutdownPromise: Promise<void> | undefined;

  private constructor(
    private readonly webhook: WebhookApp,
    private readonly health: HealthServer,
    private readonly reloader: CertificateReloader,
    private readonly clientAuth: ClientAuthGuard | undefined,
    private readonly opts: BreezeServerOptions,
  ) {}

  /** Loads the certificate (TLS_MATERIAL when unusable) and listens on both ports. */
  static async start(opts: BreezeServerOptions): Promise<BreezeServer> {
    const reloader = new CertificateReloader({
      certFile: opts.certFile,
      keyFile: opts.keyFile,
      ...(opts.clientCaFile === undefined ? {} : { clientCaFile: opts.clientCaFile }),
      logger: opts.logger,
      metrics: opts.metrics,
      ...(opts.pollIntervalMs === undefined ? {} : { pollIntervalMs: opts.pollIntervalMs }),
    });
    await reloader.start();
    const pair = reloader.current();
    const clientCa = reloader.currentClientCa();
    opts.metrics.tlsCertificateExpiry.set(Math.floor(pair.notAfter.getTime() / 1000));
    const webhook = buildWebhookApp({
      admission: opts.admission,
      logger: opts.logger,
      metrics: opts.metrics,
      tls: { cert: pair.cert, key: pair.key, ...(clientCa === undefined ? {} : { ca: clientCa.pem }) },
      draining: () => ref.server?.draining ?? false,
    });
    // The apps ask the server for its state; it exists once they do.
    const ref: { server?: BreezeServer } = {};
    const clientAuth =
      clientCa === undefined
        ? undefined
        : new ClientAuthGuard(webhook.server, {
            allowedNames: opts.clientAllowedNames ?? [],
            logger: opts.logger,
          });
    if (clientAuth !== undefined) reloader.onClientCaChange((ca) => clientAuth.caChanged(ca));
    let health: HealthServer | undefined;
    try {
      reloader.attach(webhook.server);
      await webhook.listen({ host: opts.listen.host, port: opts.listen.port });
      health = await HealthServer.start({
        host: opts.healthListen.host,
        port: opts.healthListen.port,
        metrics: opts.metrics,
        logger: opts.logger,
        readiness: () => ref.server?.readiness() ?? { ready: false, reasons: ['starting'] },
        ...(opts.liveStallMs === undefined ? {} : { liveStallMs: opts.liveStallMs }),
      });
    } catch (err) {
      try {
        await webhook.close();
      } finally {
        reloader.stop();
        clientAuth?.detach();
      }
      throw err;
    }
    const server = new BreezeServer(webhook, health, reloader, clientAuth, opts);
    ref.server = server;
    opts.logger.info(
      {
        webhookPort: server.webhookPort,
        healthPort: server.healthPort,
        clientCertificates: clientAuth === undefined ? 'not requested' : 'required',
      },
      'breeze webhook server listening',
    );
    return server;
  }

  /** The bound webhook port (the real one when started with port 0). */
  get webhookPort(): number {
    return (this.webhook.server.address() as AddressInfo).port;
  }

  get healthPort(): number {
    return this.health.port;
  }

  /** Ready iff the certificate is loaded, the cache is synced and the server is not draining. */
  readiness(): Readiness {
    const reasons: string[] = [];
    if (!this.reloader.loaded) reasons.push('certificate not loaded');
    if (!this.opts.isSynced()) reasons.push('cache not synced', ...(this.opts.syncReasons?.() ?? []));
    if (this.draining) reasons.push('draining');
    return { ready: reasons.length === 0, reasons };
  }

  /**
   * Goes not-ready at once, waits drainDelayMs for endpoints to drop this pod, then closes the
   * webhook (in-flight requests finish, idle keep-alive connections close), the health endpoint
   * and the reloader. Idempotent: every call returns the same promise.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.drain();
    return this.shutdownPromise;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    const delay = this.opts.drainDelayMs ?? 0;
    if (delay > 0) await sleep(delay);
    try {
      await this.webhook.close();
    } finally {
      try {
        await this.health.close();
      } finally {
        this.reloader.stop();
        this.clientAuth?.detach();
      }
    }
    this.opts.logger.info('breeze webhook server stopped');
  }
}
