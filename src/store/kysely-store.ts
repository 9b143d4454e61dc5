import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, type Kysely, type Selectable, type Transaction as Trx } from 'kysely';
import type { MessageLogBatch as PortMessageLogBatch, Store } from '../domain/ports.js';
import type { StationProfileCapabilities } from '../charging/profiles/fit.js';
import type { StoredSite } from '../domain/sites.js';
import type { SessionNeeds, Vehicle, VehicleTrip } from '../domain/fleet.js';
import type {
  Alarm,
  InstalledChargingProfile,
  ConnectorState,
  IdTag,
  MessageLogEntry,
  NewMessageLogEntry,
  MeterReading,
  Reservation,
  Station,
  StationEventRecord,
  StatusChange,
  Transaction,
} from '../domain/types.js';
import { openDatabase, type DatabaseOptions, type OpenedDatabase } from './database.js';
import { GroupCommitter } from './group-commit.js';
import type { SqlFlavour } from './migrations.js';
import type { Database, StationsTable, TransactionsTable, VehiclesTable } from './schema.js';
import { decodeReadings, encodeReadings, mergeSample, samplesOf, type MeterSample } from './meter-samples.js';
import { chunkIdOf, chunksOf, decodeChunkNewestFirst, MessageLogBatch, type MessageLogChunk } from './message-log-chunks.js';

const stationFromRow = (r: Selectable<StationsTable>): Station => ({
  id: r.id,
  registration: r.registration as Station['registration'],
  securityProfile: r.security_profile as Station['securityProfile'],
  hasPassword: r.password_hash !== null,
  vendor: r.vendor,
  model: r.model,
  serialNumber: r.serial_number,
  firmwareVersion: r.firmware_version,
  iccid: r.iccid,
  imsi: r.imsi,
  meterType: r.meter_type,
  meterSerialNumber: r.meter_serial_number,
  localListVersion: r.local_list_version,
  createdAt: r.created_at,
  lastBootAt: r.last_boot_at,
  lastSeenAt: r.last_seen_at,
});

const stationColumns: Record<keyof Omit<Station, 'id' | 'createdAt' | 'hasPassword'>, keyof StationsTable> = {
  registration: 'registration',
  securityProfile: 'security_profile',
  vendor: 'vendor',
  model: 'model',
  serialNumber: 'serial_number',
  firmwareVersion: 'firmware_version',
  iccid: 'iccid',
  imsi: 'imsi',
  meterType: 'meter_type',
  meterSerialNumber: 'meter_serial_number',
  localListVersion: 'local_list_version',
  lastBootAt: 'last_boot_at',
  lastSeenAt: 'last_seen_at',
};

const transactionFromRow = (r: Selectable<TransactionsTable>): Transaction => {
  const meterStart = Number(r.meter_start);
  const meterStop = r.meter_stop === null ? null : Number(r.meter_stop);
  const last = r.last_meter_wh === null ? null : Number(r.last_meter_wh);
  return {
    id: Number(r.id),
    stationId: r.station_id,
    connectorId: r.connector_id,
    idTag: r.id_tag,
    startTime: r.start_time,
    meterStart,
    reservationId: r.reservation_id,
    stopTime: r.stop_time,
    meterStop,
    stopReason: r.stop_reason,
    stopIdTag: r.stop_id_tag,
    lastMeterWh: last,
    energyWh: meterStop !== null ? meterStop - meterStart : last !== null ? last - meterStart : null,
    authorization: r.authorization as Transaction['authorization'],
  };
};

const vehicleFromRow = (r: Selectable<VehiclesTable>): Vehicle => ({
  id: r.id,
  name: r.name,
  batteryKwh: Number(r.battery_kwh),
  maxPowerKw: r.max_power_kw === null ? null : Number(r.max_power_kw),
  targetSocPct: r.target_soc_pct === null ? null : Number(r.target_soc_pct),
  idTags: JSON.parse(r.id_tags) as string[],
  updatedAt: r.updated_at,
});

/**
 * The message log's chunk insert as SQL text for `rows` rows, made once per row count (and so
 * prepared once by the statement cache), without building a Kysely query for each.
 */
const sqliteChunkInsertText = new Map<number, string>();
function sqliteChunkInsert(rows: number): string {
  let text = sqliteChunkInsertText.get(rows);
  if (!text) {
    const tuple = `(${messageLogColumns.map(() => '?').join(', ')})`;
    text = `insert into "message_log_chunks" (${messageLogColumns.map((c) => `"${c}"`).join(', ')}) values ${Array(rows).fill(tuple).join(', ')}`;
    sqliteChunkInsertText.set(rows, text);
  }
  return text;
}

/**
 * The SQLite path of samples (ADR 0009): a MeterValues lands in meter_sample_inbox, a table
 * appended to at its end, and is folded into meter_samples in bulk, where an instant already stored
 * is merged rather than inserted again.
 */
const sampleColumnList = '"station_id", "connector_id", "transaction_id", "ts", "readings"';
const sqliteInboxInsert = `insert into "meter_sample_inbox" (${sampleColumnList}) values (?, ?, ?, ?, ?)`;
const sqliteInboxFirst = 'select min("id") as "id" from "meter_sample_inbox"';
const sqliteInboxLast = 'select max("id") as "id" from "meter_sample_inbox"';
const sqliteInboxCount = 'select count(*) as "rows" from "meter_sample_inbox" where "id" between ? and ?';
const sqliteSamplesLast = 'select max("id") as "id" from "meter_samples"';
/**
 * Inbox rows of a slice that its insert did not store, asked after the insert and only when it
 * stored fewer rows than the slice has: a later repeat of an instant in the slice, or an instant
 * stored before the insert (a sample whose id is at most the largest id before it).
 */
const sqliteInboxLeftovers = `select * from (
    select *, row_number() over (partition by "station_id", "ts", "connector_id" order by "id") as "nth"
    from "meter_sample_inbox" where "id" between ? and ?
  ) as "i"
  where "nth" > 1 or exists (select 1 from "meter_samples" as "m" where "m"."station_id" = "i"."station_id" and "m"."ts" = "i"."ts" and "m"."connector_id" = "i"."connector_id" and "m"."id" <= ?)
  order by "id"`;
/** Each new instant of a slice, the first of its repeats, in the order they came. */
const sqliteInboxFold = `insert into "meter_samples" (${sampleColumnList}) select ${sampleColumnList} from "meter_sample_inbox" where "id" between ? and ? order by "id" on conflict ("station_id", "ts", "connector_id") do nothing`;
const sqliteInboxDelete = 'delete from "meter_sample_inbox" where "id" <= ?';
/**
 * The whole inbox, once a slice has folded all of it: without a WHERE clause SQLite frees the
 * table's pages as they are (its truncate optimisation), where deleting by id rewrites every leaf
 * page into the WAL on its way to the free list (a quarter of the WAL's frames under saturate).
 */
