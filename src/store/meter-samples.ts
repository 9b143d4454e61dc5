import { normalisedUnit, normalisedValue } from '../domain/meter.js';
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
/**
 * A reading as the station sent it, for the usual reading (session 8): [measurand, phase ('' when
 * none), rawValue, rawUnit]. Its location is Outlet, its context Sample.Periodic, its format Raw, it
 * is not derived, and its unit and value are what normalising the raw value gives (domain/meter.ts),
 * which reading it back does again. Any other reading is stored whole, as a StoredReading. A
 * three-phase MeterValues took about 600 bytes whole and takes about 300 so; the bytes are written
 * twice on SQLite (inbox, then samples) and again by each checkpoint.
 */
type StoredRawReading = [string, string, string, string | null];

/** Whether two readings of one instant are the same reading (as the old per-reading unique index saw it). */
const sameReading = (a: MeterReading, b: MeterReading) => a.measurand === b.measurand && (a.phase ?? '') === (b.phase ?? '') && a.location === b.location && a.derived === b.derived;

/** Whether `readings` has `r` already (see sameReading). */
function holdsReading(readings: MeterReading[], r: MeterReading): boolean {
  for (const s of readings) if (sameReading(s, r)) return true;
  return false;
}

/** Groups readings by instant, in the order they came; a reading repeated within a sample is kept once. */
export function samplesOf(readings: MeterReading[]): MeterSample[] {
  const samples: MeterSample[] = [];
  // A MeterValues is nearly always one instant: compare with the last sample before any lookup.
  let byInstant: Map<string, MeterSample> | undefined;
  let last: MeterSample | undefined;
  for (const r of readings) {
    let sample = last && last.timestamp === r.timestamp && last.connectorId === r.connectorId && last.stationId === r.stationId ? last : undefined;
    if (!sample) {
      byInstant ??= new Map(samples.map((s) => [`${s.stationId}\u0000${s.connectorId}\u0000${s.timestamp}`, s]));
      const key = `${r.stationId}\u0000${r.connectorId}\u0000${r.timestamp}`;
      sample = byInstant.get(key);
      if (!sample) {
        sample = { stationId: r.stationId, connectorId: r.connectorId, transactionId: r.transactionId, timestamp: r.timestamp, readings: [] };
        samples.push(sample);
        byInstant.set(key, sample);
      }
    }
    last = sample;
    // A handful of readings per instant: a scan is cheaper than building keys.
    if (holdsReading(sample.readings, r)) continue;
    sample.readings.push(r);
    if (sample.transactionId === null) sample.transactionId = r.transactionId;
  }
  return samples;
}

/** Whether reading back the raw form of `r` gives `r` again. */
function storedRaw(r: MeterReading): boolean {
  if (r.location !== 'Outlet' || r.context !== 'Sample.Periodic' || r.format !== 'Raw' || r.derived) return false;
  const [unit, factor] = normalisedUnit(r.measurand, r.rawUnit);
  return unit === r.unit && normalisedValue(r.rawValue, r.format, factor) === r.value;
}

/**
 * The JSON of a sample's readings, written out by hand: JSON.stringify of the nested arrays took
 * about twice as long (2.7 against 1.4 µs for a three-phase MeterValues), on the path of every one.
 * A reading stored raw is its head (measurand and phase) and tail (unit), made once each, around its
 * value: 1.1 µs against 1.4 built piece by piece. The output is exactly JSON.stringify's of the stored forms.
 */
export function encodeReadings(readings: MeterReading[]): string {
  const parts = new Array<string>(readings.length);
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    if (storedRaw(r)) parts[i] = headOf(r.measurand, r.phase ?? '') + quotedValue(r.rawValue) + tailOf(r.rawUnit);
    else parts[i] = `[${quoted(r.measurand)},${quoted(r.phase ?? '')},${quoted(r.location)},${quoted(r.context)},${r.unit === null ? 'null' : quoted(r.unit)},${jsonNumber(r.value)},${quotedValue(r.rawValue)},${r.rawUnit === null ? 'null' : quoted(r.rawUnit)},${quoted(r.format)},${r.derived ? 1 : 0}]`;
  }
  return `[${parts.join(',')}]`;
}

/** Measurands, phases, units and the like come from short lists: their JSON is made once each. */
const quotedNames = new Map<string, string>();
function quoted(name: string): string {
  let json = quotedNames.get(name);
  if (json === undefined) {
    json = JSON.stringify(name);
    // A station sending ever new names must not grow the map without end.
    if (quotedNames.size < 1000) quotedNames.set(name, json);
  }
  return json;
}
/** `[measurand,phase,` of a reading stored raw, by measurand then phase. */
const heads = new Map<string, Map<string, string>>();
function headOf(measurand: string, phase: string): string {
  let byPhase = heads.get(measurand);
  if (!byPhase) {
    byPhase = new Map();
    if (heads.size < 1000) heads.set(measurand, byPhase);
  }
  let head = byPhase.get(phase);
  if (head === undefined) {
    head = `[${quoted(measurand)},${quoted(phase)},`;
    if (byPhase.size < 100) byPhase.set(phase, head);
  }
  return head;
}
/** `,unit]` of a reading stored raw. */
const tails = new Map<string | null, string>();
function tailOf(rawUnit: string | null): string {
  let tail = tails.get(rawUnit);
  if (tail === undefined) {
    tail = `,${rawUnit === null ? 'null' : quoted(rawUnit)}]`;
    if (tails.size < 1000) tails.set(rawUnit, tail);
  }
  return tail;
}
/** A raw value is nearly always a decimal number as text, which needs no escaping. */
const plainNumberText = /^[0-9.eE+-]*$/;
const quotedValue = (raw: string) => (plainNumberText.test(raw) ? `"${raw}"` : JSON.stringify(raw));
const jsonNumber = (value: number | null) => (value !== null && Number.isFinite(value) ? String(value) : 'null');

export function decodeReadings(row: { station_id: string; connector_id: number; transaction_id: number | null; ts: string; readings: string }): MeterReading[] {
  const stored = JSON.parse(row.readings) as Array<StoredReading | StoredRawReading>;
  return stored.map((reading) => {
    const [measurand, phase, location, context, unit, value, rawValue, rawUnit, format, derived] = reading.length === 4 ? wholeOf(reading) : reading;
    return {
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
    };
  });
}

/** The whole form of a reading stored raw: what normalising it gives. */
function wholeOf([measurand, phase, rawValue, rawUnit]: StoredRawReading): StoredReading {
  const [unit, factor] = normalisedUnit(measurand, rawUnit);
  return [measurand, phase, 'Outlet', 'Sample.Periodic', unit, normalisedValue(rawValue, 'Raw', factor), rawValue, rawUnit, 'Raw', 0];
}

/**
 * A sample for an instant that is already stored (a station repeating a MeterValues whose answer it
 * lost, or a StopTransaction's transactionData at the instant of the last MeterValues): the readings
 * not stored yet, and the merged list to store. Nothing new means nothing to write.
 */
export function mergeSample(stored: MeterReading[], incoming: MeterReading[]): { added: MeterReading[]; merged: MeterReading[] } {
  const added = incoming.filter((r) => !holdsReading(stored, r));
  return { added, merged: added.length === 0 ? stored : [...stored, ...added] };
}
