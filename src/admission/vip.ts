import { BreezeError } from '../errors.js';
import type { ConfigView } from '../cache/store.js';

/** An IPv4 range for VIPs: network and broadcast addresses are never handed out. */
export class Ipv4Range {
  readonly first: number;
  readonly size: number;

  constructor(readonly cidr: string) {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
    const octets = m?.slice(1, 5).map(Number) ?? [];
    const bits = Number(m?.[5]);
    if (m === null || octets.some((o) => o > 255) || bits < 8 || bits > 30) {
      throw new BreezeError(
        'BAD_FLAG',
        `--vip-cidr: ${JSON.stringify(cidr)} must be an IPv4 CIDR with a prefix from /8 to /30, e.g. 240.240.0.0/16`,
      );
    }
    const base = octets.reduce((acc, o) => acc * 256 + o, 0);
    const block = 2 ** (32 - bits);
    const network = base - (base % block);
    this.first = network + 1;
    this.size = block - 2;
  }

  /** The n-th usable address (0-based). */
  at(n: number): string {
    const v = this.first + n;
    return [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
  }

  contains(ip: string): boolean {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
    if (m === null) return false;
    const v = m.slice(1, 5).reduce((acc, o) => acc * 256 + Number(o), 0);
    return v >= this.first && v < this.first + this.size;
  }
}

/** FNV-1a: a stable, well-spread starting point for `namespace/name`. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Hands out one VIP per ServiceEntry. The same namespace/name always starts probing at the same
 * address, so it gets the same VIP while that address is free, across restarts and replicas.
 * An address is taken when a ServiceEntry in the cache uses it or this process reserved it for
 * another entry within `reserveMs` (the watch has not shown that entry yet).
 */
export class VipAllocator {
  private readonly reservedBy = new Map<string, { owner: string; until: number }>();

  constructor(
    readonly range: Ipv4Range,
    private readonly view: ConfigView,
    private readonly reserveMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The VIP for `ServiceEntry/<namespace>/<name>`, or undefined when the range is full. With
   * `reserve` false (dry-run) nothing is recorded.
   */
  allocate(namespace: string, name: string, reserve: boolean): string | undefined {
    const owner = `ServiceEntry/${namespace}/${name}`;
    const t = this.now();
    const start = fnv1a(`${namespace}/${name}`) % this.range.size;
    for (let i = 0; i < this.range.size; i++) {
      const ip = this.range.at((start + i) % this.range.size);
      const cached = this.view.addressOwner(ip);
      if (cached !== undefined && cached !== owner) continue;
      const held = this.reservedBy.get(ip);
      if (held !== undefined && held.owner !== owner && held.until > t) continue;
      if (reserve) this.reservedBy.set(ip, { owner, until: t + this.reserveMs });
      return ip;
    }
    return undefined;
  }

  /** Drops expired reservations; call now and then (the mutator does it on each allocation). */
  prune(): void {
    const t = this.now();
    for (const [ip, r] of this.reservedBy) if (r.until <= t) this.reservedBy.delete(ip);
  }

  get reservations(): number {
    return this.reservedBy.size;
  }
}
