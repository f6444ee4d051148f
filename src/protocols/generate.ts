import type { ConfigStore, Entry } from '../cache/store.js';
import { isBreezeError } from '../errors.js';
import { ambientGenerationNote, isAmbientMode } from '../model/ambient.js';
import { asRecord, asString, isInteger, type JsonRecord } from '../model/json.js';
import { MAX_LISTENERS_PER_SERVICE, quote } from '../model/limits.js';
import type { Protocol } from '../model/protocol.js';
import { decodeSecret, type SecretData } from '../model/secret.js';
import type { ServiceView } from '../model/service.js';
import { GENERATORS, proxyMetadataMatch, switchAdvice } from './registry.js';
import { buildEnvoyFilter, inboundListenerPatch, outboundListenerPatch } from './shared/envoyfilter.js';
import { inboundName, outboundName } from './shared/names.js';
import type { ConfigPatch, FilterPlan, GenerationOptions, PortContext, SourceRef } from './types.js';

/** A problem with one service (or one port of it): its filters are not produced. */
export interface GenerationProblem {
  /** `ServiceEntry/ns/name` or `Service/ns/name`. */
  readonly service: string;
  readonly port?: number;
  readonly direction?: 'outbound' | 'inbound';
  readonly message: string;
}

/** `ServiceEntry/ns/name port 20880 outbound: <message>` */
export function formatProblem(p: GenerationProblem): string {
  const port = p.port === undefined ? '' : ` port ${p.port}`;
  const direction = p.direction === undefined ? '' : ` ${p.direction}`;
  return `${p.service}${port}${direction}: ${p.message}`;
}

export interface ServiceOutput {
  readonly envoyFilters: JsonRecord[];
  /**
   * Errors: the service's config cannot be (fully) generated. A service with problems keeps its
   * current EnvoyFilters (nothing is deleted or replaced because of it).
   */
  readonly problems: GenerationProblem[];
  /**
   * Soft findings, never errors: a filter that cannot exist yet (no VIP, no workload selector), or
   * listeners left plain TCP beyond MAX_LISTENERS_PER_SERVICE. The filters that are generated are
   * complete and may be written; a note is for a log line or a Warning Event on the service.
   */
  readonly notes: GenerationProblem[];
}

/**
 * The patches of one EnvoyFilter, scoped to the proxies that declare the protocol's filter when
 * the stock proxy lacks it: `match.proxy.metadata` on every patch (listener and cluster alike),
 * merged into any proxy match the patch already has.
 */
export function scopePatches(protocol: Protocol, patches: readonly ConfigPatch[]): ConfigPatch[] {
  const metadata = proxyMetadataMatch(protocol);
  if (metadata === undefined) return [...patches];
  return patches.map((patch) => {
    const match = asRecord(patch.match) ?? {};
    const proxy = asRecord(match.proxy) ?? {};
    const existing = asRecord(proxy.metadata) ?? {};
    return { ...patch, match: { ...match, proxy: { ...proxy, metadata: { ...existing, ...metadata } } } };
  });
}

/** A port number Envoy's schema accepts for a listener or a filter chain match (1-65535). */
function isPortNumber(n: number): boolean {
  return isInteger(n) && n >= 1 && n <= 65535;
}

export type GenerationResult = ServiceOutput;

/** Decodes a cached Secret strictly: `data` (base64) and `stringData` (see model/secret.ts). */
export function secretData(entry: Entry | undefined): SecretData | undefined {
  return entry === undefined ? undefined : decodeSecret(entry.object);
}

function inNamespace(entries: readonly Entry[], namespace: string): Entry | undefined {
  return entries.find((e) => e.namespace === namespace);
}

/**
 * The EnvoyFilters for one service: every protocol port on its own, one outbound filter per VIP
 * per port and one inbound filter per port. A generator error costs only that port and
 * direction; it is reported, never thrown.
 */
