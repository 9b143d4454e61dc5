import { createServer as createHttpServer, get as httpGet, type Server as HttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PacedPlainListener, requestTargetOf } from './paced-listener.js';
import { connectedTogether } from '../../test/helpers/sockets.js';

/** Sends a GET on a raw client socket and resolves with the whole response once the server closes it. */
function rawGet(socket: Socket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
  });
}

/** 'connected', or the error code of a connection attempt to `port` (ECONNREFUSED when nothing listens). */
const connectOutcome = (port: number) =>
  new Promise<string>((resolve) =>
    connect(port, '127.0.0.1')
      .once('connect', function (this: Socket) {
        this.destroy();
        resolve('connected');
      })
      .once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error')),
  );

const closedWithin = (socket: Socket, ms: number) =>
  new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.resume();
  });

describe('PacedPlainListener', () => {
  let listener: PacedPlainListener | undefined;
  afterEach(async () => {
    await listener?.close();
    listener = undefined;
  });

  it('reads at most `concurrency` new connections at once when many arrive together, and every client gets its answer', async () => {
    let handling = 0;
    const http = createHttpServer((req, res) => {
      handling += 1;
      res.end(`ok ${req.url}`);
    });
    listener = new PacedPlainListener(http, { concurrency: 3, placeMs: 10_000, firstRequestTimeoutMs: 10_000 });
    const raw = await connectedTogether(30);
    // Every client has its request on the wire before the listener reads any of them.
    const answers = raw.clients.map((socket, i) => rawGet(socket, `/${i}`));
    await new Promise((r) => setTimeout(r, 50));
    for (const socket of raw.accepted) listener.accept(socket);
    let most = 0;
    let watching = true;
    const watch = () => {
      most = Math.max(most, listener?.inFirstStep ?? 0);
      if (watching) setImmediate(watch);
    };
    watch();
    const texts = await Promise.all(answers);
    watching = false;
    expect(texts.map((t) => t.split('\r\n\r\n')[1])).toEqual(raw.clients.map((_c, i) => `ok /${i}`));
    expect(handling).toBe(30);
    expect(most).toBe(3);
    raw.close();
  });

  it('a client that sends nothing gives its place up after placeMs, and is closed after firstRequestTimeoutMs', async () => {
    const http = createHttpServer((_req, res) => res.end('ok'));
    listener = new PacedPlainListener(http, { concurrency: 1, placeMs: 100, firstRequestTimeoutMs: 600 });
    const raw = await connectedTogether(2);
    for (const socket of raw.accepted) listener.accept(socket);
    const started = Date.now();
    // The second gets in once the first, silent, gives its place up.
    expect((await rawGet(raw.clients[1]!, '/')).endsWith('ok')).toBe(true);
    expect(Date.now() - started).toBeLessThan(500);
    expect(await closedWithin(raw.clients[0]!, 3000)).toBe(true);
    raw.close();
  }, 5_000);

  it("keeps Node's header timeout: a client that sends half a request is closed", async () => {
    // Checked every 100 ms; headers must be complete within 300 ms.
    const http: HttpServer = createHttpServer({ connectionsCheckingInterval: 100, headersTimeout: 300, requestTimeout: 500 }, (_req, res) => res.end('ok'));
    listener = new PacedPlainListener(http, { concurrency: 4, placeMs: 1000, firstRequestTimeoutMs: 60_000 });
    const { port } = await listener.listen({ port: 0, host: '127.0.0.1', backlog: 511 });
    const client = connect(port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    client.write('GET / HTTP/1.1\r\nHost: local');
    expect(await closedWithin(client, 3000)).toBe(true);
  }, 5_000);

  it('serves requests on a port of its own, and close() ends kept-alive connections', async () => {
    const http = createHttpServer((_req, res) => res.end('ok'));
    http.keepAliveTimeout = 60_000;
    listener = new PacedPlainListener(http, { concurrency: 4, placeMs: 1000, firstRequestTimeoutMs: 10_000 });
    const { port } = await listener.listen({ port: 0, host: '127.0.0.1', backlog: 511 });
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true });
    const body = await new Promise<string>((resolve, reject) =>
      httpGet({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(text));
      }).on('error', reject),
    );
    expect(body).toBe('ok');
    await listener.close();
    listener = undefined;
    agent.destroy();
  }, 10_000);

  it('with pacedPath, serves other requests on new connections at once while the paced ones wait their turn', async () => {
    const http = createHttpServer((req, res) => res.end(`ok ${req.url}`));
    // One place, held up to 300 ms by each client that has sent only part of its request.
    listener = new PacedPlainListener(http, { concurrency: 1, placeMs: 300, firstRequestTimeoutMs: 10_000, pacedPath: '/ocpp/' });
    const raw = await connectedTogether(6);
    // Accepted in this order: the slow ones first, as the thousands already queued in a storm.
    const [slow0, slow1, slow2, slow3, healthz, lateCharger] = raw.clients;
    const slow = [slow0!, slow1!, slow2!, slow3!];
    for (const [i, socket] of slow.entries()) socket.write(`GET /ocpp/CP${i} HTTP/1.1\r\nHost: x\r\n`);
    const started = Date.now();
    for (const socket of raw.accepted) listener.accept(socket);
    await new Promise((r) => setTimeout(r, 50));
    // The four slow ones hold the place for about 1.2 s between them.
    const chargerAnswer = rawGet(lateCharger!, '/ocpp/CP-late').then((text) => ({ text, ms: Date.now() - started }));
    const healthzText = await rawGet(healthz!, '/healthz');
    const healthzMs = Date.now() - started;
    expect(healthzText.endsWith('ok /healthz')).toBe(true);
    expect(healthzMs).toBeLessThan(600);
    const charger = await chargerAnswer;
    expect(charger.text.endsWith('ok /ocpp/CP-late')).toBe(true);
    expect(charger.ms).toBeGreaterThanOrEqual(900);
    raw.close();
  }, 10_000);

  it('with pacedPath, a client that connects and sends nothing is closed after firstRequestTimeoutMs', async () => {
    const http = createHttpServer((_req, res) => res.end('ok'));
    listener = new PacedPlainListener(http, { concurrency: 1, placeMs: 100, firstRequestTimeoutMs: 400, pacedPath: '/ocpp/' });
    const raw = await connectedTogether(2);
    for (const socket of raw.accepted) listener.accept(socket);
    // Silent, it holds no place: the other is served at once.
    expect((await rawGet(raw.clients[1]!, '/ocpp/CP1')).endsWith('ok')).toBe(true);
    expect(await closedWithin(raw.clients[0]!, 3000)).toBe(true);
    raw.close();
  }, 5_000);

  it.each([1, 4])('with acceptsPerTurn %i, accepts that many queued connections per turn of the event loop, and serves them all', async (acceptsPerTurn) => {
    const http = createHttpServer((req, res) => res.end(`ok ${req.url}`));
    const paced = new PacedPlainListener(http, { concurrency: 64, placeMs: 1000, firstRequestTimeoutMs: 10_000, acceptsPerTurn });
    listener = paced;
    const { port } = await paced.listen({ port: 0, host: '127.0.0.1', backlog: 511 });
    expect(paced.acceptsPerTurn).toBe(acceptsPerTurn);
    let acceptedThisTurn = 0;
    let mostInOneTurn = 0;
    const accept = paced.accept.bind(paced);
    paced.accept = (socket) => {
      acceptedThisTurn += 1;
      accept(socket);
    };
    const clients = Array.from({ length: 12 }, () => connect(port, '127.0.0.1'));
    // The connects go out on the next tick; then the event loop is held while the kernel queues all 12.
    await new Promise((r) => process.nextTick(r));
    const until = Date.now() + 300;
    while (Date.now() < until);
    let watching = true;
    const watch = () => {
      mostInOneTurn = Math.max(mostInOneTurn, acceptedThisTurn);
      acceptedThisTurn = 0;
      if (watching) setImmediate(watch);
    };
    setImmediate(watch);
    const texts = await Promise.all(clients.map((socket, i) => rawGet(socket, `/${i}`)));
    watching = false;
    expect(texts.map((t) => t.split('\r\n\r\n')[1])).toEqual(clients.map((_c, i) => `ok /${i}`));
    expect(mostInOneTurn).toBe(acceptsPerTurn);
    // Closed, no copy of the listening socket is left accepting.
    await paced.close();
    listener = undefined;
    expect(await connectOutcome(port)).toBe('ECONNREFUSED');
  }, 10_000);

  it('closed while it makes copies of the listening socket, leaves nothing accepting', async () => {
    const http = createHttpServer((_req, res) => res.end('ok'));
    const paced = new PacedPlainListener(http, { concurrency: 4, placeMs: 1000, firstRequestTimeoutMs: 10_000, acceptsPerTurn: 4 });
    const listening = paced.listen({ port: 0, host: '127.0.0.1', backlog: 511 });
    // The main socket listens at once; the copies take a helper process's round trip.
    await new Promise((r) => setTimeout(r, 5));
    await paced.close();
    const { port } = await listening;
    expect(await connectOutcome(port)).toBe('ECONNREFUSED');
  }, 10_000);

  it('reads the target of a request line only when the line is whole', () => {
    expect(requestTargetOf(Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe('/healthz');
    expect(requestTargetOf(Buffer.from('GET /ocpp/CP%201 HTTP/1.1\r\n'))).toBe('/ocpp/CP%201');
    expect(requestTargetOf(Buffer.from('GET /healthz HTTP/1.1'))).toBeUndefined();
    expect(requestTargetOf(Buffer.from('\u0016\u0003\u0001 TLS hello\n'))).toBeUndefined();
    expect(requestTargetOf(Buffer.from('GET /x\r\n'))).toBeUndefined();
  });
});
