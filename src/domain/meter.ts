import type { MeterReading } from './types.js';

/** A sampledValue as every OCPP version sends it, already in the domain's field names. */
export interface SampledValueInput {
  value: string;
  context?: string;
  format?: string;
  measurand?: string;
  phase?: string;
  location?: string;
  unit?: string;
}

/**
 * OCPP 1.6 defaults the unit to Wh whatever the measurand; taken literally, a current without a
 * unit would read as Wh. Chargers that omit the unit mean the measurand's natural unit, so that
 * is what we assume (docs/architecture.md, "Meter values").
 */
const naturalUnit: Record<string, string> = {
  'Energy.Active.Import.Register': 'Wh',
  'Energy.Active.Export.Register': 'Wh',
  'Energy.Active.Import.Interval': 'Wh',
  'Energy.Active.Export.Interval': 'Wh',
  'Energy.Reactive.Import.Register': 'varh',
  'Energy.Reactive.Export.Register': 'varh',
  'Energy.Reactive.Import.Interval': 'varh',
  'Energy.Reactive.Export.Interval': 'varh',
  'Power.Active.Import': 'W',
  'Power.Active.Export': 'W',
  'Power.Offered': 'W',
  'Power.Reactive.Import': 'var',
  'Power.Reactive.Export': 'var',
  'Current.Import': 'A',
  'Current.Export': 'A',
  'Current.Offered': 'A',
  Voltage: 'V',
  SoC: '%',
  Temperature: 'Celsius',
};

/** Unit on the wire → [normalised unit, factor]. */
const unitScale: Record<string, [string, number]> = {
  Wh: ['Wh', 1],
  kWh: ['Wh', 1000],
  varh: ['varh', 1],
  kvarh: ['varh', 1000],
  W: ['W', 1],
  kW: ['W', 1000],
  VA: ['VA', 1],
  kVA: ['VA', 1000],
  var: ['var', 1],
  kvar: ['var', 1000],
  A: ['A', 1],
  V: ['V', 1],
  K: ['K', 1],
  Celcius: ['Celsius', 1], // the 1.6 schema's spelling
  Celsius: ['Celsius', 1],
  Fahrenheit: ['Fahrenheit', 1],
  Percent: ['%', 1],
};

export interface ReadingContext {
  stationId: string;
  connectorId: number;
  transactionId: number | null;
}

/** The unit a reading is kept in, and the factor from the unit the station sent (kWh → Wh: 1000). */
export function normalisedUnit(measurand: string, rawUnit: string | null): readonly [string | null, number] {
  return unitScale[rawUnit ?? naturalUnit[measurand] ?? ''] ?? [rawUnit ?? naturalUnit[measurand] ?? null, 1];
}

/** A reading's number in its normalised unit; null for signed data or a value that is not a number. */
export function normalisedValue(rawValue: string, format: string, factor: number): number | null {
  const number = format === 'Raw' ? Number(rawValue) : NaN;
  return Number.isFinite(number) ? round(number * factor) : null;
}

/** Turns one meterValue element (a timestamp and its sampled values) into normalised readings. */
export function normaliseSample(ctx: ReadingContext, timestamp: string, sampled: SampledValueInput[]): MeterReading[] {
  const readings = sampled.map((sv): MeterReading => {
    const measurand = sv.measurand ?? 'Energy.Active.Import.Register';
    const format = sv.format ?? 'Raw';
    const rawUnit = sv.unit ?? null;
    const [unit, factor] = normalisedUnit(measurand, rawUnit);
    // Fields are listed one by one: spreading `ctx` into this literal takes V8's slow path
    // (about 10 µs per reading on Node 20), which was a tenth of the CPU of a MeterValues.
    return {
      stationId: ctx.stationId,
      connectorId: ctx.connectorId,
      transactionId: ctx.transactionId,
      timestamp,
      measurand,
      phase: sv.phase ?? null,
      location: sv.location ?? 'Outlet',
      context: sv.context ?? 'Sample.Periodic',
      unit,
      value: normalisedValue(sv.value, format, factor),
      rawValue: sv.value,
      rawUnit,
      format,
      derived: false,
    };
  });
  const power = derivedPower(readings);
  return power ? [...readings, power] : readings;
}

/**
 * When a station reports current and voltage but no active power, the power is the sum over phases
 * of current × voltage (phase-to-neutral, or the single voltage given for all phases).
 */
export function derivedPower(readings: MeterReading[]): MeterReading | null {
  const byLocation = (r: MeterReading) => r.location === 'Outlet' || r.location === 'Cable' || r.location === 'EV';
  const relevant = readings.filter((r) => byLocation(r) && r.value !== null);
  if (relevant.some((r) => r.measurand === 'Power.Active.Import')) return null;
  const currents = relevant.filter((r) => r.measurand === 'Current.Import');
  const voltages = relevant.filter((r) => r.measurand === 'Voltage');
  if (currents.length === 0 || voltages.length === 0) return null;
  const voltageOf = (phase: string | null): number | undefined => {
    const wanted: Array<string | null> = phase ? [phase, `${phase}-N`] : [null];
    return (voltages.find((v) => wanted.includes(v.phase)) ?? voltages.find((v) => v.phase === null || v.phase.endsWith('-N')) ?? voltages[0])?.value ?? undefined;
  };
  const perPhase = currents.filter((c) => c.phase === 'L1' || c.phase === 'L2' || c.phase === 'L3');
  const used = perPhase.length > 0 ? perPhase : currents.filter((c) => c.phase === null).slice(0, 1);
  if (used.length === 0) return null;
  let watts = 0;
  for (const c of used) {
    const v = voltageOf(c.phase);
    if (v === undefined) return null;
    watts += c.value! * v;
  }
  const first = used[0]!;
  return {
    ...first,
    measurand: 'Power.Active.Import',
    phase: null,
    unit: 'W',
    value: round(watts),
    rawValue: String(round(watts)),
    rawUnit: 'W',
    derived: true,
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