const sqliteInboxClear = 'delete from "meter_sample_inbox"';
const sqliteSampleAt = 'select * from "meter_samples" where "station_id" = ? and "ts" = ? and "connector_id" = ?';
const sqliteSampleUpdate = 'update "meter_samples" set "readings" = ?, "transaction_id" = ? where "id" = ?';
/**
 * Inbox rows folded per write at most (ids, which the inbox takes one after another). A write
 * holds the event loop until it commits: 1,000 rows of 100 stations took 15-19 ms, 2,000 rows
 * 21-25 ms, 5,000 rows 40-65 ms. And each write rewrites the index page of every station in it:
 * at 10,000 MeterValues a second from 100 stations, slices of 1,000 rows wrote each station's page
 * ten times a second (a quarter of the WAL's frames). With 5,000 saturate's p99 latency rose from
 * 25-35 to 46-59 ms; with 2,000 it was 43 ms, for the same CPU per MeterValues.
 */
const foldSliceRows = 2000;
/**
 * Stations per fold write at most, as well. Why: a fold write's cost is mostly the pages of
 * meter_samples' index it dirties, about one per station in it, not its rows. Under `steady` (10,000
 * stations, each sending every 10 s) every row of a fold was another station's, and a fold of about
 * 500 rows held the event loop for 5-6 ms (15 ms at worst) twice a second, with every answer that came
 * meanwhile waiting behind it. Cut at 128 stations, a write takes 1-2 ms. Where few stations send
 * much (saturate: 100 stations) the cut never comes before the 2,000 rows.
 */
const foldSliceStations = 128;
const instantKey = (stationId: string, connectorId: number, ts: string) => `${stationId}\u0000${connectorId}\u0000${ts}`;

/** Each transaction's latest energy register among new readings (a repeated reading adds nothing). */
function latestEnergyRegisters(added: MeterReading[]): Map<number, { ts: string; value: number }> {
  const latest = new Map<number, { ts: string; value: number }>();
  for (const r of added) {
    if (r.transactionId === null || r.value === null) continue;
    if (r.measurand !== 'Energy.Active.Import.Register' || r.phase !== null || (r.location !== 'Outlet' && r.location !== 'Cable')) continue;
    const seen = latest.get(r.transactionId);
    if (!seen || r.timestamp >= seen.ts) latest.set(r.transactionId, { ts: r.timestamp, value: r.value });
  }
  return latest;
}
const messageLogColumns = ['station_id', 'first_at', 'last_at', 'frame_count', 'entries', 'entries_deflated'] as const;
/** Chunks per statement: SQLite allows 32,766 parameters; 64 rows of 6 stay far below. */
const sqliteChunk = 64;

/**
 * Statements on the path of every MeterValues, as SQL text written once: building them with Kysely
 * cost more than running them (about 30 µs per MeterValues in saturate's profile). PostgreSQL gets
 * `$n` for `?`.
 */
const hotSql = {
  transactionById: 'select * from "transactions" where "id" = ?',
  raiseLastMeterWh: 'update "transactions" set "last_meter_wh" = ? where "id" = ? and ("last_meter_wh" is null or "last_meter_wh" <= ?)',
};
const hotSqlFor = (flavour: SqlFlavour): typeof hotSql => {
  if (flavour === 'sqlite') return hotSql;
  const numbered = (text: string) => {
    let n = 0;
    return text.replace(/\?/g, () => `$${++n}`);
  };
  return { transactionById: numbered(hotSql.transactionById), raiseLastMeterWh: numbered(hotSql.raiseLastMeterWh) };
};


const connectorFromRow = (r: {
  station_id: string;
  connector_id: number;
  status: string;
  error_code: string;
  info: string | null;
  vendor_id: string | null;
  vendor_error_code: string | null;
  since: string;
}): ConnectorState => ({
  stationId: r.station_id,
  connectorId: r.connector_id,
  status: r.status,
  errorCode: r.error_code,
  info: r.info,
  vendorId: r.vendor_id,
  vendorErrorCode: r.vendor_error_code,
  since: r.since,
});

export interface StoreOptions extends DatabaseOptions {
  /**
   * SQLite: how often samples in meter_sample_inbox are folded into meter_samples when nobody reads
   * them (ADR 0009). Each station's page of the samples' index is written once per fold.
   */
  sampleFoldIntervalMs?: number;
}

/** The Store over Kysely: the same code for SQLite and PostgreSQL. Writes go through group commit. */
export class KyselyStore implements Store {
  private readonly writes: GroupCommitter<Database>;
  readonly db: Kysely<Database>;

  private readonly hotSql: typeof hotSql;

  /**
   * Each transaction's highest energy register among stored readings that its row's last_meter_wh
   * does not show yet. Reads of transactions see it at once; it is written once a second.
   *
   * Why: raising last_meter_wh with every MeterValues was one UPDATE per message, about 3.5 µs of
   * the saturate benchmark's ~69 (5 %), for a figure that is derived from readings stored in the same
   * commit. Should the process die before the write, `open` raises it again from those readings.
   */
  private readonly unwrittenEnergy = new Map<number, number>();
  private readonly energyTimer: NodeJS.Timeout;
  private energyWrite: Promise<void> = Promise.resolve();

  /** SQLite: whether meter_sample_inbox may hold committed samples not folded yet (ADR 0009). */
  private inboxPending = true;
  /**
   * SQLite: inbox ids at which a fold slice should end, each after `foldSliceStations` stations, in
   * the order the rows came. Hints only: ids of a write that was rolled back may be among them, and
   * a restart begins without any (the slices are then cut by rows alone).
   */
  private readonly inboxCuts: number[] = [];
  /** The stations of the inbox rows since the last cut, and the id of the newest of those rows. */
  private readonly stationsSinceCut = new Set<string>();
  private newestInboxId = 0;
  /** The fold in progress or last done; folds run one after another. */
  private folding: Promise<void> = Promise.resolve();
  private readonly foldTimer?: NodeJS.Timeout;

  constructor(
    private readonly opened: OpenedDatabase,
    options: StoreOptions = {},
  ) {
    this.db = opened.db;
    this.hotSql = hotSqlFor(opened.flavour);
    this.writes = new GroupCommitter(opened.db, { madeDurable: opened.syncLog });
    // Every write of the store goes through `writes`: holding them holds the connection's writes.
    opened.restartLogBy?.((during) => this.writes.pauseFor(during));
    this.energyTimer = setInterval(() => void this.writeEnergyRegisters(), 1000);
    this.energyTimer.unref();
    if (opened.sqlite) {
      // A database that went away leaves the samples in the inbox, committed; the next tick tries again.
      this.foldTimer = setInterval(() => void this.foldInbox().catch(() => undefined), options.sampleFoldIntervalMs ?? 500);
      this.foldTimer.unref();
    }
  }

