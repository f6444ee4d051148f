import { asArray, asRecord, asString, type JsonRecord } from '../../model/json.js';
import { MAX_SERVICE_ENTRY_PORTS } from '../../model/limits.js';
import { protocolOfPort } from '../../model/protocol.js';
import type { CpuBudget } from '../budget.js';
import type { JsonPatchOp } from '../review.js';
import type { VipAllocator } from '../vip.js';

export interface MutationContext {
  readonly namespace: string;
  readonly name: string;
  readonly oldObject: JsonRecord | undefined;
  readonly vips: VipAllocator;
  readonly dryRun: boolean;
  /** The request's CPU budget (see ValidationContext.budget); absent offline. */
  readonly budget?: CpuBudget;
}

export type MutationResult =
  | { readonly ok: true; readonly patch: readonly JsonPatchOp[] }
  | { readonly ok: false; readonly path: string; readonly message: string };

/**
 * ServiceEntry defaults as JSON Patch operations against the raw request object (which is only
 * read): `protocol: TCP` on protocol ports that have none, and a VIP when a protocol service has
 * no addresses and a resolution other than NONE. Idempotent: the patched object needs no patch.
 */
export function mutateServiceEntry(object: JsonRecord, ctx: MutationContext): MutationResult {
  const spec = asRecord(object.spec);
  if (spec === undefined) return { ok: true, patch: [] };
  const patch: JsonPatchOp[] = [];
  let hasProtocolPort = false;
  const ports = asArray(spec.ports) ?? [];
  // More ports than Breeze checks: the validating webhook denies the entry; nothing to default.
  if (ports.length > MAX_SERVICE_ENTRY_PORTS) return { ok: true, patch: [] };
  for (const [i, raw] of ports.entries()) {
    if (i % 64 === 0) ctx.budget?.check();
    const port = asRecord(raw);
    if (port === undefined || protocolOfPort(port) === undefined) continue;
    hasProtocolPort = true;
    if (port.protocol === undefined)
      patch.push({ op: 'add', path: `/spec/ports/${i}/protocol`, value: 'TCP' });
  }
  const addresses = spec.addresses;
  const noAddresses =
    addresses === undefined || addresses === null || (Array.isArray(addresses) && addresses.length === 0);
  const resolution = spec.resolution ?? 'NONE';
  if (!hasProtocolPort || !noAddresses || resolution === 'NONE') return { ok: true, patch };

  const previous = asString(asArray(asRecord(ctx.oldObject?.spec)?.addresses)?.[0]);
  let vip: string | undefined;
  if (previous !== undefined && ctx.vips.range.contains(previous)) {
    vip = previous;
  } else {
    if (!ctx.dryRun) ctx.vips.prune();
    vip = ctx.vips.allocate(ctx.namespace, ctx.name, !ctx.dryRun);
  }
  if (vip === undefined) {
    return {
      ok: false,
      path: 'spec.addresses',
      message:
        `no free VIP left in --vip-cidr ${ctx.vips.range.cidr} (${ctx.vips.range.size} addresses, all in use); ` +
        'set spec.addresses explicitly or widen --vip-cidr',
    };
  }
  patch.push(
    Array.isArray(addresses)
      ? { op: 'add', path: '/spec/addresses/0', value: vip }
      : { op: addresses === null ? 'replace' : 'add', path: '/spec/addresses', value: [vip] },
  );
  return { ok: true, patch };
}
