/**
 * The planner's linear program, solved with HiGHS (the `highs` WebAssembly build). It is built as
 * arrays, which HiGHS takes directly, and can be written as CPLEX LP text, the same LP column for
 * column, for a solver that reads only text and for a person to read. Formulation, with x[v,i]
 * the energy (kWh) vehicle v takes in interval i, h[i] the interval's hours and s[v,i] the share
 * of it v is plugged in:
 *
 *   minimise   sum (price[i] + co2Weight × co2[i] + tau[i]) × x[v,i]
 *              + demandCharge × peak + penalty × sum u[v]
 *   subject to sum_i x[v,i] + u[v] = need[v]                    (energy: delivered + unmet)
 *              sum_v x[v,i] <= capacity[i] × h[i]                (site capacity, average power)
 *              sum_{v in n} x[v,i] <= capacity[n,i] × h[i]       (each node n below the site)
 *              sum_v x[v,i] - h[i] × peak <= 0                   (peak, only with a demand charge)
 *              0 <= x[v,i] <= maxPower[v] × s[v,i] × h[i]        (window and power bound)
 *              u[v] >= 0, peak >= peakFloor
 *
 * A capacity row is left out where the limit is Infinity or no vehicle under it can charge in
 * that interval.
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
import { checkedNodeLimits, hoursOf, presenceShare, sitePowerOf, type Plan, type PlanningProblem } from './model.js';

/** Options the planner hands the solver; the names are HiGHS's. */
export interface LpSolveOptions {
  time_limit?: number;
  output_flag?: boolean;
  presolve?: 'off' | 'choose' | 'on';
}

/**
 * The LP as numbers, columns and rows in the order the LP text names them: what the solver is
 * handed directly, skipping the text. Rows are compressed sparse rows: row r's entries are at
 * positions rowStarts[r] to rowStarts[r + 1] of entryColumns and entryValues.
 */
export interface LpModel {
  colCost: Float64Array;
  colLower: Float64Array;
  colUpper: Float64Array;
  rowLower: Float64Array;
  rowUpper: Float64Array;
  rowStarts: Int32Array;
  entryColumns: Int32Array;
  entryValues: Float64Array;
}

/** The part of a loaded `highs` module the planner uses. */
export interface LpSolver {
  solve(lpText: string, options?: LpSolveOptions): { Status: string; ObjectiveValue: number; Columns: Record<string, { Primal: number }> };
  /**
   * The same LP from arrays, where the solver offers it: HiGHS took about 100 ms to parse the
   * 1.4 MB of text of a 100-vehicle, 288-step depot LP, half of a re-plan's 200 ms budget, and
   * writing the text took another 40 ms. Column values come in model order. `Status` is 'Optimal'
   * or 'Time limit reached' as `solve` says them, otherwise HiGHS's name for the outcome.
   */
  solveModel?(model: LpModel, options?: LpSolveOptions): { Status: string; columnValues: ArrayLike<number> };
}

/** Loads HiGHS (WebAssembly, about 70 ms); load once and pass the solver to every plan. */
export async function loadHighsSolver(): Promise<LpSolver> {
  // The package ships one CommonJS-style declaration for its ESM build too, so TypeScript (NodeNext)
  // sees the loader one `default` deeper than Node does at run time; accept either shape.
  const module = (await import('highs')) as unknown as { default: Loader | { default: Loader } };
  const load = typeof module.default === 'function' ? module.default : module.default.default;
  const highs = (await load()) as HighsRuntime;
  const statusNames = new Map(Object.entries(highs.constants.modelStatus).map(([name, code]) => [code, name]));
  return {
    solve: (lpText, options) => highs.solve(lpText, options),
    solveModel: (model, options = {}) => {
      // A fresh instance per solve, as `solve` uses: no basis or clock carries over, so both
      // paths start alike. Its native memory is not garbage-collected, hence the dispose.
      const instance = highs.createModel();
      try {
        instance.options.set({ ...options });
        const numCols = model.colCost.length;
        const numRows = model.rowLower.length;
        instance.passModel({
          numCols,
          numRows,
          colCost: model.colCost,
          colLower: model.colLower,
          colUpper: model.colUpper,
          rowLower: model.rowLower,
          rowUpper: model.rowUpper,
          matrix: { format: 'csr', numRows, numCols, starts: model.rowStarts, indices: model.entryColumns, values: model.entryValues },
        });
        const { modelStatus } = instance.run();
        if (modelStatus === highs.constants.modelStatus.optimal) return { Status: 'Optimal', columnValues: instance.getSolution().colValue };
        const Status = modelStatus === highs.constants.modelStatus.timeLimit ? 'Time limit reached' : (statusNames.get(modelStatus) ?? `model status ${modelStatus}`);
        return { Status, columnValues: [] };
      } finally {
        instance.dispose();
      }
    },
  };
}

