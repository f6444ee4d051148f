import { BreezeError } from '../errors.js';

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

/** Who uses an address (the config cache). */
export interface AddressOwners {
  /** The key (`ServiceEntry/ns/name`) of the ServiceEntry using this address, if any. */
  addressOwner(address: string): string | undefined;
  /**
   * The same, counting only what an authoritative source confirmed (pending admission changes
   * do not own addresses); when absent, the view holds confirmed objects only.
   */
  confirmedAddressOwner?(address: string): string | undefined;
}

/** At most this many addresses are probed for one allocation, whatever the range size. */
export const MAX_VIP_PROBES = 65_536;

/** Reservations are capped at this fraction of the range (and MAX_VIP_RESERVATIONS). */
export const RESERVATION_SHARE = 0.25;
export const MAX_VIP_RESERVATIONS = 4096;

interface Reservation {
  readonly ip: string;
  readonly owner: string;
  readonly until: number;
}

/**
 * Hands out one VIP per ServiceEntry. The same namespace/name always starts probing at the same
 * address, so it gets the same VIP while that address is free, across restarts and replicas.
 *
 * Only the confirmed cache owns addresses: a ServiceEntry the API server persisted (the watch
 * delivered it) keeps its address. A mutation reserves its VIP for `reserveMs` so that concurrent
 * creates get distinct addresses before the watch shows them; but anyone who reaches the webhook
 * port can POST /mutate, so reservations never make a real request fail: one per ServiceEntry,
 * at most a quarter of the range (the oldest is evicted), and when every free address is
 * reserved the oldest reservation is taken over. One allocation probes at most MAX_VIP_PROBES
 * addresses.
 */
export class VipAllocator {
  /** ip → reservation, oldest first (a refreshed reservation moves to the end). */
  private readonly reservedBy = new Map<string, Reservation>();
  /** owner → its reservation. */
  private readonly byOwner = new Map<string, Reservation>();
  readonly maxReservations: number;

  constructor(
    readonly range: Ipv4Range,
    private readonly view: AddressOwners,
    private readonly reserveMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.maxReservations = Math.max(
      1,
      Math.min(MAX_VIP_RESERVATIONS, Math.floor(range.size * RESERVATION_SHARE)),
    );
  }

  /**
   * The VIP for `ServiceEntry/<namespace>/<name>`, or undefined when every address the probe
   * reaches is used by another confirmed ServiceEntry. With `reserve` false (dry-run) nothing is
   * recorded.
   */
  allocate(namespace: string, name: string, reserve: boolean): string | undefined {
    const owner = `ServiceEntry/${namespace}/${name}`;
    const t = this.now();
    const view = this.view;
    const ownerOf =
      view.confirmedAddressOwner === undefined
        ? (ip: string) => view.addressOwner(ip)
        : (ip: string) => view.confirmedAddressOwner?.(ip);
    const usable = (ip: string): boolean => {
      const confirmed = ownerOf(ip);
      return confirmed === undefined || confirmed === owner;
    };
    // Its own live reservation first: asking again gives the same answer.
    const mine = this.byOwner.get(owner);
    if (mine !== undefined && mine.until > t && usable(mine.ip)) return this.hold(mine.ip, owner, t, reserve);
    const start = fnv1a(`${namespace}/${name}`) % this.range.size;
    const probes = Math.min(this.range.size, MAX_VIP_PROBES);
    for (let i = 0; i < probes; i++) {
      const ip = this.range.at((start + i) % this.range.size);
      if (!usable(ip)) continue;
      const held = this.reservedBy.get(ip);
      if (held !== undefined && held.owner !== owner && held.until > t) continue;
      return this.hold(ip, owner, t, reserve);
    }
    // No free address but reserved ones: a reservation is never confirmed (once its ServiceEntry
    // is persisted the confirmed cache owns the address), so the oldest gives way.
    for (const r of this.reservedBy.values()) {
      if (usable(r.ip)) return this.hold(r.ip, owner, t, reserve);
    }
    return undefined;
  }

  /** Records `owner`'s reservation of `ip` (replacing its own and any other on that ip); returns ip. */
  private hold(ip: string, owner: string, t: number, reserve: boolean): string {
    if (!reserve) return ip;
    this.release(this.byOwner.get(owner));
    this.release(this.reservedBy.get(ip));
    const r: Reservation = { ip, owner, until: t + this.reserveMs };
    this.reservedBy.set(ip, r);
    this.byOwner.set(owner, r);
    while (this.reservedBy.size > this.maxReservations) {
      this.release(this.reservedBy.values().next().value);
    }
    return ip;
  }

  private release(r: Reservation | undefined): void {
    if (r === undefined) return;
    if (this.reservedBy.get(r.ip) === r) this.reservedBy.delete(r.ip);
    if (this.byOwner.get(r.owner) === r) this.byOwner.delete(r.owner);
  }

  /** Drops expired reservations; call now and then (the mutator does it on each allocation). */
  prune(): void {
    const t = this.now();
    for (const r of [...this.reservedBy.values()]) if (r.until <= t) this.release(r);
  }

  get reservations(): number {
    return this.reservedBy.size;
  }
}
