/**
 * Who arrives at which connector when: seeded, reproducible arrival plans for the
 * simulator. The same scenario, options and seed always give the same plan.
 *
 * Conventions:
 * - Time-of-day windows (depot evenings, office mornings, the public day profile) are wall
 *   clock times of the site, which is UTC shifted by `utcOffsetMinutes` (default 0, i.e.
 *   UTC). They repeat every day that overlaps [start, start + durationS); only arrivals
 *   inside that window are kept, departures may fall after it. A fixed offset and not a
 *   time zone: a simulated night does not need daylight-saving rules.
 * - Stations are numbered from 0 (stationIndex), connectors from 1 (OCPP connectorId).
 * - Vehicles are given connectors in arrival order, round-robin across stations first
 *   (connector 1 of every station, then connector 2 …), skipping connectors still occupied;
 *   a connector is free again at the departure of its vehicle. A vehicle that finds every
 *   connector occupied drives away: it is listed in `turnedAway`, not in `arrivals`.
 */
import { CsvError, isoDateTimeWithZone, readCsvTable } from '../io/csv-table.js';
import { readFileSync } from 'node:fs';
import { IEC_61851_MIN_CURRENT_A, type VehicleSpec } from './vehicle.js';

export type ScenarioName = 'depot' | 'public' | 'office' | 'file';
/** The name the simulator's fleet uses for a scenario. */
export type Scenario = ScenarioName;
export const SCENARIO_NAMES: readonly ScenarioName[] = ['depot', 'public', 'office', 'file'];

export interface ArrivalOptions {
  stations: number;
  connectorsPerStation: number;
  /**
   * Start of the simulated window. Required by depot, public and office. For 'file', if
   * given, every session is shifted by the same amount so that the first arrival is here.
   */
  start?: Date;
  /** Length of the window. Required by depot, public and office; for 'file' optional (default: all sessions). */
  durationS?: number;
  seed: number;
  /** CSV of real sessions for 'file' (see parseSessionsCsv). */
  sessionsFile?: string;
  /** The CSV text itself, instead of sessionsFile. */
  sessionsCsv?: string;
  /** Site's local time minus UTC, in minutes (60 for CET); default 0. */
  utcOffsetMinutes?: number;
}

export interface PlannedArrival {
  /** 0-based. */
  stationIndex: number;
  /** 1-based, as in OCPP. */
  connectorId: number;
  vehicle: VehicleSpec;
}

export interface ArrivalPlan {
  /** Sorted by arrival time (ties by station, then connector). */
  arrivals: PlannedArrival[];
  /** Vehicles that found every connector occupied, in arrival order. */
  turnedAway: VehicleSpec[];
}

/** One row of a sessions CSV. */
export interface ChargingSession {
  sessionId: string;
  arrival: Date;
  departure: Date;
  /** Energy the session took (meter side). */
  requestedKwh: number;
  /** Maximum charging power of the vehicle. */
  maxPowerKw: number;
  /** 1-based line in the file, for messages. */
  line: number;
  /** The optional estimated_departure column as written (the planner reads and checks it). */
  estimatedDeparture?: string;
}

/** A sessions file that cannot be read; `line` is 1-based (the header is line 1). */
export class SessionsCsvError extends CsvError {
  override readonly name = 'SessionsCsvError';
}

export const SESSION_CSV_COLUMNS = ['session_id', 'arrival', 'departure', 'requested_kwh', 'max_power_kw'] as const;

/** Phase-to-neutral voltage used to turn a session's max power into a current (European low voltage). */
export const NOMINAL_AC_VOLTAGE_V = 230;

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/**
 * mulberry32: a 32-bit seeded generator, fast and good enough for simulation (not for
 * secrets). Our own because fast-check is only a development dependency.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

class SeededRandom {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }
  /** Uniform integer in [min, max]. */
  integer(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }
  weighted<T extends { weight: number }>(items: readonly T[]): T {
    const total = items.reduce((sum, item) => sum + item.weight, 0);
    let draw = this.next() * total;
    for (const item of items) {
      draw -= item.weight;
      if (draw < 0) return item;
    }
    return items[items.length - 1];
  }
  /** Upper-case hex, like the UID of an RFID card. */
  hex(digits: number): string {
    let out = '';
    for (let i = 0; i < digits; i++) out += this.integer(0, 15).toString(16).toUpperCase();
    return out;
  }
}