export function generateService(
  store: ConfigStore,
  key: string,
  service: ServiceView,
  options: GenerationOptions,
): ServiceOutput {
  const out: ServiceOutput = { envoyFilters: [], problems: [], notes: [] };
  const host = service.hosts[0];
  if (host === undefined) {
    out.problems.push({ service: key, message: 'has no hosts' });
    return out;
  }
  if (isAmbientMode(store.namespaceDataplaneMode(service.namespace)))
    out.notes.push({ service: key, message: ambientGenerationNote(service.namespace) });
  // exportTo: only VirtualServices and DestinationRules visible in the service's namespace.
  const virtualServices = store.forHost('VirtualService', host, service.namespace);
  const virtualService = virtualServices[0];
  if (virtualService !== undefined && virtualServices.length > 1) {
    const others = virtualServices.slice(1).map((v) => `${v.namespace}/${v.name}`);
    out.notes.push({
      service: key,
      message: `VirtualServices ${others.join(', ')} also claim ${host}: ignored, using ${virtualService.namespace}/${virtualService.name} (the oldest)`,
    });
  }
  const destinationRule = store.forHost('DestinationRule', host, service.namespace)[0];
  const redisService = inNamespace(store.forHost('RedisService', host), service.namespace);
  const redisDestination = inNamespace(store.forHost('RedisDestination', host), service.namespace);
  const self: SourceRef = { kind: service.kind, namespace: service.namespace, name: service.name };
  const namespace = options.namespaceScope ? service.namespace : options.rootNamespace;

  // Outbound listeners are address:port pairs; each distinct address once, in spec order.
  const addresses = [...new Set(service.addresses)];
  let outboundLeft = MAX_LISTENERS_PER_SERVICE;
  let inboundLeft = MAX_LISTENERS_PER_SERVICE;
  let outboundSkipped = 0;
  let inboundSkipped = 0;
  // Protocols this service uses that are not enabled (`--protocols`): noted once per protocol.
  const disabled = new Set<Protocol>();

  for (const port of service.ports) {
    if (port.protocol === undefined) continue;
    if (options.protocols !== undefined && !options.protocols.has(port.protocol)) {
      disabled.add(port.protocol);
      continue;
    }
    // Generators get watched objects no webhook has checked: a value outside Envoy's schema is a
    // problem of this port, never emitted.
    if (!isPortNumber(port.number)) {
      out.problems.push({
        service: key,
        message: `port ${port.number} (${quote(port.name)}) is not a port number from 1 to 65535: no filters for it`,
      });
      continue;
    }
    const generator = GENERATORS[port.protocol];
    const ctx: PortContext = {
      service,
      host,
      port,
      protocol: port.protocol,
      virtualService: virtualService?.object,
      destinationRule: destinationRule?.object,
      redisService: redisService?.object,
      redisDestination: redisDestination?.object,
      secret: (ns, name) => secretData(store.get('Secret', ns, name)),
      servicesFor: (fqdn) => store.protocolServices(fqdn),
      options,
    };
    const plan = (direction: 'outbound' | 'inbound'): FilterPlan | undefined => {
      try {
        return direction === 'outbound' ? generator.outbound(ctx) : generator.inbound(ctx);
      } catch (err) {
        if (!isBreezeError(err, 'GENERATION')) throw err;
        out.problems.push({ service: key, port: port.number, direction, message: err.message });
        return undefined;
      }
    };
    const sourcesOf = (p: FilterPlan): SourceRef[] => [self, ...(p.sources ?? [])];

    if (addresses.length === 0) {
      out.notes.push({
        service: key,
        port: port.number,
        direction: 'outbound',
        message: 'no address yet (the mutating webhook allocates a VIP): no outbound filter',
      });
    } else if (outboundLeft === 0) {
      outboundSkipped += addresses.length;
    } else {
      const outbound = plan('outbound');
      if (outbound !== undefined) {
        const served = addresses.slice(0, outboundLeft);
        outboundSkipped += addresses.length - served.length;
        outboundLeft -= served.length;
        for (const [i, vip] of served.entries()) {
          // Cluster patches (Redis) go with the first VIP only: one cluster, added once.
          const extra = i === 0 ? (outbound.extraPatches ?? []) : [];
          out.envoyFilters.push(
            buildEnvoyFilter({
              name: outboundName(host, vip, port.number),
              service: key,
              namespace,
              protocol: port.protocol,
              workloadSelector: undefined,
              patches: scopePatches(port.protocol, [
                outboundListenerPatch(vip, port.number, outbound),
                ...extra,
              ]),
              sources: sourcesOf(outbound),
            }),
          );
        }
      }
    }

    const inboundPort = port.targetPort ?? port.number;
    if (service.workloadSelector === undefined) {
      out.notes.push({
        service: key,
        port: port.number,
        direction: 'inbound',
        message:
          'no workload selector (spec.workloadSelector or the workloadSelector annotation): no inbound filter',
      });
    } else if (!isPortNumber(inboundPort)) {
      out.problems.push({
        service: key,
        port: port.number,
        direction: 'inbound',
        message: `targetPort ${inboundPort} is not a port number from 1 to 65535: no inbound filter`,
      });
    } else if (inboundLeft === 0) {
      inboundSkipped++;
    } else {
      const inbound = plan('inbound');
      if (inbound !== undefined) {
        inboundLeft--;
        out.envoyFilters.push(
          buildEnvoyFilter({
            name: inboundName(host, port.number),
            service: key,
            namespace,
            protocol: port.protocol,
            workloadSelector: service.workloadSelector,
            patches: scopePatches(port.protocol, [inboundListenerPatch(inboundPort, inbound)]),
            sources: sourcesOf(inbound),
          }),
        );
      }
    }
  }
  for (const protocol of disabled) {
    // options.protocols is set whenever a protocol is disabled.
    const advice = switchAdvice(protocol, options.protocols ?? new Set());
    out.notes.push({ service: key, message: advice.join('; ') });
  }
  if (outboundSkipped > 0) {
    out.notes.push({
      service: key,
      direction: 'outbound',
      message:
        `${outboundSkipped} more address:port listeners than the ${MAX_LISTENERS_PER_SERVICE} one service may ` +
        'fan out to stay plain TCP (filters go to the first ones: ports in spec order, each with its addresses in order)',
    });
  }
  if (inboundSkipped > 0) {
    out.notes.push({
      service: key,
      direction: 'inbound',
      message: `${inboundSkipped} more protocol ports than ${MAX_LISTENERS_PER_SERVICE} stay plain TCP inbound (the first ones in spec order get filters)`,
    });
  }
  return out;
}

