// Caller authentication in the chart: webhook.clientCA (mounted, passed as --client-ca-file) and
// the optional NetworkPolicy. Rendered with the real helm binary.
import t from 'tap';
import { parseServeConfig } from '../../src/config/serve.js';
import {
  CHART,
  find,
  FULLNAME,
  helm,
  helmBinary,
  knownServeFlags,
  NAMESPACE,
  one,
  RELEASE,
  render,
  type K8sObject,
} from './helm.js';

const API_SERVER_PEER = '--set-json=networkPolicy.webhookFrom=[{"ipBlock":{"cidr":"10.0.0.0/28"}}]';

const SCENARIOS = {
  default: { set: [], extra: [] },
  explicitOff: {
    set: ['networkPolicy.enabled=false', 'webhook.clientCA.existingSecret=', 'webhook.clientCA.configMap='],
    extra: [],
  },
  clientCaSecret: { set: ['webhook.clientCA.existingSecret=apiserver-client-ca'], extra: [] },
  clientCaConfigMap: {
    set: [
      'webhook.clientCA.configMap=apiserver-client-ca',
      'webhook.clientCA.key=bundle.pem',
      'webhook.clientCA.allowedNames={kube-apiserver-webhook-client,front-proxy-client}',
    ],
    extra: [],
  },
  netpol: { set: ['networkPolicy.enabled=true'], extra: [API_SERVER_PEER] },
  netpolFull: {
    set: ['networkPolicy.enabled=true', 'ports.webhook=10443', 'ports.health=18080'],
    extra: [
      '--set-json=networkPolicy.webhookFrom=[{"ipBlock":{"cidr":"172.16.0.0/28","except":["172.16.0.1/32"]}},{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":{"k8s-app":"konnectivity-agent"}}}]',
      '--set-json=networkPolicy.healthFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]',
      '--set-json=networkPolicy.egress=[{"ports":[{"port":53,"protocol":"UDP"},{"port":53,"protocol":"TCP"}]},{"to":[{"ipBlock":{"cidr":"10.0.0.0/28"}}],"ports":[{"port":443,"protocol":"TCP"}]}]',
    ],
  },
} satisfies Record<string, { set: string[]; extra: string[] }>;
type Scenario = keyof typeof SCENARIOS;

let rendered: Record<Scenario, K8sObject[]>;

t.before(async () => {
  helmBinary();
  const entries = await Promise.all(
    Object.entries(SCENARIOS).map(async ([name, s]) => [name, await render(s.set, s.extra)] as const),
  );
  rendered = Object.fromEntries(entries) as Record<Scenario, K8sObject[]>;
});

const podSpec = (objs: K8sObject[]): K8sObject => one(objs, 'Deployment', FULLNAME).spec.template.spec;
const args = (objs: K8sObject[]): string[] => podSpec(objs).containers[0].args;
const argValue = (objs: K8sObject[], flag: string): string | undefined => {
  const a = args(objs);
  const i = a.indexOf(flag);
  return i < 0 ? undefined : a[i + 1];
};

t.test(
  'default render: no NetworkPolicy, no client certificate, unchanged by explicit off values',
  async (t) => {
    const objs = rendered.default;
    t.same(find(objs, 'NetworkPolicy'), []);
    t.notOk(args(objs).includes('--client-ca-file'));
    t.notOk(args(objs).includes('--client-allowed-names'));
    t.notOk((podSpec(objs).volumes as K8sObject[]).some((v) => v.name === 'client-ca'));
    t.same(rendered.explicitOff, objs, 'explicit off values render exactly the default');
  },
);

