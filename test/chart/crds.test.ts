import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { CHART, ROOT, type K8sObject } from './helm.js';

const CRD_DIR = join(CHART, 'crds');

function readYaml(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const crds = readdirSync(CRD_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => readYaml(join(CRD_DIR, f)));

/** Ajv (strict) that understands the Kubernetes OpenAPI extensions and formats. */
function kubeAjv(): Ajv {
  const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: true }); // Kubernetes' oneOf branches name properties declared one level up;
  for (const k of [
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
    'x-kubernetes-int-or-string',
    'x-kubernetes-embedded-resource',
    'x-kubernetes-validations',
  ]) {
    ajv.addKeyword(k);
  }
  ajv.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 31,
  });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('double', { type: 'number', validate: () => true });
  ajv.addFormat('date-time', { type: 'string', validate: (s: string) => !Number.isNaN(Date.parse(s)) });
  return ajv;
}

const ajv = kubeAjv();
const validators = new Map<string, ValidateFunction>();
for (const crd of crds) {
  const version = crd.spec.versions[0];
  validators.set(crd.spec.names.kind, ajv.compile(version.schema.openAPIV3Schema));
}
const validate = (obj: K8sObject): boolean => validators.get(obj.kind)!(obj);

/** Structural-schema rules the API server enforces (a subset): every node has a type. */
function structuralProblems(schema: K8sObject, path: string): string[] {
  const problems: string[] = [];
  if (schema.type === undefined && schema['x-kubernetes-int-or-string'] !== true) {
    problems.push(`${path}: no type`);
  }
  if (schema.type === 'object' && schema.additionalProperties === false) {
    problems.push(`${path}: additionalProperties false is not allowed`);
  }
  for (const [k, v] of Object.entries((schema.properties ?? {}) as Record<string, K8sObject>)) {
    problems.push(...structuralProblems(v, `${path}.${k}`));
  }
  if (schema.items !== undefined) problems.push(...structuralProblems(schema.items, `${path}[]`));
  for (const branch of [...(schema.oneOf ?? []), ...(schema.anyOf ?? [])] as K8sObject[]) {
    if ('type' in branch || 'properties' in branch) problems.push(`${path}: oneOf/anyOf branch sets a type`);
  }
  return problems;
}

/** The schema node a simple printer-column JSONPath (.a.b.c) leads to. */
function schemaAt(schema: K8sObject, jsonPath: string): K8sObject | undefined {
  let node: K8sObject | undefined = schema;
  // Filters and indexes ([?(@.type=="X")], [0]) select array items: step into `items`.
  for (const part of jsonPath
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/^\./, '')
    .split('.')) {
    node = node?.properties?.[part.replace('[]', '')];
    if (part.endsWith('[]')) node = node?.items;
  }
  return node;
}

t.test('CRDs: RedisService and RedisDestination, as Aeraki names them', async (t) => {
  t.same(crds.map((c) => c.spec.names.kind).sort(), ['RedisDestination', 'RedisService']);
  for (const crd of crds) {
    const kind = crd.spec.names.kind as string;
    t.equal(crd.apiVersion, 'apiextensions.k8s.io/v1', kind);
    t.equal(crd.spec.group, 'redis.aeraki.io', kind);
    t.equal(crd.spec.scope, 'Namespaced', kind);
    t.equal(crd.metadata.name, `${crd.spec.names.plural}.redis.aeraki.io`);
    t.same(crd.spec.names.shortNames, [kind === 'RedisService' ? 'rsvc' : 'rd']);
    t.equal(crd.spec.versions.length, 1);
    const v = crd.spec.versions[0];
    t.equal(v.name, 'v1alpha1');
    t.ok(v.served && v.storage);
    t.same(v.subresources, { status: {} });
    const schema = v.schema.openAPIV3Schema;
    t.same(structuralProblems(schema, kind), [], `${kind}: structural`);
    t.ok(
      schema.properties.status['x-kubernetes-preserve-unknown-fields'] || schema.properties.status.properties,
    );
    for (const col of v.additionalPrinterColumns as K8sObject[]) {
      if (col.jsonPath.startsWith('.metadata.')) continue;
      t.ok(schemaAt(schema, col.jsonPath), `${kind} column ${col.name}: ${col.jsonPath} is a real field`);
    }
  }
  const rsvc = crds.find((c) => c.spec.names.kind === 'RedisService')!;
  t.ok(
    (rsvc.spec.versions[0].additionalPrinterColumns as K8sObject[]).some((c) => c.jsonPath === '.spec.host'),
    'the Hosts column reads .spec.host (Aeraki used the non-existent .spec.hosts)',
  );
  t.notOk(
    schemaAt(rsvc.spec.versions[0].schema.openAPIV3Schema, '.spec.hosts'),
    "Aeraki's column would be caught",
  );
});

