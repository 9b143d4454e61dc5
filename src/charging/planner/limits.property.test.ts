/**
 * Property tests of the planner's limits on random site trees: whatever the tree, the windows,
 * the needs and the tariffs, no plan a charger may be handed (the LP's, a capacity-keeping rule's,
 * the LP's least-laxity-first fallback) puts a node or the site over its capacity, a vehicle over
 * its max power or outside its window, or delivers more than is needed.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { allocateStep, planWithHeuristic, type StepNodeLimit, type StepVehicle } from './heuristics.js';
import { loadHighsSolver, planWithLp, type LpSolver } from './lp.js';
import {
  coarseningIntervals,
  HOUR_MS,
  hoursOf,
  presenceShare,
  uniformIntervals,
  type Plan,
  type PlanInterval,
  type PlanNodeLimit,
  type PlanningProblem,
} from './model.js';

let solver: LpSolver;
beforeAll(async () => {
  solver = await loadHighsSolver();
});

/** Relative slack of the capacity checks; a zero capacity gets none. */
const RELATIVE = 1e-6;
/** Files run in parallel in CI on 2 cores; a run alone takes a few seconds. */
const TIMEOUT_MS = 120_000;

const T0 = Date.UTC(2026, 0, 5, 6, 0, 0);

/**
 * A non-negative quantity up to `max`, where anything below a millionth counts as zero: near the
 * smallest doubles (5e-324) products and quotients lose all relative precision, so a relative
 * check there would test the floating-point format, not the planner. Such values never come
 * from a meter or a tariff.
 */
const amount = (max: number) => fc.double({ min: 0, max, noNaN: true }).map((x) => (x < 1e-6 ? 0 : x));

/** A capacity of one interval: mostly finite, sometimes closed, sometimes unlimited. */
const capacityKw = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.constant(Infinity) },
  { weight: 6, arbitrary: amount(200) },
);

/** Uniform steps, or fine steps first and coarse blocks after them (intervals of uneven length). */
const grid = fc
  .record({
    stepS: fc.constantFrom(300, 900, 3600),
    startStep: fc.integer({ min: 0, max: 11 }),
    uniformSteps: fc.integer({ min: 1, max: 72 }),
    coarse: fc.option(fc.record({ fineSteps: fc.integer({ min: 0, max: 12 }), coarseS: fc.constantFrom(900, 3600, 7200), hours: fc.integer({ min: 1, max: 30 }) })),
  })
  .map(({ stepS, startStep, uniformSteps, coarse }): PlanInterval[] => {
    const startMs = T0 + startStep * stepS * 1000;
    if (!coarse) return uniformIntervals(startMs, stepS, uniformSteps);
    return coarseningIntervals(startMs, stepS, startMs + coarse.fineSteps * stepS * 1000, coarse.coarseS, startMs + coarse.hours * HOUR_MS);
  });

/**
 * A site tree of 1 to 3 levels: each node's parent is an earlier node or the site. The planner
 * sees a node as the set of vehicles below it, so a vehicle attached to a node counts against
 * that node and every ancestor.
 */
function treeNodes(parents: readonly number[], attachments: readonly number[], capacities: readonly number[][]): PlanNodeLimit[] {
  const depth: number[] = [];
  const parent = parents.map((p, j) => {
    const chosen = p < j && p >= 0 && depth[p] < 3 ? p : -1;
    depth.push(chosen < 0 ? 1 : depth[chosen] + 1);
    return chosen;
  });
  const vehicles = parents.map((): number[] => []);
  attachments.forEach((node, v) => {
    for (let j = node; j >= 0; j = parent[j]) vehicles[j].push(v);
  });
  return parents.map((_, j) => ({ id: `node-${j}`, capacityKw: capacities[j], vehicles: vehicles[j] }));
}

