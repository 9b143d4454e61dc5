/**
 * The charging planner's model: vehicles with an energy need and a plug-in window, a grid of
 * time intervals, the site capacity, prices, CO2 and a demand charge over that grid. Pure data
 * and pure helpers; every time is passed in (epoch milliseconds), nothing reads a clock.
 *
 * Conventions shared by the LP (lp.ts), the heuristics (heuristics.ts) and the replay
 * (simulate.ts):
 * - A vehicle's power is the power it draws while plugged in during an interval; the energy it
 *   takes in interval i is power × presence(i) × hours(i), where presence is the share of the
 *   interval inside its window. Partial first and last intervals are handled by that share.
 * - The capacity limits the average site power of each interval (energy / hours), the figure the
 *   evaluation reports per step. On a grid aligned with plug-in and unplug times (the ACN data at
 *   5-minute steps) average and instantaneous power are the same.
 * - Nodes of the site tree (cabinets, feeders) limit the average power of the vehicles below them
 *   the same way. The planner sees each node as a flat set of vehicles, not as a tree: a vehicle
 *   under a cabinet under a feeder is listed by both, so nesting needs no special case.
 */

export const HOUR_MS = 3_600_000;

/** A vehicle as the planner sees it: what is still needed, and the window it is told about. */
export interface PlannerVehicle {
  id: string;
  /** Energy still to deliver, kWh. */
  energyNeedKwh: number;
  maxPowerKw: number;
  /** Plug-in time (or now, if it is already plugged in), epoch ms. */
  arrivalMs: number;
  /** (Estimated) departure, epoch ms. */
  departureMs: number;
}

/** A half-open interval [startMs, endMs) of the planning grid. */
export interface PlanInterval {
  startMs: number;
  endMs: number;
}

/** CO2 intensity of grid energy per interval and the price put on it. */
export interface Co2Signal {
  kgPerKwh: number[];
  /** Cost per kg of CO2, in the currency of the prices. */
  weightPerKg: number;
}

/** A node of the site tree below the grid connection (a cabinet, a feeder) as the planner sees it. */
export interface PlanNodeLimit {
  id: string;
  /** Most average power through the node per interval, kW; Infinity where it has no limit. */
  capacityKw: number[];
  /** Indices into problem.vehicles of the vehicles whose power flows through this node. */
  vehicles: number[];
}

export interface PlanningProblem {
  /** Contiguous, increasing intervals; they may differ in length (a coarser far horizon). */
  intervals: PlanInterval[];
  /** Site capacity per interval, kW (average power over the interval); Infinity where it has no limit. */
  capacityKw: number[];
  /** Limits of nodes below the site (the site itself is capacityKw); every one holds at every interval. */
  nodeLimits?: PlanNodeLimit[];
  /** Energy price per interval, currency per kWh. */
  pricePerKwh: number[];
  co2?: Co2Signal;
  /** Demand charge, currency per kW of the highest interval's average site power. */
  demandChargePerKw?: number;
  /**
   * Peak already reached in the billing period, kW: raising the site power up to it costs no
   * more demand charge, so the planner may use it freely.
   */
  peakFloorKw?: number;
  /**
   * Cost of lateness, currency per kWh: a kWh delivered at a vehicle's departure costs this much
   * more than one delivered now, linearly in between (relative to each vehicle's own window, so a
   * vehicle that leaves soon pays more per hour of delay). Under model-predictive control this
   * hedges against the arrivals the planner cannot see: energy put off to a cheap hour may find
   * the capacity taken when that hour comes. 0 (the default) leaves only the tiny tie-break
   * towards early energy.
   */
  latenessCostPerKwh?: number;
  vehicles: PlannerVehicle[];
}

/** A plan: per vehicle (in the problem's order) per interval. */
export interface Plan {
  /** Power while plugged in, kW (0 outside the window). */
  powerKw: number[][];
  /** Energy per interval, kWh. */
  energyKwh: number[][];
  /** Expected shortfall per vehicle, kWh: what the plan cannot deliver before departure. */
  unmetKwh: number[];
  /** Average site power per interval, kW. */
  sitePowerKw: number[];
  /** 'lp' when the solver's optimum is used; otherwise the rule that made the plan (llf as the LP's fallback). */
  method: 'lp' | 'uncontrolled' | 'equal-share' | 'edf' | 'llf';
  /** Why the fallback was used. */
  fallbackReason?: string;
  /** Wall time spent building and solving, ms (measurement only). */
  solveMs: number;
}

export const hoursOf = (interval: PlanInterval): number => (interval.endMs - interval.startMs) / HOUR_MS;

