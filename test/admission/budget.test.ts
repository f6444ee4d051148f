// Finding 2 of issue 11 (CPU): each admission request gets a CpuBudget (REQUEST_CPU_BUDGET_MS);
// validators call budget.check() in their loops, and a spent budget is a 422 denial naming the
// budget: never a 500, never recorded. A fake clock stands for the time spent.
import t from 'tap';
import { BudgetExceeded, CpuBudget } from '../../src/admission/budget.js';
import { admit, type AdmittedChange } from '../../src/admission/handler.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore, type ConfigView } from '../../src/cache/store.js';
import { REQUEST_CPU_BUDGET_MS } from '../../src/model/limits.js';

const vsReview = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'budget-1',
    kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' },
    namespace: 'dubbo',
    name: 'demo',
    operation: 'CREATE',
    userInfo: { username: 'mallory' },
    object: {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'demo', namespace: 'dubbo' },
      spec: {
        hosts: ['demo.dubbo.svc.cluster.local'],
        http: [{ route: [{ destination: { host: 'demo' } }] }],
      },
    },
  },
};

t.test('a spent budget is a 422 denial naming the budget, nothing recorded', async (t) => {
  const store = new ConfigStore();
  let clock = 0;
  const budgets: CpuBudget[] = [];
  // The validator's loop: time passes, then it checks the request's budget.
  const view: ConfigView = {
    domain: store.domain,
    protocolServices: (host) => {
      clock += 1_000;
      budgets.at(-1)?.check();
      return store.protocolServices(host);
    },
    destinationRuleSubsets: (host) => store.destinationRuleSubsets(host),
    forHost: (kind, host, from) => store.forHost(kind, host, from),
    addressOwner: (ip) => store.addressOwner(ip),
  };
  const changes: AdmittedChange[] = [];
  const deps = {
    view,
    vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store),
    onAdmitted: (c: AdmittedChange) => changes.push(c),
    newBudget: () => {
      const b = new CpuBudget(REQUEST_CPU_BUDGET_MS, () => clock);
      budgets.push(b);
      return b;
    },
  };
  const r = admit('validate', structuredClone(vsReview), deps);
  t.equal(budgets.length, 1, 'one budget per request');
  t.equal(r.httpStatus, 200);
  t.same(r.body, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid: 'budget-1',
      allowed: false,
      status: {
        status: 'Failure',
        code: 422,
        message: `VirtualService.networking.istio.io "demo" is invalid: (object): the object is too costly to check: Breeze stops after ${REQUEST_CPU_BUDGET_MS} ms of work on one request`,
        details: {
          name: 'demo',
          group: 'networking.istio.io',
          kind: 'VirtualService',
          causes: [
            {
              reason: 'FieldValueInvalid',
              field: '(object)',
              message: `the object is too costly to check: Breeze stops after ${REQUEST_CPU_BUDGET_MS} ms of work on one request`,
            },
          ],
        },
      },
    },
  });
  t.match(r.record, { uid: 'budget-1', allowed: false, code: 422 });
  t.equal(changes.length, 0);

  // The same request with time to spare is allowed and recorded.
  const fresh = { ...deps, view: store, newBudget: () => new CpuBudget(REQUEST_CPU_BUDGET_MS, () => 0) };
  const ok = admit('validate', structuredClone(vsReview), fresh);
  t.match(ok.body, { response: { uid: 'budget-1', allowed: true } });
  t.equal(changes.length, 1);
});

t.test('BudgetExceeded names the budget; an unlimited budget never expires', async (t) => {
  t.equal(
    new BudgetExceeded(25).message,
    'the object is too costly to check: Breeze stops after 25 ms of work on one request',
  );
  let now = 0;
  const b = new CpuBudget(0, () => now);
  t.doesNotThrow(() => b.check(), 'not past the deadline yet');
  now = 1;
  t.throws(() => b.check(), { budgetMs: 0, code: 'BAD_REQUEST' });
  t.equal(b.exceeded, true);
  t.doesNotThrow(() => CpuBudget.unlimited().check());
});

t.test('the bounds check counts against the budget: a huge object is cut short, not walked', async (t) => {
  const store = new ConfigStore();
  let clock = 0;
  const deps = {
    view: store,
    vips: new VipAllocator(new Ipv4Range('240.240.0.0/16'), store),
    // Every clock read is 10 ms later: the 11th check (after 11,264 values) is past 100 ms.
    newBudget: () => new CpuBudget(REQUEST_CPU_BUDGET_MS, () => (clock += 10)),
  };
  const review = structuredClone(vsReview) as any;
  review.request.object.spec.x = Array.from({ length: 50_000 }, () => ({}));
  const r = admit('validate', review, deps);
  t.match(r.body, {
    response: {
      uid: 'budget-1',
      allowed: false,
      status: {
        code: 422,
        message: `(object): the object is too costly to check: Breeze stops after ${REQUEST_CPU_BUDGET_MS} ms of work on one request`,
      },
    },
  });
  const small = structuredClone(vsReview);
  clock = 0;
  t.match(admit('validate', small, deps).body, { response: { allowed: true } });
});

t.test(
  'the budget is spent only when wall time passes it and CPU time half of it since halfway',
  async (t) => {
    let wall = 0;
    let cpu = 0;
    const b = new CpuBudget(
      100,
      () => wall,
      () => cpu,
    );
    wall = 40;
    t.doesNotThrow(() => b.check(), 'before halfway: not even the CPU clock is read');
    wall = 60; // halfway: the CPU clock is read for the first time (cpu 0)
    t.doesNotThrow(() => b.check());
    wall = 500; // another process held the core: wall time passed, our CPU time did not
    cpu = 20;
    t.doesNotThrow(() => b.check(), 'a busy node does not deny');
    wall = 101;
    cpu = 51;
    t.throws(() => b.check(), { budgetMs: 100, code: 'BAD_REQUEST' }, 'both past: denied');

    let wall2 = 0;
    let cpu2 = 0;
    const other = new CpuBudget(
      100,
      () => wall2,
      () => cpu2,
    );
    cpu2 = 500; // another thread of ours used CPU: wall time did not pass
    wall2 = 10;
    t.doesNotThrow(() => other.check(), 'other threads alone do not deny');
  },
);

t.test('with the real clocks, check() samples them and still stops a long loop', async (t) => {
  const b = new CpuBudget(5);
  const start = performance.now();
  t.throws(
    () => {
      for (;;) b.check();
    },
    { budgetMs: 5, code: 'BAD_REQUEST' },
  );
  t.ok(performance.now() - start >= 5, 'not before the budget');
});
