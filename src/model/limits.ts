/**
 * Bounds on what one input may cost Breeze. Every request, file and watched object may be hostile
 * or huge: these are the limits the request path, the cache, the file source and the generators
 * enforce. A limit that refuses input is reported with a message naming it (never a 500); a limit
 * that only caps work (fan-out, quoting) is reported as a warning or an Event.
 *
 * The figures come from what Kubernetes itself can store, so no real object reaches them:
 * - etcd refuses a request over 1.5 MiB by default (`--max-request-bytes`), so no stored object,
 *   and no string in one, is longer;
 * - Kubernetes' JSON decoder refuses nesting over 10,000 levels; Istio and Aeraki objects nest
 *   fewer than 20 (managedFields mirror the object, a few levels deeper).
 */

/** Deepest JSON nesting accepted in an object of a handled kind (arrays and objects both count). */
export const MAX_OBJECT_DEPTH = 100;

/** Longest string (in UTF-16 code units) accepted anywhere in an object of a handled kind. */
export const MAX_STRING_LENGTH = 1_572_864;

/** Most items accepted in one JSON array of an object of a handled kind. */
export const MAX_LIST_ITEMS = 100_000;

/** A value quoted in a denial, warning or log message is cut to this many characters. */
export const MAX_QUOTED_LENGTH = 100;

/** At most this many problems are listed in one denial; the rest are counted ("and N more"). */
export const MAX_PROBLEMS_LISTED = 50;

/** At most this many warnings are returned with one admission answer (each at most 120 chars). */
export const MAX_WARNINGS = 20;

/**
 * Outbound listeners (address:port pairs) one service may fan out to. Beyond it the generators
 * write filters for the first ones only and say so (admission warning, generation warning, Event).
 */
export const MAX_LISTENERS_PER_SERVICE = 256;

/**
 * Most ports one ServiceEntry may list. Istio's CRD allows 256 since 1.23 (before, no limit);
 * 4,096 is the figure Istio's CRDs use for their longest lists (endpoints, subsets). Every port is
 * an outbound listener on every sidecar that sees the entry, so no working mesh comes near it,
 * and a hostile list of 100,000 ports is refused in constant time rather than checked port by
 * port (about 0.5 µs each, mostly the uniqueness of their names).
 */
export const MAX_SERVICE_ENTRY_PORTS = 4096;

/**
 * CPU one admission request may spend in the bounds check, validators and mutators before it is
 * denied (both its wall time and the process's CPU time must pass it, see CpuBudget). A backstop
 * behind linear checks and bounded inputs: a valid VirtualService with a few dozen regexes (1-5 ms
 * each to compile in re2js) stays well inside it.
 */
export const REQUEST_CPU_BUDGET_MS = 100;

/**
 * Cuts a value for quoting in a message: at most MAX_QUOTED_LENGTH characters of it, JSON-quoted,
 * with the original length when it was cut. Never quotes more than the cap, whatever the input.
 */
export function quote(value: string, max = MAX_QUOTED_LENGTH): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}... (${value.length} characters)`;
}
