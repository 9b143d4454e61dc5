import { afterEach, describe, expect, it } from 'vitest';
import { Fleet } from '../src/simulator/fleet.js';
import { loadTemplate } from '../src/simulator/templates.js';
import { eventually, startCsms, testDatabases, type TestCsms } from './helpers/csms.js';

const txDefault = (id: number, unit: 'A' | 'W', periods: Array<[number, number]>) => ({
  chargingProfileId: id,
  stackLevel: 0,
  chargingProfilePurpose: 'TxDefaultProfile',
  chargingProfileKind: 'Absolute',
  chargingSchedule: { startSchedule: '2020-01-01T00:00:00Z', chargingRateUnit: unit, chargingSchedulePeriod: periods.map(([startPeriod, limit]) => ({ startPeriod, limit })) },
});

describe.each(testDatabases)('what each charger holds, and whether it does it (%s)', (database) => {
  let server: TestCsms;
  let fleet: Fleet | undefined;
  afterEach(async () => {
    fleet?.stop();
    await server?.stop();
  });

  async function setUp(template: string) {
    server = await startCsms({ database });
    fleet = new Fleet({ csmsUrl: server.ocppUrl, stations: 1, prefix: 'SC-', template: loadTemplate(template), scenario: 'none', seed: 2, speed: 1, start: new Date(), tickMs: 100 });
    fleet.start();
    await eventually(() => fleet!.stations[0]!.registration === 'Accepted', 5000);
    return fleet.stations[0]!;
  }

  it('records an accepted profile, predicts the composite schedule, finds the charger agrees, and forgets the profile on clear', async () => {
    await setUp('ac-22kw-wallbox');
    const set = await server.api('POST', '/api/v1/stations/SC-1/commands/SetChargingProfile', { connectorId: 0, csChargingProfiles: txDefault(5, 'A', [[0, 16], [1800, 10]]) });
    expect(set.body).toEqual({ status: 'Accepted' });
    const installed = (await server.api('GET', '/api/v1/stations/SC-1/charging-profiles')).body.items;
    expect(installed).toHaveLength(1);
    expect(installed[0]).toMatchObject({ connectorId: 0, source: 'api', profile: { chargingProfileId: 5 } });

    const predicted = await server.api('POST', '/api/v1/stations/SC-1/composite-schedule/predicted', { connectorId: 1, duration: 3600, chargingRateUnit: 'A', startTime: '2026-06-01T00:00:00Z' });
    expect(predicted.body.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 10, numberPhases: 3 }]);
    const reported = await server.api('POST', '/api/v1/stations/SC-1/commands/GetCompositeSchedule', { connectorId: 1, duration: 3600, chargingRateUnit: 'A' });
    expect(reported.body.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 10, numberPhases: 3 }]);
    // The check after installing found nothing wrong.
    await new Promise((r) => setTimeout(r, 300));
    expect((await server.api('GET', '/api/v1/alarms?stationId=SC-1')).body.items).toEqual([]);

    expect((await server.api('POST', '/api/v1/stations/SC-1/commands/ClearChargingProfile', { id: 5 })).body).toEqual({ status: 'Accepted' });
    expect((await server.api('GET', '/api/v1/stations/SC-1/charging-profiles')).body.items).toEqual([]);
    const unconstrained = await server.api('POST', '/api/v1/stations/SC-1/composite-schedule/predicted', { connectorId: 1, duration: 600 });
    expect(unconstrained.body.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, numberPhases: 3 }]);
  });

  it('raises "profile not applied as expected" with both schedules when the charger reports something else', async () => {
    const station = await setUp('ac-22kw-wallbox');
    station.faults.wrongCompositeSchedule = true;
    expect((await server.api('POST', '/api/v1/stations/SC-1/commands/SetChargingProfile', { connectorId: 0, csChargingProfiles: txDefault(6, 'A', [[0, 12]]) })).body).toEqual({
      status: 'Accepted',
    });
    const alarm = await eventually(async () => (await server.api('GET', '/api/v1/alarms?stationId=SC-1&active=true')).body.items[0]);
    expect(alarm).toMatchObject({ type: 'ProfileNotApplied', message: 'Charging profile not applied as expected', severity: 'major' });
    expect(alarm.details.predicted.chargingSchedulePeriod[0]).toMatchObject({ limit: 12 });
    expect(alarm.details.reported.chargingSchedulePeriod[0]).toMatchObject({ limit: 24 });
    expect((await server.api('POST', `/api/v1/alarms/${alarm.id}/clear`)).status).toBe(204);
    expect((await server.api('GET', '/api/v1/alarms?stationId=SC-1&active=true')).body.items).toEqual([]);
  });

  it('sends a charger that only takes W a profile converted from A, and one with too many periods merged', async () => {
    const station = await setUp('dc-150kw-depot');
    expect((await server.api('POST', '/api/v1/stations/SC-1/commands/SetChargingProfile', { connectorId: 0, csChargingProfiles: txDefault(7, 'A', [[0, 100]]) })).body).toEqual({
      status: 'Accepted',
    });
    expect(station.profiles[0]!.profile.chargingSchedule).toMatchObject({ chargingRateUnit: 'W', chargingSchedulePeriod: [{ startPeriod: 0, limit: 69000 }] });
    const installed = (await server.api('GET', '/api/v1/stations/SC-1/charging-profiles')).body.items;
    expect(installed[0].profile.chargingSchedule.chargingRateUnit).toBe('W');

    const many = Array.from({ length: 120 }, (_, i) => [i * 60, 50000 + (i % 7) * 1000] as [number, number]);
    expect((await server.api('POST', '/api/v1/stations/SC-1/commands/SetChargingProfile', { connectorId: 0, csChargingProfiles: txDefault(8, 'W', many) })).body).toEqual({
      status: 'Accepted',
    });
    const held = station.profiles.find((p) => p.profile.chargingProfileId === 8)!;
    expect(held.profile.chargingSchedule.chargingSchedulePeriod.length).toBeLessThanOrEqual(96);
  });
});
