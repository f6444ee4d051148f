// The fake API server through client-node's own clients (KubernetesObjectApi, CoreV1Api, Watch)
// and plain fetch: the REST semantics later issues rely on.
import {
  ApiException,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  type KubernetesObject,
} from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { FakeKubeApiServer } from './kube-apiserver.js';
import { parseLabelSelector } from './selectors.js';

const SE = 'networking.istio.io/v1';

function se(name: string, ns = 'apps', labels: Record<string, string> = {}): any {
  return {
    apiVersion: SE,
    kind: 'ServiceEntry',
    metadata: { name, namespace: ns, labels },
    spec: { hosts: [`${name}.example.com`] },
  };
}

async function start(t: Test) {
  const fake = await FakeKubeApiServer.start({ bookmarkIntervalMs: 30 });
  t.teardown(() => fake.close());
  const http = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const res = await fetch(fake.url + path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': contentType },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as any };
  };
  return { fake, http, objects: KubernetesObjectApi.makeApiClient(fake.kubeConfig()) };
}

async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

/** Collects watch events until `until` says stop (or the stream ends). */
function collect(
  fake: FakeKubeApiServer,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  until: (events: { type: string; object: any }[]) => boolean,
): Promise<{ type: string; object: any }[]> {
  const events: { type: string; object: any }[] = [];
  return new Promise((resolve, reject) => {
    let controller: AbortController | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      controller?.abort();
      resolve(events);
    };
    new Watch(fake.kubeConfig())
      .watch(
        path,
        query,
        (type, object) => {
          events.push({ type, object });
          if (until(events)) finish();
        },
        () => finish(),
      )
      .then((c) => {
        controller = c;
        if (done) c.abort();
      }, reject);
  });
}

t.test('discovery: groups, versions, resources; served versions configurable', async (t) => {
  const { fake, http } = await start(t);
  t.strictSame((await http('GET', '/api')).body.versions, ['v1']);
  const core = (await http('GET', '/api/v1')).body;
  t.ok(core.resources.some((r: any) => r.name === 'services' && r.namespaced && r.kind === 'Service'));
  const groups = (await http('GET', '/apis')).body.groups.map((g: any) => g.name);
  t.ok(
    groups.includes('networking.istio.io') &&
      groups.includes('redis.aeraki.io') &&
      groups.includes('coordination.k8s.io'),
  );
  const istio = (await http('GET', '/apis/networking.istio.io')).body;
  t.strictSame(
    istio.versions.map((v: any) => v.version),
    ['v1', 'v1beta1', 'v1alpha3'],
  );
  t.equal(istio.preferredVersion.version, 'v1');
  const v1 = (await http('GET', '/apis/networking.istio.io/v1')).body;
  t.notOk(
    v1.resources.some((r: any) => r.name === 'envoyfilters'),
    'EnvoyFilter is v1alpha3 only',
  );
  t.ok(v1.resources.some((r: any) => r.name === 'serviceentries/status'));

  fake.serveVersions('networking.istio.io', ['v1beta1']);
  t.strictSame(
    (await http('GET', '/apis/networking.istio.io')).body.versions.map((v: any) => v.version),
    ['v1beta1'],
  );
  t.equal((await http('GET', '/apis/networking.istio.io/v1')).status, 404);
  t.equal((await http('GET', '/apis/networking.istio.io/v1/serviceentries')).status, 404);
  t.equal((await http('GET', '/apis/networking.istio.io/v1beta1/serviceentries')).status, 200);
  fake.serveVersions('redis.aeraki.io', []);
  t.equal((await http('GET', '/apis/redis.aeraki.io')).status, 404, 'a group with no served version is gone');
  t.equal((await http('GET', '/apis/example.com/v1/things')).status, 404);

  fake.register({
    group: 'example.com',
    versions: ['v2'],
    resource: 'widgets',
    kind: 'Widget',
    namespaced: false,
  });
  t.equal(
    (await http('POST', '/apis/example.com/v2/widgets', { metadata: { name: 'w' } })).status,
    201,
    'any registered resource works',
  );
  t.equal((await http('GET', '/apis/example.com/v2/widgets/w')).body.kind, 'Widget');
});

