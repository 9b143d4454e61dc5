import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { TLSSocket, type SecureContext } from 'node:tls';
import { AdmissionQueue } from './admission-queue.js';

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
  /** Connections waiting for a place, and the handshakes holding one (see AdmissionQueue). */
  private readonly waiting: AdmissionQueue;
  /** Every open connection, waiting, handshaking or handed over, so that closing ends them all. */
  private readonly open = new Set<Socket>();

  constructor(
    private readonly http: HttpServer,
    private readonly options: { secureContext: SecureContext; concurrency: number; placeMs: number; handshakeTimeoutMs: number },
  ) {
    this.waiting = new AdmissionQueue(options.concurrency);
    this.tcp = createNetServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
  }

  /** Takes a connection accepted on the TLS port; its handshake starts when there is room. */
  accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    // A handshake's job ends when it gives its place up, which lets the queue start the next.
    this.waiting.push(() => (socket.destroyed ? Promise.resolve() : new Promise<void>((givePlaceUp) => this.handshake(socket, givePlaceUp))));
  }

  /** Handshakes holding a place now. */
  get handshakesInProgress(): number {
    return this.waiting.running;
  }

  private handshake(socket: Socket, givePlaceUp: () => void): void {
    const tls = new TLSSocket(socket, { isServer: true, secureContext: this.options.secureContext, requestCert: false, rejectUnauthorized: false });
    const placeTimer = setTimeout(givePlaceUp, this.options.placeMs);
    const giveUpTimer = setTimeout(() => tls.destroy(), this.options.handshakeTimeoutMs);
    const end = () => {
      clearTimeout(placeTimer);
      clearTimeout(giveUpTimer);
      givePlaceUp();
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
