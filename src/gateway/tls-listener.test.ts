import { readFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { createServer as createHttpsServer, get as httpsGet, Agent } from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { PacedTlsListener } from './tls-listener.js';

const fixtures = new URL('../../test/fixtures/tls/', import.meta.url);
const cert = readFileSync(new URL('server.crt', fixtures));
const key = readFileSync(new URL('server.key', fixtures));

/** GET / over a new connection, a kept-alive `agent`, or the TLS stream `createConnection` makes (no agent then). */
function get(port: number, agent: Agent | false = false, createConnection?: () => Duplex): Promise<string> {
  return new Promise((resolve, reject) => {
    const via = createConnection ? { createConnection } : { agent };
    const req = httpsGet({ host: '127.0.0.1', port, path: '/', ca: cert, servername: 'localhost', ...via }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
  });
}

describe('PacedTlsListener', () => {
  let listener: PacedTlsListener | undefined;
  afterEach(async () => {
    await listener?.close();
    listener = undefined;
  });

  it('hands connections to the HTTPS server at most `perTurn` per turn of the event loop, and every client gets its answer', async () => {
    const https = createHttpsServer({ cert, key }, (_req, res) => res.end('ok'));
    // A turn counter advanced by its own chain of immediates.
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn += 1;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const perTurnSeen = new Map<number, number>();
    https.on('connection', () => perTurnSeen.set(turn, (perTurnSeen.get(turn) ?? 0) + 1));
    listener = new PacedTlsListener(https, 2);
    // 20 stations whose TCP connections all arrive in one turn, as in a storm: accepted elsewhere
    // and given to the listener together.
    const accepted: Socket[] = [];
    const tcp = createNetServer({ pauseOnConnect: true }, (socket) => accepted.push(socket));
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const port = (tcp.address() as AddressInfo).port;
    const raw = await Promise.all(
      Array.from({ length: 20 }, () => new Promise<Socket>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket));
        socket.on('error', reject);
      })),
    );
    while (accepted.length < 20) await new Promise((r) => setImmediate(r));
    for (const socket of accepted) listener.accept(socket);
    const answers = await Promise.all(raw.map((socket) => get(port, false, () => tlsConnect({ socket, ca: cert, servername: 'localhost' }))));
    ticking = false;
    expect(answers).toEqual(Array(20).fill('ok'));
    expect([...perTurnSeen.values()].reduce((a, b) => a + b, 0)).toBe(20);
    expect(Math.max(...perTurnSeen.values())).toBeLessThanOrEqual(2);
    tcp.close();
  });

  it('close() ends kept-alive connections it handed over instead of waiting for them', async () => {
    const https = createHttpsServer({ cert, key }, (_req, res) => res.end('ok'));
    // Without close() ending it, the kept-alive connection would hold the listener for a minute.
    https.keepAliveTimeout = 60_000;
    listener = new PacedTlsListener(https, 4);
    const { port } = await listener.listen({ port: 0, host: '127.0.0.1', backlog: 511 });
    const agent = new Agent({ keepAlive: true });
    expect(await get(port, agent)).toBe('ok');
    await listener.close();
    listener = undefined;
    agent.destroy();
  }, 10_000);
});
