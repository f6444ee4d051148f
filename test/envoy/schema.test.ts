import t from 'tap';
import { checkEnvoyFilter, checkMessage, schemaLoadMillis, schemaRoot } from '../../src/envoy/schema.js';
import {
  buildEnvoyFilter,
  inboundListenerPatch,
  outboundListenerPatch,
  typedStruct,
} from '../../src/protocols/shared/envoyfilter.js';

const FILTER = 'envoy.config.listener.v3.Filter';
const CLUSTER = 'envoy.config.cluster.v3.Cluster';
const TS = 'type.googleapis.com/';
const NET = `${TS}envoy.extensions.filters.network`;
const DEMO = 'org.apache.dubbo.samples.basic.api.demoservice';

function dubboFilter(): any {
  return {
    name: 'envoy.filters.network.dubbo_proxy',
    typedConfig: {
      '@type': `${NET}.dubbo_proxy.v3.DubboProxy`,
      statPrefix: `outbound|20880||${DEMO}`,
      protocolType: 'Dubbo',
      serializationType: 'Hessian2',
      multipleRouteConfig: {
        name: `outbound|20880||${DEMO}`,
        routeConfig: [
          {
            name: `outbound|20880||${DEMO}`,
            interface: 'org.apache.dubbo.samples.basic.api.DemoService',
            group: 'g1',
            version: '1.0.0',
            routes: [
              {
                match: {
                  method: {
                    name: { safeRegex: { regex: 'say.*' } },
                    paramsMatch: {
                      '0': { exactMatch: 'hello' },
                      '1': { rangeMatch: { start: '1', end: 100 } },
                    },
                  },
                  headers: [
                    { name: 'x-user', stringMatch: { prefix: 'vip-' } },
                    { name: 'x-canary', presentMatch: true, invertMatch: true },
                  ],
                },
                route: {
                  weightedClusters: {
                    clusters: [
                      { name: `outbound|20880|v1|${DEMO}`, weight: 80 },
                      { name: `outbound|20880|v2|${DEMO}`, weight: 20 },
                    ],
                  },
                },
              },
              {
                match: { method: { name: { exact: 'sayHello' } } },
                route: { cluster: `outbound|20880||${DEMO}` },
              },
            ],
          },
        ],
      },
      dubboFilters: [
        {
          name: 'envoy.filters.dubbo.router',
          config: { '@type': `${NET}.dubbo_proxy.router.v3.Router` },
        },
      ],
    },
  };
}

function thriftFilter(): any {
  const host = 'thrift-sample-server.meta-thrift.svc.cluster.local';
  return {
    name: 'envoy.filters.network.thrift_proxy',
    typedConfig: {
      '@type': `${NET}.thrift_proxy.v3.ThriftProxy`,
      statPrefix: `outbound|9090||${host}`,
      transport: 'FRAMED',
      protocol: 'BINARY',
      routeConfig: {
        name: `outbound|9090||${host}`,
        routes: [
          {
            match: { methodName: 'sayHello', headers: [{ name: 'x-version', stringMatch: { exact: 'v2' } }] },
            route: {
              weightedClusters: {
                clusters: [
                  { name: `outbound|9090|v1|${host}`, weight: 90 },
                  { name: `outbound|9090|v2|${host}`, weight: 10 },
                ],
              },
            },
          },
          {
            match: { methodName: '' },
            route: { cluster: `outbound|9090||${host}`, stripServiceName: false },
          },
        ],
      },
      thriftFilters: [
        {
          name: 'envoy.filters.thrift.router',
          typedConfig: {
            '@type': `${NET}.thrift_proxy.router.v3.Router`,
            closeDownstreamOnUpstreamError: true,
          },
        },
      ],
      maxRequestsPerConnection: 1000,
      payloadPassthrough: true,
    },
  };
}

