// The whole pipeline in one process: "kubectl" (client-node, user alice) writes through the fake API
// server, which calls Breeze's webhooks as the chart registers them (mutate, validate), persists, and
// tells Breeze's watch; Breeze (cluster mode, Kubernetes + istiod sources: admission never feeds the
// cache in cluster mode) reconciles EnvoyFilters back into the fake. Every check compares the
// EnvoyFilters in the fake with what the generators make of the config in the fake and in the fake
// istiod.
import { createServer, request, type Server } from 'node:https';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import type { JsonRecord } from '../../src/model/json.js';
import { writeDevCertificates } from '../../src/pki/certs.js';
import { istioTypeUrl } from '../../src/sources/istiod/mcp.js';
import { FakeIstiod } from '../fakes/istiod.js';
import { FakeKubeApiServer } from '../fakes/kube-apiserver.js';
import { waitFor } from '../wait.js';
import {
  BREEZE_USER,
  desiredFilters,
  EF_API,
  filterWrites,
  installWebhooks,
  kubectl,
  sameMap,
  startInstance,
  writtenFilters,
  type K8s,
} from './harness.js';

const repo = new URL('../../', import.meta.url).pathname;
const examples = (file: string): K8s[] =>
  parseAllDocuments(readFileSync(join(repo, 'examples', file), 'utf8')).map((d) => d.toJS() as K8s);

const DUBBO_HOST = 'org.apache.dubbo.samples.basic.api.demoservice';
const dubboEntry = (): K8s => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: {
    name: 'dubbo-demo',
    namespace: 'dubbo',
    annotations: { interface: 'org.apache.dubbo.samples.basic.api.DemoService' },
  },
  spec: {
    hosts: [DUBBO_HOST],
    ports: [{ number: 20880, name: 'tcp-dubbo' }],
    workloadSelector: { labels: { app: 'dubbo-provider' } },
    location: 'MESH_INTERNAL',
    resolution: 'STATIC',
  },
});

/** The HTTP status and message of a refused client-node call. */
async function refusal(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) {
      const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: string };
      return { code: err.code, message: body.message ?? '' };
    }
    throw err;
  }
  throw new Error('the call was accepted');
}

/** POSTs a review straight to Breeze's webhook, as any pod that reaches the port can. */
async function forge(port: number, caFile: string, review: JsonRecord): Promise<JsonRecord> {
  const body = JSON.stringify(review);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/validate',
        method: 'POST',
        ca: readFileSync(caFile),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode, ...(JSON.parse(text) as JsonRecord) });
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** An AdmissionReview as the API server would send it (which it never did for these). */
function forgedReview(
  uid: string,
  operation: 'CREATE' | 'UPDATE' | 'DELETE',
  resource: { group: string; version: string; kind: string; resource: string },
  object: K8s | null,
  oldObject: K8s | null,
): JsonRecord {
  const meta = ((object ?? oldObject)?.metadata ?? {}) as { name: string; namespace: string };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: resource.group, version: resource.version, kind: resource.kind },
      resource: { group: resource.group, version: resource.version, resource: resource.resource },
      name: meta.name,
      namespace: meta.namespace,
      operation,
      userInfo: { username: 'system:serviceaccount:default:attacker', groups: ['system:authenticated'] },
      object,
      oldObject,
      dryRun: false,
    },
  };
}

