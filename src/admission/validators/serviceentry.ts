import {
  asArray,
  asRecord,
  asString,
  asStringMap,
  isInteger,
  isRecord,
  type JsonRecord,
} from '../../model/json.js';
import { MAX_LISTENERS_PER_SERVICE, MAX_SERVICE_ENTRY_PORTS } from '../../model/limits.js';
import { isCidr, isDnsName, isIpAddress, isLabelKey, isLabelValue } from '../../model/names.js';
import { parseWorkloadSelectorAnnotation } from '../../model/service.js';
import { likelyMisspeltProtocol, protocolOfPort, readPort, type Protocol } from '../../model/protocol.js';
import { field, FindingsBuilder, type Findings } from '../findings.js';
import { protocolSwitchFindings } from './protocol-switch.js';
import { key, show } from './render.js';
import type { ValidationContext } from './types.js';

export const INTERFACE_ANNOTATION = 'interface';
export const WORKLOAD_SELECTOR_ANNOTATION = 'workloadSelector';
const EXAMPLE_INTERFACE = 'org.apache.dubbo.samples.DemoService';

/** A Java class name is stored in a class file's constant pool: at most 65535 bytes. */
export const MAX_JAVA_NAME_LENGTH = 65535;

const isIdentifierStart = (c: number): boolean =>
  (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36; // A-Z a-z _ $
const isIdentifierPart = (c: number): boolean => isIdentifierStart(c) || (c >= 48 && c <= 57);

/**
 * A Java fully-qualified name: identifiers ([A-Za-z_$][A-Za-z0-9_$]*) joined by dots, at least
 * two of them. One linear pass (a backtracking RegExp overflows the stack on megabytes of `a.`).
 */
export function isJavaFqn(name: string): boolean {
  if (name.length > MAX_JAVA_NAME_LENGTH) return false;
  let parts = 0;
  let atStart = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (atStart) {
      if (!isIdentifierStart(c)) return false;
      atStart = false;
      parts++;
    } else if (c === 46) {
      atStart = true;
    } else if (!isIdentifierPart(c)) {
      return false;
    }
  }
  return !atStart && parts >= 2;
}

/** Characters of a Java name: identifier parts and dots. */
function isJavaNameText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 46 && !isIdentifierPart(c)) return false;
  }
  return true;
}

/**
 * A Dubbo `interface` as Envoy's Dubbo route configuration matches it: a Java fully-qualified
 * name, `*` (any interface), or one `*` at the start or the end (`*Service`, `com.foo.*`: suffix
 * and prefix matches).
 */
export function isDubboInterface(name: string): boolean {
  if (name === '*') return true;
  if (name.length > MAX_JAVA_NAME_LENGTH) return false;
  const star = name.indexOf('*');
  if (star < 0) return isJavaFqn(name);
  if (star !== name.lastIndexOf('*') || (star !== 0 && star !== name.length - 1)) return false;
  const rest = star === 0 ? name.slice(1) : name.slice(0, -1);
  return rest !== '' && isJavaNameText(rest);
}

export function isPortNumber(v: unknown): v is number {
  return isInteger(v) && v >= 1 && v <= 65535;
}

