// The top self-time items of a V8 .cpuprofile (what `node --cpu-prof` writes), by function and
// location. `node --import tsx bench/profile-top.ts FILE [N]` prints them.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface TopItem {
  readonly name: string;
  readonly ms: number;
  readonly percent: number;
}

/** Self time per function (summed over its call sites), largest first; percent of the whole profile. */
export function topSelfTime(file: string, n = 10): TopItem[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node] as const));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // Each sample's time is the delta to the next sample.
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const byName = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    total += us;
    const f = node.callFrame;
    const where = f.url === '' ? '' : ` ${shorten(f.url)}:${f.lineNumber + 1}`;
    const name = `${f.functionName === '' ? '(anonymous)' : f.functionName}${where}`;
    byName.set(name, (byName.get(name) ?? 0) + us);
  }
  return [...byName]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({
      name,
      ms: Math.round(us / 100) / 10,
      percent: total === 0 ? 0 : Math.round((us / total) * 1000) / 10,
    }));
}

function shorten(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return basename(url);
}

export function formatTop(items: readonly TopItem[]): string {
  return items
    .map(
      (t, i) => `${String(i + 1).padStart(2)}. ${t.percent.toFixed(1).padStart(5)}%  ${t.ms} ms  ${t.name}`,
    )
    .join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, n] = process.argv.slice(2);
  if (file === undefined) {
    console.error('usage: profile-top.ts FILE.cpuprofile [N]');
    process.exit(2);
  }
  console.log(formatTop(topSelfTime(file, Number(n ?? 25))));
}
