import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadHighsSolver, type LpSolver } from './lp.js';
import { PLANNER_POLICIES, replay, type ReplayInput, type ReplaySession } from './simulate.js';

let solver: LpSolver;
beforeAll(async () => {
  solver = await loadHighsSolver();
});

const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const MIN = 60_000;
const HOUR = 60 * MIN;

const session = (id: string, fromMin: number, toMin: number, requestedKwh: number, fields: Partial<ReplaySession> = {}): ReplaySession => ({
  id,
  arrivalMs: T0 + fromMin * MIN,
  departureMs: T0 + toMin * MIN,
  estimatedDepartureMs: T0 + toMin * MIN,
  requestedKwh,
  maxPowerKw: 10,
  ...fields,
});

describe('replay', () => {
  it('integrates energy and prices over the steps', () => {
    const input: ReplayInput = {
      sessions: [session('a', 0, 120, 15)],
      grid: { startMs: T0, stepS: 3600, steps: 2 },
      capacityKw: 100,
      pricePerKwh: [0.2, 0.1],
      demandChargePerKw: 2,
    };
    const uncontrolled = replay(input, { policy: 'uncontrolled' });
    expect(uncontrolled.sitePowerKw).toEqual([10, 5]);
    expect(uncontrolled.summary.energyCost).toBeCloseTo(10 * 0.2 + 5 * 0.1, 12);
    expect(uncontrolled.summary.peakKw).toBe(10);
    expect(uncontrolled.summary.demandChargeCost).toBe(20);
    expect(uncontrolled.summary.energyDeliveredPct).toBe(100);
    const offline = replay(input, { policy: 'offline', solver });
    // The demand charge outweighs the price step: 7.5 kW flat.
    expect(offline.sitePowerKw.map((p) => Math.round(p * 1e6) / 1e6)).toEqual([7.5, 7.5]);
    expect(offline.decisions).toBe(1);
  });

  it('ends a session at its real departure whatever the estimate said', () => {
    const input: ReplayInput = {
      sessions: [session('a', 0, 30, 10, { estimatedDepartureMs: T0 + 2 * HOUR })],
      grid: { startMs: T0, stepS: 900, steps: 8 },
      capacityKw: 100,
    };
    for (const policy of ['edf', 'mpc'] as const) {
      const result = replay(input, { policy, solver });
      // Two 15-minute steps at 10 kW before the car leaves: 5 kWh at most.
      expect(result.sessions[0].deliveredKwh).toBeLessThanOrEqual(5 + 1e-9);
      expect(result.sitePowerKw.slice(2).every((p) => p === 0)).toBe(true);
    }
  });

  it('mpc plans with the estimated departure, not the real one', () => {
    // Room for one car at a time. b says it leaves at 0:30 (it stays until 2:00), so the only
    // plan that meets both needs as told serves b first; told the truth, a would go first.
    const input: ReplayInput = {
      sessions: [session('a', 0, 60, 5), session('b', 0, 120, 5, { estimatedDepartureMs: T0 + 30 * MIN })],
      grid: { startMs: T0, stepS: 900, steps: 8 },
      capacityKw: 10,
    };
    const told = replay(input, { policy: 'mpc', solver, recordSessionPower: true });
    expect(told.sessionPowerKw![1].slice(0, 2).map(Math.round)).toEqual([10, 10]);
    expect(told.sessionPowerKw![0].slice(2, 4).map(Math.round)).toEqual([10, 10]);
    expect(told.summary.energyDeliveredPct).toBeCloseTo(100, 6);
    const truth = replay({ ...input, sessions: input.sessions.map((s) => ({ ...s, estimatedDepartureMs: s.departureMs })) }, { policy: 'mpc', solver, recordSessionPower: true });
    expect(truth.sessionPowerKw![0].slice(0, 2).map(Math.round)).toEqual([10, 10]);
  });

  it('mpc keeps capacity for an announced arrival with a tight window, and gives it nothing before it plugs in', () => {
    // Room for one car at a time, dear for two hours and cheap for the next two. a (0:00–4:00)
    // can wait for the cheap hours; b (2:00–4:00) needs the whole site for its whole stay. Told
    // of b only when it plugs in, MPC puts a off to the cheap hours and b finds them taken;
    // told at 0:00, it charges a first.
    const sessions = [session('a', 0, 240, 20), session('b', 120, 240, 20)];
    const input: ReplayInput = {
      sessions,
      grid: { startMs: T0, stepS: 900, steps: 16 },
      capacityKw: 10,
      pricePerKwh: Array.from({ length: 16 }, (_, k) => (k < 8 ? 0.4 : 0.1)),
    };
    const unknown = replay(input, { policy: 'mpc', solver, recordSessionPower: true });
    const announced = replay(
      { ...input, sessions: [sessions[0], { ...sessions[1], announcedMs: T0 }] },
      { policy: 'mpc', solver, recordSessionPower: true },
    );
    expect(unknown.summary.energyDeliveredPct).toBeLessThan(80);
    expect(announced.summary.energyDeliveredPct).toBeCloseTo(100, 6);
    for (const result of [unknown, announced]) {
      for (const p of result.sitePowerKw) expect(p).toBeLessThanOrEqual(10 + 1e-9);
    }
    expect(announced.sessionPowerKw![1].slice(0, 8).every((p) => p === 0)).toBe(true);
    // Planning for b costs no decision of its own: only the steps with a car plugged in decide.
    expect(announced.decisions).toBeLessThanOrEqual(16);
  });

  it('mpc waits for an announced car that is late, without giving it power before it comes', () => {
    // b is expected at 1:00 and comes at 2:00: MPC keeps expecting it at the next step meanwhile.
    const sessions = [session('a', 0, 240, 20), session('b', 120, 240, 20, { announcedMs: T0, expectedArrivalMs: T0 + 60 * MIN })];
    const result = replay(
      { sessions, grid: { startMs: T0, stepS: 900, steps: 16 }, capacityKw: 10, pricePerKwh: Array.from({ length: 16 }, (_, k) => (k < 8 ? 0.4 : 0.1)) },
      { policy: 'mpc', solver, recordSessionPower: true },
    );
    expect(result.sessionPowerKw![1].slice(0, 8).every((p) => p === 0)).toBe(true);
    for (const p of result.sitePowerKw) expect(p).toBeLessThanOrEqual(10 + 1e-9);
    expect(result.summary.energyDeliveredPct).toBeCloseTo(100, 6);
  });

  it('keeps the capacity when a car stays longer than it said, for every policy but uncontrolled', () => {
    // Said to leave a minute after it came, it stays two: power decided for one minute flows for two.
    // Found by the property below (fast-check seed -1092841336), where it showed as 1 ppm over the capacity.
    const arrivalMs = T0 + 17_000;
    const input: ReplayInput = {
      sessions: [{ id: 'long', arrivalMs, departureMs: arrivalMs + 2 * MIN, estimatedDepartureMs: arrivalMs + MIN, requestedKwh: 1, maxPowerKw: 1 }],
      grid: { startMs: T0, stepS: 300, steps: 1 },
      capacityKw: 0.001,
      pricePerKwh: [0],
    };
    for (const policy of PLANNER_POLICIES) {
      const result = replay(input, { policy, solver, recordSessionPower: true });
      if (policy === 'uncontrolled') expect(result.sitePowerKw[0]).toBeGreaterThan(0.001);
      else expect(result.sitePowerKw[0]).toBeLessThanOrEqual(0.001 + 1e-12);
      expect(result.sitePowerKw[0]).toBeGreaterThan(0);
    }
  });

  const scenario = fc
    .record({
      stepS: fc.constantFrom(300, 900),
      // Below a watt counts as no capacity: at 1e-10 kW the floating-point format, not the planner, decides the last bit.
      capacityKw: fc.double({ min: 0, max: 40, noNaN: true }).map((kw) => (kw < 1e-3 ? 0 : kw)),
      demandChargePerKw: fc.constantFrom(0, 5),
      prices: fc.array(fc.double({ min: 0, max: 0.5, noNaN: true }), { minLength: 24, maxLength: 24 }),
      sessions: fc.array(
        fc.record({
          fromMin: fc.integer({ min: 0, max: 300 }),
          lengthMin: fc.integer({ min: 1, max: 400 }),
          estimateShiftMin: fc.integer({ min: -200, max: 200 }),
          requestedKwh: fc.double({ min: 0, max: 60, noNaN: true }),
          maxPowerKw: fc.double({ min: 1, max: 22, noNaN: true }),
          // How long before its arrival mpc learns of it (0: at plug-in), and how far off the told arrival is.
          announceLeadMin: fc.integer({ min: 0, max: 300 }),
          expectedArrivalShiftMin: fc.integer({ min: -60, max: 60 }),
        }),
        { minLength: 1, maxLength: 6 },
      ),
    })
    .map(({ stepS, capacityKw, demandChargePerKw, prices, sessions }): ReplayInput => {
      const list = sessions.map((s, i): ReplaySession => {
        const arrivalMs = T0 + s.fromMin * MIN + 17_000;
        const departureMs = arrivalMs + s.lengthMin * MIN;
        return {
          id: `s${i}`,
          arrivalMs,
          departureMs,
          estimatedDepartureMs: Math.max(arrivalMs + MIN, departureMs + s.estimateShiftMin * MIN),
          requestedKwh: s.requestedKwh,
          maxPowerKw: s.maxPowerKw,
          ...(s.announceLeadMin > 0 ? { announcedMs: arrivalMs - s.announceLeadMin * MIN, expectedArrivalMs: arrivalMs + s.expectedArrivalShiftMin * MIN } : {}),
        };
      });
      const endMs = Math.max(...list.map((s) => Math.max(s.departureMs, s.estimatedDepartureMs)));
      const steps = Math.ceil((endMs - T0) / (stepS * 1000));
      return {
        sessions: list,
        grid: { startMs: T0, stepS, steps },
        capacityKw,
        pricePerKwh: Array.from({ length: steps }, (_, k) => prices[Math.floor((k * stepS) / 3600) % 24]),
        demandChargePerKw,
      };
    });

  it('no policy but uncontrolled exceeds the capacity; no session exceeds its max or charges outside its window; offline delivers most', () => {
    fc.assert(
      fc.property(scenario, (input) => {
        const totals = new Map<string, number>();
        for (const policy of PLANNER_POLICIES) {
          const result = replay(input, { policy, solver, recordSessionPower: true });
          if (policy !== 'uncontrolled') {
            for (const p of result.sitePowerKw) expect(p).toBeLessThanOrEqual((input.capacityKw as number) + 1e-9);
          }
          input.sessions.forEach((s, i) => {
            expect(result.sessions[i].deliveredKwh).toBeLessThanOrEqual(s.requestedKwh + 1e-9);
            result.sessionPowerKw![i].forEach((p, k) => {
              expect(p).toBeLessThanOrEqual(s.maxPowerKw + 1e-9);
              const stepStart = input.grid.startMs + k * input.grid.stepS * 1000;
              const stepEnd = stepStart + input.grid.stepS * 1000;
              if (stepEnd <= s.arrivalMs || stepStart >= s.departureMs) expect(p).toBe(0);
            });
          });
          totals.set(policy, result.sessions.reduce((sum, s) => sum + s.deliveredKwh, 0));
        }
        // Perfect foresight on the same grid: no capacity-keeping policy delivers more.
        for (const policy of ['equal-share', 'edf', 'llf', 'mpc']) {
          expect(totals.get(policy)!).toBeLessThanOrEqual(totals.get('offline')! * (1 + 1e-6) + 1e-6);
        }
      }),
      { numRuns: 40 },
    );
    // Each run solves several LPs; under a busy full suite 40 runs can take far longer than alone.
  }, 120_000);
});