t.test('every RedisService/RedisDestination in examples/ validates', async (t) => {
  const files = readdirSync(join(ROOT, 'examples'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    /\.ya?ml$/.test(f),
  );
  let seen = 0;
  for (const f of files) {
    for (const obj of readYaml(join(ROOT, 'examples', f))) {
      if (obj.apiVersion !== 'redis.aeraki.io/v1alpha1') continue;
      seen++;
      const ok = validate(obj);
      t.ok(ok, `${f}: ${obj.kind} ${obj.metadata.name}: ${ajv.errorsText(validators.get(obj.kind)!.errors)}`);
    }
  }
  t.ok(seen >= 2, `found ${seen} Redis objects`);
});

t.test('malformed objects are rejected', async (t) => {
  const rsvc = (spec: K8sObject): K8sObject => ({
    apiVersion: 'redis.aeraki.io/v1alpha1',
    kind: 'RedisService',
    metadata: { name: 'r', namespace: 'ns' },
    spec,
  });
  const rd = (spec: K8sObject): K8sObject => ({ ...rsvc(spec), kind: 'RedisDestination' });
  const host = ['redis.ns.svc.cluster.local'];

  t.ok(validate(rsvc({ host })), 'minimal RedisService');
  t.ok(validate(rd({ host: host[0] })), 'minimal RedisDestination');
  t.ok(
    validate(
      rsvc({
        host,
        settings: { readPolicy: 'ANY', auth: { plain: { password: 'p' } }, maxBufferSizeBeforeFlush: 1024 },
        redis: [
          { match: { key: { prefix: 'a:', removePrefix: true } }, route: { host: host[0], port: 6379 } },
        ],
        faults: [{ type: 'ERROR', percentage: { value: 0.5 }, commands: ['SET'] }],
      }),
    ),
    'full RedisService',
  );
  t.ok(
    validate({
      ...rsvc({ host }),
      status: { conditions: [{ type: 'EnvoyFilterGenerated', status: 'True', reason: 'Generated' }] },
    }),
    'status conditions',
  );

  const bad: [string, K8sObject][] = [
    ['no spec', { ...rsvc({}), spec: undefined }],
    ['host missing', rsvc({ settings: {} })],
    ['host not a list', rsvc({ host: 'redis.ns.svc.cluster.local' })],
    ['host entry not a string', rsvc({ host: [1] })],
    ['unknown readPolicy', rsvc({ host, settings: { readPolicy: 'PRIMARY' } })],
    ['opTimeout a number', rsvc({ host, settings: { opTimeout: 5 } })],
    [
      'auth with both secret and plain',
      rsvc({ host, settings: { auth: { secret: { name: 's' }, plain: { password: 'p' } } } }),
    ],
    ['plain auth without password', rsvc({ host, settings: { auth: { plain: { username: 'u' } } } })],
    ['secret auth without name', rsvc({ host, settings: { auth: { secret: { passwordField: 'p' } } } })],
    ['route without host', rsvc({ host, redis: [{ route: { port: 6379 } }] })],
    ['route port out of range', rsvc({ host, redis: [{ route: { host: host[0], port: 70000 } }] })],
    [
      'prefix not a string',
      rsvc({ host, redis: [{ match: { key: { prefix: 1 } }, route: { host: host[0] } }] }),
    ],
    [
      'mirror percentage a string',
      rsvc({
        host,
        redis: [
          { route: { host: host[0] }, mirror: [{ route: { host: host[0] }, percentage: { value: '10' } }] },
        ],
      }),
    ],
    ['fault percentage a string', rsvc({ host, faults: [{ type: 'DELAY', percentage: '1' }] })],
    ['fault percentage over 100', rsvc({ host, faults: [{ type: 'DELAY', percentage: { value: 101 } }] })],
    ['unknown fault type', rsvc({ host, faults: [{ type: 'ABORT' }] })],
    ['RedisDestination host a list', rd({ host })],
    ['RedisDestination without host', rd({ trafficPolicy: {} })],
    [
      'unknown redis mode',
      rd({ host: host[0], trafficPolicy: { connectionPool: { redis: { mode: 'SENTINEL' } } } }),
    ],
    [
      'maxConnections a string',
      rd({ host: host[0], trafficPolicy: { connectionPool: { tcp: { maxConnections: '100' } } } }),
    ],
    [
      'discoveryEndpoints not a list',
      rd({ host: host[0], trafficPolicy: { connectionPool: { redis: { discoveryEndpoints: 'a:1' } } } }),
    ],
    [
      'status condition with a bad status',
      { ...rsvc({ host }), status: { conditions: [{ type: 'EnvoyFilterGenerated', status: 'yes' }] } },
    ],
  ];
  for (const [what, obj] of bad) t.notOk(validate(obj), what);
});
