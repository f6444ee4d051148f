// RBAC exactly as wide as Breeze's behaviour. For each chart mode: render the chart, run Breeze in
// cluster mode in-process with the rendered Deployment's own args against the fake API server, as
// the chart's ServiceAccount, through a scenario that makes it use everything it can (create,
// update and delete EnvoyFilters, a create conflict, Redis Secrets and status, Events, the Lease,
// the self-managed Secret and caBundle, Aeraki adoption). Then every request it made must be
// allowed by the rendered Roles and ClusterRoles (an RBAC evaluator over the rendered objects),
// and every rendered rule must have been used, or be listed below with the reason it was not.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:tls';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { startBreeze } from '../../src/cli/serve.js';
import { parseServeConfig } from '../../src/config/serve.js';
import { writeDevCertificates } from '../../src/pki/certs.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { FakeIstiod } from '../fakes/istiod.js';
import { FakeKubeApiServer, type RequestRecord } from '../fakes/kube-apiserver.js';
import { waitFor } from '../wait.js';
import {
  CERT_MANAGER_API,
  find,
  FULLNAME,
  helmBinary,
  knownServeFlags,
  NAMESPACE,
  one,
  render,
  ROOT,
  type K8sObject,
} from './helm.js';

const USER = `system:serviceaccount:${NAMESPACE}:${FULLNAME}`;
const ROOT_NS = 'istio-system';
const EF = 'networking.istio.io/v1alpha3';
const DUBBO_HOST = 'org.apache.dubbo.samples.basic.api.demoservice';

/** Timings that make the scenario short; the chart passes each as its flag. */
const FAST = [
  'config.debounceAfter=100ms',
  'config.drainDelay=0s',
  'config.leaseDuration=3s',
  'config.renewDeadline=2s',
  'config.retryPeriod=300ms',
];

// ---- an RBAC authorizer over the rendered objects ------------------------------------------------

/** What the API server's RBAC authorizer sees of a resource request. */
interface Attributes {
  readonly verb: string;
  readonly group: string;
  /** `resource` or `resource/subresource`. */
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
}

/** Discovery (/api, /apis, /apis/<group>[/<version>]): granted to everyone by system:discovery. */
const DISCOVERY = /^\/(api|apis)(\/[^/]+){0,2}$/;

/** A request's RBAC attributes, as the API server derives them from method and path. */
export function attributesOf(r: Pick<RequestRecord, 'method' | 'path' | 'watch'>): Attributes | 'discovery' {
  const parts = r.path.split('/').filter((p) => p !== '');
  let rest: string[];
  let group: string;
  if (parts[0] === 'api' && parts.length >= 2) {
    group = '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    group = parts[1]!;
    rest = parts.slice(3);
  } else rest = [];
  if (rest.length === 0) {
    if (r.method === 'GET' && DISCOVERY.test(r.path)) return 'discovery';
    throw new Error(`not a resource request: ${r.method} ${r.path}`);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = decodeURIComponent(rest[1]!);
    rest = rest.slice(2);
  }
  const [resource, name, sub] = rest;
  const collection = name === undefined;
  const verb =
    r.method === 'GET'
      ? r.watch
        ? 'watch'
        : collection
          ? 'list'
          : 'get'
      : r.method === 'POST'
        ? 'create'
        : r.method === 'PUT'
          ? 'update'
          : r.method === 'PATCH'
            ? 'patch'
            : r.method === 'DELETE'
              ? collection
                ? 'deletecollection'
                : 'delete'
              : r.method.toLowerCase();
  return {
    verb,
    group: group!,
    resource: sub === undefined ? resource! : `${resource}/${sub}`,
    namespace,
    name: name === undefined ? undefined : decodeURIComponent(name),
  };
}

/** One verb of one resource of one rendered rule: the unit that must be used. */
interface Grant {
  /** e.g. `ClusterRole rel-breeze: list envoyfilters.networking.istio.io`. */
  readonly key: string;
  readonly namespace: string | undefined;
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly names: readonly string[] | undefined;
}

