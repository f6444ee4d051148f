import { asArray, asRecord, asString, type JsonRecord } from '../../model/json.js';
import { isKubeApiError } from './rest.js';

/** Reads a discovery document; rejects with KubeApiError on a non-2xx answer. */
export type DiscoveryGet = (path: string) => Promise<JsonRecord>;

/** The first of `preferred` that the server serves; undefined when it serves none of them. */
export function pickVersion(served: readonly string[], preferred: readonly string[]): string | undefined {
  return preferred.find((v) => served.includes(v));
}

/**
 * Which version of a resource to read, from the API discovery endpoints: `/apis/<group>` (or
 * `/api` for the core group) for the served versions, then `/apis/<group>/<version>` for the
 * resources each one has. Results are cached per group until `invalidate`; concurrent callers
 * share one request. Transient errors reject (and are not cached); a group or version the server
 * does not serve (404) is an answer: "not served".
 */
export class Discovery {
  private readonly groups = new Map<string, Promise<string[]>>();
  private readonly resources = new Map<string, Promise<Set<string>>>();

  constructor(private readonly get: DiscoveryGet) {}

  /**
   * The first version of `preferred` that is served and has `resource`; undefined when there is
   * none (for example the CRD is not installed).
   */
  async resolve(group: string, resource: string, preferred: readonly string[]): Promise<string | undefined> {
    const served = await this.servedVersions(group);
    for (const version of preferred) {
      if (!served.includes(version)) continue;
      if ((await this.resourcesOf(group, version)).has(resource)) return version;
    }
    return undefined;
  }

  /** Forgets what was learned about `group` (a 404 on a list, a CRD that may have appeared). */
  invalidate(group: string): void {
    this.groups.delete(group);
    for (const key of [...this.resources.keys()]) if (key.startsWith(`${group}/`)) this.resources.delete(key);
  }

  /** Served versions of a group, preferred first; [] when the group is not served. */
  servedVersions(group: string): Promise<string[]> {
    return this.cached(this.groups, group, async () => {
      const doc = await this.orNotServed(group === '' ? '/api' : `/apis/${group}`);
      if (doc === undefined) return [];
      if (group === '')
        return (asArray(doc.versions) ?? []).filter((v): v is string => typeof v === 'string');
      return (asArray(doc.versions) ?? [])
        .map((v) => asString(asRecord(v)?.version))
        .filter((v): v is string => v !== undefined);
    });
  }

  private resourcesOf(group: string, version: string): Promise<Set<string>> {
    return this.cached(this.resources, `${group}/${version}`, async () => {
      const doc = await this.orNotServed(group === '' ? `/api/${version}` : `/apis/${group}/${version}`);
      const names = (asArray(doc?.resources) ?? [])
        .map((r) => asString(asRecord(r)?.name))
        .filter((n): n is string => n !== undefined && !n.includes('/'));
      return new Set(names);
    });
  }

  private async orNotServed(path: string): Promise<JsonRecord | undefined> {
    try {
      return await this.get(path);
    } catch (err) {
      if (isKubeApiError(err, 404)) return undefined;
      throw err;
    }
  }

  private cached<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
    let p = map.get(key);
    if (p === undefined) {
      p = load();
      map.set(key, p);
      p.catch(() => {
        if (map.get(key) === p) map.delete(key);
      });
    }
    return p;
  }
}