t.test('create, read, replace, delete through KubernetesObjectApi', async (t) => {
  const { fake, objects } = await start(t);
  const rv0 = fake.resourceVersion;
  const created = await objects.create(se('a'));
  t.equal(created.metadata?.resourceVersion, String(rv0 + 1), 'one cluster-wide counter');
  t.ok(created.metadata?.uid);
  t.ok(created.metadata?.creationTimestamp instanceof Date, 'client-node parses the timestamp');
  t.match(
    (fake.get(SE, 'ServiceEntry', 'apps', 'a')?.metadata as any).creationTimestamp,
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
  );
  t.equal(created.metadata?.generation, 1);
  t.equal(await code(objects.create(se('a'))), 409, 'AlreadyExists');

  const read = await objects.read<KubernetesObject & { spec: any }>({
    apiVersion: SE,
    kind: 'ServiceEntry',
    metadata: { name: 'a', namespace: 'apps' },
  });
  t.strictSame(read.spec, { hosts: ['a.example.com'] });
  t.equal(
    await code(
      objects.read({ apiVersion: SE, kind: 'ServiceEntry', metadata: { name: 'nope', namespace: 'apps' } }),
    ),
    404,
  );

  const stale = se('a');
  stale.metadata.resourceVersion = '1';
  t.equal(await code(objects.replace(stale)), 409, 'Conflict on a stale resourceVersion');
  const current = se('a');
  current.metadata.resourceVersion = read.metadata?.resourceVersion;
  current.spec = { hosts: ['b.example.com'] };
  const updated = await objects.replace(current);
  t.equal(updated.metadata?.generation, 2, 'a spec change bumps generation');
  t.equal(updated.metadata?.uid, created.metadata?.uid);
  t.equal(await code(objects.replace(se('missing'))), 404);

  // The same object in another served version.
  const beta = await objects.read({
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'ServiceEntry',
    metadata: { name: 'a', namespace: 'apps' },
  });
  t.equal(beta.apiVersion, 'networking.istio.io/v1beta1');

  await objects.delete(se('a'));
  t.equal(await code(objects.delete(se('a'))), 404, 'delete of an absent object');
  t.equal(fake.get(SE, 'ServiceEntry', 'apps', 'a'), undefined);
});

t.test('core Services through CoreV1Api, list with selectors', async (t) => {
  const { fake, http } = await start(t);
  const core = fake.kubeConfig().makeApiClient(CoreV1Api);
  const svc = (namespace: string, name: string, labels?: Record<string, string>) =>
    fake.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace, labels },
      spec: { ports: [{ port: 80 }] },
    });
  svc('a', 's1', { env: 'prod', tier: 'web' });
  svc('b', 's2', { env: 'dev' });
  svc('b', 's3');
  const typed = await core.listServiceForAllNamespaces({ labelSelector: 'env in (dev,prod)' });
  t.strictSame(
    typed.items.map((i) => i.metadata?.name),
    ['s1', 's2'],
  );
  const names = async (q: string) =>
    (await http('GET', `/api/v1/services?${q}`)).body.items
      .map((i: any) => `${i.metadata.namespace}/${i.metadata.name}`)
      .join(',');
  t.equal(await names(''), 'a/s1,b/s2,b/s3');
  t.equal(await names('labelSelector=env%3Dprod'), 'a/s1');
  t.equal(await names('labelSelector=env!%3Dprod'), 'b/s2,b/s3', '!= matches objects without the label');
  t.equal(await names(`labelSelector=${encodeURIComponent('env in (dev, prod)')}`), 'a/s1,b/s2');
  t.equal(await names(`labelSelector=${encodeURIComponent('env notin (dev)')}`), 'a/s1,b/s3');
  t.equal(await names('labelSelector=tier'), 'a/s1');
  t.equal(await names('labelSelector=!tier'), 'b/s2,b/s3');
  t.equal(await names(`labelSelector=${encodeURIComponent('env in (dev,prod),!tier')}`), 'b/s2');
  t.equal(await names('fieldSelector=metadata.name%3Ds2'), 'b/s2');
  t.equal(await names('fieldSelector=metadata.namespace%3Db,metadata.name!%3Ds2'), 'b/s3');
  t.equal((await http('GET', '/api/v1/namespaces/b/services')).body.items.length, 2);
  t.equal((await http('GET', '/api/v1/services?fieldSelector=spec.type%3DX')).status, 400);
  t.equal((await http('GET', '/api/v1/services?labelSelector=a%20in%20b')).status, 400);
  const list = (await http('GET', '/api/v1/services')).body;
  t.equal(list.kind, 'ServiceList');
  t.equal(list.metadata.resourceVersion, String(fake.resourceVersion));
  t.notOk('kind' in list.items[0], 'list items carry no kind');
  t.equal(await code(core.readNamespacedService({ name: 'nope', namespace: 'a' })), 404);
  const missing = await http('GET', '/api/v1/namespaces/a/services/nope');
  t.match(missing.body, { kind: 'Status', code: 404, reason: 'NotFound' });
  t.strictSame(parseLabelSelector('a=b'), [{ op: '=', key: 'a', value: 'b' }]);
});

