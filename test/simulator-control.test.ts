import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildControlApi } from '../src/simulator/control-api.js';
import { Fleet } from '../src/simulator/fleet.js';
import { loadTemplate } from '../src/simulator/templates.js';
import { eventually, startCsms, type TestCsms } from './helpers/csms.js';

/** A TxDefaultProfile on connector 0 that caps every connector at `limitA` per phase. */
const defaultProfile = (id: number, limitA: number) => ({
  connectorId: 0,
  csChargingProfiles: {
    chargingProfileId: id,
    stackLevel: 0,
    chargingProfilePurpose: 'TxDefaultProfile',
    chargingProfileKind: 'Absolute',
    chargingSchedule: { startSchedule: '2020-01-01T00:00:00Z', chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: limitA }] },
  },
});

describe('simulated stations under the control API and the CSMS', () => {
  let server: TestCsms;
  let fleet: Fleet;
  let control: FastifyInstance;
  afterEach(async () => {
    await control?.close();
    fleet?.stop();
    await server?.stop();
  });

  async function setUp() {
    server = await startCsms({});
    await server.api('POST', '/api/v1/id-tags', { idTag: 'CARD', status: 'Accepted' });
    fleet = new Fleet({
      csmsUrl: server.ocppUrl,
      stations: 2,
      prefix: 'CTL-',
      template: loadTemplate('ac-22kw-wallbox'),
      scenario: 'none',
      seed: 1,
      // Twenty simulated seconds per real second, so a short charge moves the meter.
      speed: 20,
      start: new Date(),
      tickMs: 50,
      jobStepMs: 20,
    });
    fleet.start();
    control = await buildControlApi(fleet);
    await eventually(() => fleet.stations.every((s) => s.registration === 'Accepted'), 5000);
  }

  const ctl = async (method: string, url: string, payload?: object) => {
    const res = await control.inject({ method: method as 'GET', url, payload });
    return { status: res.statusCode, body: res.json() };
  };

  it('plugs an EV in, charges under the profile the CSMS sets, reports it in GetCompositeSchedule, and stops on unplug', async () => {
    await setUp();
    const plug = await ctl('POST', '/stations/CTL-1/connectors/1/plug', { vehicle: { idTag: 'CARD', acPhases: 3, acMaxCurrentA: 32 }, autoStart: true });
    expect(plug.status).toBe(200);
    const tx = await eventually(async () => (await server.api('GET', '/api/v1/transactions?stationId=CTL-1&active=true')).body.items[0]);
    await eventually(() => fleet.station('CTL-1')!.connector(1).powerW > 20000);

    const set = await server.api('POST', '/api/v1/stations/CTL-1/commands/SetChargingProfile', defaultProfile(1, 10));
    expect(set.body).toEqual({ status: 'Accepted' });
    // 10 A on three phases at 230 V.
    await eventually(() => Math.round(fleet.station('CTL-1')!.connector(1).powerW) === 6900);
    const view = (await ctl('GET', '/stations/CTL-1')).body;
    expect(view.connectors[0].limit).toEqual({ unit: 'A', value: 10 });
    expect(view.profiles).toHaveLength(1);

    const composite = await server.api('POST', '/api/v1/stations/CTL-1/commands/GetCompositeSchedule', { connectorId: 1, duration: 3600, chargingRateUnit: 'A' });
    expect(composite.body.status).toBe('Accepted');
    expect(composite.body.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 10, numberPhases: 3 }]);

    // A TxProfile without a matching transaction is refused, as OCPP 1.6 requires (TC_058_2 on the charger side).
    const wrongTx = await server.api('POST', '/api/v1/stations/CTL-1/commands/SetChargingProfile', {
      connectorId: 1,
      csChargingProfiles: { ...defaultProfile(2, 8).csChargingProfiles, chargingProfilePurpose: 'TxProfile', transactionId: tx.id + 1000 },
    });
    expect(wrongTx.body).toEqual({ status: 'Rejected' });

    expect((await ctl('POST', '/stations/CTL-1/connectors/1/unplug')).status).toBe(200);
    const stopped = await eventually(async () => {
      const t = (await server.api('GET', `/api/v1/transactions/${tx.id}`)).body;
      return t.active ? null : t;
    });
    expect(stopped.stopReason).toBe('EVDisconnected');
    expect(stopped.energyWh).toBeGreaterThan(0);
  });

  it('fault switches: rejects profiles, ignores limits, misreports the composite schedule, sends wrong measurands', async () => {
    await setUp();
    expect((await ctl('PUT', '/stations/CTL-2/faults', { rejectSetChargingProfile: true })).status).toBe(200);
    expect((await server.api('POST', '/api/v1/stations/CTL-2/commands/SetChargingProfile', defaultProfile(1, 10))).body).toEqual({ status: 'Rejected' });
    await ctl('PUT', '/stations/CTL-2/faults', { rejectSetChargingProfile: false, ignoreProfileLimit: true, wrongCompositeSchedule: true });
    expect((await server.api('POST', '/api/v1/stations/CTL-2/commands/SetChargingProfile', defaultProfile(1, 10))).body).toEqual({ status: 'Accepted' });
    const composite = await server.api('POST', '/api/v1/stations/CTL-2/commands/GetCompositeSchedule', { connectorId: 1, duration: 600, chargingRateUnit: 'A' });
    expect(composite.body.chargingSchedule.chargingSchedulePeriod[0].limit).toBe(20);
    await ctl('POST', '/stations/CTL-2/connectors/1/plug', { vehicle: { idTag: 'CARD', acPhases: 3, acMaxCurrentA: 32 } });
    await eventually(() => fleet.station('CTL-2')!.connector(1).powerW > 20000);
  });

  it('faults a connector, cuts and restores the connection, and 404s an unknown station', async () => {
    await setUp();
    const faulted = await ctl('POST', '/stations/CTL-1/connectors/1/fault', { errorCode: 'GroundFailure' });
    expect(faulted.body).toMatchObject({ status: 'Faulted', errorCode: 'GroundFailure' });
    await eventually(async () => (await server.api('GET', '/api/v1/stations/CTL-1')).body.connectors.find((c: any) => c.connectorId === 1)?.errorCode === 'GroundFailure');
    expect((await ctl('POST', '/stations/CTL-1/connectors/1/plug', {})).status).toBe(409);
    await ctl('POST', '/stations/CTL-1/connectors/1/fault', { errorCode: null });

    await ctl('POST', '/stations/CTL-1/connection', { online: false });
    await eventually(async () => !(await server.api('GET', '/api/v1/stations/CTL-1')).body.connected);
    await ctl('POST', '/stations/CTL-1/connection', { online: true });
    await eventually(async () => (await server.api('GET', '/api/v1/stations/CTL-1')).body.connected);
    await eventually(async () => (await server.api('GET', '/api/v1/stations/CTL-1')).body.connectors.find((c: any) => c.connectorId === 1)?.status === 'Available');

    expect((await ctl('GET', '/stations/NOPE')).status).toBe(404);
  });

  it('answers configuration, firmware and diagnostics like a real charger', async () => {
    await setUp();
    const all = (await server.api('POST', '/api/v1/stations/CTL-1/commands/GetConfiguration', {})).body;
    const keys = all.configurationKey.map((k: any) => k.key);
    expect(keys).toContain('MeterValueSampleInterval');
    expect(keys).not.toContain('AuthorizationKey');
    expect(all.configurationKey.find((k: any) => k.key === 'NumberOfConnectors')).toMatchObject({ readonly: true, value: '1' });
    const change = (key: string, value: string) => server.api('POST', '/api/v1/stations/CTL-1/commands/ChangeConfiguration', { key, value });
    expect((await change('MeterValueSampleInterval', '15')).body).toEqual({ status: 'Accepted' });
    expect((await change('MeterValueSampleInterval', 'soon')).body).toEqual({ status: 'Rejected' });
    expect((await change('NumberOfConnectors', '4')).body).toEqual({ status: 'Rejected' });
    expect((await change('NoSuchKey', '1')).body).toEqual({ status: 'NotSupported' });

    await server.api('POST', '/api/v1/stations/CTL-1/commands/UpdateFirmware', { location: 'https://example.invalid/fw.bin', retrieveDate: new Date().toISOString() });
    const firmware = await eventually(async () => {
      const events = (await server.api('GET', '/api/v1/stations/CTL-1/events?kind=FirmwareStatus')).body.items;
      return events.length === 4 ? events : null;
    });
    expect(firmware.map((e: any) => e.status).reverse()).toEqual(['Downloading', 'Downloaded', 'Installing', 'Installed']);
  });
});
