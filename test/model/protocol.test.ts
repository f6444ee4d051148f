import t from 'tap';
import {
  editDistance,
  likelyMisspeltProtocol,
  protocolFromPortName,
  protocolOfPort,
  readPort,
} from '../../src/model/protocol.js';
import { serviceViewOf } from '../../src/model/service.js';

t.test('protocol is the second dash token, any case (Aeraki parity)', async (t) => {
  t.equal(protocolFromPortName('tcp-dubbo'), 'dubbo');
  t.equal(protocolFromPortName('tcp-Dubbo'), 'dubbo');
  t.equal(protocolFromPortName('tcp-Dubbo-28001'), 'dubbo');
  t.equal(protocolFromPortName('TCP-redis'), 'redis', 'Istio reads TCP in any case');
  t.equal(
    protocolFromPortName('foo-dubbo'),
    'dubbo',
    'a prefix Istio does not know: sniffed TCP, Aeraki parity',
  );
  t.equal(protocolFromPortName('Dubbo'), undefined);
  t.equal(protocolFromPortName('tcp'), undefined);
  t.equal(protocolFromPortName('tcp-metaprotocol'), undefined, 'no panic, not supported');
  t.equal(protocolFromPortName('tcp-zookeeper'), 'zookeeper');
  t.equal(protocolFromPortName('tcp-kafka-broker'), 'kafka');
  t.equal(protocolFromPortName('tcp-thrift'), 'thrift');
  t.equal(protocolFromPortName(''), undefined);
});

t.test('misspellings are caught without flagging real names', async (t) => {
  t.equal(likelyMisspeltProtocol('tcp-dubo'), 'dubbo');
  t.equal(likelyMisspeltProtocol('tcp-thirft'), 'thrift');
  t.equal(likelyMisspeltProtocol('tcp-zookeper'), 'zookeeper');
  t.equal(likelyMisspeltProtocol('tcp-zookeepr'), 'zookeeper');
  t.equal(likelyMisspeltProtocol('tcp-reddis'), 'redis');
  t.equal(likelyMisspeltProtocol('tcp-kafak'), 'kafka');
  for (const ok of [
    'tcp-dubbo',
    'tcp-redis',
    'http-web',
    'tcp-follower',
    'tcp-election',
    'tcp',
    'grpc',
    'tcp-mongo',
    'tcp-mysql',
    'tcp-custom',
    'tcp-db',
  ]) {
    t.equal(likelyMisspeltProtocol(ok), undefined, ok);
  }
});

t.test('edit distance', async (t) => {
  t.equal(editDistance('', ''), 0);
  t.equal(editDistance('abc', ''), 3);
  t.equal(editDistance('thirft', 'thrift'), 1, 'adjacent swap counts once');
  t.equal(editDistance('kitten', 'sitting'), 3);
});

t.test("a port is Breeze's only when Istio serves it as plain TCP (the way Istio reads it)", async (t) => {
  // The name's prefix is Istio's protocol (Kubernetes Service ports, and ServiceEntry ports without protocol).
  for (const name of ['http-redis-ui', 'HTTP-dubbo', 'http2-thrift', 'https-kafka', 'grpc-dubbo', 'tls-redis',
    'udp-zookeeper', 'mongo-dubbo', 'mysql-thrift', 'redis-redis']) {
    t.equal(protocolFromPortName(name), undefined, name);
  } // prettier-ignore
  t.same(readPort({ name: 'http-redis-ui' }), {
    protocol: undefined,
    leftToIstio: { named: 'redis', istio: 'HTTP', field: 'name' },
  });
  // A ServiceEntry's protocol field wins over the name, both ways.
  t.equal(protocolOfPort({ name: 'tcp-dubbo', protocol: 'TCP' }), 'dubbo');
  t.equal(protocolOfPort({ name: 'tcp-dubbo', protocol: 'tcp' }), 'dubbo');
  t.equal(protocolOfPort({ name: 'http-dubbo', protocol: 'TCP' }), 'dubbo', 'Istio reads TCP from the field');
  t.same(readPort({ name: 'tcp-dubbo', protocol: 'HTTP' }), {
    protocol: undefined,
    leftToIstio: { named: 'dubbo', istio: 'HTTP', field: 'protocol' },
  });
  t.same(readPort({ name: 'http-redis-ui', protocol: 'HTTP' }).leftToIstio?.field, 'name', 'both say HTTP');
  // A Kubernetes Service: UDP/SCTP by its protocol field, else appProtocol, else the name prefix.
  t.equal(
    protocolOfPort({ name: 'tcp-redis', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' }, 'Service'),
    undefined,
  );
  t.equal(protocolOfPort({ name: 'http-redis', protocol: 'TCP', appProtocol: 'tcp' }, 'Service'), 'redis');
  t.equal(
    protocolOfPort({ name: 'http-redis-ui', protocol: 'TCP' }, 'Service'),
    undefined,
    'TCP is the default',
  );
  t.equal(protocolOfPort({ name: 'tcp-redis', protocol: 'TCP' }, 'Service'), 'redis');
  t.equal(
    protocolOfPort({ name: 'tcp-zookeeper', protocol: 'UDP', appProtocol: 'tcp' }, 'Service'),
    undefined,
  );
  t.equal(protocolOfPort({ name: 'http-redis-ui', protocol: 'TCP' }), 'redis', 'a ServiceEntry says TCP');
  t.equal(
    protocolOfPort({ name: 'tcp-redis', appProtocol: 'http' }),
    'redis',
    'a ServiceEntry has no appProtocol',
  );
  t.equal(protocolOfPort({ name: 'tcp-zookeeper', protocol: 'UDP' }), undefined);
  t.equal(protocolOfPort({ name: 'tcp-dubbo', protocol: 5 }), 'dubbo', 'a non-string field is not read');
  t.equal(protocolOfPort({ name: 5 }), undefined);
  t.equal(protocolOfPort({ name: `${'h'.repeat(1 << 20)}-dubbo` }), 'dubbo', 'a long unknown prefix');
});

t.test('the cache reads Services and ServiceEntries with the same rule (serviceViewOf)', async (t) => {
  const service = serviceViewOf(
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'redis', namespace: 'redis' },
      spec: {
        clusterIP: '10.96.0.10',
        ports: [
          { name: 'tcp-redis', port: 6379, protocol: 'TCP' },
          { name: 'http-redis-ui', port: 8080, protocol: 'TCP' },
          { name: 'tcp-dubbo', port: 20880, protocol: 'TCP', appProtocol: 'http' },
        ],
      },
    },
    'cluster.local',
  );
  t.same(
    service?.ports.map((p) => [p.name, p.protocol]),
    [
      ['tcp-redis', 'redis'],
      ['http-redis-ui', undefined],
      ['tcp-dubbo', undefined],
    ],
  );
  const entry = serviceViewOf(
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'redis', namespace: 'redis' },
      spec: {
        hosts: ['redis.example.com'],
        ports: [
          { name: 'http-redis-ui', number: 8080 },
          { name: 'tcp-redis', number: 6379, protocol: 'TCP' },
          { name: 'tcp-Dubbo-28001', number: 28001, protocol: 'HTTP' },
        ],
      },
    },
    'cluster.local',
  );
  t.same(
    entry?.ports.map((p) => p.protocol),
    [undefined, 'redis', undefined],
  );
});
