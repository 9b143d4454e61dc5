import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startCsms, type TestCsms } from './helpers/csms.js';

const fixtures = new URL('./fixtures/tls/', import.meta.url);
const certFile = new URL('server.crt', fixtures).pathname;
const keyFile = new URL('server.key', fixtures).pathname;
const ca = readFileSync(certFile);

function open(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'ocpp1.6', { perMessageDeflate: false, ...options });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

let calls = 0;

/** Sends one OCPP CALL and resolves with its CALLRESULT payload (a CALLERROR fails). */
function call(ws: WebSocket, action: string, payload: unknown): Promise<any> {
  // OCPP message ids are at most 36 characters.
  const id = `call-${++calls}`;
  return new Promise((resolve, reject) => {
    const onMessage = (data: WebSocket.RawData) => {
      const frame = JSON.parse(String(data));
      if (frame[1] !== id) return;
      ws.off('message', onMessage);
      if (frame[0] === 3) resolve(frame[2]);
      else reject(new Error(`${action} answered with ${JSON.stringify(frame)}`));
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify([2, id, action, payload]));
  });
}

describe('the API on a port of its own (apiPort)', () => {
  let server: TestCsms | undefined;
  const sockets: WebSocket[] = [];
  afterEach(async () => {
    for (const ws of sockets) ws.terminate();
    sockets.length = 0;
    await server?.stop();
    server = undefined;
  });

  it('serves the API there; the OCPP ports take stations and answer /healthz, and nothing else of the API', async () => {
    server = await startCsms({ apiPort: 0, tls: { port: 0, certFile, keyFile } });
    const apiPort = new URL(server.httpUrl).port;
    const ocppPort = new URL(server.ocppUrl).port;
    expect(apiPort).not.toBe(ocppPort);

    expect((await server.api('GET', '/api/v1/stations')).status).toBe(200);
    const ocppHttp = `http://127.0.0.1:${ocppPort}`;
    const health = await fetch(`${ocppHttp}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    // The operator's API, dashboard and metrics are not on the chargers' port.
    for (const path of ['/api/v1/stations', '/metrics', '/docs']) expect((await fetch(`${ocppHttp}${path}`)).status, path).toBe(404);

    const ws = await open(`${server.ocppUrl}/PORTS-1`);
    sockets.push(ws);
    const boot = await call(ws, 'BootNotification', { chargePointVendor: 'Test', chargePointModel: 'Ports' });
    expect(boot.status).toBe('Accepted');
    expect((await server.api('GET', '/api/v1/stations/PORTS-1')).body).toMatchObject({ connected: true });

    // The TLS port likewise: /healthz yes, the API no.
    const tlsHttp = `https://127.0.0.1:${new URL(server.ocppTlsUrl!).port}`;
    const agent = new Agent({ ca, servername: 'localhost' });
    const { get } = await import('node:https');
    const status = (path: string) =>
      new Promise<number>((resolve, reject) => get(`${tlsHttp}${path}`, { agent, servername: 'localhost' }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject));
    expect(await status('/healthz')).toBe(200);
    expect(await status('/api/v1/stations')).toBe(404);
    agent.destroy();
  });

  it('without apiPort one port serves the stations and the API, as before', async () => {
    server = await startCsms();
    expect(new URL(server.httpUrl).port).toBe(new URL(server.ocppUrl).port);
    expect((await server.api('GET', '/api/v1/stations')).status).toBe(200);
    const ws = await open(`${server.ocppUrl}/PORTS-2`);
    sockets.push(ws);
    expect((await call(ws, 'BootNotification', { chargePointVendor: 'Test', chargePointModel: 'Ports' })).status).toBe('Accepted');
  });
});
