import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dcPowerShare, Vehicle, type ChargingLimit, type Supply, type VehicleSpec } from './vehicle.js';

const AC_3PHASE: Supply = { kind: 'AC', voltageV: 230, stationPhases: 3 };
const DC: Supply = { kind: 'DC', voltageV: 230, stationPhases: 3 };

function spec(overrides: Partial<VehicleSpec> = {}): VehicleSpec {
  return {
    id: 'car-1',
    idTag: 'TAG1',
    batteryKwh: 60,
    arrivalSocPct: 20,
    targetSocPct: 80,
    acMaxCurrentA: 16,
    acPhases: 3,
    dcMaxPowerKw: 100,
    minAcCurrentA: 6,
    arrival: new Date('2025-01-06T08:00:00Z'),
    departure: new Date('2025-01-06T17:00:00Z'),
    chargingEfficiency: 1,
    ...overrides,
  };
}

describe('Vehicle on AC', () => {
  it('draws on one phase only when it has a 1-phase charger, even on a 3-phase station', () => {
    const car = new Vehicle(spec({ acPhases: 1, acMaxCurrentA: 32 }));
    expect(car.phasesUsed).toBe(1);
    expect(car.phasesUsedOn(AC_3PHASE)).toBe(1);
    expect(car.acceptedPowerW(AC_3PHASE)).toBeCloseTo(32 * 230, 6);
    // A 16 A limit per phase gives 16 A on its one phase, not 3 × 16 A.
    expect(car.powerForLimit({ unit: 'A', value: 16 }, AC_3PHASE)).toBeCloseTo(16 * 230, 6);
  });

  it('uses only the station phases when the car could use more', () => {
    const car = new Vehicle(spec({ acPhases: 3, acMaxCurrentA: 16 }));
    expect(car.acceptedPowerW({ kind: 'AC', voltageV: 230, stationPhases: 1 })).toBeCloseTo(16 * 230, 6);
  });

  it('takes the lower of its own and the cable rating', () => {
    const car = new Vehicle(spec({ acMaxCurrentA: 32 }));
    expect(car.acceptedPowerW({ ...AC_3PHASE, maxCurrentA: 20 })).toBeCloseTo(20 * 230 * 3, 6);
  });

  it('pauses under a 5 A limit instead of drawing less than 6 A', () => {
    const car = new Vehicle(spec());
    expect(car.powerForLimit({ unit: 'A', value: 5 }, AC_3PHASE)).toBe(0);
    expect(car.powerForLimit({ unit: 'A', value: 6 }, AC_3PHASE)).toBeCloseTo(6 * 230 * 3, 6);
  });

  it('turns a W limit into a per-phase current over the phases it uses, and pauses below 6 A', () => {
    const car = new Vehicle(spec({ acPhases: 1, acMaxCurrentA: 32 }));
    expect(car.powerForLimit({ unit: 'W', value: 3000 }, AC_3PHASE)).toBeCloseTo(3000, 6);
    // 1200 W on one phase is 5.2 A.
    expect(car.powerForLimit({ unit: 'W', value: 1200 }, AC_3PHASE)).toBe(0);
  });

  it('draws what it accepts under a limit above it, and everything it accepts with no limit', () => {
    const car = new Vehicle(spec());
    expect(car.powerForLimit({ unit: 'A', value: 32 }, AC_3PHASE)).toBeCloseTo(16 * 230 * 3, 6);
    expect(car.powerForLimit(null, AC_3PHASE)).toBe(car.acceptedPowerW(AC_3PHASE));
  });

  it('rejects a negative limit', () => {
    expect(() => new Vehicle(spec()).powerForLimit({ unit: 'A', value: -1 }, AC_3PHASE)).toThrow(RangeError);
  });
});