function redisFilter(): any {
  const host = 'redis.demo.svc.cluster.local';
  return {
    name: 'envoy.filters.network.redis_proxy',
    typedConfig: {
      '@type': `${NET}.redis_proxy.v3.RedisProxy`,
      statPrefix: `outbound|6379||${host}`,
      settings: {
        opTimeout: '0.5s',
        enableHashtagging: true,
        enableRedirection: true,
        maxBufferSizeBeforeFlush: 1024,
        bufferFlushTimeout: '0.003s',
        maxUpstreamUnknownConnections: 100,
        enableCommandStats: true,
        readPolicy: 'PREFER_REPLICA',
      },
      latencyInMicros: true,
      prefixRoutes: {
        caseInsensitive: true,
        routes: [
          {
            prefix: 'user:',
            removePrefix: false,
            cluster: 'outbound|6379||redis-user.demo.svc.cluster.local',
            requestMirrorPolicy: [
              {
                cluster: 'outbound|6379||redis-shadow.demo.svc.cluster.local',
                runtimeFraction: {
                  defaultValue: { numerator: 10, denominator: 'HUNDRED' },
                  runtimeKey: 'redis.mirror.user',
                },
                excludeReadCommands: true,
              },
            ],
          },
        ],
        catchAllRoute: { cluster: `outbound|6379||${host}` },
      },
      downstreamAuthPasswords: [{ inlineString: 'not-a-real-secret' }],
      downstreamAuthUsername: { inlineString: 'default' },
      faults: [
        {
          faultType: 'DELAY',
          faultEnabled: { defaultValue: { numerator: 5, denominator: 'HUNDRED' } },
          delay: '2s',
          commands: ['GET', 'SET'],
        },
        {
          faultType: 'ERROR',
          faultEnabled: {
            defaultValue: { numerator: 1, denominator: 'TEN_THOUSAND' },
            runtimeKey: 'redis.fault',
          },
        },
      ],
    },
  };
}

function zookeeperFilter(): any {
  return {
    name: 'envoy.filters.network.zookeeper_proxy',
    typedConfig: {
      '@type': `${NET}.zookeeper_proxy.v3.ZooKeeperProxy`,
      statPrefix: 'outbound|2181||zookeeper.demo.svc.cluster.local',
      maxPacketBytes: 1048576,
      enableLatencyThresholdMetrics: true,
      defaultLatencyThreshold: '0.1s',
      latencyThresholdOverrides: [
        { opcode: 'Create', threshold: '0.150s' },
        { opcode: 'GetData', threshold: '0.05s' },
      ],
      enablePerOpcodeRequestBytesMetrics: true,
      enablePerOpcodeResponseBytesMetrics: true,
      enablePerOpcodeDecoderErrorMetrics: true,
    },
  };
}

function kafkaFilter(): any {
  return {
    name: 'envoy.filters.network.kafka_broker',
    typedConfig: {
      '@type': `${TS}xds.type.v3.TypedStruct`,
      typeUrl: `${NET}.kafka_broker.v3.KafkaBroker`,
      value: {
        statPrefix: 'outbound|9092||kafka.demo.svc.cluster.local',
        forceResponseRewrite: true,
        idBasedBrokerAddressRewriteSpec: {
          rules: [
            { id: 0, host: 'kafka-0.kafka.demo.svc.cluster.local', port: 9092 },
            { id: 1, host: 'kafka-1.kafka.demo.svc.cluster.local', port: 9092 },
          ],
        },
        apiKeysDenied: [17, 36],
      },
    },
  };
}

function redisCluster(): any {
  const name = 'outbound|6379||redis.demo.svc.cluster.local';
  return {
    name,
    connectTimeout: '10s',
    lbPolicy: 'CLUSTER_PROVIDED',
    clusterType: {
      name: 'envoy.clusters.redis',
      typedConfig: {
        '@type': `${TS}envoy.extensions.clusters.redis.v3.RedisClusterConfig`,
        clusterRefreshRate: '5s',
        clusterRefreshTimeout: '3s',
        redirectRefreshInterval: '0.050s',
        redirectRefreshThreshold: 5,
        failureRefreshThreshold: 3,
        hostDegradedRefreshThreshold: 3,
      },
    },
    loadAssignment: {
      clusterName: name,
      endpoints: [
        {
          lbEndpoints: [
            {
              endpoint: {
                address: {
                  socketAddress: { address: 'redis-0.redis.demo.svc.cluster.local', portValue: 6379 },
                },
              },
            },
            {
              endpoint: {
                address: {
                  socketAddress: { address: 'redis-1.redis.demo.svc.cluster.local', portValue: 6379 },
                },
              },
            },
          ],
        },
      ],
    },
    circuitBreakers: {
      thresholds: [
        {
          priority: 'DEFAULT',
          maxConnections: 1024,
          maxPendingRequests: 1024,
          maxRequests: 1024,
          maxRetries: 3,
          trackRemaining: true,
        },
      ],
    },
    typedExtensionProtocolOptions: {
      'envoy.filters.network.redis_proxy': {
        '@type': `${NET}.redis_proxy.v3.RedisProtocolOptions`,
        authUsername: { inlineString: 'default' },
        authPassword: { inlineString: 'not-a-real-secret' },
      },
    },
    upstreamConnectionOptions: {
      tcpKeepalive: { keepaliveProbes: 3, keepaliveTime: 300, keepaliveInterval: 30 },
    },
    transportSocket: {
      name: 'envoy.transport_sockets.raw_buffer',
      typedConfig: { '@type': `${TS}envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer` },
    },
    dnsLookupFamily: 'V4_ONLY',
  };
}