t.test('webhook.clientCA: the bundle is mounted as a directory and passed as --client-ca-file', async (t) => {
  for (const [scenario, source] of [
    [
      'clientCaSecret',
      { secret: { secretName: 'apiserver-client-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
    ],
    [
      'clientCaConfigMap',
      { configMap: { name: 'apiserver-client-ca', items: [{ key: 'bundle.pem', path: 'ca.crt' }] } },
    ],
  ] as const) {
    const objs = rendered[scenario];
    t.equal(argValue(objs, '--client-ca-file'), '/etc/breeze/client-ca/ca.crt', scenario);
    const spec = podSpec(objs);
    t.same(
      (spec.volumes as K8sObject[]).find((v) => v.name === 'client-ca'),
      { name: 'client-ca', ...source },
      `${scenario}: volume`,
    );
    const mount = (spec.containers[0].volumeMounts as K8sObject[]).find((m) => m.name === 'client-ca');
    // A subPath mount would never see updates: the reloader needs the directory.
    t.same(
      mount,
      { name: 'client-ca', mountPath: '/etc/breeze/client-ca', readOnly: true },
      `${scenario}: mount`,
    );
    // The rendered args are accepted by breeze serve, with the names as a list.
    const [, ...flags] = args(objs);
    const config = parseServeConfig(knownServeFlags(flags), {});
    t.equal(config.clientCaFile, '/etc/breeze/client-ca/ca.crt');
    t.same(
      config.clientAllowedNames,
      scenario === 'clientCaConfigMap' ? ['kube-apiserver-webhook-client', 'front-proxy-client'] : [],
    );
  }
  t.equal(argValue(rendered.clientCaSecret, '--client-allowed-names'), undefined);
  t.equal(
    argValue(rendered.clientCaConfigMap, '--client-allowed-names'),
    'kube-apiserver-webhook-client,front-proxy-client',
  );
});

t.test(
  'NetworkPolicy: webhook port from webhookFrom only, health port from healthFrom and the test pod',
  async (t) => {
    const np = one(rendered.netpol, 'NetworkPolicy', FULLNAME);
    t.equal(np.metadata.namespace, NAMESPACE);
    const deployment = one(rendered.netpol, 'Deployment', FULLNAME);
    t.same(np.spec.podSelector.matchLabels, deployment.spec.selector.matchLabels, 'selects the Breeze pods');
    t.same(np.spec.policyTypes, ['Ingress'], 'egress stays open by default');
    t.notOk('egress' in np.spec);
    const testPod = one(rendered.netpol, 'Pod', `${FULLNAME}-test-readyz`);
    t.same(np.spec.ingress, [
      { ports: [{ port: 9443, protocol: 'TCP' }], from: [{ ipBlock: { cidr: '10.0.0.0/28' } }] },
      {
        ports: [{ port: 8080, protocol: 'TCP' }],
        from: [
          {
            podSelector: {
              matchLabels: {
                'app.kubernetes.io/name': testPod.metadata.labels['app.kubernetes.io/name'],
                'app.kubernetes.io/instance': testPod.metadata.labels['app.kubernetes.io/instance'],
              },
            },
          },
        ],
      },
    ]);
    // The ports are the container ports the Deployment declares.
    const ports = deployment.spec.template.spec.containers[0].ports as K8sObject[];
    t.same(
      ports.map((p) => p.containerPort),
      [9443, 8080],
    );

    const full = one(rendered.netpolFull, 'NetworkPolicy', FULLNAME);
    t.same(full.spec.policyTypes, ['Ingress', 'Egress']);
    t.same(full.spec.ingress[0], {
      ports: [{ port: 10443, protocol: 'TCP' }],
      from: [
        { ipBlock: { cidr: '172.16.0.0/28', except: ['172.16.0.1/32'] } },
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
          podSelector: { matchLabels: { 'k8s-app': 'konnectivity-agent' } },
        },
      ],
    });
    t.same(full.spec.ingress[1].ports, [{ port: 18080, protocol: 'TCP' }]);
    t.same(full.spec.ingress[1].from[1], {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
    });
    t.same(full.spec.egress, [
      {
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      },
      { to: [{ ipBlock: { cidr: '10.0.0.0/28' } }], ports: [{ port: 443, protocol: 'TCP' }] },
    ]);
  },
);

t.test('helm lint passes with client CA and NetworkPolicy', async (t) => {
  const res = await helm([
    'lint',
    '--strict',
    CHART,
    ...SCENARIOS.clientCaConfigMap.set.flatMap((s) => ['--set', s]),
    ...SCENARIOS.netpolFull.set.flatMap((s) => ['--set', s]),
    ...SCENARIOS.netpolFull.extra,
  ]);
  t.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
});

t.test('values.schema.json rejects bad client CA and NetworkPolicy values', async (t) => {
  const bad: [string[], RegExp][] = [
    // Enabled with no peer would shut the API server out (or, with an empty from, let anyone in).
    [['networkPolicy.enabled=true'], /webhookFrom/],
    [['networkPolicy.enabled=yes'], /networkPolicy\/enabled|enabled/],
    [['networkPolicy.webhookFrom=10.0.0.0/8'], /webhookFrom/],
    [['--set-json=networkPolicy.webhookFrom=[{"cidr":"10.0.0.0/8"}]'], /webhookFrom/],
    [['--set-json=networkPolicy.webhookFrom=[{"ipBlock":{}}]'], /cidr/],
    [['--set-json=networkPolicy.webhookFrom=[{"ipBlock":{"cidr":"everywhere"}}]'], /cidr/],
    [['--set-json=networkPolicy.healthFrom=[{}]'], /healthFrom/],
    [['--set-json=networkPolicy.egress=[{"from":[]}]'], /egress/],
    [['networkPolicy.ingress=x'], /ingress/],
    [['webhook.clientCA.existingSecret=a', 'webhook.clientCA.configMap=b'], /configMap/],
    [['webhook.clientCA.allowedNames={kube-apiserver}'], /clientCA/],
    [['webhook.clientCA.existingSecret=a', 'webhook.clientCA.allowedNames=a\\,b'], /allowedNames/],
    [['webhook.clientCA.existingSecret=a', 'webhook.clientCA.key=dir/ca.crt'], /key/],
    [['webhook.clientCA.existingSecret=Not_A_Name'], /existingSecret/],
    [['webhook.clientCA.existingSecret=a', 'webhook.clientCA.key='], /key/],
    [['webhook.clientCA.caFile=/etc/ca.crt'], /caFile/],
  ];
  await Promise.all(
    bad.map(async ([set, where]) => {
      const flags = set.flatMap((s) => (s.startsWith('--') ? [s] : ['--set', s]));
      const res = await helm(['template', RELEASE, CHART, ...flags]);
      t.not(res.code, 0, `${set.join(' ')} must fail`);
      t.match(res.stderr, /schema/, `${set.join(' ')}: a schema error`);
      t.match(res.stderr, where, `${set.join(' ')}: names the value`);
    }),
  );
});

t.test('NOTES say whether webhook callers are authenticated', async (t) => {
  const notes = async (flags: string[]): Promise<string> => {
    const res = await helm([
      'install',
      RELEASE,
      CHART,
      '--namespace',
      NAMESPACE,
      '--dry-run=client',
      ...flags,
    ]);
    t.equal(res.code, 0, res.stderr);
    return res.stdout.slice(res.stdout.indexOf('NOTES:'));
  };
  t.match(await notes([]), 'Webhook callers: no client certificate asked for\n');
  t.match(
    await notes([
      '--set',
      'webhook.clientCA.existingSecret=apiserver-client-ca',
      '--set',
      'networkPolicy.enabled=true',
      API_SERVER_PEER,
    ]),
    `Webhook callers: client certificate required (webhook.clientCA; the API server must present one), NetworkPolicy ${FULLNAME}\n`,
  );
});