const problemArbitrary = grid.chain((intervals) => {
  const n = intervals.length;
  const startMs = intervals[0].startMs;
  const spanS = (intervals[n - 1].endMs - startMs) / 1000;
  const perInterval = <T>(value: fc.Arbitrary<T>) => fc.array(value, { minLength: n, maxLength: n });
  return fc
    .record({
      siteKw: perInterval(capacityKw),
      nodeParents: fc.array(fc.integer({ min: -1, max: 7 }), { minLength: 1, maxLength: 8 }),
      nodeCapacities: fc.array(perInterval(capacityKw), { minLength: 8, maxLength: 8 }),
      vehicles: fc.array(
        fc.record({
          // Seconds from the horizon's start: windows before, across, inside and after it, off the grid.
          arrivalS: fc.integer({ min: -3 * 3600, max: spanS + 2 * 3600 }),
          stayS: fc.integer({ min: 60, max: 30 * 3600 }),
          needKwh: fc.oneof(
            { weight: 1, arbitrary: fc.constant(0) },
            { weight: 1, arbitrary: fc.constant(1e6) },
            { weight: 6, arbitrary: amount(150) },
          ),
          maxPowerKw: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 9, arbitrary: fc.double({ min: 1, max: 150, noNaN: true }) }),
          attachedTo: fc.integer({ min: -1, max: 7 }),
        }),
        { minLength: 1, maxLength: 30 },
      ),
      prices: fc.oneof(
        fc.double({ min: -0.5, max: 1, noNaN: true }).map((p) => intervals.map(() => p)),
        perInterval(fc.oneof(fc.constantFrom(-0.2, 0, 0.1, 0.3), fc.double({ min: -0.5, max: 1, noNaN: true }))),
      ),
      co2: fc.option(fc.record({ kgPerKwh: perInterval(amount(0.8)), weightPerKg: amount(0.2) })),
      demandChargePerKw: fc.option(amount(30)),
      peakFloorKw: fc.option(amount(100)),
      latenessCostPerKwh: fc.option(amount(1)),
    })
    .map((r): PlanningProblem => {
      const nodeCount = r.nodeParents.length;
      const attachments = r.vehicles.map((v) => (v.attachedTo < nodeCount ? v.attachedTo : -1));
      return {
        intervals,
        capacityKw: r.siteKw,
        nodeLimits: treeNodes(r.nodeParents, attachments, r.nodeCapacities.slice(0, nodeCount)),
        pricePerKwh: r.prices,
        ...(r.co2 ? { co2: r.co2 } : {}),
        ...(r.demandChargePerKw !== null ? { demandChargePerKw: r.demandChargePerKw } : {}),
        ...(r.peakFloorKw !== null ? { peakFloorKw: r.peakFloorKw } : {}),
        ...(r.latenessCostPerKwh !== null ? { latenessCostPerKwh: r.latenessCostPerKwh } : {}),
        vehicles: r.vehicles.map((v, k) => {
          const arrivalMs = startMs + v.arrivalS * 1000;
          return { id: `v${k}`, energyNeedKwh: v.needKwh, maxPowerKw: v.maxPowerKw, arrivalMs, departureMs: arrivalMs + v.stayS * 1000 };
        }),
      };
    });
});

const within = (value: number, limit: number): boolean => value <= limit * (1 + RELATIVE);

/** Every limit a plan handed to chargers must keep; returns the energy it delivers. */
function expectWithinLimits(problem: PlanningProblem, plan: Plan): number {
  const { intervals, vehicles } = problem;
  let deliveredTotal = 0;
  vehicles.forEach((vehicle, v) => {
    let delivered = 0;
    intervals.forEach((interval, i) => {
      const power = plan.powerKw[v][i];
      const energy = plan.energyKwh[v][i];
      const share = presenceShare(vehicle, interval);
      expect(power).toBeGreaterThanOrEqual(0);
      expect(energy).toBeGreaterThanOrEqual(0);
      if (share === 0) {
        expect(power).toBe(0);
        expect(energy).toBe(0);
      }
      expect(within(power, vehicle.maxPowerKw)).toBe(true);
      expect(within(energy, vehicle.maxPowerKw * share * hoursOf(interval))).toBe(true);
      delivered += energy;
    });
    const need = Math.max(0, vehicle.energyNeedKwh);
    expect(within(delivered, need)).toBe(true);
    expect(plan.unmetKwh[v]).toBeGreaterThanOrEqual(0);
    expect(plan.unmetKwh[v]).toBeCloseTo(Math.max(0, need - delivered), need > 1e3 ? 3 : 6);
    deliveredTotal += delivered;
  });
  intervals.forEach((interval, i) => {
    const hours = hoursOf(interval);
    const kwOf = (members: readonly number[]) => members.reduce((sum, v) => sum + plan.energyKwh[v][i], 0) / hours;
    const site = kwOf(vehicles.map((_, v) => v));
    expect(within(site, problem.capacityKw[i]), `site at interval ${i}: ${site} kW > ${problem.capacityKw[i]} kW`).toBe(true);
    expect(plan.sitePowerKw[i]).toBeCloseTo(site, 6);
    for (const node of problem.nodeLimits ?? []) {
      const kw = kwOf(node.vehicles);
      expect(within(kw, node.capacityKw[i]), `${node.id} at interval ${i}: ${kw} kW > ${node.capacityKw[i]} kW`).toBe(true);
    }
  });
  return deliveredTotal;
}

const throwingSolver: LpSolver = {
  solve: () => {
    throw new Error('solver unavailable');
  },
};

