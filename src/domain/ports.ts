import type { StationProfileCapabilities } from '../charging/profiles/fit.js';
import type { StoredSite } from './sites.js';
import type { SessionNeeds, Vehicle, VehicleTrip } from './fleet.js';
import type {
  Alarm,
  InstalledChargingProfile,
  ConnectorState,
  IdTag,
  MessageLogEntry,
  NewMessageLogEntry,
  MeterReading,
  RegistrationStatus,
  Reservation,
  SecurityProfile,
  Station,
  StationEventRecord,
  StatusChange,
  Transaction,
} from './types.js';

/** What the domain needs from storage. Implemented over Kysely in src/store; the domain sees only this. */
export interface Store {
  // stations
  getStation(id: string): Promise<Station | undefined>;
  listStations(): Promise<Station[]>;
  createStation(s: { id: string; registration: RegistrationStatus; securityProfile: SecurityProfile; createdAt: string }): Promise<Station>;
  updateStation(id: string, patch: Partial<Omit<Station, 'id' | 'createdAt' | 'hasPassword'>>): Promise<void>;
  setStationPassword(id: string, hash: string | null): Promise<void>;
  getStationPasswordHash(id: string): Promise<string | null>;
  /** A password the station will switch to (after a reboot); accepted beside the current one until used. */
  setPendingStationPassword(id: string, hash: string | null): Promise<void>;
  getPendingStationPasswordHash(id: string): Promise<string | null>;
  deleteStation(id: string): Promise<boolean>;

  // connectors and status
  recordStatus(change: StatusChange): Promise<void>;
  listConnectors(stationId: string): Promise<ConnectorState[]>;
  listConnectorsOfStations(stationIds: string[]): Promise<ConnectorState[]>;
  statusHistory(q: { stationId: string; connectorId?: number; from?: string; to?: string; limit: number }): Promise<StatusChange[]>;

  // id tags
  getIdTag(idTag: string): Promise<IdTag | undefined>;
  listIdTags(): Promise<IdTag[]>;
  upsertIdTag(tag: IdTag): Promise<void>;
  deleteIdTag(idTag: string): Promise<boolean>;

  // transactions
  /** Inserts, or returns the existing transaction when the station repeats the same start. */
  startTransaction(t: Omit<Transaction, 'id' | 'stopTime' | 'meterStop' | 'stopReason' | 'stopIdTag' | 'lastMeterWh' | 'energyWh'>): Promise<{ transaction: Transaction; repeated: boolean }>;
  /** Stops once; a repeated stop changes nothing and reports `repeated`. */
  stopTransaction(s: { id: number; stopTime: string; meterStop: number; stopReason: string | null; stopIdTag: string | null }): Promise<{ transaction: Transaction | undefined; repeated: boolean }>;
  getTransaction(id: number): Promise<Transaction | undefined>;
  /** An open transaction of the tag other than the one given (the same start repeated is not another). */
  otherActiveTransactionOfIdTag(idTag: string, except: { stationId: string; connectorId: number; startTime: string }): Promise<Transaction | undefined>;
  listTransactions(q: { stationId?: string; idTag?: string; from?: string; to?: string; active?: boolean; limit: number; offset: number }): Promise<Transaction[]>;

  // meter values
  /**
   * Stores readings durably. A reading already stored (same station, connector, time, measurand,
   * phase, location) is not stored again: reads return it once.
   */
  addMeterReadings(readings: MeterReading[]): Promise<void>;
  meterReadings(q: { stationId?: string; transactionId?: number; measurand?: string; from?: string; to?: string; limit: number }): Promise<MeterReading[]>;

  // everything else a station reports
  addStationEvent(e: StationEventRecord): Promise<void>;
  stationEvents(q: { stationId: string; kind?: string; limit: number }): Promise<StationEventRecord[]>;

  // reservations
  createReservation(r: Reservation): Promise<void>;
  updateReservation(id: number, status: Reservation['status']): Promise<void>;
  getReservation(id: number): Promise<Reservation | undefined>;
  listReservations(stationId?: string): Promise<Reservation[]>;
  /** Marks active reservations whose expiry date has passed as expired; returns how many. */
  expireReservations(now: string): Promise<number>;
  nextReservationId(): Promise<number>;

