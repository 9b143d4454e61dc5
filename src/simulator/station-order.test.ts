import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { SimulatedStation } from './station.js';
import { loadTemplate } from './templates.js';

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