/** Arrival plan: who plugs in where and when, plus who found no free connector. */
export function planArrivals(scenario: ScenarioName, opts: ArrivalOptions): ArrivalPlan {
  checkLayout(opts);
  if (scenario === 'file') return planFromSessions(opts);
  const window = syntheticWindow(scenario, opts);
  const random = new SeededRandom(opts.seed);
  const connectorCount = opts.stations * opts.connectorsPerStation;
  const candidates =
    scenario === 'depot'
      ? depotVehicles(window, connectorCount, random)
      : scenario === 'office'
        ? officeVehicles(window, connectorCount, random)
        : scenario === 'public'
          ? publicVehicles(window, connectorCount, random)
          : unknownScenario(scenario);
  const inWindow = candidates.filter((v) => v.arrival.getTime() >= window.startMs && v.arrival.getTime() < window.endMs);
  const ordered = sortByArrival(inWindow).map((v, i): VehicleSpec => ({ id: `${scenario}-${String(i + 1).padStart(4, '0')}`, ...v }));
  return assignConnectors(ordered, opts);
}

/** The arrivals of planArrivals, without the vehicles that were turned away. */
export function generateArrivals(scenario: ScenarioName, opts: ArrivalOptions): PlannedArrival[] {
  return planArrivals(scenario, opts).arrivals;
}

function unknownScenario(scenario: never): never {
  throw new Error(`unknown scenario ${JSON.stringify(scenario)}; known: ${SCENARIO_NAMES.join(', ')}`);
}

function checkLayout(opts: ArrivalOptions): void {
  for (const key of ['stations', 'connectorsPerStation'] as const) {
    if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new RangeError(`${key} must be an integer >= 1, got ${opts[key]}`);
  }
  if (!Number.isFinite(opts.seed)) throw new RangeError(`seed must be a number, got ${opts.seed}`);
  if (opts.start !== undefined && Number.isNaN(opts.start.getTime())) throw new RangeError('start is not a valid date');
  if (opts.durationS !== undefined && !(Number.isFinite(opts.durationS) && opts.durationS >= 0)) {
    throw new RangeError(`durationS must be a number >= 0, got ${opts.durationS}`);
  }
}

interface SyntheticWindow {
  startMs: number;
  endMs: number;
  offsetMs: number;
  /** UTC instants of the site's local midnights for every local day overlapping the window. */
  localMidnightsMs: number[];
}

function syntheticWindow(scenario: ScenarioName, opts: ArrivalOptions): SyntheticWindow {
  if (opts.start === undefined) throw new RangeError(`scenario ${scenario} needs a start`);
  if (opts.durationS === undefined) throw new RangeError(`scenario ${scenario} needs a durationS`);
  const offsetMs = (opts.utcOffsetMinutes ?? 0) * MINUTE_MS;
  const startMs = opts.start.getTime();
  const endMs = startMs + opts.durationS * 1000;
  const localMidnightsMs: number[] = [];
  const firstMidnight = Math.floor((startMs + offsetMs) / DAY_MS) * DAY_MS - offsetMs;
  for (let midnight = firstMidnight; midnight < endMs; midnight += DAY_MS) localMidnightsMs.push(midnight);
  return { startMs, endMs, offsetMs, localMidnightsMs };
}

/** Whole minutes: plans read better, and nothing in the simulation needs finer. */
function atMinute(ms: number): Date {
  return new Date(Math.round(ms / MINUTE_MS) * MINUTE_MS);
}

const oneDecimal = (x: number) => Math.round(x * 10) / 10;

type UnnamedVehicle = Omit<VehicleSpec, 'id'>;

/**
 * E-buses back from their rotations: one bus per connector (a depot sizes its chargers to
 * its fleet), each arriving between 18:00 and 23:00 and leaving the next morning between
 * 05:00 and 07:00, 20–50 % SoC on arrival, 90–100 % wanted. A bus keeps its battery,
 * charging power and fleet card from night to night.
 */
function depotVehicles(window: SyntheticWindow, fleetSize: number, random: SeededRandom): UnnamedVehicle[] {
  const fleet = Array.from({ length: fleetSize }, (_, i) => ({
    idTag: `BUS-${String(i + 1).padStart(3, '0')}`,
    batteryKwh: 10 * random.integer(30, 50),
    dcMaxPowerKw: 5 * random.integer(20, 30),
  }));
  const vehicles: UnnamedVehicle[] = [];
  for (const midnight of window.localMidnightsMs) {
    for (const bus of fleet) {
      vehicles.push({
        ...bus,
        arrivalSocPct: oneDecimal(random.between(20, 50)),
        targetSocPct: random.integer(90, 100),
        // Many e-buses also carry a 22 kW onboard charger for workshop sockets.
        acMaxCurrentA: 32,
        acPhases: 3,
        minAcCurrentA: IEC_61851_MIN_CURRENT_A,
        arrival: atMinute(midnight + random.between(18, 23) * HOUR_MS),
        departure: atMinute(midnight + DAY_MS + random.between(5, 7) * HOUR_MS),
      });
    }
  }
  return vehicles;
}

