import { describe, expect, it } from 'vitest';
import { normaliseSample } from './meter.js';

const ctx = { stationId: 'CP', connectorId: 1, transactionId: 7 };
const ts = '2026-01-01T00:00:00.000Z';

describe('meter value normalisation', () => {
  it('converts kWh and kW to Wh and W and keeps the raw value and unit', () => {
    const [energy, power] = normaliseSample(ctx, ts, [
      { value: '12.345', measurand: 'Energy.Active.Import.Register', unit: 'kWh' },
      { value: '7.4', measurand: 'Power.Active.Import', unit: 'kW' },
    ]);
    expect(energy).toMatchObject({ value: 12345, unit: 'Wh', rawValue: '12.345', rawUnit: 'kWh' });
    expect(power).toMatchObject({ value: 7400, unit: 'W', rawUnit: 'kW' });
  });

  it('applies the OCPP defaults: measurand Energy.Active.Import.Register, context Sample.Periodic, location Outlet, format Raw', () => {
    const [r] = normaliseSample(ctx, ts, [{ value: '100' }]);
    expect(r).toMatchObject({ measurand: 'Energy.Active.Import.Register', context: 'Sample.Periodic', location: 'Outlet', format: 'Raw', unit: 'Wh', value: 100, phase: null });
  });

  it('gives a unit-less reading the natural unit of its measurand, and Percent becomes %', () => {
    const readings = normaliseSample(ctx, ts, [
      { value: '16', measurand: 'Current.Import', phase: 'L1' },
      { value: '230', measurand: 'Voltage', phase: 'L1-N' },
      { value: '55', measurand: 'SoC', unit: 'Percent' },
      { value: '21', measurand: 'Temperature', unit: 'Celcius' },
    ]);
    expect(readings.map((r) => r.unit)).toEqual(['A', 'V', '%', 'Celsius', 'W']);
  });

  it('derives power from per-phase current × phase voltage when no active power is reported', () => {
    const readings = normaliseSample(ctx, ts, [
      { value: '16', measurand: 'Current.Import', phase: 'L1' },
      { value: '15', measurand: 'Current.Import', phase: 'L2' },
      { value: '14', measurand: 'Current.Import', phase: 'L3' },
      { value: '230', measurand: 'Voltage', phase: 'L1-N' },
      { value: '231', measurand: 'Voltage', phase: 'L2-N' },
      { value: '229', measurand: 'Voltage', phase: 'L3-N' },
    ]);
    const power = readings.find((r) => r.derived);
    expect(power).toMatchObject({ measurand: 'Power.Active.Import', unit: 'W', value: 16 * 230 + 15 * 231 + 14 * 229, derived: true });
  });

  it('uses one voltage for all phases when only one is given, and a phase-less current as the total', () => {
    const perPhase = normaliseSample(ctx, ts, [
      { value: '10', measurand: 'Current.Import', phase: 'L1' },
      { value: '10', measurand: 'Current.Import', phase: 'L2' },
      { value: '230', measurand: 'Voltage' },
    ]);
    expect(perPhase.find((r) => r.derived)?.value).toBe(4600);
    const single = normaliseSample(ctx, ts, [
      { value: '32', measurand: 'Current.Import' },
      { value: '230', measurand: 'Voltage' },
    ]);
    expect(single.find((r) => r.derived)?.value).toBe(7360);
  });

  it('does not derive power when the station reports it', () => {
    const readings = normaliseSample(ctx, ts, [
      { value: '16', measurand: 'Current.Import', phase: 'L1' },
      { value: '230', measurand: 'Voltage' },
      { value: '3600', measurand: 'Power.Active.Import' },
    ]);
    expect(readings.some((r) => r.derived)).toBe(false);
  });

  it('keeps signed data and non-numeric values with a null value instead of failing', () => {
    const [signed, junk] = normaliseSample(ctx, ts, [
      { value: 'ABCDEF0123', format: 'SignedData' },
      { value: 'n/a', measurand: 'Power.Active.Import' },
    ]);
    expect(signed).toMatchObject({ value: null, rawValue: 'ABCDEF0123', format: 'SignedData' });
    expect(junk).toMatchObject({ value: null, rawValue: 'n/a' });
  });
});
