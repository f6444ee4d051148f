import { isAlias, isNode, LineCounter, parseAllDocuments, visit, type Document } from 'yaml';
import { checkBounds } from '../model/bounds.js';
import { asArray, asString, isRecord, type JsonRecord } from '../model/json.js';
import { quote } from '../model/limits.js';

/**
 * The yaml package's `maxAliasCount`: how many times one anchor may be expanded (times the aliases
 * inside it). Aliases are rare in Kubernetes manifests and none we know of references an anchor
 * more than a few times; 50 keeps a billion-laughs document to a few dozen expansions. The yaml
 * default is 100. The hard bound on what aliases can cost is MAX_EXPANDED_UNITS below.
 */
export const MAX_YAML_ALIAS_COUNT = 50;

/**
 * Most "units" (one per value, plus one per character of each string and key) all the documents
 * of one file may hold once aliases are expanded. Without aliases a file holds fewer units than it
 * has bytes, so this is the file size cap again (see MAX_MANIFEST_FILE_BYTES): aliases may
 * shorten a manifest, never make it bigger than a file Breeze would read.
 */
export const MAX_EXPANDED_UNITS = 4 * 1024 * 1024;

/** A parse problem message is cut to this many characters (yaml quotes the source in some). */
const MAX_MESSAGE_LENGTH = 300;

export interface ParsedManifest {
  readonly objects: JsonRecord[];
  /** One line per problem: `document N, line L: message` (the line where known). */
  readonly errors: string[];
}

function cut(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.length > MAX_MESSAGE_LENGTH ? `${first.slice(0, MAX_MESSAGE_LENGTH)}...` : first;
}

/**
 * Counts the units of an expanded value without recursion, stopping as soon as `budget` is
 * spent: a DAG of shared aliases is counted as the tree it expands to, at most `budget` steps.
 * Returns the units left (negative when the budget is exceeded).
 */
function spend(value: unknown, budget: number): number {
  const stack: unknown[] = [value];
  let left = budget;
  while (stack.length > 0 && left >= 0) {
    const v = stack.pop();
    left -= 1;
    if (typeof v === 'string') left -= v.length;
    else if (Array.isArray(v)) for (const item of v) stack.push(item);
    else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        left -= k.length;
        stack.push(item);
      }
    }
  }
  return left;
}

/** The first alias of `doc` whose anchor is not defined before it (yaml's own resolution order). */
function unresolvedAlias(doc: Document.Parsed): { source: string; offset: number | undefined } | undefined {
  const anchors = new Set<string>();
  let found: { source: string; offset: number | undefined } | undefined;
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) {
        if (!anchors.has(node.source)) {
          found = { source: node.source, offset: node.range?.[0] };
          return visit.BREAK;
        }
      } else if (isNode(node) && node.anchor !== undefined) anchors.add(node.anchor);
      return undefined;
    },
  });
  return found;
}

/**
 * Parses one file's text: YAML (multi-document) or JSON, `List` kinds expanded. Never throws:
 * every problem (syntax, an alias to a missing anchor, too many aliases, a value past Breeze's
 * bounds) is an error line naming the document and, where known, the line; the other documents
 * still load. Pure and synchronous: the file source runs it in a worker thread.
 */
export function parseManifestText(text: string): ParsedManifest {
  const objects: JsonRecord[] = [];
  const errors: string[] = [];
  const lines = new LineCounter();
  const lineOf = (offset: number | undefined): string =>
    offset === undefined ? '' : `, line ${lines.linePos(offset).line}`;
  let docs;
  try {
    const parsed = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
    docs = Array.isArray(parsed) ? parsed : [parsed];
  } catch (e) {
    // The yaml parser does not throw on bad input; this is the stack on absurd nesting.
    return { objects, errors: [`cannot parse: ${cut(e instanceof Error ? e.message : String(e))}`] };
  }
  let budget = MAX_EXPANDED_UNITS;
  for (const [i, doc] of docs.entries()) {
    const where = `document ${i + 1}`;
    if (doc.errors.length > 0) {
      errors.push(...doc.errors.map((e) => `${where}${lineOf(e.pos[0])}: ${cut(e.message)}`));
      continue;
    }
    const at = lineOf(doc.contents?.range[0] ?? doc.range[0]);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const missing = message.startsWith('Unresolved alias') ? unresolvedAlias(doc) : undefined;
      if (missing !== undefined) {
        const written = `*${missing.source}`;
        errors.push(
          `${where}${lineOf(missing.offset)}: ${quote(written)} is a YAML alias to an anchor that is not defined` +
            ` (YAML reads an unquoted value starting with * as an alias; if a string such as a wildcard host` +
            ` was meant, quote it: ${quote(written)})`,
        );
      } else if (message.startsWith('Excessive alias count')) {
        errors.push(
          `${where}${at}: YAML aliases expand too much (an anchor is used more than Breeze's limit of ${MAX_YAML_ALIAS_COUNT} times, nested uses multiplied)`,
        );
      } else {
        errors.push(`${where}${at}: cannot parse: ${cut(message)}`);
      }
      continue;
    }
    if (value === null || value === undefined) continue;
    budget = spend(value, budget);
    if (budget < 0) {
      errors.push(
        `${where}${at}: with its YAML aliases expanded the file holds more than Breeze's limit of ${MAX_EXPANDED_UNITS} values and characters; the rest of the file is skipped`,
      );
      break;
    }
    if (!isRecord(value)) {
      errors.push(`${where}${at}: not an object with apiVersion and kind`);
      continue;
    }
    const kind = asString(value.kind);
    const items =
      kind !== undefined && kind.endsWith('List') && Array.isArray(value.items)
        ? (asArray(value.items) ?? []).filter(isRecord)
        : [value];
    for (const object of items) {
      const violation = checkBounds(object);
      if (violation !== undefined) {
        const meta = isRecord(object.metadata) ? object.metadata : {};
        const name = `${asString(object.kind) ?? 'object'} ${asString(meta.namespace) ?? ''}/${asString(meta.name) ?? ''}`;
        errors.push(`${where}${at}: ${cut(name)}: ${violation.path}: ${violation.message}; skipped`);
        continue;
      }
      objects.push(object);
    }
  }
  return { objects, errors };
}
