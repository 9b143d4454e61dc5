/**
 * A generated bus depot timetable: every bus comes back in the evening, charges overnight and
 * leaves the next morning, night after night. Pure and seeded: the same options give the same
 * rows, and nothing reads a clock or a file.
 *
 * Times are UTC and treated as the depot's local time ("local-ish"): the evaluation's tariff is
 * written against the same clock, so the offset would only shift everything together.
 *
 * A bus keeps its duty from night to night: its usual return and pull-out times and how deep it
 * drains its battery are drawn once per bus, and each night varies around them. That is what a
 * depot's real timetable looks like: the buses that come back last or leave first are mostly the
 * same every night. A delayed return strikes any bus on any night.
 *
 * The rows are what happens, late returns included. What the depot knows in advance is the
 * rotation plan: each bus-night's scheduled return (without the delay) and its pull-out, known
 * some hours before (DEPOT_ANNOUNCE_LEAD_S).
 */
import { mulberry32 } from '../simulator/scenarios.js';
import type { ReplaySession } from '../charging/planner/simulate.js';

export const TIMETABLE_CSV_COLUMNS = ['vehicle_id', 'arrival', 'departure', 'arrival_soc_pct', 'target_soc_pct', 'battery_kwh'] as const;

/** One bus-night: a row of the timetable CSV. */
export interface DepotTimetableRow {
  vehicleId: string;
  arrivalMs: number;
  departureMs: number;
  /** Whole percent. */
  arrivalSocPct: number;
  /** Whole percent. */
  targetSocPct: number;
  batteryKwh: number;
}

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/**
 * How long before a bus's scheduled return the depot knows of its night: 12 h. A depot's
 * rotation plan for the coming night (which bus runs which block, when it comes back and pulls
 * out again) is settled by the morning dispatch, so the evening returns (17:30–23:30) are known
 * from 05:30–11:30 on, well before the first bus is back.
 */
export const DEPOT_ANNOUNCE_LEAD_S = 12 * 3600;

/** Minutes after midnight. */
const at = (hours: number, minutes = 0) => hours * 60 + minutes;

export interface DepotTimetableOptions {
  buses: number;
  nights: number;
  seed: number;
  /** UTC midnight of the day of the first evening. Default Monday 2026-03-02. */
  firstDayMs?: number;
  /** Default 350. */
  batteryKwh?: number;
  /** Usual evening returns, minutes after midnight of the evening's day. Default 17:30–23:30. */
  arrivalWindowMin?: readonly [number, number];
  /** Pull-outs, minutes after midnight of the next day. Default 04:30–07:30. */
  departureWindowMin?: readonly [number, number];
  /** Chance per bus-night of a late return (a delay, a breakdown on the road). Default 0.05. */
  lateReturnChance?: number;
  /** How much later a late return is, minutes. Default 30–120, so past midnight at worst. */
  lateReturnDelayMin?: readonly [number, number];
  /** Arrival state of charge, percent. Default 15–60. */
  arrivalSocPct?: readonly [number, number];
  /** Default 90. */
  targetSocPct?: number;
  /** Chance per bus-night of a full charge (a long route next day, or cell balancing). Default 0.08. */
  fullChargeChance?: number;
}

export const DEFAULT_DEPOT_TIMETABLE = {
  firstDayMs: Date.UTC(2026, 2, 2),
  batteryKwh: 350,
  arrivalWindowMin: [at(17, 30), at(23, 30)] as const,
  departureWindowMin: [at(4, 30), at(7, 30)] as const,
  lateReturnChance: 0.05,
  lateReturnDelayMin: [30, 120] as const,
  arrivalSocPct: [15, 60] as const,
  targetSocPct: 90,
  fullChargeChance: 0.08,
};

/** Nightly variation around a bus's usual times, minutes either side. */
const RETURN_JITTER_MIN = 20;
const PULL_OUT_JITTER_MIN = 10;
/** Nightly variation around a bus's usual arrival state of charge, points either side. */
const SOC_JITTER_PCT = 8;

/** A bus-night as it happens, with the return its rotation plan scheduled. */
export interface DepotBusNight extends DepotTimetableRow {
  /** arrivalMs without the late-return delay, which nobody knows in advance. */
  scheduledArrivalMs: number;
}

/**
 * Rows for `buses` buses over `nights` nights, ordered by night and then by bus. Vehicle ids are
 * `bus-001`, `bus-002`, ...; a bus appears once per night.
 */
export function generateDepotTimetable(options: DepotTimetableOptions): DepotTimetableRow[] {
  return generateDepotBusNights(options).map(({ scheduledArrivalMs: _, ...row }) => row);
}

