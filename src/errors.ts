/** The one error type Breeze throws. `code` is stable: tests, logs and metrics key on it. */
export type BreezeErrorCode =
  | 'BAD_FLAG' // a command-line flag or BREEZE_* variable is invalid
  | 'BAD_REQUEST' // an HTTP request that is not a usable AdmissionReview
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'DEADLINE_EXCEEDED' // the API server's ?timeout= would pass before we answer
  | 'TLS_MATERIAL' // a certificate or key that cannot be used
  | 'MANIFEST' // a manifest file that cannot be read or parsed
  | 'VIP_EXHAUSTED'
  | 'GENERATION' // a service whose config cannot be turned into EnvoyFilters (reported per service)
  | 'SCHEMA' // generated Envoy config that Envoy's own proto schema rejects
  | 'API_CONFLICT' // 409 Conflict from the API server that bounded re-read-and-retry did not resolve
  | 'API_INVALID' // 400/422 from the API server: the object is rejected as is (not retried in a loop)
  | 'API_FORBIDDEN' // 401/403 from the API server: credentials or RBAC
  | 'API_RETRYABLE' // 429, 5xx, timeouts, network errors: retried with backoff
  | 'FOREIGN_OBJECT' // an object of the same name without Breeze's ownership label: never overwritten
  | 'INTERNAL';

export class BreezeError extends Error {
  override readonly name = 'BreezeError';
  /** The HTTP status of the API server's answer, for the API_* codes; undefined for network errors. */
  readonly status: number | undefined;
  /** The API server's Retry-After, in milliseconds, when it sent one. */
  readonly retryAfterMs: number | undefined;
  constructor(
    readonly code: BreezeErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number; retryAfterMs?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

export function isBreezeError(err: unknown, code?: BreezeErrorCode): err is BreezeError {
  return err instanceof BreezeError && (code === undefined || err.code === code);
}

/**
 * Wraps a timer, interval or event callback so that nothing it throws escapes (a throw out of a
 * timer ends the process): the error goes to `onError`, and an error of `onError` itself is
 * swallowed.
 */
export function guarded<A extends unknown[]>(
  fn: (...args: A) => void,
  onError: (err: unknown) => void,
): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      try {
        onError(err);
      } catch {
        // nothing left to report to
      }
    }
  };
}
