// Istio HTTPMatchRequest → Dubbo RouteMatch {method: MethodMatch, headers: [HeaderMatcher]}.
import { asRecord, type JsonRecord } from '../../model/json.js';
import { quote } from '../../model/limits.js';
import { generationError, stringMatchOf, type StringMatch } from '../shared/vsroutes.js';

/**
 * Matches every method. Envoy needs a method matcher on each Dubbo route. RegexMatcher's engine
 * (`googleRe2`) is deprecated and no longer required, so only `regex` is set.
 */
export const CATCH_ALL_METHOD: JsonRecord = { safeRegex: { regex: '.*' } };

/** An Istio StringMatch as Envoy's type.matcher.v3.StringMatcher. */
function stringMatcher(m: StringMatch): JsonRecord {
  switch (m.kind) {
    case 'exact':
      return { exact: m.value };
    case 'prefix':
      // StringMatcher.prefix must not be empty; an empty prefix matches everything.
      return m.value === '' ? CATCH_ALL_METHOD : { prefix: m.value };
    case 'regex':
      return { safeRegex: { regex: m.value } };
  }
}

/**
 * A config.route.v3.HeaderMatcher. The string forms use `stringMatch`: HeaderMatcher's
 * exactMatch/prefixMatch/safeRegexMatch are deprecated. `{}` or an empty prefix means the header
 * must be present (as Istio translates them).
 */
function headerMatcher(name: string, m: StringMatch | undefined): JsonRecord {
  if (m === undefined || (m.kind === 'prefix' && m.value === '')) return { name, presentMatch: true };
  return { name, stringMatch: stringMatcher(m) };
}

/** Header names Envoy accepts: not empty, no NUL, CR or LF. */
const BAD_HEADER_NAME = /[\0\r\n]/;

/**
 * The Dubbo RouteMatch for one match entry (undefined: match every method). Only `method` and
 * `headers` are read (the other HTTPMatchRequest fields are warned about at admission); headers
 * come sorted by name so the output does not depend on key order.
 */
export function dubboRouteMatch(
  match: JsonRecord | undefined,
  where: (field?: string) => string,
): JsonRecord {
  if (match === undefined) return { method: { name: CATCH_ALL_METHOD } };
  const method =
    match.method === undefined || match.method === null
      ? undefined
      : stringMatchOf(match.method, where('.method'));
  const out: JsonRecord = {
    method: { name: method === undefined ? CATCH_ALL_METHOD : stringMatcher(method) },
  };
  if (match.headers !== undefined && match.headers !== null) {
    const headers = asRecord(match.headers);
    if (headers === undefined) {
      throw generationError(`${where('.headers')}: must be a map of header names to string matches`);
    }
    const names = Object.keys(headers).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const matchers = names.map((name) => {
      if (name === '' || BAD_HEADER_NAME.test(name)) {
        throw generationError(`${where('.headers')}: ${quote(name, 60)} is not a valid header name`);
      }
      const shown = name.length <= 60 ? name : `${name.slice(0, 57)}...`;
      return headerMatcher(name, stringMatchOf(headers[name], where(`.headers.${shown}`)));
    });
    if (matchers.length > 0) out.headers = matchers;
  }
  return out;
}
