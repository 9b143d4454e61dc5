import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OcppTestClient } from './helpers/csms.js';
import { connectStation, eventually, startCsms, testDatabases, type TestCsms } from './helpers/csms.js';

/**
 * OCPP 1.6 Core conformance, the OCTT cases where the central system is under test (OCPP-NOTES §1).
 * Each test plays the charger of its OCTT case: it sends what that charger sends and answers the
 * CSMS's CALLs through handlers; the operator acts through the REST API. The assertions are what the
 * CSMS must do: its answers to the charger, the command it sends, and what the API shows afterwards.
 */

const HEARTBEAT_S = 120;

/** Id tags the operator has registered before every test. */
const TAG = {
  valid: 'TAG-VALID',
  invalid: 'TAG-INVALID',
  blocked: 'TAG-BLOCKED',
  expired: 'TAG-EXPIRED',
  /** Accepted once, but its expiry date has passed. */
  lapsed: 'TAG-LAPSED',
  unknown: 'TAG-NOBODY-KNOWS',
};
const LAPSED_ON = '2024-01-01T00:00:00.000Z';

type Answers = Record<string, (request: any) => unknown>;

interface Charger {
  id: string;
  client: OcppTestClient;
  /** Every CALL the CSMS sent to this charger, in order. */
  received: Array<{ action: string; payload: any }>;
  call(action: string, payload: unknown): Promise<any>;
}

/** The charger's own clock: t(s) is s seconds after a fixed moment an hour ago, as OCPP text. */
function timeline(): (s: number) => string {
  const base = Math.floor(Date.now() / 1000) * 1000 - 3600_000;
  return (s) => new Date(base + s * 1000).toISOString();
}

/** A charger's configuration keys, answering GetConfiguration and ChangeConfiguration as a charger does. */
function configurationKeys(): Answers {
  const keys = new Map<string, { readonly: boolean; value: string; integer: boolean }>([
    ['HeartbeatInterval', { readonly: false, value: String(HEARTBEAT_S), integer: true }],
    ['ConnectionTimeOut', { readonly: false, value: '60', integer: true }],
    ['MeterValueSampleInterval', { readonly: false, value: '300', integer: true }],
    ['NumberOfConnectors', { readonly: true, value: '1', integer: true }],
    ['SupportedFeatureProfiles', { readonly: true, value: 'Core', integer: false }],
  ]);
  const view = (key: string) => ({ key, readonly: keys.get(key)!.readonly, value: keys.get(key)!.value });
  return {
    GetConfiguration: ({ key }: { key?: string[] }) => {
      if (!key || key.length === 0) return { configurationKey: [...keys.keys()].map(view) };
      const unknownKey = key.filter((k) => !keys.has(k));
      return { configurationKey: key.filter((k) => keys.has(k)).map(view), ...(unknownKey.length ? { unknownKey } : {}) };
    },
    ChangeConfiguration: ({ key, value }: { key: string; value: string }) => {
      const entry = keys.get(key);
      if (!entry) return { status: 'NotSupported' };
      if (entry.readonly || (entry.integer && !/^\d+$/.test(value))) return { status: 'Rejected' };
      entry.value = value;
      return { status: 'Accepted' };
    },
  };
}

