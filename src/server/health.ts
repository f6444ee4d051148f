import Fastify, { type FastifyInstance } from 'fastify';
import type { Metrics } from '../telemetry/metrics.js';

export interface Readiness {
  readonly ready: boolean;
  readonly reasons: string[];
}

export interface HealthAppOptions {
  readonly metrics: Metrics;
  readonly readiness: () => Readiness;
}

/**
 * Plain HTTP probes and metrics, on their own port so kubelet and Prometheus need no TLS:
 * `GET /healthz` (and `/livez`) answers while the event loop runs, `GET /readyz` only while the
 * webhook can answer correctly, `GET /metrics` is the Prometheus text format.
 */
export function buildHealthApp(opts: HealthAppOptions): FastifyInstance {
  const app = Fastify({ logger: false, keepAliveTimeout: 10_000, requestTimeout: 10_000 });
  const live = (): string => 'ok';
  app.get('/healthz', live);
  app.get('/livez', live);
  app.get('/readyz', (_request, reply) => {
    const r = opts.readiness();
    void reply.code(r.ready ? 200 : 503).send({ ready: r.ready, reasons: r.reasons });
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await opts.metrics.registry.metrics();
    return reply.type(opts.metrics.registry.contentType).send(text);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ message: `${request.method} ${request.url} not found` });
  });
  return app;
}