describe('Vehicle on DC', () => {
  it('takes full power up to 80 % SoC and tapers linearly to 10 % of it at 100 %', () => {
    expect(dcPowerShare(50)).toBe(1);
    expect(dcPowerShare(80)).toBe(1);
    expect(dcPowerShare(90)).toBeCloseTo(0.55, 9);
    expect(dcPowerShare(100)).toBeCloseTo(0.1, 9);

    const atStart = new Vehicle(spec({ arrivalSocPct: 70, targetSocPct: 100 }));
    expect(atStart.acceptedPowerW(DC)).toBe(100_000);
    const inTaper = new Vehicle(spec({ arrivalSocPct: 90, targetSocPct: 100 }));
    expect(inTaper.acceptedPowerW(DC)).toBeCloseTo(55_000, 6);
  });

  it('is held to the connector power and to a W limit', () => {
    const car = new Vehicle(spec({ dcMaxPowerKw: 150 }));
    expect(car.acceptedPowerW({ ...DC, maxPowerW: 50_000 })).toBe(50_000);
    expect(car.powerForLimit({ unit: 'W', value: 40_000 }, DC)).toBe(40_000);
  });

  it('reads an A limit as the AC input current per phase of the station', () => {
    const car = new Vehicle(spec({ dcMaxPowerKw: 150 }));
    expect(car.powerForLimit({ unit: 'A', value: 32 }, DC)).toBeCloseTo(32 * 230 * 3, 6);
  });
});

describe('Vehicle energy', () => {
  it('integrates energy and SoC over steps', () => {
    const car = new Vehicle(spec({ batteryKwh: 50, arrivalSocPct: 20, targetSocPct: 100 }));
    for (let i = 0; i < 60; i++) car.step(11_000, 60); // one hour at 11 kW
    expect(car.deliveredWh).toBeCloseTo(11_000, 6);
    expect(car.socPct).toBeCloseTo(20 + (11 / 50) * 100, 6);
    expect(car.wantsMore).toBe(true);
  });

  it('counts the meter on the grid side and puts efficiency × that into the battery', () => {
    const car = new Vehicle(spec({ batteryKwh: 50, arrivalSocPct: 20, targetSocPct: 100, chargingEfficiency: 0.9 }));
    car.step(10_000, 3600);
    expect(car.deliveredWh).toBeCloseTo(10_000, 6);
    expect(car.socPct).toBeCloseTo(20 + (9 / 50) * 100, 6);
  });

  it('defaults to 95 % efficiency', () => {
    const { chargingEfficiency: _, ...withoutEfficiency } = spec();
    expect(new Vehicle(withoutEfficiency).chargingEfficiency).toBe(0.95);
  });

  it('stops at its target SoC mid-step and then accepts nothing', () => {
    const car = new Vehicle(spec({ batteryKwh: 40, arrivalSocPct: 70, targetSocPct: 80 }));
    const takenWh = car.step(22_000, 3600); // would be 22 kWh; 4 kWh fill it to 80 %
    expect(takenWh).toBeCloseTo(4000, 6);
    expect(car.socPct).toBeCloseTo(80, 9);
    expect(car.wantsMore).toBe(false);
    expect(car.acceptedPowerW(AC_3PHASE)).toBe(0);
    expect(car.acceptedPowerW(DC)).toBe(0);
    expect(car.step(22_000, 3600)).toBe(0);
    expect(car.deliveredWh).toBeCloseTo(4000, 6);
  });

  it('stops when it has taken its wanted energy, before its target SoC', () => {
    const car = new Vehicle(spec({ batteryKwh: 60, arrivalSocPct: 20, targetSocPct: 100, energyWantedKwh: 5 }));
    car.step(7_000, 3600);
    expect(car.deliveredWh).toBeCloseTo(5000, 6);
    expect(car.wantsMore).toBe(false);
    expect(car.powerForLimit(null, AC_3PHASE)).toBe(0);
  });

  it('knows when its driver has left', () => {
    const car = new Vehicle(spec());
    expect(car.hasDeparted(new Date('2025-01-06T16:59:59Z'))).toBe(false);
    expect(car.hasDeparted(new Date('2025-01-06T17:00:00Z'))).toBe(true);
  });

  it('rejects an impossible spec, naming the field', () => {
    expect(() => new Vehicle(spec({ batteryKwh: 0 }))).toThrow(/batteryKwh/);
    expect(() => new Vehicle(spec({ targetSocPct: 120 }))).toThrow(/targetSocPct/);
    expect(() => new Vehicle(spec({ departure: new Date('2025-01-06T07:00:00Z') }))).toThrow(/departure/);
  });
});

