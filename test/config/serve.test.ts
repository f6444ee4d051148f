import t from 'tap';
import { parseServeConfig, serveUsage } from '../../src/config/serve.js';

t.test('local defaults', async (t) => {
  const c = parseServeConfig([], {});
  t.match(c, {
    mode: 'local',
    listen: { host: '127.0.0.1', port: 9443 },
    healthListen: { host: '127.0.0.1', port: 8080 },
    tlsCertFile: 'certs/tls.crt',
    configDir: 'examples',
    rootNamespace: 'istio-system',
    debounceAfterMs: 500,
    debounceMaxMs: 10_000,
    vipCidr: '240.240.0.0/16',
    logLevel: 'info',
    sources: ['admission', 'file'],
  });
});

t.test('cluster defaults, env and flags (flag wins over env)', async (t) => {
  const c = parseServeConfig(['--mode', 'cluster', '--listen', ':10443'], {
    BREEZE_LISTEN: ':1',
    BREEZE_LOG_LEVEL: 'debug',
    BREEZE_VIP_CIDR: '10.200.0.0/16',
  });
  t.match(c, {
    mode: 'cluster',
    listen: { host: '0.0.0.0', port: 10443 },
    logLevel: 'debug',
    vipCidr: '10.200.0.0/16',
    sources: ['kubernetes'],
  });
});

t.test('every bad value names its flag', async (t) => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['--mode', 'prod'], {}, /--mode \(BREEZE_MODE\): "prod" must be local or cluster/],
    [['--listen', '9443'], {}, /--listen \(BREEZE_LISTEN\): "9443" must be host:port/],
    [
      [],
      { BREEZE_DEBOUNCE_AFTER: 'soon' },
      /--debounce-after \(BREEZE_DEBOUNCE_AFTER\): "soon" must be a duration/,
    ],
    [['--debounce-after', '20s'], {}, /--debounce-max .* must not be shorter than --debounce-after/],
    [['--vip-cidr', '240.240.0.0'], {}, /--vip-cidr: "240.240.0.0" must be an IPv4 CIDR/],
    [['--log-level', 'loud'], {}, /--log-level .* must be one of trace, debug/],
    [['--sources', 'file,etcd'], {}, /--sources .* "etcd" each source must be/],
    [['--mode', 'cluster', '--sources', 'istiod'], {}, /--istiod-address is required/],
    [['--sources', 'file,kubernetes'], {}, /--sources .* kubernetes and istiod need --mode cluster/],
    [
      ['--mode', 'cluster', '--sources', 'admission,kubernetes'],
      {},
      /--sources \(BREEZE_SOURCES\): "admission,kubernetes" admission is a local-mode source: in cluster mode anyone who reaches the webhook port can POST a review the API server never saw/,
    ],
    [['--domain', 'bad_domain'], {}, /--domain .* must be a DNS name/],
    [['--tls-mode', 'self-managed', '--tls-secret', 'breeze-tls'], {}, /--tls-mode .* needs --mode cluster/],
    [['--mode', 'cluster', '--tls-mode', 'self-managed'], {}, /--tls-secret .* must name a Secret/],
    [['--tls-mode', 'vault'], {}, /--tls-mode .* must be one of files, self-managed/],
    [['--api-qps', '0'], {}, /--api-qps .* must be a positive integer/],
    [['--leader-elect', 'maybe'], {}, /--leader-elect .* must be true or false/],
    [
      ['--leader-elect-renew-deadline', '15s'],
      {},
      /--leader-elect-renew-deadline .*"15s" must be shorter than --leader-elect-lease-duration \(15s\)/,
    ],
    [
      ['--leader-elect-retry-period', '10s'],
      {},
      /--leader-elect-retry-period .*"10s" must be shorter than --leader-elect-renew-deadline \(10s\)/,
    ],
    [['--nope', 'x'], {}, /Unknown option '--nope'/],
  ];
  for (const [argv, env, re] of cases)
    t.throws(() => parseServeConfig(argv, env), { code: 'BAD_FLAG', message: re }, argv.join(' '));
});

t.test('cluster mode adds istiod when its address is given, unless --sources is explicit', async (t) => {
  t.same(
    parseServeConfig(['--mode', 'cluster', '--istiod-address', 'istiod.istio-system.svc:15012'], {}).sources,
    ['kubernetes', 'istiod'],
  );
  t.same(
    parseServeConfig(['--mode', 'cluster', '--istiod-address', 'istiod:15010', '--sources', 'istiod'], {})
      .sources,
    ['istiod'],
  );
});

t.test('usage lists every flag with its variable', async (t) => {
  const u = serveUsage();
  for (const f of [
    '--listen',
    '--health-listen',
    '--tls-cert-file',
    '--vip-cidr',
    '--root-namespace',
    'BREEZE_DEBOUNCE_MAX',
  ])
    t.match(u, f);
});

t.test('--client-ca-file and --client-allowed-names (both modes, flag or env)', async (t) => {
  for (const mode of ['local', 'cluster']) {
    const none = parseServeConfig(['--mode', mode], {});
    t.equal(none.clientCaFile, undefined, `${mode}: no client certificate asked for by default`);
    t.same(none.clientAllowedNames, []);
    const c = parseServeConfig(['--mode', mode, '--client-ca-file', '/etc/breeze/client-ca/ca.crt'], {
      BREEZE_CLIENT_ALLOWED_NAMES: ' kube-apiserver-webhook-client , front-proxy-client,',
    });
    t.equal(c.clientCaFile, '/etc/breeze/client-ca/ca.crt');
    t.same(c.clientAllowedNames, ['kube-apiserver-webhook-client', 'front-proxy-client']);
  }
  t.equal(parseServeConfig([], { BREEZE_CLIENT_CA_FILE: 'ca.pem' }).clientCaFile, 'ca.pem');
  t.equal(
    parseServeConfig(['--client-ca-file', 'flag.pem'], { BREEZE_CLIENT_CA_FILE: 'env.pem' }).clientCaFile,
    'flag.pem',
    'the flag wins over the variable',
  );
  const cases: [string[], Record<string, string>, RegExp][] = [
    // An empty path must not silently turn authentication off.
    [['--client-ca-file', ''], {}, /--client-ca-file \(BREEZE_CLIENT_CA_FILE\): "" must be the path/],
    [[], { BREEZE_CLIENT_CA_FILE: '  ' }, /--client-ca-file .* must be the path of a PEM CA bundle/],
    [['--client-allowed-names', 'kube-apiserver'], {}, /--client-allowed-names .* needs --client-ca-file/],
    [
      ['--client-ca-file', 'ca.pem', '--client-allowed-names', ' , '],
      {},
      /--client-allowed-names .* must list at least one Common Name/,
    ],
  ];
  for (const [argv, env, re] of cases)
    t.throws(
      () => parseServeConfig(argv, env),
      { code: 'BAD_FLAG', message: re },
      JSON.stringify([argv, env]),
    );
  const u = serveUsage();
  t.match(u, /--client-ca-file .*requires a client certificate.*\(BREEZE_CLIENT_CA_FILE\)/);
  t.match(u, /--client-allowed-names .*Common Names.*\(BREEZE_CLIENT_ALLOWED_NAMES\)/);
});
