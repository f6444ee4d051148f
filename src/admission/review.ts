import { BreezeError } from '../errors.js';
import { asRecord, asString, isRecord, type JsonRecord } from '../model/json.js';
import { quote } from '../model/limits.js';
import type { DenialSubject, Findings, Problem } from './findings.js';
import {
  boundWarnings,
  denialMessage,
  formatProblems,
  listProblems,
  moreProblems,
  show,
} from './findings.js';

export const REVIEW_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;
export type ReviewVersion = (typeof REVIEW_VERSIONS)[number];
export const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** The parts of an AdmissionReview request Breeze uses, already checked. */
export interface AdmissionRequest {
  readonly apiVersion: ReviewVersion;
  readonly uid: string;
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly operation: Operation;
  readonly dryRun: boolean;
  readonly user: string;
  /** The object as sent (CREATE, UPDATE); absent on DELETE. */
  readonly object: JsonRecord | undefined;
  /** The stored object (UPDATE, DELETE). */
  readonly oldObject: JsonRecord | undefined;
}

/** Longest request.uid echoed (the API server sends a 36-character UUID). */
export const MAX_UID_LENGTH = 256;

/**
 * Decodes an AdmissionReview. The uid is read first: once `request.uid` is readable, every other
 * defect (wrong apiVersion or kind, missing or broken fields) throws a ReviewError carrying it, so
 * the answer is an in-band denial with code 400 (a webhook with failurePolicy Ignore must never
 * be bypassed with a bare 4xx). Only a body whose uid cannot be read throws BAD_REQUEST (HTTP 400).
 */
export function decodeReview(body: unknown): AdmissionRequest {
  if (!isRecord(body))
    throw new BreezeError('BAD_REQUEST', 'the body must be a JSON object (an AdmissionReview)');
  const request = asRecord(body.request);
  const uid = asString(request?.uid);
  const apiVersion = asString(body.apiVersion);
  const version = REVIEW_VERSIONS.find((v) => v === apiVersion);
  // Built only for a review that fails them: an ordinary request makes neither string.
  const versionMessage = (): string =>
    `apiVersion must be admission.k8s.io/v1 or admission.k8s.io/v1beta1, got ${
      apiVersion === undefined ? 'null' : quote(apiVersion)
    }`;
  const kindMessage = (): string => `kind must be AdmissionReview, got ${show(body.kind ?? null)}`;
  if (request === undefined || uid === undefined || uid === '' || uid.length > MAX_UID_LENGTH) {
    if (version === undefined) throw new BreezeError('BAD_REQUEST', versionMessage());
    if (body.kind !== 'AdmissionReview') throw new BreezeError('BAD_REQUEST', kindMessage());
    if (request === undefined)
      throw new BreezeError('BAD_REQUEST', 'request is missing: not an AdmissionReview request');
    throw new BreezeError(
      'BAD_REQUEST',
      uid !== undefined && uid.length > MAX_UID_LENGTH
        ? `request.uid is longer than ${MAX_UID_LENGTH} characters`
        : 'request.uid is missing or empty',
    );
  }

  const fail = (message: string): never => {
    throw new ReviewError(version ?? 'admission.k8s.io/v1', uid, message);
  };
  if (version === undefined) fail(versionMessage());
  if (body.kind !== 'AdmissionReview') fail(kindMessage());
  const gvk = asRecord(request.kind) ?? fail('request.kind must be an object with group, version and kind');
  const kind = asString(gvk.kind) ?? fail('request.kind.kind must be a string');
  const operation =
    OPERATIONS.find((o) => o === request.operation) ??
    fail(`request.operation must be one of ${OPERATIONS.join(', ')}`);
  const object = optionalObject(request.object, 'request.object', fail);
  const oldObject = optionalObject(request.oldObject, 'request.oldObject', fail);
  if ((operation === 'CREATE' || operation === 'UPDATE') && object === undefined) {
    fail(`request.object is required for ${operation}`);
  }
  return {
    apiVersion: version ?? 'admission.k8s.io/v1',
    uid,
    group: asString(gvk.group) ?? '',
    version: asString(gvk.version) ?? '',
    kind,
    namespace: asString(request.namespace) ?? '',
    name: asString(request.name) ?? '',
    operation,
    dryRun: request.dryRun === true,
    user: asString(asRecord(request.userInfo)?.username) ?? '',
    object,
    oldObject,
  };
}

function optionalObject(value: unknown, path: string, fail: (m: string) => never): JsonRecord | undefined {
  if (value === undefined || value === null) return undefined;
  return asRecord(value) ?? fail(`${path} must be an object`);
}

/** A review whose uid is known but which is otherwise malformed: answered in-band with code 400. */
export class ReviewError extends BreezeError {
  constructor(
    readonly apiVersion: ReviewVersion,
    readonly uid: string,
    message: string,
  ) {
    super('BAD_REQUEST', message);
  }
}

export interface JsonPatchOp {
  readonly op: string;
  readonly path: string;
  readonly value?: unknown;
  readonly from?: string;
}

