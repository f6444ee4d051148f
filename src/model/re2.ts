import { RE2JS, RE2JSSyntaxException } from 're2js';

/** Longest piece of the offending pattern quoted in a reason. */
const MAX_FRAGMENT = 24;

/**
 * Envoy refuses a regex whose compiled RE2 program has more instructions than the runtime key
 * `re2.max_program_size.error_level`: 100 by default, 32768 in Istio's sidecars (istio-agent's
 * bootstrap sets it). Every atom of a pattern compiles to at least one instruction.
 */
export const ENVOY_PROGRAM_SIZE_LIMIT = 100;
export const ISTIO_PROGRAM_SIZE_LIMIT = 32768;

/**
 * Longest regex Breeze compiles (in UTF-16 code units). Compiling with re2js costs up to ~10 µs
 * per character on the admission path (more for some shapes: `.*` repeated, many groups), so
 * a pattern is bounded before it is compiled. A hand-written Dubbo method or header regex is a
 * few dozen characters; a pattern this long is far beyond Envoy's default program size limit.
 */
export const MAX_REGEX_LENGTH = 8192;

/**
 * Most Unicode classes (`\p{...}`, `\P{...}`, `\pL`) in one regex: re2js builds each one's
 * ranges (a few hundred microseconds apiece for `\pL`), and RE2 compiles each to many instructions.
 */
export const MAX_REGEX_UNICODE_CLASSES = 64;

const RULE =
  `Envoy refuses a regex whose RE2 program exceeds re2.max_program_size.error_level ` +
  `(${ENVOY_PROGRAM_SIZE_LIMIT} by default, ${ISTIO_PROGRAM_SIZE_LIMIT} in Istio's sidecars)`;

interface RegexShape {
  /** Copies counted repetitions (`x{n}`, `x{n,m}`, `x{n,}`) expand to, summed. */
  readonly repeatCopies: number;
  /** `\p` and `\P` classes. */
  readonly unicodeClasses: number;
}

const REPEAT = /\{(\d{1,9})(?:,(\d{0,9}))?\}/y;

/**
 * One linear pass over a pattern, without compiling it: what its counted repetitions expand to
 * and how many Unicode classes it uses. Escapes, `\Q...\E` and character classes are skipped, so
 * a literal `\{1000\}` or `[{]` is not a repetition.
 */
function shapeOf(pattern: string): RegexShape {
  let repeatCopies = 0;
  let unicodeClasses = 0;
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i];
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === 'Q') {
        const end = pattern.indexOf('\\E', i + 2);
        i = end < 0 ? n : end + 2;
        continue;
      }
      if (next === 'p' || next === 'P') unicodeClasses++;
      i += 2;
    } else if (c === '[') {
      let j = i + 1;
      if (pattern[j] === '^') j++;
      if (pattern[j] === ']') j++;
      while (j < n && pattern[j] !== ']') {
        if (pattern[j] === '\\') {
          const next = pattern[j + 1];
          if (next === 'p' || next === 'P') unicodeClasses++;
          j += 2;
        } else if (pattern[j] === '[' && pattern[j + 1] === ':') {
          const end = pattern.indexOf(':]', j + 2);
          j = end < 0 ? j + 1 : end + 2;
        } else {
          j++;
        }
      }
      i = j + 1;
    } else if (c === '{') {
      REPEAT.lastIndex = i;
      const m = REPEAT.exec(pattern);
      if (m === null) {
        i++;
      } else {
        const min = Number(m[1]);
        const max = m[2] === undefined || m[2] === '' ? min : Number(m[2]);
        repeatCopies += Math.max(min, max);
        i = REPEAT.lastIndex;
      }
    } else {
      i++;
    }
  }
  return { repeatCopies, unicodeClasses };
}

/**
 * Why a pattern is too large for Breeze to compile, or undefined. Linear in the pattern and
 * cheap: it runs before re2js, whose compile cost grows with these measures.
 */
