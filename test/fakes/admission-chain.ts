// Admission webhooks as the real API server calls them, for the fake API server: the
// MutatingWebhookConfigurations and ValidatingWebhookConfigurations stored in the fake decide which
// writes go to which webhook. Mutating webhooks run first, one after another, each on the result of
// the last (JSONPatch applied); then every validating webhook sees the final object; only then is
// the object persisted. What is followed from the real server:
// - rules: apiGroups, apiVersions, resources, operations (with "*"), scope; matchPolicy
//   Equivalent (a request in another served version of the same group/resource matches, and the
//   webhook gets the object in the version its rule names) or Exact;
// - namespaceSelector against the namespace's labels (a missing Namespace object has only
//   kubernetes.io/metadata.name, which the real server always sets) and objectSelector against the
//   object's or the old object's labels;
// - clientConfig.url, or clientConfig.service resolved through endpoints the test registers;
//   caBundle verifies the serving certificate; ?timeout=<timeoutSeconds>s; failurePolicy Fail/Ignore;
// - sideEffects: on a dryRun request a webhook whose sideEffects is not None/NoneOnDryRun makes the
//   request fail (400), as on the real server; request.dryRun is set;
// - a denial becomes the webhook's status as ToStatusErr makes it: `admission webhook "<name>"
//   denied the request: <message>`, the response's code (400 when absent or below 400), its reason
//   and details kept; warnings are passed back as Warning headers.
// Simplifications: matchConditions support only `request.userInfo.username == / != '<literal>'`
// (anything else throws, so a test notices); no reinvocation; v1 reviews only.
import { randomUUID } from 'node:crypto';
import { request } from 'node:https';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { labelSelectorFromObject, matchesLabels } from './selectors.js';

type JsonRecord = Record<string, unknown>;

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE';

/** What the fake knows about a write, handed to the chain. */
export interface AdmissionAttributes {
  readonly group: string;
  /** The version the request was made in. */
  readonly version: string;
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Versions the resource is served in (for matchPolicy Equivalent). */
  readonly servedVersions: readonly string[];
  readonly subresource: string | undefined;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly operation: AdmissionOperation;
  readonly object: JsonRecord | undefined;
  readonly oldObject: JsonRecord | undefined;
  readonly dryRun: boolean;
  readonly username: string;
  /** Labels of the request's namespace (kubernetes.io/metadata.name added when missing). */
  readonly namespaceLabels: Readonly<Record<string, string>>;
}

/** Why a write was refused; the fake turns it into a Status response (with `details` when set). */
export class AdmissionRejection extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details?: JsonRecord,
  ) {
    super(message);
  }

  /** Warnings the webhooks sent before the refusal (the real server returns them as headers too). */
  warnings: string[] = [];
}

/**
 * A webhook's denial as the API server returns it (k8s.io/apiserver
 * pkg/admission/plugin/webhook/errors ToStatusErr): the webhook's status, with a code below 400
 * made 400, the reason and details kept, and the message prefixed with
 * `admission webhook "<name>" denied the request: ` (or ending `denied the request: <reason>`,
 * or `denied the request without explanation`, when the webhook sent no message).
 */
export function toStatusErr(webhook: string, status: ReviewResponse['status']): AdmissionRejection {
  const deniedBy = `admission webhook ${JSON.stringify(webhook)} denied the request`;
  const code = typeof status?.code === 'number' && status.code >= 400 ? status.code : 400;
  const reason = typeof status?.reason === 'string' ? status.reason : '';
  const message = typeof status?.message === 'string' ? status.message : '';
  const text =
    message !== ''
      ? `${deniedBy}: ${message}`
      : reason !== ''
        ? `${deniedBy}: ${reason}`
        : `${deniedBy} without explanation`;
  return new AdmissionRejection(code, reason, text, isRecord(status?.details) ? status.details : undefined);
}

/** One call made, for tests that check what reached which webhook. */
export interface WebhookCall {
  readonly webhook: string;
  readonly operation: AdmissionOperation;
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly dryRun: boolean;
  readonly allowed: boolean | undefined;
  /** 'ignored' when the call failed and failurePolicy is Ignore. */
  readonly outcome: 'allowed' | 'denied' | 'patched' | 'failed' | 'ignored';
}

interface Webhook {
  readonly configuration: string;
  readonly mutating: boolean;
  readonly spec: JsonRecord;
}

