// The protobufjs Root for talking to istiod's "api" xDS generator: Envoy's ADS envelope
// (DiscoveryRequest/DiscoveryResponse, Node, google.rpc.Status) from @grpc/grpc-js-xds, and
// Breeze's subset of Istio's MCP and networking protos under protos/istio/ (see protos/README.md).
// Loaded on first use (about 30 files, tens of milliseconds) with keepCase: field names are the
// protos' snake_case names, except protobufjs's bundled google.protobuf types (Struct's Value is
// `stringValue`, Duration is `{seconds, nanos}`).
import type { ServiceDefinition } from '@grpc/grpc-js';
import type { Root, Type } from 'protobufjs';
import { loadProtoRoot } from '../../envoy/schema.js';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const ADS_METHOD = 'StreamAggregatedResources';
/** The gRPC path of SotW ADS, as istiod serves it. */
export const ADS_PATH = `/${ADS_SERVICE}/${ADS_METHOD}`;

export const MCP_RESOURCE_TYPE = 'istio.mcp.v1alpha1.Resource';
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

export const ISTIO_ENTRY_FILES: readonly string[] = [
  'envoy/service/discovery/v3/ads.proto',
  'google/rpc/status.proto',
  'istio/mcp/v1alpha1/resource.proto',
  'istio/networking/v1alpha3/service_entry.proto',
  'istio/networking/v1alpha3/virtual_service.proto',
  'istio/networking/v1alpha3/destination_rule.proto',
];

/** google.protobuf.Any as protobufjs represents it. */
export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

/** google.protobuf.Struct in protobufjs's object form (fields of google.protobuf.Value). */
export interface StructMessage {
  fields: Record<string, { stringValue?: string; numberValue?: number; boolValue?: boolean }>;
}

export interface NodeMessage {
  id: string;
  cluster?: string;
  metadata?: StructMessage;
}

export interface StatusMessage {
  code: number;
  message: string;
}

export interface DiscoveryRequest {
  version_info: string;
  node?: NodeMessage | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: StatusMessage | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: AnyMessage[];
  type_url: string;
  nonce: string;
}

export interface IstioProtos {
  readonly root: Root;
  readonly request: Type;
  readonly response: Type;
  readonly resource: Type;
  /** The ADS service (SotW method only) with protobufjs serializers, for clients and servers. */
  readonly service: ServiceDefinition;
  readonly encodeRequest: (request: DiscoveryRequest) => Buffer;
  readonly decodeRequest: (bytes: Buffer) => DiscoveryRequest;
  readonly encodeResponse: (response: DiscoveryResponse) => Buffer;
  readonly decodeResponse: (bytes: Buffer) => DiscoveryResponse;
}

let cached: IstioProtos | undefined;

/** Loads (once) and returns the Root with the ADS envelope and the Istio protos Breeze reads. */
export function istioProtos(): IstioProtos {
  if (cached !== undefined) return cached;
  const root = loadProtoRoot(ISTIO_ENTRY_FILES);
  const request = root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const response = root.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  const resource = root.lookupType(MCP_RESOURCE_TYPE);
  const toObject = { defaults: true, arrays: true, longs: String } as const;
  const encodeRequest = (r: DiscoveryRequest): Buffer =>
    Buffer.from(request.encode(request.fromObject(r as unknown as Record<string, unknown>)).finish());
  const decodeRequest = (b: Buffer): DiscoveryRequest =>
    request.toObject(request.decode(b), toObject) as unknown as DiscoveryRequest;
  const encodeResponse = (r: DiscoveryResponse): Buffer =>
    Buffer.from(response.encode(response.fromObject(r as unknown as Record<string, unknown>)).finish());
  const decodeResponse = (b: Buffer): DiscoveryResponse =>
    response.toObject(response.decode(b), toObject) as unknown as DiscoveryResponse;
  const service: ServiceDefinition = {
    [ADS_METHOD]: {
      path: ADS_PATH,
      originalName: 'streamAggregatedResources',
      requestStream: true,
      responseStream: true,
      requestSerialize: encodeRequest,
      requestDeserialize: decodeRequest,
      responseSerialize: encodeResponse,
      responseDeserialize: decodeResponse,
    },
  };
  cached = {
    root,
    request,
    response,
    resource,
    service,
    encodeRequest,
    decodeRequest,
    encodeResponse,
    decodeResponse,
  };
  return cached;
}

/** Plain string metadata as a google.protobuf.Struct (node metadata values are all strings). */
export function stringStruct(values: Readonly<Record<string, string>>): StructMessage {
  const fields: StructMessage['fields'] = {};
  for (const [k, v] of Object.entries(values)) fields[k] = { stringValue: v };
  return { fields };
}

/** The string values of a Struct (others dropped): what istiod reads from node metadata. */
export function structStrings(struct: StructMessage | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(struct?.fields ?? {})) {
    if (typeof v.stringValue === 'string') out[k] = v.stringValue;
  }
  return out;
}