export function regexSizeError(pattern: string): string | undefined {
  if (pattern.length > MAX_REGEX_LENGTH) {
    return (
      `is ${pattern.length} characters long; Breeze compiles regexes of at most ${MAX_REGEX_LENGTH} ` +
      `characters (${RULE}): shorten it, e.g. split its alternatives over several match entries`
    );
  }
  const shape = shapeOf(pattern);
  if (shape.repeatCopies > ISTIO_PROGRAM_SIZE_LIMIT) {
    return (
      `its counted repetitions ({n}) expand to ${shape.repeatCopies} copies, more than ` +
      `${ISTIO_PROGRAM_SIZE_LIMIT} RE2 instructions (${RULE}): use * or + instead of large counts`
    );
  }
  if (shape.unicodeClasses > MAX_REGEX_UNICODE_CLASSES) {
    return (
      `uses ${shape.unicodeClasses} Unicode classes (\\p); Breeze compiles at most ` +
      `${MAX_REGEX_UNICODE_CLASSES} per regex, each compiling to many RE2 instructions (${RULE})`
    );
  }
  return undefined;
}

/**
 * Checks a pattern with RE2 syntax, which is what Envoy runs for `regex` matches (not
 * JavaScript's RegExp: lookaround and backreferences are valid there but not in RE2).
 * Returns undefined when the pattern compiles, else the parser's reason, short,
 * e.g. "invalid or unsupported Perl syntax `(?=`". A pattern over Breeze's size bounds
 * (regexSizeError) is refused before it is compiled; one that compiles to more instructions than
 * Istio's sidecars accept is refused after.
 */
export function re2Error(pattern: string): string | undefined {
  return regexProblem(pattern)?.reason;
}

/** Why Envoy would refuse a regex: not RE2 syntax, or too large (a length or program size bound). */
export interface RegexProblem {
  readonly reason: string;
  readonly tooLarge: boolean;
}

/**
 * Verdicts for recently checked patterns (compiling costs 1-5 ms each in re2js): an UPDATE, the
 * API server's retries and every replica see the same patterns again. Bounded in entries and in
 * pattern length, oldest dropped first.
 */
const verdicts = new Map<string, RegexProblem | null>();
const MAX_CACHED_VERDICTS = 1024;
const MAX_CACHED_PATTERN_LENGTH = 1024;

/** re2Error with the kind of problem, so a message can say "not valid RE2" or "too large". */
export function regexProblem(pattern: string): RegexProblem | undefined {
  const cached = verdicts.get(pattern);
  if (cached !== undefined) return cached ?? undefined;
  const verdict = uncachedRegexProblem(pattern);
  if (pattern.length <= MAX_CACHED_PATTERN_LENGTH) {
    if (verdicts.size >= MAX_CACHED_VERDICTS) {
      const oldest = verdicts.keys().next();
      if (oldest.done !== true) verdicts.delete(oldest.value);
    }
    verdicts.set(pattern, verdict ?? null);
  }
  return verdict;
}

function uncachedRegexProblem(pattern: string): RegexProblem | undefined {
  const tooLarge = regexSizeError(pattern);
  if (tooLarge !== undefined) return { reason: tooLarge, tooLarge: true };
  try {
    const size = RE2JS.compile(pattern).programSize();
    if (size <= ISTIO_PROGRAM_SIZE_LIMIT) return undefined;
    return {
      reason: `compiles to ${size} RE2 instructions, more than ${ISTIO_PROGRAM_SIZE_LIMIT} (${RULE}): simplify it`,
      tooLarge: true,
    };
  } catch (err) {
    if (err instanceof RE2JSSyntaxException) {
      const fragment = err.getPattern();
      if (fragment === null || fragment === '') return { reason: err.getDescription(), tooLarge: false };
      const shown = fragment.length <= MAX_FRAGMENT ? fragment : `${fragment.slice(0, MAX_FRAGMENT - 3)}...`;
      return { reason: `${err.getDescription()} \`${shown}\``, tooLarge: false };
    }
    const message = err instanceof Error ? err.message : String(err);
    return { reason: shorten(message.replace(/^error parsing regexp: /, '')), tooLarge: false };
  }
}

function shorten(text: string): string {
  return text.length <= 200 ? text : `${text.slice(0, 197)}...`;
}