function redisEnvoyFilter(): any {
  const name = 'outbound|6379||redis.demo.svc.cluster.local';
  return {
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: {
      name: 'breeze-outbound-redis.demo.svc.cluster.local-6379',
      namespace: 'istio-system',
      labels: { 'app.kubernetes.io/managed-by': 'breeze', 'breeze.io/protocol': 'redis' },
      annotations: { 'breeze.io/content-hash': '0123456789abcdef' },
    },
    spec: {
      configPatches: [
        {
          applyTo: 'NETWORK_FILTER',
          match: {
            context: 'SIDECAR_OUTBOUND',
            listener: {
              name: '240.240.0.5_6379',
              filterChain: { filter: { name: 'envoy.filters.network.tcp_proxy' } },
            },
          },
          patch: { operation: 'REPLACE', value: redisFilter() },
        },
        {
          applyTo: 'CLUSTER',
          match: { context: 'SIDECAR_OUTBOUND', cluster: { name } },
          patch: { operation: 'REMOVE' },
        },
        {
          applyTo: 'CLUSTER',
          match: { context: 'SIDECAR_OUTBOUND' },
          patch: { operation: 'ADD', value: redisCluster() },
        },
      ],
    },
  };
}

t.test('the schema loads once, lazily, and fast enough', async (t) => {
  const root = schemaRoot();
  t.equal(schemaRoot(), root, 'cached');
  const ms = schemaLoadMillis();
  t.ok(ms !== undefined && ms < 5000, `first load took ${ms?.toFixed(0)} ms`);
  t.comment(`schema load: ${ms?.toFixed(0)} ms, ${root.files.length} files`);
  for (const type of [
    'envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy',
    'envoy.extensions.filters.network.dubbo_proxy.router.v3.Router',
    'envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy',
    'envoy.extensions.filters.network.thrift_proxy.router.v3.Router',
    'envoy.extensions.filters.network.redis_proxy.v3.RedisProxy',
    'envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions',
    'envoy.extensions.filters.network.zookeeper_proxy.v3.ZooKeeperProxy',
    'envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker',
    'envoy.extensions.clusters.redis.v3.RedisClusterConfig',
    'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
    'xds.type.v3.TypedStruct',
    'udpa.type.v1.TypedStruct',
    FILTER,
    CLUSTER,
  ]) {
    t.ok(root.lookupType(type), type);
  }
});

t.test('valid configs of each filter pass', async (t) => {
  t.same(checkMessage(FILTER, dubboFilter()), [], 'dubbo');
  t.same(checkMessage(FILTER, thriftFilter()), [], 'thrift');
  t.same(checkMessage(FILTER, redisFilter()), [], 'redis');
  t.same(checkMessage(FILTER, zookeeperFilter()), [], 'zookeeper');
  t.same(checkMessage(FILTER, kafkaFilter()), [], 'kafka in an xds TypedStruct');
  t.same(checkMessage(CLUSTER, redisCluster()), [], 'redis cluster');
  t.same(checkEnvoyFilter(redisEnvoyFilter()), [], 'whole EnvoyFilter');
});

