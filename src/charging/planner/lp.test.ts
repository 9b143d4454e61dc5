import { beforeAll, describe, expect, it } from 'vitest';
import { buildPlanLp, loadHighsSolver, planWithLp, type LpSolver } from './lp.js';
import { HOUR_MS, uniformIntervals, type PlannerVehicle, type PlanningProblem } from './model.js';

let solver: LpSolver;
beforeAll(async () => {
  solver = await loadHighsSolver();
});

const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const hour = (h: number) => T0 + h * HOUR_MS;

function problem(hours: number, fields: Partial<PlanningProblem> & { vehicles: PlannerVehicle[] }): PlanningProblem {
  const intervals = uniformIntervals(T0, 3600, hours);
  return { intervals, capacityKw: intervals.map(() => 100), pricePerKwh: intervals.map(() => 0.1), ...fields };
}

const car = (id: string, needKwh: number, fromH: number, toH: number, maxPowerKw = 10): PlannerVehicle => ({
  id,
  energyNeedKwh: needKwh,
  maxPowerKw,
  arrivalMs: hour(fromH),
  departureMs: hour(toH),
});

const rounded = (values: number[]) => values.map((v) => Math.round(v * 1e6) / 1e6);

describe('planWithLp', () => {
  it('uses the cheap hour first', () => {
    const plan = planWithLp(problem(2, { pricePerKwh: [0.3, 0.1], vehicles: [car('a', 5, 0, 2)] }), solver);
    expect(plan.method).toBe('lp');
    expect(rounded(plan.energyKwh[0])).toEqual([0, 5]);
    expect(rounded(plan.powerKw[0])).toEqual([0, 5]);
  });

  it('delivers as early as is free when prices are equal', () => {
    const plan = planWithLp(problem(3, { vehicles: [car('a', 15, 0, 3)] }), solver);
    expect(rounded(plan.energyKwh[0])).toEqual([10, 5, 0]);
  });

  it('keeps the site within its capacity and still meets needs that fit', () => {
    const plan = planWithLp(
      problem(2, { capacityKw: [10, 10], pricePerKwh: [0.1, 0.2], vehicles: [car('a', 10, 0, 2), car('b', 10, 0, 2)] }),
      solver,
    );
    expect(rounded(plan.sitePowerKw)).toEqual([10, 10]);
    expect(rounded(plan.unmetKwh)).toEqual([0, 0]);
  });

  it('reports unmet energy when the window or the capacity is too short', () => {
    const byWindow = planWithLp(problem(2, { vehicles: [car('a', 30, 0, 2)] }), solver);
    expect(rounded(byWindow.unmetKwh)).toEqual([10]);
    const byCapacity = planWithLp(problem(2, { capacityKw: [5, 5], vehicles: [car('a', 30, 0, 2)] }), solver);
    expect(rounded(byCapacity.unmetKwh)).toEqual([20]);
    expect(rounded(byCapacity.sitePowerKw)).toEqual([5, 5]);
  });

  it('scales a partial first interval by the time plugged in', () => {
    // Plugged in at 0:30: at 10 kW the first hour can hold 5 kWh, the second 10.
    const plan = planWithLp(problem(2, { vehicles: [car('a', 20, 0.5, 2)] }), solver);
    expect(rounded(plan.energyKwh[0])).toEqual([5, 10]);
    expect(rounded(plan.powerKw[0])).toEqual([10, 10]);
    expect(rounded(plan.unmetKwh)).toEqual([5]);
  });

  it('lowers the peak when a demand charge is set', () => {
    const base = { pricePerKwh: [0.1, 0.2], vehicles: [car('a', 10, 0, 2)] };
    const cheapest = planWithLp(problem(2, base), solver);
    expect(rounded(cheapest.sitePowerKw)).toEqual([10, 0]);
    // Peak 10 costs 1.0 + 10 = 11; 5 and 5 cost 0.5 + 1.0 + 5 = 6.5.
    const flat = planWithLp(problem(2, { ...base, demandChargePerKw: 1 }), solver);
    expect(rounded(flat.sitePowerKw)).toEqual([5, 5]);
  });

  it('uses a peak already paid for freely', () => {
    const plan = planWithLp(problem(2, { pricePerKwh: [0.1, 0.2], demandChargePerKw: 1, peakFloorKw: 10, vehicles: [car('a', 10, 0, 2)] }), solver);
    expect(rounded(plan.sitePowerKw)).toEqual([10, 0]);
  });

  it('never trades energy for money, even with a steep demand charge', () => {
    const plan = planWithLp(problem(2, { pricePerKwh: [5, 5], demandChargePerKw: 500, vehicles: [car('a', 20, 0, 2)] }), solver);
    expect(rounded(plan.unmetKwh)).toEqual([0]);
  });

  it('with a lateness cost, serves the vehicle that leaves first now', () => {
    const vehicles = [car('later', 10, 0, 4), car('sooner', 10, 0, 2)];
    const plan = planWithLp(problem(4, { capacityKw: [10, 10, 10, 10], latenessCostPerKwh: 0.05, vehicles }), solver);
    expect(rounded(plan.energyKwh[1])).toEqual([10, 0, 0, 0]);
    expect(rounded(plan.energyKwh[0])).toEqual([0, 10, 0, 0]);
  });

  it('falls back to least-laxity-first when the solver throws or stops early', () => {
    const vehicles = [car('a', 10, 0, 2), car('b', 15, 0, 2)];
    const throwing: LpSolver = {
      solve: () => {
        throw new Error('wasm trap');
      },
    };
    const thrown = planWithLp(problem(2, { capacityKw: [10, 10], vehicles }), throwing);
    expect(thrown.method).toBe('llf');
    expect(thrown.fallbackReason).toContain('wasm trap');
    // LLF: b (laxity 0.5 h) before a (1 h) in the first hour; then a (laxity 0) before b (0.5 h).
    expect(rounded(thrown.energyKwh[1])).toEqual([10, 0]);
    expect(rounded(thrown.energyKwh[0])).toEqual([0, 10]);
    expect(rounded(thrown.unmetKwh)).toEqual([0, 5]);

    const timedOut: LpSolver = { solve: () => ({ Status: 'Time limit reached', ObjectiveValue: 0, Columns: {} }) };
    const late = planWithLp(problem(2, { capacityKw: [10, 10], vehicles }), timedOut, { timeLimitS: 0.001 });
    expect(late.method).toBe('llf');
    expect(late.fallbackReason).toContain('Time limit reached');
    expect(Math.max(...late.sitePowerKw)).toBeLessThanOrEqual(10);
  });

  it('passes the time budget to the solver', () => {
    let seen: number | undefined;
    const recording: LpSolver = {
      solve: (text, options) => {
        seen = options?.time_limit;
        return solver.solve(text, options);
      },
    };
    planWithLp(problem(1, { vehicles: [car('a', 1, 0, 1)] }), recording, { timeLimitS: 0.5 });
    expect(seen).toBe(0.5);
  });

  it('builds no variable outside a window and skips met needs', () => {
    const built = buildPlanLp(problem(4, { vehicles: [car('a', 5, 1, 2), car('done', 0, 0, 4)] }));
    expect(built.columns.map((c) => c.interval)).toEqual([1]);
    expect(built.unmet.map((u) => u.vehicle)).toEqual([0]);
    expect(built.text).not.toMatch(/x1_/);
  });

  it('keeps every node below the site within its limit', () => {
    // a and b share a 5 kW cabinet; c is elsewhere. The first hour is cheap.
    const plan = planWithLp(
      problem(2, {
        capacityKw: [20, 20],
        pricePerKwh: [0.1, 0.3],
        nodeLimits: [{ id: 'cabinet', capacityKw: [5, 5], vehicles: [0, 1] }],
        vehicles: [car('a', 10, 0, 2), car('b', 10, 0, 2), car('c', 10, 0, 2)],
      }),
      solver,
    );
    expect(plan.method).toBe('lp');
    expect(rounded([0, 1].map((i) => plan.energyKwh[0][i] + plan.energyKwh[1][i]))).toEqual([5, 5]);
    expect(rounded(plan.energyKwh[2])).toEqual([10, 0]);
    expect(rounded([plan.unmetKwh[0] + plan.unmetKwh[1], plan.unmetKwh[2]])).toEqual([10, 0]);
  });

  it('builds a node row only where the node limits something', () => {
    const built = buildPlanLp(
      problem(3, {
        capacityKw: [20, Infinity, 20],
        nodeLimits: [
          { id: 'feeder "A"', capacityKw: [5, 5, Infinity], vehicles: [0, 0] },
          { id: 'empty', capacityKw: [1, 1, 1], vehicles: [] },
        ],
        vehicles: [car('a', 10, 1, 3), car('b', 10, 0, 3)],
      }),
    );
    const rows = built.text.split('\n').filter((line) => /^ [cn]\d/.test(line));
    // No vehicle of the node can charge in interval 0, and interval 2 has no limit; the site has none in interval 1.
    expect(rows).toEqual([' c0: x1_0 <= 20', ' c2: x0_2 + x1_2 <= 20', ' n0_1: x0_1 <= 5']);
  });

  it('refuses a node that names a vehicle the problem does not have', () => {
    expect(() => buildPlanLp(problem(1, { nodeLimits: [{ id: 'x', capacityKw: [1], vehicles: [3] }], vehicles: [car('a', 1, 0, 1)] }))).toThrow(RangeError);
  });

  it('clips what the solver returns over a node limit', () => {
    // A solver answering slightly over the limits, as tolerances allow.
    const sloppy: LpSolver = {
      solve: () => ({ Status: 'Optimal', ObjectiveValue: 0, Columns: { x0_0: { Primal: 6 }, x1_0: { Primal: 6 }, x2_0: { Primal: 10 } } }),
    };
    const plan = planWithLp(
      problem(1, {
        capacityKw: [20],
        nodeLimits: [{ id: 'cabinet', capacityKw: [8], vehicles: [0, 1] }],
        vehicles: [car('a', 10, 0, 1), car('b', 10, 0, 1), car('c', 10, 0, 1)],
      }),
      sloppy,
    );
    // The site (22 > 20) scales everyone by 20/22, then the cabinet (10.9 > 8) scales a and b.
    expect(rounded(plan.energyKwh.map((row) => row[0]))).toEqual([4, 4, rounded([200 / 22])[0]]);
    expect(plan.energyKwh[0][0] + plan.energyKwh[1][0]).toBeLessThanOrEqual(8);
    expect(plan.sitePowerKw[0]).toBeLessThanOrEqual(20);
  });

  it('falls back to least-laxity-first within every node limit when the time budget runs out', () => {
    // Real HiGHS, a budget it cannot meet: the fallback is what reaches the chargers.
    const intervals = uniformIntervals(T0, 900, 32);
    const vehicles = Array.from({ length: 12 }, (_, k) => car(`v${k}`, 20 + k, 0, 2 + (k % 6), 11));
    const nodes = [
      { id: 'feeder', capacityKw: intervals.map(() => 40), vehicles: [0, 1, 2, 3, 4, 5, 6, 7] },
      { id: 'cabinet', capacityKw: intervals.map((_, i) => (i % 4 === 0 ? 0 : 15)), vehicles: [0, 1, 2, 3] },
    ];
    const tight = {
      intervals,
      capacityKw: intervals.map(() => 60),
      pricePerKwh: intervals.map((_, i) => 0.1 + 0.01 * (i % 5)),
      demandChargePerKw: 5,
      nodeLimits: nodes,
      vehicles,
    };
    const plan = planWithLp(tight, solver, { timeLimitS: 1e-6 });
    expect(plan.method).toBe('llf');
    expect(plan.fallbackReason).toMatch(/time limit/i);
    intervals.forEach((interval, i) => {
      const h = (interval.endMs - interval.startMs) / HOUR_MS;
      expect(plan.sitePowerKw[i]).toBeLessThanOrEqual(60 * (1 + 1e-9));
      for (const node of nodes) {
        const kw = node.vehicles.reduce((sum, v) => sum + plan.energyKwh[v][i], 0) / h;
        expect(kw).toBeLessThanOrEqual(node.capacityKw[i] * (1 + 1e-9));
      }
    });
    // It still delivers: the fallback is a plan, not a stop.
    expect(plan.sitePowerKw[1]).toBeGreaterThan(0);

    const thrown = planWithLp(tight, { solve: () => { throw new Error('out of memory'); } });
    expect(thrown.method).toBe('llf');
    expect(thrown.fallbackReason).toContain('out of memory');
    expect(thrown.energyKwh).toEqual(plan.energyKwh);
  });
});
