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
  | 'INTERNAL';

export class BreezeError extends Error {
  override readonly name = 'BreezeError';
  constructor(
    readonly code: BreezeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isBreezeError(err: unknown, code?: BreezeErrorCode): err is BreezeError {
  return err instanceof BreezeError && (code === undefined || err.code === code);
}
