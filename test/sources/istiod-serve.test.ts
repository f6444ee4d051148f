// `breeze serve` (cluster mode, as the chart runs it) against an istiod that refuses it: the
// refusal reaches /readyz, /metrics and a Kubernetes Event on Breeze's own Pod, and Breeze keeps
// serving (no crash) while it backs off.
import grpc from '@grpc/grpc-js';
import t from 'tap';
import { waitFor } from '../wait.js';
import type { JsonRecord } from '../../src/model/json.js';
import { NAMESPACE } from '../chart/helm.js';
import { startInstance } from '../e2e/harness.js';
import { APIGEN_UNAUTHENTICATED, FakeIstiod } from '../fakes/istiod.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';

t.test('an istiod refusal shows in /readyz, /metrics and as an Event on the Pod', async (t) => {
  const dir = t.testdir({});
  const api = await FakeKubeApiServer.start({ bookmarkIntervalMs: 200 });
  t.teardown(() => api.close());
  // Current istiod: the api generator needs a verified identity; Breeze connects in plaintext.
  const istiod = new FakeIstiod({ auth: { tokens: {} } });
  await istiod.start();
  t.teardown(() => istiod.stop());
  const { breeze, logs } = await startInstance(api, dir, { istiodAddress: istiod.address });
  t.teardown(() => breeze.stop());
  const health = `http://127.0.0.1:${breeze.healthPort}`;

  t.ok(
    logs.some((l) => /connects in plaintext/.test(l) && /"level":"warn"/.test(l)),
    'the plaintext setup is warned about at start',
  );
  await waitFor('refused', () => istiod.refusals.length >= 1);
  t.equal(istiod.refusals[0]?.code, grpc.status.UNAUTHENTICATED);
  t.equal(istiod.refusals[0]?.details, APIGEN_UNAUTHENTICATED);

  let readyz: { ready: boolean; reasons: string[] } = { ready: true, reasons: [] };
  await waitFor('readyz names the refusal', async () => {
    const res = await fetch(`${health}/readyz`);
    readyz = (await res.json()) as typeof readyz;
    return res.status === 503 && readyz.reasons.some((r) => r.startsWith('istiod source: istiod refused'));
  });
  t.equal(readyz.ready, false);
  t.ok(readyz.reasons.includes('cache not synced'));
  t.match(
    readyz.reasons.find((r) => r.startsWith('istiod source')),
    /UNAUTHENTICATED, \d+ attempts\): Breeze must connect with TLS to port 15012/,
  );

  const metrics = await (await fetch(`${health}/metrics`)).text();
  t.match(metrics, /^breeze_source_ready\{source="istiod"\} 0$/m);
  t.match(metrics, /^breeze_source_errors_total\{source="istiod",reason="auth"\} [1-9]\d*$/m);
  t.match(metrics, /^breeze_source_errors_total\{source="istiod",reason="connect"\} 0$/m);

  await waitFor('an Event on the Pod', () => api.list('v1', 'Event').length > 0);
  const events = api.list('v1', 'Event').filter((e) => e.reason === 'IstiodAuthFailed');
  t.ok(events.length >= 1, 'an Event per refusal (identical ones deduplicated by the event sink)');
  const event = events[0]!;
  t.same(event.involvedObject, { apiVersion: 'v1', kind: 'Pod', namespace: NAMESPACE, name: 'breeze-0' });
  t.equal(event.type, 'Warning');
  t.equal((event.metadata as JsonRecord).namespace, NAMESPACE);
  t.match(event.message, /requires an authenticated control-plane identity/);
  t.match(event.message, /Fix: Breeze must run in the mesh root namespace/);

  const errors = logs.filter((l) => /"reason":"auth"/.test(l));
  const refused = istiod.refusals.length;
  t.ok(errors.length >= 1 && errors.length <= refused, 'one error line per refusal, never more');
  t.match(errors[0], /"attempt":1/);
  t.match(errors[0], /"level":"error"/);
  // Still serving: liveness answers.
  t.equal((await fetch(`${health}/healthz`)).status, 200);
});
