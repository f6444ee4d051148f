// Strict proto3-JSON checks of generated Envoy config against Envoy's own .proto files.
//
// istiod is lenient with EnvoyFilter patch values (unknown fields are dropped silently, and a
// TypedStruct's value is not looked at), so a typo in a generator would only show as an Envoy
// NACK or as config that quietly does nothing. These checks are Breeze's guard: every generated
// EnvoyFilter is walked against protobufjs reflection of the Envoy protos that
// @grpc/grpc-js-xds ships (plus the local contrib Kafka copy in protos/).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { Enum, Field, OneOf, Root, Type } from 'protobufjs';
import { BreezeError } from '../errors.js';
import { isRecord, type JsonRecord } from '../model/json.js';

export interface SchemaCheckOptions {
  /**
   * Report fields, enum values and messages marked `deprecated = true` (default true): Breeze
   * must not emit them. Tests of other rules may turn this off.
   */
  readonly deprecated?: boolean;
  /**
   * Check the cheap subset of protoc-gen-validate rules Envoy enforces (default true):
   * message/duration/any required, oneof required, string min/max length, repeated min/max
   * items and integer bounds (also on wrappers and repeated items).
   */
  readonly validateRules?: boolean;
  /** Which end of the support range to check against (default `newest`). */
  readonly end?: SchemaEnd;
}

/** The entry .proto files; their imports are loaded with them (about 90 files). */
export const SCHEMA_ENTRY_FILES: readonly string[] = [
  'envoy/extensions/filters/network/dubbo_proxy/v3/dubbo_proxy.proto',
  'envoy/extensions/filters/network/dubbo_proxy/router/v3/router.proto',
  'envoy/extensions/filters/network/thrift_proxy/v3/thrift_proxy.proto',
  'envoy/extensions/filters/network/thrift_proxy/router/v3/router.proto',
  'envoy/extensions/filters/network/redis_proxy/v3/redis_proxy.proto',
  'envoy/extensions/filters/network/zookeeper_proxy/v3/zookeeper_proxy.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  // Contrib (not in grpc-js-xds): Breeze's own copy under protos/.
  'envoy/extensions/filters/network/kafka_broker/v3/kafka_broker.proto',
  'envoy/config/listener/v3/listener_components.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/extensions/clusters/redis/v3/redis_cluster.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'xds/type/v3/typed_struct.proto',
  'udpa/type/v1/typed_struct.proto',
  // protobufjs's bundled well-known types (no files on disk), so that every one resolves.
  'google/protobuf/any.proto',
  'google/protobuf/duration.proto',
  'google/protobuf/empty.proto',
  'google/protobuf/field_mask.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/timestamp.proto',
  'google/protobuf/wrappers.proto',
];

// ---------------------------------------------------------------------------------------------
// The two ends of the supported range

/**
 * Which proto snapshot a check runs against. Breeze supports Istio 1.20-1.31, that is Envoy
 * 1.28-1.39: `oldest` stands for the floor (an Envoy API no newer than 1.28's), `newest` for the
 * newest Envoy API an npm package ships. Emitted config must pass both.
 */
export type SchemaEnd = 'oldest' | 'newest';

export const SCHEMA_ENDS: readonly SchemaEnd[] = ['oldest', 'newest'];

export interface SchemaSnapshot {
  readonly end: SchemaEnd;
  /** The folder under node_modules whose `deps/` hold the Envoy, xds, googleapis and PGV protos. */
  readonly packageName: string;
  /** What the end stands for in the support range. */
  readonly stands: string;
}

export const SCHEMA_SNAPSHOTS: Readonly<Record<SchemaEnd, SchemaSnapshot>> = {
  // An npm alias (devDependency) of @grpc/grpc-js-xds@1.10.1: package.json pins it exactly.
  oldest: { end: 'oldest', packageName: 'envoy-api-oldest', stands: 'Envoy 1.28 floor' },
  // The runtime dependency (also used by the istiod source); the newest release on npm.
  newest: { end: 'newest', packageName: '@grpc/grpc-js-xds', stands: 'newest Envoy API on npm' },
};

/**
 * The data-plane-api snapshot each @grpc/grpc-js-xds release vendors in deps/envoy-api (the
 * package records no submodule commit; dated by the fields it has and lacks, protos/README.md).
 */
const KNOWN_ENVOY_API: ReadonlyMap<string, string> = new Map([
  ['1.10.1', 'data-plane-api of 2023-05..10, older than Envoy 1.28.0'],
  ['1.13.0', 'data-plane-api of 2024-07, about Envoy 1.31'],
  ['1.14.0', 'data-plane-api of 2024-07, about Envoy 1.31'],
  ['1.14.1', 'data-plane-api of 2024-07, about Envoy 1.31'],
]);

/**
 * Fields of the local protos/ copies (which follow upstream HEAD and serve both ends) that came
 * after Envoy 1.28: the oldest end drops them, so that emitting one is reported as needing a newer
 * Envoy (protos/README.md has the dates).
 */
const LOCAL_FIELDS_AFTER_OLDEST: ReadonlyMap<string, readonly string[]> = new Map([
  [
    'envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker',
    ['force_response_rewrite', 'id_based_broker_address_rewrite_spec', 'api_keys_allowed', 'api_keys_denied'],
  ],
]);

function dropFieldsAfterOldest(root: Root): void {
  for (const [typeName, fields] of LOCAL_FIELDS_AFTER_OLDEST) {
    const type = root.lookupType(typeName);
    for (const name of fields) {
      const field = type.fields[name];
      if (field === undefined) continue;
      field.partOf?.remove(field);
      type.remove(field);
    }
    for (const oneof of type.oneofsArray) if (oneof.fieldsArray.length === 0) type.remove(oneof);
  }
}

interface EndState {
  root?: Root;
  error?: BreezeError;
  millis?: number;
  label?: string;
}
const ends: Record<SchemaEnd, EndState> = { oldest: {}, newest: {} };

function packageDir(end: SchemaEnd): string {
  const { packageName } = SCHEMA_SNAPSHOTS[end];
  const require = createRequire(import.meta.url);
  let manifest: string;
  try {
    manifest = require.resolve(`${packageName}/package.json`);
  } catch (err) {
    const hint =
      end === 'oldest'
        ? ' (a devDependency: install with dev dependencies, e.g. npm ci without --omit=dev)'
        : '';
    throw new BreezeError(
      'SCHEMA',
      `the ${end} end's protos are missing: package ${packageName} is not installed${hint}`,
      {
        cause: err,
      },
    );
  }
  return dirname(manifest);
}

