import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { TLSSocket, type SecureContext } from 'node:tls';

/**
 * The TLS port: a plain TCP listener that does the TLS handshakes itself, a bounded number at a
 * time, and hands each connection to the HTTP server once it is secure.
 *
 * Why: a server-side handshake is about a millisecond of CPU in two steps (the ClientHello: a key
 * and a signature; the client's key exchange: the shared secret), both run natively in the socket's
 * read callback. When 10,000 stations come back at once the kernel has thousands of them ready,
 * libuv runs them all in one poll phase, and `/healthz` waited 300 ms and more behind them. With
 * at most `concurrency` handshakes between their first byte and their end, a poll phase holds at
 * most that many steps; the other connections wait unread (the listener pauses them on accept).
 *
 * A handshake keeps its place for at most `placeMs`: one that takes longer is waiting for a slow
 * client, not using the CPU, and must not keep others out (nor can a few clients that never finish
 * block the port). It goes on without a place until `handshakeTimeoutMs`, then is closed.
 */
export class PacedTlsListener {
  private readonly tcp: NetServer;
  private readonly waiting: Socket[] = [];
  private handshaking = 0;
  /** Every open connection, waiting, handshaking or handed over, so that closing ends them all. */
  private readonly open = new Set<Socket>();

  constructor(
    private readonly http: HttpServer,
    private readonly options: { secureContext: SecureContext; concurrency: number; placeMs: number; handshakeTimeoutMs: number },
  ) {
    if (!(options.concurrency >= 1)) throw new Error(`handshake concurrency must be at least 1, got ${options.concurrency}`);
    this.tcp = createNetServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
  }

  /** Takes a connection accepted on the TLS port; its handshake starts when there is room. */
  accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    this.waiting.push(socket);
    this.startHandshakes();
  }

  /** Handshakes holding a place now. */
  get handshakesInProgress(): number {
    return this.handshaking;
  }

  private startHandshakes(): void {
    while (this.handshaking < this.options.concurrency && this.waiting.length > 0) {
      const socket = this.waiting.shift()!;
      // A client that gave up while it waited costs nothing more.
      if (socket.destroyed) continue;
      this.handshake(socket);
    }
  }

  private handshake(socket: Socket): void {
    this.handshaking += 1;
    let placeHeld = true;
    const givePlaceUp = () => {
      if (!placeHeld) return;
      placeHeld = false;
      clearTimeout(placeTimer);
      this.handshaking -= 1;
      // The next handshakes start on a later turn, so that one turn never runs a chain of them.
      setImmediate(() => this.startHandshakes());
    };
    const tls = new TLSSocket(socket, { isServer: true, secureContext: this.options.secureContext, requestCert: false, rejectUnauthorized: false });
    const placeTimer = setTimeout(givePlaceUp, this.options.placeMs);
    const giveUpTimer = setTimeout(() => tls.destroy(), this.options.handshakeTimeoutMs);
    const end = () => {
      givePlaceUp();
      clearTimeout(giveUpTimer);
    };
    tls.once('secure', () => {
      end();
      // The documented way to give an HTTP server a connection it did not accept itself.
      this.http.emit('connection', tls);
    });
    tls.once('error', () => {
      end();
      tls.destroy();
    });
    tls.once('close', end);
  }

  listen(options: { port: number; host: string; backlog: number }): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen(options, () => {
        this.tcp.off('error', reject);
        resolve(this.tcp.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting and closes every connection, waiting, handshaking or handed over. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    for (const socket of this.open) socket.destroy();
    await closed;
  }
}
