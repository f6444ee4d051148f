// CustomResourceDefinition schemas for the fake API server, applied as the real one applies them
// (k8s.io/apiextensions-apiserver): every object written (create, update, patch, server-side
// apply, after the mutating webhooks) is pruned of fields its version's openAPIV3Schema does not
// declare, then validated against it; a violation is a 422 Invalid whose causes name each field.
// What is followed:
// - pruning: unknown fields are dropped, except under x-kubernetes-preserve-unknown-fields and
//   in additionalProperties maps; apiVersion, kind and metadata at the root are never pruned;
//   with ?fieldValidation=Strict an unknown field is an error instead (400 BadRequest, `strict
//   decoding error: unknown field "spec.x"`), with Warn (the default) a `unknown field` warning;
// - x-kubernetes-int-or-string (an integer or a string), nullable (null allowed; otherwise null is
//   a type error), type, enum, required, minimum/maximum, min/maxLength, min/maxItems, pattern,
//   oneOf/anyOf/allOf/not, additionalProperties, items: by ajv;
// - messages in the shape of the real server's (`spec.ports[0].number: Invalid value: "string":
//   spec.ports[0].number in body must be of type integer: "string"`, `spec.hosts: Required
//   value`, `Unsupported value: "X": supported values: ...`), causes with their reason.
// Not followed: CEL rules (x-kubernetes-validations) are skipped (Istio 1.24's CRDs have 196; a
// CEL evaluator is out of scope for a test fake), formats are not checked (the real server only
// checks a few), defaults are not applied (Istio's and Breeze's CRDs declare none).
import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';

type JsonRecord = Record<string, unknown>;
type Schema = Record<string, unknown>;

function isRecord(v: unknown): v is JsonRecord {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One cause of a schema violation, as metav1.StatusCause encodes it. */
export interface SchemaCause {
  readonly reason: string;
  readonly message: string;
  readonly field: string;
}

export interface SchemaCheck {
  /** The object as it is stored: pruned. */
  readonly object: JsonRecord;
  /** Paths of the fields pruned (`spec.foo`). */
  readonly unknown: readonly string[];
  readonly causes: readonly SchemaCause[];
}

interface VersionSchema {
  readonly schema: Schema;
  readonly key: string;
}

// Compiling a large schema (a VirtualService version is ~100 KiB) costs a few hundred ms: one
// compilation per distinct schema per process, whatever the number of fake servers.
const compiled = new Map<string, ValidateFunction>();
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });

/** The openAPIV3Schema of each served version of each CRD loaded, by group, kind and version. */
export class CrdSchemas {
  private readonly byVersion = new Map<string, VersionSchema>();

  /** Loads every CustomResourceDefinition of a multi-document YAML text. */
  load(yamlText: string): this {
    for (const doc of parseAllDocuments(yamlText)) {
      const crd = doc.toJS() as unknown;
      if (!isRecord(crd) || crd.kind !== 'CustomResourceDefinition' || !isRecord(crd.spec)) continue;
      const spec = crd.spec;
      const group = String(spec.group);
      const kind = isRecord(spec.names) ? String(spec.names.kind) : '';
      for (const v of Array.isArray(spec.versions) ? spec.versions : []) {
        if (!isRecord(v) || v.served === false) continue;
        const schema =
          isRecord(v.schema) && isRecord(v.schema.openAPIV3Schema) ? v.schema.openAPIV3Schema : undefined;
        if (schema === undefined) continue;
        const key = createHash('sha256').update(JSON.stringify(schema)).digest('hex');
        this.byVersion.set(`${group}/${kind}/${String(v.name)}`, { schema, key });
      }
    }
    return this;
  }

  has(group: string, kind: string, version: string): boolean {
    return this.byVersion.has(`${group}/${kind}/${version}`);
  }

  /**
   * Prunes and validates `object` (not changed) against its version's schema. With `old` (an
   * update), a violation at a value the update leaves unchanged is tolerated, as the real server's
   * validation ratcheting does (CRDValidationRatcheting, on by default since Kubernetes 1.30): a
   * status write never fails for a spec stored before the schema got stricter.
   */
  check(
    group: string,
    kind: string,
    version: string,
    object: JsonRecord,
    old?: JsonRecord,
  ): SchemaCheck | undefined {
    const entry = this.byVersion.get(`${group}/${kind}/${version}`);
    if (entry === undefined) return undefined;
    const pruned = structuredClone(object);
    const unknown: string[] = [];
    for (const [k, v] of Object.entries(pruned)) {
      if (k === 'apiVersion' || k === 'kind' || k === 'metadata') continue;
      const props = isRecord(entry.schema.properties) ? entry.schema.properties : {};
      const sub = props[k];
      if (isRecord(sub)) prune(sub, v, k, unknown);
      else if (entry.schema['x-kubernetes-preserve-unknown-fields'] !== true) {
        Reflect.deleteProperty(pruned, k);
        unknown.push(k);
      }
    }
    let validate = compiled.get(entry.key);
    if (validate === undefined) {
      validate = ajv.compile(toJsonSchema(entry.schema, true));
      compiled.set(entry.key, validate);
    }
    const errors = validate(pruned)
      ? []
      : (validate.errors ?? []).filter(
          (e) =>
            old === undefined ||
            JSON.stringify(valueAt(e.instancePath, pruned)) !== JSON.stringify(valueAt(e.instancePath, old)),
        );
    return { object: pruned, unknown, causes: causesOf(errors, pruned) };
  }
}

