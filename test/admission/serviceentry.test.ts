// ServiceEntry rules of issue 13 at the validator level (the AdmissionReview fixtures under
// test/fixtures/admission/serviceentry/ cover the same shapes end to end).
import t from 'tap';
import { isDubboInterface, validateServiceEntry } from '../../src/admission/validators/serviceentry.js';
import { ConfigStore } from '../../src/cache/store.js';
import type { JsonRecord } from '../../src/model/json.js';

const ctx = { view: new ConfigStore(), namespace: 'dubbo' };
const se = (ports: unknown[], annotations: JsonRecord = {}, extra: JsonRecord = {}): JsonRecord => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: 's', namespace: 'dubbo', annotations },
  spec: { hosts: ['s.example.com'], addresses: ['240.240.0.1'], resolution: 'STATIC', ports, ...extra },
});

t.test(
  'Dubbo interface: a Java FQN, *, or one * at the start or end (Envoy Dubbo route matching)',
  async (t) => {
    for (const ok of [
      'org.apache.dubbo.samples.DemoService',
      '*',
      'org.apache.dubbo.*',
      '*Service',
      '*.DemoService',
    ])
      t.ok(isDubboInterface(ok), ok);
    for (const bad of [
      '',
      '**',
      'org.*.Demo',
      '*a*',
      'a*b',
      'DemoService',
      'org.apache-x.*',
      '* ',
      'org..*x',
    ])
      t.notOk(isDubboInterface(bad), bad);
    t.notOk(isDubboInterface(`${'a.'.repeat(40000)}*`), 'over the Java name limit');
  },
);

t.test('misspelling warnings only for names that would be protocol ports', async (t) => {
  const r = validateServiceEntry(
    se([
      { number: 1, name: 'tcp-dubo', protocol: 'TCP' },
      { number: 2, name: 'http-dubo-ui', protocol: 'HTTP' },
      { number: 3, name: 'http-reddis' },
    ]),
    ctx,
  );
  t.same(r.problems, []);
  t.same(r.warnings, [
    'spec.ports[0].name: "tcp-dubo" looks like a misspelling of "tcp-dubbo" (protocol dubbo)',
  ]);
});

t.test('a port Istio serves otherwise is not a protocol port: no Breeze rule applies to it', async (t) => {
  // Wildcard host, no addresses, no interface: all fine for Istio's HTTP port.
  const r = validateServiceEntry(
    {
      ...se([{ number: 80, name: 'tcp-dubbo', protocol: 'HTTP' }]),
      spec: { hosts: ['*.example.com'], ports: [{ number: 80, name: 'tcp-dubbo', protocol: 'HTTP' }] },
    },
    ctx,
  );
  t.same(r.problems, []);
  t.same(r.warnings, [
    'spec.ports[0].protocol: Istio serves this port as HTTP, so Breeze adds no dubbo filter; set protocol to TCP for dubbo',
  ]);
});

t.test(
  "selector labels: Istio's rules everywhere, Kubernetes label syntax on protocol services",
  async (t) => {
    const labels = { '': 'bar', 'a*': 'x', 'app name': 'svc' };
    const plain = validateServiceEntry(
      se([{ number: 80, name: 'http', protocol: 'HTTP' }], {}, { workloadSelector: { labels } }),
      ctx,
    );
    t.same(
      plain.problems.map((p) => p.path),
      ['spec.workloadSelector.labels[]', 'spec.workloadSelector.labels[a*]'],
      "empty key and wildcard denied as Istio does; the odd key is Istio's business",
    );
    const thrift = validateServiceEntry(
      se([{ number: 9090, name: 'tcp-thrift', protocol: 'TCP' }], {}, { workloadSelector: { labels } }),
      ctx,
    );
    t.same(
      thrift.problems.map((p) => p.path),
      [
        'spec.workloadSelector.labels[]',
        'spec.workloadSelector.labels[a*]',
        'spec.workloadSelector.labels[app name]',
      ],
    );
    t.match(thrift.problems[2]?.message, /Breeze copies it into the thrift inbound EnvoyFilter/);
  },
);

t.test(
  'the workloadSelector annotation: empty is absent, malformed denied only on a protocol service',
  async (t) => {
    const thrift = [{ number: 9090, name: 'tcp-thrift', protocol: 'TCP' }];
    const http = [{ number: 80, name: 'http', protocol: 'HTTP' }];
    for (const raw of ['', '  ']) {
      const r = validateServiceEntry(se(thrift, { workloadSelector: raw }), ctx);
      t.same(r.problems, [], `${JSON.stringify(raw)} allowed`);
      t.same(r.warnings, [
        'metadata.annotations[workloadSelector]: is empty: treated as absent (no inbound filter without a selector)',
      ]);
      t.same(validateServiceEntry(se(http, { workloadSelector: raw }), ctx), { problems: [], warnings: [] });
    }
    const bad = validateServiceEntry(se(thrift, { workloadSelector: 'a:b:c' }), ctx);
    t.same(
      bad.problems.map((p) => p.path),
      ['metadata.annotations[workloadSelector]'],
    );
    const elsewhere = validateServiceEntry(se(http, { workloadSelector: 'a:b:c' }), ctx);
    t.same(elsewhere.problems, []);
    t.match(elsewhere.warnings, [
      /^metadata\.annotations\[workloadSelector\]: unused \(no protocol port\), and "a:b:c" has more than one ':'/,
    ]);
  },
);
