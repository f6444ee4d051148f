/**
 * Cluster mode's sink: EnvoyFilters written to the API server.
 *
 * Ownership (never touch what is not ours):
 * - apply: an object not known to exist is created (POST). 409 AlreadyExists means a same-named
 *   object exists: it is read (GET); without Breeze's label it is foreign → FOREIGN_OBJECT, never
 *   overwritten; with the label it is updated. Updates are server-side apply (PATCH
 *   application/apply-patch+yaml, fieldManager=breeze, force=true) carrying the
 *   `metadata.resourceVersion` of the copy we saw with our label as a precondition: if the object
 *   changed since (someone else's edit, a delete and re-create by another owner), the API server
 *   answers 409 Conflict and the object is re-read and its label checked again (bounded retries).
 *   So `force` only ever takes fields of an object whose latest version carries our label.
 * - delete: DELETE with preconditions {uid, resourceVersion} of a copy seen with our label (read
 *   first when the caller has none); 409 → re-read and re-check; 404 → done.
 *
 * RBAC: networking.istio.io envoyfilters: get, list, create, patch, delete.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { BreezeError } from '../../errors.js';
import { asArray, asRecord, asString, isRecord, type JsonRecord } from '../../model/json.js';
import { isKubeApiError } from '../../sources/kubernetes/rest.js';
import { kubeRequest, toApiError } from '../../kube/request.js';
import { isBreezeOwned, labelsOf, sameContent } from '../owned.js';
import type { ApplyOutcome, EnvoyFilterSink } from '../types.js';

export const ENVOYFILTER_API_VERSION = 'networking.istio.io/v1alpha3';
export const FIELD_MANAGER = 'breeze';

export interface KubernetesSinkOptions {
  readonly kubeConfig: KubeConfig;
  /** Deadline of one request; default 10 s (a hung API server becomes a retryable error). */
  readonly requestTimeoutMs?: number;
  /** Re-reads after a 409 before giving up with API_CONFLICT; default 3. */
  readonly maxConflictRetries?: number;
  readonly fieldManager?: string;
}

export class KubernetesEnvoyFilterSink implements EnvoyFilterSink {
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly fieldManager: string;

  constructor(private readonly o: KubernetesSinkOptions) {
    this.timeoutMs = o.requestTimeoutMs ?? 10_000;
    this.maxRetries = o.maxConflictRetries ?? 3;
    this.fieldManager = o.fieldManager ?? FIELD_MANAGER;
  }

  async apply(envoyFilter: JsonRecord, signal: AbortSignal, current?: JsonRecord): Promise<ApplyOutcome> {
    const { namespace, name } = refOf(envoyFilter);
    const what = `EnvoyFilter ${namespace}/${name}`;
    let known = current;
    for (let attempt = 0; attempt <= this.maxRetries; attempt++) {
      if (known === undefined) {
        try {
          await this.request('POST', collection(namespace), { signal, body: envoyFilter }, `create ${what}`);
          return 'created';
        } catch (err) {
          if (!isAlreadyExists(err)) throw toApiError(err, `create ${what}`);
        }
        known = await this.get(namespace, name, signal);
        if (known === undefined) continue; // deleted in between: create again
      }
      if (!isBreezeOwned(known)) throw foreign(what, known);
      if (sameContent(envoyFilter, known) && known !== current) return 'unchanged';
      const rv = asString(asRecord(known.metadata)?.resourceVersion);
      const body = { ...envoyFilter, metadata: { ...asRecord(envoyFilter.metadata), resourceVersion: rv } };
      try {
        await this.request(
          'PATCH',
          `${collection(namespace)}/${encodeURIComponent(name)}`,
          {
            signal,
            body: JSON.stringify(body), // JSON is YAML
            contentType: 'application/apply-patch+yaml',
            query: { fieldManager: this.fieldManager, force: 'true' },
          },
          `apply ${what}`,
        );
        return 'updated';
      } catch (err) {
        if (!isKubeApiError(err, 409) && !isKubeApiError(err, 404)) throw toApiError(err, `apply ${what}`);
      }
      known = await this.get(namespace, name, signal); // changed or gone since we saw it: re-read
    }
    throw new BreezeError(
      'API_CONFLICT',
      `apply ${what}: still conflicting after ${this.maxRetries + 1} attempts`,
      { status: 409 },
    );
  }

  async delete(namespace: string, name: string, signal: AbortSignal, current?: JsonRecord): Promise<void> {
    await this.deleteIf(namespace, name, signal, current, isBreezeOwned, 'EnvoyFilter');
  }

