import { RE2JS, RE2JSSyntaxException } from 're2js';

/** Longest piece of the offending pattern quoted in a reason. */
const MAX_FRAGMENT = 24;

/**
 * Checks a pattern with RE2 syntax, which is what Envoy runs for `regex` matches (not
 * JavaScript's RegExp: lookaround and backreferences are valid there but not in RE2).
 * Returns undefined when the pattern compiles, else the parser's reason, short,
 * e.g. "invalid or unsupported Perl syntax `(?=`".
 */
export function re2Error(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (err) {
    if (err instanceof RE2JSSyntaxException) {
      const fragment = err.getPattern();
      if (fragment === null || fragment === '') return err.getDescription();
      const shown = fragment.length <= MAX_FRAGMENT ? fragment : `${fragment.slice(0, MAX_FRAGMENT - 3)}...`;
      return `${err.getDescription()} \`${shown}\``;
    }
    const message = err instanceof Error ? err.message : String(err);
    return message.replace(/^error parsing regexp: /, '');
  }
}
