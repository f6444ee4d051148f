import { asArray, asRecord, asString, isInteger, type JsonRecord } from './json.js';
import { metaOf } from './kinds.js';
import { resolveHost } from './names.js';
import { protocolFromPortName, type Protocol } from './protocol.js';

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
}

function portsOf(list: unknown, numberField: 'number' | 'port'): ServicePort[] {
  const out: ServicePort[] = [];
  for (const raw of asArray(list) ?? []) {
    const p = asRecord(raw);
    if (p === undefined || !isInteger(p[numberField])) continue;
    const name = asString(p.name) ?? '';
    out.push({
      number: p[numberField],
      name,
      protocol: protocolFromPortName(name),
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
    };
  }
  return undefined;
}

export function hasProtocolPort(s: ServiceView): boolean {
  return s.ports.some((p) => p.protocol !== undefined);
}