t.test('pagination and resourceVersion semantics of lists', async (t) => {
  const { fake, http } = await start(t);
  for (const n of ['a', 'b', 'c', 'd', 'e']) fake.put(se(n));
  const page1 = (await http('GET', `/apis/${SE}/serviceentries?limit=2`)).body;
  t.strictSame(
    page1.items.map((i: any) => i.metadata.name),
    ['a', 'b'],
  );
  fake.put(se('aa'));
  fake.remove(SE, 'ServiceEntry', 'apps', 'd');
  const page2 = (await http('GET', `/apis/${SE}/serviceentries?limit=2&continue=${page1.metadata.continue}`))
    .body;
  t.strictSame(
    page2.items.map((i: any) => i.metadata.name),
    ['c', 'd'],
    'later pages show the first page snapshot',
  );
  t.equal(page2.metadata.resourceVersion, page1.metadata.resourceVersion);
  const page3 = (await http('GET', `/apis/${SE}/serviceentries?limit=2&continue=${page2.metadata.continue}`))
    .body;
  t.strictSame(
    page3.items.map((i: any) => i.metadata.name),
    ['e'],
  );
  t.notOk(page3.metadata.continue);

  const exact = (
    await http(
      'GET',
      `/apis/${SE}/serviceentries?resourceVersion=${page1.metadata.resourceVersion}&resourceVersionMatch=Exact`,
    )
  ).body;
  t.strictSame(
    exact.items.map((i: any) => i.metadata.name),
    ['a', 'b', 'c', 'd', 'e'],
    'an exact list is served from history',
  );
  fake.compact();
  const gone = await http('GET', `/apis/${SE}/serviceentries?limit=2&continue=${page1.metadata.continue}`);
  t.equal(gone.status, 410, 'an expired continue token');
  t.equal(gone.body.reason, 'Expired');
  t.equal(
    (
      await http(
        'GET',
        `/apis/${SE}/serviceentries?resourceVersion=${page1.metadata.resourceVersion}&resourceVersionMatch=Exact`,
      )
    ).status,
    410,
  );
});

