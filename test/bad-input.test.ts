import { randomUUID } from 'node:crypto';
import type { OcppTestClient } from './helpers/csms.js';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/config.js';
import { connectStation, eventually, startCsms, testDatabases, type TestCsms } from './helpers/csms.js';

/**
 * Bad input from stations, sent over a raw WebSocket (no OCPP library in the way), and bad bodies
 * on the REST API. After every case the CSMS must still serve other stations and must hold no
 * half-written transaction.
 */

type Frame = any[];

/** A CALL from the ocpp-rpc test station; its typings give `unknown`, the tests read the answer's fields. */
const ocppCall = (client: OcppTestClient, action: string, payload: unknown): Promise<any> => client.call(action, payload);


/** Opens a WebSocket upgrade and reports the HTTP status: 101 with the socket, or the refusal's status. */
function upgrade(url: string, protocols: string[] = ['ocpp1.6']): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.on('error', (err) => reject(err));
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.on('error', () => {});
      ws.terminate();
      resolve({ status: res.statusCode ?? 0 });
    });
  });
}

/** A station that speaks OCPP-J by hand: it can send any frame and sees every frame it gets. */
class RawStation {
  private readonly inbox: unknown[] = [];
  private readonly waiters: Array<() => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = data.toString();
      let frame: unknown = text;
      try {
        frame = JSON.parse(text);
      } catch {
        /* keep the text */
      }
      this.inbox.push(frame);
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async open(ocppUrl: string, id: string): Promise<RawStation> {
    const { status, ws } = await upgrade(`${ocppUrl}/${id}`);
    if (status !== 101 || !ws) throw new Error(`upgrade of ${id} refused with ${status}`);
    const station = new RawStation(ws);
    openStations.push(station);
    return station;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next received frame that matches, taken out of the inbox. */
  async next(match: (frame: any) => boolean, timeoutMs = 3000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(match);
      if (i >= 0) return this.inbox.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; inbox: ${JSON.stringify(this.inbox).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The answer (CALLRESULT or CALLERROR) to the message with this id. */
  answerTo(messageId: string): Promise<Frame> {
    return this.next((f) => Array.isArray(f) && (f[0] === 3 || f[0] === 4) && f[1] === messageId);
  }

  /** Sends a CALL and waits for its answer. */
  call(action: string, payload: unknown, messageId: string = randomUUID()): Promise<Frame> {
    this.send([2, messageId, action, payload]);
    return this.answerTo(messageId);
  }

  /** Sends a CALL and returns the CALLRESULT payload; fails on a CALLERROR. */
  async ok(action: string, payload: unknown): Promise<any> {
    const answer = await this.call(action, payload);
    expect(answer[0], `${action} answered ${JSON.stringify(answer)}`).toBe(3);
    return answer[2];
  }

  async boot(): Promise<void> {
    const conf = await this.ok('BootNotification', { chargePointVendor: 'Ampyard', chargePointModel: 'RawBox' });
    expect(conf.status).toBe('Accepted');
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
  }
}

let openStations: RawStation[] = [];
const at = (s: number) => new Date(Date.parse('2026-03-01T10:00:00Z') + s * 1000).toISOString();

function expectCallError(answer: Frame, messageId: string, code: string): void {
  expect(answer.slice(0, 3)).toEqual([4, messageId, code]);
  expect(typeof answer[3]).toBe('string');
  expect(typeof answer[4]).toBe('object');
}

/** A record is complete: either running (no stop data) or stopped with its stop data and energy. */
function expectCompleteRecord(t: any): void {
  expect(t).toMatchObject({ id: expect.any(Number), stationId: expect.any(String), connectorId: expect.any(Number), idTag: expect.any(String) });
  expect(Number.isNaN(Date.parse(t.startTime))).toBe(false);
  expect(typeof t.meterStart).toBe('number');
  if (t.active) {
    expect(t).toMatchObject({ stopTime: null, meterStop: null });
  } else {
    expect(Number.isNaN(Date.parse(t.stopTime))).toBe(false);
    expect(typeof t.meterStop).toBe('number');
    expect(t.energyWh).toBe(t.meterStop - t.meterStart);
  }
}

describe.each(testDatabases)('bad input from stations and API clients (%s)', (database) => {
  let server: TestCsms | undefined;
  let healthyRuns = 0;

  async function setup(overrides: Partial<Config> = {}): Promise<TestCsms> {
    server = await startCsms({ database, ...overrides });
    const tag = await server.api('POST', '/api/v1/id-tags', { idTag: 'TAG-OK', status: 'Accepted' });
    expect(tag.status).toBe(201);
    return server;
  }

  afterEach(async () => {
    for (const s of openStations) s.close();
    openStations = [];
    await server?.stop();
    server = undefined;
  });

  /**
   * The CSMS still answers /healthz, a fresh station can boot and run a whole transaction, every
   * stored transaction is a complete record, and the stations named in `noTransactionsFor` have none.
   */
  async function expectCsmsHealthy(s: TestCsms, noTransactionsFor: string[] = []): Promise<void> {
    const health = await s.api('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('ok');

    const id = `CP-HEALTHY-${++healthyRuns}`;
    const station = await connectStation(s.ocppUrl, id);
    try {
      const boot = await ocppCall(station, 'BootNotification', { chargePointVendor: 'Ampyard', chargePointModel: 'TestBox' });
      expect(boot.status).toBe('Accepted');
      const start = await ocppCall(station, 'StartTransaction', { connectorId: 1, idTag: 'TAG-OK', meterStart: 0, timestamp: at(0) });
      expect(start.idTagInfo.status).toBe('Accepted');
      await ocppCall(station, 'StopTransaction', { transactionId: start.transactionId, meterStop: 42, timestamp: at(60) });
    } finally {
      await station.close();
    }

    const list = await s.api('GET', '/api/v1/transactions?limit=1000');
    expect(list.status).toBe(200);
    for (const t of list.body.items) expectCompleteRecord(t);
    expect(list.body.items.filter((t: any) => t.stationId === id)).toMatchObject([{ energyWh: 42, active: false }]);
    for (const bad of noTransactionsFor) expect(list.body.items.filter((t: any) => t.stationId === bad)).toEqual([]);
  }

  describe('malformed frames', () => {
    it('garbage that is not JSON gets a FormationViolation with message id "-1"; the connection stays usable', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-GARBAGE');
      raw.send('this is {not json');
      expectCallError(await raw.answerTo('-1'), '-1', 'FormationViolation');
      await raw.boot();
      await expectCsmsHealthy(s, ['CP-GARBAGE']);
    });

    it('JSON that is not an array gets a FormationViolation', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-NOTARRAY');
      raw.send({ messageTypeId: 2, uniqueId: 'm-1', action: 'Heartbeat', payload: {} });
      expectCallError(await raw.answerTo('-1'), '-1', 'FormationViolation');
      raw.send('"just a string"');
      expectCallError(await raw.answerTo('-1'), '-1', 'FormationViolation');
      await raw.boot();
      await expectCsmsHealthy(s, ['CP-NOTARRAY']);
    });

    it('an unknown message type gets a CALLERROR with the same message id', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-MSGTYPE');
      raw.send([7, 'm-type-7', 'Heartbeat', {}]);
      const answer = await raw.answerTo('m-type-7');
      expect(answer[0]).toBe(4);
      expect(['ProtocolError', 'FormationViolation']).toContain(answer[2]);
      await raw.boot();
      await expectCsmsHealthy(s, ['CP-MSGTYPE']);
    });

    it('a CALL without a payload object gets a FormationViolation', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-NOPAYLOAD');
      raw.send([2, 'm-short', 'Heartbeat']);
      expectCallError(await raw.answerTo('m-short'), 'm-short', 'FormationViolation');
      raw.send([2, 'm-array', 'Heartbeat', []]);
      expectCallError(await raw.answerTo('m-array'), 'm-array', 'FormationViolation');
      await expectCsmsHealthy(s, ['CP-NOPAYLOAD']);
    });

    it('a CALL with an unknown action gets NotImplemented', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-UNKNOWN-ACTION');
      await raw.boot();
      expectCallError(await raw.call('MakeCoffee', { sugar: 2 }, 'm-coffee'), 'm-coffee', 'NotImplemented');
      await expectCsmsHealthy(s, ['CP-UNKNOWN-ACTION']);
    });

    it('a central-system-initiated action sent by the station gets NotSupported', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-WRONG-WAY');
      await raw.boot();
      expectCallError(await raw.call('RemoteStartTransaction', { idTag: 'TAG-OK', connectorId: 1 }, 'm-rst'), 'm-rst', 'NotSupported');
      expectCallError(await raw.call('Reset', { type: 'Hard' }, 'm-reset'), 'm-reset', 'NotSupported');
      await expectCsmsHealthy(s, ['CP-WRONG-WAY']);
    });
  });

  describe('payloads that break the OCPP 1.6 schema store nothing', () => {
    const start = { connectorId: 1, idTag: 'TAG-OK', meterStart: 100, timestamp: at(0) };
    const { meterStart: _omitted, ...startWithoutMeter } = start;
    it.each([
      ['a wrong type (connectorId as a string)', 'TypeConstraintViolation', { ...start, connectorId: '1' }],
      ['a wrong type (meterStart as a float)', 'TypeConstraintViolation', { ...start, meterStart: 100.5 }],
      ['a missing required field (meterStart)', 'OccurenceConstraintViolation', startWithoutMeter],
      ['a field longer than allowed (idTag of 21 characters)', 'PropertyConstraintViolation', { ...start, idTag: 'X'.repeat(21) }],
      ['a field that is not in the PDU', 'FormationViolation', { ...start, secretBonus: 'free energy' }],
      ['a timestamp that is not a date-time', 'PropertyConstraintViolation', { ...start, timestamp: 'yesterday at noon' }],
      ['a timestamp on a day that does not exist', 'PropertyConstraintViolation', { ...start, timestamp: '2026-02-30T10:00:00Z' }],
    ])('StartTransaction with %s gets %s and no transaction', async (_name, code, payload) => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-SCHEMA');
      await raw.boot();
      expectCallError(await raw.call('StartTransaction', payload, 'm-start'), 'm-start', code);
      await expectCsmsHealthy(s, ['CP-SCHEMA']);
    });

    it('StatusNotification with a bad enum value gets PropertyConstraintViolation and the connector status is unchanged', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-ENUM');
      await raw.boot();
      await raw.ok('StatusNotification', { connectorId: 1, status: 'Available', errorCode: 'NoError', timestamp: at(0) });
      const bad = { connectorId: 1, status: 'Sleeping', errorCode: 'NoError', timestamp: at(1) };
      expectCallError(await raw.call('StatusNotification', bad, 'm-enum'), 'm-enum', 'PropertyConstraintViolation');
      const badError = { connectorId: 1, status: 'Faulted', errorCode: 'Gremlins', timestamp: at(2) };
      expectCallError(await raw.call('StatusNotification', badError, 'm-enum2'), 'm-enum2', 'PropertyConstraintViolation');
      const station = await s.api('GET', '/api/v1/stations/CP-ENUM');
      expect(station.body.connectors).toMatchObject([{ connectorId: 1, status: 'Available' }]);
      const history = await s.api('GET', '/api/v1/stations/CP-ENUM/status-history');
      expect(history.body.items.map((h: any) => h.status)).toEqual(['Available']);
      await expectCsmsHealthy(s, ['CP-ENUM']);
    });

    it('BootNotification with an extra field gets FormationViolation and a missing field OccurenceConstraintViolation', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-BOOT');
      const extra = { chargePointVendor: 'Ampyard', chargePointModel: 'RawBox', colour: 'green' };
      expectCallError(await raw.call('BootNotification', extra, 'm-b1'), 'm-b1', 'FormationViolation');
      expectCallError(await raw.call('BootNotification', { chargePointVendor: 'Ampyard' }, 'm-b2'), 'm-b2', 'OccurenceConstraintViolation');
      const station = await s.api('GET', '/api/v1/stations/CP-BOOT');
      expect(station.body.lastBootAt).toBeNull();
      await raw.boot();
      await expectCsmsHealthy(s, ['CP-BOOT']);
    });
  });

  it('a frame above maxFrameBytes closes the connection with 1009 and the server stays up', async () => {
    const s = await setup({ maxFrameBytes: 4096 });
    const raw = await RawStation.open(s.ocppUrl, 'CP-HUGE');
    await raw.boot();
    raw.send([2, 'm-huge', 'DataTransfer', { vendorId: 'Ampyard', data: 'x'.repeat(8192) }]);
    const closed = await raw.closed;
    expect(closed.code).toBe(1009);
    await eventually(async () => (await s.api('GET', '/api/v1/stations/CP-HUGE')).body.connected === false);
    // A frame just under the limit is fine.
    const again = await RawStation.open(s.ocppUrl, 'CP-HUGE');
    await again.ok('DataTransfer', { vendorId: 'Ampyard', data: 'x'.repeat(3000) });
    await expectCsmsHealthy(s, ['CP-HUGE']);
  });

  it('a flood above the rate limit gets CALLERRORs, sustained flooding closes the connection, other stations keep working', async () => {
    const s = await setup({ rateLimit: { perSecond: 1, burst: 5 }, maxBadFrames: 10 });
    const neighbour = await RawStation.open(s.ocppUrl, 'CP-NEIGHBOUR');
    await neighbour.boot();
    const raw = await RawStation.open(s.ocppUrl, 'CP-FLOOD');
    await raw.boot(); // one token of the burst of 5

    const ids = Array.from({ length: 8 }, (_, i) => `m-flood-${i}`);
    for (const id of ids) raw.send([2, id, 'Heartbeat', {}]);
    const answers = await Promise.all(ids.map((id) => raw.answerTo(id)));
    const results = answers.filter((a) => a[0] === 3);
    const errors = answers.filter((a) => a[0] === 4);
    expect(results.length).toBeGreaterThanOrEqual(4);
    expect(results.length).toBeLessThanOrEqual(6); // 4 left of the burst, plus a refill if the machine is slow
    expect(errors.length).toBe(8 - results.length);
    for (const e of errors) expect(typeof e[2]).toBe('string');
    // Under maxBadFrames the station is still connected, and its neighbour is unaffected.
    expect((await s.api('GET', '/api/v1/stations/CP-FLOOD')).body.connected).toBe(true);
    await neighbour.ok('Heartbeat', {});

    for (let i = 0; i < 30; i++) raw.send([2, `m-more-${i}`, 'Heartbeat', {}]);
    const closed = await raw.closed;
    expect(closed.code).toBe(1008);
    await eventually(async () => (await s.api('GET', '/api/v1/stations/CP-FLOOD')).body.connected === false);
    await neighbour.ok('Heartbeat', {});
    expect((await s.api('GET', '/api/v1/stations/CP-NEIGHBOUR')).body.connected).toBe(true);
    await expectCsmsHealthy(s, ['CP-FLOOD', 'CP-NEIGHBOUR']);
  });

  it('a station that never answers: the command returns 504 within the timeout, a late answer is ignored, the next command works', async () => {
    const s = await setup({ callTimeoutMs: 500 });
    const raw = await RawStation.open(s.ocppUrl, 'CP-SILENT');
    await raw.boot();

    const t0 = Date.now();
    const first = s.api('POST', '/api/v1/stations/CP-SILENT/commands/Reset', { type: 'Soft' });
    const call1 = await raw.next((f) => Array.isArray(f) && f[0] === 2 && f[2] === 'Reset');
    const timedOut = await first;
    const elapsed = Date.now() - t0;
    expect(timedOut.status).toBe(504);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(2500);

    // The answer arrives after the CSMS gave up: it must not be taken for the next command's.
    raw.send([3, call1[1], { status: 'Accepted' }]);
    const second = s.api('POST', '/api/v1/stations/CP-SILENT/commands/Reset', { type: 'Hard' });
    const call2 = await raw.next((f) => Array.isArray(f) && f[0] === 2 && f[2] === 'Reset');
    expect(call2[1]).not.toBe(call1[1]);
    expect(call2[3]).toEqual({ type: 'Hard' });
    raw.send([3, call2[1], { status: 'Rejected' }]);
    const answered = await second;
    expect(answered.status).toBe(200);
    expect(answered.body).toEqual({ status: 'Rejected' });
    await expectCsmsHealthy(s, ['CP-SILENT']);
  });

  describe('station ids', () => {
    it.each([
      ['a percent-encoded space', 'CP%20ONE'],
      ['percent-encoded unicode', 'CP-%C3%A9t%C3%A9'],
      ['a percent-encoded "/"', 'CP%2FONE'],
      ['a raw "/"', 'CP/ONE'],
      ['broken percent-encoding', 'CP-%E0%A4%A'],
      ['49 characters', 'C'.repeat(49)],
    ])('an id with %s is refused at the upgrade with HTTP 400', async (_name, path) => {
      const s = await setup();
      const { status } = await upgrade(`${s.ocppUrl}/${path}`);
      expect(status).toBe(400);
      const stations = await s.api('GET', '/api/v1/stations');
      expect(stations.body.items).toEqual([]);
      await expectCsmsHealthy(s);
    });

    it.each([
      ['":" and "."', 'CP-01:A.b', 'CP-01:A.b'],
      ['a percent-encoded ":"', 'CP%3A02', 'CP:02'],
      ['48 characters', 'C'.repeat(48), 'C'.repeat(48)],
    ])('a valid id with %s connects, boots and shows in the API', async (_name, path, id) => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, path);
      await raw.boot();
      const station = await s.api('GET', `/api/v1/stations/${encodeURIComponent(id)}`);
      expect(station.status).toBe(200);
      expect(station.body).toMatchObject({ id, connected: true, registration: 'accepted' });
      await expectCsmsHealthy(s, [id]);
    });
  });

  describe('repeats and unknown transactions', () => {
    it('a StopTransaction for an unknown transaction id is answered and creates nothing', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-GHOST');
      await raw.boot();
      const conf = await raw.ok('StopTransaction', { transactionId: 987654, meterStop: 5000, timestamp: at(10), idTag: 'TAG-OK' });
      expect(conf.idTagInfo?.status ?? 'Accepted').toBe('Accepted');
      await raw.ok('StopTransaction', { transactionId: -1, meterStop: 5000, timestamp: at(11) });
      expect((await s.api('GET', '/api/v1/transactions/987654')).status).toBe(404);
      await expectCsmsHealthy(s, ['CP-GHOST']);
    });

    it('a repeated StartTransaction (same connector, idTag, meterStart, timestamp) returns the same transactionId', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-RESTART');
      await raw.boot();
      const req = { connectorId: 1, idTag: 'TAG-OK', meterStart: 1000, timestamp: at(0) };
      const first = await raw.ok('StartTransaction', req);
      const again = await raw.ok('StartTransaction', req);
      expect(again.transactionId).toBe(first.transactionId);
      expect(again.idTagInfo.status).toBe('Accepted');
      const list = await s.api('GET', '/api/v1/transactions?stationId=CP-RESTART');
      expect(list.body.items).toHaveLength(1);
      await raw.ok('StopTransaction', { transactionId: first.transactionId, meterStop: 1100, timestamp: at(60) });
      await expectCsmsHealthy(s);
    });

    it('a repeated MeterValues and a repeated StopTransaction (resent after a lost answer) count nothing twice', async () => {
      const s = await setup();
      const raw = await RawStation.open(s.ocppUrl, 'CP-RESEND');
      await raw.boot();
      const { transactionId } = await raw.ok('StartTransaction', { connectorId: 1, idTag: 'TAG-OK', meterStart: 1000, timestamp: at(0) });
      const sample = (s_: number, wh: number) => ({
        timestamp: at(s_),
        sampledValue: [
          { value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
          { value: '7.2', measurand: 'Power.Active.Import', unit: 'kW' },
        ],
      });

      // The same frame twice (same message id), as a station that resends its queue does…
      const meterFrame = [2, 'm-mv-1', 'MeterValues', { connectorId: 1, transactionId, meterValue: [sample(30, 1200)] }];
      raw.send(meterFrame);
      expect((await raw.answerTo('m-mv-1'))[0]).toBe(3);
      raw.send(meterFrame);
      expect((await raw.answerTo('m-mv-1'))[0]).toBe(3);
      // …and the same content under a new message id.
      await raw.ok('MeterValues', { connectorId: 1, transactionId, meterValue: [sample(30, 1200)] });

      let tx = await s.api('GET', `/api/v1/transactions/${transactionId}`);
      expect(tx.body.energyWh).toBe(200);
      expect(tx.body.meterValues).toHaveLength(2);

      const stop = { transactionId, meterStop: 1500, timestamp: at(90), idTag: 'TAG-OK', reason: 'Local', transactionData: [sample(60, 1400)] };
      await raw.ok('StopTransaction', stop);
      await raw.ok('StopTransaction', stop);
      await raw.ok('StopTransaction', { ...stop, meterStop: 9999, timestamp: at(120) });

      tx = await s.api('GET', `/api/v1/transactions/${transactionId}`);
      expect(tx.body).toMatchObject({ active: false, meterStart: 1000, meterStop: 1500, energyWh: 500, stopTime: at(90), stopReason: 'Local' });
      const energy = tx.body.meterValues.filter((m: any) => m.measurand === 'Energy.Active.Import.Register');
      expect(energy.map((m: any) => [m.timestamp, m.value])).toEqual([
        [at(30), 1200],
        [at(60), 1400],
      ]);
      expect(tx.body.meterValues).toHaveLength(4);
      const list = await s.api('GET', '/api/v1/transactions?stationId=CP-RESEND');
      expect(list.body.items).toHaveLength(1);
      await expectCsmsHealthy(s);
    });
  });

  describe('bad API bodies', () => {
    it('POST /api/v1/id-tags without a status or with an idTag over 20 characters: 400 naming the field, nothing stored', async () => {
      const s = await setup();
      const noStatus = await s.api('POST', '/api/v1/id-tags', { idTag: 'TAG-NOSTATUS' });
      expect(noStatus.status).toBe(400);
      expect(noStatus.body.message).toMatch(/status/);
      const tooLong = await s.api('POST', '/api/v1/id-tags', { idTag: 'T'.repeat(21), status: 'Accepted' });
      expect(tooLong.status).toBe(400);
      expect(tooLong.body.message).toMatch(/idTag/);
      const badStatus = await s.api('POST', '/api/v1/id-tags', { idTag: 'TAG-BADSTATUS', status: 'Maybe' });
      expect(badStatus.status).toBe(400);
      expect(badStatus.body.message).toMatch(/status/);
      const tags = await s.api('GET', '/api/v1/id-tags');
      expect(tags.body.items.map((t: any) => t.idTag)).toEqual(['TAG-OK']);
    });

    it('POST commands/RemoteStartTransaction with a body that breaks the OCPP schema: 400, and nothing reaches the station', async () => {
      const s = await setup();
      const received: unknown[] = [];
      const station = await connectStation(s.ocppUrl, 'CP-API', {
        handlers: {
          RemoteStartTransaction: (p) => {
            received.push(p);
            return { status: 'Accepted' };
          },
        },
      });
      try {
        await ocppCall(station, 'BootNotification', { chargePointVendor: 'Ampyard', chargePointModel: 'TestBox' });
        for (const [body, code] of [
          [{}, 'OccurenceConstraintViolation'],
          [{ idTag: 12345 }, 'TypeConstraintViolation'],
          [{ idTag: 'TAG-OK', connectorId: 1, turbo: true }, 'FormationViolation'],
          [{ idTag: 'T'.repeat(21) }, 'PropertyConstraintViolation'],
        ] as const) {
          const r = await s.api('POST', '/api/v1/stations/CP-API/commands/RemoteStartTransaction', body);
          expect(r.status, JSON.stringify(body)).toBe(400);
          expect(r.body.ocppErrorCode).toBe(code);
        }
        expect(received).toEqual([]);
        const good = await s.api('POST', '/api/v1/stations/CP-API/commands/RemoteStartTransaction', { idTag: 'TAG-OK', connectorId: 1 });
        expect(good.status).toBe(200);
        expect(received).toEqual([{ idTag: 'TAG-OK', connectorId: 1 }]);
      } finally {
        await station.close();
      }
    });

    it('a command body that breaks the schema is a 400 even when the station is offline (retrying later cannot help)', async () => {
      const s = await setup();
      const created = await s.api('POST', '/api/v1/stations', { id: 'CP-OFFLINE' });
      expect(created.status).toBe(201);
      const r = await s.api('POST', '/api/v1/stations/CP-OFFLINE/commands/RemoteStartTransaction', { idTag: 12345 });
      expect(r.status).toBe(400);
      const valid = await s.api('POST', '/api/v1/stations/CP-OFFLINE/commands/RemoteStartTransaction', { idTag: 'TAG-OK' });
      expect(valid.status).toBe(409);
    });

    it('an unknown command action is 400 or 404; an unknown station is 404', async () => {
      const s = await setup();
      const created = await s.api('POST', '/api/v1/stations', { id: 'CP-KNOWN' });
      expect(created.status).toBe(201);
      for (const action of ['MakeCoffee', 'BootNotification', 'StartTransaction']) {
        const r = await s.api('POST', `/api/v1/stations/CP-KNOWN/commands/${action}`, {});
        expect([400, 404], action).toContain(r.status);
      }
      expect((await s.api('GET', '/api/v1/stations/NOPE')).status).toBe(404);
      expect((await s.api('POST', '/api/v1/stations/NOPE/commands/Reset', { type: 'Soft' })).status).toBe(404);
      expect((await s.api('GET', '/api/v1/transactions/424242')).status).toBe(404);
      expect((await s.api('GET', '/api/v1/id-tags/NOPE')).status).toBe(404);
    });
  });
});
