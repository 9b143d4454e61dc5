import BetterSqlite3 from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshDatabase, testDatabases } from './helpers/csms.js';
import { storePerTest } from './helpers/store.js';
import type { MeterReading } from '../src/domain/types.js';
import { KyselyStore } from '../src/store/kysely-store.js';
import { mergeSample, samplesOf } from '../src/store/meter-samples.js';

const reading = (ts: string, measurand: string, value: number, extra: Partial<MeterReading> = {}): MeterReading => ({
  stationId: 'CP-1',
  connectorId: 1,
  transactionId: null,
  timestamp: ts,
  measurand,
  phase: null,
  location: 'Outlet',
  context: 'Sample.Periodic',
  unit: measurand.startsWith('Energy') ? 'Wh' : 'W',
  value,
  rawValue: String(value),
  rawUnit: null,
  format: 'Raw',
  derived: false,
  ...extra,
});

/** A three-phase AC charger's MeterValues: eight readings of one instant. */
const meterValues = (ts: string, energyWh: number, transactionId: number | null = null): MeterReading[] =>
  [
    reading(ts, 'Energy.Active.Import.Register', energyWh),
    reading(ts, 'Power.Active.Import', 11000),
    ...(['L1', 'L2', 'L3'] as const).map((phase) => reading(ts, 'Current.Import', 16, { phase, unit: 'A' })),
    ...(['L1-N', 'L2-N', 'L3-N'] as const).map((phase) => reading(ts, 'Voltage', 230, { phase, unit: 'V' })),
  ].map((r) => ({ ...r, transactionId }));

describe('samplesOf / mergeSample', () => {
  it('groups readings by instant in arrival order and keeps a repeated reading once', () => {
    const a = meterValues('2026-01-01T00:00:00.000Z', 1);
    const b = meterValues('2026-01-01T00:01:00.000Z', 2);
    const samples = samplesOf([...a, a[0]!, ...b]);
    expect(samples.map((s) => [s.timestamp, s.readings.length])).toEqual([
      ['2026-01-01T00:00:00.000Z', 8],
      ['2026-01-01T00:01:00.000Z', 8],
    ]);
  });

  it('a derived reading is not a repeat of the measured one', () => {
    const ts = '2026-01-01T00:00:00.000Z';
    expect(samplesOf([reading(ts, 'Power.Active.Import', 1), reading(ts, 'Power.Active.Import', 1, { derived: true })])[0]!.readings).toHaveLength(2);
  });

  it('merging adds only what the stored instant lacks', () => {
    const ts = '2026-01-01T00:00:00.000Z';
    const stored = meterValues(ts, 5);
    const soc = reading(ts, 'SoC', 40, { unit: 'Percent' });
    expect(mergeSample(stored, [stored[0]!, soc])).toEqual({ added: [soc], merged: [...stored, soc] });
    expect(mergeSample(stored, stored).added).toEqual([]);
  });
});