/**
 * `oldest end (Envoy 1.28 floor; envoy-api-oldest = @grpc/grpc-js-xds@1.10.1, data-plane-api of
 * ...)`: names the end, the package and version it was loaded from, and the snapshot's date.
 */
export function schemaEndLabel(end: SchemaEnd): string {
  const state = ends[end];
  if (state.label !== undefined) return state.label;
  const snapshot = SCHEMA_SNAPSHOTS[end];
  let source: string;
  try {
    const require = createRequire(import.meta.url);
    const manifest = require(`${snapshot.packageName}/package.json`) as { name?: unknown; version?: unknown };
    const name = typeof manifest.name === 'string' ? manifest.name : snapshot.packageName;
    const version = typeof manifest.version === 'string' ? manifest.version : '?';
    const api = KNOWN_ENVOY_API.get(version) ?? 'snapshot date not recorded';
    source = `${name === snapshot.packageName ? '' : `${snapshot.packageName} = `}${name}@${version}, ${api}`;
  } catch {
    source = `${snapshot.packageName}, not installed`;
  }
  state.label = `${end} end (${snapshot.stands}; ${source})`;
  return state.label;
}

/** Include directories of one end, searched in order: the repo's protos/, the package's deps, protobufjs. */
export function schemaIncludeDirs(end: SchemaEnd = 'newest'): string[] {
  const require = createRequire(import.meta.url);
  const xds = packageDir(end);
  // protobufjs registers google/protobuf/{any,duration,...} itself but not descriptor.proto,
  // which the udpa/validate annotations import: it sits in protobufjs's package directory.
  const pbjs = dirname(require.resolve('protobufjs/package.json'));
  // src/envoy/schema.ts and dist/envoy/schema.js are both two levels below the repo root.
  const local = fileURLToPath(new URL('../../protos/', import.meta.url));
  const deps = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(xds, 'deps', d));
  return [local, ...deps, pbjs];
}

/** Loads proto files into a new Root, resolving imports through schemaIncludeDirs(end). */
export function loadProtoRoot(entryFiles: readonly string[], end: SchemaEnd = 'newest'): Root {
  const dirs = schemaIncludeDirs(end);
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    if (isAbsolute(target)) return target;
    for (const dir of dirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return protobuf.util.path.resolve(origin, target);
  };
  root.loadSync([...entryFiles], { keepCase: true });
  root.resolveAll();
  return root;
}

/**
 * The protobufjs Root with one end's Envoy schema, loaded once per process on first use
 * (keepCase: field names are the protos' snake_case names). Throws BreezeError('SCHEMA') when
 * the protos cannot be loaded (and again on every later call, without retrying).
 */
export function schemaRoot(end: SchemaEnd = 'newest'): Root {
  const state = ends[end];
  if (state.root !== undefined) return state.root;
  if (state.error !== undefined) throw state.error;
  const started = performance.now();
  try {
    const root = loadProtoRoot(SCHEMA_ENTRY_FILES, end);
    if (end === 'oldest') dropFieldsAfterOldest(root);
    state.root = root;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    state.error =
      err instanceof BreezeError
        ? err
        : new BreezeError('SCHEMA', `cannot load the ${end} end's Envoy proto files: ${message}`, {
            cause: err,
          });
    throw state.error;
  }
  state.millis = performance.now() - started;
  return state.root;
}

/** How long the first load of one end took (ms), or undefined before it. */
export function schemaLoadMillis(end: SchemaEnd = 'newest'): number | undefined {
  return ends[end].millis;
}

// ---------------------------------------------------------------------------------------------
// Public checks

/**
 * Problems of `json` as proto3 JSON of the message `typeName` (full name, e.g.
 * `envoy.config.cluster.v3.Cluster`), each `path: problem`; [] when valid.
 */
export function checkMessage(typeName: string, json: unknown, options: SchemaCheckOptions = {}): string[] {
  const checker = newChecker(options);
  const type = checker.lookupType(typeName.replace(/^\./, ''));
  if (type === undefined) return [`(root): unknown message type ${typeName}`];
  checker.message(type, json, '', 0);
  return checker.problems;
}

/** checkMessage against a given Root (for rules tested on hand-written protos). */
export function checkMessageIn(
  root: Root,
  typeName: string,
  json: unknown,
  options: SchemaCheckOptions = {},
): string[] {
  const checker = new Checker(root, options);
  const type = checker.lookupType(typeName.replace(/^\./, ''));
  if (type === undefined) return [`(root): unknown message type ${typeName}`];
  checker.message(type, json, '', 0);
  return checker.problems;
}

/**
 * Problems of an EnvoyFilter (Kubernetes JSON): the networking.istio.io/v1alpha3 envelope, the
 * Istio-side rules of each config patch, and each patch value as Envoy proto3 JSON
 * (NETWORK_FILTER: envoy.config.listener.v3.Filter; CLUSTER ADD/MERGE:
 * envoy.config.cluster.v3.Cluster). [] when valid.
 */
export function checkEnvoyFilter(envoyFilter: JsonRecord, options: SchemaCheckOptions = {}): string[] {
  const problems: string[] = [];
  const add = (path: string, message: string): void => {
    problems.push(`${path}: ${message}`);
  };
  unknownKeys(envoyFilter, ['apiVersion', 'kind', 'metadata', 'spec', 'status'], '', problems);
  if (envoyFilter.apiVersion !== 'networking.istio.io/v1alpha3') {
    add('apiVersion', `expected "networking.istio.io/v1alpha3", got ${show(envoyFilter.apiVersion)}`);
  }
  if (envoyFilter.kind !== 'EnvoyFilter') {
    add('kind', `expected "EnvoyFilter", got ${show(envoyFilter.kind)}`);
  }
  const metadata = envoyFilter.metadata;
  if (!isRecord(metadata)) {
    add('metadata', `expected object, got ${kindOf(metadata)}`);
  } else {
    if (typeof metadata.name !== 'string' || metadata.name === '') {
      add('metadata.name', `expected a non-empty string, got ${show(metadata.name)}`);
    }
    if (metadata.namespace !== undefined) {
      checkShape('string', metadata.namespace, 'metadata.namespace', problems);
    }
    if (metadata.labels !== undefined) checkShape('labels', metadata.labels, 'metadata.labels', problems);
    if (metadata.annotations !== undefined) {
      checkShape('labels', metadata.annotations, 'metadata.annotations', problems);
    }
  }
  const spec = envoyFilter.spec;
  if (!isRecord(spec)) {
    add('spec', `expected object, got ${kindOf(spec)}`);
    return problems;
  }
  unknownKeys(spec, ['workloadSelector', 'targetRefs', 'configPatches', 'priority'], 'spec', problems);
  if (spec.workloadSelector !== undefined) {
    checkShape({ labels: 'labels' }, spec.workloadSelector, 'spec.workloadSelector', problems);
  }
  if (spec.targetRefs !== undefined) {
    if (!Array.isArray(spec.targetRefs)) {
      add('spec.targetRefs', `expected array, got ${kindOf(spec.targetRefs)}`);
    } else {
      spec.targetRefs.forEach((ref: unknown, i) => {
        checkShape(TARGET_REF_SHAPE, ref, `spec.targetRefs[${i}]`, problems);
      });
      if (spec.workloadSelector !== undefined) {
        add('spec.targetRefs', 'workloadSelector and targetRefs cannot both be set');
      }
    }
  }
  if (spec.priority !== undefined) checkShape('int32', spec.priority, 'spec.priority', problems);
  const patches = spec.configPatches;
  if (!Array.isArray(patches)) {
    add('spec.configPatches', `expected array, got ${kindOf(patches)}`);
    return problems;
  }
  const checker = newChecker(options, problems);
  const merging = newChecker(options, problems, true);
  patches.forEach((patch: unknown, i) => {
    checkPatch(patch, `spec.configPatches[${i}]`, problems, checker, merging);
  });
  return problems;
}

