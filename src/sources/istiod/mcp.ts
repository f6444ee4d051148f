// istiod's "api" generator sends each config object as an MCP Resource: metadata (name
// "<namespace>/<name>", resourceVersion, labels, annotations, creation time) plus the spec as an
// Any of istio.networking.v1alpha3.<Kind>. This module turns those into the Kubernetes-shaped
// JSON every Breeze source delivers, and back (the reverse is what test fakes serve).
//
// The spec is rendered as proto3 JSON the way istiod and `kubectl get -o json` show it:
// lowerCamelCase keys (protoc's json_name), enums by name, 64-bit integers and special doubles as
// strings, Durations as "1.5s", Timestamps as RFC 3339, wrapper types as their bare value; fields
// that are not set (proto3 defaults, empty lists and maps) are left out.
import type { Field, Message, Type } from 'protobufjs';
import protobuf from 'protobufjs';
import { asString, isRecord, type JsonRecord } from '../../model/json.js';
import { istioProtos, MCP_RESOURCE_TYPE, TYPE_URL_PREFIX, type AnyMessage } from './protos.js';

/** The kinds Breeze reads from istiod. */
export const ISTIOD_KINDS = ['ServiceEntry', 'VirtualService', 'DestinationRule'] as const;
export type IstiodKind = (typeof ISTIOD_KINDS)[number];

/** API versions to request: v1 (Istio 1.24+ keys its stores by it) and v1alpha3 (1.18-1.23). */
export const ISTIOD_API_VERSIONS = ['v1', 'v1alpha3'] as const;
export type IstiodApiVersion = (typeof ISTIOD_API_VERSIONS)[number];

export const NETWORKING_GROUP = 'networking.istio.io';
/** The apiVersion of delivered objects, whichever type URL they came from. */
export const DELIVERED_API_VERSION = `${NETWORKING_GROUP}/v1`;

/** The ADS type URL istiod's api generator answers for a kind: `<group>/<version>/<Kind>`. */
export function istioTypeUrl(version: IstiodApiVersion, kind: IstiodKind): string {
  return `${NETWORKING_GROUP}/${version}/${kind}`;
}

/** The proto message of a kind's spec (the proto package is v1alpha3 for every CRD version). */
export function specTypeName(kind: IstiodKind): string {
  return `istio.networking.v1alpha3.${kind}`;
}

/** A resource or body that cannot be decoded; the message says which and why. */
export class McpDecodeError extends Error {
  override readonly name = 'McpDecodeError';
}

/** An MCP Resource with its metadata decoded and its body still encoded. */
export interface McpEnvelope {
  readonly namespace: string;
  readonly name: string;
  /** metadata.version: the Kubernetes resourceVersion ('' when the origin has none). */
  readonly version: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** RFC 3339 with second precision, as Kubernetes writes creationTimestamp. */
  readonly creationTimestamp: string | undefined;
  readonly body: AnyMessage;
}

/** Decodes one entry of a DiscoveryResponse's resources as an MCP Resource (not its body). */
export function decodeMcpEnvelope(any: AnyMessage): McpEnvelope {
  if (any.type_url !== TYPE_URL_PREFIX + MCP_RESOURCE_TYPE) {
    throw new McpDecodeError(`resource type ${JSON.stringify(any.type_url)} is not ${MCP_RESOURCE_TYPE}`);
  }
  const { resource } = istioProtos();
  let decoded: Message;
  try {
    decoded = resource.decode(any.value);
  } catch (err) {
    throw new McpDecodeError(`undecodable ${MCP_RESOURCE_TYPE}: ${errorText(err)}`);
  }
  const r = resource.toObject(decoded, { longs: String, defaults: false }) as {
    metadata?: {
      name?: string;
      version?: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
      create_time?: { seconds?: string | number; nanos?: number };
    };
    body?: { type_url?: string; value?: Uint8Array };
  };
  const full = r.metadata?.name ?? '';
  const slash = full.indexOf('/');
  const namespace = slash > 0 ? full.slice(0, slash) : '';
  const name = slash > 0 ? full.slice(slash + 1) : '';
  if (namespace === '' || name === '' || name.includes('/')) {
    throw new McpDecodeError(`metadata.name ${JSON.stringify(full)} is not "<namespace>/<name>"`);
  }
  if (r.body?.type_url === undefined || r.body.type_url === '') {
    throw new McpDecodeError(`${full}: the resource has no body`);
  }
  const created = r.metadata?.create_time;
  return {
    namespace,
    name,
    version: r.metadata?.version ?? '',
    labels: r.metadata?.labels ?? {},
    annotations: r.metadata?.annotations ?? {},
    creationTimestamp: created === undefined ? undefined : timestampText(Number(created.seconds ?? 0), 0),
    body: { type_url: r.body.type_url, value: r.body.value ?? new Uint8Array() },
  };
}