t.test('snake_case names, the udpa TypedStruct and protojson scalar forms are accepted', async (t) => {
  t.same(
    checkMessage(FILTER, {
      name: 'envoy.filters.network.kafka_broker',
      typed_config: {
        '@type': `${TS}udpa.type.v1.TypedStruct`,
        type_url: `${NET}.kafka_broker.v3.KafkaBroker`,
        value: { stat_prefix: 'kafka', api_keys_allowed: [0, '3', 32767] },
      },
    }),
    [],
  );
  const cfg = redisFilter();
  cfg.typedConfig.stat_prefix = cfg.typedConfig.statPrefix;
  delete cfg.typedConfig.statPrefix;
  cfg.typedConfig.settings.max_buffer_size_before_flush = '2048'; // uint32 as a decimal string
  delete cfg.typedConfig.settings.maxBufferSizeBeforeFlush;
  cfg.typedConfig.settings.readPolicy = 3; // enum by number
  cfg.typedConfig.latencyInMicros = null; // null is the default
  t.same(checkMessage(FILTER, cfg), []);
  const dubbo = dubboFilter();
  dubbo.typedConfig.multipleRouteConfig.routeConfig[0].routes[0].match.method.paramsMatch['1'].rangeMatch = {
    start: '-9223372036854775808',
    end: '9223372036854775807',
  };
  t.same(checkMessage(FILTER, dubbo), [], 'int64 as decimal strings');
  t.same(
    checkMessage(FILTER, {
      name: 'x',
      typedConfig: { '@type': `${TS}google.protobuf.Duration`, value: '1s' },
    }),
    [],
  );
});

t.test('unknown fields', async (t) => {
  const cfg = dubboFilter();
  cfg.typedConfig.multipleRouteConfig.routeConfig[0].routes[1].route.clusterx = 'y';
  cfg.typedConfig.statPrefx = 'x';
  t.same(
    checkMessage(FILTER, cfg),
    [
      'typedConfig.statPrefx: unknown field (not in envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy)',
      'typedConfig.multipleRouteConfig.routeConfig[0].routes[1].route.clusterx: unknown field (not in envoy.extensions.filters.network.dubbo_proxy.v3.RouteAction)',
    ].reverse(),
  );
  const both = redisFilter();
  both.typedConfig.stat_prefix = 'again';
  t.same(checkMessage(FILTER, both), [
    'typedConfig.stat_prefix: field stat_prefix is set twice (also as statPrefix)',
  ]);
});

t.test('wrong JSON types', async (t) => {
  const cfg = dubboFilter();
  cfg.typedConfig.multipleRouteConfig.routeConfig[0].routes[1].match.method.name.exact = 42;
  t.same(checkMessage(FILTER, cfg), [
    'typedConfig.multipleRouteConfig.routeConfig[0].routes[1].match.method.name.exact: expected string, got number',
  ]);
  const redis = redisFilter();
  redis.typedConfig.latencyInMicros = 'true';
  redis.typedConfig.settings.maxBufferSizeBeforeFlush = -1;
  redis.typedConfig.settings.maxUpstreamUnknownConnections = 1.5;
  redis.typedConfig.prefixRoutes.catchAllRoute = 'outbound|6379||redis';
  redis.typedConfig.downstreamAuthPasswords[0] = { inlineBytes: 'not base64!' };
  t.same(checkMessage(FILTER, redis), [
    'typedConfig.settings.maxBufferSizeBeforeFlush: -1 is out of range for uint32',
    'typedConfig.settings.maxUpstreamUnknownConnections: expected integer (uint32), got 1.5',
    'typedConfig.latencyInMicros: expected boolean, got string',
    'typedConfig.prefixRoutes.catchAllRoute: expected object (envoy.extensions.filters.network.redis_proxy.v3.RedisProxy.PrefixRoutes.Route), got string',
    'typedConfig.downstreamAuthPasswords[0].inlineBytes: invalid base64 "not base64!"',
  ]);
  const range = dubboFilter();
  range.typedConfig.multipleRouteConfig.routeConfig[0].routes[0].match.method.paramsMatch[
    '1'
  ].rangeMatch.end = '12x';
  range.typedConfig.multipleRouteConfig.routeConfig[0].routes[0].match.method.paramsMatch.first = {
    exactMatch: 'a',
  };
  t.same(checkMessage(FILTER, range), [
    'typedConfig.multipleRouteConfig.routeConfig[0].routes[0].match.method.paramsMatch["1"].rangeMatch.end: expected integer (int64) as a number or decimal string, got "12x"',
    'typedConfig.multipleRouteConfig.routeConfig[0].routes[0].match.method.paramsMatch.first: invalid uint32 map key "first" (expected a decimal integer)',
  ]);
  t.same(checkMessage(CLUSTER, { ...redisCluster(), typedExtensionProtocolOptions: [] }), [
    'typedExtensionProtocolOptions: expected object (map<string, google.protobuf.Any>), got array',
  ]);
  t.same(checkMessage(FILTER, 'dubbo'), [
    '(root): expected object (envoy.config.listener.v3.Filter), got string',
  ]);
});