interface CarModel {
  weight: number;
  acPhases: 1 | 3;
  acMaxCurrentA: number;
  batteryKwh: [number, number];
  dcMaxPowerKw: [number, number];
}

/** A European passenger-car mix by onboard charger; weights are rough market shares. */
const CAR_MODELS: readonly CarModel[] = [
  { weight: 2, acPhases: 1, acMaxCurrentA: 16, batteryKwh: [40, 55], dcMaxPowerKw: [50, 75] },
  { weight: 2, acPhases: 1, acMaxCurrentA: 32, batteryKwh: [55, 80], dcMaxPowerKw: [75, 130] },
  { weight: 4, acPhases: 3, acMaxCurrentA: 16, batteryKwh: [50, 85], dcMaxPowerKw: [75, 150] },
  { weight: 2, acPhases: 3, acMaxCurrentA: 32, batteryKwh: [75, 100], dcMaxPowerKw: [120, 150] },
];

/** Every car gets a DC power too, so the same plan works on AC and DC stations. */
function randomCar(random: SeededRandom): Pick<VehicleSpec, 'acPhases' | 'acMaxCurrentA' | 'batteryKwh' | 'dcMaxPowerKw' | 'minAcCurrentA'> {
  const model = random.weighted(CAR_MODELS);
  return {
    acPhases: model.acPhases,
    acMaxCurrentA: model.acMaxCurrentA,
    batteryKwh: random.integer(model.batteryKwh[0], model.batteryKwh[1]),
    dcMaxPowerKw: 5 * random.integer(model.dcMaxPowerKw[0] / 5, model.dcMaxPowerKw[1] / 5),
    minAcCurrentA: IEC_61851_MIN_CURRENT_A,
  };
}

/**
 * Relative arrival rate at a public site by local hour: quiet at night, a morning rise,
 * a midday peak (shopping, lunch) and an early-evening shoulder.
 */
const PUBLIC_HOURLY_PROFILE = [
  0.05, 0.03, 0.02, 0.02, 0.03, 0.08, 0.2, 0.45, 0.7, 0.8, 0.85, 0.9, 1.0, 0.95, 0.85, 0.8, 0.85, 0.95, 0.9, 0.7, 0.5,
  0.3, 0.15, 0.08,
];
/**
 * Arrivals per connector per hour at the peak of the profile. With the mean dwell of
 * 100 minutes below, connectors are about 70 % occupied at the peak, so some drivers find
 * a site full.
 */
const PUBLIC_PEAK_ARRIVALS_PER_CONNECTOR_HOUR = 0.42;

/**
 * Public site: a non-homogeneous Poisson process (thinning: draw at the peak rate, keep each
 * arrival with the profile's share at its hour); dwell 30 min to 4 h, shorter stays more
 * likely (30 + 210·u² minutes, mean 100); a new driver every time.
 */
function publicVehicles(window: SyntheticWindow, connectorCount: number, random: SeededRandom): UnnamedVehicle[] {
  const meanGapMs = HOUR_MS / (PUBLIC_PEAK_ARRIVALS_PER_CONNECTOR_HOUR * connectorCount);
  const vehicles: UnnamedVehicle[] = [];
  for (let t = window.startMs + random.exponential(meanGapMs); t < window.endMs; t += random.exponential(meanGapMs)) {
    const localHour = Math.floor((((t + window.offsetMs) % DAY_MS) + DAY_MS) % DAY_MS / HOUR_MS);
    if (!random.chance(PUBLIC_HOURLY_PROFILE[localHour])) continue;
    const arrival = atMinute(t);
    const dwellMin = 30 + 210 * random.between(0, 1) ** 2;
    vehicles.push({
      idTag: random.hex(8),
      ...randomCar(random),
      arrivalSocPct: oneDecimal(random.between(10, 70)),
      targetSocPct: random.integer(80, 100),
      arrival,
      departure: atMinute(arrival.getTime() + dwellMin * MINUTE_MS),
    });
  }
  return vehicles;
}

