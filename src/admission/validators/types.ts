import type { ConfigView } from '../../cache/store.js';
import type { JsonRecord } from '../../model/json.js';
import type { Protocol } from '../../model/protocol.js';
import type { RedisAuthMode } from '../../protocols/redis/authmode.js';
import type { CpuBudget } from '../budget.js';
import type { Findings } from '../findings.js';

export interface ValidationContext {
  /** The config cache, read-only: validators never call the API server. */
  readonly view: ConfigView;
  /** The object's namespace (from the request, else its metadata, else `default`). */
  readonly namespace: string;
  /**
   * The request's CPU budget: call `budget.check()` in loops over input of unbounded size. Absent
   * offline (no limit).
   */
  readonly budget?: CpuBudget;
  /** The server's `--redis-auth-mode` (admission warnings say which mode applies); absent offline. */
  readonly redisAuthMode?: RedisAuthMode;
  /** The enabled protocols (`--protocols`), for protocol-switch.ts's warnings; absent: none given. */
  readonly protocols?: ReadonlySet<Protocol>;
}

/**
 * A validator is a pure function of the object and the cache view. It must accept any JSON
 * (a mutating webhook or `breeze validate` can see objects the CRD schema has not checked yet)
 * and never throw: a value of the wrong type is a problem with its field path.
 */
export type Validator = (object: JsonRecord, ctx: ValidationContext) => Findings;
