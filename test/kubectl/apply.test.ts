// What `kubectl apply` prints when Breeze refuses an object, with a real kubectl (v1.35, from the
// layer zip) against the fake API server, which calls Breeze's webhooks and wraps a denial as the
// real API server does (ToStatusErr). One shape for every kind: `Error from server: error when
// creating "<file>": admission webhook "<webhook>" denied the request: <Kind>.<group> "<name>" is
// invalid: <path>: <why>`, one `* <path>: <why>` line per problem when there are several, and each
// warning as a `Warning: ` line.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { stringify } from 'yaml';
import { cluster } from './kubectl.js';

type Json = Record<string, any>;

function fixture(path: string): { object: Json; cache: Json[] } {
  const fx = JSON.parse(readFileSync(new URL(`../fixtures/admission/${path}`, import.meta.url), 'utf8'));
  const object = fx.review.request.object as Json;
  return { object: { ...object, metadata: { ...object.metadata } }, cache: fx.cache ?? [] };
}

const ERR = 'Error from server: error when creating';
const VALIDATE = 'admission webhook "validate.breeze.io" denied the request:';

const cases: { file: string; fixture: string; edit?: (o: Json) => void; stderr: string }[] = [
  {
    file: 'serviceentry.yaml',
    fixture: 'serviceentry/deny-dubbo-missing-interface.v1.json',
    stderr: `${ERR} "serviceentry.yaml": ${VALIDATE} ServiceEntry.networking.istio.io "dubbo-demo" is invalid: spec.ports[1]: port "tcp-dubbo" needs the annotation "interface" (the Dubbo interface, e.g. org.apache.dubbo.samples.DemoService)\n`,
  },
  {
    file: 'virtualservice.yaml',
    fixture: 'virtualservice/deny-hosts-empty.v1beta1.json',
    stderr: `${ERR} "virtualservice.yaml": ${VALIDATE} VirtualService.networking.istio.io "dubbo-demo" is invalid: spec.hosts: must list at least one host: this VirtualService routes to the dubbo org.apache.dubbo.samples.basic.api.demoservice service, whose routes Breeze reads only from a VirtualService naming it in hosts (e.g. ["org.apache.dubbo.samples.basic.api.demoservice"])\n`,
  },
  {
    file: 'destinationrule.yaml',
    fixture: 'destinationrule/deny-duplicate-subset.v1beta1.json',
    stderr: `${ERR} "destinationrule.yaml": ${VALIDATE} DestinationRule.networking.istio.io "dubbo-demo" is invalid: spec.subsets[2].name: "v1" is already used by spec.subsets[0]; subset names must be unique in a rule\n`,
  },
  {
    file: 'redisservice.yaml',
    fixture: 'redisservice/deny-several-problems.v1.json',
    // The fixture's percentage 200 is refused by Breeze's CRD schema (maximum 100) before any
    // webhook sees it; 0 passes the schema and reaches Breeze.
    edit: (o) => (o.spec.redis[1].mirror[0].percentage.value = 0),
    stderr:
      'Warning: spec.settings.auth.plain: password is readable by anyone who can read this object; use secret\n' +
      `${ERR} "redisservice.yaml": ${VALIDATE} RedisService.redis.aeraki.io "redis" is invalid:\n` +
      '* spec.host[0]: "*.redis.svc.cluster.local" is not a DNS name; use a plain host name without wildcard, e.g. redis.redis.svc.cluster.local\n' +
      '* spec.redis[1].match.key.prefix: "user:" is already used by spec.redis[0]; key prefixes must be unique: change it or merge the two routes\n' +
      '* spec.redis[1].mirror[0].percentage.value: must be a number greater than 0 and at most 100, got 0\n' +
      '* spec.faults[0].delay: "100ms" is not a protobuf duration; use "0.1s" (seconds with an "s" suffix)\n',
  },
  {
    file: 'redisdestination.yaml',
    fixture: 'redisdestination/deny-tcp-settings.v1.json',
    stderr:
      `${ERR} "redisdestination.yaml": ${VALIDATE} RedisDestination.redis.aeraki.io "redis" is invalid:\n` +
      '* spec.trafficPolicy.connectionPool.tcp.maxConnections: must be an integer from 1 to 2147483647, got 0\n' +
      '* spec.trafficPolicy.connectionPool.tcp.connectTimeout: "10ms" is not a protobuf duration; use "0.01s" (seconds with an "s" suffix)\n',
  },
  {
    file: 'envoyfilter.yaml',
    fixture: 'envoyfilter/deny-user-creates-with-breeze-label.v1.json',
    stderr:
      'Error from server (Forbidden): error when creating "envoyfilter.yaml": admission webhook "envoyfilters.breeze.io" denied the request: ' +
      'EnvoyFilter.networking.istio.io "breeze-outbound-demo.dubbo.svc.cluster.local-240.240.0.9-20880" is forbidden: ' +
      'metadata.labels[app.kubernetes.io/managed-by]: this EnvoyFilter is managed by Breeze (app.kubernetes.io/managed-by=breeze) ' +
      'and only Breeze may create it; edit ServiceEntry dubbo/demo (sources: ServiceEntry/dubbo/demo,VirtualService/dubbo/demo) instead, and Breeze rewrites it\n',
  },
];

