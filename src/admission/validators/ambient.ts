/**
 * Ambient-mode warnings: a protocol service whose pods live in a namespace labelled
 * `istio.io/dataplane-mode=ambient` gets no sidecar, so Breeze's EnvoyFilters do nothing for it
 * (see model/ambient.ts). Admission warns, never denies: Istio accepts the object.
 *
 * - ServiceEntry: its protocol ports, when its own namespace is ambient (its workloadSelector
 *   selects pods of its own namespace; its clients there have no sidecar either).
 * - VirtualService, RedisService, RedisDestination: for each host (the first MAX_HOSTS_CHECKED)
 *   that a protocol service in an ambient namespace claims.
 *
 * Reads only the cache (ConfigView.namespaceDataplaneMode); a view without it warns about nothing.
 */
import type { ConfigView } from '../../cache/store.js';
import { ambientAdmissionWarnings, isAmbientMode } from '../../model/ambient.js';
import { asArray, asRecord, type JsonRecord } from '../../model/json.js';
import type { HandledKind } from '../../model/kinds.js';
import { resolveHost } from '../../model/names.js';
import { PROTOCOLS, protocolOfPort, type Protocol } from '../../model/protocol.js';
import type { Findings } from '../findings.js';
import type { ValidationContext, Validator } from './types.js';

/** Hosts of one VirtualService/RedisService looked up (the rest of a huge list is not). */
export const MAX_HOSTS_CHECKED = 64;

/** Ambient namespaces named in one answer (two warnings each; an answer holds at most 20). */
export const MAX_AMBIENT_NAMESPACES_WARNED = 3;

type Lookup = (namespace: string) => string | undefined;

function lookupOf(view: ConfigView): Lookup | undefined {
  return view.namespaceDataplaneMode === undefined ? undefined : (ns) => view.namespaceDataplaneMode?.(ns);
}

/** Protocols of a list of ports (`name` fields), in PROTOCOLS order. */
function protocolsOfPorts(ports: readonly unknown[], ctx: ValidationContext): Protocol[] {
  const found = new Set<Protocol>();
  for (const raw of ports) {
    ctx.budget?.check();
    const port = asRecord(raw);
    const p = port === undefined ? undefined : protocolOfPort(port);
    if (p !== undefined) found.add(p);
    if (found.size === PROTOCOLS.length) break;
  }
  return PROTOCOLS.filter((p) => found.has(p));
}

function hostsOf(kind: HandledKind, spec: JsonRecord): readonly unknown[] {
  if (kind === 'VirtualService') return asArray(spec.hosts) ?? [];
  if (kind === 'RedisService') return asArray(spec.host ?? spec.hosts) ?? [];
  if (kind === 'RedisDestination') return [spec.host];
  return [];
}

/** The ambient warnings for one object (empty when nothing it configures lives in an ambient namespace). */
export function ambientWarnings(kind: HandledKind, object: JsonRecord, ctx: ValidationContext): string[] {
  const mode = lookupOf(ctx.view);
  const spec = asRecord(object.spec);
  if (mode === undefined || spec === undefined) return [];
  if (kind === 'ServiceEntry') {
    if (!isAmbientMode(mode(ctx.namespace))) return [];
    const protocols = protocolsOfPorts(asArray(spec.ports) ?? [], ctx);
    return protocols.length === 0 ? [] : ambientAdmissionWarnings(ctx.namespace, protocols);
  }
  // Namespace → protocols of the services there that this object's hosts name.
  const byNamespace = new Map<string, Set<Protocol>>();
  for (const h of hostsOf(kind, spec).slice(0, MAX_HOSTS_CHECKED)) {
    if (typeof h !== 'string' || h === '' || h.includes('*')) continue;
    for (const service of ctx.view.protocolServices(resolveHost(h, ctx.namespace, ctx.view.domain))) {
      ctx.budget?.check();
      if (!isAmbientMode(mode(service.namespace))) continue;
      let set = byNamespace.get(service.namespace);
      if (set === undefined) {
        if (byNamespace.size >= MAX_AMBIENT_NAMESPACES_WARNED) continue;
        byNamespace.set(service.namespace, (set = new Set()));
      }
      for (const port of service.ports) if (port.protocol !== undefined) set.add(port.protocol);
    }
  }
  return [...byNamespace].flatMap(([ns, set]) =>
    ambientAdmissionWarnings(
      ns,
      PROTOCOLS.filter((p) => set.has(p)),
    ),
  );
}

/** The validators with the ambient warnings appended to what each finds (never a denial). */
export function withAmbientWarnings<K extends HandledKind>(
  validators: Readonly<Record<K, Validator>>,
): Readonly<Record<K, Validator>> {
  const wrapped = {} as Record<K, Validator>;
  for (const kind of Object.keys(validators) as K[]) {
    const validate = validators[kind];
    wrapped[kind] = (object, ctx): Findings => {
      const findings = validate(object, ctx);
      const extra = ambientWarnings(kind, object, ctx).filter((w) => !findings.warnings.includes(w));
      return extra.length === 0 ? findings : { ...findings, warnings: [...findings.warnings, ...extra] };
    };
  }
  return wrapped;
}