t.test('non-array for a repeated field; null elements', async (t) => {
  const cfg = thriftFilter();
  cfg.typedConfig.routeConfig.routes = cfg.typedConfig.routeConfig.routes[0];
  cfg.typedConfig.thriftFilters = [null];
  t.same(checkMessage(FILTER, cfg), [
    'typedConfig.routeConfig.routes: expected array (repeated Route), got object',
    'typedConfig.thriftFilters[0]: a list element cannot be null',
  ]);
});

t.test('unknown enum values', async (t) => {
  const cfg = dubboFilter();
  cfg.typedConfig.protocolType = 'Triple';
  const redis = redisFilter();
  redis.typedConfig.settings.readPolicy = 9;
  redis.typedConfig.faults[0].faultType = true;
  t.same(checkMessage(FILTER, cfg), [
    'typedConfig.protocolType: unknown enum value "Triple" of envoy.extensions.filters.network.dubbo_proxy.v3.ProtocolType (expected one of Dubbo)',
  ]);
  t.same(checkMessage(FILTER, redis), [
    'typedConfig.settings.readPolicy: 9 is not a value of enum envoy.extensions.filters.network.redis_proxy.v3.RedisProxy.ConnPoolSettings.ReadPolicy',
    'typedConfig.faults[0].faultType: expected enum envoy.extensions.filters.network.redis_proxy.v3.RedisProxy.RedisFault.RedisFaultType (a value name), got boolean',
  ]);
});

t.test('two members of one oneof', async (t) => {
  const cfg = dubboFilter();
  cfg.typedConfig.multipleRouteConfig.routeConfig[0].routes[1].route.weightedClusters = {
    clusters: [{ name: 'a', weight: 1 }],
  };
  t.same(checkMessage(FILTER, cfg), [
    'typedConfig.multipleRouteConfig.routeConfig[0].routes[1].route.weightedClusters: oneof cluster_specifier is already set by cluster (set at most one of cluster, weightedClusters)',
  ]);
});

t.test('bad Durations and other well-known types', async (t) => {
  const cfg = redisFilter();
  cfg.typedConfig.settings.opTimeout = '500ms';
  cfg.typedConfig.settings.bufferFlushTimeout = 0.003;
  t.same(checkMessage(FILTER, cfg), [
    'typedConfig.settings.opTimeout: invalid Duration "500ms" (expected e.g. "5s" or "0.25s")',
    'typedConfig.settings.bufferFlushTimeout: expected Duration string such as "1.5s", got number',
  ]);
  t.same(checkMessage('google.protobuf.Duration', '-1.000000001s'), []);
  t.same(checkMessage('google.protobuf.Duration', '1.0000000001s'), [
    '(root): invalid Duration "1.0000000001s" (expected e.g. "5s" or "0.25s")',
  ]);
  t.same(checkMessage('google.protobuf.Timestamp', '2024-02-29T23:59:59.5+01:00'), []);
  t.same(checkMessage('google.protobuf.Timestamp', '2023-02-29T00:00:00Z').length, 1);
  t.same(checkMessage('google.protobuf.Struct', { any: ['json', 1, null] }), []);
  t.same(checkMessage('google.protobuf.Struct', []).length, 1);
  t.same(checkMessage('google.protobuf.Value', null), []);
  t.same(checkMessage('google.protobuf.ListValue', {}).length, 1);
  t.same(checkMessage('google.protobuf.FieldMask', 'statPrefix,settings.opTimeout'), []);
  t.same(checkMessage('google.protobuf.UInt64Value', '18446744073709551615'), []);
  t.same(checkMessage('google.protobuf.UInt64Value', '18446744073709551616'), [
    '(root): 18446744073709551616 is out of range for uint64',
  ]);
  t.same(checkMessage('google.protobuf.DoubleValue', 'Infinity'), []);
  t.same(checkMessage('google.protobuf.BoolValue', 1), ['(root): expected boolean, got number']);
  t.same(checkMessage('google.protobuf.Empty', { x: 1 }), [
    'x: unknown field (not in google.protobuf.Empty)',
  ]);
  t.same(
    checkMessage(FILTER, {
      name: 'x',
      typedConfig: { '@type': `${TS}google.protobuf.Duration`, seconds: 1 },
    }),
    [
      'typedConfig.seconds: unknown field (an Any of google.protobuf.Duration has only "value")',
      'typedConfig.value: missing (the google.protobuf.Duration value)',
    ],
  );
});

