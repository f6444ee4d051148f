import { BreezeError } from '../errors.js';
import { asRecord, asString, type JsonRecord } from '../model/json.js';
import { handledKind, objectRef, type HandledKind } from '../model/kinds.js';
import type { ConfigView } from '../cache/store.js';
import { guardEnvoyFilter } from './envoyfilter-guard.js';
import { mutateServiceEntry } from './mutators/serviceentry.js';
import {
  allow,
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
 * The whole admission path for one HTTP body: decode, decide, encode. Never throws: a body that
 * is not a review is a 400, a bug in a validator is a 500 that still echoes the uid.
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
  let decision: Decision;
  try {
    decision = decide(webhook, req, deps);
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
  return {
    httpStatus: 200,
    body: encodeReview(req.apiVersion, req.uid, decision),
    record: recordOf(webhook, req, decision),
  };
}

function recordOf(webhook: Webhook, req: AdmissionRequest, d: Decision): DecisionRecord {
  const meta = objectRef(req.object ?? req.oldObject ?? {}, req.namespace);
  return {
    webhook,
    uid: req.uid,
    kind: req.kind,
    namespace: req.namespace !== '' ? req.namespace : meta.namespace,
    name: req.name !== '' ? req.name : meta.name,
    operation: req.operation,
    dryRun: req.dryRun,
    user: req.user,
    allowed: d.allowed,
    code: d.code,
  };
}

function decide(webhook: Webhook, req: AdmissionRequest, deps: AdmissionDeps): Decision {
  if (webhook === 'validate') {
    const guarded = guardEnvoyFilter(req, deps.breezeUsers ?? []);
    if (guarded !== undefined) return guarded;
  }
  const kind = handledKind(req.group, req.version, req.kind);
  if (kind === undefined) return allow();
  const source = req.object ?? req.oldObject ?? {};
  const meta = objectRef(source, req.namespace !== '' ? req.namespace : 'default');
  const namespace = req.namespace !== '' ? req.namespace : meta.namespace;
  const name = req.name !== '' ? req.name : meta.name;

  if (req.operation === 'DELETE' || req.operation === 'CONNECT' || req.object === undefined) {
    if (webhook === 'validate' && req.operation === 'DELETE' && !req.dryRun) {
      const deletedVersion = asString(asRecord(req.oldObject?.metadata)?.resourceVersion);
      deps.onAdmitted?.({ operation: 'DELETE', kind, namespace, name, object: undefined, deletedVersion });
    }
    return allow();
  }

  if (webhook === 'mutate') return mutate(kind, req.object, { namespace, name, req, deps });

  const findings = VALIDATORS[kind](req.object, { view: deps.view, namespace });
  if (findings.problems.length > 0) return deny(findings.problems, findings.warnings);
  if (!req.dryRun) deps.onAdmitted?.({ operation: req.operation, kind, namespace, name, object: req.object });
  return allow(findings.warnings);
}

function mutate(
  kind: HandledKind,
  object: JsonRecord,
  c: { namespace: string; name: string; req: AdmissionRequest; deps: AdmissionDeps },
): Decision {
  if (kind !== 'ServiceEntry') return allow();
  const result = mutateServiceEntry(object, {
    namespace: c.namespace,
    name: c.name,
    oldObject: c.req.oldObject,
    vips: c.deps.vips,
    dryRun: c.req.dryRun,
  });
  if (!result.ok) return deny([{ path: result.path, message: result.message }]);
  return allow([], result.patch);
}
