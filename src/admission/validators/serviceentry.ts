import { asArray, asRecord, asString, asStringMap, isInteger, type JsonRecord } from '../../model/json.js';
import { isCidr, isDnsName, isIpAddress } from '../../model/names.js';
import { parseWorkloadSelectorAnnotation } from '../../model/service.js';
import { likelyMisspeltProtocol, protocolFromPortName, type Protocol } from '../../model/protocol.js';
import { field, FindingsBuilder, key, show, type Findings } from '../findings.js';
import type { ValidationContext } from './types.js';

export const INTERFACE_ANNOTATION = 'interface';
export const WORKLOAD_SELECTOR_ANNOTATION = 'workloadSelector';
const JAVA_FQN = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+$/;
const EXAMPLE_INTERFACE = 'org.apache.dubbo.samples.DemoService';

export function isPortNumber(v: unknown): v is number {
  return isInteger(v) && v >= 1 && v <= 65535;
}

export function validateServiceEntry(object: JsonRecord, _ctx: ValidationContext): Findings {
  const f = new FindingsBuilder();
  const spec = asRecord(object.spec);
  if (spec === undefined) return f.deny('spec', 'must be an object with hosts and ports').build();
  const annotations = asStringMap(asRecord(object.metadata)?.annotations);

  const hosts = asArray(spec.hosts);
  if (hosts === undefined || hosts.length === 0) f.deny('spec.hosts', 'must list at least one host');

  const ports = spec.ports === undefined ? [] : asArray(spec.ports);
  if (ports === undefined) f.deny('spec.ports', `must be a list of ports, got ${show(spec.ports)}`);
  const protocols = checkPorts(ports ?? [], annotations, f);

  const ws = annotations[WORKLOAD_SELECTOR_ANNOTATION];
  if (ws !== undefined) {
    const parsed = parseWorkloadSelectorAnnotation(ws);
    if (typeof parsed === 'string') f.deny(key('metadata.annotations', WORKLOAD_SELECTOR_ANNOTATION), parsed);
  }

  if (protocols.size === 0) return f.build();
  const what = [...protocols].sort().join('/');
  (hosts ?? []).forEach((h, i) => {
    if (typeof h !== 'string' || !isDnsName(h)) {
      f.deny(
        field('spec', 'hosts', i),
        `${show(h)} is not a DNS name; a ${what} service needs a plain host name without wildcard (e.g. demo.ns.svc.cluster.local)`,
      );
    }
  });
  if (hosts !== undefined && hosts.length > 1) {
    f.warn(
      'spec.hosts',
      `${hosts.length} hosts share one ${what} listener per address and port; use one host per entry`,
    );
  }
  checkAddresses(spec, what, f);
  return f.build();
}

function checkPorts(
  ports: readonly unknown[],
  annotations: Readonly<Record<string, string>>,
  f: FindingsBuilder,
): Set<Protocol> {
  const protocols = new Set<Protocol>();
  const firstIndexOf = new Map<number, number>();
  ports.forEach((raw, i) => {
    const p = asRecord(raw);
    if (p !== undefined && isInteger(p.number) && !firstIndexOf.has(p.number)) firstIndexOf.set(p.number, i);
  });
  let interfaceChecked = false;
  ports.forEach((raw, i) => {
    const path = field('spec', 'ports', i);
    const p = asRecord(raw);
    if (p === undefined) {
      f.deny(path, `must be an object with number, name and protocol, got ${show(raw)}`);
      return;
    }
    const name = asString(p.name) ?? '';
    const misspelt = likelyMisspeltProtocol(name);
    if (misspelt !== undefined) {
      const fixed = name
        .split('-')
        .map((t, j) => (j === 1 ? misspelt : t))
        .join('-');
      f.warn(
        field(path, 'name'),
        `${show(name)} looks like a misspelling of ${show(fixed)} (protocol ${misspelt})`,
      );
    }
    const protocol = protocolFromPortName(name);
    if (protocol === undefined) return;
    protocols.add(protocol);

    const declared = p.protocol;
    if (declared !== undefined && (typeof declared !== 'string' || declared.toUpperCase() !== 'TCP')) {
      f.deny(
        field(path, 'protocol'),
        `port ${show(name)} carries ${protocol}, which Breeze serves on a TCP listener; set protocol to TCP (got ${show(declared)})`,
      );
    }
    if (!isPortNumber(p.number)) {
      f.deny(field(path, 'number'), `must be an integer from 1 to 65535, got ${show(p.number)}`);
    } else {
      const first = firstIndexOf.get(p.number);
      if (first !== undefined && first !== i) {
        f.deny(
          field(path, 'number'),
          `${p.number} is already used by spec.ports[${first}]; port numbers must be unique in an entry`,
        );
      }
    }
    if (p.targetPort !== undefined && !isPortNumber(p.targetPort)) {
      f.deny(field(path, 'targetPort'), `must be an integer from 1 to 65535, got ${show(p.targetPort)}`);
    }
    if (protocol === 'dubbo') {
      const iface = annotations[INTERFACE_ANNOTATION];
      if (iface === undefined || iface.trim() === '') {
        f.deny(
          path,
          `port ${show(name)} needs the annotation "${INTERFACE_ANNOTATION}" (the Dubbo interface, e.g. ${EXAMPLE_INTERFACE})`,
        );
      } else if (!interfaceChecked && !JAVA_FQN.test(iface)) {
        f.deny(
          key('metadata.annotations', INTERFACE_ANNOTATION),
          `${show(iface)} is not a Java fully-qualified interface name (package and name, e.g. ${EXAMPLE_INTERFACE})`,
        );
      }
      interfaceChecked = true;
    }
  });
  return protocols;
}

function checkAddresses(spec: JsonRecord, what: string, f: FindingsBuilder): void {
  const addresses = spec.addresses === undefined ? [] : asArray(spec.addresses);
  if (addresses === undefined) {
    f.deny('spec.addresses', `must be a list of IP addresses, got ${show(spec.addresses)}`);
    return;
  }
  addresses.forEach((a, i) => {
    const path = field('spec', 'addresses', i);
    if (typeof a === 'string' && isCidr(a)) {
      f.deny(
        path,
        `${show(a)} is a CIDR range, but a ${what} listener needs one IP per address; list single IPs (e.g. ${a.split('/')[0] ?? ''})`,
      );
    } else if (typeof a !== 'string' || !isIpAddress(a)) {
      f.deny(path, `${show(a)} is not an IP address`);
    }
  });
  const resolution = spec.resolution ?? 'NONE';
  if (addresses.length === 0 && resolution === 'NONE') {
    f.deny(
      'spec.addresses',
      `a ${what} service needs an IP for its listener and resolution NONE cannot get one: ` +
        'add spec.addresses, or set spec.resolution to DNS or STATIC so Breeze allocates a VIP',
    );
  }
}
