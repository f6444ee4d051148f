import t from 'tap';
import {
  isCidr,
  isDns1123Label,
  isDnsName,
  isIpAddress,
  isLabelKey,
  isLabelValue,
  resolveHost,
} from '../../src/model/names.js';
import { parseGoDuration } from '../../src/model/duration.js';
import { parseListenAddress } from '../../src/config/address.js';

t.test('DNS names and labels', async (t) => {
  t.ok(isDnsName('org.apache.dubbo.samples.basic.api.demoservice'));
  t.ok(isDnsName('Redis.Example.com'), 'hosts may carry capitals');
  t.notOk(isDnsName('*.example.com'));
  t.notOk(isDnsName('a..b'));
  t.notOk(isDnsName('-a.b'));
  t.notOk(isDnsName('x'.repeat(64)));
  t.notOk(isDnsName(''));
  t.ok(isDns1123Label('v1'));
  t.notOk(isDns1123Label('V1'));
  t.notOk(isDns1123Label('v1.2'));
  t.ok(isLabelKey('app.kubernetes.io/name'));
  t.notOk(isLabelKey('a/b/c'));
  t.ok(isLabelValue(''));
  t.notOk(isLabelValue('-x'));
});

t.test('addresses', async (t) => {
  t.ok(isIpAddress('10.0.0.1'));
  t.ok(isIpAddress('2001:db8::1'));
  t.notOk(isIpAddress('10.0.0.1/32'));
  t.ok(isCidr('10.0.0.0/8'));
  t.ok(isCidr('2001:db8::/32'));
  t.notOk(isCidr('10.0.0.0/33'));
  t.notOk(isCidr('10.0.0.0'));
});

t.test('short host names resolve in the namespace', async (t) => {
  t.equal(resolveHost('reviews', 'a', 'cluster.local'), 'reviews.a.svc.cluster.local');
  t.equal(resolveHost('Reviews.B.svc.cluster.local', 'a', 'cluster.local'), 'reviews.b.svc.cluster.local');
});

t.test('Go durations and listen addresses', async (t) => {
  t.equal(parseGoDuration('500ms'), 500);
  t.equal(parseGoDuration('10s'), 10_000);
  t.equal(parseGoDuration('1m30s'), 90_000);
  t.equal(parseGoDuration('1.5h'), 5_400_000);
  t.equal(parseGoDuration('0'), 0);
  t.equal(parseGoDuration('10'), undefined);
  t.equal(parseGoDuration('s'), undefined);
  t.equal(parseGoDuration('5x'), undefined);
  t.same(parseListenAddress(':9443'), { host: '0.0.0.0', port: 9443 });
  t.same(parseListenAddress('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  t.same(parseListenAddress('[::1]:9443'), { host: '::1', port: 9443 });
  t.equal(parseListenAddress('9443'), undefined);
  t.equal(parseListenAddress(':70000'), undefined);
});
