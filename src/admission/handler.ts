import { BreezeError } from '../errors.js';
import { checkBounds, DEFAULT_BOUNDS } from '../model/bounds.js';
import { asRecord, asString, type JsonRecord } from '../model/json.js';
import { handledKind, objectRef, type HandledKind } from '../model/kinds.js';
import type { ConfigView } from '../cache/store.js';
import type { RedisAuthMode } from '../protocols/redis/authmode.js';
import type { Protocol } from '../model/protocol.js';
import { BudgetExceeded, CpuBudget } from './budget.js';
import type { DenialSubject } from './findings.js';
import { guardEnvoyFilter } from './envoyfilter-guard.js';
import { mutateServiceEntry } from './mutators/serviceentry.js';
import {
  allow,
  decisionOf,
  decodeReview,
  deny,
  encodeReview,
  ReviewError,
  type AdmissionRequest,
  type Decision,
  type Operation,
} from './review.js';
import { VALIDATORS } from './validators/index.js';
import type { VipAllocator } from './vip.js';

export type Webhook = 'validate' | 'mutate';

/** An admitted, non-dry-run change of a handled kind: what the admission feed records. */
export interface AdmittedChange {
  readonly operation: Operation;
  readonly kind: HandledKind;
  readonly namespace: string;
  readonly name: string;
  /** The object as it will be stored (after this webhook's patch); undefined on DELETE. */
  readonly object: JsonRecord | undefined;
  /** DELETE: the resourceVersion of the object being deleted (what a confirmation must differ from). */
  readonly deletedVersion?: string;
}

export interface AdmissionDeps {
  readonly view: ConfigView;
  readonly vips: VipAllocator;
  /** Called for every allowed, non-dryRun change seen by the validating webhook. */
  readonly onAdmitted?: (change: AdmittedChange) => void;
  /** Usernames allowed to change Breeze's EnvoyFilters (Breeze's own service account). */
  readonly breezeUsers?: readonly string[];
  /** The server's `--redis-auth-mode`, for the validators' warnings. */
  readonly redisAuthMode?: RedisAuthMode;
  /** The server's `--protocols` (admission warns about ports of other protocols); absent: no such warnings. */
  readonly protocols?: ReadonlySet<Protocol>;
  /** A new CPU budget for one request (default: REQUEST_CPU_BUDGET_MS of wall time from now). */
  readonly newBudget?: () => CpuBudget;
}

/** One line of the decision log (no object bodies, no secrets). */
export interface DecisionRecord {
  readonly webhook: Webhook;
  readonly uid: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly operation: string;
  readonly dryRun: boolean;
  readonly user: string;
  readonly allowed: boolean;
  readonly code: number;
}

export interface AdmissionResult {
  /** 200 for any decision, 400 for a body that is not a review, 500 for an internal error. */
  readonly httpStatus: 200 | 400 | 500;
  readonly body: JsonRecord;
  readonly record: DecisionRecord | undefined;
  readonly error?: unknown;
}

/**
 * The whole admission path for one HTTP body: decode, decide, encode, then (only then) record.
 * Never throws: a body that is not a review is a 400, a bug in a validator is a 500 that still
 * echoes the uid. Nothing changes Breeze's state (the admission feed, VIP reservations) before
 * every step that can fail has succeeded: the feed is called last, after the answer is encoded.
 */
export function admit(webhook: Webhook, body: unknown, deps: AdmissionDeps): AdmissionResult {
  let req: AdmissionRequest;
  try {
    req = decodeReview(body);
  } catch (err) {
    if (err instanceof ReviewError) {
      const d: Decision = { allowed: false, code: 400, reason: 'BadRequest', message: err.message };
      return { httpStatus: 200, body: encodeReview(err.apiVersion, err.uid, d), record: undefined };
    }
    const message = err instanceof BreezeError ? err.message : 'the body is not an AdmissionReview';
    return { httpStatus: 400, body: { message }, record: undefined };
  }
  try {
    const { decision, commit } = decide(webhook, req, deps);
    const result: AdmissionResult = {
      httpStatus: 200,
      body: encodeReview(req.apiVersion, req.uid, decision),
      record: recordOf(webhook, req, decision),
    };
    commit?.();
    return result;
  } catch (error) {
    const d: Decision = {
      allowed: false,
      code: 500,
      reason: 'InternalError',
      message: 'internal error in Breeze',
    };
    return {
      httpStatus: 500,
      body: encodeReview(req.apiVersion, req.uid, d),
      record: recordOf(webhook, req, d),
      error,
    };
  }
}

/** Longest kind, namespace, name or user a decision record (a log line, a metric) carries. */
const MAX_RECORD_FIELD_LENGTH = 253;

function short(value: string): string {
  return value.length <= MAX_RECORD_FIELD_LENGTH ? value : `${value.slice(0, MAX_RECORD_FIELD_LENGTH)}…`;
}