/** The rows of generateDepotTimetable with each one's scheduled return. */
export function generateDepotBusNights(options: DepotTimetableOptions): DepotBusNight[] {
  const o = { ...DEFAULT_DEPOT_TIMETABLE, ...options };
  for (const key of ['buses', 'nights'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1) throw new RangeError(`${key} must be an integer >= 1, got ${o[key]}`);
  }
  if (!Number.isFinite(o.seed)) throw new RangeError(`seed must be a number, got ${o.seed}`);
  const next = mulberry32(o.seed);
  const between = (min: number, max: number) => min + (max - min) * next();
  const clamp = (x: number, [min, max]: readonly [number, number]) => Math.min(max, Math.max(min, x));

  // A bus's duty, drawn once: the nights below vary around it.
  const duties = Array.from({ length: o.buses }, (_, b) => ({
    vehicleId: `bus-${String(b + 1).padStart(3, '0')}`,
    returnMin: between(o.arrivalWindowMin[0], o.arrivalWindowMin[1]),
    pullOutMin: between(o.departureWindowMin[0], o.departureWindowMin[1]),
    socPct: between(o.arrivalSocPct[0], o.arrivalSocPct[1]),
  }));

  const rows: DepotBusNight[] = [];
  for (let night = 0; night < o.nights; night++) {
    const eveningMs = o.firstDayMs + night * DAY_MS;
    for (const duty of duties) {
      const scheduledMin = clamp(duty.returnMin + between(-RETURN_JITTER_MIN, RETURN_JITTER_MIN), o.arrivalWindowMin);
      let returnMin = scheduledMin;
      if (next() < o.lateReturnChance) returnMin += between(o.lateReturnDelayMin[0], o.lateReturnDelayMin[1]);
      const pullOutMin = clamp(duty.pullOutMin + between(-PULL_OUT_JITTER_MIN, PULL_OUT_JITTER_MIN), o.departureWindowMin);
      const arrivalSocPct = Math.round(clamp(duty.socPct + between(-SOC_JITTER_PCT, SOC_JITTER_PCT), o.arrivalSocPct));
      const targetSocPct = next() < o.fullChargeChance ? 100 : o.targetSocPct;
      rows.push({
        vehicleId: duty.vehicleId,
        // Whole minutes: a timetable is written in minutes.
        arrivalMs: eveningMs + Math.round(returnMin) * MINUTE_MS,
        departureMs: eveningMs + DAY_MS + Math.round(pullOutMin) * MINUTE_MS,
        arrivalSocPct,
        targetSocPct: Math.max(targetSocPct, arrivalSocPct),
        batteryKwh: o.batteryKwh,
        scheduledArrivalMs: eveningMs + Math.round(scheduledMin) * MINUTE_MS,
      });
    }
  }
  return rows;
}

/** ISO-8601 in UTC without the milliseconds, which a minute-based timetable never has. */
export function isoUtc(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}

/** The timetable CSV the CSMS imports: a header and one line per bus-night, LF line ends. */
export function depotTimetableCsv(rows: readonly DepotTimetableRow[]): string {
  const lines = rows.map((r) =>
    [r.vehicleId, isoUtc(r.arrivalMs), isoUtc(r.departureMs), r.arrivalSocPct, r.targetSocPct, r.batteryKwh].join(','),
  );
  return `${[TIMETABLE_CSV_COLUMNS.join(','), ...lines].join('\n')}\n`;
}

/** Energy a bus-night needs to reach its target, kWh. */
export function requestedKwhOf(row: DepotTimetableRow): number {
  // Percent points times capacity, divided once: (90 − 15) × 350 / 100 is exactly 262.5.
  return (Math.max(0, row.targetSocPct - row.arrivalSocPct) * row.batteryKwh) / 100;
}

/**
 * The planner's sessions for the rows: one per bus-night, id `vehicle@arrival`. A timetable's
 * departure is known, so the planner is told the real one. With `announceLeadS`, each session
 * is announced that long before its scheduled return (the row's arrival for rows without one),
 * and the planner expects it then.
 */
export function depotReplaySessions(rows: readonly (DepotTimetableRow | DepotBusNight)[], chargerKw = 150, announceLeadS?: number): ReplaySession[] {
  return rows.map((r) => {
    const session: ReplaySession = {
      id: `${r.vehicleId}@${isoUtc(r.arrivalMs)}`,
      arrivalMs: r.arrivalMs,
      departureMs: r.departureMs,
      estimatedDepartureMs: r.departureMs,
      requestedKwh: requestedKwhOf(r),
      maxPowerKw: chargerKw,
    };
    if (announceLeadS === undefined) return session;
    const expectedArrivalMs = 'scheduledArrivalMs' in r ? r.scheduledArrivalMs : r.arrivalMs;
    return { ...session, announcedMs: expectedArrivalMs - announceLeadS * 1000, expectedArrivalMs };
  });
}
