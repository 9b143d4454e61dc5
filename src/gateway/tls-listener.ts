import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpsServer } from 'node:https';
import { AdmissionQueue } from './admission-queue.js';

/**
 * The TLS port: a plain TCP listener that hands its connections to the HTTPS server a few per turn
 * of the event loop.
 *
 * Why: a server-side TLS handshake is a millisecond of CPU (an ECDHE key and a signature), and it
 * runs in the socket's read callback. When 10,000 stations come back at once, the kernel has
 * thousands of ClientHellos ready, libuv runs all of them in one poll phase, and `/healthz` (or any
 * other station) waited 350 ms and more behind them. Connections wait here unread (the listener
 * pauses them on accept) and are started `perTurn` at a time; a slow client does not hold a place,
 * since a place is only the turn in which its handshake starts.
 */
export class PacedTlsListener {
  private readonly tcp: NetServer;
  private readonly waiting: AdmissionQueue;
  /**
   * Every open connection, waiting or handed over: the HTTPS server's closeAllConnections does not
   * reach connections it did not accept, so closing destroys them here.
   */
  private readonly open = new Set<Socket>();

  constructor(
    private readonly https: HttpsServer,
    perTurn: number,
  ) {
    this.waiting = new AdmissionQueue(perTurn);
    this.tcp = createNetServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
  }

  /** Queues a connection accepted on the TLS port; its handshake starts on a later turn. */
  accept(socket: Socket): void {
    // A connection the client dropped while it waited costs nothing more.
    socket.once('error', () => socket.destroy());
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    this.waiting.push(async () => {
      if (socket.destroyed) return;
      // The documented way to give a server a connection it did not accept itself.
      this.https.emit('connection', socket);
    });
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

  /** Stops accepting and closes every connection, waiting or handed over. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    for (const socket of this.open) socket.destroy();
    await closed;
  }
}
