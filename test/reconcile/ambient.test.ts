// The generation side of ambient mode: a namespace label flip alone re-plans the services of that
// namespace (the store reports them), and the note is logged and sent as a GenerationWarning
// Event once per change, never rewriting the EnvoyFilters.
import t from 'tap';
import { RecordingEventer } from '../../src/reconcile/events.js';
import { dubboSE, memoryEnv } from './fixtures.js';

const NOTE =
  'ServiceEntry/apps/svc-1: namespace "apps" is in ambient mode (istio.io/dataplane-mode=ambient): its pods run ' +
  'without a sidecar, so these EnvoyFilters do nothing for them (ztunnel and waypoints do not run them); put ' +
  'namespace "apps" in sidecar mode, or label its pods istio.io/dataplane-mode=none and inject sidecars';

const ns = (mode: string | undefined) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name: 'apps', labels: mode === undefined ? {} : { 'istio.io/dataplane-mode': mode } },
});

t.test('a label flip re-plans the namespace services; the note is sent once per change', async (t) => {
  const eventer = new RecordingEventer();
  const { store, sink, reconciler } = memoryEnv({ eventer });
  const signal = new AbortController().signal;
  store.upsert(dubboSE(1), 'kubernetes');
  store.upsert(
    { ...dubboSE(2), metadata: { name: 'svc-2', namespace: 'other', annotations: { interface: 'a.B' } } },
    'kubernetes',
  );
  const dirty: string[][] = [];
  store.subscribe((keys) => dirty.push([...keys].sort()));
  // What the controller does with a change: reconcile the keys it affects.
  const push = async (): Promise<void> => {
    for (const keys of dirty.splice(0)) await reconciler.reconcile(keys, signal);
  };
  const notes = (): string[] =>
    eventer.events.filter((e) => e.reason === 'GenerationWarning').map((e) => `${e.type} ${e.message}`);

  t.match(await reconciler.resync(signal), { created: 4 });
  const writes = sink.calls.length;
  t.same(notes(), []);

  store.replace('kubernetes', 'Namespace', [ns('ambient')]);
  t.same(dirty, [['ServiceEntry/apps/svc-1']], 'only the service of that namespace');
  await push();
  t.same(notes(), [`Warning ${NOTE}`]);
  t.match(eventer.events.find((e) => e.reason === 'GenerationWarning')?.object, {
    kind: 'ServiceEntry',
    namespace: 'apps',
    name: 'svc-1',
  });
  t.equal(sink.calls.length, writes, 'no EnvoyFilter written for a note');

  // The same label again (a relist), and resyncs: nothing new.
  store.replace('kubernetes', 'Namespace', [ns('ambient')]);
  await push();
  await reconciler.resync(signal);
  await reconciler.reconcile(['ServiceEntry/apps/svc-1'], signal);
  t.equal(notes().length, 1, 'once per change');

  // Back to sidecar mode, then ambient again: reported again.
  store.replace('kubernetes', 'Namespace', [ns(undefined)]);
  await push();
  t.equal(notes().length, 1);
  store.apply('kubernetes', 'Namespace', '', 'apps', ns('ambient'));
  await push();
  t.same(notes(), [`Warning ${NOTE}`, `Warning ${NOTE}`]);
  t.equal(sink.calls.length, writes, 'still no write');
});