function isRecord(v: unknown): v is JsonRecord {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function labelsOf(obj: JsonRecord | undefined): Record<string, string> {
  const m = obj?.metadata;
  const l = isRecord(m) ? m.labels : undefined;
  const out: Record<string, string> = {};
  if (isRecord(l)) for (const [k, v] of Object.entries(l)) if (typeof v === 'string') out[k] = v;
  return out;
}

const anyOf = (list: readonly string[], value: string): boolean => list.includes('*') || list.includes(value);

/** The version the webhook is called in, or undefined when no rule matches. */
function matchVersion(webhook: JsonRecord, a: AdmissionAttributes): string | undefined {
  const exact = webhook.matchPolicy === 'Exact';
  const resource = a.subresource === undefined ? a.resource : `${a.resource}/${a.subresource}`;
  for (const rule of Array.isArray(webhook.rules) ? webhook.rules : []) {
    if (!isRecord(rule)) continue;
    if (!anyOf(strings(rule.operations), a.operation)) continue;
    if (!anyOf(strings(rule.apiGroups), a.group)) continue;
    const resources = strings(rule.resources);
    if (!resources.includes('*') && !resources.includes('*/*') && !resources.includes(resource)) continue;
    const scope = typeof rule.scope === 'string' ? rule.scope : '*';
    if (scope !== '*' && scope !== (a.namespaced ? 'Namespaced' : 'Cluster')) continue;
    const versions = strings(rule.apiVersions);
    if (anyOf(versions, a.version)) return a.version;
    if (exact) continue;
    const equivalent = a.servedVersions.find((v) => versions.includes(v));
    if (equivalent !== undefined) return equivalent;
  }
  return undefined;
}

/** The one form of CEL this fake understands: comparing the requesting user's name to a literal. */
function matchConditionsHold(webhook: JsonRecord, a: AdmissionAttributes): boolean {
  for (const c of Array.isArray(webhook.matchConditions) ? webhook.matchConditions : []) {
    const expression = isRecord(c) && typeof c.expression === 'string' ? c.expression : '';
    const m = /^request\.userInfo\.username\s*(==|!=)\s*'([^']*)'$/.exec(expression.trim());
    if (m === null) throw new Error(`the fake API server cannot evaluate the CEL expression ${expression}`);
    const equal = a.username === m[2];
    if (m[1] === '==' ? !equal : equal) return false;
  }
  return true;
}

function selected(webhook: JsonRecord, a: AdmissionAttributes): boolean {
  if (a.namespaced && a.resource !== 'namespaces') {
    if (!matchesLabels(labelSelectorFromObject(webhook.namespaceSelector), a.namespaceLabels)) return false;
  }
  const objectSelector = labelSelectorFromObject(webhook.objectSelector);
  if (objectSelector.length > 0) {
    const hit = [a.object, a.oldObject].some(
      (o) => o !== undefined && matchesLabels(objectSelector, labelsOf(o)),
    );
    if (!hit) return false;
  }
  return true;
}

function withVersion(obj: JsonRecord | undefined, group: string, version: string): JsonRecord | null {
  if (obj === undefined) return null;
  return { ...obj, apiVersion: group === '' ? version : `${group}/${version}` };
}

interface ReviewResponse {
  readonly allowed?: boolean;
  readonly status?: { code?: number; message?: string; reason?: string; details?: unknown };
  readonly patch?: string;
  readonly patchType?: string;
  readonly warnings?: string[];
}

export interface AdmissionChainOptions {
  /** namespace/name of a Service → "host:port" of its endpoints, for clientConfig.service. */
  readonly resolveService: (namespace: string, name: string) => string | undefined;
}

export class AdmissionChain {
  readonly calls: WebhookCall[] = [];

  constructor(private readonly opts: AdmissionChainOptions) {}

  /**
   * Runs the webhooks of `configurations` that match; returns the object to persist (mutated) and
   * the warnings, or throws AdmissionRejection. `afterMutation` runs between the mutating and the
   * validating webhooks (the fake's schema check: it may throw, or return the pruned object).
   */
  async admit(
    configurations: { mutating: readonly JsonRecord[]; validating: readonly JsonRecord[] },
    a: AdmissionAttributes,
    afterMutation?: (object: JsonRecord) => JsonRecord,
  ): Promise<{ object: JsonRecord | undefined; warnings: string[] }> {
    const warnings: string[] = [];
    const hooks = (list: readonly JsonRecord[], mutating: boolean): Webhook[] =>
      [...list]
        .sort((x, y) => nameOf(x).localeCompare(nameOf(y)))
        .flatMap((c) =>
          (Array.isArray(c.webhooks) ? c.webhooks : [])
            .filter(isRecord)
            .map((spec) => ({ configuration: nameOf(c), mutating, spec })),
        );
    try {
      return await this.run(hooks, configurations, a, a.object, warnings, afterMutation);
    } catch (err) {
      if (err instanceof AdmissionRejection) err.warnings = [...warnings, ...err.warnings];
      throw err;
    }
  }

  private async run(
    hooks: (list: readonly JsonRecord[], mutating: boolean) => Webhook[],
    configurations: { mutating: readonly JsonRecord[]; validating: readonly JsonRecord[] },
    a: AdmissionAttributes,
    start: JsonRecord | undefined,
    warnings: string[],
    afterMutation: ((object: JsonRecord) => JsonRecord) | undefined,
  ): Promise<{ object: JsonRecord | undefined; warnings: string[] }> {
    let object = start;
    for (const hook of hooks(configurations.mutating, true)) {
      const response = await this.call(hook, { ...a, object });
      if (response === undefined) continue;
      warnings.push(...(response.warnings ?? []));
      if (response.patch !== undefined && object !== undefined) {
        if (response.patchType !== 'JSONPatch')
          throw new AdmissionRejection(
            500,
            'InternalError',
            `Internal error occurred: failed calling webhook "${String(hook.spec.name)}": unsupported patch type ${String(response.patchType)}`,
          );
        const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[];
        object = fastJsonPatch.applyPatch(structuredClone(object), ops, true, false).newDocument;
      }
    }
    // The API server validates the object against its schema here, between the two phases.
    if (afterMutation !== undefined && object !== undefined) object = afterMutation(object);
    for (const hook of hooks(configurations.validating, false)) {
      const response = await this.call(hook, { ...a, object });
      if (response !== undefined) warnings.push(...(response.warnings ?? []));
    }
    return { object, warnings };
  }

