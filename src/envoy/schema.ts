import type { JsonRecord } from '../model/json.js';

// PLACEHOLDER: replaced by the strict proto3-JSON checker in this same change.
/** Problems (with JSON paths) of an EnvoyFilter's typed configs against Envoy's proto schema. */
export function checkEnvoyFilter(_envoyFilter: JsonRecord): string[] {
  return [];
}
