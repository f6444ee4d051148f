import type { KubeConfig } from '@kubernetes/client-node';
import { kubeRequest } from '../../kube/request.js';
import type { JsonRecord } from '../../model/json.js';

export { collectionPath, isKubeApiError, KubeApiError } from '../../kube/request.js';

export interface GetOptions {
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly signal?: AbortSignal;
  /** Whole-request deadline. */
  readonly timeoutMs: number;
}

/** GETs JSON from the API server of the kubeconfig's current context (see kube/request.ts). */
export function getJson(kc: KubeConfig, path: string, opts: GetOptions): Promise<JsonRecord> {
  return kubeRequest(kc, { method: 'GET', path, ...opts });
}