  static async open(url: string, options?: StoreOptions): Promise<KyselyStore> {
    const store = new KyselyStore(await openDatabase(url, options), options);
    try {
      await store.raiseEnergyOfOpenTransactions();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /** A transaction as read, with the energy register not yet written to its row. */
  private transaction(row: Selectable<TransactionsTable>): Transaction {
    const t = transactionFromRow(row);
    const unwritten = this.unwrittenEnergy.get(t.id);
    if (unwritten === undefined || (t.lastMeterWh !== null && t.lastMeterWh > unwritten)) return t;
    return { ...t, lastMeterWh: unwritten, energyWh: t.meterStop !== null ? t.energyWh : unwritten - t.meterStart };
  }

  /** Keeps the highest register of each transaction among readings just committed. */
  private noteEnergyRegisters(added: MeterReading[]): void {
    for (const [transactionId, { value }] of latestEnergyRegisters(added)) {
      const seen = this.unwrittenEnergy.get(transactionId);
      if (seen === undefined || value >= seen) this.unwrittenEnergy.set(transactionId, value);
    }
  }

  /** Writes the registers noted so far (raise only); those noted again meanwhile wait for the next. */
  private writeEnergyRegisters(): Promise<void> {
    if (this.unwrittenEnergy.size === 0) return this.energyWrite;
    this.energyWrite = this.energyWrite.then(async () => {
      const batch = [...this.unwrittenEnergy];
      if (batch.length === 0) return;
      const sqlite = this.opened.sqlite;
      try {
        await this.write(async (trx) => {
          if (sqlite) {
            const raise = sqlite.prepare(hotSql.raiseLastMeterWh);
            for (const [transactionId, value] of batch) raise.run(value, transactionId, value);
          } else {
            for (const [transactionId, value] of batch) await trx.executeQuery(CompiledQuery.raw(this.hotSql.raiseLastMeterWh, [value, transactionId, value]));
          }
        });
      } catch {
        // The database is away: the registers stay noted, and readers still see them; the next tick tries again.
        return;
      }
      for (const [transactionId, value] of batch) if (this.unwrittenEnergy.get(transactionId) === value) this.unwrittenEnergy.delete(transactionId);
    });
    return this.energyWrite;
  }

  /**
   * Raises each open transaction's last_meter_wh from its latest stored readings: what a process
   * that stopped without writing its noted registers (killed, or the machine lost power) left out.
   */
  private async raiseEnergyOfOpenTransactions(): Promise<void> {
    await this.foldInbox();
    const open = await this.db.selectFrom('transactions').select(['id', 'station_id', 'connector_id']).where('stop_time', 'is', null).execute();
    for (const t of open) {
      // The station's samples newest first (its index), the last few of this transaction: the
      // register is in nearly every sample, and the latest is the one a raise keeps.
      const rows = await this.db
        .selectFrom('meter_samples')
        .selectAll()
        .where('station_id', '=', t.station_id)
        .where('connector_id', '=', t.connector_id)
        .where('transaction_id', '=', Number(t.id))
        .orderBy('ts', 'desc')
        .limit(16)
        .execute();
      this.noteEnergyRegisters(rows.flatMap((row) => decodeReadings(row)));
    }
    await this.writeEnergyRegisters();
  }

  get flavour() {
    return this.opened.flavour;
  }

  get description() {
    return this.opened.description;
  }

  private write<T>(op: (trx: Trx<Database>) => T | Promise<T>): Promise<T> {
    return this.writes.run(op);
  }

  async close(): Promise<void> {
    clearInterval(this.energyTimer);
    clearInterval(this.foldTimer);
    // Not needed for durability (the inbox is committed and folded at the next open), but leaves
    // the database as readers outside this process expect it; a database gone away keeps them there.
    await this.foldInbox().catch(() => undefined);
    await this.writeEnergyRegisters();
    await this.writes.drain();
    await this.db.destroy();
    await this.opened.checkpointerStopped?.();
  }

  // stations

  async getStation(id: string) {
    const row = await this.db.selectFrom('stations').selectAll().where('id', '=', id).executeTakeFirst();
    return row && stationFromRow(row);
  }

  async listStations() {
    return (await this.db.selectFrom('stations').selectAll().orderBy('id').execute()).map(stationFromRow);
  }

  async createStation(s: Parameters<Store['createStation']>[0]) {
    await this.write((trx) =>
      trx
        .insertInto('stations')
        .values({ id: s.id, registration: s.registration, security_profile: s.securityProfile, created_at: s.createdAt, local_list_version: 0 })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute(),
    );
    return (await this.getStation(s.id))!;
  }

  async updateStation(id: string, patch: Parameters<Store['updateStation']>[1]) {
    const values: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(patch)) {
      const column = stationColumns[key as keyof typeof stationColumns];
      if (column && value !== undefined) values[column] = value;
    }
    if (Object.keys(values).length === 0) return;
    await this.write((trx) => trx.updateTable('stations').set(values).where('id', '=', id).execute());
  }

  async setStationPassword(id: string, hash: string | null) {
    await this.write((trx) => trx.updateTable('stations').set({ password_hash: hash, pending_password_hash: null }).where('id', '=', id).execute());
  }

  async setPendingStationPassword(id: string, hash: string | null) {
    await this.write((trx) => trx.updateTable('stations').set({ pending_password_hash: hash }).where('id', '=', id).execute());
  }

  async getPendingStationPasswordHash(id: string) {
    const row = await this.db.selectFrom('stations').select('pending_password_hash').where('id', '=', id).executeTakeFirst();
    return row?.pending_password_hash ?? null;
  }

  async getStationPasswordHash(id: string) {
    const row = await this.db.selectFrom('stations').select('password_hash').where('id', '=', id).executeTakeFirst();
    return row?.password_hash ?? null;
  }

  async deleteStation(id: string) {
    const result = await this.write(async (trx) => {
      await trx.deleteFrom('connectors').where('station_id', '=', id).execute();
      return trx.deleteFrom('stations').where('id', '=', id).executeTakeFirst();
    });
    return Number(result.numDeletedRows) > 0;
  }

  // connectors and status

  async recordStatus(c: StatusChange) {
    await this.write(async (trx) => {
      await trx
        .insertInto('status_history')
        .values({
          station_id: c.stationId,
          connector_id: c.connectorId,
          status: c.status,
          error_code: c.errorCode,
          info: c.info,
          vendor_id: c.vendorId,
          vendor_error_code: c.vendorErrorCode,
          since: c.since,
          received_at: c.receivedAt,
        })
        .execute();
      const current = {
        status: c.status,
        error_code: c.errorCode,
        info: c.info,
        vendor_id: c.vendorId,
        vendor_error_code: c.vendorErrorCode,
        since: c.since,
      };
      // A status queued while offline can arrive after a newer one: the live state keeps the newest.
      await trx
        .insertInto('connectors')
        .values({ station_id: c.stationId, connector_id: c.connectorId, ...current })
        .onConflict((oc) =>
          oc
            .columns(['station_id', 'connector_id'])
            .doUpdateSet(current)
            .where('connectors.since', '<=', c.since),
        )
        .execute();
    });
  }

  async listConnectors(stationId: string) {
    return this.listConnectorsOfStations([stationId]);
  }

  async listConnectorsOfStations(stationIds: string[]) {
    if (stationIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('connectors')
      .selectAll()
      .where('station_id', 'in', stationIds)
      .orderBy('station_id')
      .orderBy('connector_id')
      .execute();
    return rows.map(connectorFromRow);
  }

  async statusHistory(q: Parameters<Store['statusHistory']>[0]) {
    let query = this.db.selectFrom('status_history').selectAll().where('station_id', '=', q.stationId);
    if (q.connectorId !== undefined) query = query.where('connector_id', '=', q.connectorId);
    if (q.from) query = query.where('since', '>=', q.from);
    if (q.to) query = query.where('since', '<=', q.to);
    const rows = await query.orderBy('since').orderBy('id').limit(q.limit).execute();
    return rows.map((r) => ({ ...connectorFromRow(r), receivedAt: r.received_at }));
  }

  // id tags

  async getIdTag(idTag: string) {
    const r = await this.db.selectFrom('id_tags').selectAll().where('id_tag', '=', idTag).executeTakeFirst();
    return r && { idTag: r.id_tag, status: r.status as IdTag['status'], expiryDate: r.expiry_date, parentIdTag: r.parent_id_tag };
  }

  async listIdTags() {
    const rows = await this.db.selectFrom('id_tags').selectAll().orderBy('id_tag').execute();
    return rows.map((r) => ({ idTag: r.id_tag, status: r.status as IdTag['status'], expiryDate: r.expiry_date, parentIdTag: r.parent_id_tag }));
  }

  async upsertIdTag(t: IdTag) {
    const values = { status: t.status, expiry_date: t.expiryDate, parent_id_tag: t.parentIdTag };
    await this.write((trx) =>
      trx
        .insertInto('id_tags')
        .values({ id_tag: t.idTag, ...values })
        .onConflict((oc) => oc.column('id_tag').doUpdateSet(values))
        .execute(),
    );
  }

  async deleteIdTag(idTag: string) {
    const r = await this.write((trx) => trx.deleteFrom('id_tags').where('id_tag', '=', idTag).executeTakeFirst());
    return Number(r.numDeletedRows) > 0;
  }

  // transactions

  async startTransaction(t: Parameters<Store['startTransaction']>[0]) {
    return this.write(async (trx) => {
      const inserted = await trx
        .insertInto('transactions')
        .values({
          station_id: t.stationId,
          connector_id: t.connectorId,
          id_tag: t.idTag,
          start_time: t.startTime,
          meter_start: t.meterStart,
          reservation_id: t.reservationId,
          authorization: t.authorization,
        })
        .onConflict((oc) => oc.columns(['station_id', 'connector_id', 'start_time', 'id_tag', 'meter_start']).doNothing())
        .returningAll()
        .executeTakeFirst();
      if (inserted) return { transaction: this.transaction(inserted), repeated: false };
      const existing = await trx
        .selectFrom('transactions')
        .selectAll()
        .where('station_id', '=', t.stationId)
        .where('connector_id', '=', t.connectorId)
        .where('start_time', '=', t.startTime)
        .where('id_tag', '=', t.idTag)
        .where('meter_start', '=', t.meterStart)
        .executeTakeFirstOrThrow();
      return { transaction: this.transaction(existing), repeated: true };
    });
  }

  async stopTransaction(s: Parameters<Store['stopTransaction']>[0]) {
    return this.write(async (trx) => {
      const updated = await trx
        .updateTable('transactions')
        .set({ stop_time: s.stopTime, meter_stop: s.meterStop, stop_reason: s.stopReason, stop_id_tag: s.stopIdTag })
        .where('id', '=', s.id)
        .where('stop_time', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (updated) return { transaction: this.transaction(updated), repeated: false };
      const existing = await trx.selectFrom('transactions').selectAll().where('id', '=', s.id).executeTakeFirst();
      return { transaction: existing && this.transaction(existing), repeated: existing !== undefined };
    });
  }

  async getTransaction(id: number) {
    const { rows } = await this.db.executeQuery<Selectable<TransactionsTable>>(CompiledQuery.raw(this.hotSql.transactionById, [id]));
    return rows[0] && this.transaction(rows[0]);
  }

  async otherActiveTransactionOfIdTag(idTag: string, except: { stationId: string; connectorId: number; startTime: string }) {
    // One row through transactions_open_id_tag, however many sessions the tag has had or has open.
    const r = await this.db
      .selectFrom('transactions')
      .selectAll()
      .where('id_tag', '=', idTag)
      .where('stop_time', 'is', null)
      .where((eb) => eb.not(eb.and([eb('station_id', '=', except.stationId), eb('connector_id', '=', except.connectorId), eb('start_time', '=', except.startTime)])))
      .limit(1)
      .executeTakeFirst();
    return r && this.transaction(r);
  }

  async listTransactions(q: Parameters<Store['listTransactions']>[0]) {
    let query = this.db.selectFrom('transactions').selectAll();
    if (q.stationId) query = query.where('station_id', '=', q.stationId);
    if (q.idTag) query = query.where('id_tag', '=', q.idTag);
    if (q.from) query = query.where((eb) => eb.or([eb('stop_time', '>=', q.from!), eb('stop_time', 'is', null)]));
    if (q.to) query = query.where('start_time', '<=', q.to);
    if (q.active === true) query = query.where('stop_time', 'is', null);
    if (q.active === false) query = query.where('stop_time', 'is not', null);
    const rows = await query.orderBy('start_time', 'desc').orderBy('id', 'desc').limit(q.limit).offset(q.offset).execute();
    return rows.map((r) => this.transaction(r));
  }

  // meter values

  async addMeterReadings(readings: MeterReading[]) {
    if (readings.length === 0) return;
    const samples = samplesOf(readings);
    const sqlite = this.opened.sqlite;
    if (sqlite) {
      await this.write(() => this.landSamplesSqlite(sqlite, samples));
      // Whether an instant was new is known when it is folded. Noting a repeated register again
      // changes nothing: the noted register of a transaction only rises. So the readings as given
      // serve, without a copy per MeterValues.
      this.noteEnergyRegisters(readings);
      return;
    }
    // The energy registers are noted once the readings are committed (see unwrittenEnergy).
    this.noteEnergyRegisters(await this.addSamplesPostgres(samples));
  }

  private addSamplesPostgres(samples: MeterSample[]): Promise<MeterReading[]> {
    return this.write(async (trx) => {
      // PostgreSQL: one round trip for all of them.
      const rows = await trx
        .insertInto('meter_samples')
        .values(samples.map((m) => ({ station_id: m.stationId, connector_id: m.connectorId, transaction_id: m.transactionId, ts: m.timestamp, readings: encodeReadings(m.readings) })))
        .onConflict((oc) => oc.columns(['station_id', 'ts', 'connector_id']).doNothing())
        .returning(['station_id', 'connector_id', 'ts'])
        .execute();
      const created = new Set(rows.map((r) => instantKey(r.station_id, r.connector_id, r.ts)));
      const added: MeterReading[] = [];
      for (const m of samples) {
        if (created.has(instantKey(m.stationId, m.connectorId, m.timestamp))) {
          added.push(...m.readings);
          continue;
        }
        // An instant already stored: keep what it had, add what it lacked.
        const row = await trx
          .selectFrom('meter_samples')
          .selectAll()
          .where('station_id', '=', m.stationId)
          .where('ts', '=', m.timestamp)
          .where('connector_id', '=', m.connectorId)
          .executeTakeFirstOrThrow();
        const merge = mergeSample(decodeReadings(row), m.readings);
        if (merge.added.length === 0) continue;
        await trx
          .updateTable('meter_samples')
          .set({ readings: encodeReadings(merge.merged), transaction_id: row.transaction_id ?? m.transactionId })
          .where('id', '=', row.id)
          .execute();
        added.push(...merge.added);
      }
      return added;
    });
  }

  /**
   * The SQLite path of addMeterReadings, run synchronously on the connection inside the group's
   * transaction (ADR 0007): each sample is appended to meter_sample_inbox (ADR 0009).
   */
  private landSamplesSqlite(sqlite: BetterSqlite3.Database, samples: MeterSample[]): void {
    const insert = sqlite.prepare(sqliteInboxInsert);
    for (const m of samples) {
      const id = Number(insert.run(m.stationId, m.connectorId, m.transactionId, m.timestamp, encodeReadings(m.readings)).lastInsertRowid);
      if (!this.stationsSinceCut.has(m.stationId)) {
        if (this.stationsSinceCut.size >= foldSliceStations) {
          this.inboxCuts.push(this.newestInboxId);
          this.stationsSinceCut.clear();
        }
        this.stationsSinceCut.add(m.stationId);
      }
      this.newestInboxId = id;
    }
    this.inboxPending = true;
  }

  /** The id a fold slice beginning at `first` ends at, by stations; Infinity when no cut is known. */
  private inboxCutFrom(first: number): number {
    while (this.inboxCuts.length > 0 && this.inboxCuts[0]! < first) this.inboxCuts.shift();
    return this.inboxCuts[0] ?? Number.POSITIVE_INFINITY;
  }

  /**
   * Folds the samples committed to the inbox so far into meter_samples, a slice per write, and
   * resolves once they are there. Readers of samples call it first, so a reading the CSMS has
   * acknowledged is always found. Samples that arrive meanwhile wait for the next fold: under
   * steady load the inbox is never empty, and a reader must not wait for ever.
   */
  private foldInbox(): Promise<void> {
    const sqlite = this.opened.sqlite;
    if (!sqlite) return Promise.resolve();
    const fold = async () => {
      if (!this.inboxPending) return;
      let upTo: number | undefined;
      try {
        for (;;) {
          const more = await this.write(() => {
            upTo ??= (sqlite.prepare(sqliteInboxLast).get() as { id: number | null }).id ?? 0;
            return this.foldInboxSlice(sqlite, upTo);
          });
          if (!more) return;
        }
      } catch (err) {
        // A fold that did not commit leaves its rows in the inbox.
        this.inboxPending = true;
        throw err;
      }
    };
    this.folding = this.folding.catch(() => undefined).then(fold);
    return this.folding;
  }

  /**
   * Folds the inbox rows of the next slice of ids, up to `upTo`; whether rows up to `upTo` remain.
   * The new instants go over in one statement, inside SQLite; only the rows it leaves out (repeats)
   * come to JavaScript, where they are merged into what is stored, in the order they came.
   */
  private foldInboxSlice(sqlite: BetterSqlite3.Database, upTo: number): boolean {
    const first = (sqlite.prepare(sqliteInboxFirst).get() as { id: number | null }).id;
    if (first === null || first > upTo) {
      this.inboxPending = first !== null;
      return false;
    }
    // Nothing can be added to the inbox while this write runs (it is synchronous, inside the group's transaction).
    const newest = (sqlite.prepare(sqliteInboxLast).get() as { id: number }).id;
    const last = Math.min(upTo, first + foldSliceRows - 1, this.inboxCutFrom(first));
    const samplesBefore = (sqlite.prepare(sqliteSamplesLast).get() as { id: number | null }).id ?? 0;
    const inserted = sqlite.prepare(sqliteInboxFold).run(first, last).changes;
    // Repeats are rare: a slice whose every row went in needs no search for them. The search cost
    // about 2 µs a row, a quarter of a fold's CPU (measured on SQLite alone, 2,000-row slices).
    const rows = inserted === last - first + 1 ? inserted : (sqlite.prepare(sqliteInboxCount).get(first, last) as { rows: number }).rows;
    const leftovers = inserted === rows ? [] : (sqlite.prepare(sqliteInboxLeftovers).all(first, last, samplesBefore) as Array<Selectable<Database['meter_sample_inbox']>>);
    for (const row of leftovers) {
      // A MeterValues repeated after a lost answer, or a StopTransaction's transactionData at the
      // instant of the last MeterValues: keep what the stored instant had, add what it lacked.
      const stored = sqlite.prepare(sqliteSampleAt).get(row.station_id, row.ts, row.connector_id) as Selectable<Database['meter_samples']>;
      const merge = mergeSample(decodeReadings(stored), decodeReadings(row));
      if (merge.added.length === 0) continue;
      sqlite.prepare(sqliteSampleUpdate).run(encodeReadings(merge.merged), stored.transaction_id ?? row.transaction_id, stored.id);
    }
    if (last >= newest) {
      sqlite.prepare(sqliteInboxClear).run();
      // The ids of an empty inbox begin again (see its migration): so do its cuts.
      this.inboxCuts.length = 0;
      this.stationsSinceCut.clear();
    } else sqlite.prepare(sqliteInboxDelete).run(last);
    this.inboxPending = last < newest;
    return last < upTo;
  }

  async meterReadings(q: Parameters<Store['meterReadings']>[0]) {
    await this.foldInbox();
    const out: MeterReading[] = [];
    let { stationId, from, to } = q;
    if (q.transactionId !== undefined) {
      // A transaction's readings are its station's between its start and its stop. The station
      // stamps both with its own clock; a day either side still finds readings of a clock that
      // jumped during the session, and the transaction id decides.
      const transaction = await this.getTransaction(q.transactionId);
      if (!transaction || (stationId !== undefined && stationId !== transaction.stationId)) return out;
      stationId = transaction.stationId;
      const day = 86_400_000;
      const earliest = new Date(Date.parse(transaction.startTime) - day).toISOString();
      if (!from || from < earliest) from = earliest;
      if (transaction.stopTime) {
        const latest = new Date(Date.parse(transaction.stopTime) + day).toISOString();
        if (!to || to > latest) to = latest;
      }
    }
    // Samples are read in time order a page at a time until `limit` readings are found (with a
    // measurand filter a page can hold fewer than it has readings).
    const page = Math.max(100, Math.min(q.limit, 5000));
    let after: { ts: string; id: number } | undefined;
    for (;;) {
      let query = this.db.selectFrom('meter_samples').selectAll();
      if (stationId) query = query.where('station_id', '=', stationId);
      if (q.transactionId !== undefined) query = query.where('transaction_id', '=', q.transactionId);
      if (from) query = query.where('ts', '>=', from);
      if (to) query = query.where('ts', '<=', to);
      if (after) {
        const { ts, id } = after;
        query = query.where((eb) => eb.or([eb('ts', '>', ts), eb.and([eb('ts', '=', ts), eb('id', '>', id)])]));
      }
      const rows = await query.orderBy('ts').orderBy('id').limit(page).execute();
      for (const row of rows) {
        for (const r of decodeReadings(row)) {
          if (q.measurand && r.measurand !== q.measurand) continue;
          out.push(r);
          if (out.length >= q.limit) return out;
        }
      }
      if (rows.length < page) return out;
      const last = rows.at(-1)!;
      after = { ts: last.ts, id: last.id };
    }
  }

  // station events

  async addStationEvent(e: StationEventRecord) {
    await this.write((trx) =>
      trx
        .insertInto('station_events')
        .values({ station_id: e.stationId, kind: e.kind, status: e.status, ts: e.timestamp, payload: JSON.stringify(e.payload) })
        .execute(),
    );
  }

  async stationEvents(q: Parameters<Store['stationEvents']>[0]) {
    let query = this.db.selectFrom('station_events').selectAll().where('station_id', '=', q.stationId);
    if (q.kind) query = query.where('kind', '=', q.kind);
    const rows = await query.orderBy('ts', 'desc').orderBy('id', 'desc').limit(q.limit).execute();
    return rows.map((r) => ({ stationId: r.station_id, kind: r.kind, status: r.status, timestamp: r.ts, payload: JSON.parse(r.payload) as unknown }));
  }

  // reservations

  async createReservation(r: Reservation) {
    const values = {
      station_id: r.stationId,
      connector_id: r.connectorId,
      id_tag: r.idTag,
      parent_id_tag: r.parentIdTag,
      expiry_date: r.expiryDate,
      status: r.status,
    };
    await this.write((trx) =>
      trx
        .insertInto('reservations')
        .values({ id: r.id, ...values })
        .onConflict((oc) => oc.column('id').doUpdateSet(values))
        .execute(),
    );
  }

  async updateReservation(id: number, status: Reservation['status']) {
    await this.write((trx) => trx.updateTable('reservations').set({ status }).where('id', '=', id).execute());
  }

  async getReservation(id: number) {
    const r = await this.db.selectFrom('reservations').selectAll().where('id', '=', id).executeTakeFirst();
    return r && reservationFromRow(r);
  }

  async listReservations(stationId?: string) {
    let query = this.db.selectFrom('reservations').selectAll();
    if (stationId) query = query.where('station_id', '=', stationId);
    return (await query.orderBy('id', 'desc').execute()).map(reservationFromRow);
  }

  async expireReservations(now: string) {
    const r = await this.write((trx) =>
      trx.updateTable('reservations').set({ status: 'expired' }).where('status', '=', 'active').where('expiry_date', '<=', now).executeTakeFirst(),
    );
    return Number(r.numUpdatedRows);
  }

  async nextReservationId() {
    const r = await this.db
      .selectFrom('reservations')
      .select((eb) => eb.fn.max('id').as('max'))
      .executeTakeFirst();
    return Number(r?.max ?? 0) + 1;
  }

  // charging profiles

  async installedProfiles(stationId: string) {
    const rows = await this.db.selectFrom('charging_profiles').selectAll().where('station_id', '=', stationId).orderBy('id').execute();
    return rows.map((r) => ({ connectorId: r.connector_id, profile: JSON.parse(r.profile), source: r.source, installedAt: r.installed_at }));
  }

  async replaceInstalledProfiles(stationId: string, profiles: InstalledChargingProfile[]) {
    await this.write(async (trx) => {
      await trx.deleteFrom('charging_profiles').where('station_id', '=', stationId).execute();
      if (profiles.length === 0) return;
      await trx
        .insertInto('charging_profiles')
        .values(
          profiles.map((p) => ({
            station_id: stationId,
            connector_id: p.connectorId,
            charging_profile_id: p.profile.chargingProfileId,
            purpose: p.profile.chargingProfilePurpose,
            stack_level: p.profile.stackLevel,
            transaction_id: p.profile.transactionId ?? null,
            profile: JSON.stringify(p.profile),
            source: p.source,
            installed_at: p.installedAt,
          })),
        )
        .execute();
    });
  }

  async getProfileCapabilities(stationId: string) {
    const row = await this.db.selectFrom('stations').select('profile_capabilities').where('id', '=', stationId).executeTakeFirst();
    return row?.profile_capabilities ? (JSON.parse(row.profile_capabilities) as StationProfileCapabilities) : null;
  }

  async setProfileCapabilities(stationId: string, caps: StationProfileCapabilities | null) {
    await this.write((trx) => trx.updateTable('stations').set({ profile_capabilities: caps ? JSON.stringify(caps) : null }).where('id', '=', stationId).execute());
  }

  // sites

  async getSite(id: string) {
    const r = await this.db.selectFrom('sites').selectAll().where('id', '=', id).executeTakeFirst();
    return r && { id: r.id, definition: JSON.parse(r.definition), externalLimits: JSON.parse(r.external_limits), updatedAt: r.updated_at };
  }

  async listSites() {
    const rows = await this.db.selectFrom('sites').selectAll().orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, definition: JSON.parse(r.definition), externalLimits: JSON.parse(r.external_limits), updatedAt: r.updated_at }));
  }

