/**
 * Readers for RedisService / RedisDestination fields. Admission normally keeps these objects
 * valid, but generation also sees objects that never went through it (files, objects created
 * before the webhook): every reader returns the value in the shape Envoy wants or throws a
 * GENERATION error naming the field. Nothing found under an `auth` field is ever rendered.
 */
import { BreezeError } from '../../errors.js';
import { asArray, isRecord, type JsonRecord } from '../../model/json.js';
import { goDurationNanos } from '../../model/duration.js';
import { sourceOf } from '../shared/envoyfilter.js';

export const UINT32_MAX = 4294967295;

/** protobuf JSON `google.protobuf.Duration`, as Envoy accepts it (at most 315576000000s). */
const PROTO_DURATION = /^\d{1,12}(\.\d{1,9})?s$/;
const MAX_DURATION_SECONDS = 315576000000n;

/** Where a value came from, for messages: `RedisService redis/cache` and a field path. */
export interface Origin {
  /** `RedisService redis/cache` */
  readonly object: string;
  /** Namespace of the object (Secrets and short host names resolve in it). */
  readonly namespace: string;
}

export function originOf(object: JsonRecord): Origin {
  const ref = sourceOf(object);
  return { object: `${ref.kind} ${ref.namespace}/${ref.name}`, namespace: ref.namespace };
}

export function fail(message: string): never {
  throw new BreezeError('GENERATION', message);
}

export function failAt(origin: Origin, path: string, problem: string): never {
  return fail(`${origin.object} ${path} ${problem}`);
}

/** A scalar for a message; objects and lists only by kind (they may hold a password). */
export function showValue(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value !== null && typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  return String(value);
}

/** An optional object: undefined when absent or null (protobuf JSON reads null as unset). */
export function optRecord(origin: Origin, path: string, value: unknown): JsonRecord | undefined {
  if (value === undefined || value === null) return undefined;
  if (isRecord(value)) return value;
  return failAt(origin, path, `must be an object, got ${showValue(value)}`);
}

export function optList(origin: Origin, path: string, value: unknown): readonly unknown[] {
  if (value === undefined || value === null) return [];
  return asArray(value) ?? failAt(origin, path, `must be a list, got ${showValue(value)}`);
}

export function optBoolean(origin: Origin, path: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  return failAt(origin, path, `must be true or false, got ${showValue(value)}`);
}

export function optString(origin: Origin, path: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  return failAt(origin, path, `must be a string, got ${showValue(value)}`);
}

/** An optional non-negative integer up to `max`; 0 counts as set. */
export function optInteger(origin: Origin, path: string, value: unknown, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max) return value;
  return failAt(origin, path, `must be an integer from 0 to ${max}, got ${showValue(value)}`);
}

/** An optional port; 0 means unset (the proto3 default), as in Aeraki. */
export function optPort(origin: Origin, path: string, value: unknown): number | undefined {
  const port = optInteger(origin, path, value, 65535);
  return port === 0 ? undefined : port;
}

/** An optional protobuf JSON duration (`"1.5s"`), returned as written, with its nanoseconds. */
export function optDuration(
  origin: Origin,
  path: string,
  value: unknown,
): { text: string; nanos: bigint } | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' && PROTO_DURATION.test(value)) {
    const nanos = goDurationNanos(value);
    if (nanos !== undefined && nanos <= MAX_DURATION_SECONDS * 1_000_000_000n) return { text: value, nanos };
  }
  return failAt(
    origin,
    path,
    `must be a protobuf duration (seconds with an "s" suffix, e.g. "1.5s"), got ${showValue(value)}`,
  );
}

/** A required non-empty string. */
export function reqString(origin: Origin, path: string, value: unknown, example: string): string {
  const s = optString(origin, path, value);
  if (s === undefined || s === '') return failAt(origin, path, `is required, e.g. ${example}`);
  return s;
}

/** A `Percent` (`{value}`, greater than 0 and at most 100) as Envoy's FractionalPercent. */
export function optPercent(origin: Origin, path: string, value: unknown): JsonRecord | undefined {
  const p = optRecord(origin, path, value);
  if (p === undefined) return undefined;
  const v = p.value;
  if (typeof v !== 'number' || !(v > 0 && v <= 100)) {
    return failAt(
      origin,
      `${path}.value`,
      `must be a number greater than 0 and at most 100, got ${showValue(v)}`,
    );
  }
  return { numerator: Math.round(v * 10000), denominator: 'MILLION' };
}