type Loader = () => Promise<unknown>;

/** What the planner uses of the loaded runtime (see the package's types.d.ts). */
interface HighsRuntime {
  solve: LpSolver['solve'];
  constants: { modelStatus: Record<string, number> & { optimal: number; timeLimit: number } };
  createModel(): {
    options: { set(values: Record<string, unknown>): unknown };
    passModel(model: {
      numCols: number;
      numRows: number;
      colCost: Float64Array;
      colLower: Float64Array;
      colUpper: Float64Array;
      rowLower: Float64Array;
      rowUpper: Float64Array;
      matrix: { format: 'csr'; numRows: number; numCols: number; starts: Int32Array; indices: Int32Array; values: Float64Array };
    }): unknown;
    run(): { modelStatus: number };
    getSolution(): { colValue: Float64Array };
    dispose(): void;
  };
}

export interface LpPlanOptions {
  /** Solver time budget, seconds; past it least-laxity-first plans instead. */
  timeLimitS?: number;
}

/** The LP, as text and as arrays, and how its columns map back to the problem. */
export interface BuiltLp {
  /** CPLEX LP text; written when first read (the array path never needs it). */
  readonly text: string;
  model: LpModel;
  /** One entry per energy column: vehicle index, interval index, upper bound (kWh), index in the model. */
  columns: Array<{ name: string; vehicle: number; interval: number; upperKwh: number; index: number }>;
  /** Vehicle indices that have an energy row (a need above zero), with their unmet column. */
  unmet: Array<{ name: string; vehicle: number; index: number }>;
  penaltyPerKwh: number;
  hasPeak: boolean;
  /** Size of the LP (what the solver is handed, before its presolve). */
  rowCount: number;
  columnCount: number;
}

