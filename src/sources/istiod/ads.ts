// The istiod source: ServiceEntries, VirtualServices and DestinationRules over istiod's "api"
// xDS generator (SotW ADS, the protocol Aeraki and istiod's own `xds://` config sources use).
//
// Protocol, as istiod implements it (see the reference notes on the api generator):
// - one StreamAggregatedResources stream; the node id is
//   `sidecar~<pod IP>~<pod>.<namespace>~<namespace>.svc.cluster.local` and the node metadata
//   (a google.protobuf.Struct of strings) carries GENERATOR=api, CLUSTER_ID="" (so synthetic
//   ServiceEntries carry the VIPs of every cluster) and NAMESPACE=<pod namespace>;
// - one wildcard subscription per type URL `networking.istio.io/<v1|v1alpha3>/<Kind>`. Istio
//   1.24+ keys its stores by v1 and answers v1alpha3 with an empty list (1.18-1.23: the other
//   way round), so both are requested, their states are kept apart and merged per kind (v1 wins
//   for an object present in both): an empty answer for one version never wipes the other's;
// - every response is the complete list for its type URL: it replaces that type URL's state,
//   deletions included. It is ACKed with its version and nonce; a response that cannot be
//   decoded is NACKed (error_detail, version of the last accepted response) and the last good
//   state of that type URL is kept. No per-resource partial apply: a SotW list without the
//   undecodable object would read as its deletion;
// - a kind is delivered with sink.replace('istiod', kind, objects) once every type URL of the
//   kind has answered, and again only when its digest (object keys and resourceVersions) moves:
//   istiod resends every watched type on every push and after each reconnect (it closes streams
//   every 30 minutes by default), and identical resends must cost nothing downstream;
// - a stream that ends for any reason is reopened with exponential backoff (0.5 s up to 60 s,
//   jittered, reset by each response). Unauthenticated and PermissionDenied (the api generator is
//   restricted to control-plane identities since ENABLE_XDS_API_GENERATOR_AUTH) are logged with
//   the istiod setting or deployment change that fixes them, and retried at the maximum interval.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import grpc from '@grpc/grpc-js';
import type { ClientDuplexStream, StatusObject } from '@grpc/grpc-js';
import { canonicalJson, type JsonRecord } from '../../model/json.js';
import { guardedLogged } from '../guard.js';
import type { Logger } from '../../telemetry/logger.js';
import type { ConfigSink, Source } from '../types.js';
import {
  decodeMcpEnvelope,
  istioTypeUrl,
  ISTIOD_API_VERSIONS,
  ISTIOD_KINDS,
  mcpToObject,
  type IstiodApiVersion,
  type IstiodKind,
} from './mcp.js';
import {
  ADS_PATH,
  istioProtos,
  stringStruct,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type NodeMessage,
} from './protos.js';

export interface IstiodTlsOptions {
  /** PEM bundle to trust: the istio-ca-root-cert ConfigMap (root-cert.pem), mounted. Read on each connect. */
  readonly caFile: string;
  /**
   * A projected service-account token (audience istio-ca), sent as `authorization: Bearer` and
   * re-read on each connect (kubelet rotates it).
   */
  readonly tokenFile?: string;
  /** The name to verify istiod's certificate against when the address does not carry it. */
  readonly serverName?: string;
}

export interface BackoffOptions {
  readonly initialMs?: number;
  readonly maxMs?: number;
  readonly multiplier?: number;
  /** Relative jitter: each delay is scaled by a random factor in [1 - jitter, 1 + jitter]. */
  readonly jitter?: number;
}

export interface IstiodSourceOptions {
  /** istiod's gRPC address, `host:port`: 15010 plaintext, 15012 TLS. */
  readonly address: string;
  /** TLS (port 15012). Without it the connection is plaintext (15010). */
  readonly tls?: IstiodTlsOptions;
  /**
   * A bearer-token file for plaintext connections (istiod with XDS_AUTH_PLAINTEXT=true). With TLS,
   * use `tls.tokenFile`.
   */
  readonly tokenFile?: string;
  readonly podName: string;
  readonly podNamespace: string;
  readonly podIp: string;
  /** Cluster DNS domain of the node id (default cluster.local). */
  readonly domain?: string;
  /** Node metadata CLUSTER_ID (default "": synthetic ServiceEntries with every cluster's VIPs). */
  readonly clusterId?: string;
  readonly logger: Logger;
  readonly backoff?: BackoffOptions;
  /** Kinds to subscribe to (default all three). */
  readonly kinds?: readonly IstiodKind[];
  /** API versions to request per kind (default v1 and v1alpha3, v1 preferred). */
  readonly apiVersions?: readonly IstiodApiVersion[];
  /** Largest response accepted (default 256 MiB; istiod sends every object of a type at once). */
  readonly maxMessageBytes?: number;
  /**
   * Reopen the stream this often (default never: istiod's own max connection age, 30 minutes in
   * the stock install, already does). istiod filters pushes by the client's Sidecar scope, so a
   * change not visible to Breeze's namespace may only show on the next full resend; this bounds
   * how late. A reopen costs no sink calls when nothing changed.
   */
  readonly resyncIntervalMs?: number;
}

