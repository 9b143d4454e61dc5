/**
 * The planner's linear program, written as CPLEX LP text and solved with HiGHS (the `highs`
 * WebAssembly build). Formulation, with x[v,i] the energy (kWh) vehicle v takes in interval i,
 * h[i] the interval's hours and s[v,i] the share of it v is plugged in:
 *
 *   minimise   sum (price[i] + co2Weight × co2[i] + tau[i]) × x[v,i]
 *              + demandCharge × peak + penalty × sum u[v]
 *   subject to sum_i x[v,i] + u[v] = need[v]                    (energy: delivered + unmet)
 *              sum_v x[v,i] <= capacity[i] × h[i]                (site capacity, average power)
 *              sum_v x[v,i] - h[i] × peak <= 0                   (peak, only with a demand charge)
 *              0 <= x[v,i] <= maxPower[v] × s[v,i] × h[i]        (window and power bound)
 *              u[v] >= 0, peak >= peakFloor
 *
 * tau[i] is a tiny cost that grows with time. Among plans of equal cost the solver may pick one
 * that delivers late; under model-predictive control that is a gamble on departures and on the
 * capacity later arrivals will need, so energy goes as early as is free. tau never exceeds a tenth
 * of the smallest price step between intervals, so it never overrides a real price difference.
 *
 * The penalty on unmet energy exceeds what delivering a kWh can cost anywhere in the horizon
 * (price, CO2, and the demand charge of raising the peak by 1/h[i] kW), so the LP never trades
 * energy for money.
 */
import { planWithHeuristic } from './heuristics.js';
import { hoursOf, presenceShare, sitePowerOf, type Plan, type PlanningProblem } from './model.js';

/** The part of a loaded `highs` module the planner uses. */
export interface LpSolver {
  solve(
    lpText: string,
    options?: { time_limit?: number; output_flag?: boolean; presolve?: 'off' | 'choose' | 'on' },
  ): { Status: string; ObjectiveValue: number; Columns: Record<string, { Primal: number }> };
}

/** Loads HiGHS (WebAssembly, about 70 ms); load once and pass the solver to every plan. */
export async function loadHighsSolver(): Promise<LpSolver> {
  // The package ships one CommonJS-style declaration for its ESM build too, so TypeScript (NodeNext)
  // sees the loader one `default` deeper than Node does at run time; accept either shape.
  const module = (await import('highs')) as unknown as { default: Loader | { default: Loader } };
  const load = typeof module.default === 'function' ? module.default : module.default.default;
  return (await load()) as unknown as LpSolver;
}

type Loader = () => Promise<unknown>;

export interface LpPlanOptions {
  /** Solver time budget, seconds; past it least-laxity-first plans instead. */
  timeLimitS?: number;
}

/** The LP text and how its columns map back to the problem. */
export interface BuiltLp {
  text: string;
  /** One entry per energy column: vehicle index, interval index, upper bound (kWh). */
  columns: Array<{ name: string; vehicle: number; interval: number; upperKwh: number }>;
  /** Vehicle indices that have an energy row (a need above zero), with their unmet column. */
  unmet: Array<{ name: string; vehicle: number }>;
  penaltyPerKwh: number;
  hasPeak: boolean;
}

/** A number as LP text; HiGHS reads exponents, and 12 significant digits is far finer than any input. */
const num = (x: number): string => String(Number(x.toPrecision(12)));

