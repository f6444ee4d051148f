// `breeze serve` on loopback, as the tests, the pipeline benchmark and the soak run
// start it: the flags for ephemeral ports and a serving pair, and the ports read from its banner.

export interface ServePorts {
  readonly webhook: number;
  readonly health: number;
}

/** `--mode` on 127.0.0.1 with ephemeral webhook and health ports, serving this pair. */
export function loopbackArgs(
  mode: 'local' | 'cluster',
  certs: { readonly certFile: string; readonly keyFile: string },
): string[] {
  return [
    '--mode',
    mode,
    '--listen',
    '127.0.0.1:0',
    '--health-listen',
    '127.0.0.1:0',
    '--tls-cert-file',
    certs.certFile,
    '--tls-key-file',
    certs.keyFile,
  ];
}

/** Cluster mode on 127.0.0.1 with ephemeral webhook and health ports, serving this pair. */
export function loopbackClusterArgs(certs: {
  readonly certFile: string;
  readonly keyFile: string;
}): string[] {
  return loopbackArgs('cluster', certs);
}

/**
 * Reads the banner `breeze serve` prints, line by line: the webhook line comes first, the health
 * line after it; returns both ports at the health line, undefined before.
 */
export function bannerReader(): (line: string) => ServePorts | undefined {
  let webhook = 0;
  return (line) => {
    const w = /POST https:\/\/127\.0\.0\.1:(\d+)\/validate/.exec(line);
    if (w) webhook = Number(w[1]);
    const h = /health\s+http:\/\/127\.0\.0\.1:(\d+)\/readyz/.exec(line);
    return h ? { webhook, health: Number(h[1]) } : undefined;
  };
}