/** Share of employees who come to the office on a given weekday (leave, travel, home office). */
const OFFICE_ATTENDANCE = 0.9;

/**
 * Office car park: one employee per connector, each with their own car and badge; on
 * weekdays (of the site's local calendar) most of them arrive 07:30–10:00 and leave
 * 16:00–18:30, with a commute's worth of charge used (30–80 % SoC on arrival).
 */
function officeVehicles(window: SyntheticWindow, staffCount: number, random: SeededRandom): UnnamedVehicle[] {
  const staff = Array.from({ length: staffCount }, () => ({ idTag: random.hex(8), ...randomCar(random) }));
  const vehicles: UnnamedVehicle[] = [];
  for (const midnight of window.localMidnightsMs) {
    const weekday = new Date(midnight + window.offsetMs).getUTCDay();
    if (weekday === 0 || weekday === 6) continue;
    for (const employee of staff) {
      if (!random.chance(OFFICE_ATTENDANCE)) continue;
      vehicles.push({
        ...employee,
        arrivalSocPct: oneDecimal(random.between(30, 80)),
        targetSocPct: random.integer(80, 100),
        arrival: atMinute(midnight + random.between(7.5, 10) * HOUR_MS),
        departure: atMinute(midnight + random.between(16, 18.5) * HOUR_MS),
      });
    }
  }
  return vehicles;
}

/** Stable sort by arrival, so equal arrivals keep their generation order and plans stay reproducible. */
function sortByArrival<T extends { arrival: Date }>(items: readonly T[]): T[] {
  return items
    .map((item, order) => ({ item, order }))
    .sort((a, b) => a.item.arrival.getTime() - b.item.arrival.getTime() || a.order - b.order)
    .map(({ item }) => item);
}

/** Gives each vehicle (in arrival order) the next free connector round-robin; see the module comment. */
function assignConnectors(vehicles: readonly VehicleSpec[], opts: ArrivalOptions): ArrivalPlan {
  const connectors: Array<{ stationIndex: number; connectorId: number; freeFromMs: number }> = [];
  for (let connectorId = 1; connectorId <= opts.connectorsPerStation; connectorId++) {
    for (let stationIndex = 0; stationIndex < opts.stations; stationIndex++) {
      connectors.push({ stationIndex, connectorId, freeFromMs: -Infinity });
    }
  }
  const arrivals: PlannedArrival[] = [];
  const turnedAway: VehicleSpec[] = [];
  let next = 0;
  for (const vehicle of vehicles) {
    const arrivalMs = vehicle.arrival.getTime();
    let placed = false;
    for (let tried = 0; tried < connectors.length && !placed; tried++) {
      const index = (next + tried) % connectors.length;
      const connector = connectors[index];
      if (connector.freeFromMs > arrivalMs) continue;
      connector.freeFromMs = vehicle.departure.getTime();
      arrivals.push({ stationIndex: connector.stationIndex, connectorId: connector.connectorId, vehicle });
      next = index + 1;
      placed = true;
    }
    if (!placed) turnedAway.push(vehicle);
  }
  arrivals.sort(
    (a, b) =>
      a.vehicle.arrival.getTime() - b.vehicle.arrival.getTime() || a.stationIndex - b.stationIndex || a.connectorId - b.connectorId,
  );
  return { arrivals, turnedAway };
}

function planFromSessions(opts: ArrivalOptions): ArrivalPlan {
  let text: string;
  let source: string;
  if (opts.sessionsCsv !== undefined) {
    text = opts.sessionsCsv;
    source = 'sessions CSV';
  } else if (opts.sessionsFile !== undefined) {
    source = opts.sessionsFile;
    try {
      text = readFileSync(opts.sessionsFile, 'utf8');
    } catch (err) {
      throw new Error(`cannot read sessions file ${opts.sessionsFile}: ${(err as Error).message}`);
    }
  } else {
    throw new RangeError("scenario 'file' needs sessionsFile (or sessionsCsv)");
  }
  const sessions = sortByArrival(parseSessionsCsv(text, source));
  if (sessions.length === 0) return { arrivals: [], turnedAway: [] };

  const firstArrivalMs = sessions[0].arrival.getTime();
  const shiftMs = opts.start === undefined ? 0 : opts.start.getTime() - firstArrivalMs;
  const windowEndMs = opts.durationS === undefined ? Infinity : firstArrivalMs + shiftMs + opts.durationS * 1000;
  const vehicles = sessions
    .map((session, i) => vehicleFromSession(session, i, shiftMs))
    .filter((vehicle) => vehicle.arrival.getTime() < windowEndMs);
  return assignConnectors(vehicles, opts);
}

