import { BreezeError } from '../errors.js';
import { MAX_UID_LENGTH, REVIEW_VERSIONS, type ReviewVersion } from '../admission/review.js';

/**
 * The cost of a request body is paid before Breeze sees a single field: V8's JSON.parse of 7 MiB
 * of `{},` took 1 s on the development VM, of `[{"a":1,...}]` 180 ms, of one 7 MiB string 14 ms.
 * What it pays for is the number of values it builds, not the bytes. So before parsing, one
 * linear scan of the text counts its nesting, its containers and its tokens, stops at the first
 * limit passed, and the body is refused unparsed. No review from the API server comes near them:
 *
 * - MAX_BODY_DEPTH: the API server's decoder refuses objects nested over 10,000 levels, and a
 *   review wraps the object in two more.
 * - MAX_BODY_CONTAINERS and MAX_BODY_TOKENS: etcd stores at most 1.5 MiB per object, and a review
 *   carries at most two of them (object and oldObject). A ServiceEntry that fills 1.5 MiB with
 *   inline endpoints (`{"address":"10.0.0.1","ports":{"tcp-dubbo":20880},"labels":{"app":"x"}}`,
 *   about 21,000 of them) is about 63,000 objects and 270,000 tokens, so an UPDATE of it twice that;
 *   the Istio and Aeraki corpus stays below 300 tokens per document. Within these limits JSON.parse
 *   costs at most about as much as it does for that largest real review.
 */
export const MAX_BODY_DEPTH = 10_010;
/** Most objects and arrays one body may open. */
export const MAX_BODY_CONTAINERS = 131_072;
/** Most tokens (strings, commas, opening brackets and braces) one body may hold. */
export const MAX_BODY_TOKENS = 655_360;

/**
 * A body refused before parsing, whose review uid could still be read from its first bytes (as
 * the API server writes it: `"request":{"uid":"..."` near the start). Such a body is answered with
 * an AdmissionReview denying it, never a bare 4xx (a failurePolicy Ignore webhook would let a
 * bare 4xx through).
 */
export class RefusedBody {
  constructor(
    readonly apiVersion: ReviewVersion,
    readonly uid: string,
    readonly message: string,
  ) {}
}

/**
 * JSON.parse with the body's cost checked first, by one linear scan of its bytes. Throws
 * BAD_REQUEST (HTTP 400) for a body that is empty, not JSON, or over a limit with no readable
 * uid; returns a RefusedBody for one over a limit whose uid is readable. The server passes the
 * bytes as received (a Buffer); a string (tests) is encoded first.
 */
export function parseBody(body: Buffer | string): unknown {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  if (bytes.length === 0)
    throw new BreezeError('BAD_REQUEST', 'the body is empty: an AdmissionReview is expected');
  const over = scanBody(bytes);
  if (over !== undefined) {
    const message = LIMIT_MESSAGES[over];
    const envelope = envelopeOf(bytes.toString('utf8', 0, Math.min(bytes.length, ENVELOPE_PREFIX)));
    if (envelope === undefined) throw new BreezeError('BAD_REQUEST', message);
    return new RefusedBody(envelope.apiVersion, envelope.uid, message);
  }
  try {
    return JSON.parse(typeof body === 'string' ? body : bytes.toString('utf8')) as unknown;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new BreezeError('BAD_REQUEST', `the body is not valid JSON: ${message.slice(0, 200)}`);
  }
}

type Limit = 'depth' | 'containers' | 'tokens';

const LIMIT_MESSAGES: Readonly<Record<Limit, string>> = {
  depth: `the body is nested deeper than ${MAX_BODY_DEPTH} levels, which no AdmissionReview from the API server is`,
  containers: `the body opens more than ${MAX_BODY_CONTAINERS} JSON objects and arrays, Breeze's limit for one review (two objects of etcd's 1.5 MiB stay far below it)`,
  tokens: `the body holds more than ${MAX_BODY_TOKENS} JSON tokens (strings, commas, brackets), Breeze's limit for one review (two objects of etcd's 1.5 MiB stay far below it)`,
};

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Bytes of a string skipped one by one before the scan jumps to its end with indexOf. */
const SHORT_STRING = 64;

/**
 * The first limit the JSON body passes, or undefined. It reads bytes: every byte JSON's syntax
 * uses is ASCII, and no byte of a multi-byte UTF-8 character is, so this is the same scan on the
 * text. Strings are skipped (their contents never count): a short one byte by byte, a long one
 * with indexOf. The scan stops at the first limit, so a dense hostile body costs only the prefix
 * that passes it. Not a validator: malformed JSON is left to JSON.parse.
 */
export function scanBody(body: Uint8Array | string): Limit | undefined {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  // Each limit needs at least one byte per unit: a shorter body cannot pass any of them, and an
  // ordinary review (a few KiB) is not scanned at all.
  const n = b.length;
  if (n <= MAX_BODY_DEPTH) return undefined;
  let depth = 0;
  let containers = 0;
  let tokens = 0;
  for (let i = 0; i < n; i++) {
    const c = b[i];
    if (c === QUOTE) {
      if (++tokens > MAX_BODY_TOKENS) return 'tokens';
      const end = closingQuote(b, i + 1);
      if (end < 0) return undefined;
      i = end;
    } else if (c === 0x2c) {
      if (++tokens > MAX_BODY_TOKENS) return 'tokens';
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_BODY_DEPTH) return 'depth';
      if (++containers > MAX_BODY_CONTAINERS) return 'containers';
      if (++tokens > MAX_BODY_TOKENS) return 'tokens';
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return undefined;
}

/** Index of the quote that closes a string whose contents start at `from`; -1 when none does. */
function closingQuote(b: Uint8Array, from: number): number {
  const n = b.length;
  const stop = Math.min(n, from + SHORT_STRING);
  let j = from;
  while (j < stop) {
    const d = b[j];
    if (d === QUOTE) return j;
    j += d === BACKSLASH ? 2 : 1;
  }
  // A long string: the next quote not escaped by an odd run of backslashes. Every escape before
  // j was consumed whole, so counting the run right before a quote decides it.
  for (let end = j - 1; ;) {
    end = b.indexOf(QUOTE, end + 1);
    if (end < 0) return -1;
    let backslashes = 0;
    while (b[end - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return end;
  }
}

/** How far into the body the review's apiVersion and request.uid are looked for. */
const ENVELOPE_PREFIX = 4096;
const UID_PATTERN = /"request"\s*:\s*\{\s*"uid"\s*:\s*("(?:[^"\\\n]|\\.)*")/;
const VERSION_PATTERN = /"apiVersion"\s*:\s*"(admission\.k8s\.io\/v1(?:beta1)?)"/;

/**
 * The review's apiVersion and request.uid when they appear in the body's first 4 KiB, as the
 * API server writes them (Go encodes the envelope's kind and apiVersion, then request.uid first).
 */
export function envelopeOf(text: string): { apiVersion: ReviewVersion; uid: string } | undefined {
  const head = text.slice(0, ENVELOPE_PREFIX);
  const found = UID_PATTERN.exec(head);
  if (found?.[1] === undefined) return undefined;
  let uid: unknown;
  try {
    uid = JSON.parse(found[1]);
  } catch {
    return undefined;
  }
  if (typeof uid !== 'string' || uid === '' || uid.length > MAX_UID_LENGTH) return undefined;
  const version = VERSION_PATTERN.exec(head.slice(0, found.index))?.[1];
  const apiVersion = REVIEW_VERSIONS.find((v) => v === version) ?? 'admission.k8s.io/v1';
  return { apiVersion, uid };
}