/**
 * Problems of an EnvoyFilter at both ends of the support range (or at the `ends` given), each
 * prefixed by where it fails: `both ends: <path>: <problem>` when every end checked reports it,
 * else `<schemaEndLabel(end)>: <path>: <problem>`. [] when valid at each end. Throws
 * BreezeError('SCHEMA') when an end's protos cannot be loaded.
 */
export function checkEnvoyFilterAtEnds(
  envoyFilter: JsonRecord,
  options: Omit<SchemaCheckOptions, 'end'> = {},
  endsToCheck: readonly SchemaEnd[] = SCHEMA_ENDS,
): string[] {
  const results = endsToCheck.map((end) => ({
    end,
    problems: checkEnvoyFilter(envoyFilter, { ...options, end }),
  }));
  const sets = results.map((r) => new Set(r.problems));
  const everywhere = (p: string): boolean => results.length > 1 && sets.every((set) => set.has(p));
  const out: string[] = [];
  const reported = new Set<string>();
  for (const { end, problems } of results) {
    for (const p of problems) {
      if (!everywhere(p)) out.push(`${schemaEndLabel(end)}: ${p}`);
      else if (!reported.has(p)) {
        reported.add(p);
        out.push(`both ends: ${p}`);
      }
    }
  }
  return out;
}

/** The Checker of one end; at the oldest end it also knows the newest schema, to explain gaps. */
function newChecker(options: SchemaCheckOptions, problems: string[] = [], partial = false): Checker {
  const end = options.end ?? 'newest';
  let newer: NewerSchema | undefined;
  if (end === 'oldest') {
    try {
      newer = { root: schemaRoot('newest'), label: schemaEndLabel('oldest') };
    } catch {
      newer = undefined; // only the explanation is lost: such fields are still unknown here
    }
  }
  return new Checker(schemaRoot(end), options, problems, partial, newer);
}

// ---------------------------------------------------------------------------------------------
// EnvoyFilter envelope (networking/v1alpha3/envoy_filter.proto, as its CRD's camelCase JSON)

const APPLY_TO = [
  'LISTENER',
  'FILTER_CHAIN',
  'NETWORK_FILTER',
  'HTTP_FILTER',
  'ROUTE_CONFIGURATION',
  'VIRTUAL_HOST',
  'HTTP_ROUTE',
  'CLUSTER',
  'EXTENSION_CONFIG',
  'BOOTSTRAP',
  'LISTENER_FILTER',
] as const;
const OPERATIONS = [
  'MERGE',
  'ADD',
  'REMOVE',
  'INSERT_BEFORE',
  'INSERT_AFTER',
  'INSERT_FIRST',
  'REPLACE',
  'MERGE_AND_REPLACE_LIST',
] as const;
const CONTEXTS = ['ANY', 'SIDECAR_INBOUND', 'SIDECAR_OUTBOUND', 'GATEWAY', 'WAYPOINT'] as const;
const FILTER_CLASSES = ['UNSPECIFIED', 'AUTHN', 'AUTHZ', 'STATS'] as const;
const LISTENER_CLASS = new Set([
  'LISTENER',
  'FILTER_CHAIN',
  'NETWORK_FILTER',
  'HTTP_FILTER',
  'LISTENER_FILTER',
]);
const ROUTE_CLASS = new Set(['ROUTE_CONFIGURATION', 'VIRTUAL_HOST', 'HTTP_ROUTE']);
const INSERTS = new Set(['INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST']);

/** A tiny JSON shape language for the Istio side (no protos of Istio are loaded). */
type Shape =
  | 'string'
  | 'int32'
  | 'uint32'
  | 'port'
  | 'labels'
  | readonly string[] // enum names
  | { readonly [key: string]: Shape };

const SUB_FILTER: Shape = { name: 'string' };
const FILTER_MATCH: Shape = { name: 'string', subFilter: SUB_FILTER };
const MATCH_SHAPE: Shape = {
  context: CONTEXTS,
  proxy: { proxyVersion: 'string', metadata: 'labels' },
  listener: {
    portNumber: 'port',
    portName: 'string',
    filterChain: {
      name: 'string',
      sni: 'string',
      transportProtocol: 'string',
      applicationProtocols: 'string',
      filter: FILTER_MATCH,
      destinationPort: 'port',
    },
    listenerFilter: 'string',
    name: 'string',
  },
  routeConfiguration: {
    portNumber: 'port',
    portName: 'string',
    gateway: 'string',
    vhost: {
      name: 'string',
      domainName: 'string',
      route: { name: 'string', action: ['ANY', 'ROUTE', 'REDIRECT', 'DIRECT_RESPONSE'] },
    },
    name: 'string',
  },
  cluster: { portNumber: 'port', service: 'string', subset: 'string', name: 'string' },
  waypoint: { portNumber: 'port', route: { name: 'string' }, filter: FILTER_MATCH },
};
const TARGET_REF_SHAPE: Shape = { group: 'string', kind: 'string', name: 'string', namespace: 'string' };
const MATCH_OBJECTS = ['listener', 'routeConfiguration', 'cluster', 'waypoint'] as const;

