/**
 * Benchmark of the smart charging core (issue 4, "Performance"): a full rebalance of a large
 * site, and the composite schedule of a station holding 5 profiles. Pure CPU, no server.
 */
import { performance } from 'node:perf_hooks';
import { allocate, type AllocationInput } from '../charging/balancer/allocate.js';
import { compositeSchedule, limitAt, type ChargingSituation } from '../charging/profiles/composite.js';
import type { ChargingProfile } from '../charging/profiles/model.js';
import type { ChargingSessionDemand, PhaseRotation, Site, SiteNode, StationElectricalSpec } from '../charging/site/model.js';

export interface RebalanceBenchResult {
  scenario: 'rebalance';
  connectors: number;
  iterations: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** GetCompositeSchedule requests (one day, in W) answered per second for a station with 5 profiles. */
  compositePerSecond: number;
}

export async function rebalanceBench(opts: { connectors: number; iterations: number }): Promise<RebalanceBenchResult> {
  const input = benchmarkDepotSite(opts.connectors, new Date('2026-01-05T15:00:00Z'));
  // Each round starts from the previous allocation, as the live balancer does, so hysteresis
  // and the hand-on rule are exercised; measured power drifts so that the rounds differ. The
  // demands are built as fresh object literals, as the live balancer builds them: V8 reads
  // properties of `{ ...copy, extra }` objects many times slower, which would measure the copy.
  // Only allocate() is timed; preparing the next round's input is not.
  const base = input.sessions;
  let sessions = base;
  const round = (k: number): number => {
    const start = performance.now();
    const allocation = allocate({ ...input, sessions });
    const elapsed = performance.now() - start;
    sessions = base.map((s, i) => {
      const powerW = allocation.sessions[i].powerW;
      return {
        stationId: s.stationId,
        connectorId: s.connectorId,
        vehiclePhases: s.vehiclePhases,
        minPowerW: s.minPowerW,
        maxPowerW: s.maxPowerW,
        measuredPowerW: powerW * (i % 7 === k % 7 ? 0.5 : 0.98),
        previousAllocationW: powerW,
        priority: s.priority,
        departure: s.departure,
        energyNeededWh: s.energyNeededWh,
      };
    });
    return elapsed;
  };
  for (let k = 0; k < Math.min(200, opts.iterations); k++) round(k);
  const times: number[] = [];
  for (let k = 0; k < opts.iterations; k++) times.push(round(k));
  times.sort((a, b) => a - b);
  const percentile = (q: number) => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)];
  return {
    scenario: 'rebalance',
    connectors: input.sessions.length,
    iterations: opts.iterations,
    p50Ms: round3(percentile(0.5)),
    p99Ms: round3(percentile(0.99)),
    maxMs: round3(times[times.length - 1]),
    compositePerSecond: Math.round(compositeThroughput()),
  };
}

/** Instants of limitAt per second for the same station; not part of the result, for ad-hoc runs. */
export function limitAtThroughput(durationMs = 1000): number {
  const situation = fiveProfileStation();
  const start = Date.UTC(2026, 0, 5, 0, 0, 0);
  return throughput(durationMs, (k) => limitAt(situation, 1 + (k & 1), new Date(start + (k % 86_400) * 1000)));
}

function compositeThroughput(durationMs = 1000): number {
  const situation = fiveProfileStation();
  const start = Date.UTC(2026, 0, 5, 0, 0, 0);
  return throughput(durationMs, (k) => compositeSchedule({
    ...situation,
    request: { connectorId: 1 + (k & 1), startTime: new Date(start + (k % 1440) * 60_000), duration: 86_400, chargingRateUnit: 'W' },
  }));
}

function throughput(durationMs: number, request: (k: number) => unknown): number {
  for (let k = 0; k < 2000; k++) request(k);
  let count = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < durationMs) {
    for (let k = 0; k < 200; k++) request(count++);
    elapsed = performance.now() - start;
  }
  return (count / elapsed) * 1000;
}

/**
 * The benchmark's site: grid (4 MW, curtailed to 3.6 MW at `now`) → 4 transformers (1 MW) →
 * 10 cabinets each (400 A) → two-connector stations, filled round-robin; every tenth station
 * DC, a third of the AC cars one-phase, rotations cycling. Every level of the tree binds.
 */
