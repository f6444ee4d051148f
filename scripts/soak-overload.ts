// Overload of the soak run: clients that hold connections without finishing a request
// (slowloris headers, half-sent bodies, TLS handshakes never begun) and oversized bodies (declared
// and chunked), while probes send valid reviews and measure their latency.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Paced, type Review, type WebhookClient } from './soak-load.js';
import { percentile, round } from './soak-stats.js';

/** How one kind of attacker fared. */
export interface AttackStats {
  opened: number;
  /** Connections the server closed (or answered and closed), with how long each lived. */
  closedByServer: number;
  lifetimesMs: number[];
  /** Connections still open, when the attack ended, for longer than the bound. */
  overdueAtEnd: number;
  /** Connect or TLS errors on our side (the server refusing counts here too). */
  errors: number;
  statuses: Record<string, number>;
}

const newStats = (): AttackStats => ({
  opened: 0,
  closedByServer: 0,
  lifetimesMs: [],
  overdueAtEnd: 0,
  errors: 0,
  statuses: {},
});

export function summarize(s: AttackStats, boundMs: number): Record<string, unknown> {
  return {
    opened: s.opened,
    closedByServer: s.closedByServer,
    lifetimeP50Ms: round(percentile(s.lifetimesMs, 50), 0),
    lifetimeP99Ms: round(percentile(s.lifetimesMs, 99), 0),
    lifetimeMaxMs: round(Math.max(0, ...s.lifetimesMs), 0),
    boundMs,
    overBound: s.lifetimesMs.filter((ms) => ms > boundMs).length + s.overdueAtEnd,
    errors: s.errors,
    statuses: s.statuses,
  };
}

interface Conn {
  readonly socket: Socket;
  readonly opened: number;
  done: boolean;
}

/**
 * Keeps `count` connections of one kind open while the attack runs: each is reopened when the
 * server closes it. `begin` sends what the kind sends after connecting; `trickle` runs every
 * `trickleMs` on each open connection.
 */
class Holders {
  readonly stats = newStats();
  private readonly conns = new Set<Conn>();
  private running = true;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: {
      port: number;
      ca: string;
      count: number;
      tls: boolean;
      begin: (s: Socket) => void;
      trickle?: (s: Socket) => void;
      trickleMs?: number;
    },
  ) {}

  start(): void {
    for (let i = 0; i < this.o.count; i++) this.open();
    const trickle = this.o.trickle;
    if (trickle !== undefined) {
      this.timer = setInterval(() => {
        for (const c of this.conns) if (!c.done && c.socket.writable) trickle(c.socket);
      }, this.o.trickleMs ?? 2000);
    }
  }

  private open(): void {
    if (!this.running) return;
    this.stats.opened++;
    const socket: Socket = this.o.tls
      ? tlsConnect({ host: '127.0.0.1', port: this.o.port, ca: this.o.ca, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: '127.0.0.1', port: this.o.port });
    const conn: Conn = { socket, opened: Date.now(), done: false };
    this.conns.add(conn);
    let connected = false;
    socket.once(this.o.tls ? 'secureConnect' : 'connect', () => {
      connected = true;
      this.o.begin(socket);
    });
    let head = '';
    socket.on('data', (d: Buffer) => {
      if (head === '') {
        head = d.subarray(0, 16).toString('latin1');
        const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 'other';
        this.stats.statuses[status] = (this.stats.statuses[status] ?? 0) + 1;
      }
    });
    socket.on('error', () => {
      if (!conn.done && !connected) this.stats.errors++;
    });
    socket.once('close', () => {
      if (conn.done) return;
      conn.done = true;
      this.conns.delete(conn);
      this.stats.closedByServer++;
      this.stats.lifetimesMs.push(Date.now() - conn.opened);
      setImmediate(() => this.open());
    });
  }

  /** Ends the attack: counts connections open past `boundMs`, then closes ours. */
  stop(boundMs: number): void {
    this.running = false;
    clearInterval(this.timer);
    const now = Date.now();
    for (const c of this.conns) {
      if (now - c.opened > boundMs) this.stats.overdueAtEnd++;
      c.done = true;
      c.socket.destroy();
    }
    this.conns.clear();
  }
}

