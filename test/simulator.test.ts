import { afterEach, describe, expect, it } from 'vitest';
import { Fleet } from '../src/simulator/fleet.js';
import { loadTemplate } from '../src/simulator/templates.js';
import type { VehicleSpec } from '../src/simulator/vehicle.js';
import { eventually, startCsms, testDatabases, type TestCsms } from './helpers/csms.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function vehicle(id: string, now: Date): VehicleSpec {
  return {
    id,
    idTag: id,
    batteryKwh: 60,
    arrivalSocPct: 20,
    targetSocPct: 100,
    acMaxCurrentA: 16,
    acPhases: 3,
    dcMaxPowerKw: 50,
    minAcCurrentA: 6,
    arrival: now,
    departure: new Date(now.getTime() + 12 * 3600_000),
  };
}

describe.each(testDatabases)('the simulator against the real CSMS (%s)', (database) => {
  let server: TestCsms;
  let fleet: Fleet | undefined;
  afterEach(async () => {
    fleet?.stop();
    await server?.stop();
  });

  it('50 stations boot, run transactions, go offline and come back: every transaction arrives once, with the right energy and every sample', async () => {
    server = await startCsms({ database, rateLimit: { perSecond: 1000, burst: 1000 } });
    fleet = new Fleet({
      csmsUrl: server.ocppUrl,
      stations: 50,
      prefix: 'FLEET-',
      template: loadTemplate('ac-2x11kw-post'),
      scenario: 'none',
      seed: 3,
      // One simulated minute per real second: a 60 s sample interval sends a sample every second.
      speed: 60,
      start: new Date(),
      tickMs: 100,
      reconnectMinMs: 100,
      reconnectMaxMs: 500,
      callTimeoutMs: 5000,
    });
    const tags = fleet.stations.flatMap((s) => [1, 2, 3].map((n) => `${s.id}-${n}`.slice(0, 20)));
    for (const idTag of tags) await server.csms.store.upsertIdTag({ idTag, status: 'Accepted', expiryDate: null, parentIdTag: null });
    fleet.start();
    await eventually(() => fleet!.stations.every((s) => s.registration === 'Accepted'), 15000);
    expect((await server.api('GET', '/api/v1/stations')).body.items.filter((s: any) => s.connected)).toHaveLength(50);

    for (const s of fleet.stations) s.plugIn(1, vehicle(`${s.id}-1`, fleet.clock.now()));
    await eventually(() => fleet!.stations.every((s) => s.connector(1).transaction?.id !== undefined), 10000);
    await sleep(2500);

    // 15 stations lose the network. They keep charging; 5 of them see their car leave, and 5 get a new car on connector 2.
    const offline = fleet.stations.slice(0, 15);
    for (const s of offline) s.cutConnection();
    await eventually(async () => (await server.api('GET', '/healthz')).body.connectedStations === 35, 5000);
    await sleep(1500);
    for (const s of offline.slice(0, 5)) await s.unplug(1);
    for (const s of offline.slice(5, 10)) s.plugIn(2, vehicle(`${s.id}-2`, fleet.clock.now()));
    await sleep(1500);
    expect(offline.every((s) => s.queuedMessages > 0)).toBe(true);
    for (const s of offline) s.restoreConnection();

    await sleep(1500);
    for (const s of fleet.stations) for (const c of s.connectors) if (c.vehicle) await s.unplug(c.connectorId);
    await eventually(() => fleet!.stations.every((s) => s.online && s.queuedMessages === 0), 20000, 100);

    const history = fleet.stations.flatMap((s) => s.transactionHistory.map((t) => ({ stationId: s.id, ...t })));
    expect(history).toHaveLength(55);
    const listed = (await server.api('GET', '/api/v1/transactions?limit=1000')).body.items;
    expect(listed).toHaveLength(55);
    expect(new Set(listed.map((t: any) => t.id)).size).toBe(55);

    for (const record of history) {
      expect(record.id).toBeDefined();
      const tx = (await server.api('GET', `/api/v1/transactions/${record.id}`)).body;
      expect(tx).toMatchObject({
        stationId: record.stationId,
        connectorId: record.connectorId,
        idTag: record.idTag,
        meterStart: record.meterStartWh,
        meterStop: record.meterStopWh,
        energyWh: record.meterStopWh! - record.meterStartWh,
        startTime: record.startedAt,
        stopTime: record.stoppedAt,
        active: false,
      });
      expect(tx.energyWh).toBeGreaterThan(0);
      const samples = tx.meterValues.filter((m: any) => m.measurand === 'Energy.Active.Import.Register' && m.context === 'Sample.Periodic');
      expect(samples).toHaveLength(record.samples);
      // Samples arrive in order of their own timestamps and never run backwards.
      const values = samples.map((m: any) => m.value);
      expect(values).toEqual([...values].sort((a: number, b: number) => a - b));
    }
  }, 90000);
});
