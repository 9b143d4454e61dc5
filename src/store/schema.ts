import type { Generated } from 'kysely';

/** Table shapes as Kysely sees them. Times are ISO-8601 UTC text with milliseconds in both
 * databases, so they sort as text and round-trip exactly (docs/adr/0002-storage.md). */
export interface StationsTable {
  id: string;
  registration: string;
  security_profile: number;
  password_hash: string | null;
  pending_password_hash: string | null;
  /** JSON of StationProfileCapabilities once asked (GetConfiguration), else null. */
  profile_capabilities: string | null;
  vendor: string | null;
  model: string | null;
  serial_number: string | null;
  firmware_version: string | null;
  iccid: string | null;
  imsi: string | null;
  meter_type: string | null;
  meter_serial_number: string | null;
  local_list_version: number;
  created_at: string;
  last_boot_at: string | null;
  last_seen_at: string | null;
}

export interface ConnectorsTable {
  station_id: string;
  connector_id: number;
  status: string;
  error_code: string;
  info: string | null;
  vendor_id: string | null;
  vendor_error_code: string | null;
  since: string;
}

export interface StatusHistoryTable {
  id: Generated<number>;
  station_id: string;
  connector_id: number;
  status: string;
  error_code: string;
  info: string | null;
  vendor_id: string | null;
  vendor_error_code: string | null;
  since: string;
  received_at: string;
}

export interface IdTagsTable {
  id_tag: string;
  status: string;
  expiry_date: string | null;
  parent_id_tag: string | null;
}

export interface TransactionsTable {
  id: Generated<number>;
  station_id: string;
  connector_id: number;
  id_tag: string;
  start_time: string;
  meter_start: number;
  reservation_id: number | null;
  stop_time: string | null;
  meter_stop: number | null;
  stop_reason: string | null;
  stop_id_tag: string | null;
  last_meter_wh: number | null;
  authorization: string;
}

/** One sampled instant of a station's connector; its readings as JSON (see store/meter-samples.ts). */
export interface MeterSamplesTable {
  id: Generated<number>;
  station_id: string;
  connector_id: number;
  transaction_id: number | null;
  ts: string;
  readings: string;
}

export interface StationEventsTable {
  id: Generated<number>;
  station_id: string;
  kind: string;
  status: string | null;
  ts: string;
  payload: string;
}

export interface ReservationsTable {
  id: number;
  station_id: string;
  connector_id: number;
  id_tag: string;
  parent_id_tag: string | null;
  expiry_date: string;
  status: string;
}

/** A station's frames of one write, together as JSON (see store/message-log-chunks.ts). */
export interface MessageLogChunksTable {
  id: Generated<number>;
  station_id: string;
  /** The earliest and the latest `at` of its frames. */
  first_at: string;
  last_at: string;
  frame_count: number;
  /** The frames' text (store/message-log-chunks.ts); empty when `entries_deflated` holds it. */
  entries: string;
  /** The frames' text deflated (zlib), for chunks of many frames. */
  entries_deflated: Buffer | null;
}

export interface ChargingProfilesTable {
  id: Generated<number>;
  station_id: string;
  connector_id: number;
  charging_profile_id: number;
  purpose: string;
  stack_level: number;
  transaction_id: number | null;
  profile: string;
  source: string;
  installed_at: string;
}

export interface AlarmsTable {
  id: Generated<number>;
  station_id: string | null;
  type: string;
  severity: string;
  message: string;
  details: string;
  raised_at: string;
  cleared_at: string | null;
}

export interface SitesTable {
  id: string;
  /** JSON of the site as PUT through the API (SiteDefinition). */
  definition: string;
  /** JSON of the external limits in force or to come (ExternalLimit[]). */
  external_limits: string;
  updated_at: string;
}

export interface VehiclesTable {
  id: string;
  name: string | null;
  battery_kwh: number;
  max_power_kw: number | null;
  target_soc_pct: number | null;
  /** JSON array of the id tags that identify this vehicle when it starts a transaction. */
  id_tags: string;
  updated_at: string;
}

export interface VehicleTripsTable {
  id: Generated<number>;
  vehicle_id: string;
  /** The depot (site) the vehicle returns to, when the timetable says. */
  site_id: string | null;
  arrival: string;
  departure: string;
  energy_kwh: number | null;
  arrival_soc_pct: number | null;
  target_soc_pct: number | null;
  imported_at: string;
}

export interface SessionNeedsTable {
  transaction_id: number;
  /** JSON of the needs given for the session (SessionNeeds). */
  needs: string;
  updated_at: string;
}

export interface Database {
  vehicles: VehiclesTable;
  vehicle_trips: VehicleTripsTable;
  session_needs: SessionNeedsTable;
  sites: SitesTable;
  charging_profiles: ChargingProfilesTable;
  alarms: AlarmsTable;
  stations: StationsTable;
  connectors: ConnectorsTable;
  status_history: StatusHistoryTable;
  id_tags: IdTagsTable;
  transactions: TransactionsTable;
  meter_samples: MeterSamplesTable;
  /** SQLite: samples committed but not yet folded into meter_samples (ADR 0009); same columns. */
  meter_sample_inbox: MeterSamplesTable;
  station_events: StationEventsTable;
  reservations: ReservationsTable;
  message_log_chunks: MessageLogChunksTable;
}
