// The support range at both proto ends: every golden EnvoyFilter and every generator output over
// the fixtures must pass the strict check against the oldest snapshot (Envoy 1.28 floor, the
// envoy-api-oldest alias of @grpc/grpc-js-xds@1.10.1) and the newest one (@grpc/grpc-js-xds),
// and what only one end has, or deprecates, is reported naming that end.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { ConfigStore } from '../../src/cache/store.js';
import {
  checkEnvoyFilterAtEnds,
  checkMessage,
  checkMessageIn,
  SCHEMA_ENDS,
  schemaEndLabel,
  schemaIncludeDirs,
  schemaLoadMillis,
  schemaRoot,
} from '../../src/envoy/schema.js';
import { generateAll } from '../../src/protocols/generate.js';
import { parseManifestText } from '../../src/sources/file.js';

const FILTER = 'envoy.config.listener.v3.Filter';
const CLUSTER = 'envoy.config.cluster.v3.Cluster';
const NET = 'type.googleapis.com/envoy.extensions.filters.network';
const ZK = 'envoy.extensions.filters.network.zookeeper_proxy.v3.ZooKeeperProxy';
const repo = new URL('../../', import.meta.url).pathname;
const goldenDir = join(repo, 'test/golden');

const OLDEST =
  'oldest end (Envoy 1.28 floor; envoy-api-oldest = @grpc/grpc-js-xds@1.10.1, data-plane-api of 2023-05..10, older than Envoy 1.28.0)';
const NEEDS_NEWER = `is absent from the ${OLDEST}: it needs a newer Envoy API than that snapshot, and the support range starts at Envoy 1.28`;

function zookeeper(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'envoy.filters.network.zookeeper_proxy',
    typedConfig: { '@type': `${NET}.zookeeper_proxy.v3.ZooKeeperProxy`, statPrefix: 'zk', ...extra },
  };
}

/** An EnvoyFilter with one patch (NETWORK_FILTER INSERT_BEFORE tcp_proxy, or a CLUSTER ADD). */
function envoyFilterOf(value: Record<string, unknown>, applyTo = 'NETWORK_FILTER'): Record<string, unknown> {
  const listener = {
    name: '10.0.0.1_2181',
    filterChain: { filter: { name: 'envoy.filters.network.tcp_proxy' } },
  };
  return {
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: { name: 'range-test', namespace: 'demo' },
    spec: {
      configPatches: [
        applyTo === 'CLUSTER'
          ? { applyTo, match: { context: 'SIDECAR_OUTBOUND' }, patch: { operation: 'ADD', value } }
          : { applyTo, match: { listener }, patch: { operation: 'INSERT_BEFORE', value } },
      ],
    },
  };
}

function nameOf(ef: Record<string, unknown>): string {
  const metadata = ef.metadata as { name?: unknown } | undefined;
  return String(metadata?.name);
}

