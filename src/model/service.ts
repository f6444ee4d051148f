import { asArray, asRecord, asString, asStringMap, isInteger, type JsonRecord } from './json.js';
import { metaOf } from './kinds.js';
import { quote } from './limits.js';
import { isLabelKey, isLabelValue, resolveHost } from './names.js';
import { protocolOfPort, type Protocol } from './protocol.js';

/** One port of a service as the generators and validators see it. */
export interface ServicePort {
  readonly number: number;
  readonly name: string;
  readonly protocol: Protocol | undefined;
  readonly targetPort: number | undefined;
}

/**
 * A service as Breeze sees it: a ServiceEntry, or a Kubernetes Service read as one
 * (hosts = its FQDN, addresses = its cluster IPs, ports with targetPort).
 */
export interface ServiceView {
  readonly kind: 'ServiceEntry' | 'Service';
  readonly namespace: string;
  readonly name: string;
  /** Fully qualified, lowercase. */
  readonly hosts: readonly string[];
  readonly addresses: readonly string[];
  readonly ports: readonly ServicePort[];
  /**
   * Labels of the workloads behind the service: a ServiceEntry's `spec.workloadSelector.labels`,
   * else its `workloadSelector` annotation (Aeraki's `value` / `key: value`); a Service's selector.
   * Undefined when there is none (no inbound filter can be targeted).
   */
  readonly workloadSelector: Readonly<Record<string, string>> | undefined;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * Aeraki's `workloadSelector` annotation: `value` means `{app: value}`, `key: value` means
 * `{key: value}` (spaces ignored). Returns the labels, or an error text.
 */
export function parseWorkloadSelectorAnnotation(raw: string): Record<string, string> | string {
  const s = raw.replace(/\s+/g, '');
  const parts = s.split(':');
  if (parts.length > 2)
    return `${quote(raw)} has more than one ':'; write "value" (meaning app: value) or "key: value"`;
  const [k, v] = parts.length === 2 ? [parts[0] ?? '', parts[1] ?? ''] : ['app', parts[0] ?? ''];
  if (v === '') return `${quote(raw)} has no label value; write "value" (meaning app: value) or "key: value"`;
  if (!isLabelKey(k)) return `${quote(k)} is not a valid label key`;
  if (!isLabelValue(v))
    return `${quote(v)} is not a valid label value (63 characters of [A-Za-z0-9._-] at most)`;
  return { [k]: v };
}

function nonEmpty(labels: Record<string, string>): Record<string, string> | undefined {
  return Object.keys(labels).length > 0 ? labels : undefined;
}

function portsOf(list: unknown, numberField: 'number' | 'port'): ServicePort[] {
  const kind = numberField === 'port' ? 'Service' : 'ServiceEntry';
  const out: ServicePort[] = [];
  for (const raw of asArray(list) ?? []) {
    const p = asRecord(raw);
    if (p === undefined || !isInteger(p[numberField])) continue;
    const name = asString(p.name) ?? '';
    out.push({
      number: p[numberField],
      name,
      protocol: protocolOfPort(p, kind),
      targetPort: isInteger(p.targetPort) ? p.targetPort : undefined,
    });
  }
  return out;
}

/** Reads a ServiceEntry or a core/v1 Service as a ServiceView; undefined for anything else. */
export function serviceViewOf(obj: JsonRecord, domain: string): ServiceView | undefined {
  const kind = asString(obj.kind);
  const spec = asRecord(obj.spec) ?? {};
  const meta = metaOf(obj);
  if (kind === 'ServiceEntry') {
    return {
      kind,
      namespace: meta.namespace,
      name: meta.name,
      hosts: (asArray(spec.hosts) ?? [])
        .filter((h): h is string => typeof h === 'string' && h !== '')
        .map((h) => resolveHost(h, meta.namespace, domain)),
      addresses: (asArray(spec.addresses) ?? []).filter((a): a is string => typeof a === 'string'),
      ports: portsOf(spec.ports, 'number'),
      workloadSelector: entrySelector(spec, meta.annotations),
      annotations: meta.annotations,
    };
  }
  if (kind === 'Service' && asString(obj.apiVersion) === 'v1') {
    const ips = asArray(spec.clusterIPs) ?? (typeof spec.clusterIP === 'string' ? [spec.clusterIP] : []);
    return {
      kind,
      namespace: meta.namespace,
      name: meta.name,
      hosts: [resolveHost(meta.name, meta.namespace, domain)],
      addresses: ips.filter((a): a is string => typeof a === 'string' && a !== '' && a !== 'None'),
      ports: portsOf(spec.ports, 'port'),
      workloadSelector: nonEmpty(asStringMap(spec.selector)),
      annotations: meta.annotations,
    };
  }
  return undefined;
}

function entrySelector(
  spec: JsonRecord,
  annotations: Readonly<Record<string, string>>,
): Record<string, string> | undefined {
  const labels = nonEmpty(asStringMap(asRecord(spec.workloadSelector)?.labels));
  if (labels !== undefined) {
    // Labels that are not Kubernetes labels would make the inbound EnvoyFilter invalid: none then.
    const valid = Object.entries(labels).every(([k, v]) => isLabelKey(k) && isLabelValue(v));
    return valid ? labels : undefined;
  }
  const raw = annotations.workloadSelector;
  // Empty (dubbo2istio wrote that when a provider lacked its selector): absent.
  if (raw === undefined || raw.trim() === '') return undefined;
  const parsed = parseWorkloadSelectorAnnotation(raw);
  return typeof parsed === 'string' ? undefined : parsed;
}

export function hasProtocolPort(s: ServiceView): boolean {
  return s.ports.some((p) => p.protocol !== undefined);
}
