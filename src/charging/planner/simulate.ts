/**
 * Replays charging sessions over a step grid under a policy and measures what it delivers,
 * the site's power, its cost and the time its decisions take. Online policies (the heuristics
 * and `mpc`) see, at each step, only the sessions that have plugged in by the end of that step
 * and only their estimated departures; the real departure ends a session whatever was planned.
 * `mpc` also plans for the sessions announced in advance (a depot's timetable) that have not
 * plugged in yet, at their expected arrival, so that it keeps capacity for them; it only decides
 * for the plugged-in ones. `offline` is one LP over the whole grid with every arrival and real
 * departure known: the upper bound no online policy can beat.
 *
 * A session that plugs in during a step is known to that step's decision (a live controller
 * re-decides at plug-in); on the ACN data, whose times are on the 5-minute grid, this changes
 * nothing.
 */
import { allocateStep, HEURISTIC_POLICIES, type HeuristicPolicy, type StepVehicle } from './heuristics.js';
import { planWithLp, type LpSolver } from './lp.js';
import {
  coarseningIntervals,
  presenceShare,
  uniformIntervals,
  type PlanInterval,
  type PlannerVehicle,
  type PlanningProblem,
} from './model.js';

export const PLANNER_POLICIES = [...HEURISTIC_POLICIES, 'mpc', 'offline'] as const;
export type PlannerPolicy = (typeof PLANNER_POLICIES)[number];

export interface ReplaySession {
  id: string;
  arrivalMs: number;
  /** When it really unplugs. */
  departureMs: number;
  /** What the planner is told at arrival (or at the announcement, if earlier). */
  estimatedDepartureMs: number;
  requestedKwh: number;
  maxPowerKw: number;
  /**
   * When the planner learns of the session before it plugs in (a timetable); default, and at the
   * latest, its arrival. Only `mpc` uses it: the heuristics decide per step and `offline` knows
   * everything anyway.
   */
  announcedMs?: number;
  /**
   * The arrival the announcement tells, default the real one: a timetable knows the scheduled
   * return, not the delay on the road.
   */
  expectedArrivalMs?: number;
}

export interface ReplayGrid {
  startMs: number;
  stepS: number;
  steps: number;
}

export interface ReplayInput {
  sessions: readonly ReplaySession[];
  grid: ReplayGrid;
  /** kW, constant or one value per step. */
  capacityKw: number | readonly number[];
  /** Per step; absent means energy costs nothing. */
  pricePerKwh?: readonly number[];
  co2?: { kgPerKwh: readonly number[]; weightPerKg: number };
  /** Currency per kW of the highest step's average site power over the replay. */
  demandChargePerKw?: number;
}

export interface MpcOptions {
  /** How far ahead each re-plan looks (it stops earlier at the last known departure). Default 24 h. */
  horizonS?: number;
  /** The first part of the horizon planned at the grid's step. Default 1 h. */
  fineHorizonS?: number;
  /** Interval length beyond it. Default 1 h. */
  coarseStepS?: number;
  /**
   * See PlanningProblem.latenessCostPerKwh. Default: half the highest price of the replay (1 if
   * energy is free), measured on the ACN month as the best trade between energy delivered where
   * capacity binds and energy cost (docs/planner-evaluation.md).
   */
  latenessCostPerKwh?: number;
  /** Solver budget per re-plan; past it least-laxity-first decides. Default none. */
  timeLimitS?: number;
}

export interface ReplayOptions {
  policy: PlannerPolicy;
  /** Needed by `mpc` and `offline`. */
  solver?: LpSolver;
  mpc?: MpcOptions;
  /** Solver budget of the offline LP. Default none. */
  offlineTimeLimitS?: number;
}

export interface ReplaySummary {
  energyDeliveredPct: number;
  peakKw: number;
  energyCost: number;
  demandChargeCost: number;
  solveMsP50: number;
  solveMsP99: number;
}

export interface ReplayResult {
  policy: PlannerPolicy;
  sessions: Array<{ sessionId: string; requestedKwh: number; deliveredKwh: number }>;
  /** Average site power of each step, kW. */
  sitePowerKw: number[];
  /** Power each session drew while plugged in, per step: only when asked for (tests), it is large. */
  sessionPowerKw?: number[][];
  summary: ReplaySummary;
  /** Decisions the LP could not make, where least-laxity-first stood in. */
  fallbacks: number;
  /** Decisions taken (steps with a session plugged in, or the single offline solve). */
  decisions: number;
}

