import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { AdmissionQueue } from './admission-queue.js';
import { listeningCopies } from './listening-copies.js';

/**
 * A TCP listener that accepts connections unread (paused) and lets at most `concurrency` of them
 * at a time through their first expensive step, then hands each to an HTTP server. What the step
 * is belongs to the subclass: the TLS handshake on the TLS port (tls-listener.ts), reading the
 * first request on the plain port (PacedPlainListener below).
 *
 * Why: when 10,000 stations come back at once the kernel has thousands of new connections ready
 * together, and libuv runs all of their read callbacks in one poll phase. On the plain port one
 * such phase parsed 6,541 upgrade requests in 182 ms while `/healthz` and every connected station
 * waited. Unread, a waiting connection costs nothing but its place in the queue.
 *
 * A connection keeps its place for at most `placeMs`: one that takes longer is waiting for a slow
 * client, not using the CPU, and must not keep the others out (nor can a few clients that never
 * say anything block the port).
 */
export abstract class PacedListener {
  private readonly tcp: NetServer;
  /** Connections waiting for a place, and those holding one (see AdmissionQueue). */
  private readonly waiting: AdmissionQueue;
  /** Every open connection, waiting, in its first step or handed over, so that closing ends them all. */
  private readonly open = new Set<Socket>();
  /** Handles on copies of the listening socket's descriptor, each accepting one connection per turn (listening-copies.ts). */
  private readonly copies: NetServer[] = [];
  private closed = false;
  /** The copies being made and listened on, during listen(). */
  private copying?: Promise<void>;

  constructor(
    protected readonly http: HttpServer,
    protected readonly options: {
      concurrency: number;
      placeMs: number;
      /** New connections accepted per turn of the event loop at most (1 without copies of the listening socket). */
      acceptsPerTurn?: number;
    },
  ) {
    this.waiting = new AdmissionQueue(options.concurrency);
    this.tcp = createNetServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
    // Node runs an HTTP server's headersTimeout and requestTimeout (against clients that send a
    // request slowly, or half of one) only once the server has emitted 'listening'. This one never
    // listens itself: it is given its connections. The check stops with the process (its timer is unref'd).
    if (!http.listening) http.emit('listening');
  }

  /** Takes a connection accepted unread; its first step starts when there is room. */
  accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    this.arrived(socket);
  }

  /** What becomes of a connection just accepted: here, it waits for its place. */
  protected arrived(socket: Socket): void {
    this.waitForPlace(socket);
  }

  /** Queues the connection; its first step starts when there is room. */
  protected waitForPlace(socket: Socket): void {
    // A connection's job ends when it gives its place up, which lets the queue start the next.
    this.waiting.push(() =>
      socket.destroyed
        ? Promise.resolve()
        : new Promise<void>((givePlaceUp) => {
            const placeTimer = setTimeout(givePlaceUp, this.options.placeMs);
            this.firstStep(socket, () => {
              clearTimeout(placeTimer);
              givePlaceUp();
            });
          }),
    );
  }

  /** Connections holding a place now. */
  get inFirstStep(): number {
    return this.waiting.running;
  }

  /** Runs the connection's first step; `done` may be called more than once. */
  protected abstract firstStep(socket: Socket, done: () => void): void;

  async listen(options: { port: number; host: string; backlog: number }): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen(options, () => {
        this.tcp.off('error', reject);
        resolve();
      });
    });
    const address = this.tcp.address() as AddressInfo;
    const wanted = (this.options.acceptsPerTurn ?? 1) - 1;
    if (wanted > 0) {
      this.copying = this.listenOnCopies(wanted, options.backlog, options.port);
      await this.copying;
    }
    return address;
  }

  /** Listens on `wanted` copies of the listening socket (listening-copies.ts); on failure, goes on with fewer. */
  private async listenOnCopies(wanted: number, backlog: number, port: number): Promise<void> {
    let copies: unknown[] = [];
    try {
      copies = await listeningCopies(this.tcp, wanted);
      while (copies.length > 0 && !this.closed) {
        const server = createNetServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
        // The same backlog: listen() on a copy sets it for the socket they share.
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(copies.shift(), backlog, () => {
            server.off('error', reject);
            resolve();
          });
        });
        this.copies.push(server);
      }
    } catch (err) {
      // One connection per turn still serves; only a storm's new connections wait longer.
      if (!this.closed) process.emitWarning(`accepting ${this.acceptsPerTurn} instead of ${wanted + 1} connections per turn on port ${port}: ${(err as Error).message}`);
    } finally {
      // Copies not listened on (an error, or close() during start) must not keep the port open.
      for (const copy of copies) (copy as { close?: () => void }).close?.();
    }
  }

  /** New connections accepted per turn of the event loop at most, as listening now. */
  get acceptsPerTurn(): number {
    return 1 + this.copies.length;
  }

  /** Stops accepting and closes every connection, waiting, in its first step or handed over. */
  async close(): Promise<void> {
    this.closed = true;
    // Closed during its start: no further copy is listened on, and the helper holding some is gone.
    await this.copying;
    const closed = [this.tcp, ...this.copies].map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())));
    for (const socket of this.open) socket.destroy();
    await Promise.all(closed);
  }
}

