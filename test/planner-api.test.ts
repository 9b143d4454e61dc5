import { afterEach, describe, expect, it } from 'vitest';
import { bootStation, connectStation, eventually, quickSmartCharging as smartCharging, startCsms, testDatabases, type TestCsms } from './helpers/csms.js';


const hour = 3600_000;

describe.each(testDatabases)('the planner API (%s)', (database) => {
  let server: TestCsms;
  afterEach(async () => {
    await server?.stop();
  });

  it('keeps a fleet registry and imports a timetable, rejecting a bad file whole with its line', async () => {
    server = await startCsms({ database, smartCharging });
    expect((await server.api('PUT', '/api/v1/vehicles/BUS-1', { batteryKwh: 350, maxPowerKw: 150, targetSocPct: 90, idTags: ['CARD-1'] })).status).toBe(201);
    // One card identifies one vehicle.
    const clash = await server.api('PUT', '/api/v1/vehicles/BUS-2', { batteryKwh: 350, idTags: ['CARD-1'] });
    expect(clash.status).toBe(409);
    expect(clash.body.message).toContain('CARD-1');
    expect((await server.api('PUT', '/api/v1/vehicles/BUS-2', { batteryKwh: -1, idTags: [] })).status).toBe(400);

    const post = (csv: string) => fetch(`${server.httpUrl}/api/v1/timetable`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const bad = await post(
      ['vehicle_id,arrival,departure,target_soc_pct,battery_kwh', 'BUS-1,2026-11-22T18:00:00Z,2026-11-23T06:00:00Z,90,', 'BUS-3,2026-11-22T19:00:00Z,2026-11-22T18:00:00Z,90,300'].join('\n'),
    );
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ line: 3, column: 'departure' });
    expect((await server.api('GET', '/api/v1/timetable')).body.items).toEqual([]);
    expect((await post('vehicle_id,arrival,departure\nBUS-1,2026-11-22T18:00:00Z,2026-11-23T06:00:00Z')).body.message).toMatch(/energy_kwh or target_soc_pct/);

    const good = await post(
      ['vehicle_id,arrival,departure,arrival_soc_pct,target_soc_pct,battery_kwh', 'BUS-1,2026-11-22T18:00:00Z,2026-11-23T06:00:00Z,30,90,', 'BUS-3,2026-11-22T19:00:00+01:00,2026-11-23T05:30:00Z,25,95,300', 'BUS-4,2026-11-22T19:00:00Z,2026-11-23T05:30:00Z,25,95,'].join('\n'),
    );
    expect(good).toMatchObject({ status: 200, body: { added: 3, updated: 0, vehiclesCreated: ['BUS-3'], unknownVehicles: ['BUS-4'] } });
    // The same file again updates the trips rather than doubling them.
    const again = await post(['vehicle_id,arrival,departure,target_soc_pct', 'BUS-1,2026-11-22T18:30:00Z,2026-11-23T06:00:00Z,80'].join('\n'));
    expect(again.body).toMatchObject({ added: 0, updated: 1 });
    const trips = (await server.api('GET', '/api/v1/timetable?vehicleId=BUS-1')).body.items;
    expect(trips).toEqual([{ vehicleId: 'BUS-1', siteId: null, arrival: '2026-11-22T18:30:00.000Z', departure: '2026-11-23T06:00:00.000Z', energyKwh: null, arrivalSocPct: null, targetSocPct: 80 }]);
    expect((await server.api('GET', '/api/v1/vehicles/BUS-3')).body).toMatchObject({ batteryKwh: 300, idTags: ['BUS-3'] });
  });

  it('takes a session\'s needs, plans it under the site limit, and generates the profile an outside backend would send', async () => {
    server = await startCsms({ database, smartCharging });
    const now = Date.now();
    await server.api('PUT', '/api/v1/sites/lot', {
      name: 'Lot',
      limit: { value: 30_000, unit: 'W' },
      stations: [{ id: 'NEED-1', kind: 'AC', maxPowerW: 44160, connectorMaxPowerW: 22080, connectors: 2 }],
      planning: { prices: [{ start: new Date(now - hour).toISOString(), pricePerKwh: 0.3 }, { start: new Date(now + 2 * hour).toISOString(), pricePerKwh: 0.1 }] },
    });
    await server.api('POST', '/api/v1/id-tags', { idTag: 'CAR-1', status: 'Accepted' });
    const client = await connectStation(server.ocppUrl, 'NEED-1');
    const received: any[] = [];
    client.handle('SetChargingProfile', async ({ params }: any) => {
      received.push(params);
      return { status: 'Accepted' };
    });
    await bootStation(client, 2);
    const start = await client.call('StartTransaction', { connectorId: 1, idTag: 'CAR-1', meterStart: 1000, timestamp: new Date().toISOString() });
    const transactionId = start.transactionId;

    expect((await server.api('PUT', '/api/v1/transactions/999999/needs', { energyKwh: 10 })).status).toBe(404);
    expect((await server.api('PUT', `/api/v1/transactions/${transactionId}/needs`, {})).status).toBe(400);
    expect((await server.api('PUT', `/api/v1/transactions/${transactionId}/needs`, { energyKwh: 'lots' })).status).toBe(400);
    const departure = new Date(now + 6 * hour).toISOString();
    const put = await server.api('PUT', `/api/v1/transactions/${transactionId}/needs`, { departure, energyKwh: 30 });
    expect(put.status).toBe(200);
    expect(put.body.resolved).toMatchObject({ departure, remainingKwh: 30, sources: { departure: 'api', energy: 'api' } });

    // 30 kWh by six hours from now at 22 kW: all of it in the cheap hours from two hours on.
    const plan = await eventually(async () => {
      const p = (await server.api('GET', '/api/v1/sites/lot/plan')).body;
      return p?.vehicles?.length === 1 ? p : null;
    }, 5000);
    const mine = plan.vehicles[0];
    expect(mine).toMatchObject({ transactionId, needKwh: 30 });
    expect(mine.shortfallKwh).toBeLessThan(1e-6);
    expect(mine.plannedKwh).toBeCloseTo(30, 3);
    const expensiveKwh = plan.intervals.reduce((sum: number, iv: any, i: number) => (Date.parse(iv.end) <= now + 2 * hour ? sum + (mine.powerKw[i] * (Date.parse(iv.end) - Date.parse(iv.start))) / hour : sum), 0);
    expect(expensiveKwh).toBeLessThan(0.01);
    // The balancer hands the plan to the station: nothing now (before its needs were known, the car had its fair share).
    await eventually(() => {
      const last = received.filter((p) => p.csChargingProfiles.chargingProfilePurpose === 'TxProfile').at(-1);
      return last?.csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit === 0 ? last : null;
    }, 5000);

    // An outside backend asks what a second car on connector 2 should get: planned with the first,
    // it fits the 30 kW site beside it and prefers the cheap hours.
    const generated = await server.api('POST', '/api/v1/charging-profiles/generate', { stationId: 'NEED-1', connectorId: 2, departure: new Date(now + 4 * hour).toISOString(), energyKwh: 20, unit: 'A', phases: 3 });
    expect(generated.status).toBe(200);
    const profile = generated.body.csChargingProfiles;
    expect(profile).toMatchObject({ chargingProfilePurpose: 'TxProfile', chargingProfileKind: 'Absolute', stackLevel: 1, chargingSchedule: { chargingRateUnit: 'A' } });
    expect(generated.body.plannedKwh).toBeCloseTo(20, 3);
    expect(generated.body.shortfallKwh).toBeLessThan(1e-6);
    // What the profile allows, integrated, is the energy planned (limits rounded down to a tenth of an ampere).
    const periods = profile.chargingSchedule.chargingSchedulePeriod;
    const startMs = Date.parse(profile.chargingSchedule.startSchedule);
    const endMs = startMs + profile.chargingSchedule.duration * 1000;
    let kwh = 0;
    periods.forEach((p: any, i: number) => {
      const from = startMs + p.startPeriod * 1000;
      const to = i + 1 < periods.length ? startMs + periods[i + 1].startPeriod * 1000 : endMs;
      expect(p.limit).toBeLessThanOrEqual(32);
      kwh += (p.limit * 230 * 3 * (to - from)) / hour / 1000;
    });
    expect(kwh).toBeGreaterThan(19.5);
    expect(kwh).toBeLessThanOrEqual(20 + 1e-6);
    // The planned sum of both cars stays within the site's 30 kW at every step.
    for (const step of generated.body.plan) {
      expect(step.powerKw).toBeLessThanOrEqual(22.08 + 1e-6);
      expect(step.sitePowerKw).toBeLessThanOrEqual(30 + 1e-6);
    }
    // Both cars need the cheap hours and cannot both have 22 kW there: the site limit binds.
    expect(Math.max(...generated.body.plan.map((s: any) => s.sitePowerKw))).toBeGreaterThan(29);

    expect((await server.api('POST', '/api/v1/charging-profiles/generate', { stationId: 'NEED-1', connectorId: 5, departure: new Date(now + hour).toISOString(), energyKwh: 5 })).status).toBe(400);
    expect((await server.api('POST', '/api/v1/charging-profiles/generate', { stationId: 'NEED-1', connectorId: 1, departure: new Date(now - hour).toISOString(), energyKwh: 5 })).status).toBe(400);

    await client.call('StopTransaction', { transactionId, meterStop: 2000, timestamp: new Date().toISOString() });
    expect((await server.api('PUT', `/api/v1/transactions/${transactionId}/needs`, { energyKwh: 10 })).status).toBe(409);
    await client.close();
  });

  it('plans for the buses the timetable sends to a depot before they arrive, and warns of one that cannot make it', async () => {
    server = await startCsms({ database, smartCharging });
    const now = Date.now();
    await server.api('PUT', '/api/v1/sites/depot', { name: 'Depot', limit: { value: 100_000, unit: 'W' }, stations: [{ id: 'DEP-1', kind: 'DC', maxPowerW: 100_000 }, { id: 'DEP-2', kind: 'DC', maxPowerW: 100_000 }] });
    await server.api('PUT', '/api/v1/vehicles/EARLY', { batteryKwh: 300, maxPowerKw: 100, idTags: ['EARLY'] });
    await server.api('PUT', '/api/v1/vehicles/LATE', { batteryKwh: 300, maxPowerKw: 100, idTags: ['LATE'] });
    await server.api('PUT', '/api/v1/vehicles/ELSEWHERE', { batteryKwh: 300, maxPowerKw: 100, idTags: ['ELSEWHERE'] });
    const iso = (h: number) => new Date(now + h * hour).toISOString();
    const csv = [
      'vehicle_id,site_id,arrival,departure,energy_kwh,arrival_soc_pct,target_soc_pct',
      // EARLY is plugged in now and could take its 200 kWh any time in the next 6 h.
      `EARLY,depot,${iso(-0.1)},${iso(6)},200,,`,
      // LATE comes in 1 h from now, needs 249.9 kWh by 3 h: 200 kWh at most at 100 kW. It will be short, and the plan must keep the site free for it.
      `LATE,depot,${iso(1)},${iso(3)},,10,93.3`,
      // A trip to another depot is not this site's business.
      `ELSEWHERE,,${iso(1)},${iso(3)},100,,`,
    ].join('\n');
    expect((await fetch(`${server.httpUrl}/api/v1/timetable`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv })).status).toBe(200);
    await server.api('POST', '/api/v1/id-tags', { idTag: 'EARLY', status: 'Accepted' });
    const client = await connectStation(server.ocppUrl, 'DEP-1');
    client.handle('SetChargingProfile', async () => ({ status: 'Accepted' }));
    await bootStation(client, 1);
    await client.call('StartTransaction', { connectorId: 1, idTag: 'EARLY', meterStart: 0, timestamp: new Date().toISOString() });

    const plan = await eventually(async () => {
      const p = (await server.api('POST', '/api/v1/sites/depot/plan')).body;
      return p?.vehicles?.length === 1 && p.expected?.length === 1 ? p : null;
    }, 5000);
    expect(plan.expected[0]).toMatchObject({ vehicleId: 'LATE', needKwh: expect.closeTo(249.9, 6), targetSocPct: 93.3 });
    expect(plan.expected[0].plannedKwh).toBeCloseTo(200, 3);
    expect(plan.expected[0].shortfallKwh).toBeCloseTo(49.9, 3);
    // EARLY gets its 200 kWh, none of it while LATE is in (1 h to 3 h): the site is LATE's then.
    const early = plan.vehicles[0];
    expect(early.plannedKwh).toBeCloseTo(200, 3);
    plan.intervals.forEach((iv: any, i: number) => {
      if (Date.parse(iv.start) >= now + hour + 60_000 && Date.parse(iv.end) <= now + 3 * hour - 60_000) expect(early.powerKw[i]).toBeLessThan(1e-6);
      expect(plan.sitePowerKw[i]).toBeLessThanOrEqual(100 + 1e-6);
    });
    const alarm = await eventually(async () => (await server.api('GET', '/api/v1/alarms?type=ChargingShortfall&active=true')).body.items[0] ?? null, 5000);
    expect(alarm.message).toMatch(/^vehicle LATE will leave at .* with 76 % instead of 93 % \(expected at /);
    expect(alarm.stationId).toBeNull();
    await client.close();
  });
});
