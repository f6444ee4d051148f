// The profile reader of the admission bench: self time per function from a V8 .cpuprofile.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { formatTop, topSelfTime } from '../../bench/profile-top.js';

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

t.test('self time per function, summed over call sites, largest first', async (t) => {
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [2, 3, 5] },
      { id: 2, callFrame: frame('(idle)') },
      { id: 3, callFrame: frame('handle', 'file:///x/dist/server/app.js', 151), children: [4] },
      { id: 4, callFrame: frame('checkBounds', 'file:///x/dist/model/bounds.js', 49) },
      { id: 5, callFrame: frame('checkBounds', 'file:///x/dist/model/bounds.js', 49) },
    ],
    // The time of sample i is timeDeltas[i + 1] (µs).
    samples: [2, 3, 4, 5, 2, 4],
    timeDeltas: [0, 4000, 1000, 2000, 1000, 2000, 0],
    startTime: 0,
    endTime: 10_000,
  };
  const dir = mkdtempSync(join(tmpdir(), 'breeze-prof-'));
  const file = join(dir, 'p.cpuprofile');
  writeFileSync(file, JSON.stringify(profile));
  const top = topSelfTime(file, 3);
  t.strictSame(top, [
    { name: '(idle)', ms: 6, percent: 60 },
    { name: 'checkBounds dist/model/bounds.js:50', ms: 3, percent: 30 },
    { name: 'handle dist/server/app.js:152', ms: 1, percent: 10 },
  ]);
  t.equal(
    formatTop(top),
    [
      ' 1.  60.0%  6 ms  (idle)',
      ' 2.  30.0%  3 ms  checkBounds dist/model/bounds.js:50',
      ' 3.  10.0%  1 ms  handle dist/server/app.js:152',
    ].join('\n'),
  );
});