/**
 * The plain (ws://) port. A connection's first step is its first request: it is handed to the HTTP
 * server and read, and gives its place up once that request (an upgrade, or any other) has been
 * parsed. So a poll phase parses at most `concurrency` new connections' requests, however many
 * arrived; the upgrades then wait in the gateway's own admission queue. One that sends nothing
 * within `firstRequestTimeoutMs` is closed.
 *
 * With `pacedPath`, only the chargers' requests queue: a new connection's first bytes are read as
 * they come (a read and a look at the request line, not a parse), and a request for anything else,
 * such as `/healthz` or the API, goes to the HTTP server at once. In a reconnect storm the queue holds
 * thousands of upgrades; a load balancer's health check on a new connection waited behind them all
 * (3.2 s with 10,000 stations, where the target is 100 ms).
 */
export class PacedPlainListener extends PacedListener {
  /** Connections handed over whose first request has not been parsed yet. */
  private readonly awaitingRequest = new WeakMap<object, () => void>();

  constructor(
    http: HttpServer,
    private readonly plainOptions: {
      concurrency: number;
      placeMs: number;
      acceptsPerTurn?: number;
      firstRequestTimeoutMs: number;
      /** Requests whose target starts with this wait for a place; others are served at once. Without it, all wait. */
      pacedPath?: string;
    },
  ) {
    super(http, plainOptions);
    const parsed = (req: { socket: object }) => {
      const done = this.awaitingRequest.get(req.socket);
      if (done) {
        this.awaitingRequest.delete(req.socket);
        done();
      }
    };
    // Prepended so the place is free before the handlers run (they may end the socket).
    http.prependListener('request', parsed);
    http.prependListener('upgrade', parsed);
  }

  protected override arrived(socket: Socket): void {
    const { pacedPath, firstRequestTimeoutMs } = this.plainOptions;
    if (pacedPath === undefined) return this.waitForPlace(socket);
    // A client that connects and says nothing holds no place, and is closed like one that holds a place and says nothing.
    const giveUpTimer = setTimeout(() => socket.destroy(), firstRequestTimeoutMs);
    const stopWaiting = () => clearTimeout(giveUpTimer);
    socket.once('close', stopWaiting);
    socket.once('data', (chunk: Buffer) => {
      stopWaiting();
      socket.off('close', stopWaiting);
      socket.pause();
      // Put back for the HTTP server, which reads it first once it has the connection.
      socket.unshift(chunk);
      const target = requestTargetOf(chunk);
      if (target === undefined || target.startsWith(pacedPath)) this.waitForPlace(socket);
      else this.firstStep(socket, () => undefined);
    });
    socket.resume();
  }

  protected firstStep(socket: Socket, done: () => void): void {
    // Like the TLS handshake's time-out: a client that holds a connection open and never sends its
    // request is closed, whatever Node's own request timeouts make of a connection without a byte.
    const giveUpTimer = setTimeout(() => socket.destroy(), this.plainOptions.firstRequestTimeoutMs);
    const end = () => {
      clearTimeout(giveUpTimer);
      // Nothing of the first step stays attached to a connection that lives on (its timers and
      // closures were about 0.4 KB per connected station).
      socket.off('close', end);
      done();
    };
    this.awaitingRequest.set(socket, end);
    socket.once('close', end);
    // The documented way to give an HTTP server a connection it did not accept itself.
    this.http.emit('connection', socket);
    socket.resume();
  }
}

/**
 * The target of an HTTP request whose request line is complete in `chunk` ("GET /healthz HTTP/1.1"
 * gives "/healthz"); undefined when the line is not all there, or is not a request line.
 */
export function requestTargetOf(chunk: Buffer): string | undefined {
  const lineEnd = chunk.indexOf(10);
  if (lineEnd < 0 || lineEnd > 8192) return undefined;
  const [method, target, version] = chunk.toString('latin1', 0, lineEnd).trimEnd().split(' ');
  return method && target && version?.startsWith('HTTP/') ? target : undefined;
}
