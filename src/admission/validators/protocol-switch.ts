import { asRecord } from '../../model/json.js';
import { protocolOfPort, type Protocol } from '../../model/protocol.js';
import { switchAdvice } from '../../protocols/registry.js';
import { field, FindingsBuilder, type Findings } from '../findings.js';
import type { ValidationContext } from './types.js';

/**
 * Warnings (never denials: Istio accepts the object) for the protocols a service's ports carry
 * when Breeze will not give them the filter everywhere: a protocol missing from `--protocols`
 * (its ports stay plain TCP, and how to enable it), and a filter the stock proxy lacks (Kafka:
 * only proxies with the node metadata get it, the annotation to set and the proxy image needed).
 * The first line of each protocol names its first port. Nothing without ctx.protocols (offline
 * callers that did not say which protocols are on).
 */
export function protocolSwitchFindings(ports: readonly unknown[], ctx: ValidationContext): Findings {
  const f = new FindingsBuilder();
  const enabled = ctx.protocols;
  if (enabled === undefined) return f.build();
  const first = new Map<Protocol, number>();
  ports.forEach((raw, i) => {
    if (i % 64 === 0) ctx.budget?.check();
    const port = asRecord(raw);
    const protocol = port === undefined ? undefined : protocolOfPort(port);
    if (protocol !== undefined && !first.has(protocol)) first.set(protocol, i);
  });
  for (const [protocol, i] of first) {
    const [head, ...rest] = switchAdvice(protocol, enabled);
    if (head === undefined) continue;
    f.warn(field('spec', 'ports', i, 'name'), head);
    for (const line of rest) f.warn('', line);
  }
  return f.build();
}