export function validateServiceEntry(object: JsonRecord, ctx: ValidationContext): Findings {
  const f = new FindingsBuilder();
  const spec = asRecord(object.spec);
  if (spec === undefined) return f.deny('spec', 'must be an object with hosts and ports').build();
  const annotations = asStringMap(asRecord(object.metadata)?.annotations);

  const hosts = asArray(spec.hosts);
  if (hosts === undefined || hosts.length === 0) f.deny('spec.hosts', 'must list at least one host');

  const ports = spec.ports === undefined ? [] : asArray(spec.ports);
  if (ports === undefined) f.deny('spec.ports', `must be a list of ports, got ${show(spec.ports)}`);
  if (ports !== undefined && ports.length > MAX_SERVICE_ENTRY_PORTS) {
    // Not checked port by port: each is a listener on every sidecar that sees the entry.
    return f
      .deny(
        'spec.ports',
        `${ports.length} ports are more than Breeze checks in one ServiceEntry (${MAX_SERVICE_ENTRY_PORTS}; Istio's own CRD allows 256 since 1.23): split the ports over several entries`,
      )
      .build();
  }
  const protocols = checkPorts(ports ?? [], annotations, f, ctx);
  f.merge(protocolSwitchFindings(ports ?? [], ctx));
  const what = [...protocols].sort().join('/');
  checkSelector(spec.workloadSelector, what, f, ctx);
  checkSelectorAnnotation(annotations[WORKLOAD_SELECTOR_ANNOTATION], what, f);

  if (protocols.size === 0) return f.build();
  (hosts ?? []).forEach((h, i) => {
    ctx.budget?.check();
    if (typeof h !== 'string' || !isDnsName(h)) {
      f.deny(
        () => field('spec', 'hosts', i),
        () =>
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
  const addressCount = checkAddresses(spec, what, f, ctx);
  warnListenerCap(addressCount, protocolPortCount(ports ?? []), what, f);
  return f.build();
}

/** Ports whose name carries a protocol (each gets one outbound listener per address). */
function protocolPortCount(ports: readonly unknown[]): number {
  let n = 0;
  for (const raw of ports) {
    const name = asRecord(raw)?.name;
    if (typeof name === 'string' && protocolOfPort(asRecord(raw) ?? {}) !== undefined) n++;
  }
  return n;
}

/**
 * More outbound listeners (address:port pairs) than one service may fan out to: Istio accepts it,
 * so this is a warning; the generators write filters for the first MAX_LISTENERS_PER_SERVICE pairs
 * (ports in spec order, each with its addresses in order) and the rest stay plain TCP.
 */
function warnListenerCap(addresses: number, ports: number, what: string, f: FindingsBuilder): void {
  const listeners = addresses * ports;
  if (listeners <= MAX_LISTENERS_PER_SERVICE) return;
  f.warn(
    'spec.addresses',
    `${addresses} addresses x ${ports} ports: only the first ${MAX_LISTENERS_PER_SERVICE} listeners get ` +
      `${what} filters, the rest stay plain TCP`,
  );
}

function checkPorts(
  ports: readonly unknown[],
  annotations: Readonly<Record<string, string>>,
  f: FindingsBuilder,
  ctx: ValidationContext,
): Set<Protocol> {
  const protocols = new Set<Protocol>();
  // Istio's own rules, for every port: numbers unique (CRD CEL rule), names unique (the list is a
  // map keyed by name). At most MAX_SERVICE_ENTRY_PORTS of them (checked by the caller).
  const firstWithNumber = new Map<number, number>();
  const firstNameAt = new Map<string, number>();
  for (let i = 0; i < ports.length; i++) {
    if (i % 64 === 0) ctx.budget?.check();
    const p = asRecord(ports[i]);
    if (p === undefined) continue;
    const number = p.number;
    if (isPortNumber(number)) {
      const first = firstWithNumber.get(number);
      if (first === undefined) firstWithNumber.set(number, i);
      else
        f.deny(
          () => field('spec', 'ports', i, 'number'),
          () => `${number} is already used by spec.ports[${first}]; port numbers must be unique in an entry`,
        );
    }
    const name = p.name;
    if (typeof name === 'string') {
      const first = firstNameAt.get(name);
      if (first === undefined) firstNameAt.set(name, i);
      else
        f.deny(
          () => field('spec', 'ports', i, 'name'),
          () =>
            `${show(name)} is already used by spec.ports[${first}]; port names must be unique in an entry (Istio's rule): rename one (e.g. ${show(`${name}-2`)})`,
        );
    }
  }
  let interfaceChecked = false;
  ports.forEach((raw, i) => {
    ctx.budget?.check();
    // Paths and messages are built only for what the answer keeps (see FindingsBuilder).
    const path = (sub?: string): (() => string) =>
      sub === undefined ? () => field('spec', 'ports', i) : () => field('spec', 'ports', i, sub);
    const p = asRecord(raw);
    if (p === undefined) {
      f.deny(path(), () => `must be an object with number, name and protocol, got ${show(raw)}`);
      return;
    }
    const name = asString(p.name) ?? '';
    const misspelt = likelyMisspeltProtocol(name);
    const fixed =
      misspelt === undefined
        ? undefined
        : name
            .split('-')
            .map((t, j) => (j === 1 ? misspelt : t))
            .join('-');
    // Only when the fixed name would be a protocol port (`http-dubo-ui` is HTTP either way).
    if (
      misspelt !== undefined &&
      fixed !== undefined &&
      protocolOfPort({ name: fixed, protocol: p.protocol }) !== undefined
    ) {
      f.warn(
        path('name'),
        () => `${show(name)} looks like a misspelling of ${show(fixed)} (protocol ${misspelt})`,
      );
    }
    const reading = readPort(p);
    const left = reading.leftToIstio;
    if (left !== undefined && left.field !== 'name') {
      // The name carries a Breeze protocol but Istio serves the port as declared: Istio's port.
      f.warn(
        path(left.field),
        () =>
          `Istio serves this port as ${left.istio}, so Breeze adds no ${left.named} filter; set ${left.field} to TCP for ${left.named}`,
      );
    }
    const protocol = reading.protocol;
    if (protocol === undefined) return;
    protocols.add(protocol);

    if (!isPortNumber(p.number)) {
      f.deny(path('number'), () => `must be an integer from 1 to 65535, got ${show(p.number)}`);
    }
    if (p.targetPort !== undefined && !isPortNumber(p.targetPort)) {
      f.deny(path('targetPort'), () => `must be an integer from 1 to 65535, got ${show(p.targetPort)}`);
    }
    if (protocol === 'dubbo') {
      const iface = annotations[INTERFACE_ANNOTATION];
      if (iface === undefined || iface.trim() === '') {
        f.deny(
          path(),
          () =>
            `port ${show(name)} needs the annotation "${INTERFACE_ANNOTATION}" (the Dubbo interface, e.g. ${EXAMPLE_INTERFACE})`,
        );
      } else if (!interfaceChecked && !isDubboInterface(iface.trim())) {
        f.deny(
          key('metadata.annotations', INTERFACE_ANNOTATION),
          `${show(iface)} is not a Dubbo interface: a Java fully-qualified name (e.g. ${EXAMPLE_INTERFACE}), "*", or one "*" at the start or end (e.g. org.apache.dubbo.*)`,
        );
      }
      interfaceChecked = true;
    }
  });
  return protocols;
}

/**
 * `spec.workloadSelector.labels`: Istio denies an empty key and `*` in a key or value for every
 * entry; a protocol service's labels are copied into its inbound EnvoyFilter, so they must be
 * valid Kubernetes labels there.
 */
function checkSelector(raw: unknown, what: string, f: FindingsBuilder, ctx: ValidationContext): void {
  const labels = asRecord(raw)?.labels;
  if (!isRecord(labels)) return;
  const path = 'spec.workloadSelector.labels';
  for (const [n, [k, v]] of Object.entries(labels).entries()) {
    if (n % 64 === 0) ctx.budget?.check();
    const at = key(path, k);
    if (k === '') {
      f.deny(
        at,
        "an empty label key is not supported in a selector (Istio's rule); remove it or name the label",
      );
    } else if (k.includes('*') || (typeof v === 'string' && v.includes('*'))) {
      f.deny(at, `wildcard is not supported in a selector (Istio's rule), got ${show(k)}: ${show(v)}`);
    } else if (what === '') {
      continue;
    } else if (!isLabelKey(k)) {
      f.deny(
        at,
        `${show(k)} is not a valid label key; Breeze copies it into the ${what} inbound EnvoyFilter, whose selector must hold Kubernetes labels (e.g. app)`,
      );
    } else if (typeof v !== 'string' || !isLabelValue(v)) {
      f.deny(
        at,
        `${show(v)} is not a valid label value (63 characters of [A-Za-z0-9._-] at most, alphanumeric at both ends); Breeze copies it into the ${what} inbound EnvoyFilter`,
      );
    }
  }
}

/**
 * Aeraki's `workloadSelector` annotation. Empty (dubbo2istio wrote that from 2021 to April 2022
 * when a provider lacked its selector): treated as absent, with a warning. Malformed: denied on a
 * protocol service (it would select the inbound filter's workloads), a warning elsewhere.
 */
function checkSelectorAnnotation(raw: string | undefined, what: string, f: FindingsBuilder): void {
  if (raw === undefined) return;
  const path = key('metadata.annotations', WORKLOAD_SELECTOR_ANNOTATION);
  if (raw.trim() === '') {
    if (what !== '') f.warn(path, 'is empty: treated as absent (no inbound filter without a selector)');
    return;
  }
  const parsed = parseWorkloadSelectorAnnotation(raw);
  if (typeof parsed !== 'string') return;
  if (what !== '') f.deny(path, parsed);
  else f.warn(path, `unused (no protocol port), and ${parsed}`);
}

/** Checks the addresses of a protocol service; returns how many there are. */
function checkAddresses(spec: JsonRecord, what: string, f: FindingsBuilder, ctx: ValidationContext): number {
  const addresses = spec.addresses === undefined ? [] : asArray(spec.addresses);
  if (addresses === undefined) {
    f.deny('spec.addresses', `must be a list of IP addresses, got ${show(spec.addresses)}`);
    return 0;
  }
  addresses.forEach((a, i) => {
    ctx.budget?.check();
    const path = (): string => field('spec', 'addresses', i);
    if (typeof a === 'string' && isCidr(a)) {
      f.deny(
        path,
        () =>
          `${show(a)} is a CIDR range, but a ${what} listener needs one IP per address; list single IPs (e.g. ${a.slice(0, a.indexOf('/'))})`,
      );
    } else if (typeof a !== 'string' || !isIpAddress(a)) {
      f.deny(path, () => `${show(a)} is not an IP address`);
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
  return addresses.length;
}