/** A second validating webhook (another policy engine) that denies objects labelled policy=deny. */
async function policyWebhook(dir: string): Promise<{ server: Server; url: string; caBundle: string }> {
  const certs = await writeDevCertificates(join(dir, 'policy-tls'), ['127.0.0.1']);
  const server = createServer(
    { cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) },
    (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const review = JSON.parse(body) as { request: { uid: string } };
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: {
              uid: review.request.uid,
              allowed: false,
              status: { code: 403, message: 'blocked by policy' },
            },
          }),
        );
      });
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/deny`,
    caBundle: readFileSync(certs.caFile).toString('base64'),
  };
}

t.test('apply, update, dry run, refused and unpersisted changes, delete: the whole pipeline', async (t) => {
  const dir = t.testdir({});
  const api = await FakeKubeApiServer.start({ bookmarkIntervalMs: 200 });
  t.teardown(() => api.close());
  const istiod = new FakeIstiod();
  await istiod.start();
  t.teardown(() => istiod.stop());
  // istiod knows one Thrift service from another registry (not in this cluster's API).
  const thriftEntry = examples('thrift.yaml').find((o) => o.kind === 'ServiceEntry')!;
  const fromIstiod = [thriftEntry];
  istiod.setObjects(istioTypeUrl('v1', 'ServiceEntry'), fromIstiod);

  const { breeze, logs, caFile } = await startInstance(api, dir, { istiodAddress: istiod.address });
  t.teardown(() => breeze.stop());
  await installWebhooks(api, caFile);
  await breeze.writing;

  const alice = kubectl(api);
  const converged = (what: string) =>
    waitFor(what, () => sameMap(writtenFilters(api), desiredFilters(api, fromIstiod)), 15_000);

  await t.test('istiod-only config is written before any apply', async (t) => {
    await converged('the Thrift filters from istiod');
    t.ok([...writtenFilters(api).keys()].some((n) => n.includes('thrift-sample-server')));
  });

  await t.test('a Dubbo ServiceEntry without addresses gets protocol TCP and a VIP', async (t) => {
    const created = await alice.create<K8s>(dubboEntry());
    const spec = created.spec as { addresses: string[]; ports: { protocol: string }[] };
    t.equal(spec.addresses.length, 1);
    t.match(spec.addresses[0], /^240\.240\.\d+\.\d+$/, 'a VIP from --vip-cidr');
    t.equal(spec.ports[0]?.protocol, 'TCP');
    const stored = api.get('networking.istio.io/v1', 'ServiceEntry', 'dubbo', 'dubbo-demo') as K8s;
    t.same((stored.spec as JsonRecord).addresses, spec.addresses, 'persisted as mutated');
    const calls = api.admission.calls.filter((c) => c.name === 'dubbo-demo');
    t.same(
      calls.map((c) => [c.webhook, c.outcome]),
      [
        ['mutate.breeze.io', 'patched'],
        ['validate.breeze.io', 'allowed'],
      ],
      'mutated, then validated',
    );
    const vip = spec.addresses[0]!;
    await converged('the Dubbo filters');
    const names = [...writtenFilters(api).keys()];
    t.ok(names.includes(`breeze-outbound-${DUBBO_HOST}-${vip}-20880`), 'outbound filter on the VIP');
    t.ok(
      names.some((n) => n.startsWith(`breeze-inbound-`) && n.includes('dubbo')),
      'inbound filter',
    );
  });

  await t.test('its VirtualService and DestinationRule route by method and subset', async (t) => {
    const [, dr, vs] = examples('dubbo.yaml');
    for (const o of [dr!, vs!]) {
      (o.metadata as JsonRecord).name = 'dubbo-demo';
      o.spec = JSON.parse(JSON.stringify(o.spec).replaceAll('dubbo-demoservice', 'dubbo-demo')) as JsonRecord;
      await alice.create(o);
    }
    await converged('the routed Dubbo filters');
    const vip = (
      (api.get('networking.istio.io/v1', 'ServiceEntry', 'dubbo', 'dubbo-demo') as K8s).spec as {
        addresses: string[];
      }
    ).addresses[0]!;
    const ef = api.get(
      EF_API,
      'EnvoyFilter',
      'istio-system',
      `breeze-outbound-${DUBBO_HOST}-${vip}-20880`,
    ) as K8s;
    const spec = JSON.stringify(ef.spec);
    t.ok(spec.includes(`"outbound|20880|v1|${DUBBO_HOST}"`), 'routes to the v1 subset');
    t.ok(spec.includes(`"outbound|20880|v2|${DUBBO_HOST}"`), 'routes to the v2 subset');
  });

  await t.test('a Redis service with RedisService, RedisDestination and Secrets', async (t) => {
    for (const o of examples('redis.yaml')) await alice.create(o);
    await converged('the Redis filters');
    const redis = [...writtenFilters(api).keys()].filter((n) => n.includes('redis'));
    t.ok(redis.length >= 2, `Redis filters written: ${redis.join(', ')}`);
    const all = JSON.stringify(api.list(EF_API, 'EnvoyFilter'));
    t.ok(all.includes('cluster-password'), 'the upstream credential reaches Envoy');
    t.notOk(
      logs.some((l) => l.includes('cluster-password') || l.includes('testredis')),
      'no password in any log line',
    );
  });

  await t.test('a refused change: the API answers with the webhook message, nothing persisted', async (t) => {
    const [, , vs] = examples('dubbo.yaml');
    const bad = structuredClone(vs!);
    (bad.metadata as JsonRecord).name = 'bad-weights';
    const route = (bad.spec as { http: { route: { weight: number }[] }[] }).http.at(-1)!.route;
    // Weights are relative (a total other than 100 is only a warning); a total of 0 is refused.
    route[0]!.weight = 0;
    route[1]!.weight = 0;
    const before = api.list('networking.istio.io/v1', 'VirtualService').length;
    const r = await refusal(alice.create(bad));
    t.equal(r.code, 422, "the validator's own code (Invalid) is passed on");
    t.equal(
      r.message,
      'admission webhook "validate.breeze.io" denied the request: VirtualService.networking.istio.io "bad-weights" is invalid: spec.http[1].route: the weights of its 2 destinations total 0, so no destination gets traffic; give at least one a positive weight',
    );
    t.equal(api.get('networking.istio.io/v1', 'VirtualService', 'dubbo', 'bad-weights'), undefined);
    t.equal(api.list('networking.istio.io/v1', 'VirtualService').length, before, 'nothing persisted');
  });

  await t.test('dry run: the answer shows the VIP, nothing is written or reserved', async (t) => {
    const marker = filterWrites(api).length;
    const dry = dubboEntry();
    (dry.metadata as JsonRecord).name = 'dubbo-dry';
    (dry.spec as JsonRecord).hosts = ['dry.dubbo.example'];
    const answer = await alice.create<K8s>(dry, undefined, 'All');
    const vip = (answer.spec as { addresses: string[] }).addresses[0];
    t.match(vip, /^240\.240\./, 'the dry-run answer carries the VIP');
    t.ok(
      api.admission.calls.some(
        (c) => c.name === 'dubbo-dry' && c.dryRun && c.webhook === 'validate.breeze.io',
      ),
      'the webhooks were told it is a dry run',
    );
    t.equal(api.get('networking.istio.io/v1', 'ServiceEntry', 'dubbo', 'dubbo-dry'), undefined);
    await new Promise((r) => setTimeout(r, 600)); // several debounce periods
    t.equal(filterWrites(api).length, marker, 'no EnvoyFilter write');
    t.notOk([...writtenFilters(api).keys()].some((n) => n.includes('dry.dubbo.example')));
  });

  await t.test(
    'admitted by Breeze, refused later in the chain: no filter is ever written for it',
    async (t) => {
      const policy = await policyWebhook(dir);
      t.teardown(() => policy.server.close());
      api.put({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingWebhookConfiguration',
        metadata: { name: 'zz-policy' },
        webhooks: [
          {
            name: 'deny.policy.example',
            clientConfig: { url: policy.url, caBundle: policy.caBundle },
            rules: [
              {
                apiGroups: ['*'],
                apiVersions: ['*'],
                resources: ['*'],
                operations: ['CREATE', 'UPDATE'],
                scope: '*',
              },
            ],
            objectSelector: { matchLabels: { policy: 'deny' } },
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            failurePolicy: 'Fail',
            timeoutSeconds: 5,
          },
        ],
      });
      t.teardown(() =>
        api.remove('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', '', 'zz-policy'),
      );
      const marker = filterWrites(api).length;
      const doomed = dubboEntry();
      (doomed.metadata as JsonRecord).name = 'dubbo-doomed';
      (doomed.metadata as JsonRecord).labels = { policy: 'deny' };
      (doomed.spec as JsonRecord).hosts = ['doomed.dubbo.example'];
      const r = await refusal(alice.create(doomed));
      t.equal(r.code, 403);
      t.equal(r.message, 'admission webhook "deny.policy.example" denied the request: blocked by policy');
      t.ok(
        api.admission.calls.some(
          (c) => c.name === 'dubbo-doomed' && c.webhook === 'validate.breeze.io' && c.allowed,
        ),
        'Breeze admitted it first',
      );
      // Before: the admitted change reached the cluster at once and went after the grace period.
      // Now admission never feeds the cache in cluster mode: nothing is ever written for it.
      t.equal(breeze.store.get('ServiceEntry', 'dubbo', 'dubbo-doomed'), undefined, 'not in the cache');
      t.same(breeze.store.pendingKeys(), [], 'nothing pending');
      const seen = new Set<string>();
      const watch = setInterval(() => {
        for (const n of writtenFilters(api).keys()) if (n.includes('doomed')) seen.add(n);
      }, 10);
      await new Promise((r) => setTimeout(r, 1500)); // many debounce periods (100 ms here)
      clearInterval(watch);
      t.same([...seen], [], 'no EnvoyFilter for it, at any time');
      t.equal(filterWrites(api).length, marker, 'no EnvoyFilter write at all');
      await converged('the state without it');
    },
  );

  await t.test('updates: a new port and a new route reach the filters', async (t) => {
    const current = await alice.read<K8s>({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'dubbo-demo', namespace: 'dubbo' },
    });
    const vip = (current.spec as { addresses: string[] }).addresses[0]!;
    (current.spec as { ports: unknown[] }).ports.push({ number: 20881, name: 'tcp-dubbo-2' });
    const updated = await alice.replace<K8s>(current);
    t.same((updated.spec as JsonRecord).addresses, [vip], 'an update keeps the VIP');
    t.equal(
      (updated.spec as { ports: { protocol: string }[] }).ports[1]?.protocol,
      'TCP',
      'new port mutated too',
    );
    await converged('the second port');
    t.ok(writtenFilters(api).has(`breeze-outbound-${DUBBO_HOST}-${vip}-20881`));

    const vs = await alice.read<K8s>({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'dubbo-demo', namespace: 'dubbo' },
    });
    const before = writtenFilters(api);
    (vs.spec as { http: JsonRecord[] }).http = [
      { route: [{ destination: { host: DUBBO_HOST, subset: 'v1' } }] },
    ];
    await alice.replace(vs);
    await converged('the new route');
    const after = writtenFilters(api);
    const changed = [...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k);
    t.ok(
      changed.length > 0 && changed.every((n) => n.startsWith('breeze-outbound-')),
      `changed: ${changed.join(', ')}`,
    );
  });

  await t.test(
    'forged reviews POSTed straight to /validate change no EnvoyFilter; the real changes do',
    async (t) => {
      const rsType = {
        group: 'redis.aeraki.io',
        version: 'v1alpha1',
        kind: 'RedisService',
        resource: 'redisservices',
      };
      const seType = {
        group: 'networking.istio.io',
        version: 'v1',
        kind: 'ServiceEntry',
        resource: 'serviceentries',
      };
      const persisted = api.get('redis.aeraki.io/v1alpha1', 'RedisService', 'redis', 'redis-cluster') as K8s;
      const mirrored = structuredClone(persisted);
      const routes = (mirrored.spec as { redis: { mirror?: unknown[] }[] }).redis;
      routes[1]!.mirror = [
        { route: { host: 'redis-cluster.redis.svc.cluster.local' }, percentage: { value: 100 } },
      ];
      const created = dubboEntry();
      (created.metadata as JsonRecord).name = 'dubbo-forged';
      (created.spec as JsonRecord).hosts = ['forged.dubbo.example'];
      (created.spec as JsonRecord).addresses = ['240.240.200.1'];
      const forgeries: [string, JsonRecord][] = [
        ['CREATE of a Dubbo ServiceEntry', forgedReview('f-1', 'CREATE', seType, created, null)],
        ['UPDATE adding a 100% mirror', forgedReview('f-2', 'UPDATE', rsType, mirrored, persisted)],
        ['DELETE of the RedisService', forgedReview('f-3', 'DELETE', rsType, null, persisted)],
      ];
      const before = writtenFilters(api);
      const marker = filterWrites(api).length;
      const OUT = 'breeze-outbound-redis-cluster.redis.svc.cluster.local-10.96.40.1-6379';
      const mirrors = (m: Map<string, string>): number =>
        (m.get(OUT) ?? '').split('requestMirrorPolicy').length - 1;
      t.match(
        before.get(OUT),
        /downstreamAuthPasswords/,
        'the RedisService gives its listener downstream auth',
      );
      t.equal(mirrors(before), 1, 'one mirror (the prefix route)');
      for (let round = 0; round < 2; round++) {
        for (const [what, review] of forgeries) {
          const answer = await forge(breeze.webhookPort, caFile, review);
          t.equal(answer.status, 200, `${what}: answered`);
          t.equal((answer.response as { allowed: boolean }).allowed, true, `${what}: allowed (it is valid)`);
        }
        await new Promise((r) => setTimeout(r, 700)); // several debounce periods (100 ms here)
      }
      t.equal(filterWrites(api).length, marker, 'no EnvoyFilter write');
      t.ok(
        sameMap(writtenFilters(api), before),
        'every EnvoyFilter unchanged: auth kept, no mirror, nothing new',
      );
      t.equal(
        breeze.store.get('ServiceEntry', 'dubbo', 'dubbo-forged'),
        undefined,
        'the forged CREATE is not cached',
      );
      t.same(breeze.store.pendingKeys(), [], 'nothing pending');

      // The same changes made for real, through the API server, reach the filters.
      await alice.replace(mirrored);
      await converged('the real mirror');
      t.equal(mirrors(writtenFilters(api)), 2, 'the catch-all route now mirrors too');
      const newEntry = await alice.create<K8s>(created);
      t.same((newEntry.spec as JsonRecord).addresses, ['240.240.200.1']);
      await converged('the real CREATE');
      t.ok(
        [...writtenFilters(api).keys()].some((n) => n.includes('forged.dubbo.example')),
        'its filters are written',
      );
      await alice.delete(persisted);
      await converged('the real DELETE');
      t.notMatch(
        writtenFilters(api).get(OUT),
        /downstreamAuthPasswords/,
        'no RedisService: no downstream auth',
      );
    },
  );

  await t.test('nobody but Breeze may edit its filters', async (t) => {
    const [name] = [...writtenFilters(api).keys()];
    const ef = api.get(EF_API, 'EnvoyFilter', 'istio-system', name!) as K8s;
    (ef.spec as JsonRecord).priority = 7;
    const r = await refusal(alice.replace(ef));
    t.equal(r.code, 403);
    t.match(r.message, /^admission webhook "envoyfilters\.breeze\.io" denied the request: /);
    t.ok(
      api.requests.some(
        (q) => q.user === BREEZE_USER && q.path.includes('/envoyfilters') && q.method !== 'GET',
      ),
      'Breeze itself writes them (its own account skips the webhooks)',
    );
  });

  await t.test('delete everything: every filter is gone', async (t) => {
    istiod.setObjects(istioTypeUrl('v1', 'ServiceEntry'), []);
    istiod.push();
    fromIstiod.length = 0;
    const kinds: [string, string][] = [
      ['networking.istio.io/v1', 'VirtualService'],
      ['networking.istio.io/v1', 'DestinationRule'],
      ['networking.istio.io/v1', 'ServiceEntry'],
      ['redis.aeraki.io/v1alpha1', 'RedisService'],
      ['redis.aeraki.io/v1alpha1', 'RedisDestination'],
      ['v1', 'Secret'],
      ['v1', 'Service'],
    ];
    for (const [apiVersion, kind] of kinds) for (const o of api.list(apiVersion, kind)) await alice.delete(o);
    await waitFor('every Breeze filter to be deleted', () => writtenFilters(api).size === 0, 15_000);
    t.equal(desiredFilters(api).size, 0);
    t.equal(api.list(EF_API, 'EnvoyFilter').length, 0, 'no EnvoyFilter left at all');
  });
});
