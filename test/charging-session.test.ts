import { afterEach, describe, expect, it } from 'vitest';
import { connectStation, eventually, startCsms, testDatabases, type TestCsms } from './helpers/csms.js';

describe.each(testDatabases)('a whole charging session through the API (%s)', (database) => {
  let server: TestCsms;
  afterEach(async () => server?.stop());

  it('boot → status → authorize → start → meter values every second → stop shows up with energy, status history and message log', async () => {
    server = await startCsms({ database });
    await server.api('POST', '/api/v1/id-tags', { idTag: 'TAG-1', status: 'Accepted' });
    const station = await connectStation(server.ocppUrl, 'CP-SESSION');

    const t0 = Date.parse('2026-03-01T10:00:00Z');
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();

    const boot = await station.call('BootNotification', { chargePointVendor: 'Ampyard', chargePointModel: 'TestBox' });
    expect(boot.status).toBe('Accepted');
    expect(boot.interval).toBeGreaterThan(0);
    await station.call('StatusNotification', { connectorId: 1, status: 'Available', errorCode: 'NoError', timestamp: at(-60) });

    const auth = await station.call('Authorize', { idTag: 'TAG-1' });
    expect(auth.idTagInfo.status).toBe('Accepted');
    await station.call('StatusNotification', { connectorId: 1, status: 'Preparing', errorCode: 'NoError', timestamp: at(-5) });
    const start = await station.call('StartTransaction', { connectorId: 1, idTag: 'TAG-1', meterStart: 100000, timestamp: at(0) });
    expect(start.idTagInfo.status).toBe('Accepted');
    await station.call('StatusNotification', { connectorId: 1, status: 'Charging', errorCode: 'NoError', timestamp: at(0) });

    // 11 kW for 10 s: 30.556 Wh per second; the register counts in Wh.
    for (let s = 1; s <= 10; s++) {
      await station.call('MeterValues', {
        connectorId: 1,
        transactionId: start.transactionId,
        meterValue: [
          {
            timestamp: at(s),
            sampledValue: [
              { value: String(100000 + Math.round(s * 30.556)), measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
              { value: '11.0', measurand: 'Power.Active.Import', unit: 'kW' },
              { value: '16', measurand: 'Current.Import', unit: 'A', phase: 'L1' },
            ],
          },
        ],
      });
    }

    const running = await server.api('GET', `/api/v1/transactions/${start.transactionId}`);
    expect(running.body.active).toBe(true);
    expect(running.body.energyWh).toBe(306);

    await station.call('StopTransaction', { transactionId: start.transactionId, meterStop: 100306, timestamp: at(11), idTag: 'TAG-1', reason: 'Local' });
    await station.call('StatusNotification', { connectorId: 1, status: 'Finishing', errorCode: 'NoError', timestamp: at(11) });
    await station.call('StatusNotification', { connectorId: 1, status: 'Available', errorCode: 'NoError', timestamp: at(20) });

    const list = await server.api('GET', '/api/v1/transactions?stationId=CP-SESSION');
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0]).toMatchObject({
      id: start.transactionId,
      stationId: 'CP-SESSION',
      connectorId: 1,
      idTag: 'TAG-1',
      startTime: at(0),
      stopTime: at(11),
      meterStart: 100000,
      meterStop: 100306,
      energyWh: 306,
      stopReason: 'Local',
    });

    const detail = await server.api('GET', `/api/v1/transactions/${start.transactionId}`);
    const power = detail.body.meterValues.filter((m: any) => m.measurand === 'Power.Active.Import');
    expect(power).toHaveLength(10);
    expect(power[0]).toMatchObject({ value: 11000, unit: 'W', rawValue: '11.0', rawUnit: 'kW' });
    expect(detail.body.statusHistory.map((s: any) => s.status)).toEqual(['Charging', 'Finishing']);

    const stationView = await server.api('GET', '/api/v1/stations/CP-SESSION');
    expect(stationView.body.connectors.find((c: any) => c.connectorId === 1)).toMatchObject({ status: 'Available', errorCode: 'NoError' });
    const history = await server.api('GET', '/api/v1/stations/CP-SESSION/status-history?connectorId=1');
    expect(history.body.items.map((s: any) => s.status)).toEqual(['Available', 'Preparing', 'Charging', 'Finishing', 'Available']);

    const log = await eventually(async () => {
      const r = await server.api('GET', '/api/v1/stations/CP-SESSION/messages?limit=1000');
      return r.body.items.length >= 2 * 18 ? r.body.items : null;
    });
    const actions = log.filter((m: any) => m.direction === 'in').map((m: any) => m.action).reverse();
    expect(actions.slice(0, 3)).toEqual(['BootNotification', 'StatusNotification', 'Authorize']);
    expect(log.filter((m: any) => m.direction === 'out' && m.messageType === 3)).toHaveLength(log.filter((m: any) => m.direction === 'in').length);

    await station.close();
  });

  it("a MeterValues naming another station's transaction is stored for its own station, not on that transaction", async () => {
    server = await startCsms({ database, registration: 'open' });
    await server.api('POST', '/api/v1/id-tags', { idTag: 'TAG-OWN', status: 'Accepted' });
    const owner = await connectStation(server.ocppUrl, 'CP-OWNER');
    const other = await connectStation(server.ocppUrl, 'CP-OTHER');
    for (const s of [owner, other]) await s.call('BootNotification', { chargePointVendor: 'Ampyard', chargePointModel: 'TestBox' });
    const start = await owner.call('StartTransaction', { connectorId: 1, idTag: 'TAG-OWN', meterStart: 0, timestamp: '2026-03-01T10:00:00.000Z' });
    const reading = (s: number, wh: number) => ({
      connectorId: 1,
      transactionId: start.transactionId,
      meterValue: [{ timestamp: new Date(Date.parse('2026-03-01T10:00:00Z') + s * 1000).toISOString(), sampledValue: [{ value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' }] }],
    });
    // Before and after the owner's own readings (which let the central system remember whose it is).
    await other.call('MeterValues', reading(1, 900000));
    await owner.call('MeterValues', reading(2, 50));
    await other.call('MeterValues', reading(3, 900100));

    const detail = await server.api('GET', `/api/v1/transactions/${start.transactionId}`);
    expect(detail.body.meterValues.map((m: any) => m.value)).toEqual([50]);
    expect(detail.body.energyWh).toBe(50);
    const others = await server.api('GET', '/api/v1/stations/CP-OTHER/meter-values');
    expect(others.status).toBe(200);
    const foreign = (others.body.items ?? others.body).filter((m: any) => m.measurand === 'Energy.Active.Import.Register');
    expect(foreign.map((m: any) => [m.value, m.transactionId])).toEqual(expect.arrayContaining([[900000, null], [900100, null]]));
    expect(foreign).toHaveLength(2);
    await owner.close();
    await other.close();
  });
});