describe.each(testDatabases)('OCTT 1.6 Core, central system under test (%s)', (database) => {
  let server: TestCsms;
  let clients: OcppTestClient[] = [];

  beforeEach(async () => {
    server = await startCsms({ database, heartbeatIntervalS: HEARTBEAT_S });
    const tags = [
      { idTag: TAG.valid, status: 'Accepted' },
      { idTag: TAG.invalid, status: 'Invalid' },
      { idTag: TAG.blocked, status: 'Blocked' },
      { idTag: TAG.expired, status: 'Expired' },
      { idTag: TAG.lapsed, status: 'Accepted', expiryDate: LAPSED_ON },
    ];
    for (const tag of tags) expect((await server.api('POST', '/api/v1/id-tags', tag)).status).toBe(201);
  });

  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close({ force: true })));
    clients = [];
    await server?.stop();
  });

  // the charger's side

  async function charger(id: string, answers: Answers = {}): Promise<Charger> {
    const received: Charger['received'] = [];
    const handlers = Object.fromEntries(
      Object.entries(answers).map(([action, answer]) => [
        action,
        (payload: any) => {
          received.push({ action, payload });
          return answer(payload);
        },
      ]),
    );
    const client = await connectStation(server.ocppUrl, id, { handlers });
    clients.push(client);
    return { id, client, received, call: (action, payload) => client.call(action, payload) };
  }

  const status = (cp: Charger, connectorId: number, state: string, timestamp: string, errorCode = 'NoError') =>
    cp.call('StatusNotification', { connectorId, status: state, errorCode, timestamp });

  /** BootNotification, which must be Accepted, then the charger (connector 0) and each connector report Available. */
  async function boot(cp: Charger, at: string, connectors = 1) {
    const conf = await cp.call('BootNotification', { chargePointVendor: 'Ampyard', chargePointModel: 'TestBox', chargePointSerialNumber: `SN-${cp.id}`, firmwareVersion: '1.0.0' });
    expect(conf.status).toBe('Accepted');
    for (let c = 0; c <= connectors; c++) await status(cp, c, 'Available', at);
    return conf;
  }

  /** Connects a charger and boots it: the state every case starts from. */
  async function bootedCharger(id: string, t: (s: number) => string, answers: Answers = {}): Promise<Charger> {
    const cp = await charger(id, answers);
    await boot(cp, t(-600));
    return cp;
  }

  /** The OCTT reusable state "Charging": plug in, authorize, start, charge 250 Wh. Returns the transaction id. */
  async function startCharging(cp: Charger, t: (s: number) => string, meterStart = 10_000): Promise<number> {
    await status(cp, 1, 'Preparing', t(0));
    expect((await cp.call('Authorize', { idTag: TAG.valid })).idTagInfo.status).toBe('Accepted');
    const start = await cp.call('StartTransaction', { connectorId: 1, idTag: TAG.valid, meterStart, timestamp: t(1) });
    expect(start.idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Charging', t(1));
    await meterValue(cp, start.transactionId, t(60), meterStart + 250);
    return start.transactionId;
  }

  const meterValue = (cp: Charger, transactionId: number, timestamp: string, wh: number) =>
    cp.call('MeterValues', {
      connectorId: 1,
      transactionId,
      meterValue: [{ timestamp, sampledValue: [{ value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' }] }],
    });

  /** A charger that loses power or its connection: the CSMS must notice it is gone. */
  async function goOffline(cp: Charger) {
    await cp.client.close({ force: true });
    await eventually(async () => (await station(cp.id)).connected === false);
  }

  // the operator's side

  const command = (stationId: string, action: string, body: unknown, timeoutMs?: number) =>
    server.api('POST', `/api/v1/stations/${stationId}/commands/${action}${timeoutMs ? `?timeoutMs=${timeoutMs}` : ''}`, body);
  const station = async (id: string) => (await server.api('GET', `/api/v1/stations/${id}`)).body;
  const connector = async (id: string, connectorId: number) => (await station(id)).connectors.find((c: any) => c.connectorId === connectorId);
  const transactions = async (id: string) => (await server.api('GET', `/api/v1/transactions?stationId=${id}`)).body.items;
  const transaction = async (id: number) => (await server.api('GET', `/api/v1/transactions/${id}`)).body;
  const statusHistory = async (id: string, connectorId: number) =>
    (await server.api('GET', `/api/v1/stations/${id}/status-history?connectorId=${connectorId}`)).body.items.map((s: any) => s.status);

  // charging sessions started at the charger

  it('TC_001_CSMS cold boot', async () => {
    const cp = await charger('CP-001');
    const before = Date.now();
    const conf = await cp.call('BootNotification', { chargePointVendor: 'Ampyard', chargePointModel: 'TestBox', chargePointSerialNumber: 'SN-001', firmwareVersion: '1.2.3' });
    expect(conf).toEqual({ status: 'Accepted', interval: HEARTBEAT_S, currentTime: expect.any(String) });
    expect(Date.parse(conf.currentTime)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(conf.currentTime)).toBeLessThanOrEqual(Date.now() + 1000);

    const t = timeline();
    for (const c of [0, 1, 2]) expect(await status(cp, c, 'Available', t(0))).toEqual({});
    const heartbeat = await cp.call('Heartbeat', {});
    expect(Math.abs(Date.parse(heartbeat.currentTime) - Date.now())).toBeLessThan(5000);

    const view = await station('CP-001');
    expect(view).toMatchObject({ connected: true, registration: 'accepted', vendor: 'Ampyard', model: 'TestBox', serialNumber: 'SN-001', firmwareVersion: '1.2.3' });
    expect(Date.parse(view.lastBootAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(view.connectors.map((c: any) => [c.connectorId, c.status, c.since])).toEqual([
      [0, 'Available', t(0)],
      [1, 'Available', t(0)],
      [2, 'Available', t(0)],
    ]);
  });

  it('TC_003_CSMS regular charging session, plug-in first', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-003', t);
    await status(cp, 1, 'Preparing', t(0));
    const auth = await cp.call('Authorize', { idTag: TAG.valid });
    expect(auth.idTagInfo).toEqual({ status: 'Accepted' });
    const start = await cp.call('StartTransaction', { connectorId: 1, idTag: TAG.valid, meterStart: 5_000, timestamp: t(2) });
    expect(start.idTagInfo.status).toBe('Accepted');
    expect(Number.isInteger(start.transactionId)).toBe(true);
    await status(cp, 1, 'Charging', t(2));
    await meterValue(cp, start.transactionId, t(62), 5_180);

    expect(await transactions('CP-003')).toEqual([
      expect.objectContaining({ id: start.transactionId, connectorId: 1, idTag: TAG.valid, startTime: t(2), meterStart: 5_000, energyWh: 180, active: true, stopTime: null }),
    ]);
    expect(await connector('CP-003', 1)).toMatchObject({ status: 'Charging', since: t(2) });
    expect(await statusHistory('CP-003', 1)).toEqual(['Available', 'Preparing', 'Charging']);
  });

  it('TC_004_1_CSMS regular charging session, identification first', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-004-1', t);
    expect((await cp.call('Authorize', { idTag: TAG.valid })).idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Preparing', t(5));
    const start = await cp.call('StartTransaction', { connectorId: 1, idTag: TAG.valid, meterStart: 0, timestamp: t(6) });
    expect(start.idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Charging', t(6));

    expect(await transactions('CP-004-1')).toEqual([expect.objectContaining({ id: start.transactionId, idTag: TAG.valid, startTime: t(6), active: true })]);
    expect(await connector('CP-004-1', 1)).toMatchObject({ status: 'Charging' });
  });

  it('TC_004_2_CSMS identification first, connection time-out', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-004-2', t);
    expect((await cp.call('Authorize', { idTag: TAG.valid })).idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Preparing', t(0));
    // ConnectionTimeOut passes without a cable: the charger gives up and never starts a transaction.
    await status(cp, 1, 'Available', t(60));

    expect(await transactions('CP-004-2')).toEqual([]);
    expect(await connector('CP-004-2', 1)).toMatchObject({ status: 'Available', since: t(60) });
    expect(await statusHistory('CP-004-2', 1)).toEqual(['Available', 'Preparing', 'Available']);
  });

  it('TC_005_1_CSMS EV side disconnected', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-005-1', t);
    const txId = await startCharging(cp, t);
    await status(cp, 1, 'SuspendedEV', t(100));
    const stop = await cp.call('StopTransaction', { transactionId: txId, meterStop: 10_300, timestamp: t(101), reason: 'EVDisconnected' });
    expect(stop).toEqual({});
    await status(cp, 1, 'Finishing', t(101));
    await status(cp, 1, 'Available', t(120));

    expect(await transaction(txId)).toMatchObject({ active: false, stopTime: t(101), meterStop: 10_300, energyWh: 300, stopReason: 'EVDisconnected' });
    expect(await connector('CP-005-1', 1)).toMatchObject({ status: 'Available' });
    expect(await statusHistory('CP-005-1', 1)).toEqual(['Available', 'Preparing', 'Charging', 'SuspendedEV', 'Finishing', 'Available']);
  });

  it('TC_007_CSMS regular start, cached id', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-007', t);
    await status(cp, 1, 'Preparing', t(0));
    // The charger knows the id from its authorization cache and starts without Authorize.
    const start = await cp.call('StartTransaction', { connectorId: 1, idTag: TAG.valid, meterStart: 700, timestamp: t(1) });
    expect(start.idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Charging', t(1));

    expect(await transactions('CP-007')).toEqual([
      expect.objectContaining({ id: start.transactionId, idTag: TAG.valid, authorization: 'Accepted', startTime: t(1), meterStart: 700, active: true }),
    ]);
    expect(await connector('CP-007', 1)).toMatchObject({ status: 'Charging' });
  });

  it('TC_007_CSMS cached id that the central system has blocked since: StartTransaction.conf says Blocked', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-007-B', t);
    await status(cp, 1, 'Preparing', t(0));
    // The charger's cache still says Accepted; the CSMS must answer with what it knows now.
    const start = await cp.call('StartTransaction', { connectorId: 1, idTag: TAG.blocked, meterStart: 700, timestamp: t(1) });
    expect(start.idTagInfo.status).toBe('Blocked');
    const stop = await cp.call('StopTransaction', { transactionId: start.transactionId, meterStop: 705, timestamp: t(3), reason: 'DeAuthorized' });
    expect(stop).toEqual({});

    expect(await transactions('CP-007-B')).toEqual([
      expect.objectContaining({ id: start.transactionId, idTag: TAG.blocked, authorization: 'Blocked', stopTime: t(3), energyWh: 5, stopReason: 'DeAuthorized', active: false }),
    ]);
  });

  // remote start and stop

  it('TC_010_CSMS remote start, cable plugged in first', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-010', t, { RemoteStartTransaction: () => ({ status: 'Accepted' }) });
    await status(cp, 1, 'Preparing', t(0));

    const remote = await command('CP-010', 'RemoteStartTransaction', { connectorId: 1, idTag: TAG.valid });
    expect(remote).toEqual({ status: 200, body: { status: 'Accepted' } });
    expect(cp.received).toEqual([{ action: 'RemoteStartTransaction', payload: { connectorId: 1, idTag: TAG.valid } }]);

    expect((await cp.call('Authorize', { idTag: TAG.valid })).idTagInfo.status).toBe('Accepted');
    const start = await cp.call('StartTransaction', { connectorId: 1, idTag: TAG.valid, meterStart: 0, timestamp: t(3) });
    expect(start.idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Charging', t(3));

    expect(await transactions('CP-010')).toEqual([expect.objectContaining({ id: start.transactionId, idTag: TAG.valid, connectorId: 1, active: true })]);
    expect(await statusHistory('CP-010', 1)).toEqual(['Available', 'Preparing', 'Charging']);
  });

  it('TC_011_1_CSMS remote start first', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-011-1', t, { RemoteStartTransaction: () => ({ status: 'Accepted' }) });

    const remote = await command('CP-011-1', 'RemoteStartTransaction', { connectorId: 1, idTag: TAG.valid });
    expect(remote).toEqual({ status: 200, body: { status: 'Accepted' } });
    expect(cp.received.map((r) => r.payload)).toEqual([{ connectorId: 1, idTag: TAG.valid }]);

    expect((await cp.call('Authorize', { idTag: TAG.valid })).idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Preparing', t(0));
    const start = await cp.call('StartTransaction', { connectorId: 1, idTag: TAG.valid, meterStart: 42, timestamp: t(20) });
    expect(start.idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Charging', t(20));

    expect(await transactions('CP-011-1')).toEqual([expect.objectContaining({ id: start.transactionId, startTime: t(20), meterStart: 42, active: true })]);
    expect(await connector('CP-011-1', 1)).toMatchObject({ status: 'Charging' });
  });

  it('TC_011_2_CSMS remote start time-out', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-011-2', t, { RemoteStartTransaction: () => ({ status: 'Accepted' }) });

    expect((await command('CP-011-2', 'RemoteStartTransaction', { connectorId: 1, idTag: TAG.valid })).body).toEqual({ status: 'Accepted' });
    expect((await cp.call('Authorize', { idTag: TAG.valid })).idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Preparing', t(0));
    // Nobody plugs in before ConnectionTimeOut: the charger returns to Available, no transaction.
    await status(cp, 1, 'Available', t(60));

    expect(await transactions('CP-011-2')).toEqual([]);
    expect(await connector('CP-011-2', 1)).toMatchObject({ status: 'Available', since: t(60) });
    expect(await statusHistory('CP-011-2', 1)).toEqual(['Available', 'Preparing', 'Available']);
  });

  it('TC_012_CSMS remote stop', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-012', t, { RemoteStopTransaction: () => ({ status: 'Accepted' }) });
    const txId = await startCharging(cp, t);

    const remote = await command('CP-012', 'RemoteStopTransaction', { transactionId: txId });
    expect(remote).toEqual({ status: 200, body: { status: 'Accepted' } });
    expect(cp.received).toEqual([{ action: 'RemoteStopTransaction', payload: { transactionId: txId } }]);

    const stop = await cp.call('StopTransaction', { transactionId: txId, idTag: TAG.valid, meterStop: 10_400, timestamp: t(200), reason: 'Remote' });
    expect(stop.idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Finishing', t(200));
    await status(cp, 1, 'Available', t(230));

    expect(await transactions('CP-012')).toEqual([
      expect.objectContaining({ id: txId, active: false, startTime: t(1), stopTime: t(200), meterStart: 10_000, meterStop: 10_400, energyWh: 400, stopReason: 'Remote' }),
    ]);
    expect(await statusHistory('CP-012', 1)).toEqual(['Available', 'Preparing', 'Charging', 'Finishing', 'Available']);
  });

  it('TC_026_CSMS remote start rejected', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-026', t, { RemoteStartTransaction: () => ({ status: 'Rejected' }) });

    const remote = await command('CP-026', 'RemoteStartTransaction', { connectorId: 1, idTag: TAG.valid });
    expect(remote).toEqual({ status: 200, body: { status: 'Rejected' } });
    expect(cp.received.map((r) => r.payload)).toEqual([{ connectorId: 1, idTag: TAG.valid }]);
    expect(await transactions('CP-026')).toEqual([]);
    expect(await connector('CP-026', 1)).toMatchObject({ status: 'Available' });
  });

  it('TC_028_CSMS remote stop rejected', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-028', t, { RemoteStopTransaction: () => ({ status: 'Rejected' }) });
    const txId = await startCharging(cp, t);

    const remote = await command('CP-028', 'RemoteStopTransaction', { transactionId: txId });
    expect(remote).toEqual({ status: 200, body: { status: 'Rejected' } });
    expect(cp.received.map((r) => r.payload)).toEqual([{ transactionId: txId }]);
    // The charger did not stop, so neither does the transaction.
    expect(await transaction(txId)).toMatchObject({ active: true, stopTime: null, stopReason: null, energyWh: 250 });
    expect(await connector('CP-028', 1)).toMatchObject({ status: 'Charging' });
  });

  // reset

  it.each([
    ['TC_013_CSMS hard reset', 'Hard'],
    ['TC_014_CSMS soft reset', 'Soft'],
  ])('%s', async (_name, type) => {
    const id = `CP-RESET-${type}`;
    const t = timeline();
    const cp = await bootedCharger(id, t, { Reset: () => ({ status: 'Accepted' }) });

    const reset = await command(id, 'Reset', { type });
    expect(reset).toEqual({ status: 200, body: { status: 'Accepted' } });
    expect(cp.received).toEqual([{ action: 'Reset', payload: { type } }]);

    // The charger restarts: while it is down, commands cannot reach it.
    await goOffline(cp);
    expect((await command(id, 'Reset', { type })).status).toBe(409);

    const rebooted = await charger(id);
    const before = Date.now();
    await boot(rebooted, t(10));
    const view = await station(id);
    expect(view.connected).toBe(true);
    expect(Date.parse(view.lastBootAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(view.connectors.map((c: any) => [c.connectorId, c.status, c.since])).toEqual([
      [0, 'Available', t(10)],
      [1, 'Available', t(10)],
    ]);
  });

  it('TC_013_CSMS hard reset: a charger that never answers gives 504 within timeoutMs, and later commands still get through', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-013-SILENT', t, {
      Reset: () => new Promise(() => {}),
      ClearCache: () => ({ status: 'Accepted' }),
    });

    const started = Date.now();
    const reset = await command('CP-013-SILENT', 'Reset', { type: 'Hard' }, 300);
    expect(reset.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(cp.received.map((r) => r.action)).toEqual(['Reset']);

    // The unanswered call must not block the station's command queue.
    expect(await command('CP-013-SILENT', 'ClearCache', {}, 2000)).toEqual({ status: 200, body: { status: 'Accepted' } });
  });

  // unlock connector

  it.each([
    ['TC_017_1_CSMS unlock, no session, not fixed cable', 1, 'Unlocked'],
    ['TC_017_2_CSMS unlock, no session, fixed cable', 1, 'NotSupported'],
    ['TC_030_CSMS unlock failure', 1, 'UnlockFailed'],
    ['TC_031_CSMS unknown connector', 9, 'NotSupported'],
  ])('%s', async (_name, connectorId, answer) => {
    const t = timeline();
    const cp = await bootedCharger('CP-UNLOCK', t, { UnlockConnector: () => ({ status: answer }) });

    const unlock = await command('CP-UNLOCK', 'UnlockConnector', { connectorId });
    expect(unlock).toEqual({ status: 200, body: { status: answer } });
    expect(cp.received).toEqual([{ action: 'UnlockConnector', payload: { connectorId } }]);
    expect(await transactions('CP-UNLOCK')).toEqual([]);
    expect(await connector('CP-UNLOCK', 1)).toMatchObject({ status: 'Available' });
  });

  it('TC_018_1_CSMS unlock with session', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-018-1', t, { UnlockConnector: () => ({ status: 'Unlocked' }) });
    const txId = await startCharging(cp, t);

    expect(await command('CP-018-1', 'UnlockConnector', { connectorId: 1 })).toEqual({ status: 200, body: { status: 'Unlocked' } });
    expect(cp.received.map((r) => r.payload)).toEqual([{ connectorId: 1 }]);
    // The charger ends the transaction first, then unlocks.
    const stop = await cp.call('StopTransaction', { transactionId: txId, meterStop: 10_260, timestamp: t(90), reason: 'UnlockCommand' });
    expect(stop).toEqual({});
    await status(cp, 1, 'Finishing', t(90));
    await status(cp, 1, 'Available', t(100));

    expect(await transaction(txId)).toMatchObject({ active: false, stopTime: t(90), energyWh: 260, stopReason: 'UnlockCommand' });
    expect(await statusHistory('CP-018-1', 1)).toEqual(['Available', 'Preparing', 'Charging', 'Finishing', 'Available']);
  });

  // configuration

  it('TC_019_1_CSMS retrieve all configuration keys', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-019-1', t, configurationKeys());

    const all = await command('CP-019-1', 'GetConfiguration', {});
    expect(all.status).toBe(200);
    expect(all.body.configurationKey).toEqual([
      { key: 'HeartbeatInterval', readonly: false, value: String(HEARTBEAT_S) },
      { key: 'ConnectionTimeOut', readonly: false, value: '60' },
      { key: 'MeterValueSampleInterval', readonly: false, value: '300' },
      { key: 'NumberOfConnectors', readonly: true, value: '1' },
      { key: 'SupportedFeatureProfiles', readonly: true, value: 'Core' },
    ]);
    expect(all.body.unknownKey ?? []).toEqual([]);
    expect(cp.received).toEqual([{ action: 'GetConfiguration', payload: {} }]);
  });

  it('TC_019_2_CSMS retrieve a specific key', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-019-2', t, configurationKeys());

    const one = await command('CP-019-2', 'GetConfiguration', { key: ['MeterValueSampleInterval'] });
    expect(one).toEqual({ status: 200, body: { configurationKey: [{ key: 'MeterValueSampleInterval', readonly: false, value: '300' }] } });
    expect(cp.received[0]).toEqual({ action: 'GetConfiguration', payload: { key: ['MeterValueSampleInterval'] } });

    const unknown = await command('CP-019-2', 'GetConfiguration', { key: ['NoSuchKey'] });
    expect(unknown).toEqual({ status: 200, body: { configurationKey: [], unknownKey: ['NoSuchKey'] } });
  });

  it('TC_021_CSMS change configuration', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-021', t, configurationKeys());

    const change = await command('CP-021', 'ChangeConfiguration', { key: 'MeterValueSampleInterval', value: '60' });
    expect(change).toEqual({ status: 200, body: { status: 'Accepted' } });
    expect(cp.received).toEqual([{ action: 'ChangeConfiguration', payload: { key: 'MeterValueSampleInterval', value: '60' } }]);
    const readBack = await command('CP-021', 'GetConfiguration', { key: ['MeterValueSampleInterval'] });
    expect(readBack.body.configurationKey).toEqual([{ key: 'MeterValueSampleInterval', readonly: false, value: '60' }]);
  });

  it('TC_040_1_CSMS configuration key not supported', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-040-1', t, configurationKeys());

    const change = await command('CP-040-1', 'ChangeConfiguration', { key: 'NoSuchKey', value: '1' });
    expect(change).toEqual({ status: 200, body: { status: 'NotSupported' } });
    expect(cp.received.map((r) => r.payload)).toEqual([{ key: 'NoSuchKey', value: '1' }]);
  });

  it('TC_040_2_CSMS configuration key invalid value', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-040-2', t, configurationKeys());

    const change = await command('CP-040-2', 'ChangeConfiguration', { key: 'MeterValueSampleInterval', value: 'often' });
    expect(change).toEqual({ status: 200, body: { status: 'Rejected' } });
    expect(cp.received.map((r) => r.payload)).toEqual([{ key: 'MeterValueSampleInterval', value: 'often' }]);
    const unchanged = await command('CP-040-2', 'GetConfiguration', { key: ['MeterValueSampleInterval'] });
    expect(unchanged.body.configurationKey).toEqual([{ key: 'MeterValueSampleInterval', readonly: false, value: '300' }]);
  });

  // authorization

  it('TC_023_1_CSMS authorize invalid', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-023-1', t);
    expect(await cp.call('Authorize', { idTag: TAG.unknown })).toEqual({ idTagInfo: { status: 'Invalid' } });
    expect(await cp.call('Authorize', { idTag: TAG.invalid })).toEqual({ idTagInfo: { status: 'Invalid' } });
    expect(await transactions('CP-023-1')).toEqual([]);
  });

  it('TC_023_2_CSMS authorize expired', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-023-2', t);
    expect((await cp.call('Authorize', { idTag: TAG.expired })).idTagInfo).toEqual({ status: 'Expired' });
    // An id that was Accepted until its expiry date is Expired once that date has passed.
    expect((await cp.call('Authorize', { idTag: TAG.lapsed })).idTagInfo).toEqual({ status: 'Expired', expiryDate: LAPSED_ON });
    expect(await transactions('CP-023-2')).toEqual([]);
  });

  it('TC_023_3_CSMS authorize blocked', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-023-3', t);
    expect(await cp.call('Authorize', { idTag: TAG.blocked })).toEqual({ idTagInfo: { status: 'Blocked' } });
    expect(await transactions('CP-023-3')).toEqual([]);
  });

  it('TC_024_CSMS lock failure', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-024', t);
    expect((await cp.call('Authorize', { idTag: TAG.valid })).idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Preparing', t(0));
    // The cable is plugged in halfway: the lock cannot close.
    expect(await status(cp, 1, 'Faulted', t(5), 'ConnectorLockFailure')).toEqual({});

    expect(await connector('CP-024', 1)).toMatchObject({ status: 'Faulted', errorCode: 'ConnectorLockFailure', since: t(5) });
    expect(await statusHistory('CP-024', 1)).toEqual(['Available', 'Preparing', 'Faulted']);
    expect(await transactions('CP-024')).toEqual([]);
  });

  // power failure and offline operation

  it('TC_032_1_CSMS power failure at boot, stop transactions', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-032-1', t, { ClearCache: () => ({ status: 'Rejected' }) });
    const txId = await startCharging(cp, t);
    await meterValue(cp, txId, t(120), 10_500);

    // Power lost at t(125) and back. The old socket was never closed (the CSMS cannot know it is dead):
    // the new connection takes over. The charger boots, reports its connectors, then ends the transaction.
    const rebooted = await charger('CP-032-1', { ClearCache: () => ({ status: 'Accepted' }) });
    const conf = await rebooted.call('BootNotification', { chargePointVendor: 'Ampyard', chargePointModel: 'TestBox' });
    expect(conf.status).toBe('Accepted');
    await status(rebooted, 0, 'Available', t(300));
    await status(rebooted, 1, 'Finishing', t(300));
    const stop = await rebooted.call('StopTransaction', { transactionId: txId, meterStop: 10_520, timestamp: t(125), reason: 'PowerLoss' });
    expect(stop).toEqual({});

    expect(await transactions('CP-032-1')).toEqual([
      expect.objectContaining({ id: txId, active: false, startTime: t(1), stopTime: t(125), meterStop: 10_520, energyWh: 520, stopReason: 'PowerLoss' }),
    ]);
    expect(await connector('CP-032-1', 1)).toMatchObject({ status: 'Finishing', since: t(300) });
    // Commands now reach the rebooted charger, not the dead connection.
    expect(await command('CP-032-1', 'ClearCache', {}, 2000)).toEqual({ status: 200, body: { status: 'Accepted' } });
    expect(rebooted.received.map((r) => r.action)).toEqual(['ClearCache']);
    expect(cp.received).toEqual([]);
  });

  it('TC_037_1_CSMS offline start, valid id', async () => {
    const t = timeline();
    const online = await bootedCharger('CP-037-1', t);
    await goOffline(online);

    // Offline, the driver starts at t(0); the charger sends the queued messages once it is back.
    const cp = await charger('CP-037-1');
    const start = await cp.call('StartTransaction', { connectorId: 1, idTag: TAG.valid, meterStart: 2_000, timestamp: t(0) });
    expect(start.idTagInfo.status).toBe('Accepted');
    await status(cp, 1, 'Charging', t(0));
    await meterValue(cp, start.transactionId, t(300), 2_900);

    expect(await transactions('CP-037-1')).toEqual([
      expect.objectContaining({ id: start.transactionId, idTag: TAG.valid, authorization: 'Accepted', startTime: t(0), meterStart: 2_000, energyWh: 900, active: true }),
    ]);
    const detail = await transaction(start.transactionId);
    expect(detail.meterValues.map((m: any) => [m.timestamp, m.value])).toEqual([[t(300), 2_900]]);
    expect(await connector('CP-037-1', 1)).toMatchObject({ status: 'Charging', since: t(0) });
  });

  it('TC_037_3_CSMS offline start, invalid id', async () => {
    const t = timeline();
    const online = await bootedCharger('CP-037-3', t);
    await goOffline(online);

    const cp = await charger('CP-037-3');
    const start = await cp.call('StartTransaction', { connectorId: 1, idTag: TAG.unknown, meterStart: 3_000, timestamp: t(0) });
    expect(start.idTagInfo.status).toBe('Invalid');
    expect(Number.isInteger(start.transactionId)).toBe(true);
    await status(cp, 1, 'Charging', t(0));
    // Told the id is invalid, the charger ends the transaction it began offline (StopTransactionOnInvalidId).
    const stop = await cp.call('StopTransaction', { transactionId: start.transactionId, meterStop: 3_050, timestamp: t(400), reason: 'DeAuthorized' });
    expect(stop).toEqual({});
    await status(cp, 1, 'Finishing', t(400));

    expect(await transactions('CP-037-3')).toEqual([
      expect.objectContaining({
        id: start.transactionId,
        idTag: TAG.unknown,
        authorization: 'Invalid',
        startTime: t(0),
        stopTime: t(400),
        energyWh: 50,
        stopReason: 'DeAuthorized',
        active: false,
      }),
    ]);
  });

  it('TC_039_CSMS offline transaction', async () => {
    const t = timeline();
    const online = await bootedCharger('CP-039', t);
    await goOffline(online);

    // Started and stopped while offline; both arrive after the connection is back.
    const cp = await charger('CP-039');
    const start = await cp.call('StartTransaction', { connectorId: 1, idTag: TAG.valid, meterStart: 8_000, timestamp: t(0) });
    expect(start.idTagInfo.status).toBe('Accepted');
    const stop = await cp.call('StopTransaction', {
      transactionId: start.transactionId,
      idTag: TAG.valid,
      meterStop: 8_600,
      timestamp: t(600),
      reason: 'Local',
      transactionData: [
        { timestamp: t(0), sampledValue: [{ value: '8000', measurand: 'Energy.Active.Import.Register', unit: 'Wh', context: 'Transaction.Begin' }] },
        { timestamp: t(600), sampledValue: [{ value: '8.6', measurand: 'Energy.Active.Import.Register', unit: 'kWh', context: 'Transaction.End' }] },
      ],
    });
    expect(stop.idTagInfo.status).toBe('Accepted');

    expect(await transactions('CP-039')).toEqual([
      expect.objectContaining({ id: start.transactionId, startTime: t(0), stopTime: t(600), meterStart: 8_000, meterStop: 8_600, energyWh: 600, stopReason: 'Local', active: false }),
    ]);
    const detail = await transaction(start.transactionId);
    expect(detail.meterValues.map((m: any) => [m.timestamp, m.value, m.unit, m.context])).toEqual([
      [t(0), 8_000, 'Wh', 'Transaction.Begin'],
      [t(600), 8_600, 'Wh', 'Transaction.End'],
    ]);
  });

  it('TC_039_CSMS offline transaction: a queued StartTransaction sent again after its answer was lost is recorded once', async () => {
    const t = timeline();
    const online = await bootedCharger('CP-039-R', t);
    await goOffline(online);

    const request = { connectorId: 1, idTag: TAG.valid, meterStart: 100, timestamp: t(0) };
    const first = await (await charger('CP-039-R')).call('StartTransaction', request);
    // The connection drops before the charger has the answer, so it keeps the message queued and sends it again.
    const again = await (await charger('CP-039-R')).call('StartTransaction', request);
    expect(again).toEqual(first);

    expect(await transactions('CP-039-R')).toEqual([expect.objectContaining({ id: first.transactionId, startTime: t(0), active: true })]);
  });

  // cache and data transfer

  it('TC_061_CSMS clear authorization cache', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-061', t, { ClearCache: () => ({ status: 'Accepted' }) });

    expect(await command('CP-061', 'ClearCache', {})).toEqual({ status: 200, body: { status: 'Accepted' } });
    expect(cp.received).toEqual([{ action: 'ClearCache', payload: {} }]);
  });

  it('TC_064_CSMS data transfer to the central system', async () => {
    const t = timeline();
    const cp = await bootedCharger('CP-064', t);

    const conf = await cp.call('DataTransfer', { vendorId: 'com.example.unknown', messageId: 'Hello', data: '{"x":1}' });
    expect(['Rejected', 'UnknownMessageId', 'UnknownVendorId']).toContain(conf.status);

    const events = (await server.api('GET', '/api/v1/stations/CP-064/events?kind=DataTransfer')).body.items;
    expect(events).toEqual([expect.objectContaining({ kind: 'DataTransfer', payload: { vendorId: 'com.example.unknown', messageId: 'Hello', data: '{"x":1}' } })]);
  });
});