/** The grants of every Role and ClusterRole bound to `user` (a ServiceAccount) in `objs`. */
export function grantsFor(objs: readonly K8sObject[], user: string): Grant[] {
  const [, , saNs, saName] = user.split(':');
  const bound = (b: K8sObject): boolean =>
    (b.subjects as K8sObject[]).some(
      (s) => s.kind === 'ServiceAccount' && s.name === saName && s.namespace === saNs,
    );
  const grants: Grant[] = [];
  const add = (role: K8sObject, namespace: string | undefined): void => {
    for (const rule of role.rules as K8sObject[]) {
      for (const group of rule.apiGroups as string[])
        for (const resource of rule.resources as string[])
          for (const verb of rule.verbs as string[]) {
            const names = rule.resourceNames as string[] | undefined;
            grants.push({
              key: `${role.kind} ${role.metadata.name}${namespace === undefined ? '' : ` (${namespace})`}: ${verb} ${resource}${group === '' ? '' : `.${group}`}${names === undefined ? '' : ` [${names.join(',')}]`}`,
              namespace,
              verb,
              group,
              resource,
              names,
            });
          }
    }
  };
  for (const b of find(objs, 'ClusterRoleBinding').filter(bound)) {
    if (b.roleRef.kind !== 'ClusterRole') continue;
    add(one(objs, 'ClusterRole', b.roleRef.name), undefined);
  }
  for (const b of find(objs, 'RoleBinding').filter(bound)) {
    const ns = b.metadata.namespace as string;
    const role =
      b.roleRef.kind === 'ClusterRole'
        ? one(objs, 'ClusterRole', b.roleRef.name)
        : objs.find(
            (o) => o.kind === 'Role' && o.metadata.name === b.roleRef.name && o.metadata.namespace === ns,
          );
    if (role === undefined)
      throw new Error(`RoleBinding ${ns}/${b.metadata.name}: no Role ${b.roleRef.name}`);
    add(role, ns);
  }
  return grants;
}

/** The grants that allow `a` (empty: the API server answers 403). */
export function allowing(grants: readonly Grant[], a: Attributes): Grant[] {
  return grants.filter(
    (g) =>
      g.verb === a.verb &&
      g.group === a.group &&
      g.resource === a.resource &&
      // A Role only covers its own namespace; a cluster-wide request needs a ClusterRoleBinding.
      (g.namespace === undefined || g.namespace === a.namespace) &&
      // resourceNames never match create (no name yet) nor a collection.
      (g.names === undefined || (a.name !== undefined && g.names.includes(a.name))),
  );
}

