// The Eventer's memory of recent Events and conditions: deduplication and rate limiting keep
// working, and objects the window no longer needs are forgotten (churn gives every recreated
// service a new name).
import t from 'tap';
import { KubernetesEventer, type InvolvedObject } from '../../src/reconcile/events.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';

const logger = createLogger({ level: 'silent' });

const se = (name: string): InvolvedObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  namespace: 'apps',
  name,
});

const redis = (name: string) => ({
  apiVersion: 'redis.aeraki.io/v1alpha1',
  kind: 'RedisService',
  metadata: { name, namespace: 'apps', generation: 1 },
});

t.test('objects without Events or conditions in the last window are forgotten', async (t) => {
  const api = await FakeKubeApiServer.start();
  t.teardown(() => api.close());
  for (let i = 0; i < 10; i++) api.put({ ...redis(`r-${i}`), spec: {} });
  let now = 1_000_000;
  const eventer = new KubernetesEventer({
    kubeConfig: api.kubeConfig(),
    logger,
    now: () => now,
    windowMs: 60_000,
  });
  for (let i = 0; i < 100; i++)
    eventer.event(se(`svc-${i}-g1`), 'Normal', 'EnvoyFilterCreated', `created ${i}`);
  for (let i = 0; i < 10; i++)
    eventer.condition(redis(`r-${i}`), { status: 'True', reason: 'Generated', message: 'ok' });
  await eventer.flush();
  t.equal(eventer.tracked, 110, 'each object remembered within the window');

  // Within the window: the same Event is deduplicated, nothing is forgotten.
  now += 30_000;
  eventer.event(se('svc-0-g1'), 'Normal', 'EnvoyFilterCreated', 'created 0');
  t.equal(eventer.suppressed, 1, 'the same Event within the window is dropped');
  eventer.event(se('late'), 'Normal', 'EnvoyFilterCreated', 'late, first Event');
  t.equal(eventer.tracked, 111);

  // A window later: the churned-away objects are gone; the one sent 30 s into its window is not.
  now += 40_000;
  eventer.event(se('svc-new-g2'), 'Normal', 'EnvoyFilterCreated', 'created new');
  t.equal(eventer.tracked, 2, 'only the objects with an Event in the last window remain');
  eventer.event(se('late'), 'Normal', 'EnvoyFilterCreated', 'late, first Event');
  t.equal(eventer.suppressed, 2, 'an Event sent 40 s ago is still deduplicated');
  eventer.event(se('svc-0-g1'), 'Normal', 'EnvoyFilterCreated', 'created 0');
  t.equal(eventer.suppressed, 2, 'an Event older than the window is sent again');
  await eventer.flush();
});

t.test('the rate limit per object and reason still holds', async (t) => {
  const api = await FakeKubeApiServer.start();
  t.teardown(() => api.close());
  let now = 5_000_000;
  const eventer = new KubernetesEventer({
    kubeConfig: api.kubeConfig(),
    logger,
    now: () => now,
    windowMs: 60_000,
    maxPerWindow: 3,
  });
  for (let i = 0; i < 5; i++) {
    now += 1000;
    eventer.event(se('busy'), 'Warning', 'EnvoyFilterFailed', `failure ${i}`);
  }
  t.equal(eventer.suppressed, 2, 'two of five distinct messages over the limit');
  now += 61_000;
  eventer.event(se('busy'), 'Warning', 'EnvoyFilterFailed', 'failure 5');
  t.equal(eventer.suppressed, 2, 'a new window, a new allowance');
  await eventer.flush();
});
