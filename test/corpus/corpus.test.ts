// The corpus as a regression test (issue 13): 505 real ServiceEntry, VirtualService,
// DestinationRule, RedisService and RedisDestination documents from Istio (samples, testdata, the
// validation tables' valid cases, istio/api's examples) and Aeraki (demo, test, website), copied
// from ../shared/istio-corpus into test/corpus/data (each file's first line names its origin;
// index.json lists every document and the files it is validated with).
//
// - every document of valid/ is allowed, except the ones listed in EXPECTED_DENIALS with a reason;
// - every document of invalid-derived/ (Istio-invalid objects rewritten onto a Dubbo service) is
//   denied where Breeze's rules cover it (INVALID_DERIVED: field path and message fragment), and
//   the ones Breeze's rules do not cover are listed with the Istio rule that refuses them.
//
// Each document is validated as `breeze validate` does with its file and the index's context
// files: the config cache holds every object of those files.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { VALIDATORS } from '../../src/admission/validators/index.js';
import { ConfigStore } from '../../src/cache/store.js';
import { handledKindOf } from '../../src/model/kinds.js';
import type { JsonRecord } from '../../src/model/json.js';
import type { Findings } from '../../src/admission/findings.js';

const root = new URL('./data/', import.meta.url).pathname;

interface IndexDoc {
  readonly kind: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly name: string;
  readonly istioReason?: string;
}
interface IndexEntry {
  readonly source: string;
  readonly docs: readonly IndexDoc[];
  readonly context?: readonly string[];
}
const index = (JSON.parse(readFileSync(`${root}index.json`, 'utf8')) as { files: Record<string, IndexEntry> })
  .files;

const parsed = new Map<string, JsonRecord[]>();
function objectsOf(file: string): JsonRecord[] {
  let out = parsed.get(file);
  if (out === undefined) {
    out = parseAllDocuments(readFileSync(`${root}${file}`, 'utf8'))
      .map((d) => d.toJS() as unknown)
      .filter((o): o is JsonRecord => o !== null && typeof o === 'object' && !Array.isArray(o));
    parsed.set(file, out);
  }
  return out;
}

interface Checked {
  readonly id: string;
  readonly findings: Findings;
}

/** Validates every handled document of a corpus file, each matched to its index entry. */
function check(file: string, entry: IndexEntry): Checked[] {
  const store = new ConfigStore();
  for (const c of entry.context ?? []) for (const o of objectsOf(c)) store.upsert(o, 'file');
  const own = objectsOf(file);
  for (const o of own) store.upsert(o, 'file');
  const unmatched = [...entry.docs];
  const out: Checked[] = [];
  for (const o of own) {
    const kind = handledKindOf(o);
    if (kind === undefined) continue;
    const name = (o.metadata as JsonRecord | undefined)?.name;
    const at = unmatched.findIndex((d) => d.kind === kind && d.name === name);
    if (at < 0) throw new Error(`${file}: ${kind} ${String(name)} is not in index.json`);
    const doc = unmatched.splice(at, 1)[0] as IndexDoc;
    const id = `${file}#${kind}/${doc.namespace}/${doc.name}`;
    out.push({ id, findings: VALIDATORS[kind](o, { view: store, namespace: doc.namespace }) });
  }
  if (unmatched.length > 0) throw new Error(`${file}: ${unmatched.length} indexed document(s) not found`);
  return out;
}

const render = (f: Findings): string[] => f.problems.map((p) => `${p.path}: ${p.message}`);

/** valid/ documents Breeze denies, and why that is right. */
const EXPECTED_DENIALS: Record<string, { path: string; message: RegExp; reason: string }> = {
  'valid/aeraki/test__testservice.yaml#ServiceEntry/default/test-dubbo-service': {
    path: 'spec.ports[0]',
    message: /port "tcp-dubbo" needs the annotation "interface"/,
    reason:
      "Aeraki's 2020 prototype, before the interface annotation (Aeraki #10): without it no Dubbo route " +
      'config can be generated, and Aeraki itself has required it since',
  },
};

