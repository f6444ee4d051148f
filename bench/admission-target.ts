// The webhook app alone for the admission benchmark (logging to /dev/null, an empty store), run in
// its own process so the load generator does not share its event loop. The bare server it is
// compared with is bench/admission.ts's startBaseline.
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { Ipv4Range, VipAllocator } from '../src/admission/vip.js';
import { ConfigStore } from '../src/cache/store.js';
import { buildWebhookApp } from '../src/server/app.js';
import { createLogger } from '../src/telemetry/logger.js';
import { createMetrics } from '../src/telemetry/metrics.js';

const [certFile, keyFile] = process.argv.slice(2);
const tls = { cert: readFileSync(certFile!, 'utf8'), key: readFileSync(keyFile!, 'utf8') };

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

// Exit cleanly on a signal so `node --cpu-prof` can write its profile.
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => process.exit(0));