t.test('patches: merge, JSON, server-side apply, status subresource, dryRun', async (t) => {
  const { fake, http, objects } = await start(t);
  fake.put({ ...se('a'), spec: { hosts: ['a.example.com'], location: 'MESH_EXTERNAL' } });

  const merged = await objects.patch(
    {
      apiVersion: SE,
      kind: 'ServiceEntry',
      metadata: { name: 'a', namespace: 'apps', labels: { x: 'y' } },
      spec: { location: null, resolution: 'DNS' },
    } as any,
    undefined,
    undefined,
    undefined,
    undefined,
    PatchStrategy.MergePatch,
  );
  t.strictSame(merged.spec, { hosts: ['a.example.com'], resolution: 'DNS' }, 'null removes, others merge');
  t.strictSame(merged.metadata?.labels, { x: 'y' });
  const conflict = await http(
    'PATCH',
    `/apis/${SE}/namespaces/apps/serviceentries/a`,
    { metadata: { resourceVersion: '1' } },
    'application/merge-patch+json',
  );
  t.equal(conflict.status, 409, 'a resourceVersion in a patch is a precondition');

  const jp = await http(
    'PATCH',
    `/apis/${SE}/namespaces/apps/serviceentries/a`,
    [{ op: 'add', path: '/spec/hosts/-', value: 'b.example.com' }],
    'application/json-patch+json',
  );
  t.strictSame(jp.body.spec.hosts, ['a.example.com', 'b.example.com']);
  t.equal(
    (
      await http(
        'PATCH',
        `/apis/${SE}/namespaces/apps/serviceentries/a`,
        [{ op: 'test', path: '/spec/hosts/0', value: 'zzz' }],
        'application/json-patch+json',
      )
    ).status,
    422,
  );
  t.equal(
    (await http('PATCH', `/apis/${SE}/namespaces/apps/serviceentries/a`, {}, 'text/plain')).status,
    415,
  );
  t.equal(
    (
      await http(
        'PATCH',
        `/apis/${SE}/namespaces/apps/serviceentries/nope`,
        {},
        'application/merge-patch+json',
      )
    ).status,
    404,
  );

  // Server-side apply: creates, records the manager, drops what the manager stops applying.
  const ef: any = {
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: {
      name: 'f',
      namespace: 'istio-system',
      labels: { 'app.kubernetes.io/managed-by': 'breeze', old: 'yes' },
    },
    spec: { configPatches: [{ applyTo: 'NETWORK_FILTER' }, { applyTo: 'CLUSTER' }] },
  };
  const applied = await objects.patch(
    ef,
    undefined,
    undefined,
    'breeze',
    true,
    PatchStrategy.ServerSideApply,
  );
  t.equal(applied.metadata?.managedFields?.[0]?.manager, 'breeze');
  t.equal(applied.metadata?.managedFields?.[0]?.operation, 'Apply');
  const reapplied = await objects.patch(
    {
      ...ef,
      metadata: { ...ef.metadata, labels: { 'app.kubernetes.io/managed-by': 'breeze' } },
      spec: { configPatches: [{ applyTo: 'CLUSTER' }] },
    },
    undefined,
    undefined,
    'breeze',
    true,
    PatchStrategy.ServerSideApply,
  );
  t.strictSame(
    reapplied.metadata?.labels,
    { 'app.kubernetes.io/managed-by': 'breeze' },
    'a label no longer applied is removed',
  );
  t.strictSame(reapplied.spec.configPatches, [{ applyTo: 'CLUSTER' }]);
  t.equal(reapplied.metadata?.managedFields?.length, 1);
  t.equal(reapplied.metadata?.generation, 2);
  const noManager = await http(
    'PATCH',
    '/apis/networking.istio.io/v1alpha3/namespaces/istio-system/envoyfilters/g',
    'kind: EnvoyFilter',
    'application/apply-patch+yaml',
  );
  t.equal(noManager.status, 422, 'apply requires a fieldManager');
  const yaml =
    'apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata:\n  name: g\nspec:\n  priority: 1\n';
  const created = await http(
    'PATCH',
    '/apis/networking.istio.io/v1alpha3/namespaces/istio-system/envoyfilters/g?fieldManager=m',
    yaml,
    'application/apply-patch+yaml',
  );
  t.equal(created.status, 201);
  t.equal(created.body.metadata.namespace, 'istio-system');

  // dryRun=All answers without storing.
  const rv = fake.resourceVersion;
  const dry = await http('POST', `/apis/${SE}/namespaces/apps/serviceentries?dryRun=All`, se('dry'));
  t.equal(dry.status, 201);
  t.equal(fake.get(SE, 'ServiceEntry', 'apps', 'dry'), undefined);
  t.equal(fake.resourceVersion, rv);

  // status subresource: status writes touch only status and keep generation; spec writes keep status.
  const current = fake.get(SE, 'ServiceEntry', 'apps', 'a')!;
  const st = await http('PUT', `/apis/${SE}/namespaces/apps/serviceentries/a/status`, {
    ...current,
    spec: { hosts: ['ignored'] },
    status: { ok: true },
  });
  t.strictSame(st.body.status, { ok: true });
  t.strictSame(st.body.spec.hosts, ['a.example.com', 'b.example.com']);
  t.equal(st.body.metadata.generation, (current.metadata as any).generation);
  const spec = await http('PUT', `/apis/${SE}/namespaces/apps/serviceentries/a`, {
    ...st.body,
    status: { ok: false },
  });
  t.strictSame(spec.body.status, { ok: true });
  const ms = await http(
    'PATCH',
    `/apis/${SE}/namespaces/apps/serviceentries/a/status`,
    { status: { conditions: [] } },
    'application/merge-patch+json',
  );
  t.strictSame(ms.body.status, { ok: true, conditions: [] });
});

