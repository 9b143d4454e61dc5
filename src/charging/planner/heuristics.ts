/**
 * The classic online scheduling rules, one interval at a time: given who is plugged in now,
 * what each still needs and when each says it leaves, how much power each gets. They know
 * nothing of the future (no arrivals, no prices), which is what makes them the baseline the LP is
 * measured against, and what makes least-laxity-first a safe stand-in when the solver fails.
 */
import { HOUR_MS, hoursOf, presenceShare, sitePowerOf, type Plan, type PlanInterval, type PlanningProblem } from './model.js';

export const HEURISTIC_POLICIES = ['uncontrolled', 'equal-share', 'edf', 'llf'] as const;
export type HeuristicPolicy = (typeof HEURISTIC_POLICIES)[number];

/** A plugged-in vehicle at the start of an interval, as an online rule knows it. */
export interface StepVehicle {
  id: string;
  remainingKwh: number;
  maxPowerKw: number;
  /** Share of the interval it is (expected to be) plugged in, 0..1. */
  presence: number;
  arrivalMs: number;
  /** Estimated departure: all an online rule is told. */
  departureMs: number;
}

/**
 * Power while plugged in for each vehicle (same order) during `interval`. Every rule except
 * `uncontrolled` keeps the average site power, sum of power × presence, within `capacityKw`;
 * none gives a vehicle more than its max power or more energy than it still needs.
 */
export function allocateStep(policy: HeuristicPolicy, vehicles: readonly StepVehicle[], capacityKw: number, interval: PlanInterval): number[] {
  const hours = hoursOf(interval);
  // The most each can usefully take: its max, or what finishes its need within its presence.
  const caps = vehicles.map((v) => (v.presence <= 0 || v.remainingKwh <= 0 ? 0 : Math.min(v.maxPowerKw, v.remainingKwh / (v.presence * hours))));
  if (policy === 'uncontrolled') return caps;
  const budget = Math.max(0, capacityKw);
  if (policy === 'equal-share') return waterFill(caps, vehicles.map((v) => v.presence), budget);
  const order = vehicles.map((_, i) => i);
  if (policy === 'edf') {
    order.sort((a, b) => vehicles[a].departureMs - vehicles[b].departureMs || tieBreak(vehicles[a], vehicles[b]));
  } else if (policy === 'llf') {
    const laxity = vehicles.map((v) => laxityHours(v, interval.startMs));
    order.sort((a, b) => laxity[a] - laxity[b] || vehicles[a].departureMs - vehicles[b].departureMs || tieBreak(vehicles[a], vehicles[b]));
  } else {
    throw new RangeError(`unknown policy ${JSON.stringify(policy satisfies never)}`);
  }
  return greedy(order, caps, vehicles.map((v) => v.presence), budget);
}

/**
 * Slack before the vehicle must charge at full power to finish by its departure, hours. The
 * smaller, the more urgent; negative means it cannot finish any more.
 */
export function laxityHours(vehicle: Pick<StepVehicle, 'remainingKwh' | 'maxPowerKw' | 'departureMs'>, nowMs: number): number {
  return (vehicle.departureMs - nowMs) / HOUR_MS - vehicle.remainingKwh / vehicle.maxPowerKw;
}

/** Earlier arrival first, then id: a deterministic order among equals. */
function tieBreak(a: StepVehicle, b: StepVehicle): number {
  return a.arrivalMs - b.arrivalMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** In the given order, each takes what it can of the budget left. */
function greedy(order: readonly number[], caps: readonly number[], presence: readonly number[], budgetKw: number): number[] {
  const power = caps.map(() => 0);
  let left = budgetKw;
  for (const i of order) {
    if (caps[i] <= 0 || left <= 0) continue;
    const p = Math.min(caps[i], left / presence[i]);
    power[i] = p;
    left = Math.max(0, left - p * presence[i]);
  }
  return power;
}

/**
 * The same power for everyone, except that a vehicle that needs less than the common level
 * gets what it needs and leaves the rest to the others (water-filling). Presence weighs how much
 * of the budget a vehicle's power uses.
 */
function waterFill(caps: readonly number[], presence: readonly number[], budgetKw: number): number[] {
  const power = caps.map(() => 0);
  const order = caps.map((_, i) => i).filter((i) => caps[i] > 0).sort((a, b) => caps[a] - caps[b] || a - b);
  let left = budgetKw;
  let weight = order.reduce((sum, i) => sum + presence[i], 0);
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    const level = weight > 0 ? left / weight : 0;
    if (caps[i] <= level) {
      power[i] = caps[i];
      left = Math.max(0, left - caps[i] * presence[i]);
      weight -= presence[i];
    } else {
      for (let m = k; m < order.length; m++) power[order[m]] = level;
      break;
    }
  }
  return power;
}

/**
 * A whole plan by rolling a rule forward over the problem's intervals, with its vehicles and
 * windows taken as known. This is the fallback when the LP fails or runs out of time: it always
 * gives a plan within every limit.
 */
export function planWithHeuristic(problem: PlanningProblem, policy: HeuristicPolicy, solveMs = 0, fallbackReason?: string): Plan {
  const { intervals, vehicles } = problem;
  const remaining = vehicles.map((v) => Math.max(0, v.energyNeedKwh));
  const powerKw = vehicles.map(() => intervals.map(() => 0));
  const energyKwh = vehicles.map(() => intervals.map(() => 0));
  intervals.forEach((interval, i) => {
    const present: number[] = [];
    const stepVehicles: StepVehicle[] = [];
    vehicles.forEach((v, index) => {
      const presence = presenceShare(v, interval);
      if (presence <= 0 || remaining[index] <= 0) return;
      present.push(index);
      stepVehicles.push({ id: v.id, remainingKwh: remaining[index], maxPowerKw: v.maxPowerKw, presence, arrivalMs: v.arrivalMs, departureMs: v.departureMs });
    });
    const power = allocateStep(policy, stepVehicles, problem.capacityKw[i], interval);
    present.forEach((index, k) => {
      const energy = Math.min(remaining[index], power[k] * stepVehicles[k].presence * hoursOf(interval));
      powerKw[index][i] = power[k];
      energyKwh[index][i] = energy;
      remaining[index] -= energy;
    });
  });
  return {
    powerKw,
    energyKwh,
    unmetKwh: remaining,
    sitePowerKw: sitePowerOf(energyKwh, intervals),
    method: policy,
    ...(fallbackReason === undefined ? {} : { fallbackReason }),
    solveMs,
  };
}