/** Drops, in place, what `schema` does not declare; records each dropped field's path. */
function prune(schema: Schema, value: unknown, path: string, unknown: string[]): void {
  if (Array.isArray(value)) {
    if (isRecord(schema.items))
      value.forEach((item, i) => prune(schema.items as Schema, item, `${path}[${i}]`, unknown));
    return;
  }
  if (!isRecord(value)) return;
  const props = isRecord(schema.properties) ? schema.properties : undefined;
  const extra = isRecord(schema.additionalProperties) ? schema.additionalProperties : undefined;
  const preserve =
    schema['x-kubernetes-preserve-unknown-fields'] === true || schema.additionalProperties === true;
  if (props === undefined && extra === undefined) {
    if (!preserve && schema.type === 'object')
      for (const k of Object.keys(value)) drop(value, k, path, unknown);
    return;
  }
  for (const k of Object.keys(value)) {
    const sub = props?.[k];
    if (isRecord(sub)) prune(sub, value[k], `${path}.${k}`, unknown);
    else if (extra !== undefined) prune(extra, value[k], `${path}.${k}`, unknown);
    else if (!preserve) drop(value, k, path, unknown);
  }
}

function drop(value: JsonRecord, k: string, path: string, unknown: string[]): void {
  Reflect.deleteProperty(value, k);
  unknown.push(`${path}.${k}`);
}

/** A CRD schema as a JSON Schema ajv understands: int-or-string and nullable spelled out. */
function toJsonSchema(schema: Schema, root = false): Schema {
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'description' || k.startsWith('x-kubernetes-') || k === 'nullable' || k === 'format') continue;
    if (k === 'properties' && isRecord(v)) {
      const props: Schema = {};
      for (const [p, s] of Object.entries(v))
        props[p] = root && p === 'metadata' ? {} : isRecord(s) ? toJsonSchema(s) : s;
      out.properties = props;
    } else if ((k === 'items' || k === 'additionalProperties' || k === 'not') && isRecord(v)) {
      out[k] = toJsonSchema(v);
    } else if ((k === 'oneOf' || k === 'anyOf' || k === 'allOf') && Array.isArray(v)) {
      out[k] = v.map((s: unknown) => (isRecord(s) ? toJsonSchema(s) : s));
    } else out[k] = v;
  }
  if (schema['x-kubernetes-int-or-string'] === true) {
    delete out.type;
    const either = { anyOf: [{ type: 'integer' }, { type: 'string' }] };
    out.allOf = [...(Array.isArray(out.allOf) ? out.allOf : []), either];
  }
  if (schema.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  return out;
}

/** `/spec/ports/0/number` → `spec.ports[0].number`, reading the object to tell indexes from keys. */
function fieldOf(instancePath: string, object: JsonRecord): string {
  let field = '';
  let at: unknown = object;
  for (const raw of instancePath.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(at)) {
      field += `[${seg}]`;
      at = at[Number(seg)];
    } else {
      field += field === '' ? seg : `.${seg}`;
      at = isRecord(at) ? at[seg] : undefined;
    }
  }
  return field;
}

function valueAt(instancePath: string, object: JsonRecord): unknown {
  let at: unknown = object;
  for (const raw of instancePath.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    at = Array.isArray(at) ? at[Number(seg)] : isRecord(at) ? at[seg] : undefined;
  }
  return at;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** ajv's errors as the real server words them (the nested errors of a failed oneOf/anyOf are left out). */
function causesOf(errors: readonly ErrorObject[], object: JsonRecord): SchemaCause[] {
  const causes: SchemaCause[] = [];
  const seen = new Set<string>();
  const failedCombinators = errors
    .filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'not')
    .map((e) => e.schemaPath);
  for (const e of errors) {
    if (failedCombinators.some((p) => e.schemaPath !== p && e.schemaPath.startsWith(`${p}/`))) continue;
    const field = fieldOf(e.instancePath, object);
    const value = valueAt(e.instancePath, object);
    const shown = (JSON.stringify(value) as string | undefined) ?? 'null';
    let cause: SchemaCause;
    switch (e.keyword) {
      case 'required': {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        cause = {
          reason: 'FieldValueRequired',
          message: 'Required value',
          field: field === '' ? missing : `${field}.${missing}`,
        };
        break;
      }
      case 'type': {
        const want = String((e.params as { type: string | string[] }).type).split(',')[0] ?? '';
        const got = typeName(value);
        cause = {
          reason: 'FieldValueTypeInvalid',
          message: `Invalid value: "${got}": ${field} in body must be of type ${want}: "${got}"`,
          field,
        };
        break;
      }
      case 'enum': {
        const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map((v) =>
          JSON.stringify(v),
        );
        cause = {
          reason: 'FieldValueNotSupported',
          message: `Unsupported value: ${shown}: supported values: ${allowed.join(', ')}`,
          field,
        };
        break;
      }
      case 'maximum':
      case 'minimum': {
        const limit = (e.params as { limit: number }).limit;
        const relation = e.keyword === 'maximum' ? 'less' : 'greater';
        cause = {
          reason: 'FieldValueInvalid',
          message: `Invalid value: ${shown}: ${field} in body should be ${relation} than or equal to ${limit}`,
          field,
        };
        break;
      }
      case 'maxLength':
        cause = {
          reason: 'FieldValueTooLong',
          message: `Too long: may not be more than ${(e.params as { limit: number }).limit} bytes`,
          field,
        };
        break;
      case 'maxItems':
        cause = {
          reason: 'FieldValueTooMany',
          message: `Too many: ${Array.isArray(value) ? value.length : 0}: must have at most ${(e.params as { limit: number }).limit} items`,
          field,
        };
        break;
      default:
        cause = {
          reason: 'FieldValueInvalid',
          message: `Invalid value: ${shown.slice(0, 200)}: ${e.message ?? e.keyword}`,
          field,
        };
    }
    const key = `${cause.field}\u0000${cause.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      causes.push(cause);
    }
  }
  return causes;
}
