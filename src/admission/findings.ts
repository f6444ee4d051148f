/** What a validator found: hard problems (deny) with the field path, and soft ones (warnings). */
export interface Problem {
  /** Kubernetes field path, e.g. `spec.ports[1]` or `metadata.annotations[interface]`. */
  readonly path: string;
  /** What is wrong and how to fix it. */
  readonly message: string;
}

export interface Findings {
  readonly problems: readonly Problem[];
  readonly warnings: readonly string[];
}

/** Kubernetes truncates warnings past 256 characters; Breeze keeps each at 120 at most. */
export const MAX_WARNING_LENGTH = 120;

/** Collects problems and warnings in the order they are found. */
export class FindingsBuilder {
  private readonly problemList: Problem[] = [];
  private readonly warningList: string[] = [];

  deny(path: string, message: string): this {
    this.problemList.push({ path, message });
    return this;
  }

  /** A warning is rendered `<path>: <message>` and cut to 120 characters with an ellipsis. */
  warn(path: string, message: string): this {
    const text = path === '' ? message : `${path}: ${message}`;
    this.warningList.push(
      text.length <= MAX_WARNING_LENGTH ? text : `${text.slice(0, MAX_WARNING_LENGTH - 1)}…`,
    );
    return this;
  }

  merge(other: Findings): this {
    this.problemList.push(...other.problems);
    this.warningList.push(...other.warnings);
    return this;
  }

  get denied(): boolean {
    return this.problemList.length > 0;
  }

  build(): Findings {
    return { problems: [...this.problemList], warnings: [...new Set(this.warningList)] };
  }
}

/** Field path builder: `field('spec', 'ports', 1, 'name')` → `spec.ports[1].name`. */
export function field(...parts: readonly (string | number)[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? p : `.${p}`;
  }
  return out;
}

/** Map key path: `key('metadata.annotations', 'interface')` → `metadata.annotations[interface]`. */
export function key(path: string, k: string): string {
  return `${path}[${k}]`;
}

/** Renders problems as the denial message: `<path>: <message>` joined by `; `. */
export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('; ');
}

/** JSON rendering of a user value for messages, shortened so a message stays readable. */
export function show(value: unknown): string {
  let s: string;
  try {
    // JSON.stringify answers undefined for undefined and functions, whatever its type says.
    const json = JSON.stringify(value) as string | undefined;
    s = json ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length <= 60 ? s : `${s.slice(0, 57)}...`;
}
