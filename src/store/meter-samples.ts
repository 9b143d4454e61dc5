import type { MeterReading } from '../domain/types.js';

/**
 * How readings are stored: one row per sampled instant (station, connector, timestamp), its
 * readings together as JSON, instead of one row per reading.
 *
 * A MeterValues from a three-phase AC charger carries eight readings of one instant. As eight rows
 * they cost eight entries in each index; with 10,000 stations each entry lands on a different index
 * page, and SQLite spent about 104 µs per MeterValues inserting them against 31 µs as one row
 * (measured with 10,000 stations, three MeterValues per commit). Readings are always written and
 * read by station or transaction and time, never by measurand alone, so nothing needs them apart.
 */
export interface MeterSample {
  stationId: string;
  connectorId: number;
  transactionId: number | null;
  timestamp: string;
  readings: MeterReading[];
}

/** A reading inside a sample's JSON: [measurand, phase ('' when none), location, context, unit, value, rawValue, rawUnit, format, derived (0/1)]. */
type StoredReading = [string, string, string, string, string | null, number | null, string, string | null, string, 0 | 1];

/** What makes a reading a repeat of another of the same sample (as the old per-reading unique index did). */
const identity = (r: MeterReading) => `${r.measurand}\u0000${r.phase ?? ''}\u0000${r.location}\u0000${r.derived ? 1 : 0}`;

/** Groups readings by instant, in the order they came; a reading repeated within a sample is kept once. */
export function samplesOf(readings: MeterReading[]): MeterSample[] {
  const byInstant = new Map<string, { sample: MeterSample; seen: Set<string> }>();
  for (const r of readings) {
    const key = `${r.stationId}\u0000${r.connectorId}\u0000${r.timestamp}`;
    let entry = byInstant.get(key);
    if (!entry) {
      entry = { sample: { stationId: r.stationId, connectorId: r.connectorId, transactionId: r.transactionId, timestamp: r.timestamp, readings: [] }, seen: new Set() };
      byInstant.set(key, entry);
    }
    const id = identity(r);
    if (entry.seen.has(id)) continue;
    entry.seen.add(id);
    entry.sample.readings.push(r);
    if (entry.sample.transactionId === null) entry.sample.transactionId = r.transactionId;
  }
  return [...byInstant.values()].map((e) => e.sample);
}

export function encodeReadings(readings: MeterReading[]): string {
  const stored: StoredReading[] = [];
  for (const r of readings) stored.push([r.measurand, r.phase ?? '', r.location, r.context, r.unit, r.value, r.rawValue, r.rawUnit, r.format, r.derived ? 1 : 0]);
  return JSON.stringify(stored);
}

export function decodeReadings(row: { station_id: string; connector_id: number; transaction_id: number | null; ts: string; readings: string }): MeterReading[] {
  const stored = JSON.parse(row.readings) as StoredReading[];
  return stored.map(([measurand, phase, location, context, unit, value, rawValue, rawUnit, format, derived]) => ({
    stationId: row.station_id,
    connectorId: row.connector_id,
    transactionId: row.transaction_id,
    timestamp: row.ts,
    measurand,
    phase: phase === '' ? null : phase,
    location,
    context,
    unit,
    value: value === null ? null : Number(value),
    rawValue,
    rawUnit,
    format,
    derived: derived === 1,
  }));
}

/**
 * A sample for an instant that is already stored (a station repeating a MeterValues whose answer it
 * lost, or a StopTransaction's transactionData at the instant of the last MeterValues): the readings
 * not stored yet, and the merged list to store. Nothing new means nothing to write.
 */
export function mergeSample(stored: MeterReading[], incoming: MeterReading[]): { added: MeterReading[]; merged: MeterReading[] } {
  const seen = new Set(stored.map(identity));
  const added = incoming.filter((r) => !seen.has(identity(r)));
  return { added, merged: added.length === 0 ? stored : [...stored, ...added] };
}