t.test('the RBAC evaluator itself', async (t) => {
  const objs = await render([]);
  const grants = grantsFor(objs, USER);
  const allowed = (method: string, path: string, watch = false): boolean => {
    const a = attributesOf({ method, path, watch });
    return a === 'discovery' || allowing(grants, a).length > 0;
  };
  t.ok(allowed('GET', '/apis/networking.istio.io/v1/serviceentries'));
  t.ok(allowed('GET', '/apis/networking.istio.io/v1/serviceentries', true));
  t.notOk(allowed('GET', '/apis/networking.istio.io/v1/namespaces/a/serviceentries/x'), 'no get');
  t.ok(allowed('POST', `/apis/${EF}/namespaces/${ROOT_NS}/envoyfilters`));
  t.notOk(
    allowed('POST', `/apis/${EF}/namespaces/dubbo/envoyfilters`),
    'the Role is the root namespace only',
  );
  t.notOk(allowed('PUT', `/apis/${EF}/namespaces/${ROOT_NS}/envoyfilters/x`), 'no update');
  t.ok(allowed('PATCH', '/apis/redis.aeraki.io/v1alpha1/namespaces/r/redisservices/x/status'));
  t.notOk(allowed('PUT', '/apis/redis.aeraki.io/v1alpha1/namespaces/r/redisservices/x/status'));
  t.notOk(
    allowed('PATCH', '/apis/redis.aeraki.io/v1alpha1/namespaces/r/redisservices/x'),
    'not the main resource',
  );
  t.ok(allowed('GET', '/api/v1/namespaces/r/secrets/s'));
  t.notOk(allowed('GET', '/api/v1/namespaces/r/secrets'), 'no list of Secrets');
  t.ok(allowed('POST', `/api/v1/namespaces/${NAMESPACE}/secrets`));
  t.notOk(allowed('POST', '/api/v1/namespaces/other/secrets'), 'Secret create only in the release namespace');
  t.ok(allowed('PUT', `/api/v1/namespaces/${NAMESPACE}/secrets/${FULLNAME}-tls`));
  t.notOk(allowed('PUT', `/api/v1/namespaces/${NAMESPACE}/secrets/other`), 'resourceNames');
  t.ok(allowed('PATCH', `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${FULLNAME}`));
  t.notOk(allowed('PATCH', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/istio'));
  t.notOk(allowed('PATCH', '/api/v1/namespaces/a/events/e'), 'no patch of events');
  t.ok(allowed('GET', '/apis/networking.istio.io'), 'discovery');
  t.notOk(allowed('PUT', `/apis/coordination.k8s.io/v1/namespaces/other/leases/l`));
});

// ---- the scenario --------------------------------------------------------------------------------

const examples = (file: string): K8sObject[] =>
  parseAllDocuments(readFileSync(join(ROOT, 'examples', file), 'utf8'))
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);

interface Mode {
  readonly set: readonly string[];
  readonly extra?: readonly string[];
  /** The release namespace; default NAMESPACE. */
  readonly namespace?: string;
  /** Run the istiod source against a fake istiod (TLS, bearer token) with the chart's flags. */
  readonly istiod?: boolean;
  /** Rendered grants this mode's scenario does not use, with the reason (checked to exist). */
  readonly unused: (tlsRole: string) => Readonly<Record<string, string>>;
  /** Before Breeze starts. */
  readonly before?: (api: FakeKubeApiServer) => void;
  /** Extra requests the scenario must have seen, by description. */
  readonly expect?: Readonly<Record<string, (r: RequestRecord) => boolean>>;
}

const NAMESPACES_UNUSED =
  "the ambient engineer's Namespace watch (istio.io/dataplane-mode, issue 12) lists and watches Namespaces; it is not in this branch yet";
const SECRET_UPDATE_UNUSED =
  'the self-managed Secret is updated only on renewal or repair: the singleWriter mode starts on a Secret without a serving pair and covers it';
const CR = `ClusterRole ${FULLNAME}`;
const isPath = (method: string, re: RegExp) => (r: RequestRecord) => r.method === method && re.test(r.path);

const MODES: Record<string, Mode> = {
  default: {
    set: [],
    unused: (tlsRole) => ({
      [`${CR}: list namespaces`]: NAMESPACES_UNUSED,
      [`${CR}: watch namespaces`]: NAMESPACES_UNUSED,
      [`${tlsRole}: update secrets [${FULLNAME}-tls]`]: SECRET_UPDATE_UNUSED,
    }),
  },
  certManager: {
    set: ['tls.mode=certManager'],
    extra: CERT_MANAGER_API,
    unused: () => ({
      [`${CR}: list namespaces`]: NAMESPACES_UNUSED,
      [`${CR}: watch namespaces`]: NAMESPACES_UNUSED,
    }),
  },
  namespaceScope: {
    set: ['config.envoyfilterNamespaceScope=true', 'webhook.envoyFilters.namespaces={dubbo,redis,thrift}'],
    unused: (tlsRole) => ({
      [`${CR}: list namespaces`]: NAMESPACES_UNUSED,
      [`${CR}: watch namespaces`]: NAMESPACES_UNUSED,
      [`${tlsRole}: update secrets [${FULLNAME}-tls]`]: SECRET_UPDATE_UNUSED,
    }),
    expect: {
      'an EnvoyFilter written in a service namespace': isPath(
        'POST',
        /^\/apis\/[^/]+\/[^/]+\/namespaces\/dubbo\/envoyfilters$/,
      ),
    },
  },
  adoptAeraki: {
    set: ['config.adoptAeraki=true'],
    unused: (tlsRole) => ({
      [`${CR}: list namespaces`]: NAMESPACES_UNUSED,
      [`${CR}: watch namespaces`]: NAMESPACES_UNUSED,
      [`${tlsRole}: update secrets [${FULLNAME}-tls]`]: SECRET_UPDATE_UNUSED,
    }),
    before: (api) => {
      // Aeraki's inbound filter for the Dubbo service, in the service's own namespace.
      api.put({
        apiVersion: EF,
        kind: 'EnvoyFilter',
        metadata: { name: `aeraki-inbound-${DUBBO_HOST}`, namespace: 'dubbo', labels: { manager: 'Aeraki' } },
        spec: { configPatches: [] },
      });
      // Its first delete conflicts, so Breeze re-reads it (get) before deleting it again.
      api.injectFault({ status: 409, method: 'DELETE', path: /\/namespaces\/dubbo\/envoyfilters\/aeraki-/ });
    },
    expect: {
      "Aeraki's EnvoyFilter re-read after a conflict": isPath(
        'GET',
        /\/namespaces\/dubbo\/envoyfilters\/aeraki-/,
      ),
      "Aeraki's EnvoyFilter deleted in the service namespace": (r) =>
        isPath('DELETE', /\/namespaces\/dubbo\/envoyfilters\/aeraki-/)(r) && r.status === 200,
    },
  },
  istiod: {
    namespace: ROOT_NS,
    istiod: true,
    set: ['istiod.enabled=true'],
    unused: (tlsRole) => ({
      [`${CR}: list namespaces`]: NAMESPACES_UNUSED,
      [`${CR}: watch namespaces`]: NAMESPACES_UNUSED,
      [`${tlsRole}: update secrets [${FULLNAME}-tls]`]: SECRET_UPDATE_UNUSED,
    }),
  },
  singleWriter: {
    set: ['replicaCount=1', 'config.leaderElect=false'],
    unused: (tlsRole) => ({
      [`${CR}: list namespaces`]: NAMESPACES_UNUSED,
      [`${CR}: watch namespaces`]: NAMESPACES_UNUSED,
      [`${tlsRole}: create secrets`]:
        'the Secret exists already (left without a serving pair, so it is repaired)',
    }),
    before: (api) => {
      api.put({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `${FULLNAME}-tls`, namespace: NAMESPACE },
        data: {},
      });
    },
  },
};