/**
 * istiod's synthetic ServiceEntry for a Kubernetes Service (`synthetic-<name>`) when the
 * Kubernetes source already delivered that Service: the same service twice, so it is skipped.
 */
function shadowedSynthetic(store: ConfigStore, key: string): boolean {
  const m = /^ServiceEntry\/([^/]+)\/synthetic-(.+)$/.exec(key);
  return m !== null && store.protocolService(`Service/${m[1] ?? ''}/${m[2] ?? ''}`) !== undefined;
}

function nameOf(ef: JsonRecord): string {
  const m = asRecord(ef.metadata);
  return `${asString(m?.namespace) ?? ''}/${asString(m?.name) ?? ''}`;
}

/**
 * Every protocol service in the store, in key order. The output is sorted by namespace/name, so
 * the same store gives the same bytes whatever order objects arrived in. Two services that would
 * write the same EnvoyFilter name: the first (by key) wins and the other gets a problem.
 */
export function generateAll(store: ConfigStore, options: GenerationOptions): GenerationResult {
  const result: GenerationResult = { envoyFilters: [], problems: [], notes: [] };
  const owner = new Map<string, string>();
  for (const { key, service } of store.allProtocolServices()) {
    if (shadowedSynthetic(store, key)) continue;
    const out = generateService(store, key, service, options);
    for (const ef of out.envoyFilters) {
      const name = nameOf(ef);
      const first = owner.get(name);
      if (first !== undefined) {
        result.problems.push({
          service: key,
          message: `EnvoyFilter ${name} is already generated for ${first}`,
        });
        continue;
      }
      owner.set(name, key);
      result.envoyFilters.push(ef);
    }
    result.problems.push(...out.problems);
    result.notes.push(...out.notes);
  }
  result.envoyFilters.sort((a, b) => (nameOf(a) < nameOf(b) ? -1 : nameOf(a) > nameOf(b) ? 1 : 0));
  return result;
}

/**
 * Incremental generation: the output of just these services (a key whose service is gone maps
 * to an empty output, so its EnvoyFilters are known to be obsolete). Cost follows the number of
 * keys, not the size of the store.
 */
export function generateForKeys(
  store: ConfigStore,
  keys: Iterable<string>,
  options: GenerationOptions,
): Map<string, ServiceOutput> {
  const out = new Map<string, ServiceOutput>();
  for (const key of keys) {
    const service = shadowedSynthetic(store, key) ? undefined : store.protocolService(key);
    out.set(
      key,
      service === undefined
        ? { envoyFilters: [], problems: [], notes: [] }
        : generateService(store, key, service, options),
    );
  }
  return out;
}