/** Share of the interval during which the vehicle is plugged in, 0..1. */
export function presenceShare(window: { arrivalMs: number; departureMs: number }, interval: PlanInterval): number {
  const overlap = Math.min(window.departureMs, interval.endMs) - Math.max(window.arrivalMs, interval.startMs);
  return overlap <= 0 ? 0 : overlap / (interval.endMs - interval.startMs);
}

/** The grid's origin: `ms` rounded down to a multiple of the step since the Unix epoch. */
export function gridOrigin(ms: number, stepS: number): number {
  const stepMs = stepS * 1000;
  return Math.floor(ms / stepMs) * stepMs;
}

/** `count` intervals of `stepS` seconds from `startMs`. */
export function uniformIntervals(startMs: number, stepS: number, count: number): PlanInterval[] {
  const stepMs = stepS * 1000;
  return Array.from({ length: count }, (_, i) => ({ startMs: startMs + i * stepMs, endMs: startMs + (i + 1) * stepMs }));
}

/**
 * A horizon that is fine first and coarse later: steps of `stepS` until `fineUntilMs`, then
 * blocks ending on multiples of `coarseS` since the epoch (so hourly blocks meet hourly
 * tariffs), up to `endMs`. Far-off intervals only shape the plan; they are re-planned before they
 * are applied, so their resolution buys little and costs solver time.
 */
export function coarseningIntervals(startMs: number, stepS: number, fineUntilMs: number, coarseS: number, endMs: number): PlanInterval[] {
  const stepMs = stepS * 1000;
  const coarseMs = Math.max(coarseS * 1000, stepMs);
  const out: PlanInterval[] = [];
  let t = startMs;
  while (t < endMs) {
    let next: number;
    if (t < fineUntilMs) next = t + stepMs;
    else {
      next = Math.ceil((t + 1) / coarseMs) * coarseMs;
      // A block ends on the step grid too, so block boundaries stay step boundaries.
      next = startMs + Math.ceil((next - startMs) / stepMs) * stepMs;
    }
    next = Math.min(next, Math.max(endMs, t + stepMs));
    out.push({ startMs: t, endMs: next });
    t = next;
  }
  return out;
}

/** A value that holds from `startMs` until the next point (a tariff, a CO2 series). */
export interface StepPoint {
  startMs: number;
  value: number;
}

/**
 * Time-weighted mean of a step function over each interval: the price of energy drawn at a
 * constant power through the interval. Points must be sorted by time; the last value holds
 * forever. Throws if an interval starts before the first point (the price there is unknown).
 */
export function meanOverIntervals(points: readonly StepPoint[], intervals: readonly PlanInterval[], what = 'series'): number[] {
  if (points.length === 0) throw new RangeError(`${what} is empty`);
  const out: number[] = [];
  let j = 0;
  for (const interval of intervals) {
    if (interval.startMs < points[0].startMs) {
      throw new RangeError(`${what} starts at ${new Date(points[0].startMs).toISOString()}, after ${new Date(interval.startMs).toISOString()} where it is needed`);
    }
    while (j + 1 < points.length && points[j + 1].startMs <= interval.startMs) j++;
    let sum = 0;
    let k = j;
    let t = interval.startMs;
    while (t < interval.endMs) {
      const until = k + 1 < points.length ? Math.min(points[k + 1].startMs, interval.endMs) : interval.endMs;
      sum += points[k].value * (until - t);
      t = until;
      k++;
    }
    out.push(sum / (interval.endMs - interval.startMs));
  }
  return out;
}

/** Average site power per interval implied by energies per vehicle per interval. */
export function sitePowerOf(energyKwh: readonly (readonly number[])[], intervals: readonly PlanInterval[]): number[] {
  return intervals.map((interval, i) => {
    let sum = 0;
    for (const row of energyKwh) sum += row[i];
    return sum / hoursOf(interval);
  });
}

/**
 * The problem's node limits with each node's vehicles listed once, checked against the problem:
 * a node that names a vehicle the problem does not have, or lacks a capacity for an interval, is
 * a caller's mistake that would otherwise pass silently as "no limit" and overload a cabinet.
 */
export function checkedNodeLimits(problem: Pick<PlanningProblem, 'intervals' | 'vehicles' | 'nodeLimits'>): PlanNodeLimit[] {
  return (problem.nodeLimits ?? []).map((node) => {
    if (node.capacityKw.length < problem.intervals.length) {
      throw new RangeError(`node ${node.id} has ${node.capacityKw.length} capacities for ${problem.intervals.length} intervals`);
    }
    for (const v of node.vehicles) {
      if (!Number.isInteger(v) || v < 0 || v >= problem.vehicles.length) {
        throw new RangeError(`node ${node.id} names vehicle index ${v}; the problem has ${problem.vehicles.length} vehicles`);
      }
    }
    return { id: node.id, capacityKw: node.capacityKw, vehicles: [...new Set(node.vehicles)].sort((a, b) => a - b) };
  });
}