/** A need below this is met: solver tolerances leave crumbs that are not worth a decision. */
const MET_KWH = 1e-6;

export function replay(input: ReplayInput, options: ReplayOptions & { recordSessionPower?: boolean }): ReplayResult {
  const { sessions, grid } = input;
  const intervals = uniformIntervals(grid.startMs, grid.stepS, grid.steps);
  const capacity = typeof input.capacityKw === 'number' ? intervals.map(() => input.capacityKw as number) : [...input.capacityKw];
  if (capacity.length !== grid.steps) throw new RangeError(`capacityKw has ${capacity.length} values for ${grid.steps} steps`);
  const price = input.pricePerKwh ? [...input.pricePerKwh] : intervals.map(() => 0);
  if (price.length !== grid.steps) throw new RangeError(`pricePerKwh has ${price.length} values for ${grid.steps} steps`);
  const hours = grid.stepS / 3600;

  const order = sessions.map((_, i) => i).sort((a, b) => sessions[a].arrivalMs - sessions[b].arrivalMs || a - b);
  // Sessions MPC knows of before they plug in, by when it learns of them; none without announcements.
  const announcedOrder =
    options.policy === 'mpc'
      ? order.filter((s) => knownFromMs(sessions[s]) < sessions[s].arrivalMs).sort((a, b) => knownFromMs(sessions[a]) - knownFromMs(sessions[b]) || a - b)
      : [];
  const delivered = sessions.map(() => 0);
  const sitePowerKw = intervals.map(() => 0);
  const sessionPowerKw = options.recordSessionPower ? sessions.map(() => intervals.map(() => 0)) : undefined;
  const solveMs: number[] = [];
  let fallbacks = 0;

  let offlinePower: number[][] | undefined;
  if (options.policy === 'offline') {
    const plan = planWithLp(
      {
        intervals,
        capacityKw: capacity,
        pricePerKwh: price,
        ...(input.co2 ? { co2: { kgPerKwh: [...input.co2.kgPerKwh], weightPerKg: input.co2.weightPerKg } } : {}),
        ...(input.demandChargePerKw ? { demandChargePerKw: input.demandChargePerKw } : {}),
        vehicles: sessions.map((s) => ({ id: s.id, energyNeedKwh: s.requestedKwh, maxPowerKw: s.maxPowerKw, arrivalMs: s.arrivalMs, departureMs: s.departureMs })),
      },
      requireSolver(options),
      { timeLimitS: options.offlineTimeLimitS },
    );
    offlinePower = plan.powerKw;
    solveMs.push(plan.solveMs);
    if (plan.method !== 'lp') fallbacks++;
  }

  const mpcOptions: MpcOptions = { ...options.mpc, latenessCostPerKwh: options.mpc?.latenessCostPerKwh ?? defaultLatenessCost(price) };
  let next = 0;
  let active: number[] = [];
  let nextAnnounced = 0;
  let upcoming: number[] = [];
  let peakSoFar = 0;
  for (let k = 0; k < grid.steps; k++) {
    const interval = intervals[k];
    while (next < order.length && sessions[order[next]].arrivalMs < interval.endMs) active.push(order[next++]);
    active = active.filter((s) => sessions[s].departureMs > interval.startMs && sessions[s].requestedKwh - delivered[s] > MET_KWH);
    // Announced and not plugged in by the end of this step; those that have plugged in are in `active` now.
    while (nextAnnounced < announcedOrder.length && knownFromMs(sessions[announcedOrder[nextAnnounced]]) < interval.endMs) upcoming.push(announcedOrder[nextAnnounced++]);
    upcoming = upcoming.filter((s) => sessions[s].arrivalMs >= interval.endMs);
    if (active.length === 0) continue;

    let power: number[];
    if (options.policy === 'offline') {
      power = active.map((s) => offlinePower![s][k]);
    } else if (options.policy === 'mpc') {
      const problem = mpcProblem(input, active, upcoming, delivered, k, intervals, capacity, price, peakSoFar, mpcOptions);
      const plan = planWithLp(problem, requireSolver(options), { timeLimitS: options.mpc?.timeLimitS });
      solveMs.push(plan.solveMs);
      if (plan.method !== 'lp') fallbacks++;
      // The plugged-in sessions come first in the problem; the upcoming ones only shaped the plan.
      power = active.map((_, j) => plan.powerKw[j][0]);
    } else {
      const started = performance.now();
      const vehicles = active.map((s): StepVehicle => {
        const told = toldWindow(sessions[s], interval);
        return {
          id: sessions[s].id,
          remainingKwh: sessions[s].requestedKwh - delivered[s],
          maxPowerKw: sessions[s].maxPowerKw,
          presence: presenceShare(told, interval),
          arrivalMs: sessions[s].arrivalMs,
          departureMs: told.departureMs,
        };
      });
      power = allocateStep(options.policy as HeuristicPolicy, vehicles, capacity[k], interval);
      solveMs.push(performance.now() - started);
    }

    // What really flows: the decided power for the part of the step the session is really there.
    const energies = active.map((s, j) => {
      const session = sessions[s];
      const p = Math.min(session.maxPowerKw, Math.max(0, power[j]));
      if (sessionPowerKw) sessionPowerKw[s][k] = p;
      return Math.min(session.requestedKwh - delivered[s], p * presenceShare(session, interval) * hours);
    });
    // A policy decides for the part of the step a session is said to be there; one that stays longer
    // draws its power longer, which could take the site over its capacity (twice over, for a car
    // that stays twice as long as told). Every policy but `uncontrolled` runs under the site's limit,
    // as the live balancer keeps it: the step's energies are scaled down to fit.
    const total = energies.reduce((a, b) => a + b, 0);
    const allowed = capacity[k] * hours;
    const scale = options.policy !== 'uncontrolled' && total > allowed ? allowed / total : 1;
    active.forEach((s, j) => {
      const energy = energies[j] * scale;
      delivered[s] += energy;
      sitePowerKw[k] += energy / hours;
    });
    peakSoFar = Math.max(peakSoFar, sitePowerKw[k]);
  }

  const requested = sessions.reduce((sum, s) => sum + s.requestedKwh, 0);
  const total = delivered.reduce((a, b) => a + b, 0);
  const peakKw = sitePowerKw.reduce((m, p) => Math.max(m, p), 0);
  const energyCost = sitePowerKw.reduce((sum, p, k) => sum + p * hours * price[k], 0);
  const sorted = [...solveMs].sort((a, b) => a - b);
  return {
    policy: options.policy,
    sessions: sessions.map((s, i) => ({ sessionId: s.id, requestedKwh: s.requestedKwh, deliveredKwh: delivered[i] })),
    sitePowerKw,
    ...(sessionPowerKw ? { sessionPowerKw } : {}),
    summary: {
      energyDeliveredPct: requested > 0 ? (100 * total) / requested : 100,
      peakKw,
      energyCost,
      demandChargeCost: peakKw * (input.demandChargePerKw ?? 0),
      solveMsP50: percentile(sorted, 50),
      solveMsP99: percentile(sorted, 99),
    },
    fallbacks,
    decisions: solveMs.length,
  };
}