/** The rendered Deployment's args, made to run here: loopback ports, local certificate files. */
async function argsForHere(
  objs: K8sObject[],
  dir: string,
  istiod?: { address: string; caFile: string; tokenFile: string },
): Promise<string[]> {
  const [command, ...flags] = one(objs, 'Deployment', FULLNAME).spec.template.spec.containers[0]
    .args as string[];
  if (command !== 'serve') throw new Error(`the Deployment runs ${command}`);
  const certs = flags.includes('--tls-cert-file')
    ? await writeDevCertificates(join(dir, 'tls'), ['127.0.0.1'])
    : undefined;
  const replace: Record<string, string | undefined> = {
    '--listen': '127.0.0.1:0',
    '--health-listen': '127.0.0.1:0',
    '--tls-cert-file': certs?.certFile,
    '--tls-key-file': certs?.keyFile,
    '--istiod-address': istiod?.address,
    '--istiod-ca-file': istiod?.caFile,
    '--istiod-token-file': istiod?.tokenFile,
  };
  const out = knownServeFlags(flags);
  for (let i = 0; i < out.length - 1; i++) {
    const v = replace[out[i]!];
    if (v !== undefined) out[i + 1] = v;
  }
  return out;
}

/** What the scenario must have made Breeze do, whatever the mode. */
const ALWAYS: Record<string, (r: RequestRecord) => boolean> = {
  'an EnvoyFilter created': isPath('POST', /\/envoyfilters$/),
  'an EnvoyFilter updated (server-side apply)': isPath('PATCH', /\/envoyfilters\/[^/]+$/),
  'an EnvoyFilter deleted': (r) => r.method === 'DELETE' && /\/envoyfilters\/breeze-/.test(r.path),
  'an EnvoyFilter read after a create conflict': isPath('GET', /\/envoyfilters\/[^/]+$/),
  'a Redis auth Secret read': isPath('GET', /\/namespaces\/redis\/secrets\/[^/]+$/),
  'a RedisService status condition': isPath('PATCH', /\/redisservices\/[^/]+\/status$/),
  'an Event': isPath('POST', /\/events$/),
};

