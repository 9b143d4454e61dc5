/**
 * The classic online scheduling rules, one interval at a time: given who is plugged in now,
 * what each still needs and when each says it leaves, how much power each gets. They know
 * nothing of the future (no arrivals, no prices), which is what makes them the baseline the LP is
 * measured against, and what makes least-laxity-first a safe stand-in when the solver fails.
 */
import { checkedNodeLimits, HOUR_MS, hoursOf, presenceShare, sitePowerOf, type Plan, type PlanInterval, type PlanningProblem } from './model.js';

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
 * A limit below the site within one interval: the most average power, kW, that the vehicles at
 * `members` (indices into the step's vehicles) may draw together, counted like the site's.
 */
export interface StepNodeLimit {
  capacityKw: number;
  members: readonly number[];
}

/**
 * Power while plugged in for each vehicle (same order) during `interval`. Every rule except
 * `uncontrolled` keeps the average site power, sum of power × presence, within `capacityKw`, and
 * the same sum over each node's members within that node's capacity; none gives a vehicle more
 * than its max power or more energy than it still needs.
 */
export function allocateStep(
  policy: HeuristicPolicy,
  vehicles: readonly StepVehicle[],
  capacityKw: number,
  interval: PlanInterval,
  nodes: readonly StepNodeLimit[] = [],
): number[] {
  const hours = hoursOf(interval);
  // The most each can usefully take: its max, or what finishes its need within its presence.
  const caps = vehicles.map((v) => (v.presence <= 0 || v.remainingKwh <= 0 ? 0 : Math.min(v.maxPowerKw, v.remainingKwh / (v.presence * hours))));
  if (policy === 'uncontrolled') return caps;
  const presence = vehicles.map((v) => v.presence);
  const limits = stepLimits(vehicles.length, capacityKw, nodes);
  if (policy === 'equal-share') return waterFill(caps, presence, limits);
  const order = vehicles.map((_, i) => i);
  if (policy === 'edf') {
    order.sort((a, b) => vehicles[a].departureMs - vehicles[b].departureMs || tieBreak(vehicles[a], vehicles[b]));
  } else if (policy === 'llf') {
    const laxity = vehicles.map((v) => laxityHours(v, interval.startMs));
    order.sort((a, b) => laxity[a] - laxity[b] || vehicles[a].departureMs - vehicles[b].departureMs || tieBreak(vehicles[a], vehicles[b]));
  } else {
    throw new RangeError(`unknown policy ${JSON.stringify(policy satisfies never)}`);
  }
  return greedy(order, caps, presence, limits);
}

/** The site and the nodes as one list of budgets (kW), the site first. */
interface StepLimits {
  budgetKw: number[];
  members: number[][];
  /** Per vehicle, the indices of the limits it counts against (always the site's, 0). */
  limitsOf: number[][];
}

/**
 * A negative capacity is taken as none left. A member outside the step is a caller's mistake and
 * throws rather than leave that vehicle unlimited.
 */
function stepLimits(count: number, capacityKw: number, nodes: readonly StepNodeLimit[]): StepLimits {
  const all = Array.from({ length: count }, (_, i) => i);
  const budgetKw = [Math.max(0, capacityKw)];
  const members = [all];
  const limitsOf = all.map(() => [0]);
  for (const node of nodes) {
    const unique = [...new Set(node.members)];
    for (const i of unique) {
      if (!Number.isInteger(i) || i < 0 || i >= count) throw new RangeError(`node member ${i} is not one of the ${count} vehicles`);
    }
    const index = budgetKw.length;
    budgetKw.push(Math.max(0, node.capacityKw));
    members.push(unique);
    for (const i of unique) limitsOf[i].push(index);
  }
  return { budgetKw, members, limitsOf };
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

/** In the given order, each takes what it can of what is left under every limit it is under. */
function greedy(order: readonly number[], caps: readonly number[], presence: readonly number[], limits: StepLimits): number[] {
  const power = caps.map(() => 0);
  const left = [...limits.budgetKw];
  for (const i of order) {
    if (caps[i] <= 0) continue;
    let room = Infinity;
    for (const c of limits.limitsOf[i]) room = Math.min(room, left[c]);
    if (room <= 0) continue;
    const p = Math.min(caps[i], room / presence[i]);
    power[i] = p;
    for (const c of limits.limitsOf[i]) left[c] = Math.max(0, left[c] - p * presence[i]);
  }
  return power;
}

/**
 * Max-min fair power under several limits (progressive filling): everyone's power rises together
 * from zero; a vehicle that reaches what it can use stops there and leaves the rest to the
 * others; when a limit fills, the vehicles under it stop at the level reached, and those under
 * other limits go on rising. Presence weighs how much of a limit a vehicle's power uses. With
 * only the site this is plain water-filling with its arithmetic in the same order, so plans
 * without nodes equal the site-only rule's bit for bit: the ACN evaluation's figures rest on them.
 */
function waterFill(caps: readonly number[], presence: readonly number[], limits: StepLimits): number[] {
  const power = caps.map(() => 0);
  const order = caps.map((_, i) => i).filter((i) => caps[i] > 0).sort((a, b) => caps[a] - caps[b] || a - b);
  const rising = caps.map((c) => c > 0);
  const count = limits.budgetKw.length;
  const left = [...limits.budgetKw];
  // Presence of the rising vehicles under each limit, summed in the order of `order`.
  const weight = new Array<number>(count).fill(0);
  const risingUnder = new Array<number>(count).fill(0);
  for (const i of order) {
    for (const c of limits.limitsOf[i]) {
      weight[c] += presence[i];
      risingUnder[c]++;
    }
  }
  const stop = (i: number, p: number): void => {
    power[i] = p;
    rising[i] = false;
    for (const c of limits.limitsOf[i]) {
      left[c] = Math.max(0, left[c] - p * presence[i]);
      weight[c] -= presence[i];
      risingUnder[c]--;
    }
  };
  let k = 0;
  while (k < order.length) {
    if (!rising[order[k]]) {
      k++;
      continue;
    }
    // The level at which the first limit fills.
    let level = Infinity;
    let binding = -1;
    for (let c = 0; c < count; c++) {
      if (risingUnder[c] === 0) continue;
      // Subtracting a large presence can leave a vehicle whose presence is tiny beside it with a
      // weight of zero, which would stop it at zero power; the exact sum puts it right.
      if (!(weight[c] > 0)) weight[c] = limits.members[c].reduce((sum, m) => sum + (rising[m] ? presence[m] : 0), 0);
      const fill = weight[c] > 0 ? left[c] / weight[c] : 0;
      if (fill < level) {
        level = fill;
        binding = c;
      }
    }
    const i = order[k];
    // No limit binds below this vehicle's cap (every one left is unlimited): it takes its cap.
    if (binding < 0 || caps[i] <= level) {
      stop(i, caps[i]);
      k++;
    } else {
      for (const m of limits.members[binding]) if (rising[m]) stop(m, level);
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
  const nodes = checkedNodeLimits(problem).map((node) => ({ capacityKw: node.capacityKw, vehicles: new Set(node.vehicles) }));
  intervals.forEach((interval, i) => {
    const present: number[] = [];
    const stepVehicles: StepVehicle[] = [];
    vehicles.forEach((v, index) => {
      const presence = presenceShare(v, interval);
      if (presence <= 0 || remaining[index] <= 0) return;
      present.push(index);
      stepVehicles.push({ id: v.id, remainingKwh: remaining[index], maxPowerKw: v.maxPowerKw, presence, arrivalMs: v.arrivalMs, departureMs: v.departureMs });
    });
    const stepNodes = nodes.map((node): StepNodeLimit => ({
      capacityKw: node.capacityKw[i],
      members: present.flatMap((index, k) => (node.vehicles.has(index) ? [k] : [])),
    }));
    const power = allocateStep(policy, stepVehicles, problem.capacityKw[i], interval, stepNodes);
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
