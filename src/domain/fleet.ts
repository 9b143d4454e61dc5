/**
 * The fleet: vehicles, their timetable, and what a charging session needs before it leaves.
 * These are the planner's sources of needs; resolving them is pure (time is an argument).
 */
import { CsvError, isoDateTimeWithZone, readCsvTable } from '../io/csv-table.js';
import type { Transaction } from './types.js';

/** A vehicle of the fleet registry. */
export interface Vehicle {
  id: string;
  name: string | null;
  batteryKwh: number;
  /** What the vehicle takes at most, kW (absent: whatever the connector gives). */
  maxPowerKw: number | null;
  /** SoC it should leave with when its trip says nothing, %. */
  targetSocPct: number | null;
  /** Id tags (RFID cards, vehicle ids) that identify the vehicle when it starts a transaction. */
  idTags: string[];
  updatedAt: string;
}

/** One stay at the depot from the timetable (rotation plan): arrival, next departure, and what it needs. */
export interface VehicleTrip {
  vehicleId: string;
  /** The site (depot) it returns to; with it, the planner counts the trip before the vehicle arrives. */
  siteId: string | null;
  arrival: string;
  departure: string;
  /** Energy to charge during the stay, kWh; or the SoCs below. */
  energyKwh: number | null;
  arrivalSocPct: number | null;
  targetSocPct: number | null;
}

/** What is known of a session's needs from outside (PUT /api/v1/transactions/{id}/needs). */
export interface SessionNeeds {
  departure?: string;
  /** Energy the whole session should deliver, kWh (counted from the transaction's start). */
  energyKwh?: number;
  targetSocPct?: number;
  batteryKwh?: number;
  maxPowerKw?: number;
  vehicleId?: string;
  updatedAt: string;
}

/** A session's needs as the planner uses them, and where each part came from. */
export interface ResolvedNeeds {
  transactionId: number;
  vehicleId: string | null;
  /** Departure, epoch ms; null: unknown (the session gets the balancer's fair share). */
  departureMs: number | null;
  /** Energy still to deliver, kWh; null: unknown. */
  remainingKwh: number | null;
  /** Energy delivered so far in this session, kWh. */
  deliveredKwh: number;
  socPct: number | null;
  targetSocPct: number | null;
  batteryKwh: number | null;
  maxPowerKw: number | null;
  /** Which source gave the departure and the energy: 'api', 'timetable', 'vehicle', 'soc'. */
  sources: { departure: string | null; energy: string | null };
}

/** How far ahead of a trip's arrival a transaction may start and still belong to it (an early bus). */
export const tripArrivalSlackMs = 2 * 3_600_000;

/** What a trip will need when the vehicle arrives, kWh, when that can be told. */
export function tripNeedKwh(trip: VehicleTrip, vehicle?: Vehicle): number | null {
  if (trip.energyKwh !== null) return trip.energyKwh;
  const target = trip.targetSocPct ?? vehicle?.targetSocPct ?? null;
  if (target === null || trip.arrivalSocPct === null || !vehicle) return null;
  return Math.max(0, ((target - trip.arrivalSocPct) / 100) * vehicle.batteryKwh);
}

/** The trip a vehicle is on at `nowMs`: arrived (or about to), not yet departed; the soonest departure. */
export function currentTrip(trips: readonly VehicleTrip[], vehicleId: string, nowMs: number): VehicleTrip | undefined {
  let best: VehicleTrip | undefined;
  for (const trip of trips) {
    if (trip.vehicleId !== vehicleId) continue;
    if (Date.parse(trip.arrival) - tripArrivalSlackMs > nowMs || Date.parse(trip.departure) <= nowMs) continue;
    if (!best || Date.parse(trip.departure) < Date.parse(best.departure)) best = trip;
  }
  return best;
}

/**
 * Combines what is known of a running session: explicit needs win over the timetable, the
 * timetable over the vehicle's defaults. The energy still to deliver comes, in that order, from an
 * explicit energy (minus what was delivered), a live SoC reading with a target and a battery,
 * a timetable energy (minus delivered), or the arrival SoC of the trip with a target (minus
 * delivered).
 */
