import { afterEach, describe, expect, it } from 'vitest';
import { Fleet, SpeedClock } from '../src/simulator/fleet.js';
import { loadTemplate } from '../src/simulator/templates.js';
import type { VehicleSpec } from '../src/simulator/vehicle.js';
import { eventually, startCsms, type TestCsms } from './helpers/csms.js';

const speed = 1200;
const hour = 3600_000;

/**
 * The planner, live, on the simulator: three 150 kW DC depot chargers (and one for a car the
 * fleet does not know) under a 300 kW connection, an evening tariff of 0.40 and a night tariff of
 * 0.10 from midnight to 05:00. Two buses come in at 22:00 with 30 % and leave at 06:00 wanting
 * 90 % (the timetable says so); a third must leave at 23:00, too soon to reach 90 %.
 */
describe('the charging planner on a live depot', () => {
  let server: TestCsms;
  let fleet: Fleet;
  afterEach(async () => {
    fleet?.stop();
    await server?.stop();
  });

  it('charges buses in the cheap night hours from the timetable and their SoC, warns of a bus that will leave short, and keeps the site limit', async () => {
    const day = new Date();
    const at = (h: number, m = 0) => new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), h, m));
    const start = at(21, 0);
    const clock = new SpeedClock(start, speed);
    server = await startCsms({
      clock,
      rateLimit: { perSecond: 1000, burst: 1000 },
      smartCharging: {
        supplyVoltage: 230,
        verifyProfiles: false,
        verifyDurationS: 3600,
        balancer: { enabled: true, txProfileValidityS: 1200, renewBeforeS: 400, clockSkewS: 30, minUpdateIntervalS: 0, debounceMs: 10, housekeepingMs: 50, failsafeHorizonS: 86400, failsafeFraction: 0.5 },
        planner: { enabled: true, stepS: 300, horizonS: 86400, timeBudgetS: 2, replanEveryS: 300, shortfallAlarmKwh: 1 },
      },
    });
    fleet = new Fleet({
      csmsUrl: server.ocppUrl,
      stations: 4,
      prefix: 'PL-',
      template: loadTemplate('dc-150kw-depot'),
      scenario: 'none',
      seed: 5,
      speed,
      start,
      clock,
      tickMs: 20,
    });
    for (const idTag of ['TAG-A', 'TAG-B', 'TAG-C', 'CAR-X']) await server.api('POST', '/api/v1/id-tags', { idTag, status: 'Accepted' });
    const stations = fleet.stations.map((s) => ({ id: s.id, kind: 'DC', maxPowerW: 150000 }));
    expect((await server.api('PUT', '/api/v1/sites/yard', { name: 'Yard', limit: { value: 300_000, unit: 'W' }, stations })).status).toBe(201);
    const tariff = await server.api('PUT', '/api/v1/sites/yard/planning', {
      prices: [
        { start: at(0).toISOString(), pricePerKwh: 0.4 },
        { start: new Date(at(0).getTime() + 24 * hour).toISOString(), pricePerKwh: 0.1 },
        { start: new Date(at(5).getTime() + 24 * hour).toISOString(), pricePerKwh: 0.4 },
      ],
    });
    expect(tariff.status).toBe(200);

    // The registry knows the buses by their cards; the timetable says when they leave and with what.
    for (const [id, tag] of [['BUS-A', 'TAG-A'], ['BUS-B', 'TAG-B'], ['BUS-C', 'TAG-C']]) {
      expect((await server.api('PUT', `/api/v1/vehicles/${id}`, { batteryKwh: 350, maxPowerKw: 150, targetSocPct: 90, idTags: [tag] })).status).toBe(201);
    }
    const morning = new Date(at(6).getTime() + 24 * hour).toISOString();
    const csv = [
      'vehicle_id,arrival,departure,arrival_soc_pct,target_soc_pct',
      `BUS-A,${at(21, 45).toISOString()},${morning},30,90`,
      `BUS-B,${at(21, 45).toISOString()},${morning},30,90`,
      `BUS-C,${at(21, 45).toISOString()},${at(23).toISOString()},20,90`,
    ].join('\n');
    const imported = await fetch(`${server.httpUrl}/api/v1/timetable`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv });
    expect(imported.status).toBe(200);
    expect(await imported.json()).toMatchObject({ added: 3, updated: 0, unknownVehicles: [] });

    let worstSiteW = 0;
    const energyBeforeMidnightWh: Record<string, number> = {};
    let lastSecond = start.getTime();
    fleet.onSecond = (now) => {
      let siteW = 0;
      const dtH = (now.getTime() - lastSecond) / hour;
      lastSecond = now.getTime();
      for (const s of fleet.stations) {
        for (const c of s.connectors) {
          siteW += c.powerW;
          // From 22:00 (the first plan has reached the chargers) to midnight, when energy gets cheap.
          if (c.vehicle && now >= at(22) && now.getTime() < at(0).getTime() + 24 * hour) energyBeforeMidnightWh[c.vehicle.spec.id] = (energyBeforeMidnightWh[c.vehicle.spec.id] ?? 0) + c.powerW * dtH;
        }
      }
      worstSiteW = Math.max(worstSiteW, siteW);
    };
    fleet.start();
    await eventually(() => fleet.stations.every((s) => s.registration === 'Accepted'), 15000);
    const bus = (id: string, tag: string, arrivalSocPct: number, departure: Date): VehicleSpec => ({
      id,
      idTag: tag,
      batteryKwh: 350,
      arrivalSocPct,
      targetSocPct: 90,
      acMaxCurrentA: 0,
      acPhases: 3,
      dcMaxPowerKw: 150,
      minAcCurrentA: 6,
      arrival: clock.now(),
      departure,
    });
    const waitUntil = async (t: Date) => {
      while (clock.now() < t) await new Promise((r) => setTimeout(r, 20));
    };
    await waitUntil(at(21, 50));
    fleet.stations[0]!.plugIn(1, bus('BUS-A', 'TAG-A', 30, new Date(morning)));
    fleet.stations[1]!.plugIn(1, bus('BUS-B', 'TAG-B', 30, new Date(morning)));
    fleet.stations[2]!.plugIn(1, bus('BUS-C', 'TAG-C', 20, at(23)));
    fleet.stations[3]!.plugIn(1, { ...bus('CAR-X', 'CAR-X', 50, new Date(morning)), batteryKwh: 400, targetSocPct: 100 });

    // The plan knows the buses' departures from the timetable and their needs from their SoC.
    const plan = await eventually(async () => {
      const p = (await server.api('GET', '/api/v1/sites/yard/plan')).body;
      return p?.vehicles?.length === 3 && p.vehicles.every((v: any) => v.sources.energy === 'soc') ? p : null;
    }, 15000);
    expect(plan.method).toBe('lp');
    const byVehicle = Object.fromEntries(plan.vehicles.map((v: any) => [v.vehicleId, v]));
    expect(byVehicle['BUS-A']).toMatchObject({ departure: morning, targetSocPct: 90, sources: { departure: 'timetable', energy: 'soc' } });
    expect(byVehicle['BUS-A'].needKwh).toBeGreaterThan(0.55 * 350);
    expect(byVehicle['BUS-A'].shortfallKwh).toBeLessThan(0.01);
    // The car the fleet does not know is left to the balancer's fair share.
    expect(plan.unplanned).toEqual([expect.objectContaining({ stationId: 'PL-4', reason: 'no departure known' })]);

    // BUS-C cannot reach 90 % by 23:00 at 150 kW (20 % + 150 kW × 70 min of 350 kWh is about 70 %): the operator hears it at once.
    const alarm = await eventually(async () => {
      const items = (await server.api('GET', '/api/v1/alarms?type=ChargingShortfall&active=true')).body.items;
      return items.length > 0 ? items[0] : null;
    }, 15000);
    expect(alarm.stationId).toBe('PL-3');
    expect(alarm.message).toMatch(/^vehicle BUS-C will leave at .* with (6[5-9]|70) % instead of 90 %$/);

    await waitUntil(at(22, 30));
    // Before midnight energy costs four times as much: the buses with all night wait.
    expect(fleet.stations[0]!.connector(1).powerW).toBe(0);
    expect(fleet.stations[1]!.connector(1).powerW).toBe(0);
    await waitUntil(new Date(at(3).getTime() + 24 * hour));
    fleet.stop();

    expect(energyBeforeMidnightWh['BUS-A'] ?? 0).toBeLessThan(500);
    expect(energyBeforeMidnightWh['BUS-B'] ?? 0).toBeLessThan(500);
    // BUS-C, which must leave at 23:00, charged (150 kW for its last hour at most), and the car
    // the planner knows nothing of got what the plans left.
    expect(energyBeforeMidnightWh['BUS-C']).toBeGreaterThan(100_000);
    expect(energyBeforeMidnightWh['CAR-X']).toBeGreaterThan(50_000);
    // By 03:00, well before their 06:00 departure, both are at their target.
    for (const i of [0, 1]) expect(fleet.stations[i]!.connector(1).vehicle!.socPct).toBeGreaterThanOrEqual(89.5);
    expect(worstSiteW).toBeLessThanOrEqual(300_000 + 1);
  }, 90_000);
});