describe.each(testDatabases)('meter readings in the store (%s)', (kind) => {
  const stores = storePerTest(kind);
  async function open(): Promise<KyselyStore> {
    const store = await stores.open();
    await store.createStation({ id: 'CP-1', registration: 'accepted', securityProfile: 0, createdAt: '2026-01-01T00:00:00.000Z' });
    return store;
  }

  it('a repeated MeterValues adds nothing; readings of a known instant are merged into it', async () => {
    const s = await open();
    const ts = '2026-01-01T00:00:00.000Z';
    await s.addMeterReadings(meterValues(ts, 1000));
    expect(await s.meterReadings({ stationId: 'CP-1', limit: 100 })).toHaveLength(8);
    await s.addMeterReadings(meterValues(ts, 1000));
    expect(await s.meterReadings({ stationId: 'CP-1', limit: 100 })).toHaveLength(8);
    // A StopTransaction's transactionData at the instant of the last MeterValues: only the SoC is new.
    const soc = reading(ts, 'SoC', 80, { unit: 'Percent', context: 'Transaction.End' });
    await s.addMeterReadings([meterValues(ts, 1000)[0]!, soc]);
    const all = await s.meterReadings({ stationId: 'CP-1', limit: 100 });
    expect(all).toHaveLength(9);
    expect(all[0]).toEqual(meterValues(ts, 1000)[0]);
    expect(all.at(-1)).toEqual(soc);
  });

  it('a MeterValues repeated before the first one is folded is stored once, and merged', async () => {
    const s = await open();
    const ts = '2026-01-01T00:00:00.000Z';
    const soc = reading(ts, 'SoC', 80, { unit: 'Percent' });
    // Three writes of one instant before any read: on SQLite all three wait in the inbox together.
    await s.addMeterReadings(meterValues(ts, 1000));
    await s.addMeterReadings(meterValues(ts, 1000));
    await s.addMeterReadings([meterValues(ts, 1000)[1]!, soc]);
    await s.addMeterReadings(meterValues('2026-01-01T00:01:00.000Z', 1100));
    const all = await s.meterReadings({ stationId: 'CP-1', limit: 100 });
    expect(all.map((r) => [r.timestamp, r.measurand, r.phase])).toEqual([
      ...meterValues(ts, 1000).map((r) => [ts, r.measurand, r.phase]),
      [ts, 'SoC', null],
      ...meterValues('2026-01-01T00:01:00.000Z', 1100).map((r) => [r.timestamp, r.measurand, r.phase]),
    ]);
  });

  it('folds thousands of samples that arrived together, repeats among them, into one instant each', async () => {
    const s = await open();
    const at = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
    // More than one fold's slice, committed together, with every tenth instant sent twice.
    await Promise.all(Array.from({ length: 2500 }, (_, i) => s.addMeterReadings(meterValues(at(i), i))));
    await Promise.all(Array.from({ length: 250 }, (_, i) => s.addMeterReadings(meterValues(at(i * 10), i * 10))));
    const energy = await s.meterReadings({ stationId: 'CP-1', measurand: 'Energy.Active.Import.Register', limit: 10_000 });
    expect(energy.map((r) => r.value)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
  });

  it('reads back in time order with measurand, time and limit filters across many instants', async () => {
    const s = await open();
    const at = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
    // Stored newest first, to show the order comes from the time, not from the insertion.
    for (let i = 299; i >= 0; i--) await s.addMeterReadings(meterValues(at(i), 1000 + i));
    const energy = await s.meterReadings({ stationId: 'CP-1', measurand: 'Energy.Active.Import.Register', limit: 250 });
    expect(energy.map((r) => r.value)).toEqual(Array.from({ length: 250 }, (_, i) => 1000 + i));
    const window = await s.meterReadings({ stationId: 'CP-1', from: at(10), to: at(11), limit: 1000 });
    expect(window).toHaveLength(16);
    expect(new Set(window.map((r) => r.timestamp))).toEqual(new Set([at(10), at(11)]));
    expect(await s.meterReadings({ stationId: 'CP-1', limit: 12 })).toHaveLength(12);
    expect(await s.meterReadings({ stationId: 'CP-2', limit: 12 })).toEqual([]);
  });

  it("writes the transaction's energy register to its row within a second, and a store opened after a crash raises it from the stored readings", async () => {
    const s = await open();
    const { transaction } = await s.startTransaction({ stationId: 'CP-1', connectorId: 1, idTag: 'T', startTime: '2026-01-01T00:00:00.000Z', meterStart: 100, reservationId: null, authorization: 'Accepted' });
    await s.addMeterReadings(meterValues('2026-01-01T00:05:00.000Z', 500, transaction.id));
    await s.addMeterReadings(meterValues('2026-01-01T00:10:00.000Z', 1200, transaction.id));
    // Readers see it at once; the row has it within a second.
    expect(await s.getTransaction(transaction.id)).toMatchObject({ lastMeterWh: 1200, energyWh: 1100 });
    const row = () => s.db.selectFrom('transactions').select('last_meter_wh').where('id', '=', transaction.id).executeTakeFirstOrThrow();
    const deadline = Date.now() + 3000;
    while (Number((await row()).last_meter_wh) !== 1200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(Number((await row()).last_meter_wh)).toBe(1200);
    // A process that died before writing it: the row shows an older register.
    await s.db.updateTable('transactions').set({ last_meter_wh: 500 }).where('id', '=', transaction.id).execute();
    await s.close();
    const reopened = await open();
    expect(await reopened.getTransaction(transaction.id)).toMatchObject({ lastMeterWh: 1200, energyWh: 1100 });
  });

  it("keeps the transaction's latest energy register from new readings only, and finds readings by transaction", async () => {
    const s = await open();
    const { transaction } = await s.startTransaction({ stationId: 'CP-1', connectorId: 1, idTag: 'T', startTime: '2026-01-01T00:00:00.000Z', meterStart: 0, reservationId: null, authorization: 'Accepted' });
    await s.addMeterReadings(meterValues('2026-01-01T00:05:00.000Z', 500, transaction.id));
    await s.addMeterReadings(meterValues('2026-01-01T00:10:00.000Z', 900, transaction.id));
    // A late repeat of the older instant must not move the register back.
    await s.addMeterReadings(meterValues('2026-01-01T00:05:00.000Z', 500, transaction.id));
    expect((await s.getTransaction(transaction.id))!.lastMeterWh).toBe(900);
    // The next session on the same connector, and readings outside any session: not this transaction's.
    await s.stopTransaction({ id: transaction.id, stopTime: '2026-01-01T00:11:00.000Z', meterStop: 950, stopReason: null, stopIdTag: null });
    await s.addMeterReadings(meterValues('2026-01-01T00:12:00.000Z', 950));
    const next = (await s.startTransaction({ stationId: 'CP-1', connectorId: 1, idTag: 'T', startTime: '2026-01-01T00:13:00.000Z', meterStart: 950, reservationId: null, authorization: 'Accepted' })).transaction;
    await s.addMeterReadings(meterValues('2026-01-01T00:14:00.000Z', 990, next.id));
    expect(await s.meterReadings({ transactionId: next.id, measurand: 'Energy.Active.Import.Register', limit: 10 })).toHaveLength(1);
    expect(await s.meterReadings({ transactionId: transaction.id, stationId: 'CP-2', limit: 10 })).toEqual([]);
    expect(await s.meterReadings({ transactionId: 999, limit: 10 })).toEqual([]);
    const readings = await s.meterReadings({ transactionId: transaction.id, measurand: 'Energy.Active.Import.Register', limit: 10 });
    expect(readings.map((r) => [r.timestamp, r.value, r.transactionId])).toEqual([
      ['2026-01-01T00:05:00.000Z', 500, transaction.id],
      ['2026-01-01T00:10:00.000Z', 900, transaction.id],
    ]);
  });

  it('migration 0007 moves readings stored one per row into samples, in order and complete', async () => {
    const db = await stores.migratedTo('0006_meter_values_one_index_less');
    await db.insertInto('stations').values({ id: 'CP-1', registration: 'accepted', security_profile: 0, created_at: '2026-01-01T00:00:00.000Z', local_list_version: 0 }).execute();
    await db.insertInto('transactions').values({ id: 7, station_id: 'CP-1', connector_id: 1, id_tag: 'T', start_time: '2026-01-01T00:00:00.000Z', meter_start: 0, authorization: 'Accepted' }).execute();
    const old = [...meterValues('2026-01-01T00:00:00.000Z', 10, 7), ...meterValues('2026-01-01T00:01:00.000Z', 20, 7), reading('2026-01-01T00:01:00.000Z', 'Power.Active.Import', 11000, { derived: true, transactionId: 7 })];
    for (const r of old) {
      await db
        .insertInto('meter_values')
        .values({ station_id: r.stationId, connector_id: r.connectorId, transaction_id: r.transactionId, ts: r.timestamp, measurand: r.measurand, phase: r.phase ?? '', location: r.location, context: r.context, unit: r.unit, value: r.value, raw_value: r.rawValue, raw_unit: r.rawUnit, format: r.format, derived: r.derived ? 1 : 0 })
        .execute();
    }
    await db.destroy();
    const store = await stores.open();
    expect(await store.meterReadings({ stationId: 'CP-1', limit: 100 })).toEqual(old);
    expect(await store.meterReadings({ transactionId: 7, measurand: 'Power.Active.Import', limit: 100 })).toHaveLength(3);
  });
});

describe('meter samples on SQLite: the inbox (ADR 0009)', () => {
  it('an acknowledged MeterValues is committed before it is folded, and a process that dies before the fold loses nothing', async () => {
    const database = await freshDatabase('sqlite');
    const path = database.url.slice('sqlite:'.length);
    // No fold by timer during the test: what was acknowledged must be found in the inbox alone.
    const s = await KyselyStore.open(database.url, { sampleFoldIntervalMs: 3_600_000 });
    try {
      await s.createStation({ id: 'CP-1', registration: 'accepted', securityProfile: 0, createdAt: '2026-01-01T00:00:00.000Z' });
      const { transaction } = await s.startTransaction({ stationId: 'CP-1', connectorId: 1, idTag: 'T', startTime: '2026-01-01T00:00:00.000Z', meterStart: 100, reservationId: null, authorization: 'Accepted' });
      await s.addMeterReadings(meterValues('2026-01-01T00:05:00.000Z', 700, transaction.id));
      await s.addMeterReadings(meterValues('2026-01-01T00:05:00.000Z', 700, transaction.id));
      // The state a power cut would leave: what is committed, as another connection sees it.
      const snapshot = join(path, '..', 'crashed.db');
      const other = new BetterSqlite3(path, { readonly: true });
      other.exec(`vacuum into '${snapshot}'`);
      other.close();
      const raw = new BetterSqlite3(snapshot, { readonly: true });
      expect(raw.prepare('select count(*) as n from meter_sample_inbox').get()).toEqual({ n: 2 });
      expect(raw.prepare('select count(*) as n from meter_samples').get()).toEqual({ n: 0 });
      raw.close();
      // A CSMS started on it finds the readings once, and the transaction's energy from them.
      const restarted = await KyselyStore.open(`sqlite:${snapshot}`);
      try {
        expect(await restarted.meterReadings({ transactionId: transaction.id, limit: 100 })).toHaveLength(8);
        expect(await restarted.getTransaction(transaction.id)).toMatchObject({ lastMeterWh: 700, energyWh: 600 });
      } finally {
        await restarted.close();
      }
      // The running store folds on its first read.
      expect(await s.meterReadings({ stationId: 'CP-1', limit: 100 })).toHaveLength(8);
      expect(await s.db.selectFrom('meter_sample_inbox').selectAll().execute()).toEqual([]);
    } finally {
      await s.close();
      await database.drop();
    }
  });

  it('folds the samples of many stations in writes of at most 128 stations, repeats merged across them, and again once the inbox ids begin anew', async () => {
    const database = await freshDatabase('sqlite');
    // The fold's statement, spied on: the id range of each write.
    const foldRanges: Array<[number, number]> = [];
    const prepare = BetterSqlite3.prototype.prepare;
    BetterSqlite3.prototype.prepare = function (this: BetterSqlite3.Database, sql: string) {
      const statement = prepare.call(this, sql);
      if (sql.startsWith('insert into "meter_samples"') && sql.includes('from "meter_sample_inbox"')) {
        const run = statement.run.bind(statement) as (...params: unknown[]) => BetterSqlite3.RunResult;
        statement.run = ((first: number, last: number) => (foldRanges.push([first, last]), run(first, last))) as typeof statement.run;
      }
      return statement;
    } as typeof prepare;
    const s = await KyselyStore.open(database.url, { sampleFoldIntervalMs: 3_600_000 });
    const station = (n: number) => `CP-${String(n).padStart(4, '0')}`;
    const sample = (n: number, ts: string, energyWh: number) => meterValues(ts, energyWh).map((r) => ({ ...r, stationId: station(n) }));
    try {
      // 300 stations, one instant each; then the first 30 send theirs again with a state of charge.
      await Promise.all(Array.from({ length: 300 }, (_, n) => s.addMeterReadings(sample(n, '2026-01-01T00:00:00.000Z', n))));
      await Promise.all(Array.from({ length: 30 }, (_, n) => s.addMeterReadings([reading('2026-01-01T00:00:00.000Z', 'SoC', 50, { stationId: station(n), unit: 'Percent' })])));
      const first = await s.meterReadings({ stationId: station(0), limit: 100 });
      expect(first.map((r) => r.measurand)).toEqual([...meterValues('2026-01-01T00:00:00.000Z', 0).map((r) => r.measurand), 'SoC']);
      expect(foldRanges.length).toBeGreaterThanOrEqual(3);
      for (const [from, to] of foldRanges) expect(to - from + 1).toBeLessThanOrEqual(128);
      expect(await s.db.selectFrom('meter_sample_inbox').selectAll().execute()).toEqual([]);
      // The inbox was emptied, so its ids begin again: 300 more instants, all of them found.
      foldRanges.length = 0;
      await Promise.all(Array.from({ length: 300 }, (_, n) => s.addMeterReadings(sample(n, '2026-01-01T00:01:00.000Z', 1000 + n))));
      for (const n of [0, 29, 30, 127, 128, 299]) {
        const energy = await s.meterReadings({ stationId: station(n), measurand: 'Energy.Active.Import.Register', limit: 10 });
        expect(energy.map((r) => [r.timestamp, r.value])).toEqual([
          ['2026-01-01T00:00:00.000Z', n],
          ['2026-01-01T00:01:00.000Z', 1000 + n],
        ]);
        expect(await s.meterReadings({ stationId: station(n), measurand: 'SoC', limit: 10 })).toHaveLength(n < 30 ? 1 : 0);
      }
      for (const [from, to] of foldRanges) expect(to - from + 1).toBeLessThanOrEqual(128);
      // One station sending much: its samples fold in slices of rows, not one write each.
      foldRanges.length = 0;
      const at = (i: number) => new Date(Date.UTC(2026, 0, 2) + i * 1000).toISOString();
      await Promise.all(Array.from({ length: 1000 }, (_, i) => s.addMeterReadings(sample(7, at(i), 5000 + i))));
      expect(await s.meterReadings({ stationId: station(7), measurand: 'Energy.Active.Import.Register', from: at(0), limit: 2000 })).toHaveLength(1000);
      expect(foldRanges).toHaveLength(1);
    } finally {
      BetterSqlite3.prototype.prepare = prepare;
      await s.close();
      await database.drop();
    }
  });
});