/** A number as it stands in the LP text: 12 significant digits is far finer than any input. */
const round12 = (x: number): number => Number(x.toPrecision(12));
const num = (x: number): string => String(round12(x));

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

  // Columns in the order they are made: each vehicle's energies, then its unmet energy; the peak
  // last. Costs and bounds are rounded as the text writes them, so text and arrays agree exactly.
  const names: string[] = [];
  const cost: number[] = [];
  const lower: number[] = [];
  const upper: number[] = [];
  const addColumn = (name: string, c: number, lo: number, up: number): number => {
    names.push(name);
    cost.push(c);
    lower.push(lo);
    upper.push(up);
    return names.length - 1;
  };
  // Rows, in the order of the text: energies, site capacity, nodes, peak.
  const rowNames: string[] = [];
  const rowLower: number[] = [];
  const rowUpper: number[] = [];
  const rowTerms: number[][] = [];
  /** The coefficient of the peak column in each row: only peak rows have one. */
  const rowPeak: number[] = [];
  const addRow = (name: string, terms: number[], lo: number, up: number, peakCoefficient = 0): void => {
    rowNames.push(name);
    rowTerms.push(terms);
    rowLower.push(lo);
    rowUpper.push(up);
    rowPeak.push(peakCoefficient);
  };

  const columns: BuiltLp['columns'] = [];
  const unmet: BuiltLp['unmet'] = [];
  const perInterval: number[][] = intervals.map(() => []);
  const perIntervalVehicles: number[][] = intervals.map(() => []);

  const lateness = problem.latenessCostPerKwh ?? 0;
  const nowMs = n > 0 ? intervals[0].startMs : 0;
  vehicles.forEach((vehicle, v) => {
    if (!(vehicle.energyNeedKwh > 0)) return;
    const terms: number[] = [];
    const windowMs = Math.max(1, vehicle.departureMs - Math.max(nowMs, vehicle.arrivalMs));
    for (let i = 0; i < n; i++) {
      const share = presenceShare(vehicle, intervals[i]);
      const upperKwh = vehicle.maxPowerKw * share * hours[i];
      if (upperKwh <= 0) continue;
      const delayMs = (intervals[i].startMs + intervals[i].endMs) / 2 - Math.max(nowMs, vehicle.arrivalMs);
      const c = effectivePrice[i] + tau[i] + (lateness > 0 ? (lateness * Math.min(1, Math.max(0, delayMs / windowMs))) : 0);
      const name = `x${v}_${i}`;
      const index = addColumn(name, round12(c), 0, round12(upperKwh));
      columns.push({ name, vehicle: v, interval: i, upperKwh, index });
      perInterval[i].push(index);
      perIntervalVehicles[i].push(v);
      terms.push(index);
    }
    const unmetName = `u${v}`;
    const unmetIndex = addColumn(unmetName, round12(penaltyPerKwh), 0, Infinity);
    unmet.push({ name: unmetName, vehicle: v, index: unmetIndex });
    terms.push(unmetIndex);
    const need = round12(vehicle.energyNeedKwh);
    addRow(`e${v}`, terms, need, need);
  });
  const peak = hasPeak ? addColumn('pk', round12(demandCharge), round12(Math.max(0, problem.peakFloorKw ?? 0)), Infinity) : -1;

  for (let i = 0; i < n; i++) {
    if (perInterval[i].length === 0 || problem.capacityKw[i] === Infinity) continue;
    addRow(`c${i}`, perInterval[i], -Infinity, round12(Math.max(0, problem.capacityKw[i]) * hours[i]));
  }
  // Node rows are named by position, not by id: an id may hold characters the LP format reserves.
  checkedNodeLimits(problem).forEach((node, j) => {
    const under = new Set(node.vehicles);
    for (let i = 0; i < n; i++) {
      if (node.capacityKw[i] === Infinity) continue;
      const terms = perInterval[i].filter((_, k) => under.has(perIntervalVehicles[i][k]));
      if (terms.length === 0) continue;
      addRow(`n${j}_${i}`, terms, -Infinity, round12(Math.max(0, node.capacityKw[i]) * hours[i]));
    }
  });
  if (hasPeak) {
    for (let i = 0; i < n; i++) {
      if (perInterval[i].length > 0) addRow(`k${i}`, perInterval[i], -Infinity, 0, -round12(hours[i]));
    }
  }

  // HiGHS numbers the columns of LP text in the order they are first named: the objective lists
  // every column with a cost (all but energies whose cost is exactly zero), and those first
  // appear in their energy row, after the whole objective. The arrays use the same numbering.
  const order: number[] = [];
  for (let made = 0; made < names.length; made++) if (cost[made] !== 0) order.push(made);
  for (let made = 0; made < names.length; made++) if (cost[made] === 0) order.push(made);
  const position = new Int32Array(names.length);
  order.forEach((made, at) => (position[made] = at));
  for (const column of columns) column.index = position[column.index];
  for (const u of unmet) u.index = position[u.index];

  let entries = 0;
  for (let r = 0; r < rowTerms.length; r++) entries += rowTerms[r].length + (rowPeak[r] !== 0 ? 1 : 0);
  const rowStarts = new Int32Array(rowTerms.length + 1);
  const entryColumns = new Int32Array(entries);
  const entryValues = new Float64Array(entries);
  let at = 0;
  rowTerms.forEach((terms, r) => {
    for (const made of terms) {
      entryColumns[at] = position[made];
      entryValues[at++] = 1;
    }
    if (rowPeak[r] !== 0) {
      entryColumns[at] = position[peak];
      entryValues[at++] = rowPeak[r];
    }
    rowStarts[r + 1] = at;
  });
  const model: LpModel = {
    colCost: Float64Array.from(order, (made) => cost[made]),
    colLower: Float64Array.from(order, (made) => lower[made]),
    colUpper: Float64Array.from(order, (made) => upper[made]),
    rowLower: Float64Array.from(rowLower),
    rowUpper: Float64Array.from(rowUpper),
    rowStarts,
    entryColumns,
    entryValues,
  };

  let text: string | undefined;
  const writeText = (): string => {
    const objective: string[] = [];
    for (const made of order) {
      if (cost[made] !== 0) objective.push(`${cost[made] < 0 ? '-' : '+'} ${num(Math.abs(cost[made]))} ${names[made]}`);
    }
    const rows = rowTerms.map((terms, r) => {
      const sum = terms.map((made) => names[made]).join(' + ');
      if (rowPeak[r] !== 0) return ` ${rowNames[r]}: ${sum} - ${num(-rowPeak[r])} pk <= ${num(rowUpper[r])}`;
      return ` ${rowNames[r]}: ${sum} ${rowLower[r] === rowUpper[r] ? '=' : '<='} ${num(rowUpper[r])}`;
    });
    const bounds = columns.map((column) => ` ${column.name} <= ${num(upper[order[column.index]])}`);
    if (hasPeak) bounds.push(` pk >= ${num(lower[peak])}`);
    // One term per line: LP readers accept continuation lines, and no line grows with the model.
    return ['Minimize', ` obj: ${objective.join('\n ')}`, 'Subject To', ...rows, 'Bounds', ...bounds, 'End', ''].join('\n');
  };

  return {
    get text() {
      text ??= writeText();
      return text;
    },
    model,
    columns,
    unmet,
    penaltyPerKwh,
    hasPeak,
    rowCount: rowTerms.length,
    columnCount: names.length,
  };
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
  const solveOptions: LpSolveOptions = { output_flag: false, ...(options.timeLimitS === undefined ? {} : { time_limit: options.timeLimitS }) };
  let status: string;
  let valueOf: (column: BuiltLp['columns'][number]) => number;
  try {
    if (solver.solveModel) {
      const result = solver.solveModel(built.model, solveOptions);
      status = result.Status;
      valueOf = (column) => result.columnValues[column.index] ?? 0;
    } else {
      const result = solver.solve(built.text, solveOptions);
      status = result.Status;
      valueOf = (column) => result.Columns[column.name]?.Primal ?? 0;
    }
  } catch (error) {
    return planWithHeuristic(problem, 'llf', performance.now() - started, `solver failed: ${(error as Error).message}`);
  }
  if (status !== 'Optimal') {
    return planWithHeuristic(problem, 'llf', performance.now() - started, `solver status: ${status}`);
  }
  for (const column of built.columns) {
    energyKwh[column.vehicle][column.interval] = Math.min(column.upperKwh, Math.max(0, valueOf(column)));
  }
  return finish(problem, energyKwh, performance.now() - started);
}