describe('planner limits on random site trees', () => {
  it(
    'the LP, every capacity-keeping rule and the fallback keep every limit; the LP delivers most where costs depend only on the interval',
    () => {
      fc.assert(
        fc.property(problemArbitrary, (problem) => {
          const lp = planWithLp(problem, solver);
          expect(lp.method, lp.fallbackReason).toBe('lp');
          const lpDelivered = expectWithinLimits(problem, lp);
          // The solver is handed arrays; the LP text is the same LP, so a solver that reads only
          // text (no solveModel) comes to the very same plan.
          const fromText = planWithLp(problem, { solve: solver.solve });
          expect(fromText.energyKwh).toEqual(lp.energyKwh);

          const fallback = planWithLp(problem, throwingSolver);
          // With nothing to deliver there is nothing to solve, and the solver is not asked.
          if (problem.vehicles.some((v) => v.energyNeedKwh > 0)) {
            expect(fallback.method).toBe('llf');
            expect(fallback.fallbackReason).toContain('solver unavailable');
          }
          expectWithinLimits(problem, fallback);

          // Without a demand charge or a lateness cost, a kWh's cost depends on its interval only,
          // and it is below the penalty on unmet energy. Then any plan that delivers more can be
          // reached from the LP's by moves that each add a kWh at the end of a chain of swaps
          // within intervals, whose costs cancel, so each move lowers the objective: the LP's
          // optimum delivers the most energy any plan within the limits can, the rules' included.
          const costPerInterval = !((problem.demandChargePerKw ?? 0) > 0) && !((problem.latenessCostPerKwh ?? 0) > 0);
          for (const policy of ['equal-share', 'edf', 'llf'] as const) {
            const plan = planWithHeuristic(problem, policy);
            const delivered = expectWithinLimits(problem, plan);
            if (costPerInterval) expect(lpDelivered).toBeGreaterThanOrEqual(delivered - 1e-6 * Math.max(1, delivered));
          }
        }),
        { numRuns: 150 },
      );
    },
    TIMEOUT_MS,
  );

  /** One interval's allocation problem: vehicles and a tree of nodes, in the step's indices. */
  const stepArbitrary = fc
    .record({
      siteKw: capacityKw,
      hours: fc.constantFrom(1 / 12, 0.25, 1),
      nodeParents: fc.array(fc.integer({ min: -1, max: 7 }), { minLength: 1, maxLength: 8 }),
      nodeKw: fc.array(capacityKw, { minLength: 8, maxLength: 8 }),
      vehicles: fc.array(
        fc.record({
          remainingKwh: fc.oneof(fc.constant(0), amount(100)),
          maxPowerKw: fc.double({ min: 1, max: 150, noNaN: true }),
          presence: fc.oneof(fc.constant(1), amount(1)),
          departureH: fc.double({ min: 0.1, max: 24, noNaN: true }),
          attachedTo: fc.integer({ min: -1, max: 7 }),
        }),
        { minLength: 1, maxLength: 30 },
      ),
    })
    .map((r) => {
      const interval = { startMs: T0, endMs: T0 + r.hours * HOUR_MS };
      const nodeCount = r.nodeParents.length;
      const nodes = treeNodes(r.nodeParents, r.vehicles.map((v) => (v.attachedTo < nodeCount ? v.attachedTo : -1)), r.nodeKw.slice(0, nodeCount).map((kw) => [kw]));
      return {
        interval,
        siteKw: r.siteKw,
        nodes: nodes.map((node): StepNodeLimit => ({ capacityKw: node.capacityKw[0], members: node.vehicles })),
        vehicles: r.vehicles.map(
          (v, k): StepVehicle => ({ id: `v${k}`, remainingKwh: v.remainingKwh, maxPowerKw: v.maxPowerKw, presence: v.presence, arrivalMs: T0, departureMs: T0 + v.departureH * HOUR_MS }),
        ),
      };
    });

  it(
    'each rule leaves a vehicle short of what it can use only under a full limit; equal-share is max-min fair',
    () => {
      fc.assert(
        fc.property(stepArbitrary, ({ interval, siteKw, nodes, vehicles }) => {
          const hours = hoursOf(interval);
          const usable = vehicles.map((v) => (v.presence <= 0 || v.remainingKwh <= 0 ? 0 : Math.min(v.maxPowerKw, v.remainingKwh / (v.presence * hours))));
          const limits = [{ capacityKw: siteKw, members: vehicles.map((_, i) => i) }, ...nodes];
          for (const policy of ['equal-share', 'edf', 'llf'] as const) {
            const power = allocateStep(policy, vehicles, siteKw, interval, nodes);
            const used = limits.map((limit) => limit.members.reduce((sum, i) => sum + power[i] * vehicles[i].presence, 0));
            const full = limits.map((limit, c) => used[c] >= Math.max(0, limit.capacityKw) * (1 - 1e-9) - 1e-9);
            limits.forEach((limit, c) => expect(within(used[c], Math.max(0, limit.capacityKw))).toBe(true));
            vehicles.forEach((_, i) => {
              expect(power[i]).toBeGreaterThanOrEqual(0);
              expect(within(power[i], usable[i])).toBe(true);
              if (power[i] >= usable[i] * (1 - 1e-9)) return;
              const under = limits.flatMap((limit, c) => (limit.members.includes(i) ? [c] : []));
              // Short of what it can use: some limit it is under has no room left (no rule idles capacity)...
              expect(under.some((c) => full[c]), `${policy}: vehicle ${i} gets ${power[i]} of ${usable[i]} kW with room left`).toBe(true);
              // ...and under equal-share it is among the best served of a full limit (its bottleneck).
              if (policy === 'equal-share') {
                const bottleneck = under.some((c) => full[c] && limits[c].members.every((m) => power[m] <= power[i] * (1 + 1e-9) + 1e-9));
                expect(bottleneck, `vehicle ${i} gets ${power[i]} kW without a bottleneck`).toBe(true);
              }
            });
          }
        }),
        { numRuns: 300 },
      );
    },
    TIMEOUT_MS,
  );
});
