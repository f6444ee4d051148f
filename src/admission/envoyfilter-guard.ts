import { asRecord, asString, asStringMap, type JsonRecord } from '../model/json.js';
import { MAX_QUOTED_LENGTH, quote } from '../model/limits.js';
import {
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SERVICE_ANNOTATION,
  SOURCES_ANNOTATION,
} from '../protocols/shared/envoyfilter.js';
import { denialMessage } from './findings.js';
import type { AdmissionRequest, Decision } from './review.js';

/** Kubernetes' own controllers that must always be able to remove objects (namespace deletion, GC). */
export const SYSTEM_USERS: readonly string[] = [
  'system:serviceaccount:kube-system:namespace-controller',
  'system:serviceaccount:kube-system:generic-garbage-collector',
];

function breezeOwned(object: JsonRecord | undefined): boolean {
  return asStringMap(asRecord(object?.metadata)?.labels)[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

/**
 * Protects what Breeze owns: a create, update or delete of an EnvoyFilter labelled as Breeze's
 * (before or after the change) by anyone but Breeze itself or Kubernetes' own controllers is
 * denied, pointing at the object to edit instead. Returns undefined when the request is none of
 * its business. The webhook entry that sends EnvoyFilters here uses failurePolicy Ignore, so this
 * never blocks the cluster while Breeze is down.
 */
export function guardEnvoyFilter(
  req: AdmissionRequest,
  breezeUsers: readonly string[],
): Decision | undefined {
  if (req.group !== 'networking.istio.io' || req.kind !== 'EnvoyFilter') return undefined;
  if (!breezeOwned(req.object) && !breezeOwned(req.oldObject)) return undefined;
  if (breezeUsers.includes(req.user) || SYSTEM_USERS.includes(req.user)) return undefined;
  const annotations = asStringMap(asRecord((req.oldObject ?? req.object)?.metadata)?.annotations);
  const service = shown(annotations[SERVICE_ANNOTATION]);
  const sources = shown(annotations[SOURCES_ANNOTATION]);
  const editInstead =
    service !== undefined
      ? `edit ${service.replace(/\//, ' ')}${sources !== undefined && sources !== service ? ` (sources: ${sources})` : ''} instead`
      : 'edit the ServiceEntry, VirtualService, DestinationRule, RedisService or RedisDestination it comes from instead';
  const verb = req.operation.toLowerCase();
  const name = req.name !== '' ? req.name : (asString(asRecord(req.object?.metadata)?.name) ?? '');
  const subject = { kind: 'EnvoyFilter', group: req.group, name };
  const problems = [
    {
      path: `metadata.labels[${MANAGED_BY_LABEL}]`,
      message:
        `this EnvoyFilter is managed by Breeze (${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}) and only Breeze may ${verb} it; ` +
        `${editInstead}, and Breeze rewrites it`,
    },
  ];
  return {
    allowed: false,
    code: 403,
    reason: 'Forbidden',
    message: denialMessage(subject, problems, 'is forbidden'),
    problems,
    subject,
  };
}

/** A value from the request as it appears in the message: as is when short, else quoted and cut. */
function shown<T extends string | undefined>(value: T): T {
  return (value === undefined || value.length <= MAX_QUOTED_LENGTH ? value : quote(value)) as T;
}
