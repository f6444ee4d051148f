/**
 * Istio's ambient mode: a namespace labelled `istio.io/dataplane-mode=ambient` runs its pods
 * without sidecars (ztunnel on each node, optional waypoint proxies). Breeze's EnvoyFilters patch
 * sidecar listeners (SIDECAR_INBOUND, SIDECAR_OUTBOUND), and neither ztunnel nor a waypoint runs
 * them, so they do nothing for pods without a sidecar. Breeze supports sidecar mode only: it warns
 * (admission, generation), it never refuses.
 *
 * Breeze looks at namespace labels only. A pod may opt out of ambient on its own
 * (`istio.io/dataplane-mode=none`), and a pod that has a sidecar keeps it (the sidecar takes
 * precedence over ztunnel), so the warning may name a namespace whose pods do have sidecars
 * (during a migration, say): it is a hint, never a decision.
 */
import { asRecord, type JsonRecord } from './json.js';
import { quote } from './limits.js';

export const NAMESPACE_KIND = 'Namespace';
export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';
export const AMBIENT_MODE = 'ambient';

/** A label value is at most 63 characters: a longer one (a hand-written file) is kept cut to this. */
export const MAX_DATAPLANE_MODE_LENGTH = 63;

/** A namespace name is a DNS label: at most 63 characters. A longer one is not a namespace. */
export const MAX_NAMESPACE_NAME_LENGTH = 63;

/** The `istio.io/dataplane-mode` label of a Namespace object (cut to 63 characters), if it has one. */
export function dataplaneModeOf(namespace: JsonRecord): string | undefined {
  const value = asRecord(asRecord(namespace.metadata)?.labels)?.[DATAPLANE_MODE_LABEL];
  return typeof value === 'string' ? value.slice(0, MAX_DATAPLANE_MODE_LENGTH) : undefined;
}

/** Istio enrols a namespace in ambient for exactly this label value. */
export function isAmbientMode(mode: string | undefined): boolean {
  return mode === AMBIENT_MODE;
}

/**
 * The two admission warnings for protocol services whose pods live in an ambient namespace (each
 * within the 120 characters a warning may have, for namespace names up to about 15 characters; past that the end is cut).
 */
export function ambientAdmissionWarnings(namespace: string, protocols: readonly string[]): string[] {
  const ns = quote(namespace);
  return [
    `namespace ${ns} has ${DATAPLANE_MODE_LABEL}=${AMBIENT_MODE}: no sidecars, so Breeze's ${protocols.join('/')} filters skip its pods`,
    `fix: sidecar mode for namespace ${ns}, or label its pods ${DATAPLANE_MODE_LABEL}=none and inject sidecars`,
  ];
}

/** The generation note (log line, GenerationWarning Event) for a service in an ambient namespace. */
export function ambientGenerationNote(namespace: string): string {
  const ns = quote(namespace);
  return (
    `namespace ${ns} is in ambient mode (${DATAPLANE_MODE_LABEL}=${AMBIENT_MODE}): its pods run without a sidecar, ` +
    `so these EnvoyFilters do nothing for them (ztunnel and waypoints do not run them); put namespace ${ns} ` +
    `in sidecar mode, or label its pods ${DATAPLANE_MODE_LABEL}=none and inject sidecars`
  );
}
