import t, { type Test } from 'tap';
import {
  formatMicroTime,
  LeaderElector,
  parseMicroTime,
  type LeaderElectorOptions,
} from '../../src/reconcile/leader.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { FakeKubeApiServer, type RequestRecord } from '../fakes/kube-apiserver.js';
import { waitFor } from '../sources/helpers.js';

const NS = 'breeze-system';
const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;
// Short but whole-second lease (the Lease field is in seconds); generous margins for a loaded CI.
const LEASE_MS = 2000;
const TIMING = {
  leaseDurationMs: LEASE_MS,
  renewDeadlineMs: 1200,
  retryPeriodMs: 200,
  requestTimeoutMs: 1000,
};
const MICRO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

interface Transition {
  readonly at: number;
  readonly who: string;
  readonly what: 'started' | 'aborted' | 'stopped';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fake API server, electors on it, a log of leadership transitions and an overlap sampler. */
async function cluster(t: Test) {
  const api = await FakeKubeApiServer.start();
  const transitions: Transition[] = [];
  const electors: LeaderElector[] = [];
  /** When stop() (which releases) was called, per user agent. */
  const stoppedAt = new Map<string, number>();
  let overlaps = 0;
  const sampler = setInterval(() => {
    if (electors.filter((e) => e.isLeader()).length > 1) overlaps++;
  }, 2);
  t.teardown(async () => {
    clearInterval(sampler);
    await Promise.all(electors.map((e) => e.kill()));
    await api.close();
  });
  const make = (identity: string, extra: Partial<LeaderElectorOptions> = {}): LeaderElector => {
    const e = new LeaderElector({
      kubeConfig: api.kubeConfig(),
      namespace: NS,
      identity,
      ...TIMING,
      onStartedLeading: (signal) => {
        transitions.push({ at: Date.now(), who: identity, what: 'started' });
        signal.addEventListener('abort', () =>
          transitions.push({ at: Date.now(), who: identity, what: 'aborted' }),
        );
      },
      onStoppedLeading: () => {
        transitions.push({ at: Date.now(), who: identity, what: 'stopped' });
      },
      ...extra,
    });
    electors.push(e);
    return e;
  };
  const stop = (e: LeaderElector): Promise<void> => {
    stoppedAt.set(ua(e.identity), Date.now());
    return e.stop();
  };
  const lease = () => api.get('coordination.k8s.io/v1', 'Lease', NS, 'breeze-leader');
  const spec = () => (lease()?.spec ?? {}) as Record<string, unknown>;
  const writes = (): RequestRecord[] =>
    api.requests.filter(
      (r) => r.path.startsWith(LEASES) && (r.method === 'PUT' || r.method === 'POST') && r.status < 300,
    );
  /** Successful writes come from the holder only: a new writer only after a release or an expiry. */
  const checkWrites = (): void => {
    let prev: RequestRecord | undefined;
    for (const w of writes()) {
      if (prev !== undefined && prev.userAgent !== w.userAgent) {
        const stopAt = stoppedAt.get(prev.userAgent);
        const released = stopAt !== undefined && prev.at >= stopAt;
        if (!released)
          t.ok(
            w.at >= prev.at + LEASE_MS,
            `${w.userAgent} wrote ${w.at - prev.at} ms after ${prev.userAgent}'s last write (lease ${LEASE_MS} ms)`,
          );
      }
      prev = w;
    }
  };
  /** Walking the transitions in order, there is never more than one leader. */
  const checkTransitions = (): void => {
    const leaders = new Set<string>();
    let max = 0;
    for (const x of transitions) {
      if (x.what === 'started') leaders.add(x.who);
      else if (x.what === 'aborted') leaders.delete(x.who);
      max = Math.max(max, leaders.size);
    }
    t.equal(max, 1, 'never two leaders in the transition log');
    t.equal(overlaps, 0, 'never two leaders sampled at once');
  };
  return { api, make, stop, lease, spec, writes, transitions, checkWrites, checkTransitions };
}

function ua(identity: string): string {
  return `breeze-leader-election/${identity}`;
}

t.test('MicroTime formatting and parsing', async (t) => {
  const ms = Date.UTC(2024, 1, 29, 23, 59, 58, 123);
  t.equal(formatMicroTime(ms), '2024-02-29T23:59:58.123000Z');
  t.equal(parseMicroTime('2024-02-29T23:59:58.123000Z'), ms);
  t.equal(parseMicroTime('2024-02-29T23:59:58.123456Z'), ms + 0.456);
  t.equal(parseMicroTime('2024-02-29T23:59:58Z'), ms - 123);
  t.equal(parseMicroTime('2024-03-01T01:59:58.123+02:00'), ms);
  t.equal(parseMicroTime('yesterday'), undefined);
  t.equal(parseMicroTime(undefined), undefined);
});

t.test('rejects inconsistent timings', async (t) => {
  const api = await FakeKubeApiServer.start();
  t.teardown(() => api.close());
  const base = { kubeConfig: api.kubeConfig(), namespace: NS, identity: 'a' };
  t.throws(() => new LeaderElector({ ...base, leaseDurationMs: 1500 }), /whole seconds/);
  t.throws(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }));
  t.throws(() => new LeaderElector({ ...base, renewDeadlineMs: 2000, retryPeriodMs: 2000 }));
  t.throws(() => new LeaderElector({ ...base, identity: '' }));
  const d = new LeaderElector(base);
  t.same(
    [d.name, d.leaseDurationMs, d.renewDeadlineMs, d.retryPeriodMs],
    ['breeze-leader', 15_000, 10_000, 2000],
    'client-go-like defaults',
  );
});

