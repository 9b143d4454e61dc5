import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fitProfileToStation, mergePeriods } from './fit.js';
import type { ChargingProfile, ChargingSchedulePeriod } from './model.js';

const profile = (unit: 'A' | 'W', periods: ChargingSchedulePeriod[]): ChargingProfile => ({
  chargingProfileId: 1,
  stackLevel: 0,
  chargingProfilePurpose: 'TxDefaultProfile',
  chargingProfileKind: 'Absolute',
  chargingSchedule: { startSchedule: '2026-01-01T00:00:00Z', chargingRateUnit: unit, chargingSchedulePeriod: periods },
});

/** The limit in force `t` seconds into a period list. */
const limitAt = (periods: readonly ChargingSchedulePeriod[], t: number) => [...periods].reverse().find((p) => p.startPeriod <= t)!.limit;

describe('fitting a profile to what a station accepts', () => {
  it('converts A to W for a station that only takes power, with the period phases', () => {
    const { profile: fitted, changes } = fitProfileToStation(profile('A', [{ startPeriod: 0, limit: 16 }, { startPeriod: 600, limit: 10, numberPhases: 1 }]), { allowedUnits: ['W'] });
    expect(fitted.chargingSchedule.chargingRateUnit).toBe('W');
    expect(fitted.chargingSchedule.chargingSchedulePeriod).toEqual([
      { startPeriod: 0, limit: 11040 },
      { startPeriod: 600, limit: 2300, numberPhases: 1 },
    ]);
    expect(changes[0]).toMatch(/converted from A to W/);
  });

  it('converts W to A rounding down, so the station never gets more', () => {
    const { profile: fitted } = fitProfileToStation(profile('W', [{ startPeriod: 0, limit: 11000 }]), { allowedUnits: ['A'], supplyVoltage: 230 });
    // 11000 / (230 × 3) = 15.94… → 15.9
    expect(fitted.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 15.9 }]);
  });

  it('leaves a profile that fits untouched', () => {
    const original = profile('A', [{ startPeriod: 0, limit: 16 }]);
    const fitted = fitProfileToStation(original, { allowedUnits: ['A', 'W'], maxPeriods: 5 });
    expect(fitted.profile).toBe(original);
    expect(fitted.changes).toEqual([]);
  });

  it('merges periods down to ChargingScheduleMaxPeriods', () => {
    const periods = [0, 900, 1800, 2700, 3600].map((startPeriod, i) => ({ startPeriod, limit: [32, 30, 16, 16, 8][i]! }));
    const { profile: fitted } = fitProfileToStation(profile('A', periods), { maxPeriods: 3 });
    expect(fitted.chargingSchedule.chargingSchedulePeriod).toHaveLength(3);
    expect(fitted.chargingSchedule.chargingSchedulePeriod[0]).toEqual({ startPeriod: 0, limit: 30 });
  });

  it('property: merged periods never allow more than the original at any instant, and start at 0', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3600 }), fc.integer({ min: 0, max: 640 })), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 10 }),
        (steps, max) => {
          let start = 0;
          const periods = steps.map(([length, tenths], i) => {
            const p = { startPeriod: i === 0 ? 0 : start, limit: tenths / 10 };
            start += length;
            return p;
          });
          const merged = mergePeriods(periods, max);
          expect(merged.length).toBeLessThanOrEqual(Math.max(max, 1));
          expect(merged[0]!.startPeriod).toBe(0);
          for (let t = 0; t <= start + 10; t += 37) expect(limitAt(merged, t)).toBeLessThanOrEqual(limitAt(periods, t));
        },
      ),
    );
  });
});