t.test('every valid/ document is allowed, except the listed ones', async (t) => {
  let documents = 0;
  const denied = new Set<string>();
  for (const [file, entry] of Object.entries(index)) {
    if (!file.startsWith('valid/')) continue;
    for (const { id, findings } of check(file, entry)) {
      documents++;
      const expected = EXPECTED_DENIALS[id];
      if (expected === undefined) {
        if (findings.problems.length > 0) t.fail(`${id} denied: ${render(findings).join('; ')}`);
        continue;
      }
      denied.add(id);
      t.same(
        findings.problems.map((p) => p.path),
        [expected.path],
        `${id}: denied at ${expected.path} (${expected.reason})`,
      );
      t.match(findings.problems[0]?.message, expected.message);
    }
  }
  const listed = Object.values(index).filter((_, i) => Object.keys(index)[i]?.startsWith('valid/'));
  t.equal(
    documents,
    listed.reduce((n, e) => n + e.docs.length, 0),
    'every indexed document was checked',
  );
  t.equal(documents, 505, 'the whole corpus (505 documents)');
  t.same([...denied].sort(), Object.keys(EXPECTED_DENIALS).sort(), 'every expected denial happened');
});

/**
 * invalid-derived/: the denials Breeze's rules cover (field path, message fragment), and, as
 * `null` with the reason, the Istio rules Breeze does not repeat (Istio's CRD schema, CEL rules or
 * webhook refuse those before they reach any cache, and they do not break Breeze's output).
 */