/**
 * Turns energies into a plan, first removing what solver tolerances (about 1e-7) may have put
 * over a limit: a plan handed to chargers keeps the capacity, every node's limit and the needs
 * exactly. Each step only scales energies down, so a later step cannot undo an earlier one.
 */
function finish(problem: PlanningProblem, energyKwh: number[][], solveMs: number): Plan {
  const { intervals, vehicles } = problem;
  vehicles.forEach((vehicle, v) => {
    const total = energyKwh[v].reduce((a, b) => a + b, 0);
    const need = Math.max(0, vehicle.energyNeedKwh);
    if (total > need) energyKwh[v] = energyKwh[v].map((e) => (e * need) / total);
  });
  const clip = (rows: readonly number[][], capacityKw: number, i: number): void => {
    const limit = Math.max(0, capacityKw) * hoursOf(intervals[i]);
    let total = 0;
    for (const row of rows) total += row[i];
    if (total > limit) for (const row of rows) row[i] = (row[i] * limit) / total;
  };
  const nodes = checkedNodeLimits(problem).map((node) => ({ capacityKw: node.capacityKw, rows: node.vehicles.map((v) => energyKwh[v]) }));
  intervals.forEach((_, i) => {
    clip(energyKwh, problem.capacityKw[i], i);
    for (const node of nodes) clip(node.rows, node.capacityKw[i], i);
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