export function benchmarkDepotSite(connectors: number, now: Date): AllocationInput {
  const stationCount = Math.ceil(connectors / 2);
  const rotations: PhaseRotation[] = [['L1', 'L2', 'L3'], ['L2', 'L3', 'L1'], ['L3', 'L1', 'L2']];
  const cabinets: SiteNode[] = [];
  const transformers: SiteNode[] = [];
  for (let t = 0; t < 4; t++) {
    const group: SiteNode[] = [];
    for (let c = 0; c < 10; c++) {
      const cabinet: SiteNode = { id: `T${t}-C${c}`, limit: { value: 400, unit: 'A' }, groups: [], stations: [] };
      group.push(cabinet);
      cabinets.push(cabinet);
    }
    transformers.push({ id: `T${t}`, limit: { value: 1_000_000, unit: 'W' }, groups: group, stations: [] });
  }
  const site: Site = {
    id: 'depot',
    name: 'Benchmark depot',
    limit: { value: 4_000_000, unit: 'W' },
    // A curtailment in force at `now`, so the override path is part of what is measured.
    overrides: [{ from: new Date(now.getTime() - 3_600_000), to: new Date(now.getTime() + 3_600_000), limit: { value: 3_600_000, unit: 'W' } }],
    groups: transformers,
    stations: [],
  };
  const stations: StationElectricalSpec[] = [];
  const sessions: ChargingSessionDemand[] = [];
  for (let s = 0; s < stationCount; s++) {
    const stationId = `CP${String(s).padStart(4, '0')}`;
    cabinets[s % cabinets.length].stations.push(stationId);
    const dc = s % 10 === 0;
    stations.push({
      stationId,
      kind: dc ? 'DC' : 'AC',
      phases: 3,
      rotation: rotations[s % 3],
      maxPowerW: dc ? 150_000 : 44_160,
      connectors: [1, 2].map((connectorId) => ({
        connectorId,
        maxPowerW: dc ? 150_000 : 22_080,
        maxCurrentA: dc ? undefined : 32,
      })),
    });
    for (const connectorId of [1, 2]) {
      if (sessions.length >= connectors) break;
      const n = sessions.length;
      const onePhase = !dc && n % 3 === 0;
      sessions.push({
        stationId,
        connectorId,
        vehiclePhases: onePhase ? 1 : 3,
        minPowerW: dc ? 10_000 : 0,
        maxPowerW: dc ? 150_000 : onePhase ? 7_360 : n % 2 === 0 ? 11_040 : 22_080,
        priority: n % 17 === 0 ? 1 : 0,
        departure: new Date(now.getTime() + ((n * 7919) % 36_000) * 1000),
        energyNeededWh: 5_000 + ((n * 104_729) % 60_000),
      });
    }
  }
  return { site, stations, sessions, now };
}

/** Two connectors, five profiles of every purpose and kind: what a busy AC station holds. */
function fiveProfileStation(): ChargingSituation {
  const profile = (
    chargingProfileId: number,
    fields: Omit<ChargingProfile, 'chargingProfileId' | 'stackLevel'> & { stackLevel?: number },
  ): ChargingProfile => ({ chargingProfileId, stackLevel: 0, ...fields });
  return {
    station: { connectors: 2, supplyVoltage: 230 },
    transactions: [{ connectorId: 1, transactionId: 7, startTime: new Date('2026-01-05T06:00:00Z') }],
    profiles: [
      { connectorId: 0, profile: profile(1, {
        chargingProfilePurpose: 'ChargePointMaxProfile', chargingProfileKind: 'Recurring', recurrencyKind: 'Daily',
        chargingSchedule: { startSchedule: '2026-01-01T00:00:00Z', chargingRateUnit: 'W', chargingSchedulePeriod: [
          { startPeriod: 0, limit: 44_000 }, { startPeriod: 7 * 3600, limit: 30_000 }, { startPeriod: 18 * 3600, limit: 22_000 }] },
      }) },
      { connectorId: 0, profile: profile(2, {
        chargingProfilePurpose: 'TxDefaultProfile', chargingProfileKind: 'Absolute',
        chargingSchedule: { startSchedule: '2026-01-01T00:00:00Z', chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 16 }] },
      }) },
      { connectorId: 2, profile: profile(3, {
        chargingProfilePurpose: 'TxDefaultProfile', chargingProfileKind: 'Recurring', recurrencyKind: 'Weekly', stackLevel: 1,
        validFrom: '2026-01-01T00:00:00Z', validTo: '2026-12-31T00:00:00Z',
        chargingSchedule: { startSchedule: '2026-01-05T00:00:00Z', duration: 5 * 86_400, chargingRateUnit: 'A', chargingSchedulePeriod: [
          { startPeriod: 0, limit: 10 }, { startPeriod: 8 * 3600, limit: 20 }, { startPeriod: 17 * 3600, limit: 13 }] },
      }) },
      { connectorId: 1, profile: profile(4, {
        chargingProfilePurpose: 'TxProfile', chargingProfileKind: 'Relative', transactionId: 7,
        chargingSchedule: { duration: 4 * 3600, chargingRateUnit: 'W', chargingSchedulePeriod: [
          { startPeriod: 0, limit: 11_000 }, { startPeriod: 1800, limit: 7_400, numberPhases: 1 }, { startPeriod: 5400, limit: 9_000 }] },
      }) },
      { connectorId: 1, profile: profile(5, {
        chargingProfilePurpose: 'TxProfile', chargingProfileKind: 'Absolute', transactionId: 7, stackLevel: 1,
        validFrom: '2026-01-05T14:00:00Z', validTo: '2026-01-05T16:00:00Z',
        chargingSchedule: { startSchedule: '2026-01-05T14:00:00Z', chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 6 }] },
      }) },
    ],
  };
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
