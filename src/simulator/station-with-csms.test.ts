import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { SimulatedStation } from './station.js';
import { loadTemplate } from './templates.js';

// A simulated station against a minimal central system of the test's own.
let server: WebSocketServer | undefined;
let station: SimulatedStation | undefined;
afterEach(async () => {
  station?.stop();
  for (const client of server?.clients ?? []) client.terminate();
  if (server) await new Promise((resolve) => server!.close(resolve));
  server = station = undefined;
});

it('acts on the StartTransaction answer before a SetChargingProfile that came in the same read', async () => {
  // A central system that answers StartTransaction and sends the session's TxProfile in one write:
  // the station must take them in order, as a charger does, and know its transaction by then.
  server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'ocpp1.6' });
  await once(server, 'listening');
  const answer = new Promise<unknown>((resolve) => {
    server!.on('connection', (socket: WebSocket & { _socket?: import('node:net').Socket }) => {
      socket.on('message', (data) => {
        const frame = JSON.parse(data.toString());
        if (frame[0] === 3 && frame[1] === 'profile-1') resolve(frame[2]);
        if (frame[0] !== 2) return;
        const [, id, action] = frame;
        if (action === 'BootNotification') socket.send(JSON.stringify([3, id, { status: 'Accepted', currentTime: new Date().toISOString(), interval: 300 }]));
        else if (action === 'Authorize') socket.send(JSON.stringify([3, id, { idTagInfo: { status: 'Accepted' } }]));
        else if (action === 'StartTransaction') {
          const profile = {
            chargingProfileId: 7,
            transactionId: 42,
            stackLevel: 0,
            chargingProfilePurpose: 'TxProfile',
            chargingProfileKind: 'Relative',
            chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 16 }] },
          };
          socket._socket!.cork();
          socket.send(JSON.stringify([3, id, { transactionId: 42, idTagInfo: { status: 'Accepted' } }]));
          socket.send(JSON.stringify([2, 'profile-1', 'SetChargingProfile', { connectorId: 1, csChargingProfiles: profile }]));
          process.nextTick(() => socket._socket!.uncork());
        } else socket.send(JSON.stringify([3, id, {}]));
      });
    });
  });
  const { port } = server.address() as AddressInfo;
  station = new SimulatedStation({ id: 'ORDER-1', template: loadTemplate('ac-22kw-wallbox'), csmsUrl: `ws://127.0.0.1:${port}`, clock: { now: () => new Date() }, random: () => 0.5, callTimeoutMs: 2000 });
  station.start();
  const now = new Date();
  station.plugIn(1, { id: 'CAR', idTag: 'CAR', batteryKwh: 60, arrivalSocPct: 20, targetSocPct: 80, acMaxCurrentA: 16, acPhases: 3, dcMaxPowerKw: 0, minAcCurrentA: 6, arrival: now, departure: new Date(now.getTime() + 3600_000) });
  const result = await Promise.race([answer, new Promise((_, reject) => setTimeout(() => reject(new Error('no answer to SetChargingProfile in 5 s')), 5000))]);
  expect(result).toEqual({ status: 'Accepted' });
  expect(station.profiles.map((p) => p.profile.transactionId)).toContain(42);
});

async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} within 5 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

it('draws the seconds before a profile arrived under what it held then, though the profile starts earlier', async () => {
  // A central system that accepts everything, and sends one profile when the test asks.
  server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'ocpp1.6' });
  await once(server, 'listening');
  let socket: WebSocket | undefined;
  let profileAnswered = false;
  server.on('connection', (ws: WebSocket) => {
    socket = ws;
    ws.on('message', (data) => {
      const [type, id, action] = JSON.parse(data.toString());
      if (type === 3 && id === 'profile-1') profileAnswered = true;
      if (type !== 2) return;
      if (action === 'BootNotification') ws.send(JSON.stringify([3, id, { status: 'Accepted', currentTime: new Date().toISOString(), interval: 300 }]));
      else if (action === 'Authorize') ws.send(JSON.stringify([3, id, { idTagInfo: { status: 'Accepted' } }]));
      else if (action === 'StartTransaction') ws.send(JSON.stringify([3, id, { transactionId: 42, idTagInfo: { status: 'Accepted' } }]));
      else ws.send(JSON.stringify([3, id, {}]));
    });
  });
  // Simulated time moves only when the test moves it.
  let now = Date.parse('2026-01-01T20:59:00.000Z');
  const { port } = server.address() as AddressInfo;
  station = new SimulatedStation({ id: 'LATE-1', template: loadTemplate('ac-22kw-wallbox'), csmsUrl: `ws://127.0.0.1:${port}`, clock: { now: () => new Date(now) }, random: () => 0.5, callTimeoutMs: 2000 });
  station.start();
  station.plugIn(1, { id: 'CAR', idTag: 'CAR', batteryKwh: 60, arrivalSocPct: 20, targetSocPct: 80, acMaxCurrentA: 16, acPhases: 3, dcMaxPowerKw: 0, minAcCurrentA: 6, arrival: new Date(now), departure: new Date(now + 3600_000) });
  const connector = station.connectors.find((c) => c.connectorId === 1)!;
  await eventually(() => connector.transaction?.id === 42, 'the transaction started');
  station.tick(new Date(now));
  now += 1000;
  station.tick(new Date(now));
  // 16 A on three phases of 230 V.
  expect(connector.powerW).toBeCloseTo(11_040, -1);

  // The fleet falls 10 s behind; then a profile of 6 A arrives whose schedule began 30 s ago.
  now += 10_000;
  const profile = {
    chargingProfileId: 9,
    stackLevel: 0,
    chargingProfilePurpose: 'TxDefaultProfile',
    chargingProfileKind: 'Absolute',
    chargingSchedule: { startSchedule: new Date(now - 30_000).toISOString(), chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 6 }] },
  };
  socket!.send(JSON.stringify([2, 'profile-1', 'SetChargingProfile', { connectorId: 1, csChargingProfiles: profile }]));
  await eventually(() => profileAnswered, 'the profile was answered');
  expect(station.profiles.map((p) => p.profile.chargingProfileId)).toEqual([9]);

  // The ten seconds before it arrived: still 16 A, to the last of them.
  const meterBefore = connector.meterWh;
  station.tick(new Date(now));
  expect(connector.powerW).toBeCloseTo(11_040, -1);
  expect(connector.meterWh - meterBefore).toBeCloseTo((11_040 * 10) / 3600, 0);
  // From its arrival on: 6 A.
  now += 5000;
  station.tick(new Date(now));
  expect(connector.powerW).toBeCloseTo(4_140, -1);
});
