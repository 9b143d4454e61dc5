import { get as httpsGet } from 'node:https';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { RPCClient } from 'ocpp-rpc';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/config.js';
import { connectStation, eventually, startCsms, testDatabases, type OcppTestClient, type TestCsms } from './helpers/csms.js';

/**
 * Who may connect: registration policies, subprotocol negotiation, one connection per station,
 * Basic auth (security profile 1) and TLS (security profile 2).
 */

const certFile = fileURLToPath(new URL('./fixtures/tls/server.crt', import.meta.url));
const keyFile = fileURLToPath(new URL('./fixtures/tls/server.key', import.meta.url));
const ca = readFileSync(certFile);

/** A CALL from the ocpp-rpc test station; its typings give `unknown`, the tests read the answer's fields. */
const ocppCall = (client: OcppTestClient, action: string, payload: unknown): Promise<any> => client.call(action, payload);

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Tries a WebSocket upgrade: 101 with the open socket, or the HTTP status of the refusal. */
function upgrade(
  url: string,
  opts: { protocols?: string[]; auth?: [string, string]; ca?: Buffer } = {},
): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? ['ocpp1.6'], {
      headers: opts.auth ? { authorization: basic(...opts.auth) } : {},
      ...(opts.ca ? { ca: opts.ca } : {}),
    });
    ws.on('error', (err) => reject(err));
    ws.once('open', () => {
      sockets.push(ws);
      resolve({ status: 101, ws });
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.on('error', () => {});
      ws.terminate();
      resolve({ status: res.statusCode ?? 0 });
    });
  });
}

