// kubeRequest's deadline against an API server that accepts a request and never answers.
// No wall-clock assertion here depends on how fast a loaded machine schedules this process: the
// deadline is long enough for a 2-core machine with both cores busy to connect well before it, the
// only upper bound is a generous safety net (the failure it catches is "waits forever"), and the
// abort test aborts once the server has the request (an event, not a sleep).
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { kubeRequest, toApiError } from '../../src/kube/request.js';
import { kubeConfigFor } from '../fakes/kube-apiserver.js';

// A full collection on demand, without starting node with --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The deadline under test: generous, so a loaded machine still connects long before it. */
const DEADLINE_MS = 3000;
/** "Waits forever" is anything past this; never reached by a working deadline, however loaded. */
const SAFETY_NET_MS = 60_000;

t.test('a hung request ends at its deadline even when garbage is collected meanwhile', async (t) => {
  const held: ServerResponse[] = [];
  const server = createServer((_req, res) => held.push(res)); // never answers
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const kc = kubeConfigFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  // On Node 20 a timeout signal inside AbortSignal.any() is held weakly: a collection before the
  // deadline used to drop it, and the request then waited forever.
  const collect = setInterval(gc, 20);
  t.teardown(() => clearInterval(collect));
  const received = once(server, 'request');
  const start = performance.now();
  let safety: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    kubeRequest(kc, { method: 'GET', path: '/api/v1/namespaces', timeoutMs: DEADLINE_MS }).then(
      () => 'answered',
      (err: unknown) => toApiError(err, 'list namespaces'),
    ),
    new Promise<string>((resolve) => {
      safety = setTimeout(() => resolve(`still waiting after ${SAFETY_NET_MS} ms`), SAFETY_NET_MS);
    }),
  ]);
  clearTimeout(safety);
  const elapsed = performance.now() - start;
  t.type(outcome, Error, 'the request failed instead of waiting');
  t.equal((outcome as { code?: string }).code, 'API_RETRYABLE', 'a timeout is retryable');
  // A timer never fires early, however loaded the machine: a lower bound cannot flake.
  t.ok(elapsed >= DEADLINE_MS - 5, `not before its deadline (${Math.round(elapsed)} ms)`);
  // Had the deadline passed before the server read the request, the event would never come.
  const arrived = await Promise.race([
    received.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), SAFETY_NET_MS).unref()),
  ]);
  t.ok(arrived, 'the request reached the server');
  t.equal(held.length, 1, 'the server did get the request: the deadline, not a connect error, ended it');
});

t.test("the caller's signal still aborts a request without a deadline", async (t) => {
  const server = createServer(() => undefined); // never answers
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const kc = kubeConfigFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const ctl = new AbortController();
  const received = once(server, 'request');
  const pending = kubeRequest(kc, { method: 'GET', path: '/api/v1/namespaces', signal: ctl.signal });
  pending.catch(() => undefined); // asserted below; no unhandled rejection meanwhile
  await received; // the request is in flight and hung: only the signal can end it
  ctl.abort(new Error('stepped down'));
  await t.rejects(pending, { name: 'AbortError' });
});
