// Local mode: the reconciler writing a directory through DirectoryEnvoyFilterSink.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigStore } from '../../src/cache/store.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import { DirectoryEnvoyFilterSink } from '../../src/reconcile/sinks/directory.js';
import { dubboSE, GEN, logger } from './fixtures.js';

const signal = new AbortController().signal;

t.test(
  'a push writes and deletes files atomically; a no-op writes nothing; foreign files stay',
  async (t) => {
    const dir = t.testdir({
      'istio-system.breeze-inbound-svc-2.example.com-20880.yaml':
        'kind: EnvoyFilter\nmetadata:\n  name: hand-made\n',
      'notes.txt': 'not ours',
    });
    const store = new ConfigStore();
    const sink = new DirectoryEnvoyFilterSink(dir);
    const reconciler = new Reconciler({ store, sink, generation: GEN, actual: () => sink.actual(), logger });
    store.upsert(dubboSE(1), 'file');
    store.upsert(dubboSE(2), 'file');

    const first = await reconciler.resync(signal);
    t.match(first, { created: 3, failed: 1 });
    t.match(reconciler.failures().get('istio-system/breeze-inbound-svc-2.example.com-20880'), {
      code: 'FOREIGN_OBJECT',
    });
    t.equal(
      readFileSync(join(dir, 'istio-system.breeze-inbound-svc-2.example.com-20880.yaml'), 'utf8'),
      'kind: EnvoyFilter\nmetadata:\n  name: hand-made\n',
      'the foreign file is untouched',
    );
    const file = join(dir, 'istio-system.breeze-inbound-svc-1.example.com-20880.yaml');
    t.match(readFileSync(file, 'utf8'), /app.kubernetes.io\/managed-by: breeze/);
    t.equal((await sink.actual()).length, 3, 'actual state: only our labelled files');

    const mtime = statSync(file).mtimeMs;
    t.match(await reconciler.resync(signal), { created: 0, updated: 0, deleted: 0, unchanged: 3 });
    t.equal(statSync(file).mtimeMs, mtime, 'no-op: nothing rewritten');

    store.upsert(dubboSE(1, { iface: 'org.example.X' }), 'file');
    t.match(await reconciler.reconcile(['ServiceEntry/apps/svc-1'], signal), { updated: 1, unchanged: 1 });
    store.remove('ServiceEntry', 'apps', 'svc-1', 'file');
    t.match(await reconciler.resync(signal), { deleted: 2 });
    t.same(
      readdirSync(dir).sort(),
      [
        'istio-system.breeze-inbound-svc-2.example.com-20880.yaml',
        'istio-system.breeze-outbound-svc-2.example.com-240.240.0.2-20880.yaml',
        'notes.txt',
      ],
      'deleted files gone, no temporary files left',
    );

    writeFileSync(
      join(dir, 'istio-system.breeze-outbound-svc-2.example.com-240.240.0.2-20880.yaml'),
      'garbage: [',
    );
    t.match(await reconciler.resync(signal), { failed: 2 }, 'the earlier foreign file is still reported');
    t.match(
      reconciler.failures().get('istio-system/breeze-outbound-svc-2.example.com-240.240.0.2-20880'),
      { code: 'FOREIGN_OBJECT' },
      'an unparseable file of that name counts as foreign',
    );
    t.equal(
      readFileSync(
        join(dir, 'istio-system.breeze-outbound-svc-2.example.com-240.240.0.2-20880.yaml'),
        'utf8',
      ),
      'garbage: [',
    );
  },
);
