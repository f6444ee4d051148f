import { asRecord, asString, asStringMap, type JsonRecord } from './json.js';

/** The kinds Breeze validates and mutates. Istio kinds are accepted in every served version. */
export const HANDLED_KINDS = [
  'ServiceEntry',
  'VirtualService',
  'DestinationRule',
  'RedisService',
  'RedisDestination',
] as const;
export type HandledKind = (typeof HANDLED_KINDS)[number];

export const ISTIO_NETWORKING_GROUP = 'networking.istio.io';
export const REDIS_GROUP = 'redis.aeraki.io';

const GROUP_OF: Record<HandledKind, string> = {
  ServiceEntry: ISTIO_NETWORKING_GROUP,
  VirtualService: ISTIO_NETWORKING_GROUP,
  DestinationRule: ISTIO_NETWORKING_GROUP,
  RedisService: REDIS_GROUP,
  RedisDestination: REDIS_GROUP,
};

const VERSIONS_OF: Record<string, readonly string[]> = {
  [ISTIO_NETWORKING_GROUP]: ['v1', 'v1beta1', 'v1alpha3'],
  [REDIS_GROUP]: ['v1alpha1'],
};

/** Returns the handled kind for a group/version/kind, or undefined when Breeze does not handle it. */
export function handledKind(group: string, version: string, kind: string): HandledKind | undefined {
  const k = HANDLED_KINDS.find((h) => h === kind);
  if (k === undefined || GROUP_OF[k] !== group) return undefined;
  return VERSIONS_OF[group]?.includes(version) ? k : undefined;
}

/** The group, newest served version and kind of a handled kind (as in an AdmissionReview's request.kind). */
export function handledKindGvk(kind: HandledKind): { group: string; version: string; kind: HandledKind } {
  const group = GROUP_OF[kind];
  return { group, version: VERSIONS_OF[group]?.[0] ?? 'v1', kind };
}

/** Splits `group/version` (or the core `v1`) into its parts. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The handled kind of a manifest object (apiVersion + kind), or undefined. */
export function handledKindOf(obj: JsonRecord): HandledKind | undefined {
  const apiVersion = asString(obj.apiVersion);
  const kind = asString(obj.kind);
  if (apiVersion === undefined || kind === undefined) return undefined;
  const { group, version } = splitApiVersion(apiVersion);
  return handledKind(group, version, kind);
}

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly creationTimestamp: string | undefined;
  readonly resourceVersion: string | undefined;
}

/** Name and namespace only: the cheap part of metaOf, for the request path. */
export function objectRef(
  obj: JsonRecord,
  fallbackNamespace = 'default',
): { name: string; namespace: string } {
  const m = asRecord(obj.metadata);
  const ns = asString(m?.namespace);
  return {
    name: asString(m?.name) ?? asString(m?.generateName) ?? '',
    namespace: ns !== undefined && ns !== '' ? ns : fallbackNamespace,
  };
}

/** Reads metadata defensively; `fallbackNamespace` applies when the object carries none. */
export function metaOf(obj: JsonRecord, fallbackNamespace = 'default'): ObjectMeta {
  const m = asRecord(obj.metadata) ?? {};
  return {
    ...objectRef(obj, fallbackNamespace),
    annotations: asStringMap(m.annotations),
    labels: asStringMap(m.labels),
    creationTimestamp: asString(m.creationTimestamp),
    resourceVersion: asString(m.resourceVersion),
  };
}