type Derived = { path: string; message: RegExp } | { allowed: string };
const SE = 'invalid-derived/istio-invalid-serviceentries-as-dubbo.yaml#ServiceEntry';
const VS = 'invalid-derived/istio-invalid-virtualservices-as-dubbo.yaml#VirtualService';
const ENDPOINTS = { allowed: "endpoints are Istio's to check; Breeze does not read them" };
const INVALID_DERIVED: Record<string, Derived> = {
  [`${SE}/default/missing-host-dubbo`]: { path: 'spec.hosts', message: /must list at least one host/ },
  [`${SE}/default/bad-selector-value-dubbo`]: {
    path: 'spec.workloadSelector.labels[val]',
    message: /wildcard is not supported in a selector/,
  },
  [`${SE}/default/selector-and-endpoints-dubbo`]: {
    allowed: 'only one of workloadSelector or endpoints: a CEL rule of the CRD; Breeze uses the selector',
  },
  [`${SE}/default/bad-host-wildcard-dubbo`]: { path: 'spec.hosts[0]', message: /"\*" is not a DNS name/ },
  [`${SE}/default/bad-cidr-resolution-dubbo`]: { path: 'spec.addresses[0]', message: /is a CIDR range/ },
  [`${SE}/default/duplicate-ports-name-dubbo`]: {
    path: 'spec.ports[1].name',
    message: /"tcp-dubbo" is already used by spec\.ports\[0\]; port names must be unique/,
  },
  [`${SE}/default/duplicate-ports-number-dubbo`]: {
    path: 'spec.ports[1].number',
    message: /1 is already used by spec\.ports\[0\]; port numbers must be unique/,
  },
  [`${SE}/default/bad-port-dubbo`]: { path: 'spec.ports[0].number', message: /got 99999/ },
  [`${SE}/default/bad-port-target-dubbo`]: { path: 'spec.ports[0].targetPort', message: /got 99999/ },
  [`${SE}/default/none-with-endpoints-dubbo`]: ENDPOINTS,
  [`${SE}/default/dns-rr-with-multiple-endpoints-dubbo`]: ENDPOINTS,
  [`${SE}/bar/empty-hosts-dubbo`]: { path: 'spec.hosts', message: /must list at least one host/ },
  [`${SE}/bar/bad-hosts-dubbo`]: { path: 'spec.hosts[0]', message: /"-" is not a DNS name/ },
  [`${SE}/bar/full-wildcard-host-dubbo`]: { path: 'spec.hosts[1]', message: /"\*" is not a DNS name/ },
  [`${SE}/bar/undefined-endpoint-port-dubbo`]: {
    path: 'spec.ports[1].number',
    message: /80 is already used by spec\.ports\[0\]/,
  },
  [`${SE}/bar/discovery-type-dns-non-fqdn-endpoint-dubbo`]: {
    path: 'spec.hosts[0]',
    message: /"\*\.google\.com" is not a DNS name/,
  },
  [`${SE}/bar/discovery-type-dns-non-fqdn-host-dubbo`]: {
    path: 'spec.hosts[0]',
    message: /"\*\.google\.com" is not a DNS name/,
  },
  [`${SE}/bar/discovery-type-dns-unix-endpoint-dubbo`]: {
    path: 'spec.hosts[0]',
    message: /"\*\.google\.com" is not a DNS name/,
  },
  [`${SE}/bar/discovery-type-none-endpoints-provided-dubbo`]: ENDPOINTS,
  [`${SE}/bar/discovery-type-static-fqdn-in-endpoints-dubbo`]: ENDPOINTS,
  [`${SE}/bar/discovery-type-static-bad-endpoint-port-name-dubbo`]: ENDPOINTS,
  [`${SE}/bar/discovery-type-none-conflicting-port-names-dubbo`]: {
    path: 'spec.ports[1].name',
    message: /"tcp-dubbo" is already used by spec\.ports\[0\]/,
  },
  [`${SE}/bar/discovery-type-none-conflicting-port-numbers-dubbo`]: {
    path: 'spec.ports[1].number',
    message: /80 is already used by spec\.ports\[0\]/,
  },
  [`${SE}/bar/selector-and-endpoints-dubbo`]: {
    allowed: 'only one of workloadSelector or endpoints: a CEL rule of the CRD; Breeze uses the selector',
  },
  [`${SE}/bar/bad-selector-key-dubbo`]: {
    path: 'spec.workloadSelector.labels[]',
    message: /an empty label key is not supported/,
  },
  [`${SE}/bar/invalid-target-port-dubbo`]: { path: 'spec.ports[0].targetPort', message: /got 65536/ },
  [`${SE}/bar/invalid-endpoint-port-dubbo`]: ENDPOINTS,
  [`${SE}/bar/dns-round-robin-with-more-than-one-endpoint-dubbo`]: ENDPOINTS,
  [`${SE}/bar/nil-port-in-ports-array-dubbo`]: { path: 'spec.ports[0]', message: /got null/ },
  [`${SE}/bar/discovery-type-dns-with-addresses-nil-port-dubbo`]: {
    path: 'spec.ports[0]',
    message: /got null/,
  },
  [`${VS}/dubbo/delegate-with-no-destination-dubbo`]: {
    path: 'spec.http[0].route',
    message: /must list at least one destination: dubbo routes only forward/,
  },
  [`${VS}/dubbo/duplicate-hosts-dubbo`]: {
    allowed:
      'the same host twice: Istio refuses it; Breeze reads the host once and generates the same filter',
  },
  [`${VS}/dubbo/with-no-destination-dubbo`]: {
    path: 'spec.http[0].route[0].destination',
    message: /must be an object with a host/,
  },
  [`${VS}/dubbo/destination-with-out-hosts-dubbo`]: {
    path: 'spec.http[0].route[0].destination.host',
    message: /must name the service to route to/,
  },
  [`${VS}/dubbo/invalid-virtual-service-invalidvirtualservicev1beta1-dubbo`]: {
    path: 'spec.http',
    message: /must be a list of http routes, got null/,
  },
  [`${VS}/dubbo/invalid-virtual-service-invalidvirtualserviceyaml-dubbo`]: {
    path: 'spec.http[0].route[1].weight',
    message: /must be a non-negative integer .*got -15/,
  },
};

t.test('invalid-derived/: denied where Breeze rules cover them, as the table says', async (t) => {
  const seen = new Set<string>();
  for (const [file, entry] of Object.entries(index)) {
    if (!file.startsWith('invalid-derived/')) continue;
    for (const { id, findings } of check(file, entry)) {
      seen.add(id);
      const expected = INVALID_DERIVED[id];
      if (expected === undefined) {
        t.fail(`${id} is not in the table: ${render(findings).join('; ') || 'allowed'}`);
      } else if ('allowed' in expected) {
        t.same(render(findings), [], `${id}: allowed (${expected.allowed})`);
      } else {
        t.equal(findings.problems[0]?.path, expected.path, `${id}: denied at ${expected.path}`);
        t.match(findings.problems[0]?.message, expected.message, `${id}: the reason`);
      }
    }
  }
  t.same([...seen].sort(), Object.keys(INVALID_DERIVED).sort(), 'the table lists exactly the documents');
});
