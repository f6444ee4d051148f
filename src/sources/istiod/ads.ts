// The istiod source: ServiceEntries, VirtualServices and DestinationRules over istiod's "api"
// xDS generator (SotW ADS, the protocol Aeraki and istiod's own `xds://` config sources use).
//
// Protocol, as istiod implements it (see the reference notes on the api generator):
// - one StreamAggregatedResources stream; the node id is
//   `sidecar~<pod IP>~<pod>.<namespace>~<namespace>.svc.cluster.local` and the node metadata
//   (a google.protobuf.Struct of strings) carries GENERATOR=api, CLUSTER_ID="" (so synthetic
//   ServiceEntries carry the VIPs of every cluster) and NAMESPACE=<pod namespace>;
// - one wildcard subscription per type URL `networking.istio.io/<v1|v1alpha3>/<Kind>`. Istio
//   1.24+ keys its stores by v1 and answers v1alpha3 with an empty list (1.20-1.23: the other
//   way round), so BOTH are requested on every stream, with no version detection: their states
//   are kept apart and merged per kind (v1 wins for an object present in both), and an empty
//   answer for one version never wipes the other's. This works unchanged across an istiod
//   upgrade from 1.23 to 1.24 (the objects move from one type URL to the other in one push);
// - every response is the complete list for its type URL: it replaces that type URL's state,
//   deletions included. It is ACKed with its version and nonce; a response that cannot be
//   decoded is NACKed (error_detail, version of the last accepted response) and the last good
//   state of that type URL is kept. No per-resource partial apply: a SotW list without the
//   undecodable object would read as its deletion;
// - a kind is delivered with sink.replace('istiod', kind, objects) once every type URL of the
//   kind has answered, and again only when its digest (object keys and resourceVersions) moves:
//   istiod resends every watched type on every push and after each reconnect (it closes streams
//   every 30 minutes by default), and identical resends must cost nothing downstream.
//
// Identity (ENABLE_XDS_API_GENERATOR_AUTH, on by default since August 2026 in 1.29/1.30/1.31.0-
// beta.1 and later): the api generator answers only a verified caller whose namespace is the
// mesh root namespace; plaintext (15010) carries no identity. So Breeze connects with TLS to
// 15012 trusting istio's root CA, sends a projected service-account token (audience istio-ca)
// as `authorization: Bearer`, re-read from its file on every (re)connect since kubelet rotates
// it, and runs in the root namespace (node metadata NAMESPACE = its own namespace). A plaintext
// or otherwise doubtful setup is warned about once, at start, with the fix.
//
// Failures: a stream that ends is reopened with exponential backoff (0.5 s up to 60 s, jittered,
// reset by each response). A refusal of Breeze's identity (Unauthenticated, PermissionDenied, or
// istiod's message under another code) backs off on its own schedule (5 s doubling up to 5 min)
// and is reported on every attempt, i.e. at most once per backoff step: one error log naming
// the cause and the fix with the attempt count, breeze_source_errors_total{reason="auth"},
// breeze_source_ready 0, a Warning Event on Breeze's own Pod (when an event sink is given), and
// the /readyz reason while the source has not synced.
import { createHash } from 'node:crypto';
import grpc from '@grpc/grpc-js';
import type { ClientDuplexStream, StatusObject } from '@grpc/grpc-js';
import { canonicalJson, type JsonRecord } from '../../model/json.js';
import type { Eventer, InvolvedObject } from '../../reconcile/events.js';
import { guardedLogged } from '../guard.js';
import { readRegularFile } from '../regular-file.js';
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
import { initSource, type SourceErrorReason, type SourceMetrics } from './metrics.js';
import {
  ADS_PATH,
  istioProtos,
  stringStruct,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type NodeMessage,
} from './protos.js';

