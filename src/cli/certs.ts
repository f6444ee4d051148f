import { parseArgs } from 'node:util';
import { BreezeError } from '../errors.js';
import { writeDevCertificates } from '../pki/certs.js';

export const CERTS_USAGE = `Usage: breeze certs --out-dir DIR --host NAME [--host NAME ...]

Writes a development CA (ca.crt, ca.key) and a serving pair (tls.crt, tls.key) signed by it.
Each --host becomes a subject alternative name: an IP SAN for addresses, a DNS SAN otherwise.
Example: breeze certs --out-dir certs --host breeze.istio-system.svc --host 127.0.0.1`;

export async function runCerts(argv: readonly string[], out: (line: string) => void): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { 'out-dir': { type: 'string' }, host: { type: 'string', multiple: true } },
    }));
  } catch (e) {
    throw new BreezeError('BAD_FLAG', `${(e as Error).message}\n\n${CERTS_USAGE}`);
  }
  const dir = values['out-dir'];
  const hosts = values.host ?? [];
  if (dir === undefined || dir === '')
    throw new BreezeError('BAD_FLAG', `--out-dir is required\n\n${CERTS_USAGE}`);
  if (hosts.length === 0)
    throw new BreezeError('BAD_FLAG', `at least one --host is required\n\n${CERTS_USAGE}`);
  const files = await writeDevCertificates(dir, hosts);
  out(`wrote ${files.caFile}, ${files.certFile} and ${files.keyFile} for ${hosts.join(', ')}`);
}