function recordOf(webhook: Webhook, req: AdmissionRequest, d: Decision): DecisionRecord {
  const meta = objectRef(req.object ?? req.oldObject ?? {}, req.namespace);
  return {
    webhook,
    uid: req.uid,
    kind: short(req.kind),
    namespace: short(req.namespace !== '' ? req.namespace : meta.namespace),
    name: short(req.name !== '' ? req.name : meta.name),
    operation: req.operation,
    dryRun: req.dryRun,
    user: short(req.user),
    allowed: d.allowed,
    code: d.code,
  };
}

/** A decision and what recording it changes, run by admit() only once the answer is encoded. */
interface Decided {
  readonly decision: Decision;
  readonly commit?: () => void;
}

/** A denial naming a bound the request exceeds (never a 500). */
function tooBig(path: string, message: string, subject: DenialSubject): Decided {
  return { decision: deny([{ path: path === '' ? '(object)' : path, message }], [], subject) };
}

function decide(webhook: Webhook, req: AdmissionRequest, deps: AdmissionDeps): Decided {
  if (webhook === 'validate') {
    const guarded = guardEnvoyFilter(req, deps.breezeUsers ?? []);
    if (guarded !== undefined) return { decision: guarded };
  }
  const kind = handledKind(req.group, req.version, req.kind);
  if (kind === undefined) return { decision: allow() };
  const source = req.object ?? req.oldObject ?? {};
  const meta = objectRef(source, req.namespace !== '' ? req.namespace : 'default');
  const namespace = req.namespace !== '' ? req.namespace : meta.namespace;
  const name = req.name !== '' ? req.name : meta.name;
  const subject: DenialSubject = { kind, group: req.group, name };

  if (req.operation === 'DELETE' || req.operation === 'CONNECT' || req.object === undefined) {
    // Only a few metadata fields of oldObject are read: a DELETE is never denied for its size.
    if (webhook === 'validate' && req.operation === 'DELETE' && !req.dryRun) {
      const deletedVersion = asString(asRecord(req.oldObject?.metadata)?.resourceVersion);
      const onAdmitted = deps.onAdmitted;
      return {
        decision: allow(),
        commit: () =>
          onAdmitted?.({ operation: 'DELETE', kind, namespace, name, object: undefined, deletedVersion }),
      };
    }
    return { decision: allow() };
  }

  // Bounds first: nothing below (validators, mutators, the cache, canonicalJson) sees an object
  // nested deeper, or holding longer strings or lists, than Breeze's limits. The check counts
  // against the request's CPU budget too.
  const budget = deps.newBudget?.() ?? new CpuBudget();
  try {
    const violation = checkBounds(req.object, DEFAULT_BOUNDS, [], budget);
    if (violation !== undefined) return tooBig(violation.path, violation.message, subject);
    // The stored object is only read for a few fields (the mutator's previous VIP); one beyond
    // the bounds (stored before Breeze was installed) must not block the update that fixes it.
    const oldViolation =
      req.oldObject === undefined ? undefined : checkBounds(req.oldObject, DEFAULT_BOUNDS, [], budget);
    const oldObject = oldViolation === undefined ? req.oldObject : undefined;
    if (webhook === 'mutate')
      return {
        decision: mutate(kind, req.object, { namespace, name, subject, req, deps, oldObject, budget }),
      };
    const findings = VALIDATORS[kind](req.object, {
      view: deps.view,
      namespace,
      budget,
      ...(deps.redisAuthMode === undefined ? {} : { redisAuthMode: deps.redisAuthMode }),
      ...(deps.protocols === undefined ? {} : { protocols: deps.protocols }),
    });
    const decision = decisionOf(findings, subject);
    if (!decision.allowed) return { decision };
    if (req.dryRun || deps.onAdmitted === undefined) return { decision };
    const onAdmitted = deps.onAdmitted;
    const change: AdmittedChange = { operation: req.operation, kind, namespace, name, object: req.object };
    return { decision, commit: () => onAdmitted(change) };
  } catch (err) {
    if (err instanceof BudgetExceeded)
      return { decision: deny([{ path: '(object)', message: err.message }], [], subject) };
    throw err;
  }
}

/**
 * The mutator runs last on the mutating path and its VIP reservation is its last step: nothing
 * after it (encoding the answer) can fail, so no VIP is reserved for a request that then fails.
 */
function mutate(
  kind: HandledKind,
  object: JsonRecord,
  c: {
    namespace: string;
    name: string;
    subject: DenialSubject;
    req: AdmissionRequest;
    deps: AdmissionDeps;
    oldObject: JsonRecord | undefined;
    budget: CpuBudget;
  },
): Decision {
  if (kind !== 'ServiceEntry') return allow();
  const result = mutateServiceEntry(object, {
    namespace: c.namespace,
    name: c.name,
    oldObject: c.oldObject,
    vips: c.deps.vips,
    dryRun: c.req.dryRun,
    budget: c.budget,
  });
  if (!result.ok) return deny([{ path: result.path, message: result.message }], [], c.subject);
  return allow([], result.patch);
}