  /**
   * Other controllers' EnvoyFilters (e.g. `manager=Aeraki`) in every namespace, by label
   * selector: read for the migration, never written except by deleteForeign.
   */
  async listForeign(labelSelector: string, signal: AbortSignal): Promise<JsonRecord[]> {
    const items: JsonRecord[] = [];
    let cont: string | undefined;
    do {
      const page = await this.request(
        'GET',
        `/apis/${ENVOYFILTER_API_VERSION}/envoyfilters`,
        { signal, query: { labelSelector, limit: '500', continue: cont } },
        `list EnvoyFilters ${labelSelector}`,
      );
      for (const i of asArray(page.items) ?? []) if (isRecord(i)) items.push(i);
      cont = asString(asRecord(page.metadata)?.continue);
    } while (cont !== undefined && cont !== '');
    return items;
  }

  /**
   * Deletes another controller's EnvoyFilter, only while it still carries `label=value` (checked
   * on the latest version through delete preconditions, as for Breeze's own).
   */
  async deleteForeign(object: JsonRecord, label: string, value: string, signal: AbortSignal): Promise<void> {
    const { namespace, name } = refOf(object);
    await this.deleteIf(
      namespace,
      name,
      signal,
      object,
      (o) => labelsOf(o)[label] === value,
      `${label}=${value}`,
    );
  }

  private async deleteIf(
    namespace: string,
    name: string,
    signal: AbortSignal,
    current: JsonRecord | undefined,
    owned: (o: JsonRecord) => boolean,
    owner: string,
  ): Promise<void> {
    const what = `delete EnvoyFilter ${namespace}/${name}`;
    let known = current;
    for (let attempt = 0; attempt <= this.maxRetries; attempt++) {
      known ??= await this.get(namespace, name, signal);
      if (known === undefined) return;
      if (!owned(known))
        throw new BreezeError('FOREIGN_OBJECT', `${what}: it does not carry the ${owner} label: left alone`);
      const m = asRecord(known.metadata);
      const preconditions = { uid: asString(m?.uid), resourceVersion: asString(m?.resourceVersion) };
      try {
        await this.request(
          'DELETE',
          `${collection(namespace)}/${encodeURIComponent(name)}`,
          { signal, body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions } },
          what,
        );
        return;
      } catch (err) {
        if (isKubeApiError(err, 404)) return;
        if (!isKubeApiError(err, 409)) throw toApiError(err, what);
      }
      known = undefined; // changed since we saw it: re-read and re-check the label
    }
    throw new BreezeError(
      'API_CONFLICT',
      `${what}: still conflicting after ${this.maxRetries + 1} attempts`,
      {
        status: 409,
      },
    );
  }

  private async get(namespace: string, name: string, signal: AbortSignal): Promise<JsonRecord | undefined> {
    const what = `get EnvoyFilter ${namespace}/${name}`;
    try {
      return await this.request(
        'GET',
        `${collection(namespace)}/${encodeURIComponent(name)}`,
        { signal },
        what,
      );
    } catch (err) {
      if (isKubeApiError(err, 404)) return undefined;
      throw toApiError(err, what);
    }
  }

  private async request(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    r: {
      signal: AbortSignal;
      body?: unknown;
      contentType?: string;
      query?: Record<string, string | undefined>;
    },
    what: string,
  ): Promise<JsonRecord> {
    if (r.signal.aborted) throw new BreezeError('API_RETRYABLE', `${what}: aborted`);
    return kubeRequest(this.o.kubeConfig, { method, path, timeoutMs: this.timeoutMs, ...r });
  }
}

function refOf(object: JsonRecord): { namespace: string; name: string } {
  const m = asRecord(object.metadata);
  return { namespace: asString(m?.namespace) ?? 'default', name: asString(m?.name) ?? '' };
}

function collection(namespace: string): string {
  return `/apis/${ENVOYFILTER_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/envoyfilters`;
}

/** Any 409 on create: AlreadyExists, or a conflict; either way the object is read and checked. */
function isAlreadyExists(err: unknown): boolean {
  return isKubeApiError(err, 409);
}

function foreign(what: string, object: JsonRecord): BreezeError {
  const owner = labelsOf(object)['app.kubernetes.io/managed-by'] ?? labelsOf(object).manager;
  return new BreezeError(
    'FOREIGN_OBJECT',
    `${what} exists and is not managed by Breeze${owner === undefined ? '' : ` (managed by ${owner})`}: left alone; rename or delete it`,
    { status: 409 },
  );
}
