// A scriptable istiod for tests: a @grpc/grpc-js server implementing SotW
// AggregatedDiscoveryService/StreamAggregatedResources on the real protos, answering like
// istiod's "api" generator (every response is the full list of its type URL as MCP Resources;
// ACKs and NACKs are recorded and not answered; an unknown type URL gets an empty list, as
// v1alpha3 does on Istio 1.24+).
//
// Versions: setConfig() stores a kind under the type URL the configured Istio serves it on
// (`apiVersion: 'v1'`, 1.24+, the default; `'v1alpha3'`, 1.20-1.23); the other version answers
// an empty list, as istiod does. setServedVersion() is an istiod upgrade (or downgrade).
//
// Auth (`auth`), as istiod with ENABLE_XDS_API_GENERATOR_AUTH (pilot/pkg/xds/{ads,auth}.go and
// the api generator):
// - TLS, or plaintext with `auth.plaintext` (XDS_AUTH_PLAINTEXT=true): the bearer token must be
//   one of `auth.tokens` (a TokenReview that succeeds), else the stream ends Unauthenticated
//   "authentication failure: ..." at once. Plaintext otherwise carries no identity (no error);
// - on the first request: an identity whose namespace is not the node metadata NAMESPACE ends
//   the stream PermissionDenied "authorization failed: no identities (...) matched ns/sa"
//   (checkConnectionIdentity);
// - the api generator then needs an identity (else Unauthenticated "the api generator requires
//   an authenticated control-plane identity") in the root namespace (else PermissionDenied; the
//   text of this one message is the fake's own, the code is istiod's).
import grpc from '@grpc/grpc-js';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { JsonRecord } from '../../src/model/json.js';
import {
  istioTypeUrl,
  objectToMcp,
  type IstiodApiVersion,
  type IstiodKind,
} from '../../src/sources/istiod/mcp.js';
import {
  istioProtos,
  MCP_RESOURCE_TYPE,
  structStrings,
  TYPE_URL_PREFIX,
  type AnyMessage,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from '../../src/sources/istiod/protos.js';

/** The identity a token stands for: spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>. */
export interface FakeIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface FakeAuth {
  /** Tokens the fake's TokenReview accepts (audience istio-ca), and whose identity each is. */
  readonly tokens: Readonly<Record<string, FakeIdentity>>;
  /** meshConfig.rootNamespace (default istio-system). */
  readonly rootNamespace?: string;
  /** XDS_AUTH_PLAINTEXT=true: tokens are checked on plaintext too (default false). */
  readonly plaintext?: boolean;
}

export interface FakeIstiodOptions {
  /** Serve TLS with this certificate and key (PEM). */
  readonly tls?: { cert: string; key: string };
  /** Require `authorization: Bearer <token>`; other streams end Unauthenticated. */
  readonly token?: string;
  /** Enforce ENABLE_XDS_API_GENERATOR_AUTH (see the header). Unset: the check is off. */
  readonly auth?: FakeAuth;
  /** The version istiod keys its stores by: v1 (Istio 1.24+, default) or v1alpha3 (1.20-1.23). */
  readonly apiVersion?: IstiodApiVersion;
}

/** A stream the fake ended with an auth error. */
export interface FakeRefusal {
  readonly stream: number;
  readonly code: grpc.status;
  readonly details: string;
}

export const AUTHN_FAILURE =
  'authentication failure: [Authenticator ClientCertAuthenticator: no verified chain is found; Authenticator KubeJWTAuthenticator: failed to validate the JWT from cluster "Kubernetes": the token is not authenticated]';
export const APIGEN_UNAUTHENTICATED = 'the api generator requires an authenticated control-plane identity';

export interface RecordedRequest {
  readonly stream: number;
  readonly typeUrl: string;
  readonly versionInfo: string;
  readonly nonce: string;
  readonly resourceNames: readonly string[];
  readonly nodeId: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  readonly errorDetail: { code: number; message: string } | undefined;
}

export interface SentResponse {
  readonly stream: number;
  readonly typeUrl: string;
  readonly version: string;
  readonly nonce: string;
  readonly resources: number;
}

/** A bad entry for pushGarbage: an Any that is no MCP Resource, or one whose body does not decode. */
export type Garbage = 'resource' | 'body' | 'type';

interface Stream {
  readonly id: number;
  readonly call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  readonly watched: Set<string>;
  readonly authorization: string | undefined;
  /** The verified identity (auth on, token accepted), checked on the first request. */
  readonly identity: FakeIdentity | undefined;
  authorized: boolean;
  ended: boolean;
}

export class FakeIstiod {
  readonly requests: RecordedRequest[] = [];
  readonly sent: SentResponse[] = [];
  /** The authorization header of every stream opened, in order. */
  readonly authorizations: (string | undefined)[] = [];
  /** Streams ended by the auth rules, in order. */
  readonly refusals: FakeRefusal[] = [];
  port = 0;
  private readonly server = new grpc.Server();
  private readonly objects = new Map<string, JsonRecord[]>();
  private readonly streams = new Map<number, Stream>();
  private readonly held = new Set<string>();
  private readonly pendingHeld = new Map<string, Set<Stream>>();
  private streamSeq = 0;
  private pushSeq = 0;
  private failure: { code: grpc.status; details: string } | undefined;
  private token: string | undefined;
  private servedVersion: IstiodApiVersion;

  constructor(private readonly options: FakeIstiodOptions = {}) {
    this.token = options.token;
    this.servedVersion = options.apiVersion ?? 'v1';
    this.server.addService(istioProtos().service, {
      StreamAggregatedResources: (call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => {
        this.onStream(call);
      },
    });
  }

  /** Listens on 127.0.0.1 (a random port unless given); returns the port. */
  async start(port = 0): Promise<number> {
    const credentials =
      this.options.tls === undefined
        ? grpc.ServerCredentials.createInsecure()
        : grpc.ServerCredentials.createSsl(
            null,
            [
              {
                cert_chain: Buffer.from(this.options.tls.cert),
                private_key: Buffer.from(this.options.tls.key),
              },
            ],
            false,
          );
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`127.0.0.1:${port}`, credentials, (err, bound) => {
        if (err === null) resolve(bound);
        else reject(err);
      });
    });
    return this.port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.streams.values()) s.ended = true;
    this.streams.clear();
    this.server.forceShutdown();
    await Promise.resolve();
  }

  /** Sets the objects (Kubernetes-shaped JSON) served for a type URL; nothing is sent until push(). */
  setObjects(typeUrl: string, objects: readonly JsonRecord[]): void {
    this.objects.set(typeUrl, [...objects]);
  }

  /** Sets a kind's objects under the type URL the configured Istio version serves it on. */
  setConfig(kind: IstiodKind, objects: readonly JsonRecord[]): void {
    this.setObjects(istioTypeUrl(this.servedVersion, kind), objects);
  }

  /**
   * An istiod upgrade (or downgrade): every kind's objects move to the other version's type URL,
   * the old one answers an empty list. Nothing is sent until push() or a reconnect.
   */
  setServedVersion(version: IstiodApiVersion): void {
    if (version === this.servedVersion) return;
    const from = this.servedVersion;
    this.servedVersion = version;
    for (const kind of ['ServiceEntry', 'VirtualService', 'DestinationRule'] as const) {
      const objects = this.objects.get(istioTypeUrl(from, kind)) ?? [];
      this.objects.delete(istioTypeUrl(from, kind));
      this.objects.set(istioTypeUrl(version, kind), objects);
    }
  }

  /**
   * Sends the current list of each type URL (default: every one a stream watches) to every open
   * stream, with a new version and nonce: a config push, or a resend when nothing changed.
   */
  push(typeUrls?: readonly string[]): void {
    for (const stream of this.openStreams()) {
      for (const typeUrl of typeUrls ?? [...stream.watched]) {
        if (stream.watched.has(typeUrl)) this.respond(stream, typeUrl);
      }
    }
  }

  /** Pushes the type URL's objects plus one entry that cannot be decoded. */
  pushGarbage(typeUrl: string, garbage: Garbage = 'resource'): void {
    for (const stream of this.openStreams()) {
      if (stream.watched.has(typeUrl)) this.respond(stream, typeUrl, garbageAny(garbage, typeUrl));
    }
  }

  /** Ends every open stream with this status (default Unavailable, like a max-age close). */
  disconnect(code: grpc.status = grpc.status.UNAVAILABLE, details = 'max connection age'): void {
    for (const stream of this.openStreams()) this.end(stream, code, details);
  }

  /** New streams (and the open ones) end with this status, e.g. Unauthenticated; undefined clears it. */
  failWith(code: grpc.status | undefined, details = 'refused by the fake'): void {
    this.failure = code === undefined ? undefined : { code, details };
    if (this.failure !== undefined) this.disconnect(this.failure.code, this.failure.details);
  }

  /** The bearer token new streams must carry from now on (undefined: none required). */
  setToken(token: string | undefined): void {
    this.token = token;
  }

  /** Initial requests for this type URL get no answer until release(). */
  hold(typeUrl: string): void {
    this.held.add(typeUrl);
  }

  /** Answers the held initial requests of this type URL. */
  release(typeUrl: string): void {
    this.held.delete(typeUrl);
    const waiting = this.pendingHeld.get(typeUrl) ?? new Set();
    this.pendingHeld.delete(typeUrl);
    for (const stream of waiting) if (!stream.ended) this.respond(stream, typeUrl);
  }

  /** Streams currently open. */
  openStreamCount(): number {
    return this.openStreams().length;
  }

  /** Streams opened so far. */
  get streamsOpened(): number {
    return this.streamSeq;
  }

  /** The request that answers the response with this nonce (ACK or NACK), if any. */
  replyTo(nonce: string): RecordedRequest | undefined {
    return this.requests.find((r) => r.nonce === nonce);
  }

  /** The last response sent for a type URL. */
  lastSent(typeUrl: string): SentResponse | undefined {
    return this.sent.filter((s) => s.typeUrl === typeUrl).at(-1);
  }

  private openStreams(): Stream[] {
    return [...this.streams.values()].filter((s) => !s.ended);
  }

  private onStream(call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    const header = call.metadata.get('authorization')[0];
    const authorization = typeof header === 'string' ? header : undefined;
    const auth = this.options.auth;
    // istiod authenticates TLS peers (and plaintext ones only with XDS_AUTH_PLAINTEXT=true).
    const authenticates = auth !== undefined && (this.options.tls !== undefined || auth.plaintext === true);
    const token = authorization?.startsWith('Bearer ') === true ? authorization.slice(7) : undefined;
    const identity =
      authenticates && token !== undefined && Object.hasOwn(auth.tokens, token)
        ? auth.tokens[token]
        : undefined;
    const stream: Stream = {
      id: ++this.streamSeq,
      call,
      watched: new Set(),
      authorization,
      identity,
      authorized: false,
      ended: false,
    };
    this.authorizations.push(stream.authorization);
    this.streams.set(stream.id, stream);
    const forget = (): void => {
      stream.ended = true;
      this.streams.delete(stream.id);
    };
    call.on('error', forget);
    call.on('cancelled', forget);
    call.on('end', () => {
      if (!stream.ended) call.end();
      forget();
    });
    if (this.token !== undefined && stream.authorization !== `Bearer ${this.token}`) {
      this.end(stream, grpc.status.UNAUTHENTICATED, 'authentication failure: invalid or missing token');
      return;
    }
    if (authenticates && identity === undefined) {
      this.refuse(stream, grpc.status.UNAUTHENTICATED, AUTHN_FAILURE);
      return;
    }
    if (this.failure !== undefined) {
      this.end(stream, this.failure.code, this.failure.details);
      return;
    }
    call.on('data', (request: DiscoveryRequest) => {
      this.onRequest(stream, request);
    });
  }

  private onRequest(stream: Stream, request: DiscoveryRequest): void {
    const status = request.error_detail ?? undefined;
    this.requests.push({
      stream: stream.id,
      typeUrl: request.type_url,
      versionInfo: request.version_info,
      nonce: request.response_nonce,
      resourceNames: request.resource_names,
      nodeId: request.node?.id === '' ? undefined : request.node?.id,
      metadata: structStrings(request.node?.metadata),
      errorDetail:
        status === undefined || (status.code === 0 && status.message === '')
          ? undefined
          : { code: status.code, message: status.message },
    });
    if (stream.ended) return;
    if (!stream.authorized && !this.authorize(stream, request)) return;
    // Like istiod: the first request of a type subscribes and is answered; later ones are ACK/NACK.
    if (stream.watched.has(request.type_url)) return;
    stream.watched.add(request.type_url);
    if (this.held.has(request.type_url)) {
      const waiting = this.pendingHeld.get(request.type_url) ?? new Set();
      waiting.add(stream);
      this.pendingHeld.set(request.type_url, waiting);
      return;
    }
    this.respond(stream, request.type_url);
  }

  /** istiod's checks on the first request (node known): connection identity, then the api generator's. */
  private authorize(stream: Stream, request: DiscoveryRequest): boolean {
    const auth = this.options.auth;
    if (auth === undefined) {
      stream.authorized = true;
      return true;
    }
    const id = stream.identity;
    const metadata = structStrings(request.node?.metadata);
    const configNamespace = metadata.NAMESPACE ?? '';
    const serviceAccount = metadata.SERVICE_ACCOUNT ?? '';
    if (id !== undefined) {
      const spiffe = `spiffe://cluster.local/ns/${id.namespace}/sa/${id.serviceAccount}`;
      if (
        (configNamespace !== '' && id.namespace !== configNamespace) ||
        (serviceAccount !== '' && id.serviceAccount !== serviceAccount)
      ) {
        this.refuse(
          stream,
          grpc.status.PERMISSION_DENIED,
          `authorization failed: no identities ([${spiffe}]) matched ${configNamespace}/${serviceAccount}`,
        );
        return false;
      }
      const root = auth.rootNamespace ?? 'istio-system';
      if (id.namespace !== root) {
        this.refuse(
          stream,
          grpc.status.PERMISSION_DENIED,
          `the api generator is restricted to control-plane identities in the root namespace ${root}; caller ${spiffe}`,
        );
        return false;
      }
    } else {
      this.refuse(stream, grpc.status.UNAUTHENTICATED, APIGEN_UNAUTHENTICATED);
      return false;
    }
    stream.authorized = true;
    return true;
  }

  private refuse(stream: Stream, code: grpc.status, details: string): void {
    this.refusals.push({ stream: stream.id, code, details });
    this.end(stream, code, details);
  }

  private respond(stream: Stream, typeUrl: string, extra?: AnyMessage): void {
    const version = `2026-01-01T00:00:00Z/${++this.pushSeq}`;
    const nonce = `${version}-${Math.random().toString(36).slice(2, 10)}`;
    const resources = (this.objects.get(typeUrl) ?? []).map((o) => objectToMcp(o));
    if (extra !== undefined) resources.push(extra);
    this.sent.push({ stream: stream.id, typeUrl, version, nonce, resources: resources.length });
    stream.call.write({ version_info: version, resources, type_url: typeUrl, nonce });
  }

  private end(stream: Stream, code: grpc.status, details: string): void {
    if (stream.ended) return;
    stream.ended = true;
    this.streams.delete(stream.id);
    stream.call.emit('error', { code, details });
  }
}

function garbageAny(garbage: Garbage, typeUrl: string): AnyMessage {
  const bytes = Buffer.from('this is not protobuf');
  if (garbage === 'type') return { type_url: 'type.googleapis.com/istio.mcp.v1alpha1.Nope', value: bytes };
  if (garbage === 'resource') return { type_url: TYPE_URL_PREFIX + MCP_RESOURCE_TYPE, value: bytes };
  const { resource } = istioProtos();
  const value = resource
    .encode(
      resource.fromObject({
        metadata: { name: 'default/garbage', version: '1' },
        body: {
          type_url: `type.googleapis.com/istio.networking.v1alpha3.${typeUrl.split('/')[2] ?? ''}`,
          value: bytes,
        },
      }),
    )
    .finish();
  return { type_url: TYPE_URL_PREFIX + MCP_RESOURCE_TYPE, value };
}