export const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 60_000, multiplier: 2, jitter: 0.2 } as const;

/** Exponential backoff with jitter; `next()` grows the interval, `reset()` starts over. */
export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly multiplier: number;
  private readonly jitter: number;
  private current: number;

  constructor(
    options: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.initialMs = options.initialMs ?? DEFAULT_BACKOFF.initialMs;
    this.maxMs = Math.max(this.initialMs, options.maxMs ?? DEFAULT_BACKOFF.maxMs);
    this.multiplier = options.multiplier ?? DEFAULT_BACKOFF.multiplier;
    this.jitter = options.jitter ?? DEFAULT_BACKOFF.jitter;
    this.current = this.initialMs;
  }

  /** The next delay, then grows the interval (up to the maximum). */
  next(): number {
    const delay = this.jittered(this.current);
    this.current = Math.min(this.maxMs, this.current * this.multiplier);
    return delay;
  }

  /** A delay at the maximum interval (and stays there until reset). */
  max(): number {
    this.current = this.maxMs;
    return this.jittered(this.maxMs);
  }

  reset(): void {
    this.current = this.initialMs;
  }

  private jittered(ms: number): number {
    const factor = 1 - this.jitter + 2 * this.jitter * this.random();
    return Math.round(Math.min(this.maxMs, Math.max(0, ms * factor)));
  }
}

/** What an Unauthenticated or PermissionDenied answer means and which setting fixes it. */
export function authAdvice(
  code: grpc.status,
  context: { address: string; tls: boolean; tokenFile: string | undefined; namespace: string },
): string {
  const disable = 'set ENABLE_XDS_API_GENERATOR_AUTH=false in the environment of the istiod Deployment';
  const tlsRoute =
    'connect with TLS to istiod port 15012 (trusting the istio-ca-root-cert ConfigMap) with a projected service-account token of audience istio-ca, running Breeze in the mesh root namespace (meshConfig.rootNamespace, istio-system by default) so that its identity and node metadata NAMESPACE name that namespace';
  const plainRoute = 'set XDS_AUTH_PLAINTEXT=true on istiod and send the service-account token on 15010';
  if (code === grpc.status.PERMISSION_DENIED) {
    return (
      `istiod at ${context.address} authenticated Breeze but refused its identity for the api xDS generator: ` +
      `the identity's namespace must be the mesh root namespace and equal node metadata NAMESPACE (sent: ${context.namespace}). ` +
      `Fix: deploy Breeze in the mesh root namespace (meshConfig.rootNamespace, istio-system by default) with its own service-account token, or ${disable}`
    );
  }
  const head = `istiod at ${context.address} requires an authenticated control-plane identity for the api xDS generator (ENABLE_XDS_API_GENERATOR_AUTH, on by default)`;
  if (!context.tls && context.tokenFile === undefined) {
    return `${head}, and a plaintext connection carries none. Fix one of: (a) ${disable}; (b) ${tlsRoute}; (c) ${plainRoute}`;
  }
  if (!context.tls) {
    return `${head}; istiod ignores tokens on plaintext unless XDS_AUTH_PLAINTEXT=true. Fix one of: (a) set XDS_AUTH_PLAINTEXT=true on istiod; (b) ${tlsRoute}; (c) ${disable}`;
  }
  if (context.tokenFile === undefined) {
    return `${head}, and no token is configured. Fix one of: (a) mount a projected service-account token with audience istio-ca and configure its file (Breeze must run in the mesh root namespace, istio-system by default); (b) ${disable}`;
  }
  return `${head}, and it rejected the token in ${context.tokenFile}. Fix one of: (a) make it a projected service-account token with audience istio-ca (serviceAccountToken.audience: istio-ca), not expired, of a service account in the mesh root namespace (istio-system by default); (b) ${disable}`;
}

