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

t.test(
  'isDnsName is the per-label rule: same answer as splitting on dots and matching each label',
  async (t) => {
    const label = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
    const oracle = (s: string): boolean =>
      s.length > 0 && s.length <= 253 && s.split('.').every((l) => l.length <= 63 && label.test(l));
    const chars = ['a', 'Z', '0', '9', '-', '.', '_', '*', ' ', 'é'];
    let checked = 0;
    // Every string of up to 4 of these characters, then random longer ones around the limits.
    const all = (n: number): string[] =>
      n === 0 ? [''] : all(n - 1).flatMap((p) => chars.map((c) => p + c));
    const samples = [0, 1, 2, 3, 4].flatMap(all);
    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 5000; i++) {
      const length = [62, 63, 64, 65, 252, 253, 254][rand(7)]! + rand(3) - 1;
      samples.push(
        Array.from({ length }, () => (rand(20) === 0 ? chars[rand(chars.length)]! : 'ab'[rand(2)]!)).join(''),
      );
    }
    samples.push(
      `${'a'.repeat(63)}.b`,
      `${'a'.repeat(64)}.b`,
      `${'a.'.repeat(126)}a`,
      `${'a.'.repeat(127)}a`,
    );
    for (const s of samples) {
      if (isDnsName(s) !== oracle(s)) t.fail(`${JSON.stringify(s)}: ${isDnsName(s)}, expected ${oracle(s)}`);
      checked++;
    }
    t.equal(checked, samples.length);
    t.ok(samples.some((s) => oracle(s)) && samples.some((s) => !oracle(s)), 'both answers occur');
  },
);