  async putSite(site: StoredSite) {
    const values = { definition: JSON.stringify(site.definition), external_limits: JSON.stringify(site.externalLimits), updated_at: site.updatedAt };
    await this.write((trx) =>
      trx
        .insertInto('sites')
        .values({ id: site.id, ...values })
        .onConflict((oc) => oc.column('id').doUpdateSet(values))
        .execute(),
    );
  }

  async deleteSite(id: string) {
    const r = await this.write((trx) => trx.deleteFrom('sites').where('id', '=', id).executeTakeFirst());
    return Number(r.numDeletedRows) > 0;
  }

  // fleet

  async getVehicle(id: string) {
    const r = await this.db.selectFrom('vehicles').selectAll().where('id', '=', id).executeTakeFirst();
    return r && vehicleFromRow(r);
  }

  async listVehicles() {
    return (await this.db.selectFrom('vehicles').selectAll().orderBy('id').execute()).map(vehicleFromRow);
  }

  async putVehicle(v: Vehicle) {
    const values = {
      name: v.name,
      battery_kwh: v.batteryKwh,
      max_power_kw: v.maxPowerKw,
      target_soc_pct: v.targetSocPct,
      id_tags: JSON.stringify(v.idTags),
      updated_at: v.updatedAt,
    };
    await this.write((trx) =>
      trx
        .insertInto('vehicles')
        .values({ id: v.id, ...values })
        .onConflict((oc) => oc.column('id').doUpdateSet(values))
        .execute(),
    );
  }