t.test('unknown @type', async (t) => {
  const cfg = dubboFilter();
  cfg.typedConfig.dubboFilters[0].config['@type'] = `${NET}.dubbo_proxy.router.v3.Routr`;
  t.same(checkMessage(FILTER, cfg), [
    `typedConfig.dubboFilters[0].config.@type: unknown type URL "${NET}.dubbo_proxy.router.v3.Routr" (no such message in Envoy's schema)`,
  ]);
  t.same(checkMessage(FILTER, { name: 'x', typedConfig: { '@type': 'DubboProxy' } }), [
    'typedConfig.@type: invalid type URL "DubboProxy" (expected type.googleapis.com/<message full name>)',
  ]);
  t.same(checkMessage(FILTER, { name: 'x', typedConfig: { statPrefix: 'x' } }), [
    'typedConfig.@type: missing: an Any needs "@type"',
  ]);
  const kafka = kafkaFilter();
  kafka.typedConfig.typeUrl = `${TS}envoy.extensions.filters.network.kafka.v3.KafkaBroker`;
  t.same(checkMessage(FILTER, kafka), [
    `typedConfig.typeUrl: unknown type URL "${TS}envoy.extensions.filters.network.kafka.v3.KafkaBroker" (no such message in Envoy's schema)`,
  ]);
  delete kafka.typedConfig.typeUrl;
  t.same(checkMessage(FILTER, kafka), [
    'typedConfig.typeUrl: missing: a TypedStruct needs typeUrl (the type of its value)',
  ]);
});

t.test('bad fields inside a TypedStruct value', async (t) => {
  const cfg = kafkaFilter();
  cfg.typedConfig.value.statPrefx = 'kafka';
  cfg.typedConfig.value.idBasedBrokerAddressRewriteSpec.rules[1].port = '9092x';
  cfg.typedConfig.value.apiKeysDenied = 17;
  t.same(checkMessage(FILTER, cfg), [
    'typedConfig.value.idBasedBrokerAddressRewriteSpec.rules[1].port: expected integer (uint32) as a number or decimal string, got "9092x"',
    'typedConfig.value.apiKeysDenied: expected array (repeated uint32), got number',
    'typedConfig.value.statPrefx: unknown field (not in envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker)',
  ]);
  const notStruct = kafkaFilter();
  notStruct.typedConfig.value = 'statPrefix: kafka';
  t.same(checkMessage(FILTER, notStruct), [
    'typedConfig.value: expected object (google.protobuf.Struct), got string',
  ]);
});

t.test('deprecated fields and enum values are problems unless disabled', async (t) => {
  const redis = redisFilter();
  redis.typedConfig.downstreamAuthPassword = { inlineString: 'not-a-real-secret' };
  const expected = [
    'typedConfig.downstreamAuthPassword: deprecated field envoy.extensions.filters.network.redis_proxy.v3.RedisProxy.downstream_auth_password (Breeze must not emit it)',
  ];
  t.same(checkMessage(FILTER, redis), expected);
  t.same(checkMessage(FILTER, redis, { deprecated: false }), []);

  const thrift = thriftFilter();
  thrift.typedConfig.protocol = 'TWITTER';
  t.same(checkMessage(FILTER, thrift), [
    'typedConfig.protocol: deprecated enum value TWITTER of envoy.extensions.filters.network.thrift_proxy.v3.ProtocolType (Breeze must not emit it)',
  ]);
  t.same(checkMessage(FILTER, thrift, { deprecated: false }), []);

  // Aeraki's form: DubboProxy.route_config (deprecated since Envoy 1.23) and HeaderMatcher.exact_match.
  const dubbo = dubboFilter();
  dubbo.typedConfig.routeConfig = dubbo.typedConfig.multipleRouteConfig.routeConfig;
  delete dubbo.typedConfig.multipleRouteConfig;
  dubbo.typedConfig.routeConfig[0].routes[0].match.headers[0] = { name: 'x-user', exactMatch: 'vip' };
  t.same(checkMessage(FILTER, dubbo), [
    'typedConfig.routeConfig: deprecated field envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy.route_config (Breeze must not emit it)',
    'typedConfig.routeConfig[0].routes[0].match.headers[0].exactMatch: deprecated field envoy.config.route.v3.HeaderMatcher.exact_match (Breeze must not emit it)',
  ]);
  dubbo.typedConfig.routeConfig[0].routes[1].match.method.name.exact = 7;
  t.same(checkMessage(FILTER, dubbo, { deprecated: false }), [
    'typedConfig.routeConfig[0].routes[1].match.method.name.exact: expected string, got number',
  ]);
});