  // message log
  /** Writes entries, each station's as one chunk (or more, past a thousand frames), in one write. */
  appendMessageLog(entries: readonly NewMessageLogEntry[]): Promise<void>;
  /** A batch to gather frames in as they cross the wire, in the store's own form (see MessageLogBatch). */
  newMessageLogBatch(expectedBytes?: number): MessageLogBatch;
  /** Writes a batch this store made, a few stations per write, so that no write holds the event loop long. */
  appendMessageLogBatch(batch: MessageLogBatch): Promise<void>;
  messageLog(q: { stationId: string; before?: number; limit: number; action?: string }): Promise<MessageLogEntry[]>;
  pruneMessageLog(olderThan: string, keepPerStation: number): Promise<number>;

  // charging profiles each charger holds
  installedProfiles(stationId: string): Promise<InstalledChargingProfile[]>;
  /** Replaces the whole record of a station's profiles in one write. */
  replaceInstalledProfiles(stationId: string, profiles: InstalledChargingProfile[]): Promise<void>;
  getProfileCapabilities(stationId: string): Promise<StationProfileCapabilities | null>;
  setProfileCapabilities(stationId: string, caps: StationProfileCapabilities | null): Promise<void>;

  // sites
  getSite(id: string): Promise<StoredSite | undefined>;
  listSites(): Promise<StoredSite[]>;
  putSite(site: StoredSite): Promise<void>;
  deleteSite(id: string): Promise<boolean>;

  // fleet: vehicles, their timetable, and the needs of sessions
  getVehicle(id: string): Promise<Vehicle | undefined>;
  listVehicles(): Promise<Vehicle[]>;
  putVehicle(v: Vehicle): Promise<void>;
  deleteVehicle(id: string): Promise<boolean>;
  /** Adds trips, or updates those with the same vehicle and departure; all or nothing. Returns how many were new. */
  putTrips(trips: VehicleTrip[], importedAt: string): Promise<{ added: number; updated: number }>;
  listTrips(q: { vehicleId?: string; siteId?: string; departsAfter?: string; arrivesBefore?: string; limit: number }): Promise<VehicleTrip[]>;
  getSessionNeeds(transactionId: number): Promise<SessionNeeds | undefined>;
  putSessionNeeds(transactionId: number, needs: SessionNeeds): Promise<void>;

  // alarms
  raiseAlarm(a: Omit<Alarm, 'id' | 'clearedAt'>): Promise<Alarm>;
  listAlarms(q: { stationId?: string; active?: boolean; type?: string; limit: number }): Promise<Alarm[]>;
  clearAlarm(id: number, at: string): Promise<boolean>;

  close(): Promise<void>;
}

/** Sends a command to a station and returns its answer (the gateway, or NATS in a cluster). */
export interface CommandSender {
  /** `source` says who sends (api, balancer, failsafe): recorded with profiles the station accepts. */
  send(stationId: string, action: string, payload: unknown, opts?: { timeoutMs?: number; source?: string }): Promise<any>;
  isConnected(stationId: string): boolean;
}

/** Domain events, fanned out to SSE, metrics, and (later) smart charging and alarms. */
export type DomainEvent =
  | { type: 'station.connected'; stationId: string; at: string }
  | { type: 'station.disconnected'; stationId: string; at: string; reason: string }
  | { type: 'station.booted'; stationId: string; at: string; registration: RegistrationStatus }
  | { type: 'connector.status'; at: string; status: StatusChange }
  | { type: 'transaction.started'; at: string; transaction: Transaction }
  | { type: 'transaction.stopped'; at: string; transaction: Transaction }
  | { type: 'meter.values'; at: string; stationId: string; connectorId: number; transactionId: number | null; readings: MeterReading[] }
  | { type: 'station.event'; at: string; event: StationEventRecord }
  | { type: 'alarm.raised'; at: string; alarm: Alarm };

export interface EventBus {
  publish(event: DomainEvent): void;
  subscribe(listener: (event: DomainEvent) => void): () => void;
}

export interface Clock {
  now(): Date;
}

/**
 * Frames gathered for the message log until they are written, held by the store in the form it
 * writes them in: the log's writer adds every frame of every station, so what a frame leaves on the
 * JavaScript heap until the next write is garbage the collector copies again and again.
 */
export interface MessageLogBatch {
  /** Adds a frame; `at` is its time, in ms since the epoch. */
  add(stationId: string, at: number, direction: 'in' | 'out', messageType: number | null, messageId: string | null, action: string | null, frame: string): void;
  /** Frames added so far. */
  readonly frames: number;
  /** Bytes held so far (to size the next batch). */
  readonly bytes: number;
}
