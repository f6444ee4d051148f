import { createHash } from 'node:crypto';

export const MAX_NAME_LENGTH = 253;

export function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * A valid Kubernetes object name (DNS-1123 subdomain) for `raw`. Lowercase alphanumerics, '-' and
 * '.' pass unchanged; anything else (IPv6 colons, '|', '_') becomes '-', and then a short hash of
 * the raw text is appended so two different inputs can never end up with the same name. Names
 * over 253 characters are cut and get the hash too.
 */
export function objectName(raw: string): string {
  let name = raw
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/(^|\.)[-.]+/g, '$1')
    .replace(/-+(\.|$)/g, '$1');
  const changed = name !== raw.toLowerCase();
  if (!changed && name.length <= MAX_NAME_LENGTH && name !== '') return name;
  const suffix = `-${shortHash(raw)}`;
  name = name.slice(0, MAX_NAME_LENGTH - suffix.length).replace(/[-.]+$/, '');
  return `${name}${suffix}`;
}

/** `breeze-outbound-<host>-<vip>-<port>` */
export function outboundName(host: string, vip: string, port: number): string {
  return objectName(`breeze-outbound-${host}-${vip}-${port}`);
}

/** `breeze-inbound-<host>-<port>` */
export function inboundName(host: string, port: number): string {
  return objectName(`breeze-inbound-${host}-${port}`);
}