t.test('a single replica acquires, renews and releases the Lease', async (t) => {
  const c = await cluster(t);
  const metrics = createMetrics();
  const a = c.make('a', { metrics });
  t.notOk(a.isLeader());
  t.ok(a.leadershipSignal().aborted, 'not leader: an aborted signal');
  a.start();
  await waitFor('a leads', () => a.isLeader());
  const signal = a.leadershipSignal();
  t.notOk(signal.aborted);
  const first = c.spec();
  t.equal(first.holderIdentity, 'a');
  t.equal(first.leaseDurationSeconds, 2);
  t.equal(first.leaseTransitions, 0);
  t.match(first.acquireTime, MICRO);
  t.match(first.renewTime, MICRO);
  t.equal((await metrics.leader.get()).values[0]?.value, 1, 'breeze_leader is 1');
  t.equal((await metrics.leaderAcquisitions.get()).values[0]?.value, 1);

  await waitFor('a renewal', () => c.spec().renewTime !== first.renewTime);
  const renewed = c.spec();
  t.equal(renewed.acquireTime, first.acquireTime, 'a renewal keeps acquireTime');
  t.equal(renewed.leaseTransitions, 0, 'and leaseTransitions');
  t.ok(parseMicroTime(renewed.renewTime as string)! > parseMicroTime(first.renewTime as string)!);
  t.ok(a.isLeader());
  t.equal(c.writes()[0]?.method, 'POST', 'the absent Lease was created');
  t.ok(
    c.api.requestsTo(LEASES).every((r) => r.userAgent === ua('a')),
    'every request carries the identity in its user agent',
  );

  await c.stop(a);
  t.ok(signal.aborted, 'stop aborts the leadership signal');
  t.notOk(a.isLeader());
  t.equal((await metrics.leader.get()).values[0]?.value, 0);
  const released = c.spec();
  t.equal(released.holderIdentity, '', 'released: no holder');
  t.equal(released.leaseDurationSeconds, 1);
  t.equal(released.leaseTransitions, 0);
  t.same(
    c.transitions.map((x) => x.what),
    ['started', 'aborted', 'stopped'],
    'the signal aborts before onStoppedLeading',
  );
  const n = c.api.requests.length;
  await sleep(500);
  t.equal(c.api.requests.length, n, 'no request after stop');
});

t.test('two replicas: one leader at a time, takeover after a crash and after a release', async (t) => {
  const c = await cluster(t);
  const a = c.make('a');
  const b = c.make('b');
  a.start();
  b.start();
  await waitFor('a leader', () => a.isLeader() || b.isLeader());
  const [leader, standby] = a.isLeader() ? [a, b] : [b, a];
  await sleep(800);
  t.ok(leader.isLeader(), 'the leader keeps leading');
  t.notOk(standby.isLeader(), 'the standby stays standby');
  t.equal(standby.observedLeader, leader.identity);
  t.equal(c.spec().leaseTransitions, 0);

  // The leader crashes: it stops renewing and does not release.
  const leaderSignal = leader.leadershipSignal();
  await leader.kill();
  t.ok(leaderSignal.aborted);
  const lastWrite = c
    .writes()
    .filter((w) => w.userAgent === ua(leader.identity))
    .at(-1)!;
  await waitFor('the standby takes over', () => standby.isLeader(), 10_000);
  const after = Date.now() - lastWrite.at;
  t.ok(after >= LEASE_MS, `not before the Lease expired (${after} ms after the last renewal)`);
  t.ok(after < LEASE_MS + 3000, `about a lease duration after the last renewal (${after} ms)`);
  t.equal(c.spec().holderIdentity, standby.identity);
  t.equal(c.spec().leaseTransitions, 1, 'a takeover increments leaseTransitions');

  // A third replica joins, then the leader stops gracefully: the newcomer takes over at once.
  const z = c.make('z');
  z.start();
  await waitFor('z sees the leader', () => z.observedLeader === standby.identity);
  await sleep(300);
  t.notOk(z.isLeader());
  const stopping = Date.now();
  await c.stop(standby);
  await waitFor('z takes over', () => z.isLeader(), 5000);
  const handover = Date.now() - stopping;
  t.ok(handover < 1500, `takeover within a few retry periods of the release (${handover} ms)`);
  t.equal(c.spec().holderIdentity, 'z');
  t.equal(c.spec().leaseTransitions, 2);
  t.equal(c.spec().leaseDurationSeconds, 2, 'the new holder writes its own duration');
  await sleep(300);
  t.ok(z.isLeader());

  c.checkWrites();
  c.checkTransitions();
  const conflicts = c.api.requestsTo(LEASES).filter((r) => r.status === 409).length;
  t.comment(`${c.writes().length} successful writes, ${conflicts} conflicts`);
});

