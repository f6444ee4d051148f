import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigStore } from '../../src/cache/store.js';
import { Controller } from '../../src/reconcile/controller.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import { DirectoryEnvoyFilterSink } from '../../src/reconcile/sinks/directory.js';
import { createLogger } from '../../src/telemetry/logger.js';

const se = (name: string, port: number) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: 'ns' },
  spec: {
    hosts: [`${name}.ns.svc.cluster.local`],
    addresses: ['240.240.5.5'],
    ports: [{ number: port, name: 'tcp-zookeeper' }],
    resolution: 'STATIC',
  },
});

function setup(dir: string) {
  const store = new ConfigStore();
  const logger = createLogger({ level: 'silent' });
  const sink = new DirectoryEnvoyFilterSink(dir);
  const generation = { rootNamespace: 'istio-system', namespaceScope: false, domain: 'cluster.local' };
  const reconciler = new Reconciler({ store, sink, actual: () => sink.actual(), generation, logger });
  const controller = new Controller({
    store,
    reconciler,
    logger,
    quietMs: 10,
    maxMs: 100,
    resyncIntervalMs: 60_000,
  });
  return { store, controller };
}

t.test('the leader follows cache changes; a standby writes nothing; a new leader resyncs', async (t) => {
  const dir = t.testdir({});
  const { store, controller } = setup(dir);
  t.teardown(() => controller.stop());
  controller.start();
  store.upsert(se('a', 2181), 'file');
  await controller.flush();
  t.same(readdirSync(dir), [], 'not leading: nothing written');

  const term = new AbortController();
  await controller.startedLeading(term.signal);
  const a = join(dir, 'istio-system.breeze-outbound-a.ns.svc.cluster.local-240.240.5.5-2181.yaml');
  t.ok(existsSync(a), 'leadership starts with a resync');
  store.upsert(se('b', 2182), 'file');
  await controller.flush();
  t.equal(readdirSync(dir).length, 2, 'a change is pushed');

  term.abort();
  controller.stoppedLeading();
  store.remove('ServiceEntry', 'ns', 'a', 'file');
  await controller.flush();
  t.ok(existsSync(a), 'after losing leadership nothing is deleted');

  await controller.startedLeading(new AbortController().signal);
  t.notOk(existsSync(a), 'the next leader repairs what it missed');
});
