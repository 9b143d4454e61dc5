/**
 * The domain vocabulary. OCPP 1.6 and 2.0.1 adapters translate their wire messages into these
 * terms; nothing past the adapters knows which version a station speaks.
 */

export type RegistrationStatus = 'accepted' | 'pending' | 'rejected';
export type SecurityProfile = 0 | 1 | 2 | 3;

export interface Station {
  id: string;
  registration: RegistrationStatus;
  securityProfile: SecurityProfile;
  hasPassword: boolean;
  vendor: string | null;
  model: string | null;
  serialNumber: string | null;
  firmwareVersion: string | null;
  iccid: string | null;
  imsi: string | null;
  meterType: string | null;
  meterSerialNumber: string | null;
  localListVersion: number;
  createdAt: string;
  lastBootAt: string | null;
  lastSeenAt: string | null;
}

export interface ConnectorState {
  stationId: string;
  connectorId: number;
  status: string;
  errorCode: string;
  info: string | null;
  vendorId: string | null;
  vendorErrorCode: string | null;
  /** When the station says the status began (its own timestamp, else when we received it). */
  since: string;
}

export interface StatusChange extends ConnectorState {
  receivedAt: string;
}

export type IdTagStatus = 'Accepted' | 'Blocked' | 'Expired' | 'Invalid' | 'ConcurrentTx';

export interface IdTag {
  idTag: string;
  status: Exclude<IdTagStatus, 'ConcurrentTx'>;
  expiryDate: string | null;
  parentIdTag: string | null;
}

/** What the station is told about an identifier (OCPP IdTagInfo). */
export interface Authorization {
  status: IdTagStatus;
  expiryDate?: string;
  parentIdTag?: string;
}

export interface Transaction {
  id: number;
  stationId: string;
  connectorId: number;
  idTag: string;
  startTime: string;
  meterStart: number;
  reservationId: number | null;
  stopTime: string | null;
  meterStop: number | null;
  stopReason: string | null;
  stopIdTag: string | null;
  /** Latest Energy.Active.Import.Register seen during the transaction, in Wh. */
  lastMeterWh: number | null;
  /** meterStop − meterStart once stopped; the latest register − meterStart while running. */
  energyWh: number | null;
  authorization: IdTagStatus;
}

export type Phase = 'L1' | 'L2' | 'L3' | 'N' | 'L1-N' | 'L2-N' | 'L3-N' | 'L1-L2' | 'L2-L3' | 'L3-L1';

/** One sampled value, normalised: energy in Wh (or varh), power in W (or var), current A, voltage V, SoC %. */
export interface MeterReading {
  stationId: string;
  connectorId: number;
  transactionId: number | null;
  timestamp: string;
  measurand: string;
  phase: string | null;
  location: string;
  context: string;
  unit: string | null;
  /** Normalised numeric value; null for signed data or a value that is not a number. */
  value: number | null;
  rawValue: string;
  rawUnit: string | null;
  format: string;
  /** True when we computed it (power from current × voltage), not the station. */
  derived: boolean;
}

export interface StationEventRecord {
  stationId: string;
  /** SecurityEvent, FirmwareStatus, DiagnosticsStatus, LogStatus, SignedFirmwareStatus, DataTransfer, SignCertificate, … */
  kind: string;
  status: string | null;
  timestamp: string;
  payload: unknown;
}

export interface Reservation {
  id: number;
  stationId: string;
  connectorId: number;
  idTag: string;
  parentIdTag: string | null;
  expiryDate: string;
  status: 'active' | 'used' | 'cancelled' | 'expired';
}

/** A profile a charger accepted, as the CSMS keeps it. */
export interface InstalledChargingProfile {
  connectorId: number;
  profile: import('../charging/profiles/model.js').ChargingProfile;
  /** Who installed it: the operator through the API, the balancer, the failsafe. */
  source: string;
  installedAt: string;
}

export interface Alarm {
  id: number;
  stationId: string | null;
  type: string;
  severity: 'critical' | 'major' | 'minor' | 'warning';
  message: string;
  details: unknown;
  raisedAt: string;
  clearedAt: string | null;
}

export interface MessageLogEntry {
  id: number;
  stationId: string;
  at: string;
  direction: 'in' | 'out';
  messageType: number | null;
  messageId: string | null;
  action: string | null;
  frame: string;
}

/** A frame to be logged; its time may still be the Date it was taken as (written as ISO-8601). */
export type NewMessageLogEntry = Omit<MessageLogEntry, 'id' | 'at'> & { at: string | Date };