/** Default battery for replayed sessions, which record energy but not the car. */
const SESSION_BATTERY_KWH = 60;

/**
 * A car that takes exactly the session's energy: its wanted energy is the requested kWh,
 * and its battery has room for that plus 10 % of capacity, so the energy and not the SoC
 * ends the charge. The AC current is the max power over one phase at 230 V (ACN's 6.6 kW
 * gives 28.7 A), the DC power is the max power.
 */
export function vehicleFromSession(session: ChargingSession, index: number, shiftMs = 0): VehicleSpec {
  const batteryKwh = Math.max(SESSION_BATTERY_KWH, Math.ceil(session.requestedKwh / 0.8));
  const requestedSharePct = (session.requestedKwh / batteryKwh) * 100;
  return {
    id: session.sessionId,
    idTag: `ACN${String(index + 1).padStart(5, '0')}`,
    batteryKwh,
    arrivalSocPct: Math.max(0, Math.floor(100 - requestedSharePct - 10)),
    targetSocPct: 100,
    acMaxCurrentA: (session.maxPowerKw * 1000) / NOMINAL_AC_VOLTAGE_V,
    acPhases: 1,
    dcMaxPowerKw: session.maxPowerKw,
    minAcCurrentA: IEC_61851_MIN_CURRENT_A,
    arrival: new Date(session.arrival.getTime() + shiftMs),
    departure: new Date(session.departure.getTime() + shiftMs),
    energyWantedKwh: session.requestedKwh,
  };
}

/** ISO-8601 date-time with an explicit zone, so a file never depends on the process's time zone. */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Parses a sessions CSV: a header naming at least session_id, arrival, departure,
 * requested_kwh and max_power_kw (in any order; other columns such as the ACN file's
 * station_id are ignored; estimated_departure is passed through as written), then one session per line. Times are
 * ISO-8601 with a zone. Quoted fields, blank lines, CRLF and a BOM are accepted.
 * Any other defect throws a SessionsCsvError naming the line and column.
 */
export function parseSessionsCsv(text: string, source = 'sessions CSV'): ChargingSession[] {
  const { header, rows } = readCsvTable(text, source, SESSION_CSV_COLUMNS, (...args) => new SessionsCsvError(...args));

  const sessions: ChargingSession[] = [];
  for (const { record, line: lineNumber } of rows) {
    const fail = (column: string | null, detail: string): never => {
      throw new SessionsCsvError(source, lineNumber, column, detail);
    };
    const field = (column: (typeof SESSION_CSV_COLUMNS)[number]) => record[column] ?? '';
    const where = (column: (typeof SESSION_CSV_COLUMNS)[number]) => describeColumn(header, header.indexOf(column));
    const dateTime = (column: 'arrival' | 'departure'): Date => {
      const value = field(column);
      const date = new Date(value);
      if (!isoDateTimeWithZone.test(value) || Number.isNaN(date.getTime())) {
        fail(where(column), `${JSON.stringify(value)} is not an ISO-8601 date-time with a zone`);
      }
      return date;
    };
    const number = (column: 'requested_kwh' | 'max_power_kw', min: number, minInclusive: boolean): number => {
      const value = field(column);
      const parsed = Number(value);
      if (!DECIMAL.test(value)) fail(where(column), `${JSON.stringify(value)} is not a number`);
      if (minInclusive ? parsed < min : parsed <= min) fail(where(column), `${value} must be ${minInclusive ? '>=' : '>'} ${min}`);
      return parsed;
    };

    const sessionId = field('session_id');
    if (sessionId === '') fail(where('session_id'), 'is empty');
    const arrival = dateTime('arrival');
    const departure = dateTime('departure');
    if (departure.getTime() <= arrival.getTime()) fail(where('departure'), `${field('departure')} is not after the arrival ${field('arrival')}`);
    sessions.push({
      sessionId,
      arrival,
      departure,
      requestedKwh: number('requested_kwh', 0, true),
      maxPowerKw: number('max_power_kw', 0, false),
      line: lineNumber,
      ...(record.estimated_departure ? { estimatedDeparture: record.estimated_departure } : {}),
    });
  }
  return sessions;
}

/** "4 (requested_kwh)": the 1-based position a spreadsheet shows, and the name. */
function describeColumn(header: readonly string[], index: number): string {
  return header[index] === undefined ? `${index + 1}` : `${index + 1} (${header[index]})`;
}
