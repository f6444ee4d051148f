// Runs every AdmissionReview fixture under test/fixtures/admission/<kind>/*.json through the
// admission path: real review JSON in, the exact decision, message, warnings and patch out.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import fastJsonPatch from 'fast-json-patch';
import { admit, type Webhook } from '../../src/admission/handler.js';
import { Ipv4Range, VipAllocator } from '../../src/admission/vip.js';
import { ConfigStore } from '../../src/cache/store.js';

interface Fixture {
  description: string;
  webhook: Webhook;
  cache?: Record<string, unknown>[];
  review: { apiVersion: string; request: { uid: string; object?: unknown; operation: string } };
  expect: {
    httpStatus?: number;
    allowed: boolean;
    code?: number;
    message?: string;
    warnings?: string[];
    patch?: unknown[];
  };
}

const root = new URL('../fixtures/admission/', import.meta.url).pathname;

for (const dir of readdirSync(root).sort()) {
  t.test(dir, async (t) => {
    const files = readdirSync(join(root, dir))
      .filter((f) => f.endsWith('.json'))
      .sort();
    t.ok(files.length > 0, 'has fixtures');
    for (const file of files) {
      const fx = JSON.parse(readFileSync(join(root, dir, file), 'utf8')) as Fixture;
      t.test(`${file}: ${fx.description}`, async (t) => {
        const store = new ConfigStore();
        for (const o of fx.cache ?? []) store.upsert(o, 'file');
        const vips = new VipAllocator(new Ipv4Range('240.240.0.0/16'), store);
        const deps = { view: store, vips, breezeUsers: ['system:serviceaccount:istio-system:breeze'] };
        const res = admit(fx.webhook, structuredClone(fx.review), deps);
        t.equal(res.httpStatus, fx.expect.httpStatus ?? 200, 'HTTP status');
        const body = res.body as any;
        t.equal(body.apiVersion, fx.review.apiVersion, 'answers in the request version');
        t.equal(body.kind, 'AdmissionReview');
        t.equal(body.response.uid, fx.review.request.uid, 'echoes uid');
        t.equal(body.response.allowed, fx.expect.allowed, 'allowed');
        if (fx.expect.allowed) {
          t.equal(body.response.status, undefined, 'no status on allow');
        } else {
          t.equal(body.response.status.code, fx.expect.code ?? 422, 'status.code');
          t.equal(body.response.status.message, fx.expect.message, 'message');
          if ((fx.expect.code ?? 422) === 422) t.equal(body.response.status.reason, undefined, 'no reason');
          if (fx.expect.code !== 400)
            t.equal(body.response.status.details?.name, (fx.review.request as any).name, 'details.name');
        }
        t.same(body.response.warnings ?? [], fx.expect.warnings ?? [], 'warnings');
        for (const w of body.response.warnings ?? []) t.ok(w.length <= 120, `warning within 120 chars: ${w}`);
        const patch =
          body.response.patch === undefined
            ? []
            : JSON.parse(Buffer.from(body.response.patch, 'base64').toString('utf8'));
        t.same(patch, fx.expect.patch ?? [], 'patch, op by op');
        if (patch.length > 0) {
          t.equal(body.response.patchType, 'JSONPatch');
          // Idempotence: the patched object needs no further patch.
          const patched = fastJsonPatch.applyPatch(
            structuredClone(fx.review.request.object),
            patch,
          ).newDocument;
          const again = structuredClone(fx.review) as any;
          again.request.object = patched;
          again.request.uid = `${fx.review.request.uid}-again`;
          const res2 = admit(fx.webhook, again, deps).body as any;
          t.equal(res2.response.patch, undefined, 'mutating the result again yields no patch');
        }
      });
    }
  });
}
