import t from 'tap';
import fc from 'fast-check';
import { inboundName, objectName, outboundName } from '../../src/protocols/shared/names.js';
import { isDns1123Subdomain } from '../../src/model/names.js';

t.test('plain names pass unchanged', async (t) => {
  t.equal(
    outboundName('org.apache.dubbo.samples.basic.api.demoservice', '240.240.0.20', 20880),
    'breeze-outbound-org.apache.dubbo.samples.basic.api.demoservice-240.240.0.20-20880',
  );
  t.equal(
    inboundName('redis.redis.svc.cluster.local', 6379),
    'breeze-inbound-redis.redis.svc.cluster.local-6379',
  );
});

t.test('IPv6, capitals and over-long names become valid and keep a hash', async (t) => {
  const v6 = outboundName('kafka.kafka.svc.cluster.local', 'fd00:10:96::1', 9092);
  t.match(v6, /^breeze-outbound-kafka\.kafka\.svc\.cluster\.local-fd00-10-96--1-9092-[0-9a-f]{8}$/);
  t.ok(isDns1123Subdomain(v6));
  t.equal(objectName('Breeze-Inbound-X'), 'breeze-inbound-x', 'lowercase alone needs no hash');
  const long = outboundName(
    `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.example.com`,
    '10.0.0.1',
    1,
  );
  t.ok(long.length <= 253);
  t.ok(isDns1123Subdomain(long));
  t.match(long, /-[0-9a-f]{8}$/);
});

t.test('1,000 random services never collide and every name is valid', async (t) => {
  const host = fc
    .array(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/), { minLength: 1, maxLength: 6 })
    .map((labels) => labels.join('.'));
  const vip = fc.oneof(fc.ipV4(), fc.ipV6());
  const service = fc.tuple(host, vip, fc.integer({ min: 1, max: 65535 }));
  fc.assert(
    fc.property(
      fc.uniqueArray(service, { minLength: 1000, maxLength: 1000, selector: (s) => s.join('|') }),
      (services) => {
        const names = new Set<string>();
        for (const [h, v, p] of services) {
          const n = outboundName(h, v, p);
          if (!isDns1123Subdomain(n)) throw new Error(`invalid ${n}`);
          names.add(n);
        }
        return names.size === services.length;
      },
    ),
    { numRuns: 5 },
  );
  t.pass('no collisions');
});
