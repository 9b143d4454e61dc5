import { describe, expect, it } from 'vitest';
import type { MeterReading } from '../domain/types.js';
import { decodeReadings, encodeReadings } from './meter-samples.js';

const reading = (over: Partial<MeterReading>): MeterReading => ({
  stationId: 'CP-1',
  connectorId: 1,
  transactionId: 7,
  timestamp: '2026-11-22T08:00:00.000Z',
  measurand: 'Voltage',
  phase: 'L1',
  location: 'Outlet',
  context: 'Sample.Periodic',
  unit: 'V',
  value: 230.1,
  rawValue: '230.1',
  rawUnit: 'V',
  format: 'Raw',
  derived: false,
  ...over,
});

/** The whole stored form, as written before the encoder was written out by hand (and still for unusual readings). */
const whole = (r: MeterReading) => [r.measurand, r.phase ?? '', r.location, r.context, r.unit, r.value, r.rawValue, r.rawUnit, r.format, r.derived ? 1 : 0];
/** The raw stored form of a usual reading: what the station sent. */
const raw = (r: MeterReading) => [r.measurand, r.phase ?? '', r.rawValue, r.rawUnit];
const row = (readings: string) => ({ station_id: 'CP-1', connector_id: 1, transaction_id: 7, ts: '2026-11-22T08:00:00.000Z', readings });

describe('encodeReadings', () => {
  it('writes exactly the JSON of the stored forms, whatever a station put in its strings', () => {
    const usual = [
      reading({}),
      reading({ measurand: 'Energy.Active.Import.Register', phase: null, unit: 'Wh', value: 123456.5, rawValue: '123.4565', rawUnit: 'kWh' }),
      reading({ measurand: 'Current.Import', unit: 'A', value: 16, rawValue: '16.0', rawUnit: null }),
    ];
    const unusual = [
      reading({ format: 'SignedData', value: null, rawValue: 'AB"C\\D\n\u0001é😀', rawUnit: null, unit: null }),
      reading({ measurand: 'Vendor "X"\\', location: 'Cable', context: 'Transaction.End', value: -0.001, rawValue: '-1e-3', derived: true }),
      reading({ value: Number.NaN, rawValue: '' }),
      reading({ location: 'Inlet' }),
      reading({ context: 'Transaction.Begin' }),
      reading({ derived: true }),
      // A unit or value other than normalising the raw one gives is kept as it is.
      reading({ value: 231 }),
      reading({ unit: 'kV' }),
    ];
    const readings = [...usual, ...unusual];
    expect(encodeReadings(readings)).toBe(JSON.stringify([...usual.map(raw), ...unusual.map(whole).map((w) => w.map((x) => (typeof x === 'number' && !Number.isFinite(x) ? null : x)))]));
    expect(encodeReadings([])).toBe('[]');
  });

  it('reads back what it wrote, in either form', () => {
    const readings = [
      reading({ rawValue: 'say "hi"\\' }),
      reading({}),
      reading({ measurand: 'Energy.Active.Import.Register', phase: null, unit: 'Wh', value: 1234.5, rawValue: '1.2345', rawUnit: 'kWh' }),
      reading({ phase: null, measurand: 'Power.Active.Import', unit: 'W', value: 11040, rawValue: '11040', rawUnit: 'W', derived: true }),
      reading({ measurand: 'SoC', phase: null, unit: '%', value: 80, rawValue: '80', rawUnit: null }),
    ];
    const encoded = encodeReadings(readings);
    expect((JSON.parse(encoded) as unknown[][]).map((r) => r.length)).toEqual([10, 4, 4, 10, 4]);
    expect(decodeReadings(row(encoded))).toEqual(readings);
  });

  it('reads readings stored whole before the raw form existed', () => {
    const readings = [reading({}), reading({ measurand: 'Current.Import', unit: 'A', value: 16, rawValue: '16.0', rawUnit: 'A' })];
    expect(decodeReadings(row(JSON.stringify(readings.map(whole))))).toEqual(readings);
  });
});
