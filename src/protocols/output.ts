import { stringify } from 'yaml';
import type { JsonRecord } from '../model/json.js';

/**
 * A YAML stream (`---` between documents), no line folding, keys in insertion order. Strings are
 * quoted by YAML 1.1 rules, which kubectl reads: `yes`, `no`, `on`, `off` and `y` stay strings.
 */
export function toYamlStream(objects: readonly JsonRecord[]): string {
  return objects
    .map((o) => stringify(o, { lineWidth: 0, aliasDuplicateObjects: false, version: '1.1' }))
    .join('---\n');
}

/** A Kubernetes `List` as indented JSON. */
export function toJsonList(objects: readonly JsonRecord[]): string {
  return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
}