const BODY_TYPE = /^type\.googleapis\.com\/istio\.networking\.(v1alpha3|v1beta1|v1)\.([A-Za-z]+)$/;

/** The Kubernetes-shaped object of a decoded envelope whose body must be a `kind` spec. */
export function mcpToObject(kind: IstiodKind, envelope: McpEnvelope): JsonRecord {
  const ref = `${envelope.namespace}/${envelope.name}`;
  const match = BODY_TYPE.exec(envelope.body.type_url);
  if (match?.[2] !== kind) {
    throw new McpDecodeError(`${ref}: body type ${JSON.stringify(envelope.body.type_url)} is not a ${kind}`);
  }
  const type = istioProtos().root.lookupType(specTypeName(kind));
  let spec: Message;
  try {
    spec = type.decode(envelope.body.value);
  } catch (err) {
    throw new McpDecodeError(`${ref}: undecodable ${kind} body: ${errorText(err)}`);
  }
  const metadata: JsonRecord = { name: envelope.name, namespace: envelope.namespace };
  if (envelope.version !== '') metadata.resourceVersion = envelope.version;
  if (Object.keys(envelope.labels).length > 0) metadata.labels = { ...envelope.labels };
  if (Object.keys(envelope.annotations).length > 0) metadata.annotations = { ...envelope.annotations };
  if (envelope.creationTimestamp !== undefined) metadata.creationTimestamp = envelope.creationTimestamp;
  return {
    apiVersion: DELIVERED_API_VERSION,
    kind,
    metadata,
    spec: messageToJson(type, spec as unknown as Record<string, unknown>),
  };
}

/**
 * The MCP Resource (as an Any) of a Kubernetes-shaped object: what istiod's api generator sends
 * for it. Spec keys may be camelCase (json_name) or snake_case; an unknown key or a value of the
 * wrong shape throws, so that fakes built on it fail loudly.
 */
export function objectToMcp(object: JsonRecord): AnyMessage {
  const kind = object.kind;
  if (!(ISTIOD_KINDS as readonly unknown[]).includes(kind)) {
    throw new McpDecodeError(`kind ${JSON.stringify(kind)} is not one of ${ISTIOD_KINDS.join(', ')}`);
  }
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const { root, resource } = istioProtos();
  const type = root.lookupType(specTypeName(kind as IstiodKind));
  const spec = jsonToMessageObject(type, isRecord(object.spec) ? object.spec : {}, 'spec');
  const body = type.encode(type.fromObject(spec)).finish();
  const created = typeof metadata.creationTimestamp === 'string' ? metadata.creationTimestamp : undefined;
  const plain = {
    metadata: {
      name: `${asString(metadata.namespace) ?? 'default'}/${asString(metadata.name) ?? ''}`,
      version: typeof metadata.resourceVersion === 'string' ? metadata.resourceVersion : '',
      labels: isRecord(metadata.labels) ? metadata.labels : {},
      annotations: isRecord(metadata.annotations) ? metadata.annotations : {},
      ...(created === undefined ? {} : { create_time: parseTimestamp(created, 'creationTimestamp') }),
    },
    body: { type_url: TYPE_URL_PREFIX + specTypeName(kind as IstiodKind), value: body },
  };
  return {
    type_url: TYPE_URL_PREFIX + MCP_RESOURCE_TYPE,
    value: resource.encode(resource.fromObject(plain)).finish(),
  };
}