  async deleteVehicle(id: string) {
    const r = await this.write((trx) => trx.deleteFrom('vehicles').where('id', '=', id).executeTakeFirst());
    return Number(r.numDeletedRows) > 0;
  }

  async putTrips(trips: VehicleTrip[], importedAt: string) {
    return this.write(async (trx) => {
      let added = 0;
      for (const t of trips) {
        const values = { site_id: t.siteId, arrival: t.arrival, energy_kwh: t.energyKwh, arrival_soc_pct: t.arrivalSocPct, target_soc_pct: t.targetSocPct, imported_at: importedAt };
        const existing = await trx.selectFrom('vehicle_trips').select('id').where('vehicle_id', '=', t.vehicleId).where('departure', '=', t.departure).executeTakeFirst();
        if (existing) await trx.updateTable('vehicle_trips').set(values).where('id', '=', existing.id).execute();
        else {
          await trx.insertInto('vehicle_trips').values({ vehicle_id: t.vehicleId, departure: t.departure, ...values }).execute();
          added++;
        }
      }
      return { added, updated: trips.length - added };
    });
  }

  async listTrips(q: { vehicleId?: string; siteId?: string; departsAfter?: string; arrivesBefore?: string; limit: number }) {
    let query = this.db.selectFrom('vehicle_trips').selectAll();
    if (q.vehicleId) query = query.where('vehicle_id', '=', q.vehicleId);
    if (q.siteId) query = query.where('site_id', '=', q.siteId);
    if (q.departsAfter) query = query.where('departure', '>', q.departsAfter);
    if (q.arrivesBefore) query = query.where('arrival', '<', q.arrivesBefore);
    const rows = await query.orderBy('departure').orderBy('vehicle_id').limit(q.limit).execute();
    return rows.map(
      (r): VehicleTrip => ({
        vehicleId: r.vehicle_id,
        siteId: r.site_id,
        arrival: r.arrival,
        departure: r.departure,
        energyKwh: r.energy_kwh === null ? null : Number(r.energy_kwh),
        arrivalSocPct: r.arrival_soc_pct === null ? null : Number(r.arrival_soc_pct),
        targetSocPct: r.target_soc_pct === null ? null : Number(r.target_soc_pct),
      }),
    );
  }