t.test('validate rules (PGV subset)', async (t) => {
  const redis = redisFilter();
  delete redis.typedConfig.settings;
  redis.typedConfig.statPrefix = '';
  redis.typedConfig.faults[1].faultEnabled = {};
  t.same(checkMessage(FILTER, redis), [
    'typedConfig.faults[1].faultEnabled.defaultValue: missing: required field of envoy.config.core.v3.RuntimeFractionalPercent (validate.rules)',
    'typedConfig.statPrefix: shorter than 1 character(s) (validate.rules string.min_len)',
    'typedConfig.settings: missing: required field of envoy.extensions.filters.network.redis_proxy.v3.RedisProxy (validate.rules)',
  ]);
  t.same(checkMessage(FILTER, redis, { validateRules: false }), []);

  const thrift = thriftFilter();
  thrift.typedConfig.routeConfig.routes[0].route.weightedClusters.clusters[1].weight = 0;
  delete thrift.typedConfig.routeConfig.routes[1].route.cluster;
  delete thrift.typedConfig.statPrefix;
  t.same(checkMessage(FILTER, thrift), [
    'typedConfig.routeConfig.routes[0].route.weightedClusters.clusters[1].weight: must be >= 1, got 0 (validate.rules uint32.gte)',
    'typedConfig.routeConfig.routes[1].route: missing: one of cluster, weightedClusters, clusterHeader is required (oneof cluster_specifier of envoy.extensions.filters.network.thrift_proxy.v3.RouteAction)',
    'typedConfig.statPrefix: missing or empty: shorter than 1 character(s) (validate.rules string.min_len)',
  ]);

  const kafka = kafkaFilter();
  kafka.typedConfig.value.apiKeysDenied = [17, 40000];
  kafka.typedConfig.value.idBasedBrokerAddressRewriteSpec.rules[0].port = 70000;
  t.same(checkMessage(FILTER, kafka), [
    'typedConfig.value.idBasedBrokerAddressRewriteSpec.rules[0].port: must be <= 65535, got 70000 (validate.rules uint32.lte)',
    'typedConfig.value.apiKeysDenied[1]: must be <= 32767, got 40000 (validate.rules repeated.items.uint32.lte)',
  ]);

  const dubbo = dubboFilter();
  dubbo.typedConfig.multipleRouteConfig.routeConfig[0].routes[0].route.weightedClusters.clusters = [];
  t.same(checkMessage(FILTER, dubbo), [
    'typedConfig.multipleRouteConfig.routeConfig[0].routes[0].route.weightedClusters.clusters: needs at least 1 item(s) (validate.rules repeated.min_items)',
  ]);
});