/** Where Istio's own sidecar mounts its projected istio-ca token; the path the chart should use. */
export const DEFAULT_ISTIOD_TOKEN_PATH = '/var/run/secrets/tokens/istio-token';
/** The mesh root namespace when none is configured (meshConfig.rootNamespace's default). */
export const DEFAULT_MESH_ROOT_NAMESPACE = 'istio-system';
/** A Kubernetes service-account token is 1-2 KiB; a larger "token" file is a mistake or hostile. */
export const MAX_TOKEN_FILE_BYTES = 64 * 1024;
/** The istio-ca-root-cert bundle holds a few certificates. */
export const MAX_CA_FILE_BYTES = 1024 * 1024;
/** istiod's status details are quoted in logs, Events and /readyz up to this many characters. */
export const MAX_DETAILS_QUOTED = 500;

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

/** Where refusals are reported as Kubernetes Events: an event sink and Breeze's own Pod. */
export interface IstiodEvents {
  readonly eventer: Pick<Eventer, 'event'>;
  readonly object: InvolvedObject;
}

export interface IstiodSourceOptions {
  /** istiod's gRPC address, `host:port`: 15012 TLS (current Istio), 15010 plaintext (refused by current istiod). */
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
  /** The mesh root namespace (meshConfig.rootNamespace; default istio-system), for warnings and advice. */
  readonly meshRootNamespace?: string;
  /** Cluster DNS domain of the node id (default cluster.local). */
  readonly domain?: string;
  /** Node metadata CLUSTER_ID (default "": synthetic ServiceEntries with every cluster's VIPs). */
  readonly clusterId?: string;
  readonly logger: Logger;
  readonly backoff?: BackoffOptions;
  /** Backoff after a refusal of Breeze's identity (default 5 s doubling up to 5 min). */
  readonly authBackoff?: BackoffOptions;
  /** breeze_source_ready / breeze_source_errors_total (optional: tests and local runs). */
  readonly metrics?: SourceMetrics;
  /** Refusals and recoveries as Events on Breeze's own Pod (cluster mode). */
  readonly events?: IstiodEvents;
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
export const DEFAULT_AUTH_BACKOFF = { initialMs: 5_000, maxMs: 300_000, multiplier: 2, jitter: 0.2 } as const;

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
    defaults: Required<BackoffOptions> = DEFAULT_BACKOFF,
  ) {
    this.initialMs = options.initialMs ?? defaults.initialMs;
    this.maxMs = Math.max(this.initialMs, options.maxMs ?? defaults.maxMs);
    this.multiplier = options.multiplier ?? defaults.multiplier;
    this.jitter = options.jitter ?? defaults.jitter;
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

/** How istiod refused Breeze's identity, if the stream ended with a refusal. */
export type Refusal = 'unauthenticated' | 'permission_denied';

/**
 * A refusal of Breeze's identity: gRPC Unauthenticated or PermissionDenied, or istiod's message
 * under another code (a proxy or load balancer in between may rewrite the code, not the text).
 */
export function classifyRefusal(code: grpc.status, details: string): Refusal | undefined {
  if (code === grpc.status.OK) return undefined;
  if (code === grpc.status.UNAUTHENTICATED) return 'unauthenticated';
  if (code === grpc.status.PERMISSION_DENIED) return 'permission_denied';
  const text = details.slice(0, 4096);
  if (/authorization failed|permission denied|root namespace|not authorized/i.test(text)) {
    return 'permission_denied';
  }
  if (
    /authentication failure|requires an authenticated|authentication required|unauthenticated/i.test(text)
  ) {
    return 'unauthenticated';
  }
  return undefined;
}

export interface AdviceContext {
  readonly address: string;
  readonly tls: boolean;
  readonly tokenFile: string | undefined;
  /** Breeze's namespace (node metadata NAMESPACE). */
  readonly namespace: string;
  /** The mesh root namespace (default istio-system). */
  readonly rootNamespace?: string;
}

/** What a refusal means and which change fixes it (one sentence of cause, then the fix). */
export function authAdvice(code: grpc.status | Refusal, context: AdviceContext): string {
  const root = context.rootNamespace ?? DEFAULT_MESH_ROOT_NAMESPACE;
  const kind: Refusal =
    code === 'permission_denied' || code === grpc.status.PERMISSION_DENIED
      ? 'permission_denied'
      : 'unauthenticated';
  const must = `Breeze must run in the mesh root namespace (meshConfig.rootNamespace, ${root}) and send a projected service-account token with audience istio-ca over TLS to istiod port 15012`;
  const disable =
    'or, to drop the check mesh-wide, set ENABLE_XDS_API_GENERATOR_AUTH=false on the istiod Deployment';
  const tlsRoute = `use --istiod-address istiod.${root}.svc:15012 with --istiod-ca-file (root-cert.pem of the istio-ca-root-cert ConfigMap) and --istiod-token-file (a projected token of audience istio-ca, e.g. ${DEFAULT_ISTIOD_TOKEN_PATH})`;
  if (kind === 'permission_denied') {
    const where =
      context.namespace === root
        ? `Breeze's namespace ${context.namespace} is the root namespace, so the token's namespace or service account does not match the node metadata (POD_NAMESPACE, sent as NAMESPACE: ${context.namespace})`
        : `Breeze runs in namespace ${context.namespace} (node metadata NAMESPACE), not the mesh root namespace ${root}`;
    return (
      `istiod at ${context.address} authenticated Breeze but refused its identity for the api xDS generator (ENABLE_XDS_API_GENERATOR_AUTH): ${where}. ` +
      `Fix: ${must}: install Breeze into ${root} with a token of its own service account; ${disable}`
    );
  }
  const head = `istiod at ${context.address} requires an authenticated control-plane identity for the api xDS generator (ENABLE_XDS_API_GENERATOR_AUTH, on by default)`;
  if (!context.tls && context.tokenFile === undefined) {
    return `${head}, and a plaintext connection carries none. Fix: ${must}: ${tlsRoute}; or set XDS_AUTH_PLAINTEXT=true on istiod and send the token on 15010; ${disable}`;
  }
  if (!context.tls) {
    return `${head}; istiod ignores tokens on plaintext unless XDS_AUTH_PLAINTEXT=true. Fix: ${must}: ${tlsRoute}; or set XDS_AUTH_PLAINTEXT=true on istiod; ${disable}`;
  }
  if (context.tokenFile === undefined) {
    return `${head}, and no token is configured. Fix: ${must}: mount a projected service-account token (serviceAccountToken.audience: istio-ca, e.g. at ${DEFAULT_ISTIOD_TOKEN_PATH}) and pass it with --istiod-token-file; ${disable}`;
  }
  return `${head}, and it rejected the token in ${context.tokenFile}. Fix: ${must}: the file must be a projected token (serviceAccountToken.audience: istio-ca, not the default service-account token), not expired, of a service account in ${root}; ${disable}`;
}

/** The port of `host:port` (also `[v6]:port`), or undefined. */
function portOf(address: string): number | undefined {
  const m = /:(\d{1,5})$/.exec(address);
  return m === null ? undefined : Number(m[1]);
}

/**
 * What in this setup current istiod (ENABLE_XDS_API_GENERATOR_AUTH) refuses, each with its fix;
 * empty when the setup is the one that works (TLS, a token, Breeze in the root namespace).
 */
export function transportWarnings(options: {
  readonly address: string;
  readonly tls: boolean;
  readonly tokenFile: string | undefined;
  readonly namespace: string;
  readonly rootNamespace?: string;
}): string[] {
  const root = options.rootNamespace ?? DEFAULT_MESH_ROOT_NAMESPACE;
  const port = portOf(options.address);
  const fix = `Fix: --istiod-address istiod.${root}.svc:15012 --istiod-ca-file <root-cert.pem of the istio-ca-root-cert ConfigMap> --istiod-token-file ${DEFAULT_ISTIOD_TOKEN_PATH} (a projected service-account token with audience istio-ca), with Breeze in the mesh root namespace ${root}`;
  const out: string[] = [];
  if (!options.tls) {
    out.push(
      `the istiod source connects in plaintext (no --istiod-ca-file${port === 15010 ? ', port 15010' : ''}): istiod with ENABLE_XDS_API_GENERATOR_AUTH (on by default in Istio 1.29/1.30 patches since August 2026 and 1.31+) always refuses the api generator on plaintext, so Breeze will get no config from it. ${fix}`,
    );
  } else if (port === 15010) {
    out.push(
      `--istiod-address ${options.address} names istiod's plaintext port 15010 but --istiod-ca-file asks for TLS, which istiod serves on 15012. ${fix}`,
    );
  }
  if (options.tls && options.tokenFile === undefined) {
    out.push(
      `no --istiod-token-file: over TLS istiod identifies Breeze by a projected service-account token (audience istio-ca) and refuses the api generator without one. ${fix}`,
    );
  }
  if (options.namespace !== root) {
    out.push(
      `Breeze runs in namespace ${options.namespace}, not the mesh root namespace ${root}: istiod with ENABLE_XDS_API_GENERATOR_AUTH refuses the api generator to any other namespace (PermissionDenied). Fix: install Breeze into ${root} (or set --root-namespace if the mesh root namespace is another one)`,
    );
  }
  return out;
}

/** At most MAX_DETAILS_QUOTED characters of istiod's text, one line. */
function quoteDetails(details: string): string {
  const line = details.replace(/[\r\n\t]+/g, ' ');
  return line.length > MAX_DETAILS_QUOTED ? `${line.slice(0, MAX_DETAILS_QUOTED)}...` : line;
}

/** Reads a small file (CA bundle, token) without blocking on a FIFO or reading a huge file. */
async function readSmallFile(path: string, max: number, what: string): Promise<string> {
  const read = await readRegularFile(path, max);
  if (read.ok) return read.text;
  if (read.reason === 'not-regular') throw new Error(`the ${what} ${path} is not a regular file`);
  throw new Error(`the ${what} ${path} is larger than ${max} bytes`);
}

/** A token as a header value: printable ASCII without spaces (a JWT); anything else is refused. */
function checkToken(token: string, path: string): string {
  const trimmed = token.trim();
  if (trimmed === '') throw new Error(`the token file ${path} is empty`);
  if (!/^[\x21-\x7e]+$/.test(trimmed)) {
    throw new Error(`the token file ${path} does not hold a token (spaces or non-ASCII characters)`);
  }
  return trimmed;
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

interface Material {
  readonly credentials: grpc.ChannelCredentials;
  readonly metadata: grpc.Metadata;
}

/** The last refusal of Breeze's identity (until a stream is accepted again). */
interface RefusalState {
  readonly kind: Refusal;
  readonly code: string;
  readonly details: string;
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
  private readonly authBackoff: Backoff;
  private readonly rootNamespace: string;
  private sink: ConfigSink | undefined;
  private connection: Connection | undefined;
  private connectionSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Failed attempts since the last accepted response. */
  private failures = 0;
  /** Refusals of Breeze's identity since the last accepted response. */
  private refusals = 0;
  private refusal: RefusalState | undefined;
  /** Why the last attempt failed (other than a refusal), until one is accepted. */
  private lastError: string | undefined;
  private resolveStart: (() => void) | undefined;
  private startPromise: Promise<void> | undefined;

  constructor(private readonly options: IstiodSourceOptions) {
    this.log = options.logger.child({ source: 'istiod', address: options.address });
    this.kinds = options.kinds ?? ISTIOD_KINDS;
    this.rootNamespace = options.meshRootNamespace ?? DEFAULT_MESH_ROOT_NAMESPACE;
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
    this.authBackoff = new Backoff(options.authBackoff, Math.random, DEFAULT_AUTH_BACKOFF);
    if (options.metrics !== undefined) initSource(options.metrics, this.name);
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

  /** The token file in use (TLS or plaintext). */
  private tokenFile(): string | undefined {
    return this.options.tls?.tokenFile ?? this.options.tokenFile;
  }

  /** What current istiod will refuse in this setup (see transportWarnings). */
  warnings(): string[] {
    return transportWarnings({
      address: this.options.address,
      tls: this.options.tls !== undefined,
      tokenFile: this.tokenFile(),
      namespace: this.options.podNamespace,
      rootNamespace: this.rootNamespace,
    });
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
    for (const warning of this.warnings()) this.log.warn(warning);
    if (this.states.size === 0) this.resolveStart?.();
    this.connect();
    return this.startPromise;
  }

  synced(): boolean {
    for (const state of this.states.values()) if (!state.answered) return false;
    return true;
  }

  /** Why the source has not synced yet (a /readyz reason), or undefined once it has. */
  notReadyReason(): string | undefined {
    if (this.synced()) return undefined;
    if (this.refusal !== undefined) {
      const advice =
        this.refusal.kind === 'permission_denied'
          ? `Breeze must run in the mesh root namespace ${this.rootNamespace}`
          : 'Breeze must connect with TLS to port 15012 and a projected token of audience istio-ca';
      return `istiod source: istiod refused Breeze's identity (${this.refusal.code}, ${this.refusals} attempts): ${advice}; see the error log`;
    }
    if (this.lastError !== undefined) {
      return `istiod source: not synced, ${this.failures} failed attempts (last: ${this.lastError})`;
    }
    return 'istiod source: waiting for the initial state';
  }

  stop(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.closeConnection();
    this.options.metrics?.setReady(this.name, false);
    this.resolveStart?.();
    return Promise.resolve();
  }

  // -------------------------------------------------------------------------------------------
  // Stream lifecycle

  private connect(): void {
    this.timer = undefined;
    if (this.stopped) return;
    this.closeConnection(); // never two streams: a resync or a retry replaces the current one
    const id = ++this.connectionSeq;
    this.prepare().then(
      guardedLogged(
        this.log,
        'opening the istiod ADS stream',
        (material: Material) => this.open(id, material),
        () => this.retryLater(),
      ),
      guardedLogged(
        this.log,
        'handling an istiod connection failure',
        (err: unknown) => this.onSetupFailure(id, err),
        () => this.retryLater(),
      ),
    );
  }

  /** Credentials and call metadata, the CA and the token read afresh (kubelet rotates the token). */
  private async prepare(): Promise<Material> {
    const tls = this.options.tls;
    const tokenFile = this.tokenFile();
    const metadata = new grpc.Metadata();
    let credentials = grpc.credentials.createInsecure();
    if (tls !== undefined) {
      const ca = await readSmallFile(tls.caFile, MAX_CA_FILE_BYTES, 'CA file');
      credentials = grpc.credentials.createSsl(Buffer.from(ca));
    }
    if (tokenFile !== undefined) {
      const token = checkToken(await readSmallFile(tokenFile, MAX_TOKEN_FILE_BYTES, 'token file'), tokenFile);
      metadata.set('authorization', `Bearer ${token}`);
    }
    return { credentials, metadata };
  }

  private onSetupFailure(id: number, err: unknown): void {
    if (this.stopped || id !== this.connectionSeq) return;
    this.failures++;
    this.lastError = errorText(err);
    this.options.metrics?.countError(this.name, 'connect');
    this.options.metrics?.setReady(this.name, false);
    const delay = this.backoff.next();
    this.log.error(
      { err: this.lastError, retryInMs: delay, attempt: this.failures, reason: 'connect' },
      'cannot set up the istiod connection (CA or token file)',
    );
    this.schedule(delay);
  }

  private open(id: number, material: Material): void {
    if (this.stopped || id !== this.connectionSeq) return;
    const tls = this.options.tls;
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
    let client: grpc.Client;
    try {
      client = new grpc.Client(this.options.address, material.credentials, channelOptions);
    } catch (err) {
      this.onSetupFailure(id, err);
      return;
    }
    const protos = istioProtos();
    const call = client.makeBidiStreamRequest<DiscoveryRequest, DiscoveryResponse>(
      ADS_PATH,
      protos.encodeRequest,
      protos.decodeResponse,
      material.metadata,
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
    const details = quoteDetails(status.details);
    const refusal = classifyRefusal(status.code, status.details);
    if (refusal !== undefined) {
      this.onRefused(refusal, statusName(status.code), details);
      return;
    }
    const fields = {
      code: statusName(status.code),
      details,
      responses: connection.responses,
      attempt: this.failures,
    };
    const delay = this.backoff.next();
    if (connection.responses === 0) {
      // The attempt failed (unreachable, TLS, istiod not ready): not a routine close.
      this.lastError = `${statusName(status.code)}: ${details}`;
      this.count('connect');
      this.options.metrics?.setReady(this.name, false);
      this.log.warn(
        { ...fields, retryInMs: delay, reason: 'connect' },
        'istiod ADS stream failed; reconnecting',
      );
    } else {
      // The periodic close (max connection age) after a healthy stream is routine.
      const routine = [grpc.status.OK, grpc.status.UNAVAILABLE, grpc.status.CANCELLED].includes(status.code);
      if (!routine) this.count('stream');
      this.log[routine ? 'info' : 'warn'](
        { ...fields, retryInMs: delay },
        'istiod ADS stream ended; reconnecting',
      );
    }
    this.schedule(delay);
  }

  /** istiod refused Breeze's identity: report it with the fix, back off on the auth schedule. */
  private onRefused(kind: Refusal, code: string, details: string): void {
    this.refusals++;
    this.refusal = { kind, code, details };
    this.lastError = undefined;
    const delay = this.authBackoff.next();
    const advice = authAdvice(kind, {
      address: this.options.address,
      tls: this.options.tls !== undefined,
      tokenFile: this.tokenFile(),
      namespace: this.options.podNamespace,
      rootNamespace: this.rootNamespace,
    });
    this.count('auth');
    this.options.metrics?.setReady(this.name, false);
    const message = `${advice} (istiod said: ${code}: ${details})`;
    // One line per attempt, and attempts are one backoff step apart (capped at 5 minutes).
    this.log.error(
      { code, details, reason: 'auth', attempt: this.refusals, retryInMs: delay },
      `istiod refused Breeze: ${message}`,
    );
    // Same message on every refusal of the same kind: the event sink deduplicates them.
    this.options.events?.eventer.event(this.options.events.object, 'Warning', 'IstiodAuthFailed', message);
    this.schedule(delay);
  }

  private count(reason: SourceErrorReason): void {
    this.options.metrics?.countError(this.name, reason);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
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
    this.connectionSeq++; // an attempt still reading its files is dropped when it finishes
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

  /** The first response of a stream: istiod accepted Breeze; clear the failure state. */
  private accepted(): void {
    if (this.refusals > 0) {
      this.log.info(
        { refusedAttempts: this.refusals, attempt: this.failures },
        "istiod accepted Breeze's identity; the istiod source is receiving config again",
      );
      this.options.events?.eventer.event(
        this.options.events.object,
        'Normal',
        'IstiodConnected',
        `istiod at ${this.options.address} accepted Breeze's identity after ${this.refusals} refused attempts`,
      );
    } else {
      this.log.info({ attempt: this.failures }, 'istiod ADS stream established');
    }
    this.failures = 0;
    this.refusals = 0;
    this.refusal = undefined;
    this.lastError = undefined;
    this.backoff.reset();
    this.authBackoff.reset();
  }

  // -------------------------------------------------------------------------------------------
  // Responses

  private onResponse(connection: Connection, response: DiscoveryResponse): void {
    if (this.stopped || this.connection?.id !== connection.id) return;
    if (connection.responses++ === 0) this.accepted();
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
      this.count('decode');
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
    if (this.synced()) {
      this.options.metrics?.setReady(this.name, true);
      this.resolveStart?.();
    }
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

/** The gRPC status name (a code istiod or a proxy made up: the number). */
function statusName(code: grpc.status): string {
  return (grpc.status as unknown as Record<number, string | undefined>)[code] ?? String(code);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