// ---------------------------------------------------------------------------------------------
// proto3 JSON, both directions, over protobufjs reflection

/** protoc's ToJsonName: drop each '_' and upper-case the character after it. */
export function jsonName(field: Field): string {
  const explicit: unknown = field.options?.json_name;
  if (typeof explicit === 'string') return explicit;
  return field.name.replace(/_+(.?)/g, (_m, c: string) => c.toUpperCase());
}

const WRAPPERS = new Set(
  ['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes'].map(
    (w) => `.google.protobuf.${w}Value`,
  ),
);
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

function isOwn(message: Record<string, unknown>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(message, key);
}

/** A decoded message as proto3 JSON (set fields only). */
export function messageToJson(type: Type, message: Record<string, unknown>): JsonRecord {
  const out: JsonRecord = {};
  for (const field of type.fieldsArray) {
    if (!isOwn(message, field.name)) continue;
    const value = message[field.name];
    if (value === null || value === undefined) continue;
    const resolved = field.resolve();
    if (resolved.map) {
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length === 0) continue;
      out[jsonName(field)] = Object.fromEntries(entries.map(([k, v]) => [k, valueToJson(resolved, v)]));
    } else if (resolved.repeated) {
      const items = value as unknown[];
      if (items.length === 0) continue;
      out[jsonName(field)] = items.map((v) => valueToJson(resolved, v));
    } else {
      // proto3 JSON leaves out a plain scalar or enum at its default (Go never puts one on the
      // wire; other encoders may). Oneof members and `optional` fields keep theirs.
      if (
        resolved.partOf === null &&
        resolved.options?.proto3_optional !== true &&
        isDefault(resolved, value)
      ) {
        continue;
      }
      out[jsonName(field)] = valueToJson(resolved, value);
    }
  }
  return out;
}

function isDefault(field: Field, value: unknown): boolean {
  if (field.resolvedType instanceof protobuf.Type) return false;
  if (field.resolvedType instanceof protobuf.Enum) return value === 0;
  if (LONG_TYPES.has(field.type)) return longText(value) === '0';
  if (field.type === 'bytes') return (value as Uint8Array).length === 0;
  return value === 0 || value === '' || value === false;
}

function valueToJson(field: Field, value: unknown): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    const n = value as number;
    return resolved.valuesById[n] ?? n;
  }
  if (resolved instanceof protobuf.Type) return wellKnownToJson(resolved, value as Record<string, unknown>);
  return scalarToJson(field.type, value);
}

function scalarToJson(type: string, value: unknown): unknown {
  if (LONG_TYPES.has(type)) return longText(value);
  if (type === 'bytes') return Buffer.from(value as Uint8Array).toString('base64');
  if ((type === 'double' || type === 'float') && typeof value === 'number' && !Number.isFinite(value)) {
    return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  }
  return value;
}

function wellKnownToJson(type: Type, message: Record<string, unknown>): unknown {
  switch (type.fullName) {
    case '.google.protobuf.Duration':
      return durationText(BigInt(longText(message.seconds ?? 0)), Number(message.nanos ?? 0));
    case '.google.protobuf.Timestamp':
      return timestampText(Number(longText(message.seconds ?? 0)), Number(message.nanos ?? 0));
    default:
      break;
  }
  if (WRAPPERS.has(type.fullName)) {
    const field = type.fields.value;
    if (field === undefined) return null;
    const value = isOwn(message, 'value') ? message.value : undefined;
    if (value === undefined || value === null) {
      return defaultScalarJson(field.type);
    }
    return scalarToJson(field.type, value);
  }
  return messageToJson(type, message);
}

function defaultScalarJson(type: string): unknown {
  if (type === 'bool') return false;
  if (type === 'string' || type === 'bytes') return '';
  if (LONG_TYPES.has(type)) return '0';
  return 0;
}