t.test('EnvoyFilter envelope and patches', async (t) => {
  const ef = redisEnvoyFilter();
  ef.apiVersion = 'networking.istio.io/v1';
  delete ef.metadata.name;
  ef.spec.configPatches[0].match.listener.filterchain = {};
  ef.spec.configPatches[1].patch.value = { name: 'x' };
  ef.spec.configPatches[2].applyTo = 'CLUSTERS';
  t.same(checkEnvoyFilter(ef), [
    'apiVersion: expected "networking.istio.io/v1alpha3", got "networking.istio.io/v1"',
    'metadata.name: expected a non-empty string, got nothing',
    'spec.configPatches[0].match.listener.filterchain: unknown field',
    'spec.configPatches[1].patch.value: a REMOVE patch takes no value',
    'spec.configPatches[2].applyTo: expected one of LISTENER, FILTER_CHAIN, NETWORK_FILTER, HTTP_FILTER, ROUTE_CONFIGURATION, VIRTUAL_HOST, HTTP_ROUTE, CLUSTER, EXTENSION_CONFIG, BOOTSTRAP, LISTENER_FILTER, got "CLUSTERS"',
  ]);

  const typed = redisEnvoyFilter();
  typed.spec.configPatches[0].patch.value.typedConfig.prefixRoutes.routes[0].requestMirrorPolicy[0].runtimeFraction.defaultValue.denominator =
    'THOUSAND';
  typed.spec.configPatches[2].patch.value.upstreamConnectionOptions.tcpKeepalive.keepaliveTime = '300s';
  t.same(checkEnvoyFilter(typed), [
    'spec.configPatches[0].patch.value.typedConfig.prefixRoutes.routes[0].requestMirrorPolicy[0].runtimeFraction.defaultValue.denominator: unknown enum value "THOUSAND" of envoy.type.v3.FractionalPercent.DenominatorType (expected one of HUNDRED, TEN_THOUSAND, MILLION)',
    'spec.configPatches[2].patch.value.upstreamConnectionOptions.tcpKeepalive.keepaliveTime: expected integer (uint32) as a number or decimal string, got "300s"',
  ]);

  const rules = redisEnvoyFilter();
  rules.spec.configPatches[0].match.listener.filterChain.filter.name = '';
  rules.spec.configPatches[1].patch.operation = 'REPLACE';
  rules.spec.configPatches[2].match = { cluster: { name: 'x' }, listener: { name: 'y' } };
  delete rules.spec.configPatches[2].patch.value;
  t.same(checkEnvoyFilter(rules), [
    'spec.configPatches[0].match.listener.filterChain.filter.name: a filter match needs a name',
    'spec.configPatches[1].patch.value: missing: REPLACE needs a value',
    'spec.configPatches[1].patch.operation: REPLACE is only valid for NETWORK_FILTER and HTTP_FILTER, not CLUSTER',
    'spec.configPatches[2].match: only one of listener, cluster may be set',
    'spec.configPatches[2].patch.value: missing: ADD needs a value',
  ]);

  t.same(
    checkEnvoyFilter({
      apiVersion: 'networking.istio.io/v1alpha3',
      kind: 'EnvoyFilter',
      metadata: { name: 'x' },
      spec: { configPatches: {} },
    }),
    ['spec.configPatches: expected array, got object'],
  );

  const classes = redisEnvoyFilter();
  classes.spec.workloadSelector = { labels: { app: 'redis' } };
  classes.spec.targetRefs = [{ kind: 'Service', name: 'redis' }];
  classes.spec.configPatches[1].match = { listener: { portNumber: 70000 } };
  classes.spec.configPatches[2].patch.operation = 'INSERT_FIRST';
  classes.spec.configPatches[0].patch.value.typedConfig = {
    '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
    typeUrl: 'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy',
    value: { statPrefix: 'redis', settings: { opTimeout: 5 } },
  };
  t.same(checkEnvoyFilter(classes), [
    'spec.targetRefs: workloadSelector and targetRefs cannot both be set',
    'spec.configPatches[0].patch.value.typedConfig.value.settings.opTimeout: expected Duration string such as "1.5s", got number',
    'spec.configPatches[1].match.listener.portNumber: 70000 is out of range 0..65535',
    'spec.configPatches[1].match.listener: applyTo CLUSTER needs a cluster match, not listener',
    'spec.configPatches[2].patch.operation: INSERT_FIRST is not supported for CLUSTER',
  ]);

  // A MERGE value may be partial: required fields are not demanded, types still are.
  const merge = redisEnvoyFilter();
  merge.spec.configPatches = [
    {
      applyTo: 'CLUSTER',
      match: { cluster: { service: 'redis.demo.svc.cluster.local', portNumber: 6379 } },
      patch: {
        operation: 'MERGE',
        value: { connectTimeout: '1s', circuitBreakers: { thresholds: [{ maxRetries: 'x' }] } },
      },
    },
  ];
  t.same(checkEnvoyFilter(merge), [
    'spec.configPatches[0].patch.value.circuitBreakers.thresholds[0].maxRetries: expected integer (uint32) as a number or decimal string, got "x"',
  ]);
});

t.test("Breeze's own EnvoyFilter builders produce envelopes that pass", async (t) => {
  const zk = zookeeperFilter();
  const kafka = kafkaFilter();
  const ef = buildEnvoyFilter({
    name: 'breeze-outbound-kafka',
    service: 'Service/kafka/kafka',
    namespace: 'istio-system',
    protocol: 'kafka',
    workloadSelector: { app: 'kafka' },
    patches: [
      outboundListenerPatch('240.240.0.7', 9092, {
        operation: 'INSERT_BEFORE',
        filter: {
          name: kafka.name,
          typedConfig: typedStruct(kafka.typedConfig.typeUrl, kafka.typedConfig.value),
        },
      }),
      inboundListenerPatch(2181, { operation: 'INSERT_BEFORE', filter: zk }),
    ],
    sources: [],
  });
  t.same(checkEnvoyFilter(ef), []);
});

t.test('unknown message types', async (t) => {
  t.same(checkMessage('envoy.Nope', {}), ['(root): unknown message type envoy.Nope']);
});