interface ObjectState {
  readonly version: string;
  readonly object: JsonRecord;
  /** resourceVersion, or a content hash for objects without one. */
  readonly digest: string;
}

interface TypeUrlState {
  readonly typeUrl: string;
  readonly kind: IstiodKind;
  /** version_info of the last accepted response ('' before one). */
  acceptedVersion: string;
  answered: boolean;
  objects: Map<string, ObjectState>;
}

interface Connection {
  readonly id: number;
  readonly client: grpc.Client;
  readonly call: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  responses: number;
  resync?: NodeJS.Timeout;
}

/** The istiod ADS source (origin `istiod`). */
export class IstiodSource implements Source {
  readonly name = 'istiod';
  private readonly log: Logger;
  private readonly kinds: readonly IstiodKind[];
  private readonly states = new Map<string, TypeUrlState>();
  /** Type URLs per kind, most preferred first. */
  private readonly typeUrlsByKind = new Map<IstiodKind, TypeUrlState[]>();
  private readonly delivered = new Map<IstiodKind, string>();
  private readonly backoff: Backoff;
  private sink: ConfigSink | undefined;
  private connection: Connection | undefined;
  private connectionSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failures = 0;
  private resolveStart: (() => void) | undefined;
  private startPromise: Promise<void> | undefined;

  constructor(private readonly options: IstiodSourceOptions) {
    this.log = options.logger.child({ source: 'istiod', address: options.address });
    this.kinds = options.kinds ?? ISTIOD_KINDS;
    const versions = options.apiVersions ?? ISTIOD_API_VERSIONS;
    for (const kind of this.kinds) {
      const list = versions.map((v) => {
        const state: TypeUrlState = {
          typeUrl: istioTypeUrl(v, kind),
          kind,
          acceptedVersion: '',
          answered: false,
          objects: new Map(),
        };
        this.states.set(state.typeUrl, state);
        return state;
      });
      this.typeUrlsByKind.set(kind, list);
    }
    this.backoff = new Backoff(options.backoff);
  }

  /** The subscribed type URLs. */
  typeUrls(): string[] {
    return [...this.states.keys()];
  }

  /** The node id sent to istiod. */
  nodeId(): string {
    const { podIp, podName, podNamespace } = this.options;
    return `sidecar~${podIp}~${podName}.${podNamespace}~${podNamespace}.svc.${this.options.domain ?? 'cluster.local'}`;
  }

  /** The node sent on every request. */
  node(): NodeMessage {
    return {
      id: this.nodeId(),
      metadata: stringStruct({
        GENERATOR: 'api',
        CLUSTER_ID: this.options.clusterId ?? '',
        NAMESPACE: this.options.podNamespace,
      }),
    };
  }

  /** Resolves once every kind was delivered (or when stopped first); keeps reconnecting until stop(). */
  start(sink: ConfigSink): Promise<void> {
    if (this.startPromise !== undefined) return this.startPromise;
    if (this.stopped) return Promise.resolve();
    this.sink = sink;
    this.startPromise = new Promise<void>((resolve) => {
      this.resolveStart = resolve;
    });
    istioProtos(); // load errors surface here, synchronously, rather than in a stream callback
    if (this.states.size === 0) this.resolveStart?.();
    this.connect();
    return this.startPromise;
  }

  synced(): boolean {
    for (const state of this.states.values()) if (!state.answered) return false;
    return true;
  }

  stop(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.closeConnection();
    this.resolveStart?.();
    return Promise.resolve();
  }

  // -------------------------------------------------------------------------------------------
  // Stream lifecycle

