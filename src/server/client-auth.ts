// Caller authentication on the webhook listener (--client-ca-file, --client-allowed-names).
//
// The chain check itself is OpenSSL's: the listener is created with requestCert and
// rejectUnauthorized against the CA bundle, so a client without a certificate, or with one that
// does not chain to the bundle, fails the TLS handshake and never reaches HTTP. This module adds
// what OpenSSL does not do: the Common Name allow-list, one rate-limited log line for rejected
// clients, and, when the CA bundle changes, dropping connections (and session tickets) whose
// certificate the new bundle no longer vouches for.
import { randomBytes, type X509Certificate } from 'node:crypto';
import type { PeerCertificate, Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from '../telemetry/logger.js';
import type { LoadedClientCa } from './tls.js';

export interface ClientAuthOptions {
  /**
   * Subject Common Names a client certificate must carry one of (like kube-apiserver's
   * --requestheader-allowed-names); empty: any certificate the CA bundle verifies.
   */
  readonly allowedNames: readonly string[];
  readonly logger: Logger;
  /** Least time between two "rejected client" lines (default 10 s); the rest are counted. */
  readonly logIntervalMs?: number;
}

/** Longest Common Name quoted in a log line (ub-common-name is 64; a forged one may be longer). */
const MAX_LOGGED_NAME = 128;

/** One line per interval at most; counts what it suppressed in between. No timer involved. */
class LogLimiter {
  private last = -Infinity;
  private suppressed = 0;
  constructor(private readonly intervalMs: number) {}

  /** Undefined when this event is suppressed, else the number suppressed since the last line. */
  take(): number | undefined {
    const now = Date.now();
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return undefined;
    }
    this.last = now;
    const n = this.suppressed;
    this.suppressed = 0;
    return n;
  }
}

/** The subject Common Names of a peer certificate (several when the subject repeats CN). */
export function commonNamesOf(socket: TLSSocket): string[] {
  // `{}` when the peer sent no certificate, whatever the type says.
  const peer: Partial<PeerCertificate> = socket.getPeerCertificate();
  const cn: unknown = peer.subject?.CN;
  if (typeof cn === 'string') return [cn];
  if (Array.isArray(cn)) return cn.filter((v): v is string => typeof v === 'string');
  return [];
}

/** True when `cert` is one of `cas` or is signed directly by one of them. */
function vouchedFor(cert: X509Certificate, cas: readonly X509Certificate[]): boolean {
  return cas.some((ca) => {
    try {
      return ca.fingerprint256 === cert.fingerprint256 || (cert.checkIssued(ca) && cert.verify(ca.publicKey));
    } catch {
      return false;
    }
  });
}

export class ClientAuthGuard {
  private readonly allowed: ReadonlySet<string>;
  private readonly logger: Logger;
  private readonly rejectedLog: LogLimiter;
  private readonly handshakeLog: LogLimiter;
  /** Open authenticated connections and the certificate each presented. */
  private readonly sockets = new Map<TLSSocket, X509Certificate>();

  constructor(
    private readonly server: TlsServer,
    opts: ClientAuthOptions,
  ) {
    this.allowed = new Set(opts.allowedNames);
    this.logger = opts.logger;
    this.rejectedLog = new LogLimiter(opts.logIntervalMs ?? 10_000);
    this.handshakeLog = new LogLimiter(opts.logIntervalMs ?? 10_000);
    // First in line: the HTTP server's own listener (added when the server was made) hands the
    // socket to its parser, which may read a request at once. A refused socket must never get there.
    server.prependListener('secureConnection', this.onSecureConnection);
    server.on('tlsClientError', this.onTlsClientError);
  }

  /** Open authenticated connections (for tests and debugging). */
  get connections(): number {
    return this.sockets.size;
  }

  detach(): void {
    this.server.off('secureConnection', this.onSecureConnection);
    this.server.off('tlsClientError', this.onTlsClientError);
    this.sockets.clear();
  }

  /**
   * After a CA bundle change: session tickets issued so far are invalidated (a resumed session
   * skips the certificate check), and open connections whose certificate the new bundle does not
   * vouch for are closed. Only direct issuance is checked here; a client whose chain has
   * intermediates is disconnected too, and reconnecting verifies it fully.
   */
  caChanged(ca: LoadedClientCa): void {
    try {
      this.server.setTicketKeys(randomBytes(48));
    } catch (err) {
      this.logger.error({ reason: messageOf(err) }, 'cannot rotate TLS session ticket keys');
    }
    let closed = 0;
    for (const [socket, cert] of this.sockets) {
      if (vouchedFor(cert, ca.certificates)) continue;
      this.sockets.delete(socket);
      socket.destroy();
      closed++;
    }
    if (closed > 0) {
      this.logger.warn(
        { closed },
        'closed webhook connections whose client certificate the new client CA bundle does not vouch for',
      );
    }
  }

  // Listeners run from the TLS server's events: they never throw (a throw there would crash).
  private readonly onSecureConnection = (socket: TLSSocket): void => {
    try {
      const cert = socket.getPeerX509Certificate();
      // rejectUnauthorized already refused these; this is the net under that.
      if (!socket.authorized || cert === undefined) {
        this.reject(socket, 'unauthorized', []);
        return;
      }
      if (this.allowed.size > 0) {
        const names = commonNamesOf(socket);
        if (!names.some((n) => this.allowed.has(n))) {
          this.reject(socket, 'common name not allowed', names);
          return;
        }
      }
      this.sockets.set(socket, cert);
      socket.once('close', () => this.sockets.delete(socket));
    } catch (err) {
      this.reject(socket, `cannot read the client certificate: ${messageOf(err)}`, []);
    }
  };

  private readonly onTlsClientError = (err: Error, socket: TLSSocket): void => {
    try {
      const suppressed = this.handshakeLog.take();
      if (suppressed === undefined) return;
      this.logger.warn(
        {
          remoteAddress: socket.remoteAddress,
          reason: (err as { code?: unknown }).code ?? messageOf(err).slice(0, 200),
          suppressed,
        },
        'webhook client failed the TLS handshake (no or untrusted client certificate?)',
      );
    } catch {
      // Logging must never take the listener down.
    }
  };

  private reject(socket: TLSSocket, reason: string, names: readonly string[]): void {
    const remoteAddress = socket.remoteAddress;
    socket.destroy();
    const suppressed = this.rejectedLog.take();
    if (suppressed === undefined) return;
    this.logger.warn(
      {
        remoteAddress,
        reason,
        commonNames: names.slice(0, 4).map((n) => n.slice(0, MAX_LOGGED_NAME)),
        suppressed,
      },
      'rejected a webhook client certificate',
    );
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