function checkPatch(
  patch: unknown,
  path: string,
  problems: string[],
  checker: Checker,
  merging: Checker,
): void {
  const add = (p: string, message: string): void => {
    problems.push(`${p}: ${message}`);
  };
  if (!isRecord(patch)) {
    add(path, `expected object, got ${kindOf(patch)}`);
    return;
  }
  unknownKeys(patch, ['applyTo', 'match', 'patch'], path, problems);
  const applyTo = enumName(patch.applyTo, APPLY_TO, `${path}.applyTo`, problems);
  let matchKind: string | undefined;
  const match = patch.match;
  if (match !== undefined) {
    checkShape(MATCH_SHAPE, match, `${path}.match`, problems);
    if (isRecord(match)) {
      const set = MATCH_OBJECTS.filter((k) => match[k] !== undefined && match[k] !== null);
      if (set.length > 1) add(`${path}.match`, `only one of ${set.join(', ')} may be set`);
      matchKind = set.length === 1 ? set[0] : undefined;
      if (matchKind === 'waypoint' && match.context !== 'WAYPOINT') {
        add(`${path}.match.waypoint`, 'a waypoint match needs context WAYPOINT');
      }
    }
  }
  const body = patch.patch;
  if (!isRecord(body)) {
    add(`${path}.patch`, `expected object, got ${kindOf(body)}`);
    return;
  }
  unknownKeys(body, ['operation', 'value', 'filterClass'], `${path}.patch`, problems);
  const operation = enumName(body.operation, OPERATIONS, `${path}.patch.operation`, problems);
  if (body.filterClass !== undefined) {
    enumName(body.filterClass, FILTER_CLASSES, `${path}.patch.filterClass`, problems);
  }
  const value = body.value;
  const valuePath = `${path}.patch.value`;
  if (value !== undefined && !isRecord(value)) add(valuePath, `expected object, got ${kindOf(value)}`);
  if (operation === 'REMOVE' && value !== undefined) add(valuePath, 'a REMOVE patch takes no value');
  if (operation !== undefined && operation !== 'REMOVE' && value === undefined) {
    add(valuePath, `missing: ${operation} needs a value`);
  }
  if (applyTo === undefined || operation === undefined) return;

  // The consistency rules of istiod's EnvoyFilter validation.
  if (operation === 'REPLACE' && applyTo !== 'NETWORK_FILTER' && applyTo !== 'HTTP_FILTER') {
    add(
      `${path}.patch.operation`,
      `REPLACE is only valid for NETWORK_FILTER and HTTP_FILTER, not ${applyTo}`,
    );
  }
  if (
    INSERTS.has(operation) &&
    !['NETWORK_FILTER', 'HTTP_FILTER', 'HTTP_ROUTE', 'LISTENER_FILTER'].includes(applyTo)
  ) {
    add(`${path}.patch.operation`, `${operation} is not supported for ${applyTo}`);
  }
  if (matchKind !== undefined && matchKind !== 'waypoint') {
    const wanted = LISTENER_CLASS.has(applyTo)
      ? 'listener'
      : ROUTE_CLASS.has(applyTo)
        ? 'routeConfiguration'
        : applyTo === 'CLUSTER'
          ? 'cluster'
          : undefined;
    if (wanted !== undefined && matchKind !== wanted) {
      add(`${path}.match.${matchKind}`, `applyTo ${applyTo} needs a ${wanted} match, not ${matchKind}`);
    }
  }
  if (isRecord(match) && isRecord(match.listener)) {
    const chain = match.listener.filterChain;
    const filter = isRecord(chain) ? chain.filter : undefined;
    if (isRecord(filter)) {
      const filterPath = `${path}.match.listener.filterChain.filter`;
      if (typeof filter.name !== 'string' || filter.name === '') {
        add(`${filterPath}.name`, 'a filter match needs a name');
      }
      if (filter.subFilter !== undefined && applyTo !== 'HTTP_FILTER') {
        add(`${filterPath}.subFilter`, 'a subFilter match is only valid with applyTo HTTP_FILTER');
      }
    }
  }

  if (!isRecord(value)) return;
  const use = operation === 'MERGE' ? merging : checker;
  const typeName =
    applyTo === 'NETWORK_FILTER'
      ? 'envoy.config.listener.v3.Filter'
      : applyTo === 'CLUSTER' && (operation === 'ADD' || operation === 'MERGE')
        ? 'envoy.config.cluster.v3.Cluster'
        : undefined;
  if (typeName === undefined) return; // other applyTo kinds: Breeze emits none; not type-checked
  const type = use.lookupType(typeName);
  if (type === undefined) throw new BreezeError('SCHEMA', `Envoy schema has no ${typeName}`);
  use.message(type, value, valuePath, 0);
}

function enumName<T extends string>(
  value: unknown,
  names: readonly T[],
  path: string,
  problems: string[],
): T | undefined {
  if (value === undefined) {
    problems.push(`${path}: missing (one of ${names.join(', ')})`);
    return undefined;
  }
  const found = names.find((n) => n === value);
  if (found === undefined) problems.push(`${path}: expected one of ${names.join(', ')}, got ${show(value)}`);
  return found;
}

function unknownKeys(object: JsonRecord, known: readonly string[], path: string, problems: string[]): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key) && object[key] !== undefined) {
      problems.push(`${keyPath(path, key)}: unknown field`);
    }
  }
}

function checkShape(shape: Shape, value: unknown, path: string, problems: string[]): void {
  const add = (message: string): void => {
    problems.push(`${path}: ${message}`);
  };
  if (value === undefined) return;
  if (typeof shape === 'string') {
    switch (shape) {
      case 'string':
        if (typeof value !== 'string') add(`expected string, got ${kindOf(value)}`);
        return;
      case 'int32':
      case 'uint32':
      case 'port': {
        const min = shape === 'int32' ? -(2 ** 31) : 0;
        const max = shape === 'port' ? 65535 : shape === 'int32' ? 2 ** 31 - 1 : 2 ** 32 - 1;
        if (typeof value !== 'number' || !Number.isInteger(value)) {
          add(`expected integer, got ${kindOf(value)}`);
        } else if (value < min || value > max) add(`${value} is out of range ${min}..${max}`);
        return;
      }
      case 'labels':
        if (!isRecord(value)) {
          add(`expected object (string map), got ${kindOf(value)}`);
          return;
        }
        for (const [k, v] of Object.entries(value)) {
          if (typeof v !== 'string') problems.push(`${keyPath(path, k)}: expected string, got ${kindOf(v)}`);
        }
        return;
    }
  }
  if (isStringList(shape)) {
    if (typeof value !== 'string' || !shape.includes(value)) {
      add(`expected one of ${shape.join(', ')}, got ${show(value)}`);
    }
    return;
  }
  if (!isRecord(value)) {
    add(`expected object, got ${kindOf(value)}`);
    return;
  }
  for (const [key, child] of Object.entries(value)) {
    const childShape = Object.hasOwn(shape, key) ? shape[key] : undefined;
    if (childShape === undefined) {
      if (child !== undefined) problems.push(`${keyPath(path, key)}: unknown field`);
    } else {
      checkShape(childShape, child, keyPath(path, key), problems);
    }
  }
}

