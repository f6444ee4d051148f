// A server for the admission benchmark, run in its own process so the load generator does not
// share its event loop: `breeze` (the real webhook app, logging to /dev/null) or `baseline` (a bare
// node:https server that parses the same body and returns a fixed AdmissionReview).
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import pino from 'pino';
import { Ipv4Range, VipAllocator } from '../src/admission/vip.js';
import { ConfigStore } from '../src/cache/store.js';
import { buildWebhookApp } from '../src/server/app.js';
import { createLogger } from '../src/telemetry/logger.js';
import { createMetrics } from '../src/telemetry/metrics.js';

const [which, certFile, keyFile] = process.argv.slice(2);
const tls = { cert: readFileSync(certFile!, 'utf8'), key: readFileSync(keyFile!, 'utf8') };

if (which === 'baseline') {
  const fixed = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'fixed', allowed: true },
  });
  const server = createServer({ ...tls, minVersion: 'TLSv1.2' }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(fixed);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  process.stdout.write(`${typeof addr === 'object' && addr !== null ? addr.port : 0}\n`);
} else {
  const store = new ConfigStore();
  const app = buildWebhookApp({
    admission: { view: store, vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store) },
    logger: createLogger({
      level: 'info',
      destination: pino.destination({ dest: '/dev/null', sync: false }),
    }),
    metrics: createMetrics(),
    tls,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  process.stdout.write(`${typeof addr === 'object' && addr !== null ? addr.port : 0}\n`);
}

// Exit cleanly on a signal so `node --cpu-prof` can write its profile.
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => process.exit(0));