export function buildPlanLp(problem: PlanningProblem): BuiltLp {
  const { intervals, vehicles } = problem;
  const n = intervals.length;
  const hours = intervals.map(hoursOf);
  const co2Weight = problem.co2?.weightPerKg ?? 0;
  const effectivePrice = intervals.map((_, i) => problem.pricePerKwh[i] + (problem.co2 ? co2Weight * problem.co2.kgPerKwh[i] : 0));

  const maxPrice = effectivePrice.reduce((m, p) => Math.max(m, Math.abs(p)), 0);
  const reference = maxPrice > 0 ? maxPrice : 1;
  const distinct = [...new Set(effectivePrice)].sort((a, b) => a - b);
  let smallestStep = Infinity;
  for (let k = 1; k < distinct.length; k++) smallestStep = Math.min(smallestStep, distinct[k] - distinct[k - 1]);
  const tauMax = Math.max(1e-6 * reference, Math.min(1e-2 * reference, 0.1 * smallestStep));
  const spanMs = intervals.length > 0 ? intervals[n - 1].endMs - intervals[0].startMs : 1;
  const tau = intervals.map((interval) => (tauMax * ((interval.startMs + interval.endMs) / 2 - intervals[0].startMs)) / spanMs);

  const demandCharge = problem.demandChargePerKw ?? 0;
  const hasPeak = demandCharge > 0;
  const minHours = hours.reduce((m, h) => Math.min(m, h), Infinity);
  const penaltyPerKwh = 10 * (maxPrice + tauMax + (problem.latenessCostPerKwh ?? 0) + (hasPeak ? demandCharge / minHours : 0)) + 1;

  const columns: BuiltLp['columns'] = [];
  const unmet: BuiltLp['unmet'] = [];
  const perInterval: string[][] = intervals.map(() => []);
  const objective: string[] = [];
  const energyRows: string[] = [];
  const bounds: string[] = [];

  const lateness = problem.latenessCostPerKwh ?? 0;
  const nowMs = n > 0 ? intervals[0].startMs : 0;
  vehicles.forEach((vehicle, v) => {
    if (!(vehicle.energyNeedKwh > 0)) return;
    const terms: string[] = [];
    const windowMs = Math.max(1, vehicle.departureMs - Math.max(nowMs, vehicle.arrivalMs));
    for (let i = 0; i < n; i++) {
      const share = presenceShare(vehicle, intervals[i]);
      const upperKwh = vehicle.maxPowerKw * share * hours[i];
      if (upperKwh <= 0) continue;
      const name = `x${v}_${i}`;
      columns.push({ name, vehicle: v, interval: i, upperKwh });
      perInterval[i].push(name);
      terms.push(name);
      const delayMs = (intervals[i].startMs + intervals[i].endMs) / 2 - Math.max(nowMs, vehicle.arrivalMs);
      const cost = effectivePrice[i] + tau[i] + (lateness > 0 ? (lateness * Math.min(1, Math.max(0, delayMs / windowMs))) : 0);
      if (cost !== 0) objective.push(`${cost < 0 ? '-' : '+'} ${num(Math.abs(cost))} ${name}`);
      bounds.push(` ${name} <= ${num(upperKwh)}`);
    }
    const unmetName = `u${v}`;
    unmet.push({ name: unmetName, vehicle: v });
    objective.push(`+ ${num(penaltyPerKwh)} ${unmetName}`);
    energyRows.push(` e${v}: ${[...terms, unmetName].join(' + ')} = ${num(vehicle.energyNeedKwh)}`);
  });

  const capacityRows: string[] = [];
  const peakRows: string[] = [];
  for (let i = 0; i < n; i++) {
    if (perInterval[i].length === 0) continue;
    const sum = perInterval[i].join(' + ');
    capacityRows.push(` c${i}: ${sum} <= ${num(Math.max(0, problem.capacityKw[i]) * hours[i])}`);
    if (hasPeak) peakRows.push(` k${i}: ${sum} - ${num(hours[i])} pk <= 0`);
  }
  if (hasPeak) {
    objective.push(`+ ${num(demandCharge)} pk`);
    bounds.push(` pk >= ${num(Math.max(0, problem.peakFloorKw ?? 0))}`);
  }

  // One term per line: LP readers accept continuation lines, and no line grows with the model.
  const text = [
    'Minimize',
    ` obj: ${objective.join('\n ')}`,
    'Subject To',
    ...energyRows,
    ...capacityRows,
    ...peakRows,
    'Bounds',
    ...bounds,
    'End',
    '',
  ].join('\n');
  return { text, columns, unmet, penaltyPerKwh, hasPeak };
}

/**
 * The cost-optimal plan for the problem, or a least-laxity-first plan (with the reason) when
 * the solver fails or runs out of its time budget. Either way the plan keeps every limit.
 */
export function planWithLp(problem: PlanningProblem, solver: LpSolver, options: LpPlanOptions = {}): Plan {
  const started = performance.now();
  const built = buildPlanLp(problem);
  const { intervals, vehicles } = problem;
  const energyKwh = vehicles.map(() => intervals.map(() => 0));
  if (built.unmet.length === 0) {
    return finish(problem, energyKwh, performance.now() - started);
  }
  let result: ReturnType<LpSolver['solve']>;
  try {
    result = solver.solve(built.text, {
      output_flag: false,
      ...(options.timeLimitS === undefined ? {} : { time_limit: options.timeLimitS }),
    });
  } catch (error) {
    return planWithHeuristic(problem, 'llf', performance.now() - started, `solver failed: ${(error as Error).message}`);
  }
  if (result.Status !== 'Optimal') {
    return planWithHeuristic(problem, 'llf', performance.now() - started, `solver status: ${result.Status}`);
  }
  for (const column of built.columns) {
    const value = result.Columns[column.name]?.Primal ?? 0;
    energyKwh[column.vehicle][column.interval] = Math.min(column.upperKwh, Math.max(0, value));
  }
  return finish(problem, energyKwh, performance.now() - started);
}

/**
 * Turns energies into a plan, first removing what solver tolerances (about 1e-7) may have put
 * over a limit: a plan handed to chargers keeps the capacity and the needs exactly.
 */
function finish(problem: PlanningProblem, energyKwh: number[][], solveMs: number): Plan {
  const { intervals, vehicles } = problem;
  vehicles.forEach((vehicle, v) => {
    const total = energyKwh[v].reduce((a, b) => a + b, 0);
    const need = Math.max(0, vehicle.energyNeedKwh);
    if (total > need) energyKwh[v] = energyKwh[v].map((e) => (e * need) / total);
  });
  intervals.forEach((interval, i) => {
    const limit = Math.max(0, problem.capacityKw[i]) * hoursOf(interval);
    let total = 0;
    for (const row of energyKwh) total += row[i];
    if (total > limit) for (const row of energyKwh) row[i] = (row[i] * limit) / total;
  });
  const powerKw = vehicles.map((vehicle, v) =>
    intervals.map((interval, i) => {
      const share = presenceShare(vehicle, interval);
      return share > 0 ? Math.min(vehicle.maxPowerKw, energyKwh[v][i] / (share * hoursOf(interval))) : 0;
    }),
  );
  const unmetKwh = vehicles.map((vehicle, v) => Math.max(0, vehicle.energyNeedKwh - energyKwh[v].reduce((a, b) => a + b, 0)));
  return { powerKw, energyKwh, unmetKwh, sitePowerKw: sitePowerOf(energyKwh, intervals), method: 'lp', solveMs };
}