/** The decision before it is encoded. */
export interface Decision {
  readonly allowed: boolean;
  /** HTTP-like status carried in `response.status.code` (422 denial, 400 bad request, 500 internal). */
  readonly code: number;
  readonly reason?: string;
  readonly message?: string;
  readonly problems?: readonly Problem[];
  /** The object denied: named in the message and in `status.details` (kind, group, name). */
  readonly subject?: DenialSubject;
  readonly warnings?: readonly string[];
  /** Problems and warnings a validator counted past its caps (see FindingsBuilder): counted in the answer. */
  readonly problemsNotKept?: number;
  readonly warningsNotKept?: number;
  readonly patch?: readonly JsonPatchOp[];
}

export function allow(warnings: readonly string[] = [], patch: readonly JsonPatchOp[] = []): Decision {
  return { allowed: true, code: 200, warnings, patch };
}

/** A validator's verdict on an object: denied when it found a problem, else allowed with its warnings. */
export function decisionOf(findings: Findings, subject: DenialSubject): Decision {
  const counts = {
    ...(findings.problemsNotKept === undefined ? {} : { problemsNotKept: findings.problemsNotKept }),
    ...(findings.warningsNotKept === undefined ? {} : { warningsNotKept: findings.warningsNotKept }),
  };
  const d =
    findings.problems.length > 0
      ? deny(findings.problems, findings.warnings, subject, findings.problemsNotKept)
      : allow(findings.warnings);
  return { ...d, ...counts };
}

/**
 * A denial of an object for the problems found. With a subject (every denial Breeze sends), the
 * status is code 422 with no reason, a message naming the object, every field path and why (see
 * denialMessage), and details with kind, group, name and one cause per problem. The reason is
 * left out on purpose: kubectl prints a status of reason Invalid that has details as
 * `The <Kind> "<name>" is invalid:` and its causes only, dropping the message, and with it the
 * API server's `admission webhook "<name>" denied the request`: the user would not learn that
 * Breeze refused it. Without a reason kubectl prints the whole message (test/kubectl/ holds the
 * exact text a real kubectl prints). Without a subject: reason Invalid, problems joined by `; `.
 */
export function deny(
  problems: readonly Problem[],
  warnings: readonly string[] = [],
  subject?: DenialSubject,
  /** Problems found past those listed in `problems`, counted in the message. */
  more = 0,
): Decision {
  if (subject === undefined)
    return {
      allowed: false,
      code: 422,
      reason: 'Invalid',
      message: formatProblems(problems, more),
      problems,
      warnings,
    };
  return {
    allowed: false,
    code: 422,
    message: denialMessage(subject, problems, 'is invalid', more),
    problems,
    subject,
    warnings,
  };
}

/** Longest name, group or kind carried in `status.details` (Kubernetes names are at most 253). */
const MAX_DETAILS_FIELD_LENGTH = 253;

function detailsOf(s: DenialSubject): JsonRecord {
  const cutField = (v: string): string => v.slice(0, MAX_DETAILS_FIELD_LENGTH);
  return { name: cutField(s.name), group: cutField(s.group), kind: cutField(s.kind) };
}

/** Longest `status.message` of an answer (a denial lists its problems within this). */
export const MAX_STATUS_MESSAGE_LENGTH = 20_000;

/**
 * Encodes the response AdmissionReview in the request's version, always echoing the uid. Bounded
 * whatever the decision holds: at most MAX_PROBLEMS_LISTED causes (then one counting the rest),
 * at most MAX_WARNINGS warnings, a message of at most MAX_STATUS_MESSAGE_LENGTH characters.
 * Builds plain data only, so it cannot throw.
 */
export function encodeReview(apiVersion: ReviewVersion, uid: string, d: Decision): JsonRecord {
  const response: JsonRecord = { uid, allowed: d.allowed };
  if (!d.allowed) {
    const message = d.message ?? '';
    const status: JsonRecord = {
      status: 'Failure',
      code: d.code,
      message:
        message.length <= MAX_STATUS_MESSAGE_LENGTH
          ? message
          : `${message.slice(0, MAX_STATUS_MESSAGE_LENGTH - 1)}…`,
    };
    if (d.reason !== undefined) status.reason = d.reason;
    if (d.problems !== undefined && d.problems.length > 0) {
      const { listed, more } = listProblems(d.problems, d.problemsNotKept);
      // metav1.StatusCause carries its type under the JSON key `reason` (a `type` key is dropped).
      const causes: JsonRecord[] = listed.map((p) => ({
        reason: 'FieldValueInvalid',
        field: p.path,
        message: p.message,
      }));
      if (more > 0) causes.push({ reason: 'FieldValueInvalid', field: '', message: moreProblems(more) });
      status.details = d.subject === undefined ? { causes } : { ...detailsOf(d.subject), causes };
    } else if (d.subject !== undefined) {
      status.details = detailsOf(d.subject);
    }
    response.status = status;
  }
  if (d.warnings !== undefined && d.warnings.length > 0)
    response.warnings = boundWarnings(d.warnings, d.warningsNotKept);
  if (d.allowed && d.patch !== undefined && d.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(d.patch)).toString('base64');
  }
  return { apiVersion, kind: 'AdmissionReview', response };
}
