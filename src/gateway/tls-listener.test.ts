import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { get as httpsGet, Agent } from 'node:https';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { PacedTlsListener } from './tls-listener.js';
import { connectedTogether } from '../../test/helpers/sockets.js';

const fixtures = new URL('../../test/fixtures/tls/', import.meta.url);
const cert = readFileSync(new URL('server.crt', fixtures));
const secureContext = createSecureContext({ cert, key: readFileSync(new URL('server.key', fixtures)), minVersion: 'TLSv1.2' });

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

  it('runs at most `concurrency` handshakes at once when many connections arrive together, and every client gets its answer', async () => {
    const http = createHttpServer((_req, res) => res.end('ok'));
    listener = new PacedTlsListener(http, { secureContext, concurrency: 2, placeMs: 10_000, handshakeTimeoutMs: 10_000 });
    const raw = await connectedTogether(20);
    for (const socket of raw.accepted) listener.accept(socket);
    let most = 0;
    let watching = true;
    const watch = () => {
      most = Math.max(most, listener?.handshakesInProgress ?? 0);
      if (watching) setImmediate(watch);
    };
    watch();
    const answers = await Promise.all(raw.clients.map((socket) => get(raw.port, false, () => tlsConnect({ socket, ca: cert, servername: 'localhost' }))));
    watching = false;
    expect(answers).toEqual(Array(20).fill('ok'));
    expect(most).toBe(2);
    raw.close();
  });

  it('a client that never finishes its handshake gives its place up, and the next one gets in', async () => {
    const http = createHttpServer((_req, res) => res.end('ok'));
    // One place, held at most 100 ms.
    listener = new PacedTlsListener(http, { secureContext, concurrency: 1, placeMs: 100, handshakeTimeoutMs: 10_000 });
    const raw = await connectedTogether(2);
    // The first never says anything; the second is a real client.
    for (const socket of raw.accepted) listener.accept(socket);
    expect(await get(raw.port, false, () => tlsConnect({ socket: raw.clients[1]!, ca: cert, servername: 'localhost' }))).toBe('ok');
    raw.clients[0]!.destroy();
    raw.close();
  }, 5_000);

  it('close() ends the connections it handed over instead of waiting for them', async () => {
    const http = createHttpServer((_req, res) => res.end('ok'));
    // Without close() ending it, the kept-alive connection would hold the listener for a minute.
    http.keepAliveTimeout = 60_000;
    listener = new PacedTlsListener(http, { secureContext, concurrency: 4, placeMs: 1000, handshakeTimeoutMs: 10_000 });
    const { port } = await listener.listen({ port: 0, host: '127.0.0.1', backlog: 511 });
    const agent = new Agent({ keepAlive: true });
    expect(await get(port, agent)).toBe('ok');
    await listener.close();
    listener = undefined;
    agent.destroy();
  }, 10_000);
});