t.test('each end loads once per process, from the pinned packages', async (t) => {
  const require = createRequire(import.meta.url);
  const manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
  t.equal(
    manifest.devDependencies['envoy-api-oldest'],
    'npm:@grpc/grpc-js-xds@1.10.1',
    'the oldest end is pinned exactly',
  );
  t.equal(require('envoy-api-oldest/package.json').version, '1.10.1', 'installed as pinned');
  t.equal(schemaEndLabel('oldest'), OLDEST);
  t.match(
    schemaEndLabel('newest'),
    /^newest end \(newest Envoy API on npm; @grpc\/grpc-js-xds@\d+\.\d+\.\d+, /,
  );

  const oldest = schemaRoot('oldest');
  const newest = schemaRoot('newest');
  t.not(oldest, newest, 'two Roots');
  t.equal(schemaRoot('oldest'), oldest, 'oldest cached');
  t.equal(schemaRoot('newest'), newest, 'newest cached');
  t.equal(schemaRoot(), newest, 'the default end is the newest');
  for (const end of SCHEMA_ENDS) {
    t.comment(`${end}: ${schemaLoadMillis(end)?.toFixed(0)} ms, ${schemaRoot(end).files.length} files`);
  }
  // The filter protos Breeze emits, and the shared types they use, are in both snapshots.
  const types = [
    'envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy',
    'envoy.extensions.filters.network.dubbo_proxy.router.v3.Router',
    'envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy',
    'envoy.extensions.filters.network.thrift_proxy.router.v3.Router',
    'envoy.extensions.filters.network.redis_proxy.v3.RedisProxy',
    'envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions',
    ZK,
    'envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker',
    'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
    'envoy.extensions.clusters.redis.v3.RedisClusterConfig',
    'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
    'envoy.config.route.v3.WeightedCluster',
    'envoy.config.route.v3.HeaderMatcher',
    'envoy.type.matcher.v3.StringMatcher',
    'envoy.config.core.v3.RuntimeFractionalPercent',
    'xds.type.v3.TypedStruct',
    'udpa.type.v1.TypedStruct',
    FILTER,
    CLUSTER,
  ];
  for (const end of SCHEMA_ENDS) {
    for (const type of types) t.ok(schemaRoot(end).lookupType(type), `${end}: ${type}`);
  }
  // Not loaded (Breeze emits no RBAC filter), but shipped at both ends for when it does.
  for (const end of SCHEMA_ENDS) {
    for (const file of [
      'envoy/extensions/filters/network/rbac/v3/rbac.proto',
      'envoy/config/rbac/v3/rbac.proto',
    ]) {
      t.ok(
        schemaIncludeDirs(end).some((dir) => existsSync(join(dir, file))),
        `${end} ships ${file}`,
      );
    }
  }
  // They are different snapshots: ZooKeeperProxy field 9 came after the oldest one.
  const field = 'enable_per_opcode_decoder_error_metrics';
  t.equal(oldest.lookupType(ZK).fields[field], undefined, `oldest lacks ${field}`);
  t.equal(newest.lookupType(ZK).fields[field]?.id, 9, `newest has ${field} = 9`);
});

t.test('every golden EnvoyFilter passes at both ends', async (t) => {
  let count = 0;
  for (const name of readdirSync(goldenDir).sort()) {
    let text: string;
    try {
      text = readFileSync(join(goldenDir, name, 'expected.yaml'), 'utf8');
    } catch {
      continue; // a case without expected output
    }
    for (const doc of parseAllDocuments(text)) {
      if (!('toJS' in doc)) continue;
      const ef = doc.toJS() as Record<string, unknown> | null;
      if (ef === null) continue;
      count += 1;
      t.same(checkEnvoyFilterAtEnds(ef), [], `${name}: ${nameOf(ef)}`);
    }
  }
  t.ok(count >= 20, `${count} golden EnvoyFilters checked`);
});

t.test('every generator output over the fixtures passes at both ends', async (t) => {
  const inputs: [string, string][] = [];
  for (const name of readdirSync(goldenDir).sort()) {
    try {
      inputs.push([`golden/${name}`, readFileSync(join(goldenDir, name, 'input.yaml'), 'utf8')]);
    } catch {
      // a case without input
    }
  }
  for (const name of readdirSync(join(repo, 'examples')).sort()) {
    if (name.endsWith('.yaml')) {
      inputs.push([`examples/${name}`, readFileSync(join(repo, 'examples', name), 'utf8')]);
    }
  }
  let count = 0;
  for (const [name, text] of inputs) {
    const parsed = parseManifestText(text);
    const store = new ConfigStore();
    for (const o of parsed.objects) store.upsert(o, 'file');
    for (const namespaceScope of [false, true]) {
      const result = generateAll(store, {
        rootNamespace: 'istio-system',
        namespaceScope,
        domain: 'cluster.local',
      });
      for (const ef of result.envoyFilters) {
        count += 1;
        const problems = checkEnvoyFilterAtEnds(ef);
        if (problems.length > 0) t.same(problems, [], `${name}: ${nameOf(ef)}`);
      }
    }
  }
  t.ok(count >= 40, `${count} generated EnvoyFilters checked at both ends`);
});

t.test('what only a newer Envoy has fails at the oldest end, naming field and snapshot', async (t) => {
  const extra = { enablePerOpcodeDecoderErrorMetrics: true };
  t.same(checkMessage(FILTER, zookeeper(extra), { end: 'newest' }), []);
  t.same(checkMessage(FILTER, zookeeper(extra), { end: 'oldest' }), [
    `typedConfig.enablePerOpcodeDecoderErrorMetrics: field ${ZK}.enable_per_opcode_decoder_error_metrics ${NEEDS_NEWER}`,
  ]);
  t.same(checkEnvoyFilterAtEnds(envoyFilterOf(zookeeper(extra))), [
    `${OLDEST}: spec.configPatches[0].patch.value.typedConfig.enablePerOpcodeDecoderErrorMetrics: field ${ZK}.enable_per_opcode_decoder_error_metrics ${NEEDS_NEWER}`,
  ]);

  const addWatch = {
    enableLatencyThresholdMetrics: true,
    latencyThresholdOverrides: [{ opcode: 'AddWatch', threshold: '1s' }],
  };
  t.same(checkMessage(FILTER, zookeeper(addWatch), { end: 'newest' }), []);
  t.same(checkMessage(FILTER, zookeeper(addWatch), { end: 'oldest' }), [
    `typedConfig.latencyThresholdOverrides[0].opcode: enum value AddWatch of envoy.extensions.filters.network.zookeeper_proxy.v3.LatencyThresholdOverride.Opcode ${NEEDS_NEWER}`,
  ]);

  // A message the oldest snapshot does not have at all (redis read_command_policy, 2024).
  const policy =
    'envoy.extensions.filters.network.redis_proxy.v3.RedisProxy.PrefixRoutes.Route.ReadCommandPolicy';
  const any = { name: 'x', typedConfig: { '@type': `type.googleapis.com/${policy}`, cluster: 'replicas' } };
  t.same(checkMessage(FILTER, any, { end: 'newest' }), []);
  t.same(checkMessage(FILTER, any, { end: 'oldest' }), [
    `typedConfig.@type: message ${policy} ${NEEDS_NEWER}`,
  ]);

  // The local Kafka proto follows upstream HEAD; its fields from after Envoy 1.28 are dropped at
  // the oldest end.
  const kafkaType = 'envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker';
  const kafka = (fields: Record<string, unknown>) => ({
    name: 'envoy.filters.network.kafka_broker',
    typedConfig: {
      '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
      typeUrl: `type.googleapis.com/${kafkaType}`,
      value: { statPrefix: 'kafka', ...fields },
    },
  });
  const newer = {
    forceResponseRewrite: true,
    idBasedBrokerAddressRewriteSpec: { rules: [{ id: 1, host: 'broker-1', port: 9092 }] },
    apiKeysAllowed: [0, 1],
    apiKeysDenied: [2],
  };
  t.same(checkMessage(FILTER, kafka({}), { end: 'oldest' }), []);
  t.same(checkMessage(FILTER, kafka(newer), { end: 'newest' }), []);
  t.same(
    checkMessage(FILTER, kafka(newer), { end: 'oldest' }),
    [
      ['forceResponseRewrite', 'force_response_rewrite'],
      ['idBasedBrokerAddressRewriteSpec', 'id_based_broker_address_rewrite_spec'],
      ['apiKeysAllowed', 'api_keys_allowed'],
      ['apiKeysDenied', 'api_keys_denied'],
    ].map(([key, field]) => `typedConfig.value.${key}: field ${kafkaType}.${field} ${NEEDS_NEWER}`),
  );

  // Unknown at both ends stays a plain unknown field, reported once for both.
  t.same(checkEnvoyFilterAtEnds(envoyFilterOf(zookeeper({ statPrefx: 'typo' }))), [
    `both ends: spec.configPatches[0].patch.value.typedConfig.statPrefx: unknown field (not in ${ZK})`,
  ]);
});

t.test('deprecated in either snapshot is an error with the field path and the end', async (t) => {
  const redis = {
    name: 'envoy.filters.network.redis_proxy',
    typedConfig: {
      '@type': `${NET}.redis_proxy.v3.RedisProxy`,
      statPrefix: 'redis',
      settings: { opTimeout: '1s' },
      prefixRoutes: { catchAllRoute: { cluster: 'outbound|6379||redis' } },
      downstreamAuthPassword: { inlineString: 'not-a-real-secret' },
    },
  };
  t.same(checkEnvoyFilterAtEnds(envoyFilterOf(redis)), [
    'both ends: spec.configPatches[0].patch.value.typedConfig.downstreamAuthPassword: deprecated field envoy.extensions.filters.network.redis_proxy.v3.RedisProxy.downstream_auth_password (Breeze must not emit it)',
  ]);

  // ApiVersion AUTO is deprecated in the oldest snapshot only (un-deprecated later).
  const cluster = {
    name: 'outbound|6379||redis',
    type: 'EDS',
    edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'AUTO' } },
  };
  const auto =
    'edsClusterConfig.edsConfig.resourceApiVersion: deprecated enum value AUTO of envoy.config.core.v3.ApiVersion (Breeze must not emit it)';
  t.same(checkMessage(CLUSTER, cluster, { end: 'newest' }), []);
  t.same(checkMessage(CLUSTER, cluster, { end: 'oldest' }), [auto]);
  t.same(checkEnvoyFilterAtEnds(envoyFilterOf(cluster, 'CLUSTER')), [
    `${OLDEST}: spec.configPatches[0].patch.value.${auto}`,
  ]);
});