t.test('watch: replay from a resourceVersion, selectors, bookmarks, 410, timeouts, hooks', async (t) => {
  const { fake } = await start(t);
  fake.put(se('a', 'apps', { keep: 'yes' }));
  const from = String(fake.resourceVersion);
  fake.put(se('b', 'apps', { keep: 'yes' }));
  fake.put({ ...se('a', 'apps', { keep: 'yes' }), spec: { hosts: ['changed'] } });
  fake.put(se('b', 'apps', { keep: 'no' }));
  fake.remove(SE, 'ServiceEntry', 'apps', 'a');
  fake.put(se('hidden', 'apps', { keep: 'yes' }), { emit: false });

  const all = await collect(
    fake,
    `/apis/${SE}/serviceentries`,
    { resourceVersion: from },
    (e) => e.length === 4,
  );
  t.strictSame(
    all.map((e) => [e.type, e.object.metadata.name]),
    [
      ['ADDED', 'b'],
      ['MODIFIED', 'a'],
      ['MODIFIED', 'b'],
      ['DELETED', 'a'],
    ],
  );
  t.equal(all[0]!.object.apiVersion, SE, 'events carry apiVersion and kind');
  t.equal(
    all[3]!.object.metadata.resourceVersion,
    String(fake.resourceVersion - 1),
    'DELETED carries the deletion resourceVersion',
  );

  const selected = await collect(
    fake,
    `/apis/${SE}/namespaces/apps/serviceentries`,
    { resourceVersion: from, labelSelector: 'keep=yes' },
    (e) => e.length === 4,
  );
  t.strictSame(
    selected.map((e) => [e.type, e.object.metadata.name]),
    [
      ['ADDED', 'b'],
      ['MODIFIED', 'a'],
      ['DELETED', 'b'],
      ['DELETED', 'a'],
    ],
    'leaving the selection is a DELETED',
  );

  const initial = await collect(fake, `/apis/${SE}/serviceentries`, {}, (e) => e.length === 2);
  t.strictSame(
    initial.map((e) => [e.type, e.object.metadata.name]),
    [
      ['ADDED', 'b'],
      ['ADDED', 'hidden'],
    ],
    'no resourceVersion: the current state first',
  );

  const bookmarks = await collect(
    fake,
    `/apis/${SE}/serviceentries`,
    { resourceVersion: String(fake.resourceVersion), allowWatchBookmarks: true },
    (e) => e.length === 2,
  );
  t.ok(
    bookmarks.every(
      (e) => e.type === 'BOOKMARK' && e.object.metadata.resourceVersion === String(fake.resourceVersion),
    ),
  );

  fake.compact();
  const expired = await collect(fake, `/apis/${SE}/serviceentries`, { resourceVersion: from }, () => false);
  t.equal(expired.length, 1);
  t.equal(expired[0]!.type, 'ERROR');
  t.match(expired[0]!.object, { kind: 'Status', code: 410, reason: 'Expired' });

  const t0 = Date.now();
  const timedOut = await collect(
    fake,
    `/apis/${SE}/serviceentries`,
    { resourceVersion: String(fake.resourceVersion), timeoutSeconds: 1 },
    () => false,
  );
  t.equal(timedOut.length, 0);
  t.ok(Date.now() - t0 >= 900, 'timeoutSeconds ends the stream');

  // silence: connected, nothing delivered; drop: the stream ends.
  const events: string[] = [];
  let ended = false;
  const controller = await new Watch(fake.kubeConfig()).watch(
    `/apis/${SE}/serviceentries`,
    { resourceVersion: String(fake.resourceVersion), allowWatchBookmarks: true },
    (type) => events.push(type),
    () => (ended = true),
  );
  await waitUntil(() => events.includes('BOOKMARK'));
  t.equal(fake.silenceWatches(), 1);
  events.length = 0;
  fake.put(se('unseen'));
  await new Promise((r) => setTimeout(r, 150));
  t.strictSame(events, [], 'a silent watch delivers nothing, not even bookmarks');
  t.equal(fake.openWatches('serviceentries'), 1);
  t.equal(fake.dropWatches(), 1);
  await waitUntil(() => ended);
  t.equal(fake.openWatches(), 0);
  controller.abort();
});

t.test('faults and the request log', async (t) => {
  const { fake, http } = await start(t);
  fake.injectFault({ status: 429, count: 2, path: '/api/v1/services', retryAfterSeconds: 1 });
  fake.injectFault({ status: 500, method: 'POST' });
  const first = await http('GET', '/api/v1/services');
  t.equal(first.status, 429);
  t.equal(first.headers.get('retry-after'), '1');
  t.equal(first.body.reason, 'TooManyRequests');
  t.equal((await http('GET', '/api/v1/services')).status, 429);
  t.equal((await http('GET', '/api/v1/services')).status, 200, 'count respected');
  t.equal((await http('POST', '/api/v1/namespaces/a/secrets', { metadata: { name: 's' } })).status, 500);
  t.equal((await http('POST', '/api/v1/namespaces/a/secrets', { metadata: { name: 's' } })).status, 201);
  t.strictSame(
    fake.requestsTo('/api/v1').map((r) => [r.method, r.status]),
    [
      ['GET', 429],
      ['GET', 429],
      ['GET', 200],
      ['POST', 500],
      ['POST', 201],
    ],
  );
  fake.injectFault({ status: 503, count: 10 });
  fake.clearFaults();
  t.equal((await http('GET', '/api')).status, 200);
});

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
