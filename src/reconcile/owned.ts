// What makes an EnvoyFilter Breeze's, and when an existing one already is what Breeze wants.
import { asRecord, asString, asStringMap, type JsonRecord } from '../model/json.js';
import {
  CONTENT_HASH_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SERVICE_ANNOTATION,
  SOURCES_ANNOTATION,
} from '../protocols/shared/envoyfilter.js';

/** Carries `app.kubernetes.io/managed-by: breeze`: the only objects Breeze ever changes or deletes. */
export function isBreezeOwned(object: JsonRecord | undefined): boolean {
  return labelsOf(object)[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

export function labelsOf(object: JsonRecord | undefined): Record<string, string> {
  return asStringMap(asRecord(object?.metadata)?.labels);
}

export function annotationsOf(object: JsonRecord | undefined): Record<string, string> {
  return asStringMap(asRecord(object?.metadata)?.annotations);
}

/** `namespace/name` of an object. */
export function idOf(object: JsonRecord): string {
  const m = asRecord(object.metadata);
  return `${asString(m?.namespace) ?? ''}/${asString(m?.name) ?? ''}`;
}

/** The owning service key of one of Breeze's EnvoyFilters (breeze.io/service), if recorded. */
export function serviceKeyOf(object: JsonRecord): string | undefined {
  const k = annotationsOf(object)[SERVICE_ANNOTATION];
  return k === undefined || k === '' ? undefined : k;
}

/** The source objects (`Kind/ns/name`) recorded in breeze.io/sources. */
export function sourcesOf(object: JsonRecord): string[] {
  const s = annotationsOf(object)[SOURCES_ANNOTATION];
  return s === undefined || s === '' ? [] : s.split(',');
}

/**
 * True when `actual` already is `desired` as far as Breeze cares, cheaply: the same content hash
 * (labels and spec, computed by the generator) and every label and annotation Breeze sets present
 * with the same value. Labels or annotations others add are left alone.
 */
export function sameContent(desired: JsonRecord, actual: JsonRecord | undefined): boolean {
  if (actual === undefined) return false;
  const da = annotationsOf(desired);
  const aa = annotationsOf(actual);
  if (
    da[CONTENT_HASH_ANNOTATION] === undefined ||
    da[CONTENT_HASH_ANNOTATION] !== aa[CONTENT_HASH_ANNOTATION]
  )
    return false;
  for (const [k, v] of Object.entries(da)) if (aa[k] !== v) return false;
  const al = labelsOf(actual);
  for (const [k, v] of Object.entries(labelsOf(desired))) if (al[k] !== v) return false;
  return true;
}