function requireSolver(options: ReplayOptions): LpSolver {
  if (!options.solver) throw new Error(`policy ${options.policy} needs an LP solver (loadHighsSolver())`);
  return options.solver;
}

/**
 * The window the planner is told: from plug-in to the estimated departure. A session still
 * plugged in after its estimate is taken to leave at the end of the current step, the most
 * urgent assumption, since nothing better is known.
 */
function toldWindow(session: ReplaySession, interval: PlanInterval): { arrivalMs: number; departureMs: number } {
  const departureMs = session.estimatedDepartureMs > interval.startMs ? session.estimatedDepartureMs : interval.endMs;
  return { arrivalMs: session.arrivalMs, departureMs };
}

/** When the planner first knows of the session: its announcement, and at the latest its plug-in. */
function knownFromMs(session: ReplaySession): number {
  return Math.min(session.announcedMs ?? session.arrivalMs, session.arrivalMs);
}

/**
 * The window the planner is told for a session announced but not plugged in at the end of
 * `interval`: from its expected arrival, or from the end of this step if that time has passed
 * (it may come any moment, the most urgent assumption), to its estimated departure. Null when
 * the estimate leaves no time.
 */
function upcomingWindow(session: ReplaySession, interval: PlanInterval): { arrivalMs: number; departureMs: number } | null {
  const arrivalMs = Math.max(session.expectedArrivalMs ?? session.arrivalMs, interval.endMs);
  return session.estimatedDepartureMs > arrivalMs ? { arrivalMs, departureMs: session.estimatedDepartureMs } : null;
}

