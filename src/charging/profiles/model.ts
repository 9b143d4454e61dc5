/**
 * OCPP 1.6 charging profiles as they travel on the wire (SetChargingProfile.req
 * csChargingProfiles), plus the few facts about a station and its transactions
 * that the composite schedule depends on.
 *
 * Date-times stay the ISO 8601 strings of the wire so that a profile read from a
 * message, a database row or a JSON case file can be used without conversion;
 * `parseOcppDateTime` turns them into instants where arithmetic is needed.
 */

export type ChargingProfilePurpose = 'ChargePointMaxProfile' | 'TxDefaultProfile' | 'TxProfile';
export type ChargingProfileKind = 'Absolute' | 'Recurring' | 'Relative';
export type RecurrencyKind = 'Daily' | 'Weekly';
export type ChargingRateUnit = 'A' | 'W';

export const chargingProfilePurposes: readonly ChargingProfilePurpose[] = [
  'ChargePointMaxProfile',
  'TxDefaultProfile',
  'TxProfile',
];
export const chargingProfileKinds: readonly ChargingProfileKind[] = ['Absolute', 'Recurring', 'Relative'];
export const recurrencyKinds: readonly RecurrencyKind[] = ['Daily', 'Weekly'];
export const chargingRateUnits: readonly ChargingRateUnit[] = ['A', 'W'];

export interface ChargingSchedulePeriod {
  /** Seconds from the start of the schedule. */
  startPeriod: number;
  /** In the schedule's chargingRateUnit: A per phase, or W in total. At most one decimal. */
  limit: number;
  /** Phases the limit applies to; the charger assumes 3 when absent. */
  numberPhases?: number;
}

export interface ChargingSchedule {
  /** Seconds; absent means the last period runs on for ever. */
  duration?: number;
  startSchedule?: string;
  chargingRateUnit: ChargingRateUnit;
  chargingSchedulePeriod: ChargingSchedulePeriod[];
  minChargingRate?: number;
}

/** csChargingProfiles of OCPP 1.6 SetChargingProfile.req, field for field. */
export interface ChargingProfile {
  chargingProfileId: number;
  transactionId?: number;
  stackLevel: number;
  chargingProfilePurpose: ChargingProfilePurpose;
  chargingProfileKind: ChargingProfileKind;
  recurrencyKind?: RecurrencyKind;
  validFrom?: string;
  validTo?: string;
  chargingSchedule: ChargingSchedule;
}

/** A profile as a charger holds it: on connector 0 (the whole charge point) or on one connector. */
export interface InstalledProfile {
  connectorId: number;
  profile: ChargingProfile;
}

/** A transaction running on a connector since startTime. */
export interface TransactionInfo {
  connectorId: number;
  transactionId: number;
  startTime: Date;
}

/** What the schedule arithmetic needs to know about the station's electrics. */
export interface StationElectrical {
  /** Number of connectors, numbered 1..connectors; 0 means the charge point as a whole. */
  connectors: number;
  /** Nominal phase-to-neutral voltage used for A <-> W conversion; default 230. */
  supplyVoltage?: number;
  /** Phases assumed where a period or a request does not say; default 3. */
  defaultNumberPhases?: number;
  /**
   * Per-phase current one connector can deliver (A); default 32. OCPP cannot express
   * "no limit" in a schedule, so a stretch where no profile constrains a connector is
   * reported at this current (see docs/smart-charging.md).
   */
  connectorMaxCurrent?: number;
}

export const defaultSupplyVoltage = 230;
export const defaultNumberPhases = 3;
export const defaultConnectorMaxCurrent = 32;

/** StationElectrical with every default filled in. */
export type ResolvedStationElectrical = Required<StationElectrical>;

export function resolveStation(station: StationElectrical): ResolvedStationElectrical {
  return {
    connectors: station.connectors,
    supplyVoltage: station.supplyVoltage ?? defaultSupplyVoltage,
    defaultNumberPhases: station.defaultNumberPhases ?? defaultNumberPhases,
    connectorMaxCurrent: station.connectorMaxCurrent ?? defaultConnectorMaxCurrent,
  };
}

/**
 * OCPP dateTime as used on the wire. A time zone designator is required: without one
 * JavaScript reads the time in the host's zone, which would make the pure core give
 * different answers on different machines.
 */
const ocppDateTimePattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/** Milliseconds since the epoch, or undefined when the text is not an OCPP dateTime. */
export function parseOcppDateTime(text: unknown): number | undefined {
  if (typeof text !== 'string' || !ocppDateTimePattern.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}
