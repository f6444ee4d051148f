// kubeRequest's deadline against an API server that accepts a request and never answers.
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
  const start = Date.now();
  const outcome = await Promise.race([
    kubeRequest(kc, { method: 'GET', path: '/api/v1/namespaces', timeoutMs: 300 }).then(
      () => 'answered',
      (err: unknown) => toApiError(err, 'list namespaces'),
    ),
    new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 3 s'), 3000).unref()),
  ]);
  t.type(outcome, Error, 'the request failed instead of waiting');
  t.equal((outcome as { code?: string }).code, 'API_RETRYABLE', 'a timeout is retryable');
  t.ok(Date.now() - start < 2000, 'at about its deadline');
  t.equal(held.length, 1, 'the server did get the request');
});

t.test("the caller's signal still aborts a request without a deadline", async (t) => {
  const server = createServer(() => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const kc = kubeConfigFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const ctl = new AbortController();
  const pending = kubeRequest(kc, { method: 'GET', path: '/api/v1/namespaces', signal: ctl.signal });
  setTimeout(() => ctl.abort(new Error('stepped down')), 100);
  await t.rejects(pending, { name: 'AbortError' });
});