  private connect(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const id = ++this.connectionSeq;
    const tls = this.options.tls;
    const tokenFile = tls?.tokenFile ?? this.options.tokenFile;
    let client: grpc.Client;
    const metadata = new grpc.Metadata();
    try {
      let credentials = grpc.credentials.createInsecure();
      if (tls !== undefined) credentials = grpc.credentials.createSsl(readFileSync(tls.caFile));
      if (tokenFile !== undefined) {
        const token = readFileSync(tokenFile, 'utf8').trim();
        if (token === '') throw new Error(`the token file ${tokenFile} is empty`);
        metadata.set('authorization', `Bearer ${token}`);
      }
      const channelOptions: grpc.ChannelOptions = {
        'grpc.max_receive_message_length': this.options.maxMessageBytes ?? 256 * 1024 * 1024,
        // Channels are per connection attempt (CA and token are re-read): no shared subchannels.
        'grpc.use_local_subchannel_pool': 1,
        // Not more often than the 5-minute minimum a Go gRPC server enforces by default.
        'grpc.keepalive_time_ms': 300_000,
        'grpc.keepalive_timeout_ms': 20_000,
      };
      if (tls?.serverName !== undefined) {
        channelOptions['grpc.ssl_target_name_override'] = tls.serverName;
        channelOptions['grpc.default_authority'] = tls.serverName;
      }
      client = new grpc.Client(this.options.address, credentials, channelOptions);
    } catch (err) {
      this.failures++;
      const delay = this.backoff.next();
      this.log.error(
        { err: errorText(err), retryInMs: delay, attempt: this.failures },
        'cannot set up the istiod connection (CA or token file)',
      );
      this.schedule(delay);
      return;
    }
    const protos = istioProtos();
    const call = client.makeBidiStreamRequest<DiscoveryRequest, DiscoveryResponse>(
      ADS_PATH,
      protos.encodeRequest,
      protos.decodeResponse,
      metadata,
    );
    const connection: Connection = { id, client, call, responses: 0 };
    this.connection = connection;
    call.on(
      'data',
      guardedLogged(this.log, 'handling an istiod response', (response: DiscoveryResponse) => {
        this.onResponse(connection, response);
      }),
    );
    // Non-OK statuses also arrive as 'error'; 'status' handles both.
    call.on('error', () => undefined);
    call.on(
      'status',
      guardedLogged(
        this.log,
        'handling the end of the istiod stream',
        (status: StatusObject) => this.onStreamEnd(connection, status),
        () => this.retryLater(),
      ),
    );
    const resync = this.options.resyncIntervalMs;
    if (resync !== undefined && resync > 0) {
      connection.resync = setTimeout(
        guardedLogged(
          this.log,
          'reopening the istiod ADS stream',
          () => {
            if (this.connection?.id !== connection.id) return;
            this.log.debug({ responses: connection.responses }, 'reopening the istiod ADS stream (resync)');
            this.closeConnection();
            this.connect();
          },
          () => this.retryLater(),
        ),
        resync,
      );
    }
    this.log.debug({ attempt: this.failures, typeUrls: this.typeUrls() }, 'opening the istiod ADS stream');
    const node = this.node();
    for (const state of this.states.values()) {
      this.send(connection, {
        version_info: '',
        node,
        resource_names: [],
        type_url: state.typeUrl,
        response_nonce: '',
      });
    }
  }