  async getSessionNeeds(transactionId: number) {
    const r = await this.db.selectFrom('session_needs').selectAll().where('transaction_id', '=', transactionId).executeTakeFirst();
    return r && (JSON.parse(r.needs) as SessionNeeds);
  }

  async putSessionNeeds(transactionId: number, needs: SessionNeeds) {
    const values = { needs: JSON.stringify(needs), updated_at: needs.updatedAt };
    await this.write((trx) =>
      trx
        .insertInto('session_needs')
        .values({ transaction_id: transactionId, ...values })
        .onConflict((oc) => oc.column('transaction_id').doUpdateSet(values))
        .execute(),
    );
  }

  // alarms

  async raiseAlarm(a: Omit<Alarm, 'id' | 'clearedAt'>) {
    const row = await this.write((trx) =>
      trx
        .insertInto('alarms')
        .values({ station_id: a.stationId, type: a.type, severity: a.severity, message: a.message, details: JSON.stringify(a.details), raised_at: a.raisedAt })
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    return alarmFromRow(row);
  }

  async listAlarms(q: { stationId?: string; active?: boolean; type?: string; limit: number }) {
    let query = this.db.selectFrom('alarms').selectAll();
    if (q.stationId) query = query.where('station_id', '=', q.stationId);
    if (q.type) query = query.where('type', '=', q.type);
    if (q.active === true) query = query.where('cleared_at', 'is', null);
    if (q.active === false) query = query.where('cleared_at', 'is not', null);
    return (await query.orderBy('raised_at', 'desc').orderBy('id', 'desc').limit(q.limit).execute()).map(alarmFromRow);
  }

  async clearAlarm(id: number, at: string) {
    const r = await this.write((trx) => trx.updateTable('alarms').set({ cleared_at: at }).where('id', '=', id).where('cleared_at', 'is', null).executeTakeFirst());
    return Number(r.numUpdatedRows) > 0;
  }

  // message log

  async appendMessageLog(entries: readonly NewMessageLogEntry[]) {
    if (entries.length === 0) return;
    // One row per station (store/message-log-chunks.ts), encoded before the write begins: the
    // transaction holds the event loop, the encoding need not.
    await this.writeMessageLogChunks(chunksOf(entries));
  }

  newMessageLogBatch(expectedBytes?: number): MessageLogBatch {
    // The buffer of the batch written last, when it is big enough (see MessageLogBatch's constructor).
    const spare = this.spareLogText;
    this.spareLogText = undefined;
    const expected = expectedBytes ?? 0;
    // A quarter more than expected, so that a batch seldom grows (a copy, and a new buffer).
    return new MessageLogBatch(spare && spare.length >= expected ? spare : expected + (expected >> 2));
  }
  private spareLogText: Buffer | undefined;

  /**
   * Writes a batch a slice at a time, each its own write: with 10,000 stations the frames of 200 ms
   * belong to hundreds of stations, and one commit of them all held the event loop for several
   * milliseconds (the steady benchmark's p99). A slice is whole chunks: up to 64 (64 rows) or about
   * 256 frames, whichever comes first (with 100 stations sending back to back, a transaction of 256
   * frames took 0.8 ms to insert and commit, one of 1024 frames 3 ms, for the same cost per frame;
   * docs/adr/0005).
   */
  async appendMessageLogBatch(batch: PortMessageLogBatch) {
    if (!(batch instanceof MessageLogBatch)) throw new TypeError('a message log batch must come from this store (newMessageLogBatch)');
    try {
      // Each slice encoded by its own write (see encodedSlices): its texts die young.
      for (const slice of batch.encodedSlices()) await this.writeMessageLogChunks(slice);
    } finally {
      this.spareLogText = batch.release();
    }
  }

  /** Writes chunks in one transaction; given as a function, they are encoded inside it. */
  private async writeMessageLogChunks(given: MessageLogChunk[] | (() => MessageLogChunk[])): Promise<void> {
    const encoded = typeof given === 'function' ? given : () => given;
    const sqlite = this.opened.sqlite;
    if (sqlite) {
      // As for meter values: a Kysely insert cost more to build (and, with a new row count each
      // time, to prepare) than the rows cost to write.
      await this.write(() => {
        const chunks = encoded();
        for (let i = 0; i < chunks.length; i += sqliteChunk) {
          const slice = chunks.slice(i, i + sqliteChunk);
          const params: unknown[] = [];
          for (const c of slice) params.push(c.stationId, c.firstAt, c.lastAt, c.frameCount, c.entries, c.entriesDeflated);
          sqlite.prepare(sqliteChunkInsert(slice.length)).run(...params);
        }
      });
      return;
    }
    await this.write((trx) =>
      trx
        .insertInto('message_log_chunks')
        .values(
          encoded().map((c) => ({
            station_id: c.stationId,
            first_at: c.firstAt,
            last_at: c.lastAt,
            frame_count: c.frameCount,
            entries: c.entries,
            entries_deflated: c.entriesDeflated,
          })),
        )
        .execute(),
    );
  }

  async messageLog(q: Parameters<Store['messageLog']>[0]) {
    const out: MessageLogEntry[] = [];
    if (q.limit <= 0) return out;
    // Chunks newest first, a page at a time, until `limit` entries are found; the action filter
    // applies to the decoded frames. A chunk holds one frame or a thousand: pages grow while they
    // fall short, but not past about 8,192 frames at the size of the chunks read so far.
    let upTo: number | undefined = q.before === undefined ? undefined : chunkIdOf(q.before - 1);
    let page = Math.min(16, q.limit);
    let chunksRead = 0;
    let framesRead = 0;
    for (;;) {
      let query = this.db.selectFrom('message_log_chunks').select(['id', 'station_id', 'entries', 'entries_deflated']).where('station_id', '=', q.stationId);
      if (upTo !== undefined) query = query.where('id', '<=', upTo);
      const rows = await query.orderBy('id', 'desc').limit(page).execute();
      for (const row of rows) {
        const entries = decodeChunkNewestFirst(row);
        framesRead += entries.length;
        for (const e of entries) {
          // The chunk holding `before` is read only below it.
          if (q.before !== undefined && e.id >= q.before) continue;
          if (q.action && e.action !== q.action) continue;
          out.push(e);
          if (out.length >= q.limit) return out;
        }
      }
      if (rows.length < page) return out;
      chunksRead += rows.length;
      upTo = Number(rows.at(-1)!.id) - 1;
      page = Math.max(1, Math.min(page * 2, 1024, Math.floor(8192 / (framesRead / chunksRead))));
    }
  }

  async pruneMessageLog(olderThan: string, keepPerStation: number) {
    // Whole chunks go, never part of one: by age once all of a chunk's frames are older than
    // `olderThan` (a chunk partly older stays until the rest is too), and by count the chunks older
    // than the newest that hold at least `keepPerStation` frames (so a station keeps up to a
    // chunk's worth more). Returns the frames removed.
    const frames = (r: { frames: number | string | bigint | null } | undefined) => Number(r?.frames ?? 0);
    return this.write(async (trx) => {
      const old = await trx
        .selectFrom('message_log_chunks')
        .select((eb) => eb.fn.sum<number>('frame_count').as('frames'))
        .where('last_at', '<', olderThan)
        .executeTakeFirst();
      let removed = frames(old);
      if (removed > 0) await trx.deleteFrom('message_log_chunks').where('last_at', '<', olderThan).execute();
      const stations = await trx.selectFrom('message_log_chunks').select('station_id').distinct().execute();
      for (const { station_id } of stations) {
        // The oldest chunk to keep: the newest one at which the frames counted from the newest reach the limit.
        const covered = trx
          .selectFrom('message_log_chunks')
          .select((eb) => ['id', eb.fn.sum<number>('frame_count').over((ob) => ob.orderBy('id', 'desc')).as('covered')])
          .where('station_id', '=', station_id)
          .as('c');
        const oldestKept = await trx.selectFrom(covered).select('c.id').where('c.covered', '>=', keepPerStation).orderBy('c.id', 'desc').limit(1).executeTakeFirst();
        if (!oldestKept) continue;
        const older = trx.selectFrom('message_log_chunks').where('station_id', '=', station_id).where('id', '<', oldestKept.id);
        const dropped = frames(await older.select((eb) => eb.fn.sum<number>('frame_count').as('frames')).executeTakeFirst());
        if (dropped === 0) continue;
        await trx.deleteFrom('message_log_chunks').where('station_id', '=', station_id).where('id', '<', oldestKept.id).execute();
        removed += dropped;
      }
      return removed;
    });
  }
}

function alarmFromRow(r: Selectable<import('./schema.js').AlarmsTable>): Alarm {
  return {
    id: Number(r.id),
    stationId: r.station_id,
    type: r.type,
    severity: r.severity as Alarm['severity'],
    message: r.message,
    details: JSON.parse(r.details) as unknown,
    raisedAt: r.raised_at,
    clearedAt: r.cleared_at,
  };
}

function reservationFromRow(r: {
  id: number;
  station_id: string;
  connector_id: number;
  id_tag: string;
  parent_id_tag: string | null;
  expiry_date: string;
  status: string;
}): Reservation {
  return {
    id: Number(r.id),
    stationId: r.station_id,
    connectorId: r.connector_id,
    idTag: r.id_tag,
    parentIdTag: r.parent_id_tag,
    expiryDate: r.expiry_date,
    status: r.status as Reservation['status'],
  };
}
