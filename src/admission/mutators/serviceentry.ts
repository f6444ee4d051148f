import { asArray, asRecord, asString, type JsonRecord } from '../../model/json.js';
import { protocolFromPortName } from '../../model/protocol.js';
import type { VipAllocator } from '../vip.js';

export interface MutationContext {
  readonly namespace: string;
  readonly name: string;
  readonly oldObject: JsonRecord | undefined;
  readonly vips: VipAllocator;
  readonly dryRun: boolean;
}

export type MutationResult =
  { readonly ok: true } | { readonly ok: false; readonly path: string; readonly message: string };

/**
 * Fills in ServiceEntry defaults in place on a copy of the request object:
 * `protocol: TCP` on protocol ports that have none, and a VIP when a protocol service has no
 * addresses and a resolution other than NONE. Idempotent: a mutated object needs nothing more.
 */
export function mutateServiceEntry(object: JsonRecord, ctx: MutationContext): MutationResult {
  const spec = asRecord(object.spec);
  if (spec === undefined) return { ok: true };
  let hasProtocolPort = false;
  for (const raw of asArray(spec.ports) ?? []) {
    const port = asRecord(raw);
    if (port === undefined || protocolFromPortName(asString(port.name) ?? '') === undefined) continue;
    hasProtocolPort = true;
    if (port.protocol === undefined) port.protocol = 'TCP';
  }
  const addresses = spec.addresses;
  const noAddresses =
    addresses === undefined || addresses === null || (Array.isArray(addresses) && addresses.length === 0);
  const resolution = spec.resolution ?? 'NONE';
  if (!hasProtocolPort || !noAddresses || resolution === 'NONE') return { ok: true };

  const previous = asString(asArray(asRecord(ctx.oldObject?.spec)?.addresses)?.[0]);
  if (previous !== undefined && ctx.vips.range.contains(previous)) {
    spec.addresses = [previous];
    return { ok: true };
  }
  if (!ctx.dryRun) ctx.vips.prune();
  const vip = ctx.vips.allocate(ctx.namespace, ctx.name, !ctx.dryRun);
  if (vip === undefined) {
    return {
      ok: false,
      path: 'spec.addresses',
      message:
        `no free VIP left in --vip-cidr ${ctx.vips.range.cidr} (${ctx.vips.range.size} addresses, all in use); ` +
        'set spec.addresses explicitly or widen --vip-cidr',
    };
  }
  spec.addresses = [vip];
  return { ok: true };
}
