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

/** What the readings were stored as before the encoder was written out by hand. */
const reference = (readings: MeterReading[]) =>
  JSON.stringify(readings.map((r) => [r.measurand, r.phase ?? '', r.location, r.context, r.unit, r.value, r.rawValue, r.rawUnit, r.format, r.derived ? 1 : 0]));

describe('encodeReadings', () => {
  it('writes exactly the JSON of the stored form, whatever a station put in its strings', () => {
    const readings = [
      reading({}),
      reading({ measurand: 'Energy.Active.Import.Register', phase: null, unit: 'Wh', value: 123456.5, rawValue: '123.4565', rawUnit: 'kWh' }),
      reading({ format: 'SignedData', value: null, rawValue: 'AB"C\\D\n\u0001é😀', rawUnit: null, unit: null }),
      reading({ measurand: 'Vendor "X"\\', location: 'Cable', context: 'Transaction.End', value: -0.001, rawValue: '-1e-3', derived: true }),
      reading({ value: Number.NaN, rawValue: '' }),
    ];
    expect(encodeReadings(readings)).toBe(reference(readings));
    expect(encodeReadings([])).toBe('[]');
  });

  it('reads back what it wrote', () => {
    const readings = [reading({ rawValue: 'say "hi"\\' }), reading({ phase: null, measurand: 'Power.Active.Import', unit: 'W', value: 11040, rawValue: '11040', rawUnit: 'W', derived: true })];
    const row = { station_id: 'CP-1', connector_id: 1, transaction_id: 7, ts: '2026-11-22T08:00:00.000Z', readings: encodeReadings(readings) };
    expect(decodeReadings(row)).toEqual(readings);
  });
});
