// `breeze serve --mode cluster` against the fake Kubernetes API: serving at once, ready only
// after every kind is listed, and admission decisions that use what the watch delivered.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { get as httpGet } from 'node:http';
import t from 'tap';
import { spawnBreeze } from '../e2e/harness.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';

function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    httpGet(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', () => resolve(0));
  });
}

function post(port: number, body: unknown, ca: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/validate',
        method: 'POST',
        ca,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let data = '';
        res.on('data', (c: Buffer) => (data += c.toString()));
        res.on('end', () => resolve(JSON.parse(data)));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

t.test('cluster mode: ready after sync; admission sees the watched config', async (t) => {
  const api = await FakeKubeApiServer.start();
  t.teardown(() => api.close());
  api.put({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: {
      name: 'demo',
      namespace: 'dubbo',
      annotations: { interface: 'org.apache.dubbo.samples.DemoService' },
    },
    spec: {
      hosts: ['demo.dubbo.svc.cluster.local'],
      addresses: ['240.240.0.9'],
      ports: [{ number: 20880, name: 'tcp-dubbo', protocol: 'TCP' }],
      resolution: 'STATIC',
    },
  });
  const dir = t.testdir({});
  // Hold every list for a while so "not ready before sync" is observable.
  api.injectFault({
    status: 'hang',
    count: 1,
    path: '/apis/networking.istio.io/v1/serviceentries',
    method: 'GET',
    watch: false,
  });
  const breeze = await spawnBreeze(api, dir, 'breeze-test-0', ['--relist-interval', '5s']);
  t.teardown(() => breeze.child.kill('SIGKILL'));
  const ca = readFileSync(breeze.caFile, 'utf8');
  const ports = await breeze.started;
  t.equal(await status(`http://127.0.0.1:${ports.health}/healthz`), 200, 'alive at once');
  t.equal(await status(`http://127.0.0.1:${ports.health}/readyz`), 503, 'not ready while a list hangs');
  api.clearFaults();
  const deadline = Date.now() + 30_000;
  let ready = 0;
  while (ready !== 200 && Date.now() < deadline) {
    ready = await status(`http://127.0.0.1:${ports.health}/readyz`);
    if (ready !== 200) await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(ready, 200, 'ready once every kind is listed');

  // A VirtualService for the watched Dubbo service gets the protocol rules (several destinations must not total 0).
  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'c1',
      kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' },
      namespace: 'dubbo',
      name: 'demo',
      operation: 'CREATE',
      object: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'demo', namespace: 'dubbo' },
        spec: {
          hosts: ['demo'],
          http: [
            {
              route: [
                { destination: { host: 'demo' }, weight: 0 },
                { destination: { host: 'demo' }, weight: 0 },
              ],
            },
          ],
        },
      },
    },
  };
  const answer = await post(ports.webhook, review, ca);
  t.equal(answer.response.allowed, false);
  t.match(
    answer.response.status.message,
    /^VirtualService\.networking\.istio\.io "[^"]+" is invalid:(\n\* | )spec\.http\[0\]\.route: the weights of its 2 destinations total 0/,
  );
  // The elected leader writes the service's EnvoyFilter into the cluster.
  const efName = 'breeze-outbound-demo.dubbo.svc.cluster.local-240.240.0.9-20880';
  let ef: any;
  const efDeadline = Date.now() + 30_000;
  while (ef === undefined && Date.now() < efDeadline) {
    ef = api.get('networking.istio.io/v1alpha3', 'EnvoyFilter', 'istio-system', efName);
    if (ef === undefined) await new Promise((r) => setTimeout(r, 200));
  }
  t.ok(ef, 'EnvoyFilter written by the leader');
  t.equal(ef?.metadata.labels['app.kubernetes.io/managed-by'], 'breeze');
  t.equal(
    (api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', 'breeze-leader') as any)?.spec.holderIdentity,
    'breeze-test-0',
  );

  breeze.child.kill('SIGTERM');
  t.equal(await breeze.exited, 0, 'clean exit');
  t.equal(
    (api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', 'breeze-leader') as any)?.spec.holderIdentity,
    '',
    'the Lease is released on shutdown',
  );
});