  /** One webhook: undefined when it does not apply or failed open; throws on a denial. */
  private async call(hook: Webhook, a: AdmissionAttributes): Promise<ReviewResponse | undefined> {
    const spec = hook.spec;
    const name = String(spec.name);
    const version = matchVersion(spec, a);
    if (version === undefined || !selected(spec, a) || !matchConditionsHold(spec, a)) return undefined;
    const record = (outcome: WebhookCall['outcome'], allowed?: boolean): void => {
      this.calls.push({
        webhook: name,
        operation: a.operation,
        kind: a.kind,
        namespace: a.namespace,
        name: a.name,
        dryRun: a.dryRun,
        allowed,
        outcome,
      });
    };
    if (a.dryRun && !['None', 'NoneOnDryRun'].includes(String(spec.sideEffects))) {
      throw new AdmissionRejection(400, 'BadRequest', `admission webhook "${name}" does not support dry run`);
    }
    const failOpen = spec.failurePolicy === 'Ignore';
    const uid = randomUUID();
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: { group: a.group, version, kind: a.kind },
        resource: { group: a.group, version, resource: a.resource },
        ...(a.subresource === undefined ? {} : { subResource: a.subresource }),
        requestKind: { group: a.group, version: a.version, kind: a.kind },
        requestResource: { group: a.group, version: a.version, resource: a.resource },
        name: a.name,
        ...(a.namespace === undefined ? {} : { namespace: a.namespace }),
        operation: a.operation,
        userInfo: { username: a.username, groups: ['system:authenticated'] },
        object: withVersion(a.object, a.group, version),
        oldObject: withVersion(a.oldObject, a.group, version),
        dryRun: a.dryRun,
        options: {
          apiVersion: 'meta.k8s.io/v1',
          kind:
            a.operation === 'CREATE'
              ? 'CreateOptions'
              : a.operation === 'UPDATE'
                ? 'UpdateOptions'
                : 'DeleteOptions',
        },
      },
    };
    let response: ReviewResponse;
    try {
      response = await this.post(spec, review);
      if (response.allowed === undefined) throw new Error('the response has no "allowed"');
    } catch (err) {
      if (failOpen) {
        record('ignored');
        return undefined;
      }
      record('failed');
      throw new AdmissionRejection(
        500,
        'InternalError',
        `Internal error occurred: failed calling webhook "${name}": ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (!response.allowed) {
      record('denied', false);
      const rejection = toStatusErr(name, response.status);
      rejection.warnings = [...(response.warnings ?? [])];
      throw rejection;
    }
    record(response.patch === undefined ? 'allowed' : 'patched', true);
    return response;
  }

  private post(spec: JsonRecord, review: { request: { uid: string } }): Promise<ReviewResponse> {
    const client = isRecord(spec.clientConfig) ? spec.clientConfig : {};
    let url: URL;
    if (typeof client.url === 'string') url = new URL(client.url);
    else {
      const service = isRecord(client.service) ? client.service : {};
      const ns = String(service.namespace);
      const svc = String(service.name);
      const endpoint = this.opts.resolveService(ns, svc);
      if (endpoint === undefined) return Promise.reject(new Error(`service "${svc}" not found`));
      url = new URL(`https://${endpoint}${typeof service.path === 'string' ? service.path : '/'}`);
    }
    const timeoutSeconds = typeof spec.timeoutSeconds === 'number' ? spec.timeoutSeconds : 10;
    url.searchParams.set('timeout', `${timeoutSeconds}s`);
    const ca =
      typeof client.caBundle === 'string' && client.caBundle !== ''
        ? Buffer.from(client.caBundle, 'base64').toString('utf8')
        : undefined;
    const body = JSON.stringify(review);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          ...(ca === undefined ? {} : { ca }),
          timeout: timeoutSeconds * 1000,
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (data += c));
          res.on('end', () => {
            if (res.statusCode !== 200) {
              reject(new Error(`expected response code 200, got ${res.statusCode}: ${data.slice(0, 200)}`));
              return;
            }
            try {
              const parsed = JSON.parse(data) as { response?: ReviewResponse & { uid?: string } };
              if (parsed.response?.uid !== review.request.uid)
                throw new Error('the response uid does not match the request');
              resolve(parsed.response);
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`context deadline exceeded (${timeoutSeconds}s)`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

function nameOf(obj: JsonRecord): string {
  return isRecord(obj.metadata) && typeof obj.metadata.name === 'string' ? obj.metadata.name : '';
}
