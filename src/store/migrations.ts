import { sql, type CreateTableBuilder, type Kysely, type Migration, type MigrationProvider } from 'kysely';

export type SqlFlavour = 'sqlite' | 'postgres';

/**
 * One list of migrations for both databases. They differ only in the type of an auto-increment
 * key and of a double, which each migration picks from the flavour.
 */
function migrations(flavour: SqlFlavour): Record<string, Migration> {
  const pg = flavour === 'postgres';
  const double = sql.raw(pg ? 'double precision' : 'real');
  const table = (db: Kysely<any>, name: string, idType: 'serial' | 'bigserial') =>
    db.schema
      .createTable(name)
      .addColumn('id', pg ? idType : 'integer', (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement())) as CreateTableBuilder<string, never>;

  return {
    '0001_core': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('stations')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('registration', 'text', (c) => c.notNull())
          .addColumn('security_profile', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('password_hash', 'text')
          .addColumn('vendor', 'text')
          .addColumn('model', 'text')
          .addColumn('serial_number', 'text')
          .addColumn('firmware_version', 'text')
          .addColumn('iccid', 'text')
          .addColumn('imsi', 'text')
          .addColumn('meter_type', 'text')
          .addColumn('meter_serial_number', 'text')
          .addColumn('local_list_version', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('last_boot_at', 'text')
          .addColumn('last_seen_at', 'text')
          .execute();

        await db.schema
          .createTable('connectors')
          .addColumn('station_id', 'text', (c) => c.notNull().references('stations.id').onDelete('cascade'))
          .addColumn('connector_id', 'integer', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('error_code', 'text', (c) => c.notNull())
          .addColumn('info', 'text')
          .addColumn('vendor_id', 'text')
          .addColumn('vendor_error_code', 'text')
          .addColumn('since', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('connectors_pk', ['station_id', 'connector_id'])
          .execute();

        await table(db, 'status_history', 'bigserial')
          .addColumn('station_id', 'text', (c) => c.notNull())
          .addColumn('connector_id', 'integer', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('error_code', 'text', (c) => c.notNull())
          .addColumn('info', 'text')
          .addColumn('vendor_id', 'text')
          .addColumn('vendor_error_code', 'text')
          .addColumn('since', 'text', (c) => c.notNull())
          .addColumn('received_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('status_history_station_time').on('status_history').columns(['station_id', 'since']).execute();

        await db.schema
          .createTable('id_tags')
          .addColumn('id_tag', 'text', (c) => c.primaryKey())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('expiry_date', 'text')
          .addColumn('parent_id_tag', 'text')
          .execute();

        await table(db, 'transactions', 'serial')
          .addColumn('station_id', 'text', (c) => c.notNull())
          .addColumn('connector_id', 'integer', (c) => c.notNull())
          .addColumn('id_tag', 'text', (c) => c.notNull())
          .addColumn('start_time', 'text', (c) => c.notNull())
          .addColumn('meter_start', 'integer', (c) => c.notNull())
          .addColumn('reservation_id', 'integer')
          .addColumn('stop_time', 'text')
          .addColumn('meter_stop', 'integer')
          .addColumn('stop_reason', 'text')
          .addColumn('stop_id_tag', 'text')
          .addColumn('last_meter_wh', double)
          .addColumn('authorization', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('transactions_station_start').on('transactions').columns(['station_id', 'start_time']).execute();
        await db.schema.createIndex('transactions_id_tag').on('transactions').columns(['id_tag', 'start_time']).execute();
        await db.schema.createIndex('transactions_start_time').on('transactions').column('start_time').execute();
        // The same start repeated after a lost answer must map to the same transaction.
        await db.schema
          .createIndex('transactions_start_identity')
          .on('transactions')
          .columns(['station_id', 'connector_id', 'start_time', 'id_tag', 'meter_start'])
          .unique()
          .execute();

        await table(db, 'meter_values', 'bigserial')
          .addColumn('station_id', 'text', (c) => c.notNull())
          .addColumn('connector_id', 'integer', (c) => c.notNull())
          .addColumn('transaction_id', 'integer')
          .addColumn('ts', 'text', (c) => c.notNull())
          .addColumn('measurand', 'text', (c) => c.notNull())
          .addColumn('phase', 'text', (c) => c.notNull())
          .addColumn('location', 'text', (c) => c.notNull())
          .addColumn('context', 'text', (c) => c.notNull())
          .addColumn('unit', 'text')
          .addColumn('value', double)
          .addColumn('raw_value', 'text', (c) => c.notNull())
          .addColumn('raw_unit', 'text')
          .addColumn('format', 'text', (c) => c.notNull())
          .addColumn('derived', 'integer', (c) => c.notNull())
          .execute();
        // A station that repeats MeterValues after a lost answer must not be counted twice.
        await db.schema
          .createIndex('meter_values_identity')
          .on('meter_values')
          .columns(['station_id', 'connector_id', 'ts', 'measurand', 'phase', 'location', 'derived'])
          .unique()
          .execute();
        await db.schema.createIndex('meter_values_transaction').on('meter_values').columns(['transaction_id', 'ts']).execute();
        await db.schema.createIndex('meter_values_station_time').on('meter_values').columns(['station_id', 'ts']).execute();

        await table(db, 'station_events', 'bigserial')
          .addColumn('station_id', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('status', 'text')
          .addColumn('ts', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('station_events_station').on('station_events').columns(['station_id', 'kind', 'ts']).execute();

        await db.schema
          .createTable('reservations')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('station_id', 'text', (c) => c.notNull())
          .addColumn('connector_id', 'integer', (c) => c.notNull())
          .addColumn('id_tag', 'text', (c) => c.notNull())
          .addColumn('parent_id_tag', 'text')
          .addColumn('expiry_date', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .execute();

        await table(db, 'message_log', 'bigserial')
          .addColumn('station_id', 'text', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('direction', 'text', (c) => c.notNull())
          .addColumn('message_type', 'integer')
          .addColumn('message_id', 'text')
          .addColumn('action', 'text')
          .addColumn('frame', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('message_log_station').on('message_log').columns(['station_id', 'id']).execute();
      },
    },
    '0002_pending_password': {
      // A charger that answers ChangeConfiguration AuthorizationKey with RebootRequired switches to the
      // new password only after its reboot; until it logs in with it, both passwords must work.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('stations').addColumn('pending_password_hash', 'text').execute();
      },
    },
    '0003_charging_profiles_and_alarms': {
      async up(db: Kysely<any>) {
        // What each charger holds: the CSMS's record of every profile a charger accepted.
        await table(db, 'charging_profiles', 'bigserial')
          .addColumn('station_id', 'text', (c) => c.notNull())
          .addColumn('connector_id', 'integer', (c) => c.notNull())
          .addColumn('charging_profile_id', 'integer', (c) => c.notNull())
          .addColumn('purpose', 'text', (c) => c.notNull())
          .addColumn('stack_level', 'integer', (c) => c.notNull())
          .addColumn('transaction_id', 'integer')
          .addColumn('profile', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('installed_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('charging_profiles_station').on('charging_profiles').columns(['station_id', 'connector_id']).execute();
        await table(db, 'alarms', 'bigserial')
          .addColumn('station_id', 'text')
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('severity', 'text', (c) => c.notNull())
          .addColumn('message', 'text', (c) => c.notNull())
          .addColumn('details', 'text', (c) => c.notNull())
          .addColumn('raised_at', 'text', (c) => c.notNull())
          .addColumn('cleared_at', 'text')
          .execute();
        await db.schema.createIndex('alarms_open').on('alarms').columns(['cleared_at', 'raised_at']).execute();
        await db.schema.alterTable('stations').addColumn('profile_capabilities', 'text').execute();
      },
    },
    '0004_sites': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('sites')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('definition', 'text', (c) => c.notNull())
          .addColumn('external_limits', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0005_fleet_and_needs': {
      async up(db: Kysely<any>) {
        // The fleet registry and its timetable are where a planner learns departures and needs.
        await db.schema
          .createTable('vehicles')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text')
          .addColumn('battery_kwh', double, (c) => c.notNull())
          .addColumn('max_power_kw', double)
          .addColumn('target_soc_pct', double)
          .addColumn('id_tags', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await table(db, 'vehicle_trips', 'bigserial')
          .addColumn('vehicle_id', 'text', (c) => c.notNull())
          .addColumn('site_id', 'text')
          .addColumn('arrival', 'text', (c) => c.notNull())
          .addColumn('departure', 'text', (c) => c.notNull())
          .addColumn('energy_kwh', double)
          .addColumn('arrival_soc_pct', double)
          .addColumn('target_soc_pct', double)
          .addColumn('imported_at', 'text', (c) => c.notNull())
          .execute();
        // A trip is known by its vehicle and departure: importing a timetable again updates it.
        await db.schema.createIndex('vehicle_trips_departure').on('vehicle_trips').columns(['vehicle_id', 'departure']).unique().execute();
        await db.schema
          .createTable('session_needs')
          .addColumn('transaction_id', 'integer', (c) => c.primaryKey())
          .addColumn('needs', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0006_meter_values_one_index_less': {
      // Each reading went into four B-trees (the table, the identity, by transaction, by station and
      // time). The identity ordered by station and time first serves the station-and-time queries
      // too, so the fourth goes: a quarter less index work for every reading stored.
      async up(db: Kysely<any>) {
        await db.schema
          .createIndex('meter_values_identity_by_time')
          .on('meter_values')
          .columns(['station_id', 'ts', 'connector_id', 'measurand', 'phase', 'location', 'derived'])
          .unique()
          .execute();
        await db.schema.dropIndex('meter_values_identity').execute();
        await db.schema.dropIndex('meter_values_station_time').execute();
      },
    },
    '0007_meter_samples': {
      // One row per sampled instant instead of per reading (see store/meter-samples.ts): a
      // MeterValues is one entry per index instead of eight. The readings stored so far move over.
      async up(db: Kysely<any>) {
        await table(db, 'meter_samples', 'bigserial')
          .addColumn('station_id', 'text', (c) => c.notNull())
          .addColumn('connector_id', 'integer', (c) => c.notNull())
          .addColumn('transaction_id', 'integer')
          .addColumn('ts', 'text', (c) => c.notNull())
          .addColumn('readings', 'text', (c) => c.notNull())
          .execute();
        // The identity of an instant (a repeated MeterValues is merged, not stored twice), and the
        // order in which a station's readings are read back. A transaction's readings are found
        // through it too, by the transaction's station and time: an index by transaction would be
        // one more page written per MeterValues (a quarter of the commit with 100 stations).
        await db.schema.createIndex('meter_samples_identity').on('meter_samples').columns(['station_id', 'ts', 'connector_id']).unique().execute();
        const reading = sql`measurand, phase, location, context, unit, value, raw_value, raw_unit, format, derived`;
        const readings = pg ? sql`json_agg(json_build_array(${reading}) order by id)::text` : sql`json_group_array(json_array(${reading}) order by id)`;
        await sql`insert into meter_samples (station_id, connector_id, transaction_id, ts, readings)
          select station_id, connector_id, max(transaction_id), ts, ${readings}
          from meter_values group by station_id, ts, connector_id order by min(id)`.execute(db);
        await db.schema.dropTable('meter_values').execute();
      },
    },
    '0008_message_log_chunks': {
      // One row per station per write instead of per frame (see store/message-log-chunks.ts). The
      // frames stored so far move over as chunks of one frame, keeping their row id as the chunk's:
      // their entry ids become id × 1024, still in the order they came.
      async up(db: Kysely<any>) {
        await table(db, 'message_log_chunks', 'bigserial')
          .addColumn('station_id', 'text', (c) => c.notNull())
          .addColumn('first_at', 'text', (c) => c.notNull())
          .addColumn('last_at', 'text', (c) => c.notNull())
          .addColumn('frame_count', 'integer', (c) => c.notNull())
          .addColumn('entries', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('message_log_chunks_station').on('message_log_chunks').columns(['station_id', 'id']).execute();
        const frame = sql`at, direction, message_type, message_id, action, frame`;
        const entries = pg ? sql`json_build_array(json_build_array(${frame}))::text` : sql`json_array(json_array(${frame}))`;
        await sql`insert into message_log_chunks (id, station_id, first_at, last_at, frame_count, entries)
          select id, station_id, at, at, 1, ${entries} from message_log order by id`.execute(db);
        // PostgreSQL's sequence does not see ids given explicitly (SQLite's AUTOINCREMENT does).
        if (pg) await sql`select setval(pg_get_serial_sequence('message_log_chunks', 'id'), coalesce((select max(id) from message_log_chunks), 0) + 1, false)`.execute(db);
        await db.schema.dropTable('message_log').execute();
      },
    },
    '0009_meter_sample_inbox': {
      // Where SQLite lands each MeterValues before it is folded into meter_samples in bulk (ADR
      // 0009): a table with no index but its row id, so a commit appends to its last pages instead
      // of writing one page of meter_samples' index per station. PostgreSQL writes samples straight
      // into meter_samples and leaves it empty; it exists there too so that both schemas are one.
      // On SQLite the key is the plain row id, without AUTOINCREMENT's write to sqlite_sequence on
      // every insert: an id may come again once the inbox is empty, which the fold, ordering only
      // the rows present, does not mind.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('meter_sample_inbox')
          .addColumn('id', pg ? 'bigserial' : 'integer', (c) => c.primaryKey())
          .addColumn('station_id', 'text', (c) => c.notNull())
          .addColumn('connector_id', 'integer', (c) => c.notNull())
          .addColumn('transaction_id', 'integer')
          .addColumn('ts', 'text', (c) => c.notNull())
          .addColumn('readings', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0010_message_log_deflated': {
      // A chunk of many frames is stored deflated (store/message-log-chunks.ts); its `entries` is
      // then empty. Chunks written before keep their JSON in `entries`.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('message_log_chunks').addColumn('entries_deflated', pg ? 'bytea' : 'blob').execute();
      },
    },
    '0011_open_transactions_by_id_tag': {
      // StartTransaction asks whether its idTag is charging elsewhere (ConcurrentTx). Through
      // transactions_id_tag that read walked every transaction the tag ever had: a depot's shared
      // fleet tag has thousands, and with 2,000 stations starting within seconds these reads held
      // the event loop for 2.4 s at a stretch (steady p99 3.4 to 3.9 s, session 10). This index
      // holds only the open ones.
      async up(db: Kysely<any>) {
        await sql`create index transactions_open_id_tag on transactions (id_tag) where stop_time is null`.execute(db);
      },
    },
  };
}

export function migrationProvider(flavour: SqlFlavour): MigrationProvider {
  return { getMigrations: async () => migrations(flavour) };
}