function isStringList(shape: Shape): shape is readonly string[] {
  return Array.isArray(shape);
}

// ---------------------------------------------------------------------------------------------
// The proto3-JSON walker

const MAX_DEPTH = 100;
const TYPED_STRUCTS = new Set(['.xds.type.v3.TypedStruct', '.udpa.type.v1.TypedStruct']);
const WRAPPERS: ReadonlyMap<string, string> = new Map([
  ['.google.protobuf.DoubleValue', 'double'],
  ['.google.protobuf.FloatValue', 'float'],
  ['.google.protobuf.Int64Value', 'int64'],
  ['.google.protobuf.UInt64Value', 'uint64'],
  ['.google.protobuf.Int32Value', 'int32'],
  ['.google.protobuf.UInt32Value', 'uint32'],
  ['.google.protobuf.BoolValue', 'bool'],
  ['.google.protobuf.StringValue', 'string'],
  ['.google.protobuf.BytesValue', 'bytes'],
]);
/** Well-known types whose JSON is not an object of their fields (inside Any: `{"@type","value"}`). */
const SPECIAL_JSON = new Set([
  '.google.protobuf.Any',
  '.google.protobuf.Duration',
  '.google.protobuf.Timestamp',
  '.google.protobuf.FieldMask',
  '.google.protobuf.Struct',
  '.google.protobuf.Value',
  '.google.protobuf.ListValue',
  ...WRAPPERS.keys(),
]);
const INT_RANGES: ReadonlyMap<string, readonly [bigint, bigint]> = new Map([
  ['int32', [-(2n ** 31n), 2n ** 31n - 1n]],
  ['sint32', [-(2n ** 31n), 2n ** 31n - 1n]],
  ['sfixed32', [-(2n ** 31n), 2n ** 31n - 1n]],
  ['uint32', [0n, 2n ** 32n - 1n]],
  ['fixed32', [0n, 2n ** 32n - 1n]],
  ['int64', [-(2n ** 63n), 2n ** 63n - 1n]],
  ['sint64', [-(2n ** 63n), 2n ** 63n - 1n]],
  ['sfixed64', [-(2n ** 63n), 2n ** 63n - 1n]],
  ['uint64', [0n, 2n ** 64n - 1n]],
  ['fixed64', [0n, 2n ** 64n - 1n]],
]);
const REQUIRED_RULES = [
  '(validate.rules).message.required',
  '(validate.rules).duration.required',
  '(validate.rules).any.required',
  '(validate.rules).timestamp.required',
];
const DURATION = /^-?\d+(\.\d{1,9})?s$/;
const MAX_DURATION_SECONDS = 315_576_000_000;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const FIELD_MASK = /^([a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*(,[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*)*)?$/;
const FLOAT_STRING = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const FLOAT_MAX = 3.4028234663852886e38;

type Options = Readonly<Record<string, unknown>>;

const indexCache = new WeakMap<Type, ReadonlyMap<string, Field>>();

/** Accepted JSON keys of a message: each field's name and its lowerCamelCase json_name. */
function fieldIndex(type: Type): ReadonlyMap<string, Field> {
  let index = indexCache.get(type);
  if (index === undefined) {
    const map = new Map<string, Field>();
    for (const field of type.fieldsArray) {
      map.set(field.name, field);
      map.set(jsonName(field), field);
    }
    index = map;
    indexCache.set(type, index);
  }
  return index;
}

function jsonName(field: Field): string {
  const options: Options = field.options ?? {};
  const explicit = options.json_name;
  if (typeof explicit === 'string') return explicit;
  // protoc's ToJsonName: drop each '_' and upper-case the character after it.
  return field.name.replace(/_+(.?)/g, (_m, c: string) => c.toUpperCase());
}

/** The newest schema, known to a Checker of the oldest end; `label` names the oldest end. */
interface NewerSchema {
  readonly root: Root;
  readonly label: string;
}

/**
 * Deprecated in Envoy's API: `deprecated = true`, an `envoy.annotations.deprecated_at_minor_version`
 * (`_enum` for enum values) or `disallowed_by_default` (fatal by default) annotation.
 */
function isDeprecated(options: Options, suffix: '' | '_enum'): boolean {
  if (options.deprecated === true) return true;
  const at = options[`(envoy.annotations.deprecated_at_minor_version${suffix})`];
  if (typeof at === 'string' && at !== '') return true;
  return options[`(envoy.annotations.disallowed_by_default${suffix})`] === true;
}

function displayName(object: { fullName: string }): string {
  return object.fullName.replace(/^\./, '');
}

class Checker {
  private readonly reportDeprecated: boolean;
  private readonly rules: boolean;
  private readonly typeCache = new Map<string, Type | undefined>();

  /**
   * `partial`: a MERGE value, where missing required fields are not problems. `newer`: at the
   * oldest end, the newest schema, so that what only a newer Envoy has is reported as such.
   */
  constructor(
    private readonly root: Root,
    options: SchemaCheckOptions,
    readonly problems: string[] = [],
    private readonly partial = false,
    private readonly newer?: NewerSchema,
  ) {
    this.reportDeprecated = options.deprecated ?? true;
    this.rules = options.validateRules ?? true;
  }

  private add(path: string, message: string): void {
    this.problems.push(`${path === '' ? '(root)' : path}: ${message}`);
  }

  lookupType(name: string): Type | undefined {
    if (this.typeCache.has(name)) return this.typeCache.get(name);
    let found: Type | undefined;
    try {
      const object = name === '' ? null : this.root.lookup(name);
      if (object instanceof protobuf.Type) found = object;
    } catch {
      found = undefined;
    }
    this.typeCache.set(name, found);
    return found;
  }

  private resolveTypeUrl(url: string, path: string): Type | undefined {
    const slash = url.lastIndexOf('/');
    if (slash < 0 || slash === url.length - 1) {
      this.add(path, `invalid type URL ${show(url)} (expected type.googleapis.com/<message full name>)`);
      return undefined;
    }
    const name = url.slice(slash + 1);
    const type = this.lookupType(name);
    if (type === undefined) {
      if (this.newerType(`.${name.replace(/^\./, '')}`) !== undefined) {
        this.add(path, `message ${name} ${this.needsNewer()}`);
      } else {
        this.add(path, `unknown type URL ${show(url)} (no such message in Envoy's schema)`);
      }
    }
    return type;
  }

  /** The message of the same full name in the newer schema (oldest end only). */
  private newerType(fullName: string): Type | undefined {
    if (this.newer === undefined) return undefined;
    try {
      const object = this.newer.root.lookup(fullName);
      return object instanceof protobuf.Type ? object : undefined;
    } catch {
      return undefined;
    }
  }

  private needsNewer(): string {
    return `is absent from the ${this.newer?.label ?? 'oldest end'}: it needs a newer Envoy API than that snapshot, and the support range starts at Envoy 1.28`;
  }

  /** Checks `value` as the JSON of message `type` (including the well-known types' forms). */
  message(type: Type, value: unknown, path: string, depth: number): void {
    if (depth > MAX_DEPTH) {
      this.add(path, 'nesting is too deep');
      return;
    }
    const full = type.fullName;
    if (SPECIAL_JSON.has(full)) {
      this.wellKnown(type, value, path, depth);
      return;
    }
    if (!isRecord(value)) {
      this.add(path, `expected object (${displayName(type)}), got ${kindOf(value)}`);
      return;
    }
    const typeOptions: Options = type.options ?? {};
    if (this.reportDeprecated && isDeprecated(typeOptions, '')) {
      this.add(path, `deprecated message type ${displayName(type)}`);
    }
    const index = fieldIndex(type);
    const set = new Map<Field, string>();
    const oneofs = new Map<OneOf, string>();
    for (const [key, fieldValue] of Object.entries(value)) {
      const fieldPath = keyPath(path, key);
      const field = index.get(key);
      if (field === undefined) {
        const newerType = this.newerType(full);
        const newerField = newerType === undefined ? undefined : fieldIndex(newerType).get(key);
        if (newerField !== undefined) {
          this.add(fieldPath, `field ${displayName(type)}.${newerField.name} ${this.needsNewer()}`);
        } else {
          this.add(fieldPath, `unknown field (not in ${displayName(type)})`);
        }
        continue;
      }
      // undefined: absent once serialized; null: the default value (except in google.protobuf.Value).
      if (fieldValue === undefined || (fieldValue === null && !acceptsNull(field))) continue;
      const previous = set.get(field);
      if (previous !== undefined) {
        this.add(fieldPath, `field ${field.name} is set twice (also as ${previous})`);
        continue;
      }
      set.set(field, key);
      const fieldOptions: Options = field.options ?? {};
      if (this.reportDeprecated && isDeprecated(fieldOptions, '')) {
        this.add(fieldPath, `deprecated field ${displayName(type)}.${field.name} (Breeze must not emit it)`);
      }
      const oneof = field.partOf;
      if (oneof !== null) {
        const other = oneofs.get(oneof);
        if (other === undefined) {
          oneofs.set(oneof, key);
        } else {
          this.add(
            fieldPath,
            `oneof ${oneof.name} is already set by ${other} (set at most one of ${oneof.fieldsArray.map(jsonName).join(', ')})`,
          );
        }
      }
      this.fieldValue(field, fieldValue, fieldPath, depth);
    }
    if (this.rules) this.validateRules(type, value, set, oneofs, path);
    if (TYPED_STRUCTS.has(full)) this.typedStructValue(value, path, depth);
  }

  private fieldValue(field: Field, value: unknown, path: string, depth: number): void {
    if (field instanceof protobuf.MapField) {
      if (!isRecord(value)) {
        this.add(path, `expected object (map<${field.keyType}, ${field.type}>), got ${kindOf(value)}`);
        return;
      }
      for (const [key, item] of Object.entries(value)) {
        const itemPath = keyPath(path, key);
        const keyProblem = mapKeyProblem(field.keyType, key);
        if (keyProblem !== undefined) this.add(itemPath, keyProblem);
        if (item === null || item === undefined) this.add(itemPath, 'a map value cannot be null');
        else this.element(field, item, itemPath, depth);
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) {
        this.add(path, `expected array (repeated ${field.type}), got ${kindOf(value)}`);
        return;
      }
      value.forEach((item: unknown, i) => {
        if (item === null || item === undefined) this.add(`${path}[${i}]`, 'a list element cannot be null');
        else this.element(field, item, `${path}[${i}]`, depth);
      });
      return;
    }
    this.element(field, value, path, depth);
  }

  private element(field: Field, value: unknown, path: string, depth: number): void {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Enum) this.enumValue(resolved, value, path);
    else if (resolved instanceof protobuf.Type) this.message(resolved, value, path, depth + 1);
    else {
      const problem = scalarProblem(field.type, value);
      if (problem !== undefined) this.add(path, problem);
    }
  }

  private enumValue(type: Enum, value: unknown, path: string): void {
    if (value === null && type.fullName === '.google.protobuf.NullValue') return;
    let name: string | undefined;
    if (typeof value === 'string') {
      if (Object.hasOwn(type.values, value)) name = value;
      else if (this.newerEnumHas(type, value)) {
        this.add(path, `enum value ${value} of ${displayName(type)} ${this.needsNewer()}`);
      } else {
        const names = Object.keys(type.values).join(', ');
        this.add(
          path,
          `unknown enum value ${show(value)} of ${displayName(type)} (expected one of ${names})`,
        );
      }
    } else if (typeof value === 'number' && Number.isInteger(value)) {
      name = Object.keys(type.values).find((k) => type.values[k] === value);
      if (name === undefined) this.add(path, `${value} is not a value of enum ${displayName(type)}`);
    } else {
      this.add(path, `expected enum ${displayName(type)} (a value name), got ${kindOf(value)}`);
    }
    if (name !== undefined && this.reportDeprecated) {
      const valueOptions: Options = type.valuesOptions?.[name] ?? {};
      if (isDeprecated(valueOptions, '_enum')) {
        this.add(path, `deprecated enum value ${name} of ${displayName(type)} (Breeze must not emit it)`);
      }
    }
  }

  private newerEnumHas(type: Enum, name: string): boolean {
    if (this.newer === undefined) return false;
    try {
      const newer = this.newer.root.lookup(type.fullName);
      return newer instanceof protobuf.Enum && Object.hasOwn(newer.values, name);
    } catch {
      return false;
    }
  }

  private wellKnown(type: Type, value: unknown, path: string, depth: number): void {
    const full = type.fullName;
    const wrapped = WRAPPERS.get(full);
    if (wrapped !== undefined) {
      const problem = scalarProblem(wrapped, value);
      if (problem !== undefined) this.add(path, problem);
      return;
    }
    switch (full) {
      case '.google.protobuf.Any':
        this.any(value, path, depth);
        return;
      case '.google.protobuf.Duration':
        if (typeof value !== 'string') {
          this.add(path, `expected Duration string such as "1.5s", got ${kindOf(value)}`);
        } else if (!DURATION.test(value)) {
          this.add(path, `invalid Duration ${show(value)} (expected e.g. "5s" or "0.25s")`);
        } else if (Math.abs(Number.parseFloat(value)) > MAX_DURATION_SECONDS) {
          this.add(path, `Duration ${show(value)} is out of range`);
        }
        return;
      case '.google.protobuf.Timestamp':
        if (typeof value !== 'string') {
          this.add(path, `expected RFC 3339 Timestamp string, got ${kindOf(value)}`);
        } else if (!validTimestamp(value)) {
          this.add(path, `invalid Timestamp ${show(value)} (expected RFC 3339, e.g. "2024-01-31T12:00:00Z")`);
        }
        return;
      case '.google.protobuf.FieldMask':
        if (typeof value !== 'string') {
          this.add(path, `expected FieldMask string, got ${kindOf(value)}`);
        } else if (!FIELD_MASK.test(value)) {
          this.add(path, `invalid FieldMask ${show(value)} (comma-separated lowerCamelCase paths)`);
        }
        return;
      case '.google.protobuf.Struct':
        if (!isRecord(value)) {
          this.add(path, `expected object (google.protobuf.Struct), got ${kindOf(value)}`);
        }
        return;
      case '.google.protobuf.ListValue':
        if (!Array.isArray(value)) {
          this.add(path, `expected array (google.protobuf.ListValue), got ${kindOf(value)}`);
        }
        return;
      default: // google.protobuf.Value: any JSON
        return;
    }
  }

  private any(value: unknown, path: string, depth: number): void {
    if (!isRecord(value)) {
      this.add(path, `expected object (google.protobuf.Any), got ${kindOf(value)}`);
      return;
    }
    const typePath = keyPath(path, '@type');
    const url = value['@type'];
    if (url === undefined) {
      if (Object.keys(value).length > 0) this.add(typePath, 'missing: an Any needs "@type"');
      return;
    }
    if (typeof url !== 'string') {
      this.add(typePath, `expected string, got ${kindOf(url)}`);
      return;
    }
    const inner = this.resolveTypeUrl(url, typePath);
    if (inner === undefined) return;
    const rest: JsonRecord = { ...value };
    delete rest['@type'];
    if (!SPECIAL_JSON.has(inner.fullName)) {
      this.message(inner, rest, path, depth + 1);
      return;
    }
    // An Any holding a well-known type with a special JSON form: {"@type": ..., "value": <that form>}.
    for (const key of Object.keys(rest)) {
      if (key !== 'value') {
        this.add(keyPath(path, key), `unknown field (an Any of ${displayName(inner)} has only "value")`);
      }
    }
    if (rest.value === undefined) {
      this.add(keyPath(path, 'value'), `missing (the ${displayName(inner)} value)`);
    } else {
      this.message(inner, rest.value, keyPath(path, 'value'), depth + 1);
    }
  }

  /** TypedStruct: Envoy converts `value` into the message `typeUrl` names, so check it as that. */
  private typedStructValue(value: JsonRecord, path: string, depth: number): void {
    const urlKey = value.typeUrl !== undefined ? 'typeUrl' : 'type_url';
    const url = value[urlKey];
    if (url === undefined || url === null || url === '') {
      this.add(keyPath(path, 'typeUrl'), 'missing: a TypedStruct needs typeUrl (the type of its value)');
      return;
    }
    if (typeof url !== 'string') return; // reported as a wrong type already
    const inner = this.resolveTypeUrl(url, keyPath(path, urlKey));
    if (inner === undefined) return;
    const payload = value.value ?? {};
    if (!isRecord(payload)) return; // reported by the Struct check
    this.message(inner, payload, keyPath(path, 'value'), depth + 1);
  }

  /** The protoc-gen-validate subset: Envoy rejects config that breaks these. */
  private validateRules(
    type: Type,
    value: JsonRecord,
    set: ReadonlyMap<Field, string>,
    oneofs: ReadonlyMap<OneOf, string>,
    path: string,
  ): void {
    for (const field of type.fieldsArray) {
      const options: Options = field.options ?? {};
      const key = set.get(field);
      if (key === undefined) {
        // Rules on an unset oneof member (or proto3 optional) are skipped; others see the default.
        if (field.partOf !== null || this.partial) continue;
        const fieldPath = keyPath(path, jsonName(field));
        if (REQUIRED_RULES.some((r) => options[r] === true)) {
          this.add(fieldPath, `missing: required field of ${displayName(type)} (validate.rules)`);
          continue;
        }
        if (field.map || field.resolvedType instanceof protobuf.Type) continue;
        if (field.repeated) this.valueRules(field, [], fieldPath, true);
        else if (field.type === 'string') this.valueRules(field, '', fieldPath, true);
        else if (INT_RANGES.has(field.type)) this.valueRules(field, 0, fieldPath, true);
        continue;
      }
      if (!field.map) this.valueRules(field, value[key], keyPath(path, key), false);
    }
    for (const oneof of type.oneofsArray) {
      const oneofOptions: Options = oneof.options ?? {};
      if (!this.partial && oneofOptions['(validate.required)'] === true && !oneofs.has(oneof)) {
        const members = oneof.fieldsArray.map(jsonName).join(', ');
        this.add(
          path,
          `missing: one of ${members} is required (oneof ${oneof.name} of ${displayName(type)})`,
        );
      }
    }
  }

  private valueRules(field: Field, value: unknown, path: string, unset: boolean): void {
    const options: Options = field.options ?? {};
    const what = unset ? 'missing or empty: ' : '';
    if (field.repeated) {
      if (!Array.isArray(value)) return;
      if (value.length === 0 && options['(validate.rules).repeated.ignore_empty'] === true) return;
      const min = options['(validate.rules).repeated.min_items'];
      const max = options['(validate.rules).repeated.max_items'];
      if (typeof min === 'number' && value.length < min) {
        this.add(path, `${what}needs at least ${min} item(s) (validate.rules repeated.min_items)`);
      }
      if (typeof max === 'number' && value.length > max) {
        this.add(
          path,
          `has ${value.length} items, at most ${max} allowed (validate.rules repeated.max_items)`,
        );
      }
      const kind = ruleKind(field);
      if (kind === undefined) return;
      value.forEach((item: unknown, i) => {
        for (const p of scalarRuleProblems(options, `(validate.rules).repeated.items.${kind}`, kind, item)) {
          this.add(`${path}[${i}]`, p);
        }
      });
      return;
    }
    const kind = ruleKind(field);
    if (kind === undefined) return;
    for (const p of scalarRuleProblems(options, `(validate.rules).${kind}`, kind, value))
      this.add(path, what + p);
  }
}

/** The PGV rule family of a field's (element) value: its scalar type, or a wrapper's. */
function ruleKind(field: Field): string | undefined {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return WRAPPERS.get(resolved.fullName);
  if (resolved instanceof protobuf.Enum) return undefined;
  return field.type;
}

function scalarRuleProblems(options: Options, prefix: string, kind: string, value: unknown): string[] {
  const rule = (name: string): unknown => options[`${prefix}.${name}`];
  const label = prefix.replace('(validate.rules).', '');
  const problems: string[] = [];
  if (kind === 'string') {
    if (typeof value !== 'string') return problems;
    if (value === '' && rule('ignore_empty') === true) return problems;
    // PGV counts code points (runes), not UTF-16 units.
    const chars = value.length - (value.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0);
    const bytes = Buffer.byteLength(value, 'utf8');
    const limits: [string, number, boolean][] = [
      ['min_len', chars, true],
      ['max_len', chars, false],
      ['min_bytes', bytes, true],
      ['max_bytes', bytes, false],
    ];
    for (const [name, actual, isMin] of limits) {
      const limit = rule(name);
      if (typeof limit !== 'number') continue;
      if (isMin ? actual < limit : actual > limit) {
        problems.push(
          `${isMin ? 'shorter' : 'longer'} than ${limit} ${name.endsWith('bytes') ? 'byte(s)' : 'character(s)'} (validate.rules ${label}.${name})`,
        );
      }
    }
    return problems;
  }
  if (!INT_RANGES.has(kind) && kind !== 'double' && kind !== 'float') return problems;
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  if (Number.isNaN(n)) return problems;
  if (n === 0 && rule('ignore_empty') === true) return problems;
  const bounds: [string, (limit: number) => boolean, string][] = [
    ['gt', (l) => n > l, '>'],
    ['gte', (l) => n >= l, '>='],
    ['lt', (l) => n < l, '<'],
    ['lte', (l) => n <= l, '<='],
    ['const', (l) => n === l, '='],
  ];
  for (const [name, ok, op] of bounds) {
    const limit = rule(name);
    const numeric = typeof limit === 'string' ? Number(limit) : limit;
    if (typeof numeric === 'number' && !ok(numeric)) {
      problems.push(`must be ${op} ${numeric}, got ${n} (validate.rules ${label}.${name})`);
    }
  }
  return problems;
}

function acceptsNull(field: Field): boolean {
  if (field.repeated || field.map) return false;
  const name = field.resolvedType?.fullName;
  return name === '.google.protobuf.Value' || name === '.google.protobuf.NullValue';
}

/** The proto3 JSON mapping of scalar values; undefined when `value` fits `type`. */
function scalarProblem(type: string, value: unknown): string | undefined {
  switch (type) {
    case 'string':
      return typeof value === 'string' ? undefined : `expected string, got ${kindOf(value)}`;
    case 'bool':
      return typeof value === 'boolean' ? undefined : `expected boolean, got ${kindOf(value)}`;
    case 'bytes':
      if (typeof value !== 'string') return `expected base64 string (bytes), got ${kindOf(value)}`;
      return validBase64(value) ? undefined : `invalid base64 ${show(value)}`;
    case 'double':
    case 'float': {
      if (typeof value === 'string') {
        if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return undefined;
        if (!FLOAT_STRING.test(value)) return `expected number (${type}), got string ${show(value)}`;
        value = Number(value);
      }
      if (typeof value !== 'number') return `expected number (${type}), got ${kindOf(value)}`;
      if (!Number.isFinite(value)) return 'not a finite number (write "NaN" or "Infinity" as strings)';
      if (type === 'float' && Math.abs(value) > FLOAT_MAX) return `${value} is out of range for float`;
      return undefined;
    }
    default: {
      const range = INT_RANGES.get(type);
      if (range === undefined) return `unsupported scalar type ${type}`;
      let n: bigint;
      if (typeof value === 'number') {
        if (!Number.isInteger(value)) return `expected integer (${type}), got ${value}`;
        if (!Number.isSafeInteger(value)) {
          return `${value} is not exact as a JSON number; write it as a decimal string`;
        }
        n = BigInt(value);
      } else if (typeof value === 'string' && /^-?\d+$/.test(value)) {
        n = BigInt(value);
      } else if (typeof value === 'string') {
        return `expected integer (${type}) as a number or decimal string, got ${show(value)}`;
      } else {
        return `expected integer (${type}), got ${kindOf(value)}`;
      }
      const [min, max] = range;
      return n < min || n > max ? `${n.toString()} is out of range for ${type}` : undefined;
    }
  }
}

function mapKeyProblem(keyType: string, key: string): string | undefined {
  if (keyType === 'string') return undefined;
  if (keyType === 'bool') {
    return key === 'true' || key === 'false' ? undefined : `invalid bool map key ${show(key)}`;
  }
  if (!/^-?\d+$/.test(key)) return `invalid ${keyType} map key ${show(key)} (expected a decimal integer)`;
  const problem = scalarProblem(keyType, key);
  return problem === undefined ? undefined : `invalid map key: ${problem}`;
}

function validBase64(s: string): boolean {
  const body = s.replace(/={1,2}$/, '');
  return /^[A-Za-z0-9+/]*$|^[A-Za-z0-9_-]*$/.test(body) && body.length % 4 !== 1;
}

function validTimestamp(s: string): boolean {
  const m = TIMESTAMP.exec(s);
  if (m === null) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (year < 1 || month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return false;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return day >= 1 && day <= daysInMonth;
}

// ---------------------------------------------------------------------------------------------
// Paths and messages

/** `a.b`, or `a["b.c"]` for keys that would not read well dotted. */
function keyPath(path: string, key: string): string {
  if (/^[A-Za-z_@$][\w@$-]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}
