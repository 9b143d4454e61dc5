/**
 * A live site as a planning problem: the vehicles plugged in now with known needs, every limit
 * of the site tree over the horizon (external limits included), and the prices and CO2 of the
 * site. Pure: the instant is an argument.
 *
 * The planner counts power, not current per phase: an A limit becomes maxA × V × 3 (balanced
 * three-phase load). That is exact for DC and three-phase AC charging and optimistic for
 * one-phase cars on one phase; the live balancer, which enforces every limit per phase, has the
 * last word either way (a plan is a ceiling it grants within, never a bypass).
 */
import { nodeLimitsWithin } from '../envelope/envelope.js';
import { flattenSite, type Site, type StationElectricalSpec } from '../site/model.js';
import { meanOverIntervals, type PlanInterval, type PlanNodeLimit, type PlannerVehicle, type PlanningProblem, type StepPoint } from './model.js';

/** A session the plan controls, or a vehicle it expects. */
export interface PlannedSession {
  /** Its key in the plan (e.g. station#connector). */
  id: string;
  /** null for a vehicle that has not arrived: it counts on the grid connection only, its charger unknown. */
  stationId: string | null;
  /** When it plugs in, if later than now (a vehicle the timetable announces). */
  arrivalMs?: number;
  energyNeedKwh: number;
  maxPowerKw: number;
  departureMs: number;
}

export interface SiteProblemInput {
  site: Site;
  stations: readonly StationElectricalSpec[];
  sessions: readonly PlannedSession[];
  nowMs: number;
  stepS: number;
  horizonS: number;
  supplyVoltage: number;
  prices?: readonly StepPoint[];
  co2?: { kgPerKwh: readonly StepPoint[]; weightPerKg: number };
  demandChargePerKw?: number;
  /** Peak already reached in the billing period, kW. */
  peakFloorKw?: number;
  /** See PlanningProblem.latenessCostPerKwh; default half the highest price (1 if energy is free), as the evaluated MPC. */
  latenessCostPerKwh?: number;
}

/**
 * The planning grid of a live re-plan: a first interval from now to the next multiple of the step
 * (since the epoch), then whole steps, up to the horizon or the last departure, whichever is first.
 * Step boundaries therefore stay put from one re-plan to the next.
 */
export function liveIntervals(nowMs: number, stepS: number, horizonS: number, lastDepartureMs: number): PlanInterval[] {
  const stepMs = stepS * 1000;
  const endMs = Math.max(nowMs + 1000, Math.min(nowMs + horizonS * 1000, lastDepartureMs));
  const out: PlanInterval[] = [];
  let t = nowMs;
  while (t < endMs) {
    const next = Math.min(endMs, (Math.floor(t / stepMs) + 1) * stepMs);
    // A sliver of under a second at the start is folded into the first step.
    if (next - t < 1000 && next < endMs) {
      const after = Math.min(endMs, next + stepMs);
      out.push({ startMs: t, endMs: after });
      t = after;
      continue;
    }
    out.push({ startMs: t, endMs: next });
    t = next;
  }
  return out;
}

/** kW a node limit allows over [from, to), Infinity without a limit. */
function nodeCapacityKw(limits: { maxW?: number; maxA?: number }, voltage: number): number {
  const fromW = limits.maxW ?? Infinity;
  const fromA = limits.maxA === undefined ? Infinity : limits.maxA * voltage * 3;
  return Math.min(fromW, fromA) / 1000;
}

/** A step series that covers the grid from its start: the first value also holds before the first point. */
function coveringFrom(points: readonly StepPoint[], startMs: number): StepPoint[] {
  const sorted = [...points].sort((a, b) => a.startMs - b.startMs);
  if (sorted.length > 0 && sorted[0]!.startMs > startMs) sorted.unshift({ startMs, value: sorted[0]!.value });
  return sorted;
}

export function siteProblem(input: SiteProblemInput): PlanningProblem {
  const { site, sessions, nowMs, supplyVoltage: voltage } = input;
  const lastDeparture = sessions.reduce((m, s) => Math.max(m, s.departureMs), nowMs);
  const intervals = liveIntervals(nowMs, input.stepS, input.horizonS, lastDeparture);
  const specOf = new Map(input.stations.map((s) => [s.stationId, s]));

  const vehicles: PlannerVehicle[] = sessions.map((s) => ({
    id: s.id,
    energyNeedKwh: Math.max(0, s.energyNeedKwh),
    maxPowerKw: Math.max(0, s.maxPowerKw),
    arrivalMs: Math.max(nowMs, s.arrivalMs ?? nowMs),
    departureMs: s.departureMs,
  }));

  const capacityOver = (node: Parameters<typeof nodeLimitsWithin>[0]) =>
    intervals.map((interval) => nodeCapacityKw(nodeLimitsWithin(node, interval.startMs, interval.endMs - 1), voltage));

  const nodeLimits: PlanNodeLimit[] = [];
  let capacityKw: number[] = [];
  for (const { node, stations: below } of flattenSite(site)) {
    const capacity = capacityOver(node);
    if (node === site) {
      capacityKw = capacity;
      continue;
    }
    const under = new Set(below);
    const members = sessions.flatMap((s, i) => (s.stationId !== null && under.has(s.stationId) ? [i] : []));
    if (members.length > 0 && capacity.some((c) => Number.isFinite(c))) nodeLimits.push({ id: node.id, capacityKw: capacity, vehicles: members });
  }
  // A station with several planned connectors: its own limit holds for their sum.
  const byStation = new Map<string, number[]>();
  sessions.forEach((s, i) => {
    if (s.stationId !== null) byStation.set(s.stationId, [...(byStation.get(s.stationId) ?? []), i]);
  });
  for (const [stationId, members] of byStation) {
    const spec = specOf.get(stationId);
    if (!spec || members.length < 2) continue;
    nodeLimits.push({ id: `station:${stationId}`, capacityKw: intervals.map(() => spec.maxPowerW / 1000), vehicles: members });
  }
  // No limit at the grid connection: the sum of what the vehicles can take is as good as none,
  // and keeps the LP text free of infinities.
  const unbounded = vehicles.reduce((sum, v) => sum + v.maxPowerKw, 0) + 1;
  capacityKw = capacityKw.map((c) => (Number.isFinite(c) ? c : unbounded));

  const pricePerKwh = input.prices && input.prices.length > 0 ? meanOverIntervals(coveringFrom(input.prices, nowMs), intervals, 'prices') : intervals.map(() => 0);
  const maxPrice = pricePerKwh.reduce((m, p) => Math.max(m, p), 0);
  const problem: PlanningProblem = {
    intervals,
    capacityKw,
    pricePerKwh,
    vehicles,
    nodeLimits,
    latenessCostPerKwh: input.latenessCostPerKwh ?? (maxPrice > 0 ? maxPrice / 2 : 1),
  };
  if (input.co2 && input.co2.kgPerKwh.length > 0) {
    problem.co2 = { kgPerKwh: meanOverIntervals(coveringFrom(input.co2.kgPerKwh, nowMs), intervals, 'CO2 intensity'), weightPerKg: input.co2.weightPerKg };
  }
  if (input.demandChargePerKw) problem.demandChargePerKw = input.demandChargePerKw;
  if (input.peakFloorKw !== undefined) problem.peakFloorKw = input.peakFloorKw;
  return problem;
}