export interface OversizeStats {
  attempts: number;
  /** Answered 413. */
  rejected: number;
  /**
   * Chunked only: the server closed the connection after the limit without a 413 reaching us (a
   * close with unread body bytes is a TCP reset, which can discard the answer in flight).
   */
  resetAfterLimit: number;
  otherAnswers: Record<string, number>;
  /** No answer: closed before the limit was sent, or nothing within 10 s. */
  unanswered: number;
  /** From the headers to the answer (or the reset). */
  timesMs: number[];
  /** Chunked only: body bytes written when the answer (or reset) came. */
  bytesAtAnswer: number[];
}

const BODY_LIMIT = 7 * 1024 * 1024;

/**
 * Workers sending bodies over the limit in a loop. Declared: `Content-Length: 8 MiB` and no body
 * (the server must answer from the header alone). Chunked: no length, 64 KiB chunks as fast as
 * the connection takes them, until the server answers.
 */
class Oversize {
  readonly stats: OversizeStats = {
    attempts: 0,
    rejected: 0,
    resetAfterLimit: 0,
    otherAnswers: {},
    unanswered: 0,
    timesMs: [],
    bytesAtAnswer: [],
  };
  private running = true;
  private readonly sockets = new Set<Socket>();
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly o: { port: number; ca: string; workers: number; chunked: boolean; bytes: number },
  ) {}

  start(): void {
    for (let i = 0; i < this.o.workers; i++) this.loops.push(this.loop());
  }

  private async loop(): Promise<void> {
    while (this.running) {
      await this.once();
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private once(): Promise<void> {
    this.stats.attempts++;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    return new Promise<void>((resolve) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: this.o.port,
        ca: this.o.ca,
        ALPNProtocols: ['http/1.1'],
      });
      this.sockets.add(socket);
      let start = 0;
      let sent = 0;
      let ended = false;
      const deadline = setTimeout(() => socket.destroy(), 10_000);
      const end = (outcome: string): void => {
        if (ended) return;
        ended = true;
        clearTimeout(deadline);
        this.sockets.delete(socket);
        socket.destroy();
        if (!this.running && outcome !== '413') {
          resolve();
          return;
        }
        this.stats.timesMs.push(performance.now() - start);
        if (this.o.chunked) this.stats.bytesAtAnswer.push(sent);
        if (outcome === '413') this.stats.rejected++;
        else if (outcome === 'closed' && this.o.chunked && sent > BODY_LIMIT) this.stats.resetAfterLimit++;
        else if (outcome === 'closed') this.stats.unanswered++;
        else this.stats.otherAnswers[outcome] = (this.stats.otherAnswers[outcome] ?? 0) + 1;
        resolve();
      };
      const pump = (): void => {
        while (!ended && sent < this.o.bytes) {
          const n = Math.min(chunk.length, this.o.bytes - sent);
          sent += n;
          const piece = Buffer.concat([
            Buffer.from(`${n.toString(16)}\r\n`),
            chunk.subarray(0, n),
            Buffer.from('\r\n'),
          ]);
          if (!socket.write(piece)) {
            socket.once('drain', pump);
            return;
          }
        }
        if (!ended && sent >= this.o.bytes) socket.write('0\r\n\r\n');
      };
      socket.once('secureConnect', () => {
        start = performance.now();
        const length = this.o.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${this.o.bytes}`;
        socket.write(
          `POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${length}\r\n\r\n`,
        );
        if (this.o.chunked) pump();
      });
      socket.once('data', (d: Buffer) => {
        end(/^HTTP\/1\.1 (\d{3})/.exec(d.subarray(0, 16).toString('latin1'))?.[1] ?? 'other');
      });
      socket.on('error', () => undefined);
      socket.once('close', () => end('closed'));
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.loops);
  }
}

export interface ProbeResult {
  readonly requests: number;
  readonly failures: number;
  readonly failureSamples: string[];
}

/**
 * Valid reviews at a steady `rate` per second: spread over `keepAlive` keep-alive connections,
 * plus one sender that opens a new connection (and TLS handshake) for each request at a tenth
 * of the rate, as the API server does now and then.
 */
export class Probe {
  private readonly senders: Paced[] = [];

  constructor(client: WebhookClient, reviews: readonly Review[], rate: number, keepAlive: number) {
    for (let i = 0; i < keepAlive; i++)
      this.senders.push(new Paced(client, reviews, rate / keepAlive, false, i));
    this.senders.push(new Paced(client, reviews, Math.max(1, rate / 10), true, keepAlive));
  }

  start(): void {
    for (const s of this.senders) s.start();
  }

  /** Latencies recorded between `from` and `to` (epoch ms). */
  between(from: number, to: number): number[] {
    return this.senders.flatMap((s) => s.latencies.filter((l) => l.t >= from && l.t < to).map((l) => l.ms));
  }

  async stop(): Promise<ProbeResult> {
    const results = await Promise.all(this.senders.map((s) => s.stop()));
    return {
      requests: results.reduce((n, r) => n + r.requests, 0),
      failures: results.reduce((n, r) => n + r.failures, 0),
      failureSamples: results.flatMap((r) => r.failureSamples).slice(0, 10),
    };
  }
}

export interface AttackOptions {
  readonly port: number;
  readonly ca: string;
  /** Slowloris: headers sent a line every 2 s, never finished. */
  readonly slowHeaders: number;
  /** TCP connections that never begin the TLS handshake. */
  readonly silentTcp: number;
  /** Complete headers, Content-Length 64 KiB, the body a byte every 2 s. */
  readonly halfBodies: number;
  /** Workers sending a declared 8 MiB body, and workers streaming a chunked one. */
  readonly oversizeDeclared: number;
  readonly oversizeChunked: number;
}

export const OVERSIZE_BYTES = 8 * 1024 * 1024;

/** Every attacker of the overload phase, started together. */
export class Attack {
  readonly slowHeaders: Holders;
  readonly silentTcp: Holders;
  readonly halfBodies: Holders;
  readonly declared: Oversize;
  readonly chunked: Oversize;

  constructor(o: AttackOptions) {
    const { port, ca } = o;
    let header = 0;
    this.slowHeaders = new Holders({
      port,
      ca,
      count: o.slowHeaders,
      tls: true,
      begin: (s) => s.write('POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\n'),
      trickle: (s) => s.write(`X-Slow-${header++ % 1000}: y\r\n`),
      trickleMs: 2000,
    });
    this.silentTcp = new Holders({ port, ca, count: o.silentTcp, tls: false, begin: () => undefined });
    this.halfBodies = new Holders({
      port,
      ca,
      count: o.halfBodies,
      tls: true,
      begin: (s) =>
        s.write(
          'POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"',
        ),
      trickle: (s) => s.write('a'),
      trickleMs: 2000,
    });
    this.declared = new Oversize({
      port,
      ca,
      workers: o.oversizeDeclared,
      chunked: false,
      bytes: OVERSIZE_BYTES,
    });
    this.chunked = new Oversize({
      port,
      ca,
      workers: o.oversizeChunked,
      chunked: true,
      bytes: OVERSIZE_BYTES,
    });
  }

  start(): void {
    this.slowHeaders.start();
    this.silentTcp.start();
    this.halfBodies.start();
    this.declared.start();
    this.chunked.start();
  }

  async stop(bounds: { headersMs: number; handshakeMs: number; bodyMs: number }): Promise<void> {
    this.slowHeaders.stop(bounds.headersMs);
    this.silentTcp.stop(bounds.handshakeMs);
    this.halfBodies.stop(bounds.bodyMs);
    await Promise.all([this.declared.stop(), this.chunked.stop()]);
  }
}