for (const [name, mode] of Object.entries(MODES)) {
  t.test(`${name}: every request allowed, every rule used`, async (t) => {
    helmBinary();
    const ns = mode.namespace ?? NAMESPACE;
    const user = `system:serviceaccount:${ns}:${FULLNAME}`;
    const objs = await render(
      [...FAST, ...mode.set],
      [...(mode.extra ?? []), ...(mode.namespace === undefined ? [] : ['--namespace', ns])],
    );
    const grants = grantsFor(objs, user);
    const unused = mode.unused(`Role ${FULLNAME}-tls (${ns})`);
    const api = await FakeKubeApiServer.start({ bookmarkIntervalMs: 200 });
    const dir = mkdtempSync(join(tmpdir(), 'breeze-rbac-'));
    t.teardown(async () => {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    });
    for (const c of [
      ...find(objs, 'ValidatingWebhookConfiguration'),
      ...find(objs, 'MutatingWebhookConfiguration'),
    ])
      api.put(c);
    mode.before?.(api);

    const env = {
      POD_NAME: `${name}-0`,
      POD_NAMESPACE: ns,
      POD_SERVICE_ACCOUNT: FULLNAME,
      POD_IP: '127.0.0.1',
    };
    let istiod: FakeIstiod | undefined;
    let istiodFiles: { address: string; caFile: string; tokenFile: string } | undefined;
    if (mode.istiod === true) {
      // The chart's istiod flags, pointed at a fake istiod that serves TLS and wants the token.
      const certs = await writeDevCertificates(join(dir, 'istiod-tls'), ['127.0.0.1']);
      const token = 'projected-token-audience-istio-ca';
      const tokenFile = join(dir, 'istio-token');
      writeFileSync(tokenFile, token);
      istiod = new FakeIstiod({
        tls: { cert: readFileSync(certs.certFile, 'utf8'), key: readFileSync(certs.keyFile, 'utf8') },
        token,
      });
      await istiod.start();
      const running = istiod;
      t.teardown(() => running.stop());
      istiodFiles = { address: istiod.address, caFile: certs.caFile, tokenFile };
    }
    const config = parseServeConfig(await argsForHere(objs, dir, istiodFiles), env);
    if (mode.istiod === true) t.ok(config.sources.includes('istiod'), 'the istiod source is on');
    const breeze = await startBreeze(config, env, {
      kubeConfig: api.kubeConfig(user),
      logger: createLogger({ level: 'fatal' }),
    });
    let stopped = false;
    t.teardown(async () => {
      if (!stopped) await breeze.stop();
    });
    const mine = (): RequestRecord[] => api.requests.filter((r) => r.user === user);
    const seen = (what: string, p: (r: RequestRecord) => boolean): Promise<void> =>
      waitFor(what, () => mine().some((r) => p(r) && r.status > 0), 30_000);

    // Dubbo and Redis services (with their Secrets), put straight into the store: the watch
    // delivers them, Breeze creates their EnvoyFilters, reads the Secrets, reports.
    for (const o of [...examples('dubbo.yaml'), ...examples('redis.yaml')]) api.put(o);
    await seen('an EnvoyFilter created', ALWAYS['an EnvoyFilter created']!);
    // A create that conflicts: Breeze reads the object, finds it gone, creates again.
    api.injectFault({ status: 409, method: 'POST', path: /\/envoyfilters$/ });
    for (const o of examples('thrift.yaml')) api.put(o);
    await seen(
      'an EnvoyFilter read after a create conflict',
      ALWAYS['an EnvoyFilter read after a create conflict']!,
    );
    await waitFor(
      'the Thrift filters',
      () =>
        api.list(EF, 'EnvoyFilter').some((f) => String((f.metadata as K8sObject).name).includes('thrift')),
      30_000,
    );
    // A change: the Dubbo provider's workload labels, so its inbound filter is re-applied.
    const se = api.get('networking.istio.io/v1', 'ServiceEntry', 'dubbo', 'dubbo-demoservice')!;
    const spec = se.spec as K8sObject;
    api.put({ ...se, spec: { ...spec, workloadSelector: { labels: { app: 'dubbo-provider-2' } } } });
    await seen('an EnvoyFilter updated', ALWAYS['an EnvoyFilter updated (server-side apply)']!);
    // A removal: the Thrift service's filters are deleted.
    for (const o of examples('thrift.yaml'))
      api.remove(o.apiVersion, o.kind, o.metadata.namespace ?? 'default', o.metadata.name);
    await seen('an EnvoyFilter deleted', ALWAYS['an EnvoyFilter deleted']!);
    for (const [what, p] of Object.entries({ ...ALWAYS, ...mode.expect })) await seen(what, p);
    if (istiod !== undefined) {
      const fake = istiod;
      await waitFor('an authenticated ADS stream to istiod', () => fake.requests.length > 0, 30_000);
    }
    if (config.tlsMode === 'self-managed') {
      // The wiring is complete: both configurations now carry the CA in every webhook, and the
      // API server's call (the Service's DNS name, that CA) verifies Breeze's serving certificate.
      const bundles = new Set<string>();
      await waitFor(
        'caBundle in every webhook',
        () => {
          bundles.clear();
          const configs = [
            api.get('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', '', FULLNAME),
            api.get('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', '', FULLNAME),
          ];
          const hooks = configs.flatMap((c) => (c?.webhooks ?? []) as K8sObject[]);
          for (const w of hooks) bundles.add(String(w.clientConfig?.caBundle ?? ''));
          return hooks.length > 0 && !bundles.has('');
        },
        30_000,
      );
      t.equal(bundles.size, 1, 'one CA bundle in every webhook');
      const ca = Buffer.from([...bundles][0]!, 'base64').toString('utf8');
      const servername = `${FULLNAME}.${ns}.svc`;
      const verified = await new Promise<boolean>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: breeze.webhookPort, servername, ca }, () => {
          resolve(socket.authorized);
          socket.end();
        });
        socket.on('error', reject);
      });
      t.ok(verified, `the serving certificate verifies for ${servername} against the patched caBundle`);
    }
    await breeze.stop(); // releases the Lease (an update)
    stopped = true;

    // 1. Every request Breeze made is allowed by the rendered RBAC.
    const requests = mine();
    t.ok(requests.length > 20, `${requests.length} requests`);
    const used = new Set<string>();
    const denied: string[] = [];
    for (const r of requests) {
      const a = attributesOf(r);
      if (a === 'discovery') continue;
      const by = allowing(grants, a);
      if (by.length === 0)
        denied.push(
          `${a.verb} ${a.resource}${a.group === '' ? '' : `.${a.group}`} ns=${a.namespace ?? '*'} name=${a.name ?? '-'}`,
        );
      for (const g of by) used.add(g.key);
    }
    t.same([...new Set(denied)], [], 'no request the rendered RBAC would refuse (403)');
    if (name === 'singleWriter')
      t.notOk(
        requests.some((r) => r.path.includes('/leases')),
        'no Lease',
      );

    // 2. Every rendered grant was used, or is listed with its reason (and the list is current).
    const unusedNow = grants.map((g) => g.key).filter((k) => !used.has(k));
    t.same(
      unusedNow.filter((k) => !(k in unused)),
      [],
      'every rendered rule is used by the scenario or listed with a reason',
    );
    for (const k of Object.keys(unused))
      t.ok(
        grants.some((g) => g.key === k),
        `the listed grant exists: ${k}`,
      );
  });
}
