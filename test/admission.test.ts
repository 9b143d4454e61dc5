import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startCsms, type TestCsms } from './helpers/csms.js';

/** Opens an OCPP WebSocket and reports how the upgrade ended: open, or the HTTP status and Retry-After. */
function tryConnect(url: string, id: string): Promise<{ open: true; ws: WebSocket } | { open: false; status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    // With a password: a new station's password is hashed (scrypt) while it is admitted, so admissions overlap.
    const authorization = `Basic ${Buffer.from(`${id}:admission-password-1`).toString('base64')}`;
    const ws = new WebSocket(`${url}/${id}`, 'ocpp1.6', { perMessageDeflate: false, headers: { authorization } });
    ws.once('open', () => resolve({ open: true, ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ open: false, status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined });
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

describe('admission control', () => {
  let server: TestCsms;
  afterEach(async () => {
    await server?.stop();
  });

  it.each([
    ['upgrades', { maxPendingUpgrades: 1 }],
    ['password checks', { maxPendingPasswordChecks: 1 }],
  ])('over capacity (one at a time: %s), an upgrade gets 503 with a Retry-After of a second or two, and the station gets in when it comes back', async (_what, limits) => {
    // One admission at a time: stations that arrive together are over capacity.
    server = await startCsms(limits);
    const ids = Array.from({ length: 30 }, (_, i) => `ADMIT-${i}`);
    const first = await Promise.all(ids.map((id) => tryConnect(server.ocppUrl, id)));
    const refused = first.flatMap((r, i) => (r.open ? [] : [{ id: ids[i]!, ...r }]));
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.status).toBe(503);
      expect(['1', '2']).toContain(r.retryAfter);
    }
    // Coming back one by one (as the Retry-After spreads them), every refused station gets in.
    for (const r of refused) {
      const again = await tryConnect(server.ocppUrl, r.id);
      expect(again.open).toBe(true);
      if (again.open) again.ws.close();
    }
    for (const r of first) if (r.open) r.ws.close();
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/status="503"\} [1-9]/);
  });

  // One admission, or one handshake, at a time, but room for all of them to wait.
  it.each([
    ['one admission at a time', { maxConcurrentAdmissions: 1 }],
    ['one handshake per turn', { maxHandshakesPerTurn: 1 }],
  ])('under the pending bound, stations that arrive together wait their turn (%s) instead of getting 503', async (_, bound) => {
    server = await startCsms(bound);
    const ids = Array.from({ length: 30 }, (_, i) => `QUEUED-${i}`);
    const results = await Promise.all(ids.map((id) => tryConnect(server.ocppUrl, id)));
    expect(results.filter((r) => !r.open)).toEqual([]);
    for (const r of results) if (r.open) r.ws.close();
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).not.toMatch(/status="503"\} [1-9]/);
  });

  it('stations whose password this process already checked reconnect together without counting against the password-check bound', async () => {
    // One admission at a time, so that the reconnects below wait behind a new station's scrypt.
    server = await startCsms({ maxPendingPasswordChecks: 1, maxConcurrentAdmissions: 1 });
    const ids = Array.from({ length: 20 }, (_, i) => `KNOWN-${i}`);
    // First registration one at a time: each stores its password (one scrypt each).
    for (const id of ids) {
      const first = await tryConnect(server.ocppUrl, id);
      expect(first.open).toBe(true);
      if (first.open) first.ws.terminate();
    }
    // A new station takes the one password check there is room for (it hashes its first password)…
    const newcomer = tryConnect(server.ocppUrl, 'KNOWN-NEW');
    await new Promise((r) => setTimeout(r, 5));
    // …while all the known ones come back at once, as after an outage: no 503, since none of them
    // will hash a password; they wait their turn behind it.
    const again = await Promise.all(ids.map((id) => tryConnect(server.ocppUrl, id)));
    expect(again.filter((r) => !r.open)).toEqual([]);
    for (const r of [...again, await newcomer]) if (r.open) r.ws.close();
  });

  it('on one port, /healthz and the API on a new connection are answered while chargers wait for a place', async () => {
    // One charger's upgrade read at a time, and each of these holds its place a second: it sends half a request.
    server = await startCsms({ maxConcurrentNewConnections: 1 });
    const { port } = new URL(server.httpUrl);
    const slow: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(`GET /ocpp/SLOW-${i} HTTP/1.1\r\nHost: x\r\n`);
      slow.push(socket);
    }
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    // Each on a connection of its own: the first request to this server, then one after the server closed it.
    const healthz = await fetch(`${server.httpUrl}/healthz`, { headers: { connection: 'close' } });
    expect(healthz.status).toBe(200);
    const stations = await fetch(`${server.httpUrl}/api/v1/stations`, { headers: { connection: 'close' } });
    expect(stations.status).toBe(200);
    // The three slow ones hold the only place for about 3 s between them.
    expect(Date.now() - started).toBeLessThan(1000);
    // A charger that comes after them waits its turn, and gets in.
    const charger = tryConnect(server.ocppUrl, 'AFTER-SLOW').then((r) => ({ r, ms: Date.now() - started }));
    const { r, ms } = await charger;
    expect(r.open).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(1500);
    if (r.open) r.ws.close();
    for (const socket of slow) socket.destroy();
  }, 15_000);
});
