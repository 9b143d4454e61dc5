import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { runLoad, type LoadPhase } from './loadgen.js';

const fixture = (file: string) => readFileSync(new URL(`../../test/fixtures/tls/${file}`, import.meta.url));
const https = createServer({ cert: fixture('server-ec.crt'), key: fixture('server-ec.key') });
afterEach(() => new Promise<void>((done) => https.close(() => done())));

it('reconnect storm over TLS with the ECDSA certificate: the storm figures count the reconnect only', async () => {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => 'ocpp1.6' });
  const attempts = new Map<string, number>();
  let opened = 0;
  https.on('upgrade', (req, socket, head) => {
    const station = req.url!.slice(req.url!.lastIndexOf('/') + 1);
    const attempt = (attempts.get(station) ?? 0) + 1;
    attempts.set(station, attempt);
    // Busy at each station's first attempt of each phase: its retry must open a connection of its own.
    if (attempt % 2 === 1) return socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n');
    wss.handleUpgrade(req, socket, head, (ws) => {
      opened += 1;
      ws.on('message', (data) => {
        const [, id, action] = JSON.parse(String(data));
        ws.send(JSON.stringify([3, id, action === 'BootNotification' ? { status: 'Accepted', currentTime: new Date().toISOString(), interval: 300 } : {}]));
      });
    });
  });
  await new Promise<void>((listening) => https.listen(0, '127.0.0.1', listening));
  const { port } = https.address() as AddressInfo;

  const phases: LoadPhase[] = [];
  const result = await runLoad(
    {
      scenario: 'storm',
      url: `wss://127.0.0.1:${port}/ocpp`,
      stations: 10,
      durationS: 30,
      intervalS: 10,
      connectBatch: 4,
      prefix: 'LG-',
      tlsCiphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
      reconnect: true,
    },
    (phase) => phases.push(phase),
  );

  expect(phases).toEqual(['provisioning', 'outage', 'storm', 'done']);
  expect(result.provisioningFailures).toBe(0);
  expect(result.provisionedAfterS).not.toBeNull();
  expect(opened).toBe(20);
  expect({ failures: result.failures, connected: result.connected, boots: result.bootLatencies.length, accepted: result.acceptedAtS.length, retries: result.retries }).toEqual({
    failures: 0,
    connected: 10,
    boots: 10,
    accepted: 10,
    retries: 10,
  });
  expect(result.allAcceptedAfterS).toBe(result.durationS);
  expect(result.tlsCipher).toBe('TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256');
});

it('steady: the window measured opens once every station is in and closes at the end of the run', async () => {
  const http = createHttpServer();
  const wss = new WebSocketServer({ server: http, handleProtocols: () => 'ocpp1.6' });
  let connected = 0;
  let phase: LoadPhase | 'start' = 'start';
  const connectedAt: Partial<Record<LoadPhase, number>> = {};
  const receivedIn = new Map<LoadPhase | 'start', number>();
  wss.on('connection', (ws) => {
    connected += 1;
    ws.on('message', (data) => {
      const [, id, action] = JSON.parse(String(data));
      receivedIn.set(phase, (receivedIn.get(phase) ?? 0) + 1);
      const answer = action === 'BootNotification' ? { status: 'Accepted', currentTime: new Date().toISOString(), interval: 300 } : action === 'StartTransaction' ? { transactionId: 7, idTagInfo: { status: 'Accepted' } } : {};
      ws.send(JSON.stringify([3, id, answer]));
    });
  });
  await new Promise<void>((listening) => http.listen(0, '127.0.0.1', listening));
  const { port } = http.address() as AddressInfo;
  try {
    const phases: LoadPhase[] = [];
    const result = await runLoad({ scenario: 'steady', url: `ws://127.0.0.1:${port}/ocpp`, stations: 6, durationS: 3, intervalS: 0.5, connectBatch: 2, prefix: 'LG-S-' }, (next) => {
      phases.push(next);
      connectedAt[next] = connected;
      phase = next;
    });
    expect(phases).toEqual(['measure', 'done']);
    expect(connectedAt.measure).toBe(6);
    expect(result.failures).toBe(0);
    // What the server received inside the window is what the load generator counted, give or take
    // one CALL per station on the window's edges (sent before an announcement, read after it).
    expect(Math.abs((receivedIn.get('measure') ?? 0) - result.answered)).toBeLessThanOrEqual(6);
    // The boots and the ramp came before the window.
    expect(receivedIn.get('start')).toBeGreaterThanOrEqual(6);
  } finally {
    wss.close();
    await new Promise<void>((done) => http.close(() => done()));
  }
});

it('steady with traceAnswers: notes every answer of the window with the time it was sent', async () => {
  const http = createHttpServer();
  const wss = new WebSocketServer({ server: http, handleProtocols: () => 'ocpp1.6' });
  wss.on('connection', (ws, req) => {
    // One station of three is answered 60 ms late once it is in; the others at once.
    const slow = req.url!.endsWith('/LG-T-0');
    ws.on('message', (data) => {
      const [, id, action] = JSON.parse(String(data));
      const answer = action === 'BootNotification' ? { status: 'Accepted', currentTime: new Date().toISOString(), interval: 300 } : action === 'StartTransaction' ? { transactionId: 7, idTagInfo: { status: 'Accepted' } } : {};
      const send = () => ws.send(JSON.stringify([3, id, answer]));
      if (slow && action !== 'BootNotification' && action !== 'StatusNotification') setTimeout(send, 60);
      else send();
    });
  });
  await new Promise<void>((listening) => http.listen(0, '127.0.0.1', listening));
  const { port } = http.address() as AddressInfo;
  try {
    const started = Date.now();
    const result = await runLoad({ scenario: 'steady', url: `ws://127.0.0.1:${port}/ocpp`, stations: 3, durationS: 3, intervalS: 0.5, connectBatch: 3, prefix: 'LG-T-', traceAnswers: true });
    const ended = Date.now();
    expect(result.failures).toBe(0);
    const times = result.answerTimes ?? [];
    expect(times).toHaveLength(result.answered);
    for (const [sentAt] of times) {
      expect(sentAt).toBeGreaterThanOrEqual(started);
      expect(sentAt).toBeLessThanOrEqual(ended);
    }
    // The slow station sends about every 0.5 s over the 2.5 s window, each answered 60 ms late.
    const slow = times.filter(([, latency]) => latency >= 55);
    expect(slow.length).toBeGreaterThanOrEqual(3);
    expect(slow.length).toBeLessThanOrEqual(6);
    // The other two, answered at once, sent about twice as many.
    expect(times.length - slow.length).toBeGreaterThanOrEqual(2 * slow.length - 2);
    // The late station's sends are about 0.5 s apart, as a station's are.
    const slowSends = slow.map(([sentAt]) => sentAt).sort((a, b) => a - b);
    for (let i = 1; i < slowSends.length; i++) expect(slowSends[i]! - slowSends[i - 1]!).toBeGreaterThan(400);
  } finally {
    wss.close();
    await new Promise<void>((done) => http.close(() => done()));
  }
});