t.test('the deprecation annotations count without deprecated = true', async (t) => {
  const root = protobuf.parse(
    `syntax = "proto3";
     package demo;
     message Config {
       string plain = 1;
       string old = 2 [(envoy.annotations.deprecated_at_minor_version) = "3.0"];
       string fatal = 3 [(envoy.annotations.disallowed_by_default) = true];
       Mode mode = 4;
     }
     enum Mode {
       A = 0;
       B = 1 [(envoy.annotations.deprecated_at_minor_version_enum) = "3.0"];
       C = 2 [(envoy.annotations.disallowed_by_default_enum) = true];
     }`,
    { keepCase: true },
  ).root;
  root.resolveAll();
  t.same(checkMessageIn(root, 'demo.Config', { plain: 'x', mode: 'A' }), []);
  t.same(checkMessageIn(root, 'demo.Config', { old: 'x', fatal: 'y', mode: 'B' }), [
    'old: deprecated field demo.Config.old (Breeze must not emit it)',
    'fatal: deprecated field demo.Config.fatal (Breeze must not emit it)',
    'mode: deprecated enum value B of demo.Mode (Breeze must not emit it)',
  ]);
  t.same(checkMessageIn(root, 'demo.Config', { mode: 'C' }), [
    'mode: deprecated enum value C of demo.Mode (Breeze must not emit it)',
  ]);
  t.same(checkMessageIn(root, 'demo.Config', { old: 'x', mode: 'C' }, { deprecated: false }), []);
});
