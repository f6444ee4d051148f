import { isIP } from 'node:net';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL_ANY_CASE = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;

/**
 * A DNS-1123 label as Istio checks names (subset names among them): letters of either case,
 * digits and '-', alphanumeric at both ends, 63 characters at most (`V1`, `canaryV2`).
 */
export function isIstioDns1123Label(s: string): boolean {
  return s.length > 0 && s.length <= 63 && DNS_LABEL_ANY_CASE.test(s);
}

/** RFC 1123 label as Kubernetes checks it: lowercase alphanumerics and '-', at most 63 characters. */
export function isDns1123Label(s: string): boolean {
  return s.length > 0 && s.length <= 63 && DNS_LABEL.test(s);
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * A Kubernetes object name that must be a DNS-1123 subdomain (most kinds, Secrets among them):
 * 253 characters at most; as in Kubernetes, the dot-separated parts have no 63-character limit.
 */
export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS_SUBDOMAIN.test(s);
}

const isAlphanumeric = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/**
 * A DNS name without wildcard, as Istio accepts hosts: 253 characters at most, dot-separated
 * labels of 1 to 63 letters (either case), digits and '-', alphanumeric at both ends. One pass
 * over the characters (it runs for every host of every review).
 */
export function isDnsName(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  let labelStart = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i === s.length ? 46 : s.charCodeAt(i);
    if (c === 46) {
      const length = i - labelStart;
      // Empty, too long, or ending in '-' (the start was checked when the label began).
      if (length === 0 || length > 63 || !isAlphanumeric(s.charCodeAt(i - 1))) return false;
      labelStart = i + 1;
    } else if (i === labelStart ? !isAlphanumeric(c) : c !== 45 && !isAlphanumeric(c)) return false;
  }
  return true;
}

/** Kubernetes label value: empty, or 63 characters at most of [A-Za-z0-9._-] starting and ending alphanumeric. */
export function isLabelValue(s: string): boolean {
  return s === '' || (s.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(s));
}

/** Kubernetes label key: optional DNS-subdomain prefix and '/', then a name part like a label value. */
export function isLabelKey(s: string): boolean {
  const slash = s.lastIndexOf('/');
  const name = slash < 0 ? s : s.slice(slash + 1);
  if (name === '' || !isLabelValue(name)) return false;
  if (slash < 0) return true;
  const prefix = s.slice(0, slash);
  return prefix.length <= 253 && prefix.split('.').every(isDns1123Label);
}

export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

/** `10.0.0.0/8` or `2001:db8::/32`: an address with a prefix length in range. */
export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const family = isIP(s.slice(0, slash));
  const bits = s.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** Short names resolve in a namespace: `reviews` in ns `a` is `reviews.a.svc.cluster.local`. */
export function resolveHost(host: string, namespace: string, domain: string): string {
  const h = host.toLowerCase();
  if (h.includes('.') || h === '*') return h;
  return `${h}.${namespace}.svc.${domain}`;
}