describe('Vehicle properties', () => {
  const arbitrarySpec = fc.record({
    batteryKwh: fc.double({ min: 10, max: 600, noNaN: true }),
    arrivalSocPct: fc.double({ min: 0, max: 100, noNaN: true }),
    targetSocPct: fc.double({ min: 0, max: 100, noNaN: true }),
    acMaxCurrentA: fc.double({ min: 0, max: 63, noNaN: true }),
    acPhases: fc.constantFrom(1 as const, 2 as const, 3 as const),
    dcMaxPowerKw: fc.double({ min: 0, max: 350, noNaN: true }),
    energyWantedKwh: fc.option(fc.double({ min: 0, max: 200, noNaN: true }), { nil: undefined }),
    chargingEfficiency: fc.double({ min: 0.8, max: 1, noNaN: true }),
  });
  const arbitrarySupply: fc.Arbitrary<Supply> = fc.record({
    kind: fc.constantFrom('AC' as const, 'DC' as const),
    voltageV: fc.constantFrom(120, 230, 240),
    stationPhases: fc.constantFrom(1 as const, 3 as const),
    maxCurrentA: fc.option(fc.double({ min: 0, max: 63, noNaN: true }), { nil: undefined }),
    maxPowerW: fc.option(fc.double({ min: 0, max: 400_000, noNaN: true }), { nil: undefined }),
  });
  const arbitraryLimit: fc.Arbitrary<ChargingLimit | null> = fc.option(
    fc.record({ unit: fc.constantFrom('A' as const, 'W' as const), value: fc.double({ min: 0, max: 500_000, noNaN: true }) }),
    { nil: null },
  );

  /** The limit in W for the phases the car uses (AC) or the station's input phases (DC, A limits). */
  function limitW(limit: ChargingLimit, supply: Supply, car: Vehicle): number {
    return limit.unit === 'W' ? limit.value : limit.value * supply.voltageV * car.phasesUsedOn(supply);
  }

  it('never draws more than the limit nor more than it accepts, and never passes 100 % SoC', () => {
    fc.assert(
      fc.property(
        arbitrarySpec,
        arbitrarySupply,
        fc.array(fc.tuple(arbitraryLimit, fc.integer({ min: 1, max: 3600 })), { minLength: 1, maxLength: 40 }),
        (carSpec, supply, steps) => {
          const car = new Vehicle(spec(carSpec));
          for (const [limit, dtS] of steps) {
            const acceptedW = car.acceptedPowerW(supply);
            const drawnW = car.powerForLimit(limit, supply);
            expect(drawnW).toBeGreaterThanOrEqual(0);
            expect(drawnW).toBeLessThanOrEqual(acceptedW + 1e-9);
            if (limit !== null) expect(drawnW).toBeLessThanOrEqual(limitW(limit, supply, car) * (1 + 1e-12) + 1e-9);
            const socBefore = car.socPct;
            car.step(drawnW, dtS);
            expect(car.socPct).toBeLessThanOrEqual(100);
            expect(car.socPct).toBeGreaterThanOrEqual(socBefore);
            if (carSpec.energyWantedKwh !== undefined) {
              expect(car.deliveredWh).toBeLessThanOrEqual(carSpec.energyWantedKwh * 1000 + 1e-6);
            }
          }
        },
      ),
    );
  });
});