for (const c of cases) {
  t.test(
    `kubectl apply -f ${c.file}: denied, naming the file, the webhook, the object, each field`,
    async (t) => {
      const k = await cluster(t);
      const { object, cache } = fixture(c.fixture);
      c.edit?.(object);
      for (const o of cache) k.store.upsert(o, 'file');
      k.file(c.file, stringify(object));
      const r = await k.kubectl(['apply', '--validate=false', '-f', c.file]);
      t.equal(r.code, 1, 'kubectl fails');
      t.equal(r.stdout, '', 'nothing on stdout');
      t.equal(r.stderr, c.stderr, 'the exact text kubectl prints');
      const { apiVersion, kind, metadata } = object;
      t.equal(k.api.get(apiVersion, kind, metadata.namespace, metadata.name), undefined, 'nothing stored');
    },
  );
}

t.test('kubectl apply of an allowed object prints its warnings as Warning: lines', async (t) => {
  const k = await cluster(t);
  const { object } = fixture('redisservice/warn-plain-password.v1.json');
  k.file('redis.yaml', stringify(object));
  const r = await k.kubectl(['apply', '--validate=false', '-f', 'redis.yaml']);
  t.equal(r.code, 0);
  t.equal(r.stdout, `redisservice.redis.aeraki.io/${object.metadata.name} created\n`);
  t.equal(
    r.stderr,
    'Warning: spec.settings.auth.plain: password is readable by anyone who can read this object; use secret\n',
  );
});

t.test(
  'kubectl apply of a ServiceEntry without addresses: stored with the VIP the mutating webhook set',
  async (t) => {
    const k = await cluster(t);
    const { object } = fixture('serviceentry/allow-dubbo.v1.json');
    delete object.spec.addresses;
    k.file('se.yaml', stringify(object));
    const r = await k.kubectl(['apply', '--validate=false', '-f', 'se.yaml']);
    t.equal(r.stderr, '');
    t.equal(r.stdout, `serviceentry.networking.istio.io/${object.metadata.name} created\n`);
    t.equal(r.code, 0);
    const stored = k.api.get(
      object.apiVersion,
      'ServiceEntry',
      object.metadata.namespace,
      object.metadata.name,
    );
    t.match(stored?.spec, { addresses: [/^240\.240\.\d+\.\d+$/] }, 'the VIP was patched in');
  },
);

t.test("an object Istio's own schema refuses: kubectl prints the API server's Invalid status", async (t) => {
  const k = await cluster(t);
  const { object } = fixture('serviceentry/allow-dubbo.v1.json');
  object.spec.resolution = 'dns';
  k.file('se.yaml', stringify(object));
  const r = await k.kubectl(['apply', '--validate=false', '-f', 'se.yaml']);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.equal(
    r.stderr,
    `The ServiceEntry "${object.metadata.name}" is invalid: spec.resolution: Unsupported value: "dns": supported values: "NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"\n`,
  );
});