export function resolveNeeds(input: {
  transaction: Transaction;
  needs?: SessionNeeds;
  vehicle?: Vehicle;
  trip?: VehicleTrip;
  /** Latest SoC the charger reported in this session, %. */
  socPct?: number;
}): ResolvedNeeds {
  const { transaction, needs, vehicle, trip } = input;
  const deliveredKwh = Math.max(0, (transaction.energyWh ?? 0) / 1000);
  const batteryKwh = needs?.batteryKwh ?? vehicle?.batteryKwh ?? null;
  const targetSocPct = needs?.targetSocPct ?? trip?.targetSocPct ?? vehicle?.targetSocPct ?? null;
  const socPct = input.socPct ?? null;

  let departureMs: number | null = null;
  let departureSource: string | null = null;
  if (needs?.departure) {
    departureMs = Date.parse(needs.departure);
    departureSource = 'api';
  } else if (trip) {
    departureMs = Date.parse(trip.departure);
    departureSource = 'timetable';
  }

  let remainingKwh: number | null = null;
  let energySource: string | null = null;
  if (needs?.energyKwh !== undefined) {
    remainingKwh = needs.energyKwh - deliveredKwh;
    energySource = 'api';
  } else if (socPct !== null && targetSocPct !== null && batteryKwh !== null) {
    remainingKwh = ((targetSocPct - socPct) / 100) * batteryKwh;
    energySource = 'soc';
  } else if (trip?.energyKwh !== null && trip?.energyKwh !== undefined) {
    remainingKwh = trip.energyKwh - deliveredKwh;
    energySource = 'timetable';
  } else if (trip?.arrivalSocPct !== null && trip?.arrivalSocPct !== undefined && targetSocPct !== null && batteryKwh !== null) {
    remainingKwh = ((targetSocPct - trip.arrivalSocPct) / 100) * batteryKwh - deliveredKwh;
    energySource = 'timetable';
  }
  if (remainingKwh !== null) remainingKwh = Math.max(0, remainingKwh);

  return {
    transactionId: transaction.id,
    vehicleId: needs?.vehicleId ?? vehicle?.id ?? null,
    departureMs,
    remainingKwh,
    deliveredKwh,
    socPct,
    targetSocPct,
    batteryKwh,
    maxPowerKw: needs?.maxPowerKw ?? vehicle?.maxPowerKw ?? null,
    sources: { departure: departureSource, energy: energySource },
  };
}

/**
 * The SoC a vehicle leaves with if it gets `deliveredKwh` more, when that can be told: from a
 * live SoC, else from the trip's arrival SoC and what was delivered so far.
 */
export function departureSocPct(needs: ResolvedNeeds, moreKwh: number, trip?: VehicleTrip): number | null {
  if (needs.batteryKwh === null || needs.batteryKwh <= 0) return null;
  if (needs.socPct !== null) return Math.min(100, needs.socPct + (moreKwh / needs.batteryKwh) * 100);
  if (trip?.arrivalSocPct !== null && trip?.arrivalSocPct !== undefined) {
    return Math.min(100, trip.arrivalSocPct + ((needs.deliveredKwh + moreKwh) / needs.batteryKwh) * 100);
  }
  return null;
}

/** Columns of the timetable CSV; `energy_kwh` or `target_soc_pct` (with a battery size somewhere) says what is needed. */
export const timetableColumns = ['vehicle_id', 'arrival', 'departure'] as const;

/**
 * Reads a timetable (rotation plan) CSV: `vehicle_id,arrival,departure` and any of
 * `site_id`, `energy_kwh`, `arrival_soc_pct`, `target_soc_pct`, `battery_kwh`. Every row is checked; the
 * first bad one throws a CsvError naming its line and column, so a bad file imports nothing.
 * `battery_kwh` is returned per vehicle, for vehicles the registry does not know yet.
 */
export function parseTimetableCsv(text: string, source = 'timetable'): { trips: VehicleTrip[]; batteryKwh: Map<string, number> } {
  const { rows } = readCsvTable(text, source, timetableColumns);
  const trips: VehicleTrip[] = [];
  const batteryKwh = new Map<string, number>();
  const number = (record: Record<string, string>, line: number, column: string, max: number): number | null => {
    const raw = record[column];
    if (raw === undefined || raw === '') return null;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || value > max) throw new CsvError(source, line, column, `${JSON.stringify(raw)} is not a number from 0 to ${max}`);
    return value;
  };
  const time = (record: Record<string, string>, line: number, column: string): string => {
    const raw = record[column] ?? '';
    if (!isoDateTimeWithZone.test(raw) || Number.isNaN(Date.parse(raw))) throw new CsvError(source, line, column, `${JSON.stringify(raw)} is not an ISO-8601 date-time with a zone`);
    return new Date(raw).toISOString();
  };
  for (const { record, line } of rows) {
    const vehicleId = record.vehicle_id ?? '';
    if (vehicleId === '' || vehicleId.length > 64) throw new CsvError(source, line, 'vehicle_id', 'must be 1 to 64 characters');
    const arrival = time(record, line, 'arrival');
    const departure = time(record, line, 'departure');
    if (Date.parse(departure) <= Date.parse(arrival)) throw new CsvError(source, line, 'departure', `${departure} is not after the arrival ${arrival}`);
    const siteId = record.site_id ?? '';
    if (siteId.length > 64) throw new CsvError(source, line, 'site_id', 'must be at most 64 characters');
    const trip: VehicleTrip = {
      vehicleId,
      siteId: siteId === '' ? null : siteId,
      arrival,
      departure,
      energyKwh: number(record, line, 'energy_kwh', 100_000),
      arrivalSocPct: number(record, line, 'arrival_soc_pct', 100),
      targetSocPct: number(record, line, 'target_soc_pct', 100),
    };
    const battery = number(record, line, 'battery_kwh', 100_000);
    if (battery !== null) {
      if (battery === 0) throw new CsvError(source, line, 'battery_kwh', 'must be above 0');
      batteryKwh.set(vehicleId, battery);
    }
    if (trip.energyKwh === null && trip.targetSocPct === null) {
      throw new CsvError(source, line, null, 'needs energy_kwh or target_soc_pct: without either the trip says nothing to plan for');
    }
    trips.push(trip);
  }
  return { trips, batteryKwh };
}