for (const fault of ['hang', 500] as const)
  t.test(
    `a leader whose renewals ${fault === 'hang' ? 'hang' : 'fail'} steps down before its Lease expires`,
    async (t) => {
      const c = await cluster(t);
      const a = c.make('a');
      a.start();
      await waitFor('a leads', () => a.isLeader());
      const signal = a.leadershipSignal();
      let abortedAt = 0;
      signal.addEventListener('abort', () => (abortedAt = Date.now()));
      await sleep(300);
      c.api.injectFault({ status: fault, path: LEASES, count: 1_000_000 });
      const faultAt = Date.now();
      await waitFor('a steps down', () => signal.aborted, 5000);
      const lastWrite = c.writes().at(-1)!;
      t.ok(lastWrite.at <= faultAt, 'the last successful write came before the fault');
      const renewTime = parseMicroTime(c.spec().renewTime as string)!;
      const margin = renewTime + LEASE_MS - abortedAt;
      t.ok(margin > 0, `aborted ${margin} ms before the Lease it wrote last expires`);
      t.ok(abortedAt - lastWrite.at < LEASE_MS, 'less than a lease duration after the last renewal');
      t.notOk(a.isLeader());
      t.same(
        c.transitions.map((x) => x.what),
        ['started', 'aborted', 'stopped'],
      );
      if (fault === 500)
        t.ok(
          c.api.requestsTo(LEASES).filter((r) => r.status === 500).length >= 2,
          'it kept retrying until the deadline',
        );

      // The API comes back: the Lease still names a, which leads again (a new term).
      c.api.clearFaults();
      await waitFor('a leads again', () => a.isLeader(), 5000);
      t.not(a.leadershipSignal(), signal, 'a new term, a new signal');
      t.notOk(a.leadershipSignal().aborted);
      t.equal(c.spec().leaseTransitions, 0, 'reacquiring its own Lease is no transition');
    },
  );

t.test('a new replica honours a live Lease, takes a released or its own at once', async (t) => {
  const c = await cluster(t);
  const put = (holder: string, durationSeconds = 2) =>
    c.api.put({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'breeze-leader', namespace: NS },
      spec: {
        holderIdentity: holder,
        leaseDurationSeconds: durationSeconds,
        acquireTime: formatMicroTime(Date.now()),
        renewTime: formatMicroTime(Date.now()),
        leaseTransitions: 5,
      },
    });

  put('ghost');
  const started = Date.now();
  const a = c.make('a');
  a.start();
  await waitFor('a sees ghost', () => a.observedLeader === 'ghost');
  await sleep(1000);
  t.notOk(a.isLeader(), 'a live Lease of another holder is not taken');
  await waitFor('a takes the expired Lease', () => a.isLeader(), 6000);
  t.ok(Date.now() - started >= LEASE_MS, 'only after it expired');
  t.equal(c.spec().leaseTransitions, 6);
  await c.stop(a);

  put('');
  const b = c.make('b');
  const t0 = Date.now();
  b.start();
  await waitFor('b takes the released Lease', () => b.isLeader(), 3000);
  t.ok(Date.now() - t0 < 1500, 'a released Lease is taken at once');
  t.equal(c.spec().leaseTransitions, 6);
  await b.kill();

  put('c', 15);
  const again = c.make('c');
  const t1 = Date.now();
  again.start();
  await waitFor('c takes back its own Lease', () => again.isLeader(), 3000);
  t.ok(Date.now() - t1 < 1500, 'a restarted replica with the same identity leads at once');
  t.equal(c.spec().leaseTransitions, 5, 'no transition');
  t.equal(c.spec().leaseDurationSeconds, 2);
});