function defaultLatenessCost(price: readonly number[]): number {
  const highest = price.reduce((m, p) => Math.max(m, p), 0);
  return 0.5 * (highest > 0 ? highest : 1);
}

/** Nearest-rank percentile of sorted values; 0 for none. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * What MPC knows at step k: the plugged-in sessions with what they still need and their told
 * windows, then the announced ones still to come with their whole need, over a horizon from now
 * to the last told departure (at most `horizonS`), fine first and coarse later. Coarse intervals
 * take the mean price and the lowest capacity of their steps. The vehicles to come are told to
 * arrive after this step, so the plan gives them nothing in its first interval, the only one
 * applied.
 */
function mpcProblem(
  input: ReplayInput,
  active: readonly number[],
  upcoming: readonly number[],
  delivered: readonly number[],
  k: number,
  steps: readonly PlanInterval[],
  capacity: readonly number[],
  price: readonly number[],
  peakSoFar: number,
  options: MpcOptions,
): PlanningProblem {
  const { grid, sessions } = input;
  const stepMs = grid.stepS * 1000;
  const now = steps[k].startMs;
  const vehicles: PlannerVehicle[] = active.map((s) => {
    const told = toldWindow(sessions[s], steps[k]);
    return {
      id: sessions[s].id,
      energyNeedKwh: sessions[s].requestedKwh - delivered[s],
      maxPowerKw: sessions[s].maxPowerKw,
      arrivalMs: Math.max(told.arrivalMs, now),
      departureMs: told.departureMs,
    };
  });
  for (const s of upcoming) {
    const told = upcomingWindow(sessions[s], steps[k]);
    if (told) vehicles.push({ id: sessions[s].id, energyNeedKwh: sessions[s].requestedKwh, maxPowerKw: sessions[s].maxPowerKw, ...told });
  }
  const gridEnd = grid.startMs + grid.steps * stepMs;
  const lastDeparture = vehicles.reduce((m, v) => Math.max(m, v.departureMs), now + stepMs);
  const horizonEnd = Math.min(gridEnd, now + (options.horizonS ?? 86_400) * 1000, now + Math.ceil((lastDeparture - now) / stepMs) * stepMs);
  const intervals = coarseningIntervals(now, grid.stepS, now + (options.fineHorizonS ?? 3600) * 1000, options.coarseStepS ?? 3600, Math.max(horizonEnd, now + stepMs));
  const capacityKw: number[] = [];
  const pricePerKwh: number[] = [];
  const co2: number[] = [];
  for (const interval of intervals) {
    const first = Math.round((interval.startMs - grid.startMs) / stepMs);
    const last = Math.min(grid.steps, Math.round((interval.endMs - grid.startMs) / stepMs));
    let cap = Infinity;
    let priceSum = 0;
    let co2Sum = 0;
    for (let j = first; j < last; j++) {
      cap = Math.min(cap, capacity[j]);
      priceSum += price[j];
      co2Sum += input.co2 ? input.co2.kgPerKwh[j] : 0;
    }
    const count = Math.max(1, last - first);
    capacityKw.push(cap === Infinity ? 0 : cap);
    pricePerKwh.push(priceSum / count);
    co2.push(co2Sum / count);
  }
  return {
    intervals,
    capacityKw,
    pricePerKwh,
    ...(input.co2 ? { co2: { kgPerKwh: co2, weightPerKg: input.co2.weightPerKg } } : {}),
    ...(input.demandChargePerKw ? { demandChargePerKw: input.demandChargePerKw, peakFloorKw: peakSoFar } : {}),
    ...(options.latenessCostPerKwh ? { latenessCostPerKwh: options.latenessCostPerKwh } : {}),
    vehicles,
  };
}