function longText(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string') {
    return String(value);
  }
  // protobufjs's Long (it has its own toString).
  return (value as { toString(): string }).toString();
}

/** proto3 JSON of a Duration: seconds with 0, 3, 6 or 9 fraction digits and an `s`. */
export function durationText(seconds: bigint, nanos: number): string {
  const negative = seconds < 0n || nanos < 0;
  const s = seconds < 0n ? -seconds : seconds;
  const n = Math.abs(nanos);
  return `${negative ? '-' : ''}${s}${fraction(n)}s`;
}

function fraction(nanos: number): string {
  if (nanos === 0) return '';
  const digits = String(nanos).padStart(9, '0');
  if (nanos % 1_000_000 === 0) return `.${digits.slice(0, 3)}`;
  if (nanos % 1000 === 0) return `.${digits.slice(0, 6)}`;
  return `.${digits}`;
}

function timestampText(seconds: number, nanos: number): string {
  const base = new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  return `${base}${fraction(nanos)}Z`;
}

const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

function parseDuration(text: unknown, path: string): { seconds: string; nanos: number } {
  const m = typeof text === 'string' ? DURATION.exec(text) : null;
  if (m === null) throw new McpDecodeError(`${path}: ${JSON.stringify(text)} is not a duration like "1.5s"`);
  const sign = m[1] === '-' ? -1 : 1;
  const nanos = Number((m[3] ?? '').padEnd(9, '0'));
  return { seconds: `${m[1] ?? ''}${m[2] ?? '0'}`, nanos: sign * nanos };
}

function parseTimestamp(text: unknown, path: string): { seconds: number; nanos: number } {
  const ms = typeof text === 'string' ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw new McpDecodeError(`${path}: ${JSON.stringify(text)} is not an RFC 3339 time`);
  const frac = /\.(\d{1,9})/.exec(String(text))?.[1] ?? '';
  return { seconds: Math.floor(ms / 1000), nanos: Number(frac.padEnd(9, '0')) };
}

/**
 * proto3 JSON to the object form protobufjs's `fromObject` takes (proto field names, Durations
 * and Timestamps as `{seconds, nanos}`, wrappers as `{value}`). Unknown keys throw.
 */
export function jsonToMessageObject(type: Type, json: unknown, path: string): Record<string, unknown> {
  if (!isRecord(json)) throw new McpDecodeError(`${path}: expected an object`);
  const byKey = new Map<string, Field>();
  for (const field of type.fieldsArray) {
    byKey.set(field.name, field);
    byKey.set(jsonName(field), field);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    const field = byKey.get(key)?.resolve();
    if (field === undefined) throw new McpDecodeError(`${path}.${key}: unknown field of ${type.name}`);
    if (value === null || value === undefined) continue;
    const at = `${path}.${key}`;
    if (field.map) {
      if (!isRecord(value)) throw new McpDecodeError(`${at}: expected an object`);
      out[field.name] = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, valueFromJson(field, v, `${at}.${k}`)]),
      );
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw new McpDecodeError(`${at}: expected a list`);
      out[field.name] = value.map((v: unknown, i) => valueFromJson(field, v, `${at}[${i}]`));
    } else {
      out[field.name] = valueFromJson(field, value, at);
    }
  }
  return out;
}

function valueFromJson(field: Field, value: unknown, path: string): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    if (typeof value === 'string' && !(value in resolved.values)) {
      throw new McpDecodeError(`${path}: ${JSON.stringify(value)} is not a ${resolved.name} value`);
    }
    return value;
  }
  if (resolved instanceof protobuf.Type) {
    switch (resolved.fullName) {
      case '.google.protobuf.Duration':
        return parseDuration(value, path);
      case '.google.protobuf.Timestamp':
        return parseTimestamp(value, path);
      default:
        break;
    }
    if (WRAPPERS.has(resolved.fullName)) return { value };
    return jsonToMessageObject(resolved, value, path);
  }
  return value;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