  private onStreamEnd(connection: Connection, status: StatusObject): void {
    if (this.connection?.id !== connection.id) return;
    this.closeConnection();
    if (this.stopped) return;
    this.failures++;
    const fields = {
      code: grpc.status[status.code],
      details: status.details,
      responses: connection.responses,
      attempt: this.failures,
    };
    if (status.code === grpc.status.UNAUTHENTICATED || status.code === grpc.status.PERMISSION_DENIED) {
      const delay = this.backoff.max();
      const advice = authAdvice(status.code, {
        address: this.options.address,
        tls: this.options.tls !== undefined,
        tokenFile: this.options.tls?.tokenFile ?? this.options.tokenFile,
        namespace: this.options.podNamespace,
      });
      this.log.error({ ...fields, retryInMs: delay }, `${advice} (istiod said: ${status.details})`);
      this.schedule(delay);
      return;
    }
    const delay = this.backoff.next();
    // The periodic close (max connection age) after a healthy stream is routine.
    const level = connection.responses > 0 ? 'info' : 'warn';
    this.log[level]({ ...fields, retryInMs: delay }, 'istiod ADS stream ended; reconnecting');
    this.schedule(delay);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      guardedLogged(
        this.log,
        'connecting to istiod',
        () => this.connect(),
        () => this.retryLater(),
      ),
      delay,
    );
  }

  /** After a callback failed: drop the connection and try again after a backoff (never twice). */
  private retryLater(): void {
    try {
      this.closeConnection();
    } catch {
      this.connection = undefined;
    }
    if (this.timer === undefined) this.schedule(this.backoff.next());
  }

  private closeConnection(): void {
    const connection = this.connection;
    if (connection === undefined) return;
    this.connection = undefined;
    if (connection.resync !== undefined) clearTimeout(connection.resync);
    connection.call.cancel();
    connection.client.close();
  }

  private send(connection: Connection, request: DiscoveryRequest): void {
    try {
      connection.call.write(request);
    } catch (err) {
      this.log.warn({ err: errorText(err), typeUrl: request.type_url }, 'cannot write to the istiod stream');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Responses

  private onResponse(connection: Connection, response: DiscoveryResponse): void {
    if (this.stopped || this.connection?.id !== connection.id) return;
    if (connection.responses++ === 0) {
      this.log.info({ attempt: this.failures }, 'istiod ADS stream established');
    }
    this.failures = 0;
    this.backoff.reset();
    const state = this.states.get(response.type_url);
    const ack: DiscoveryRequest = {
      version_info: response.version_info,
      node: this.node(),
      resource_names: [],
      type_url: response.type_url,
      response_nonce: response.nonce,
    };
    if (state === undefined) {
      this.log.warn({ typeUrl: response.type_url }, 'istiod sent a type that was not requested; ignored');
      this.send(connection, ack);
      return;
    }
    let objects: Map<string, ObjectState>;
    try {
      objects = this.decode(state, response);
    } catch (err) {
      const message = errorText(err);
      this.log.error(
        { typeUrl: state.typeUrl, version: response.version_info, nonce: response.nonce, err: message },
        'NACK: cannot decode an istiod response; keeping the last accepted state of this type',
      );
      this.send(connection, {
        ...ack,
        version_info: state.acceptedVersion,
        error_detail: { code: grpc.status.INVALID_ARGUMENT, message },
      });
      return;
    }
    state.objects = objects;
    state.acceptedVersion = response.version_info;
    state.answered = true;
    this.send(connection, ack);
    this.deliver(state.kind);
    if (this.synced()) this.resolveStart?.();
  }

  /** The new state of a type URL; throws on the first resource that cannot be decoded. */
  private decode(state: TypeUrlState, response: DiscoveryResponse): Map<string, ObjectState> {
    const out = new Map<string, ObjectState>();
    response.resources.forEach((any, index) => {
      let envelope;
      try {
        envelope = decodeMcpEnvelope(any);
      } catch (err) {
        throw new Error(`resources[${index}]: ${errorText(err)}`, { cause: err });
      }
      const key = `${envelope.namespace}/${envelope.name}`;
      if (out.has(key)) throw new Error(`resources[${index}]: ${key} is listed twice`);
      const previous = state.objects.get(key);
      // Same resourceVersion, same object: skip decoding the body again.
      if (previous !== undefined && envelope.version !== '' && previous.version === envelope.version) {
        out.set(key, previous);
        return;
      }
      let object: JsonRecord;
      try {
        object = mcpToObject(state.kind, envelope);
      } catch (err) {
        throw new Error(`resources[${index}] (${key}): ${errorText(err)}`, { cause: err });
      }
      const digest =
        envelope.version !== ''
          ? `v${envelope.version}`
          : `h${createHash('sha256').update(canonicalJson(object)).digest('hex').slice(0, 32)}`;
      out.set(key, { version: envelope.version, object, digest });
    });
    return out;
  }

  /** Delivers a kind's merged state when every type URL of it answered and its digest moved. */
  private deliver(kind: IstiodKind): void {
    const states = this.typeUrlsByKind.get(kind) ?? [];
    if (states.some((s) => !s.answered)) return;
    const merged = new Map<string, ObjectState>();
    for (const state of states) {
      for (const [key, entry] of state.objects) if (!merged.has(key)) merged.set(key, entry);
    }
    const keys = [...merged.keys()].sort();
    const digest = keys.map((k) => `${k}@${merged.get(k)?.digest ?? ''}`).join('\n');
    if (this.delivered.get(kind) === digest) {
      this.log.debug({ kind, objects: keys.length }, 'istiod resent an unchanged state');
      return;
    }
    const objects = keys.map((k) => merged.get(k)?.object).filter((o): o is JsonRecord => o !== undefined);
    try {
      this.sink?.replace('istiod', kind, objects);
      this.delivered.set(kind, digest);
      this.log.debug({ kind, objects: objects.length }, 'delivered istiod state');
    } catch (err) {
      this.log.error({ kind, err: errorText(err) }, 'the config sink rejected istiod state');
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
