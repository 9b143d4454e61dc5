import { afterEach, describe, expect, it } from 'vitest';
import { Fleet } from '../src/simulator/fleet.js';
import { loadTemplate } from '../src/simulator/templates.js';
import type { VehicleSpec } from '../src/simulator/vehicle.js';
import { eventually, quickSmartCharging as smartCharging, startCsms, testDatabases, type TestCsms } from './helpers/csms.js';

const car = (id: string, now: Date): VehicleSpec => ({
  id,
  idTag: id,
  batteryKwh: 80,
  arrivalSocPct: 10,
  targetSocPct: 100,
  acMaxCurrentA: 32,
  acPhases: 3,
  dcMaxPowerKw: 0,
  minAcCurrentA: 6,
  arrival: now,
  departure: new Date(now.getTime() + 10 * 3600_000),
});


describe.each(testDatabases)('site load balancing through the API (%s)', (database) => {
  let server: TestCsms;
  let fleet: Fleet | undefined;
  afterEach(async () => {
    fleet?.stop();
    await server?.stop();
  });

  it('shares a 32 A group between two 22 kW wallboxes, obeys an external limit, and shows the allocation and load per node', async () => {
    server = await startCsms({
      database,
      smartCharging,
    });
    const put = await server.api('PUT', '/api/v1/sites/depot', {
      name: 'Depot North',
      limit: { value: 400000, unit: 'W' },
      groups: [{ id: 'T1', limit: { value: 32, unit: 'A' }, stations: [{ id: 'BAL-1', maxPowerW: 22080 }, { id: 'BAL-2', maxPowerW: 22080 }] }],
    });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ id: 'depot', name: 'Depot North', groups: [{ id: 'T1' }] });

    fleet = new Fleet({ csmsUrl: server.ocppUrl, stations: 2, prefix: 'BAL-', template: loadTemplate('ac-22kw-wallbox'), scenario: 'none', seed: 1, speed: 1, start: new Date(), tickMs: 50 });
    for (const id of ['CAR-1', 'CAR-2']) await server.api('POST', '/api/v1/id-tags', { idTag: id, status: 'Accepted' });
    fleet.start();
    await eventually(() => fleet!.stations.every((s) => s.registration === "Accepted"), 15000);
    // Each station got its failsafe: its physical maximum, and a default that fits the group if both
    // draw it at once (32 A / 2 stations, of which the configured half: 8 A).
    await eventually(() => fleet!.stations.every((s) => s.profiles.length === 2), 15000);
    const held = fleet.stations[0]!.profiles.map((p) => [p.profile.chargingProfilePurpose, p.profile.chargingSchedule.chargingRateUnit, p.profile.chargingSchedule.chargingSchedulePeriod[0]!.limit]);
    expect(held).toEqual([
      ['ChargePointMaxProfile', 'A', 32],
      ['TxDefaultProfile', 'A', 8],
    ]);
    // The CSMS records a profile once the station's answer is in, a moment after the station holds it.
    const recorded = await eventually(async () => {
      const items = (await server.api('GET', '/api/v1/stations/BAL-1/charging-profiles')).body.items;
      return items.length === 2 ? items : null;
    }, 5000);
    expect(recorded.map((p: any) => p.source)).toEqual(['failsafe', 'failsafe']);
    fleet.stations[0]!.plugIn(1, car('CAR-1', new Date()));
    fleet.stations[1]!.plugIn(1, car('CAR-2', new Date()));

    // 32 A per phase shared by two three-phase cars: 16 A each, 11,040 W.
    await eventually(() => fleet!.stations.every((s) => Math.abs(s.connector(1).powerW - 11040) < 50), 15000);
    // As with the failsafe above: the CSMS records a grant once the station's answer is in, a moment
    // after the station draws under it.
    const site = await eventually(async () => {
      const body = (await server.api('GET', '/api/v1/sites/depot')).body;
      return body.allocation.every((a: any) => a.grantExpiresAt !== null) ? body : null;
    }, 5000);
    expect(site.allocation.map((a: any) => Math.round(a.powerW))).toEqual([11040, 11040]);
    expect(site.allocation.every((a: any) => a.grantExpiresAt !== null)).toBe(true);
    const group = site.nodes.find((n: any) => n.id === 'T1');
    expect(group.allocated.currentA.L1).toBeLessThanOrEqual(32 + 1e-6);
    expect(group.limitInForce).toEqual({ maxA: 32 });

    // The grid operator curtails the site to 10 kW for an hour: within a round, 5 kW each.
    const now = Date.now();
    const limited = await server.api('PUT', '/api/v1/sites/depot/external-limit', {
      periods: [{ from: new Date(now - 1000).toISOString(), to: new Date(now + 3600_000).toISOString(), value: 10000, unit: 'W' }],
    });
    expect(limited.status).toBe(200);
    await eventually(() => fleet!.stations.every((s) => Math.abs(s.connector(1).powerW - 5000) < 50), 15000);
    const after = (await server.api('GET', '/api/v1/sites/depot')).body;
    expect(after.nodes[0].limitInForce).toEqual({ maxW: 10000 });
    expect(after.allocation.reduce((sum: number, a: any) => sum + a.powerW, 0)).toBeLessThanOrEqual(10000 + 1e-6);

    // A station in two sites, or a group id twice, is refused.
    const clash = await server.api('PUT', '/api/v1/sites/other', { name: 'Other', stations: ['BAL-1'] });
    expect(clash.status).toBe(400);
    expect(clash.body.message).toMatch(/BAL-1 already belongs to site depot/);
    expect((await server.api('PUT', '/api/v1/sites/bad', { name: 'Bad', groups: [{ id: 'X' }, { id: 'X' }] })).status).toBe(400);
    expect((await server.api('PUT', '/api/v1/sites/bad', { name: 'Bad', limit: { value: -1, unit: 'W' } })).status).toBe(400);
    // A twin-socket post whose second socket is rotated; a rotation that repeats a phase is refused.
    const post = { id: 'POST-1', connectors: 2, phases: 3, connectorRotations: [null, ['L2', 'L3', 'L1']] };
    expect((await server.api('PUT', '/api/v1/sites/posts', { name: 'Posts', limit: { value: 32, unit: 'A' }, stations: [post] })).status).toBe(201);
    const badRotation = { ...post, connectorRotations: [['L1', 'L1', 'L2']] };
    expect((await server.api('PUT', '/api/v1/sites/posts', { name: 'Posts', stations: [badRotation] })).status).toBe(400);
  });

  it('gives a higher priority class its full power first under the priority strategy', async () => {
    server = await startCsms({
      database,
      smartCharging,
    });
    await server.api('PUT', '/api/v1/sites/yard', {
      name: 'Yard',
      strategy: 'priority',
      groups: [{ id: 'F1', limit: { value: 40, unit: 'A' }, stations: [{ id: 'PRI-1', maxPowerW: 22080, priority: 1 }, { id: 'PRI-2', maxPowerW: 22080 }] }],
    });
    fleet = new Fleet({ csmsUrl: server.ocppUrl, stations: 2, prefix: 'PRI-', template: loadTemplate('ac-22kw-wallbox'), scenario: 'none', seed: 1, speed: 1, start: new Date(), tickMs: 50 });
    for (const id of ['CAR-1', 'CAR-2']) await server.api('POST', '/api/v1/id-tags', { idTag: id, status: 'Accepted' });
    fleet.start();
    await eventually(() => fleet!.stations.every((s) => s.profiles.length === 2), 15000);
    fleet.stations[0]!.plugIn(1, car('CAR-1', new Date()));
    fleet.stations[1]!.plugIn(1, car('CAR-2', new Date()));
    // 40 A: the priority station takes its 32 A, the other the remaining 8 A.
    await eventually(() => Math.abs(fleet!.stations[0]!.connector(1).powerW - 22080) < 50 && Math.abs(fleet!.stations[1]!.connector(1).powerW - 5520) < 50, 15000);
  });
});