/** Sends one CALL over a raw socket and resolves with the answer frame. */
function rawCall(ws: WebSocket, action: string, payload: unknown): Promise<any[]> {
  const id = `m-${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const frame = JSON.parse(data.toString());
      if (frame[1] !== id) return;
      ws.off('message', onMessage);
      resolve(frame);
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify([2, id, action, payload]));
  });
}

const bootPayload = { chargePointVendor: 'Ampyard', chargePointModel: 'TestBox' };
const password1 = 'first-password-0123';
const password2 = '0123456789abcdef0123456789abcdef01234567';

let sockets: WebSocket[] = [];
let clients: OcppTestClient[] = [];

/** connectStation, remembered for clean-up. */
async function station(url: string, id: string, opts: Parameters<typeof connectStation>[2] = {}): Promise<OcppTestClient> {
  const client = await connectStation(url, id, opts);
  clients.push(client);
  return client;
}

describe.each(testDatabases)('station admission and security (%s)', (database) => {
  let server: TestCsms | undefined;

  async function setup(overrides: Partial<Config> = {}): Promise<TestCsms> {
    server = await startCsms({ database, ...overrides });
    return server;
  }

  afterEach(async () => {
    for (const c of clients) await c.close({ force: true }).catch(() => {});
    for (const ws of sockets) ws.terminate();
    clients = [];
    sockets = [];
    await server?.stop();
    server = undefined;
  });

  describe('registration policies', () => {
    it('open: an unknown station is accepted at once', async () => {
      const s = await setup({ registration: 'open' });
      const cp = await station(s.ocppUrl, 'CP-OPEN');
      const boot = await ocppCall(cp, 'BootNotification', bootPayload);
      expect(boot.status).toBe('Accepted');
      await ocppCall(cp, 'Heartbeat', {});
      const view = await s.api('GET', '/api/v1/stations/CP-OPEN');
      expect(view.body).toMatchObject({ registration: 'accepted', connected: true, securityProfile: 0, hasPassword: false });
    });

    it('pending: Pending with an interval, other messages get SecurityError; accept triggers a BootNotification that is Accepted', async () => {
      const s = await setup({ registration: 'pending', retryIntervalS: 30 });
      const triggered: any[] = [];
      const cp = await station(s.ocppUrl, 'CP-PENDING', {
        handlers: {
          TriggerMessage: (p) => {
            triggered.push(p);
            return { status: 'Accepted' };
          },
        },
      });
      const boot = await ocppCall(cp, 'BootNotification', bootPayload);
      expect(boot.status).toBe('Pending');
      expect(boot.interval).toBe(30);

      for (const [action, payload] of [
        ['Heartbeat', {}],
        ['StatusNotification', { connectorId: 1, status: 'Available', errorCode: 'NoError' }],
        ['StartTransaction', { connectorId: 1, idTag: 'TAG-1', meterStart: 0, timestamp: new Date().toISOString() }],
      ] as const) {
        await expect(ocppCall(cp, action, payload), action).rejects.toMatchObject({ rpcErrorCode: 'SecurityError' });
      }
      expect((await s.api('GET', '/api/v1/transactions')).body.items).toEqual([]);
      expect((await s.api('GET', '/api/v1/stations/CP-PENDING')).body.registration).toBe('pending');

      const accepted = await s.api('POST', '/api/v1/stations/CP-PENDING/accept');
      expect(accepted.status).toBe(200);
      expect(accepted.body.registration).toBe('accepted');
      await eventually(() => triggered.length === 1);
      expect(triggered[0]).toEqual({ requestedMessage: 'BootNotification' });

      const again = await ocppCall(cp, 'BootNotification', bootPayload);
      expect(again.status).toBe('Accepted');
      await ocppCall(cp, 'Heartbeat', {});
    });

    it('closed: an unknown id is refused with 404; a station registered through the API connects', async () => {
      const s = await setup({ registration: 'closed' });
      expect((await upgrade(`${s.ocppUrl}/CP-STRANGER`)).status).toBe(404);
      expect((await s.api('GET', '/api/v1/stations/CP-STRANGER')).status).toBe(404);

      const created = await s.api('POST', '/api/v1/stations', { id: 'CP-KNOWN' });
      expect(created.status).toBe(201);
      const cp = await station(s.ocppUrl, 'CP-KNOWN');
      expect((await ocppCall(cp, 'BootNotification', bootPayload)).status).toBe('Accepted');
      expect((await s.api('GET', '/api/v1/stations/CP-KNOWN')).body.connected).toBe(true);
    });
  });

  describe('TC_088_CSMS WebSocket subprotocol negotiation', () => {
    it('a client offering only ocpp2.0.1, or no subprotocol, is refused with 400', async () => {
      const s = await setup();
      expect((await upgrade(`${s.ocppUrl}/CP-V201`, { protocols: ['ocpp2.0.1'] })).status).toBe(400);
      expect((await upgrade(`${s.ocppUrl}/CP-NONE`, { protocols: [] })).status).toBe(400);
      expect((await s.api('GET', '/api/v1/stations')).body.items).toEqual([]);
    });

    it('a client offering "ocpp2.0.1, ocpp1.6" gets ocpp1.6', async () => {
      const s = await setup();
      const { status, ws } = await upgrade(`${s.ocppUrl}/CP-BOTH`, { protocols: ['ocpp2.0.1', 'ocpp1.6'] });
      expect(status).toBe(101);
      expect(ws!.protocol).toBe('ocpp1.6');
      const answer = await rawCall(ws!, 'BootNotification', bootPayload);
      expect(answer[0]).toBe(3);
      expect(answer[2].status).toBe('Accepted');
    });
  });

  it('a second connection with the same id replaces the first: the first is closed, commands go to the second', async () => {
    const s = await setup();
    const resets: string[] = [];
    const first = await station(s.ocppUrl, 'CP-TWICE', { handlers: { Reset: () => (resets.push('first'), { status: 'Accepted' }) } });
    await ocppCall(first, 'BootNotification', bootPayload);
    const firstClosed = new Promise<{ code: number }>((resolve) => first.once('close', resolve));

    const second = await station(s.ocppUrl, 'CP-TWICE', { handlers: { Reset: () => (resets.push('second'), { status: 'Accepted' }) } });
    const closed = await firstClosed;
    expect(closed.code).toBe(1000);
    await ocppCall(second, 'BootNotification', bootPayload);

    const reset = await s.api('POST', '/api/v1/stations/CP-TWICE/commands/Reset', { type: 'Soft' });
    expect(reset.status).toBe(200);
    expect(resets).toEqual(['second']);
    // The first socket's late close must not evict its successor.
    await new Promise((r) => setTimeout(r, 100));
    expect((await s.api('GET', '/api/v1/stations/CP-TWICE')).body.connected).toBe(true);
    expect((await s.api('GET', '/healthz')).body.connectedStations).toBe(1);
    await ocppCall(second, 'Heartbeat', {});
  });

  describe('security profile 1: Basic auth', () => {
    it('TC_085_CSMS Basic auth, valid: without or with wrong credentials 401, the right password connects; the password is stored hashed', async () => {
      const s = await setup();
      expect((await s.api('POST', '/api/v1/stations', { id: 'CP-P1' })).status).toBe(201);
      const set = await s.api('PUT', '/api/v1/stations/CP-P1/password', { password: password1 });
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({ hasPassword: true, securityProfile: 1 });
      expect(JSON.stringify(set.body)).not.toContain(password1);

      const url = `${s.ocppUrl}/CP-P1`;
      expect((await upgrade(url)).status).toBe(401);
      expect((await upgrade(url, { auth: ['CP-P1', 'wrong-password-0000'] })).status).toBe(401);
      expect((await upgrade(url, { auth: ['CP-OTHER', password1] })).status).toBe(401);
      const ok = await upgrade(url, { auth: ['CP-P1', password1] });
      expect(ok.status).toBe(101);
      expect((await rawCall(ok.ws!, 'BootNotification', bootPayload))[2].status).toBe('Accepted');

      const hash = await s.csms.store.getStationPasswordHash('CP-P1');
      expect(hash).not.toBe(password1);
      expect(hash).not.toContain(password1);
      expect(hash).toMatch(/^scrypt\$/);
    });

    it('a password that is too short is refused by the API and changes nothing', async () => {
      const s = await setup();
      await s.api('POST', '/api/v1/stations', { id: 'CP-SHORT' });
      const r = await s.api('PUT', '/api/v1/stations/CP-SHORT/password', { password: 'short' });
      expect(r.status).toBe(400);
      expect((await s.api('GET', '/api/v1/stations/CP-SHORT')).body).toMatchObject({ hasPassword: false, securityProfile: 0 });
      expect((await s.api('PUT', '/api/v1/stations/CP-NOBODY/password', { password: password1 })).status).toBe(404);
    });

    it('TC_073_CSMS update Basic-auth password: once the charger accepts the new AuthorizationKey, only the new password connects', async () => {
      const s = await setup();
      await s.api('POST', '/api/v1/stations', { id: 'CP-073', password: password1 });
      const changes: any[] = [];
      const cp = await station(s.ocppUrl, 'CP-073', {
        password: password1,
        handlers: {
          ChangeConfiguration: (p) => {
            changes.push(p);
            return { status: 'Accepted' };
          },
        },
      });
      await ocppCall(cp, 'BootNotification', bootPayload);
      const r = await s.api('POST', '/api/v1/stations/CP-073/commands/ChangeConfiguration', { key: 'AuthorizationKey', value: password2 });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ status: 'Accepted' });
      expect(changes).toEqual([{ key: 'AuthorizationKey', value: password2 }]);
      await cp.close();

      const url = `${s.ocppUrl}/CP-073`;
      expect((await upgrade(url, { auth: ['CP-073', password1] })).status).toBe(401);
      const again = await station(s.ocppUrl, 'CP-073', { password: password2 });
      expect((await ocppCall(again, 'BootNotification', bootPayload)).status).toBe('Accepted');
      const hash = await s.csms.store.getStationPasswordHash('CP-073');
      expect(hash).toMatch(/^scrypt\$/);
      expect(hash).not.toContain(password2);
    });

    it('TC_073_CSMS when the charger answers RebootRequired, it uses the new AuthorizationKey after its reboot and must get in', async () => {
      const s = await setup();
      await s.api('POST', '/api/v1/stations', { id: 'CP-073B', password: password1 });
      const cp = await station(s.ocppUrl, 'CP-073B', { password: password1, handlers: { ChangeConfiguration: () => ({ status: 'RebootRequired' }) } });
      await ocppCall(cp, 'BootNotification', bootPayload);
      const r = await s.api('POST', '/api/v1/stations/CP-073B/commands/ChangeConfiguration', { key: 'AuthorizationKey', value: password2 });
      expect(r.body).toEqual({ status: 'RebootRequired' });
      await cp.close();

      const rebooted = await upgrade(`${s.ocppUrl}/CP-073B`, { auth: ['CP-073B', password2] });
      expect(rebooted.status).toBe(101);
    });

    it('TC_073_CSMS when the charger rejects the new AuthorizationKey, the old password stays the valid one', async () => {
      const s = await setup();
      await s.api('POST', '/api/v1/stations', { id: 'CP-073R', password: password1 });
      const cp = await station(s.ocppUrl, 'CP-073R', { password: password1, handlers: { ChangeConfiguration: () => ({ status: 'Rejected' }) } });
      await ocppCall(cp, 'BootNotification', bootPayload);
      const r = await s.api('POST', '/api/v1/stations/CP-073R/commands/ChangeConfiguration', { key: 'AuthorizationKey', value: password2 });
      expect(r.body).toEqual({ status: 'Rejected' });
      await cp.close();

      expect((await upgrade(`${s.ocppUrl}/CP-073R`, { auth: ['CP-073R', password2] })).status).toBe(401);
      const again = await station(s.ocppUrl, 'CP-073R', { password: password1 });
      expect((await ocppCall(again, 'BootNotification', bootPayload)).status).toBe('Accepted');
    });
  });

  describe('security profile 2: TLS with Basic auth', () => {
    async function setupTls(): Promise<{ s: TestCsms; tlsUrl: string; tlsPort: number }> {
      const s = await setup({ tls: { port: 0, certFile, keyFile } });
      expect(s.ocppTlsUrl).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/ocpp$/);
      const tlsPort = Number(new URL(s.ocppTlsUrl!).port);
      expect(tlsPort).toBeGreaterThan(0);
      expect(tlsPort).not.toBe(Number(new URL(s.httpUrl).port));
      return { s, tlsUrl: s.ocppTlsUrl!, tlsPort };
    }

    it('TC_086_CSMS TLS server certificate: a profile 2 station is refused over plain ws (403) and accepted over TLS with Basic auth', async () => {
      const { s, tlsUrl } = await setupTls();
      expect((await s.api('POST', '/api/v1/stations', { id: 'CP-P2', password: password1, securityProfile: 2 })).status).toBe(201);

      expect((await upgrade(`${s.ocppUrl}/CP-P2`, { auth: ['CP-P2', password1] })).status).toBe(403);
      expect((await upgrade(`${tlsUrl}/CP-P2`, { ca })).status).toBe(401);
      expect((await upgrade(`${tlsUrl}/CP-P2`, { ca, auth: ['CP-P2', 'wrong-password-0000'] })).status).toBe(401);

      const cp = new RPCClient({
        endpoint: tlsUrl,
        identity: 'CP-P2',
        password: password1,
        protocols: ['ocpp1.6'],
        strictMode: true,
        reconnect: false,
        callTimeoutMs: 5000,
        wsOpts: { ca },
      } as any);
      clients.push(cp);
      await cp.connect();
      expect((await ocppCall(cp, 'BootNotification', bootPayload)).status).toBe('Accepted');
      const view = await s.api('GET', '/api/v1/stations/CP-P2');
      expect(view.body).toMatchObject({ connected: true, securityProfile: 2 });
    });

    it('a station on profile 0 or 1 is refused on the TLS listener (403)', async () => {
      const { s, tlsUrl } = await setupTls();
      await s.api('POST', '/api/v1/stations', { id: 'CP-P1-ON-TLS', password: password1 });
      expect((await upgrade(`${tlsUrl}/CP-P1-ON-TLS`, { ca, auth: ['CP-P1-ON-TLS', password1] })).status).toBe(403);
    });

    it('TLS 1.1 is refused, TLS 1.2 is accepted', async () => {
      const { tlsPort } = await setupTls();
      const handshake = (maxVersion: 'TLSv1.1' | 'TLSv1.2') =>
        new Promise<string>((resolve) => {
          // SECLEVEL=0 lets this client offer TLS 1.1 at all, so any refusal comes from the server.
          const socket = tlsConnect({ host: '127.0.0.1', port: tlsPort, ca, servername: 'localhost', minVersion: 'TLSv1', maxVersion, ciphers: 'DEFAULT@SECLEVEL=0' });
          socket.once('secureConnect', () => {
            const protocol = socket.getProtocol() ?? 'unknown';
            socket.destroy();
            resolve(protocol);
          });
          socket.once('error', (err: NodeJS.ErrnoException) => {
            socket.destroy();
            resolve(err.code ?? err.message);
          });
        });
      expect(await handshake('TLSv1.1')).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
      expect(await handshake('TLSv1.2')).toBe('TLSv1.2');
    });

    it('the HTTP API also answers over the TLS port', async () => {
      const { tlsPort } = await setupTls();
      const get = (path: string) =>
        new Promise<{ status: number; body: any }>((resolve, reject) => {
          const req = httpsGet({ host: '127.0.0.1', port: tlsPort, path, ca, servername: 'localhost' }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
          });
          req.on('error', reject);
          req.end();
        });
      const health = await get('/healthz');
      expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });
      const stations = await get('/api/v1/stations');
      expect(stations).toMatchObject({ status: 200, body: { items: [] } });
    });
  });
});
