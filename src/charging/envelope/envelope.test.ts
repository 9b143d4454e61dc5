import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { limitAt } from '../profiles/composite.js';
import { validateProfile } from '../profiles/validate.js';
import type { ChargingRateUnit, InstalledProfile } from '../profiles/model.js';
import {
  flattenSite,
  limitOfNodeAt,
  phases as sitePhases,
  standardRotation,
  type LimitOverride,
  type NodeLimit,
  type Phase,
  type PhaseRotation,
  type Site,
  type SiteNode,
  type StationElectricalSpec,
} from '../site/model.js';
import {
  envelopeHolds,
  failsafeProfiles,
  renewalDueAt,
  reservedForOffline,
  txProfileExpiresAt,
  txProfileForAllocation,
  worstCaseLoad,
  type FailsafeOptions,
  type FailsafePlan,
  type IssuedAllocation,
  type StationFailsafe,
  type StationHoldings,
} from './envelope.js';

const t0 = new Date('2026-01-05T08:00:00Z');
const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
const volts = 230;
const slots = {
  chargePointMax: { chargingProfileId: 1, stackLevel: 0 },
  txDefault: { chargingProfileId: 2, stackLevel: 0 },
};
const transactionStart = at(-3600);

function dc(stationId: string, maxPowerW: number, connectors = 1): StationElectricalSpec {
  return {
    stationId,
    kind: 'DC',
    phases: 3,
    rotation: standardRotation,
    maxPowerW,
    connectors: Array.from({ length: connectors }, (_, i) => ({ connectorId: i + 1, maxPowerW })),
  };
}

function ac(stationId: string, phases: 1 | 3, rotation: PhaseRotation = standardRotation, connectors = 1): StationElectricalSpec {
  const maxPowerW = 32 * volts * phases;
  return {
    stationId,
    kind: 'AC',
    phases,
    rotation,
    maxPowerW,
    connectors: Array.from({ length: connectors }, (_, i) => ({ connectorId: i + 1, maxPowerW, maxCurrentA: 32 })),
  };
}

function node(id: string, limit: NodeLimit | undefined, stations: string[], groups: SiteNode[] = [], overrides: LimitOverride[] = []): SiteNode {
  return { id, limit, overrides, stations, groups };
}

function site(root: SiteNode): Site {
  return { ...root, name: 'test site', supplyVoltage: volts };
}

function options(stations: readonly StationElectricalSpec[], unit: ChargingRateUnit | ((s: StationElectricalSpec) => ChargingRateUnit), horizonS = 3600): FailsafeOptions {
  const unitOf = typeof unit === 'function' ? unit : () => unit;
  return { allowedUnits: Object.fromEntries(stations.map((s) => [s.stationId, unitOf(s)])), horizonS, ...slots };
}

function failsafeOf(plan: FailsafePlan, stationId: string): StationFailsafe {
  const found = plan.stations.find((s) => s.stationId === stationId);
  if (!found) throw new Error(`no failsafe for ${stationId}`);
  return found;
}

/** Every station holding only its failsafe, no transaction: everyone may start at its default. */
function failsafeHoldings(plan: FailsafePlan): Record<string, StationHoldings> {
  return Object.fromEntries(plan.stations.map((s) => [s.stationId, { profiles: [s.chargePointMax, s.txDefault], transactions: [] }]));
}

function nodeLoad(load: ReturnType<typeof worstCaseLoad>, nodeId: string) {
  const found = load.nodes.find((n) => n.nodeId === nodeId);
  if (!found) throw new Error(`no node ${nodeId}`);
  return found;
}

function txOptions(fs: StationFailsafe, clockSkewS = 0, validForS = 300) {
  return {
    validForS,
    unit: fs.unit,
    supplyVoltage: volts,
    chargingProfileId: 100,
    stackLevel: 1,
    clockSkewS,
    txDefault: { unit: fs.unit, limit: fs.defaultLimit },
  };
}

/** A station with its failsafe, one transaction on connector 1 and the given TxProfile. */
function holdingWith(fs: StationFailsafe, txProfile: InstalledProfile | undefined, extra: Partial<StationHoldings> = {}): StationHoldings {
  return {
    profiles: txProfile ? [fs.chargePointMax, fs.txDefault, txProfile] : [fs.chargePointMax, fs.txDefault],
    transactions: [{ connectorId: 1, transactionId: 7, startTime: transactionStart }],
    ...extra,
  };
}

describe('failsafeProfiles', () => {
  it('400 kW site with 20 × 150 kW DC stations: a default of at most 20 kW each, a ChargePointMaxProfile at 150 kW', () => {
    const stations = Array.from({ length: 20 }, (_, i) => dc(`DC${i + 1}`, 150_000));
    const depot = site(node('grid', { value: 400_000, unit: 'W' }, stations.map((s) => s.stationId)));
    const plan = failsafeProfiles(depot, stations, t0, options(stations, 'W'));

    expect(plan.stations).toHaveLength(20);
    for (const fs of plan.stations) {
      expect(fs.defaultLimit).toBeLessThanOrEqual(20_000);
      expect(fs.defaultLimit).toBe(20_000);
      expect(fs.limitingNodeId).toBe('grid');
      expect(fs.chargePointMax.connectorId).toBe(0);
      expect(fs.chargePointMax.profile.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 150_000, numberPhases: 3 }]);
      expect(fs.txDefault.connectorId).toBe(0);
      expect(fs.txDefault.profile).toMatchObject({
        chargingProfileId: 2,
        stackLevel: 0,
        chargingProfilePurpose: 'TxDefaultProfile',
        chargingProfileKind: 'Absolute',
      });
      // No duration (it must never run out) and a start in the past (no gap on a charger whose clock lags).
      expect(fs.txDefault.profile.chargingSchedule.duration).toBeUndefined();
      expect(Date.parse(fs.txDefault.profile.chargingSchedule.startSchedule!)).toBeLessThan(t0.getTime());
      for (const installed of [fs.chargePointMax, fs.txDefault]) {
        expect(validateProfile(installed.connectorId, installed.profile, { connectors: 1, transactions: [], allowedUnits: ['W'] })).toEqual([]);
      }
    }
    expect(plan.pausesAcCars).toBe(false);
    const load = worstCaseLoad(depot, stations, failsafeHoldings(plan), t0);
    expect(nodeLoad(load, 'grid').powerW).toBe(400_000);
    expect(envelopeHolds(depot, stations, failsafeHoldings(plan), t0)).toBe(true);
  });

  it('a group in A per phase: one-phase stations on rotated phases share each phase only with those wired to it', () => {
    const rotations: PhaseRotation[] = [['L1', 'L2', 'L3'], ['L2', 'L3', 'L1'], ['L3', 'L1', 'L2']];
    const stations = Array.from({ length: 6 }, (_, i) => ac(`AC${i + 1}`, 1, rotations[i % 3]));
    const cabinet = node('cabinet', { value: 32, unit: 'A' }, stations.map((s) => s.stationId));
    const depot = site(node('grid', undefined, [], [cabinet]));
    const plan = failsafeProfiles(depot, stations, t0, options(stations, 'A'));

    // Two connectors on each phase: 16 A each.
    for (const fs of plan.stations) {
      expect(fs.defaultLimit).toBe(16);
      expect(fs.limitingNodeId).toBe('cabinet');
      expect(fs.pausesAcCars).toBe(false);
      expect(fs.txDefault.profile.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 16, numberPhases: 1 }]);
    }
    const load = nodeLoad(worstCaseLoad(depot, stations, failsafeHoldings(plan), t0), 'cabinet');
    expect(load.currentA).toEqual({ L1: 32, L2: 32, L3: 32 });
    expect(load.withinLimits).toBe(true);
  });

  it('a one-phase twin-socket post whose second socket is wired to L2 shares each phase only with what is wired to it (connector rotation)', () => {
    const sameWiring = ac('POST', 1, standardRotation, 2);
    const rotated: StationElectricalSpec = { ...sameWiring, connectors: [sameWiring.connectors[0]!, { ...sameWiring.connectors[1]!, rotation: ['L2', 'L3', 'L1'] }] };
    const depot = (spec: StationElectricalSpec) => site(node('grid', { value: 32, unit: 'A' }, [spec.stationId]));
    // Both sockets on L1: 16 A each. The second on L2: each socket has a phase to itself, 32 A.
    expect(failsafeOf(failsafeProfiles(depot(sameWiring), [sameWiring], t0, options([sameWiring], 'A')), 'POST').defaultLimit).toBe(16);
    const plan = failsafeProfiles(depot(rotated), [rotated], t0, options([rotated], 'A'));
    expect(failsafeOf(plan, 'POST').defaultLimit).toBe(32);
    const load = nodeLoad(worstCaseLoad(depot(rotated), [rotated], failsafeHoldings(plan), t0), 'grid');
    expect(load.currentA).toEqual({ L1: 32, L2: 32, L3: 0 });
    expect(load.withinLimits).toBe(true);
  });

  it('one-phase stations all wired to L1 split L1 six ways: 5.3 A, below 6 A, so AC cars pause offline and the plan says so', () => {
    const stations = Array.from({ length: 6 }, (_, i) => ac(`AC${i + 1}`, 1));
    const depot = site(node('grid', { value: 32, unit: 'A' }, stations.map((s) => s.stationId)));
    const plan = failsafeProfiles(depot, stations, t0, options(stations, 'A'));

    expect(plan.stations.map((s) => s.defaultLimit)).toEqual(Array(6).fill(5.3));
    expect(plan.stations.every((s) => s.pausesAcCars)).toBe(true);
    expect(plan.pausesAcCars).toBe(true);
    const load = nodeLoad(worstCaseLoad(depot, stations, failsafeHoldings(plan), t0), 'grid');
    expect(load.currentA.L1).toBeCloseTo(31.8, 9);
    expect(load.currentA.L2).toBe(0);
    expect(load.withinLimits).toBe(true);
  });

  it('a three-phase AC station that accepts only W is held to current share × V: a one-phase car puts all of it on one phase', () => {
    const station = ac('AC', 3, ['L3', 'L1', 'L2']);
    const fuse = site(node('fuse', { value: 32, unit: 'A' }, ['AC']));
    const inW = failsafeOf(failsafeProfiles(fuse, [station], t0, options([station], 'W')), 'AC');
    expect(inW.defaultLimit).toBe(32 * volts);
    expect(inW.defaultCurrentA).toBeCloseTo(32 / 3, 9);
    expect(inW.pausesAcCars).toBe(false);
    const inA = failsafeOf(failsafeProfiles(fuse, [station], t0, options([station], 'A')), 'AC');
    expect(inA.defaultLimit).toBe(32);

    // Unknown vehicle under the W default: the station's L1 (site L3) may carry all of it.
    const holdW = { AC: { profiles: [inW.chargePointMax, inW.txDefault], transactions: [] } };
    const loadW = nodeLoad(worstCaseLoad(fuse, [station], holdW, t0), 'fuse');
    expect(loadW.currentA.L3).toBeCloseTo(32, 9);
    expect(loadW.currentA.L1).toBeCloseTo(16, 9);
    expect(loadW.currentA.L2).toBeCloseTo(32 / 3, 9);
    expect(loadW.withinLimits).toBe(true);
    // A known three-phase vehicle spreads it.
    const known = { AC: { ...holdW.AC, transactions: [{ connectorId: 1, transactionId: 1, startTime: transactionStart }], vehiclePhases: { 1: 3 as const } } };
    const loadKnown = nodeLoad(worstCaseLoad(fuse, [station], known, t0), 'fuse');
    for (const phase of sitePhases) expect(loadKnown.currentA[phase]).toBeCloseTo(32 / 3, 9);
  });

  it('a three-phase AC default in W whose current per phase falls below 6 A is flagged', () => {
    const stations = [ac('A', 3), ac('B', 3), ac('C', 3)];
    const small = site(node('grid', { value: 10_000, unit: 'W' }, ['A', 'B', 'C']));
    const plan = failsafeProfiles(small, stations, t0, options(stations, 'W'));
    expect(failsafeOf(plan, 'A').defaultLimit).toBe(3333.3);
    expect(failsafeOf(plan, 'A').defaultCurrentA).toBeCloseTo(3333.3 / (3 * volts), 9);
    expect(plan.pausesAcCars).toBe(true);
  });

  it('the smallest share along the path governs: a group below the grid connection', () => {
    const stations = [dc('G1', 150_000), dc('G2', 150_000), dc('H1', 150_000)];
    const feeder = node('feeder', { value: 60_000, unit: 'W' }, ['G1', 'G2']);
    const depot = site(node('grid', { value: 300_000, unit: 'W' }, ['H1'], [feeder]));
    const plan = failsafeProfiles(depot, stations, t0, options(stations, 'W'));
    expect(failsafeOf(plan, 'G1')).toMatchObject({ defaultLimit: 30_000, limitingNodeId: 'feeder' });
    expect(failsafeOf(plan, 'H1')).toMatchObject({ defaultLimit: 100_000, limitingNodeId: 'grid' });
  });

  it('a curtailment that starts within the horizon lowers the default now; one after the horizon or already over does not', () => {
    const stations = Array.from({ length: 10 }, (_, i) => dc(`DC${i + 1}`, 50_000));
    const curtailment: LimitOverride = { from: at(1800), to: at(7200), limit: { value: 50_000, unit: 'W' } };
    const past: LimitOverride = { from: at(-7200), to: at(-3600), limit: { value: 10_000, unit: 'W' } };
    const depot = site(node('grid', { value: 100_000, unit: 'W' }, stations.map((s) => s.stationId), [], [curtailment, past]));

    const withinHorizon = failsafeProfiles(depot, stations, t0, options(stations, 'W', 3600));
    expect(withinHorizon.stations.map((s) => s.defaultLimit)).toEqual(Array(10).fill(5_000));
    const shortHorizon = failsafeProfiles(depot, stations, t0, options(stations, 'W', 600));
    expect(shortHorizon.stations.map((s) => s.defaultLimit)).toEqual(Array(10).fill(10_000));
    // The short-horizon failsafe does not hold once the curtailment begins: why the horizon matters.
    expect(envelopeHolds(depot, stations, failsafeHoldings(shortHorizon), at(1800))).toBe(false);
    expect(envelopeHolds(depot, stations, failsafeHoldings(withinHorizon), at(1800))).toBe(true);
  });

  it('refuses what it cannot make safe: a station outside the site, one in it twice, one without description or unit', () => {
    const a = dc('A', 50_000);
    const b = dc('B', 50_000);
    expect(() => failsafeProfiles(site(node('grid', { value: 1, unit: 'W' }, ['A'])), [a, b], t0, options([a, b], 'W'))).toThrow(/B is not in site/);
    expect(() => failsafeProfiles(site(node('grid', { value: 1, unit: 'W' }, ['A', 'A'])), [a], t0, options([a], 'W'))).toThrow(/more than once/);
    expect(() => failsafeProfiles(site(node('grid', { value: 1, unit: 'W' }, ['A', 'B'])), [a], t0, options([a], 'W'))).toThrow(/no electrical description/);
    expect(() => failsafeProfiles(site(node('grid', { value: 1, unit: 'W' }, ['A'])), [a], t0, { ...options([a], 'W'), allowedUnits: {} })).toThrow(/unit/);
  });
});

describe('txProfileForAllocation and renewal', () => {
  const station = dc('DC', 150_000);
  const depot = site(node('grid', { value: 20_000, unit: 'W' }, ['DC']));
  const fs = failsafeOf(failsafeProfiles(depot, [station], t0, options([station], 'W')), 'DC');

  it('the TxProfile expires exactly at validForS: the allocation until then, the default from then on', () => {
    const tx = txProfileForAllocation({ powerW: 100_000, phases: 3 }, { transactionId: 7, connectorId: 1 }, new Date(t0.getTime() + 400), txOptions(fs));
    expect(tx.connectorId).toBe(1);
    expect(tx.profile).toMatchObject({ transactionId: 7, chargingProfilePurpose: 'TxProfile', chargingProfileKind: 'Absolute', chargingProfileId: 100, stackLevel: 1 });
    expect(tx.profile.chargingSchedule).toEqual({
      startSchedule: '2026-01-05T08:00:00Z',
      duration: 300,
      chargingRateUnit: 'W',
      chargingSchedulePeriod: [{ startPeriod: 0, limit: 100_000, numberPhases: 3 }],
    });
    expect(validateProfile(1, tx.profile, { connectors: 1, transactions: [{ connectorId: 1, transactionId: 7 }] })).toEqual([]);

    const situation = { station: { connectors: 1, supplyVoltage: volts }, profiles: [fs.chargePointMax, fs.txDefault, tx], transactions: holdingWith(fs, tx).transactions };
    expect(limitAt(situation, 1, at(299)).limit).toBe(100_000);
    expect(limitAt(situation, 1, at(300)).limit).toBe(20_000);
    expect(txProfileExpiresAt(new Date(t0.getTime() + 400), 300)).toEqual(at(300));
    expect(renewalDueAt(new Date(t0.getTime() + 400), 300, 60)).toEqual(at(240));
  });

  it('in A the limit per phase is rounded down to one decimal, with the vehicle\'s phases', () => {
    const acFs = { ...fs, unit: 'A' as const, defaultLimit: 32 };
    const three = txProfileForAllocation({ powerW: 11_000, phases: 3 }, { transactionId: 1, connectorId: 2 }, t0, txOptions(acFs));
    expect(three.profile.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 15.9, numberPhases: 3 }]);
    const one = txProfileForAllocation({ powerW: 7360, phases: 1 }, { transactionId: 1, connectorId: 2 }, t0, txOptions(acFs));
    expect(one.profile.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 32, numberPhases: 1 }]);
  });

  it('with clock skew S: starts S earlier, grants the allocation up to validForS and at most the default for 2S more', () => {
    const tx = txProfileForAllocation({ powerW: 100_000, phases: 3 }, { transactionId: 7, connectorId: 1 }, t0, txOptions(fs, 10));
    expect(tx.profile.chargingSchedule).toMatchObject({
      startSchedule: '2026-01-05T07:59:50Z',
      duration: 320,
      chargingSchedulePeriod: [{ startPeriod: 0, limit: 100_000, numberPhases: 3 }, { startPeriod: 300, limit: 20_000, numberPhases: 3 }],
    });
    for (const clockOffsetS of [-10, -3, 0, 7, 10]) {
      const load = (t: Date) => worstCaseLoad(depot, [station], { DC: holdingWith(fs, tx, { clockOffsetS }) }, t).connectors[0].powerW;
      // Started on every clock from the moment it is sent, so a renewal never leaves a gap.
      expect(load(t0)).toBe(100_000);
      // Back within the default from validForS on, whatever the clock.
      expect(load(at(300))).toBeLessThanOrEqual(20_000);
      expect(load(at(330))).toBe(20_000);
    }
  });

  it('an allocation below the default has no second period: the station keeps it to the end', () => {
    const tx = txProfileForAllocation({ powerW: 5_000, phases: 3 }, { transactionId: 7, connectorId: 1 }, t0, txOptions(fs, 10));
    expect(tx.profile.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 5_000, numberPhases: 3 }]);
    // A station whose clock runs 10 s ahead still holds it at 299 s of ours: it does not take its lent share back early.
    const load = worstCaseLoad(depot, [station], { DC: holdingWith(fs, tx, { clockOffsetS: 10 }) }, at(299));
    expect(load.connectors[0].powerW).toBe(5_000);
  });

  it('follows a plan where it is below the allocation, never above it, and keeps the tail', () => {
    const plan = [
      { offsetS: 0, powerW: 0 },
      { offsetS: 60, powerW: 40_000 },
      { offsetS: 120, powerW: 150_000 },
      { offsetS: 180, powerW: 10_000.06 },
      { offsetS: 400, powerW: 0 },
    ];
    const tx = txProfileForAllocation({ powerW: 100_000, phases: 3 }, { transactionId: 7, connectorId: 1 }, t0, { ...txOptions(fs, 10), plan });
    // Offsets are from now; the schedule starts S = 10 s earlier. A step at once (offset 0) is the
    // caller's to put into the allocation; steps past validForS belong to the next profile.
    expect(tx.profile.chargingSchedule.chargingSchedulePeriod).toEqual([
      { startPeriod: 0, limit: 100_000, numberPhases: 3 },
      { startPeriod: 70, limit: 40_000, numberPhases: 3 },
      { startPeriod: 130, limit: 100_000, numberPhases: 3 },
      { startPeriod: 190, limit: 10_000, numberPhases: 3 },
    ]);
    // The last period is already below the default: no tail needed.
    const raisedAtEnd = txProfileForAllocation({ powerW: 100_000, phases: 3 }, { transactionId: 7, connectorId: 1 }, t0, { ...txOptions(fs, 10), plan: [{ offsetS: 60, powerW: 0 }, { offsetS: 200, powerW: 90_000 }] });
    expect(raisedAtEnd.profile.chargingSchedule.chargingSchedulePeriod).toEqual([
      { startPeriod: 0, limit: 100_000, numberPhases: 3 },
      { startPeriod: 70, limit: 0, numberPhases: 3 },
      { startPeriod: 210, limit: 90_000, numberPhases: 3 },
      { startPeriod: 300, limit: 20_000, numberPhases: 3 },
    ]);
    expect(validateProfile(1, raisedAtEnd.profile, { connectors: 1, transactions: [{ connectorId: 1, transactionId: 7 }] })).toEqual([]);
  });

  it('rejects durations, margins and skews that make no sense', () => {
    const ok = txOptions(fs);
    expect(() => txProfileForAllocation({ powerW: 1, phases: 3 }, { transactionId: 1, connectorId: 1 }, t0, { ...ok, validForS: 0 })).toThrow(RangeError);
    expect(() => txProfileForAllocation({ powerW: 1, phases: 3 }, { transactionId: 1, connectorId: 1 }, t0, { ...ok, clockSkewS: -1 })).toThrow(RangeError);
    expect(() => txProfileForAllocation({ powerW: -1, phases: 3 }, { transactionId: 1, connectorId: 1 }, t0, ok)).toThrow(RangeError);
    expect(() => txProfileForAllocation({ powerW: 1, phases: 3 }, { transactionId: 1, connectorId: 0 }, t0, ok)).toThrow(RangeError);
    expect(() => renewalDueAt(t0, 300, 300)).toThrow(RangeError);
    expect(() => renewalDueAt(t0, 300, -1)).toThrow(RangeError);
  });
});

describe('clock skew without the tail period', () => {
  it('a lender whose clock runs ahead takes its share back while a borrower whose clock lags still draws more: over the limit; with the tail, never', () => {
    const stations = [dc('Lender', 150_000), dc('Borrower', 150_000)];
    const depot = site(node('grid', { value: 40_000, unit: 'W' }, ['Lender', 'Borrower']));
    const plan = failsafeProfiles(depot, stations, t0, options(stations, 'W'));
    const lenderFs = failsafeOf(plan, 'Lender');
    const borrowerFs = failsafeOf(plan, 'Borrower');
    expect(lenderFs.defaultLimit).toBe(20_000);

    const holdings = (skewInProfiles: number) => ({
      Lender: holdingWith(lenderFs, txProfileForAllocation({ powerW: 0, phases: 3 }, { transactionId: 7, connectorId: 1 }, t0, txOptions(lenderFs, skewInProfiles)), { clockOffsetS: 10 }),
      Borrower: holdingWith(borrowerFs, txProfileForAllocation({ powerW: 40_000, phases: 3 }, { transactionId: 7, connectorId: 1 }, t0, txOptions(borrowerFs, skewInProfiles)), { clockOffsetS: -10 }),
    });
    expect(envelopeHolds(depot, stations, holdings(0), at(295))).toBe(false);
    for (let s = 0; s <= 340; s++) expect(envelopeHolds(depot, stations, holdings(10), at(s))).toBe(true);
  });
});

describe('reservedForOffline', () => {
  const issued: IssuedAllocation[] = [
    { stationId: 'A', connectorId: 1, powerW: 100_000, phases: 3, issuedAt: t0 },
    // An unanswered SetChargingProfile when A dropped: A holds one of the two.
    { stationId: 'A', connectorId: 1, powerW: 60_000, phases: 3, issuedAt: at(60) },
    { stationId: 'B', connectorId: 1, powerW: 50_000, phases: 3, issuedAt: t0 },
    { stationId: 'C', connectorId: 2, powerW: 11_000, phases: 1, issuedAt: t0 },
  ];

  it('reserves an offline station\'s allocations until their TxProfile has expired; connected stations and future losses are not reserved', () => {
    const lost = { A: at(61), C: at(250) };
    expect(reservedForOffline(issued, lost, at(200), 300)).toEqual([
      { stationId: 'A', connectorId: 1, powerW: 100_000, phases: 3, until: at(300) },
      { stationId: 'A', connectorId: 1, powerW: 60_000, phases: 3, until: at(360) },
    ]);
    expect(reservedForOffline(issued, lost, at(299), 300).map((r) => r.powerW)).toEqual([100_000, 60_000, 11_000]);
    expect(reservedForOffline(issued, lost, at(300), 300).map((r) => r.powerW)).toEqual([60_000]);
    expect(reservedForOffline(issued, lost, at(360), 300)).toEqual([]);
  });

  it('is needed: giving an offline station\'s allocation to others before it expires puts the site over its limit', () => {
    const stations = ['A', 'B', 'C', 'D'].map((id) => dc(id, 150_000));
    const depot = site(node('grid', { value: 200_000, unit: 'W' }, ['A', 'B', 'C', 'D']));
    const plan = failsafeProfiles(depot, stations, t0, options(stations, 'W'));
    expect(plan.stations.map((s) => s.defaultLimit)).toEqual([50_000, 50_000, 50_000, 50_000]);
    const send = (id: string, powerW: number, when: Date) =>
      txProfileForAllocation({ powerW, phases: 3 }, { transactionId: 7, connectorId: 1 }, when, txOptions(failsafeOf(plan, id)));
    // Round at 0: A and B charge at 100 kW, C and D lend their defaults (their vehicles need nothing). A drops at 10 s.
    const aLast = send('A', 100_000, t0);
    const holdingsAfter = (b: number, c: number) => ({
      A: holdingWith(failsafeOf(plan, 'A'), aLast),
      B: holdingWith(failsafeOf(plan, 'B'), send('B', b, at(60))),
      C: holdingWith(failsafeOf(plan, 'C'), send('C', c, at(60))),
      D: holdingWith(failsafeOf(plan, 'D'), send('D', 0, at(60))),
    });
    const reserved = reservedForOffline([{ stationId: 'A', connectorId: 1, powerW: 100_000, phases: 3, issuedAt: t0 }], { A: at(10) }, at(60), 300);
    expect(reserved.map((r) => r.powerW)).toEqual([100_000]);
    // Round at 60 s forgetting A: 200 kW shared among B, C, D.
    expect(envelopeHolds(depot, stations, holdingsAfter(150_000, 50_000), at(60))).toBe(false);
    // Round at 60 s reserving A: 100 kW left.
    const kept = holdingsAfter(100_000, 0);
    expect(envelopeHolds(depot, stations, kept, at(60))).toBe(true);
    // A's TxProfile has expired: A is on its default, lent by nobody, and it still fits.
    expect(worstCaseLoad(depot, stations, kept, at(300)).connectors[0].powerW).toBe(50_000);
    expect(envelopeHolds(depot, stations, kept, at(300))).toBe(true);
  });
});

describe('worstCaseLoad', () => {
  const station = dc('DC', 150_000);
  const depot = site(node('grid', { value: 20_000, unit: 'W' }, ['DC']));
  const fs = failsafeOf(failsafeProfiles(depot, [station], t0, options([station], 'W')), 'DC');

  it('a station whose TxProfile expired is charged at its default', () => {
    const tx = txProfileForAllocation({ powerW: 100_000, phases: 3 }, { transactionId: 7, connectorId: 1 }, t0, txOptions(fs));
    expect(worstCaseLoad(depot, [station], { DC: holdingWith(fs, tx) }, at(299)).connectors[0].powerW).toBe(100_000);
    const expired = worstCaseLoad(depot, [station], { DC: holdingWith(fs, tx) }, at(300));
    expect(expired.connectors[0].powerW).toBe(20_000);
    expect(expired.connectors[0].currentA.L1).toBeCloseTo(20_000 / (3 * volts), 9);
    expect(nodeLoad(expired, 'grid').withinLimits).toBe(true);
  });

  it('a station holding no profile may draw its physical maximum', () => {
    const load = worstCaseLoad(depot, [station], {}, t0);
    expect(load.connectors[0].powerW).toBe(150_000);
    expect(envelopeHolds(depot, [station], {}, t0)).toBe(false);
  });

  it('a one-phase TxProfile on a three-phase station loads only the site phase its L1 is wired to, whatever the vehicle', () => {
    const rotated = ac('AC', 3, ['L2', 'L3', 'L1']);
    const fuse = site(node('fuse', { value: 16, unit: 'A' }, ['AC']));
    const acFs = failsafeOf(failsafeProfiles(fuse, [rotated], t0, options([rotated], 'A')), 'AC');
    expect(acFs.defaultLimit).toBe(16);
    const tx = txProfileForAllocation({ powerW: 16 * volts, phases: 1 }, { transactionId: 7, connectorId: 1 }, t0, txOptions(acFs));
    const load = worstCaseLoad(fuse, [rotated], { AC: holdingWith(acFs, tx) }, at(10));
    expect(load.connectors[0].currentA).toEqual({ L1: 0, L2: 16, L3: 0 });
    expect(load.connectors[0].powerW).toBe(16 * volts);
  });

  it('a W limit counts at its unrounded current: the core reports 30.4 A for 7,000 W on one phase, the vehicle may draw 30.43 A', () => {
    const single = ac('AC', 1);
    const fuse = site(node('fuse', { value: 100, unit: 'A' }, ['AC']));
    const acFs = failsafeOf(failsafeProfiles(fuse, [single], t0, options([single], 'W')), 'AC');
    const tx = txProfileForAllocation({ powerW: 7000, phases: 1 }, { transactionId: 7, connectorId: 1 }, t0, txOptions(acFs));
    const situation = { station: { connectors: 1, supplyVoltage: volts }, profiles: [acFs.chargePointMax, acFs.txDefault, tx], transactions: holdingWith(acFs, tx).transactions };
    expect(limitAt(situation, 1, at(10), { chargingRateUnit: 'A', numberPhases: 1 }).limit).toBe(30.4);
    const load = worstCaseLoad(fuse, [single], { AC: holdingWith(acFs, tx) }, at(10));
    expect(load.connectors[0].currentA.L1).toBeCloseTo(7000 / volts, 9);
  });

  it('a station with two connectors draws no more than its physical maximum in total', () => {
    const twin = dc('Twin', 100_000, 2);
    const grid = site(node('grid', { value: 1_000_000, unit: 'W' }, ['Twin']));
    const load = worstCaseLoad(grid, [twin], {}, t0);
    expect(load.connectors.map((c) => c.powerW)).toEqual([100_000, 100_000]);
    expect(nodeLoad(load, 'grid').powerW).toBe(100_000);
  });
});

// ---------------------------------------------------------------------------------------------
// The invariant of issue 4, as a property.
//
// A reference balancer, written here and kept simple: every round it scales all demands by one
// factor, the largest that fits, counting (per node, per phase, over the allocation's life)
// the new allocations, the still-valid allocations of offline stations (reservedForOffline),
// and the failsafe default of every other connector. Its loads are its own arithmetic, not
// the module's; the check is worstCaseLoad through the composite core.
// ---------------------------------------------------------------------------------------------

const horizonS = 1200;
const validForS = 240;
const roundS = 60;
const clockSkewS = 10;
const rounds = Array.from({ length: Math.floor((horizonS - validForS) / roundS) + 1 }, (_, i) => i * roundS);

interface Load {
  W: number;
  A: Record<Phase, number>;
}

function emptyLoad(): Load {
  return { W: 0, A: { L1: 0, L2: 0, L3: 0 } };
}

function addInto(total: Load, load: Load): void {
  total.W += load.W;
  for (const phase of sitePhases) total.A[phase] += load.A[phase];
}

/** An allocation drawn by a vehicle on `phases` phases (AC: the station's first ones; DC: all of the station's, balanced). */
function allocationLoad(spec: StationElectricalSpec, powerW: number, phases: number): Load {
  const used = spec.kind === 'DC' ? spec.phases : Math.min(phases, spec.phases);
  const load = emptyLoad();
  load.W = powerW;
  for (let i = 0; i < used; i++) load.A[spec.rotation[i]] += powerW / (volts * used);
  return load;
}

/** The most any vehicle may draw under the default: in A, the limit on every phase; in W, a one-phase car on L1 takes all. */
function defaultLoad(spec: StationElectricalSpec, fs: StationFailsafe): Load {
  const load = emptyLoad();
  const p = spec.phases;
  if (fs.unit === 'A') {
    load.W = fs.defaultLimit * volts * p;
    for (let i = 0; i < p; i++) load.A[spec.rotation[i]] += fs.defaultLimit;
  } else {
    load.W = fs.defaultLimit;
    for (let i = 0; i < p; i++) load.A[spec.rotation[i]] += fs.defaultLimit / (volts * (spec.kind === 'DC' ? p : i + 1));
  }
  return load;
}

interface Session {
  stationId: string;
  connectorId: number;
  transactionId: number;
  phases: 1 | 2 | 3;
  demandW: number;
}

interface Scenario {
  site: Site;
  stations: StationElectricalSpec[];
  units: Record<string, ChargingRateUnit>;
  clockOffsetS: Record<string, number>;
  sessions: Session[];
  /** Seconds after t0: offline from `from` until `to` (or for good). */
  outages: Record<string, { from: number; to?: number }>;
  samples: number[];
}

const rotationArb = fc.constantFrom<PhaseRotation>(
  ['L1', 'L2', 'L3'], ['L2', 'L3', 'L1'], ['L3', 'L1', 'L2'], ['L1', 'L3', 'L2'], ['L2', 'L1', 'L3'], ['L3', 'L2', 'L1'],
);

// Limits well below what the stations could draw together, so that most rounds are tight.
const limitArb: fc.Arbitrary<NodeLimit> = fc.oneof(
  fc.integer({ min: 5, max: 200 }).map((kW) => ({ value: kW * 1000, unit: 'W' as const })),
  fc.integer({ min: 8, max: 120 }).map((amps) => ({ value: amps, unit: 'A' as const })),
);

const overrideArb: fc.Arbitrary<LimitOverride> = fc
  .record({ from: fc.integer({ min: -600, max: 2 * horizonS }), length: fc.integer({ min: 30, max: horizonS }), limit: limitArb })
  .map(({ from, length, limit }) => ({ from: at(from), to: at(from + length), limit }));

const nodeArb = fc.record({
  limit: fc.option(limitArb, { nil: undefined }),
  overrides: fc.array(overrideArb, { maxLength: 2 }),
});

const stationArb = fc.record({
  kind: fc.constantFrom('AC1', 'AC3', 'DC'),
  rotation: rotationArb,
  connectors: fc.integer({ min: 1, max: 2 }),
  dcPowerKW: fc.integer({ min: 50, max: 150 }),
  unit: fc.constantFrom<ChargingRateUnit>('A', 'W'),
  clockOffsetS: fc.integer({ min: -clockSkewS, max: clockSkewS }),
  sessions: fc.array(
    fc.option(fc.record({
        phases: fc.constantFrom<1 | 2 | 3>(1, 2, 3),
        // Small demands make lenders (allocated below their default), large ones borrowers.
        demandFraction: fc.oneof(fc.double({ min: 0, max: 0.1, noNaN: true }), fc.double({ min: 0.5, max: 1, noNaN: true })),
      }), { nil: undefined, freq: 3 }),
    { minLength: 2, maxLength: 2 },
  ),
  outage: fc.option(
    fc.record({ from: fc.integer({ min: 1, max: horizonS }), length: fc.option(fc.integer({ min: 1, max: horizonS }), { nil: undefined }) }),
    { nil: undefined, freq: 2 },
  ),
});

const scenarioArb: fc.Arbitrary<Scenario> = fc
  // Sub-groups per group: depth 1 (no groups) to 3 (groups with sub-groups).
  .array(fc.integer({ min: 0, max: 2 }), { maxLength: 3 })
  .chain((shape) => {
    const nodeCount = 1 + shape.length + shape.reduce((a, b) => a + b, 0);
    return fc.record({
      shape: fc.constant(shape),
      nodes: fc.array(nodeArb, { minLength: nodeCount, maxLength: nodeCount }),
      rootLimit: limitArb,
      stations: fc.array(fc.tuple(stationArb, fc.integer({ min: 0, max: nodeCount - 1 })), { minLength: 2, maxLength: 8 }),
      explicitVoltage: fc.boolean(),
      samples: fc.array(fc.integer({ min: 0, max: horizonS }), { minLength: 5, maxLength: 12 }),
    });
  })
  .map(({ shape, nodes, rootLimit, stations: drawn, explicitVoltage, samples }) => {
    const made: SiteNode[] = nodes.map((n, i) => ({ id: i === 0 ? 'grid' : `N${i}`, limit: i === 0 ? n.limit ?? rootLimit : n.limit, overrides: n.overrides, groups: [], stations: [] }));
    let next = 1;
    for (const subgroups of shape) {
      const group = made[next++];
      made[0].groups.push(group);
      for (let s = 0; s < subgroups; s++) group.groups.push(made[next++]);
    }
    const stations: StationElectricalSpec[] = [];
    const units: Record<string, ChargingRateUnit> = {};
    const clockOffsetS: Record<string, number> = {};
    const sessions: Session[] = [];
    const outages: Scenario['outages'] = {};
    drawn.forEach(([s, placeAt], i) => {
      const id = `S${i}`;
      const spec = s.kind === 'DC'
        ? dc(id, s.dcPowerKW * 1000, s.connectors)
        : ac(id, s.kind === 'AC1' ? 1 : 3, s.rotation, s.connectors);
      spec.rotation = s.rotation;
      stations.push(spec);
      made[placeAt].stations.push(id);
      units[id] = s.unit;
      clockOffsetS[id] = s.clockOffsetS;
      spec.connectors.forEach((connector, c) => {
        const session = s.sessions[c];
        if (!session) return;
        const phases = spec.kind === 'DC' ? 3 : (Math.min(session.phases, spec.phases) as 1 | 2 | 3);
        const most = Math.min(connector.maxPowerW, (connector.maxCurrentA ?? Infinity) * volts * phases);
        sessions.push({ stationId: id, connectorId: connector.connectorId, transactionId: 1000 + i * 10 + c, phases, demandW: session.demandFraction * most });
      });
      if (s.outage) outages[id] = { from: s.outage.from, to: s.outage.length === undefined ? undefined : s.outage.from + s.outage.length };
    });
    const root = made[0];
    const theSite: Site = { ...root, name: 'random site', supplyVoltage: explicitVoltage ? volts : undefined };
    return { site: theSite, stations, units, clockOffsetS, sessions, outages, samples };
  });

function connectedAt(scenario: Scenario, stationId: string, s: number): boolean {
  const outage = scenario.outages[stationId];
  return !outage || s < outage.from || (outage.to !== undefined && s >= outage.to);
}

interface Sent {
  round: number;
  allocation: IssuedAllocation;
  profile: InstalledProfile;
}

/** Runs the reference balancer over every round; returns what each connector was sent, in order. */
function runRounds(scenario: Scenario, plan: FailsafePlan): Map<string, Sent[]> {
  const specs = new Map(scenario.stations.map((s) => [s.stationId, s]));
  const sent = new Map<string, Sent[]>();
  const key = (stationId: string, connectorId: number) => `${stationId}#${connectorId}`;
  const sessionOf = new Map(scenario.sessions.map((s) => [key(s.stationId, s.connectorId), s]));
  const entries = flattenSite(scenario.site);

  for (const round of rounds) {
    const offline = Object.fromEntries(
      scenario.stations.filter((s) => !connectedAt(scenario, s.stationId, round)).map((s) => [s.stationId, at(scenario.outages[s.stationId].from)]),
    );
    const lastSent = [...sent.values()].map((list) => list[list.length - 1].allocation);
    const reserved = new Map(reservedForOffline(lastSent, offline, at(round), validForS).map((r) => [key(r.stationId, r.connectorId), r]));
    const allocating = scenario.sessions.filter((s) => connectedAt(scenario, s.stationId, round));

    // Instants in [round, round + validForS) where a limit or a reservation may change.
    const cuts = new Set<number>([round]);
    for (const { node } of entries) {
      for (const o of node.overrides ?? []) {
        for (const edge of [o.from, o.to]) {
          const s = (edge.getTime() - t0.getTime()) / 1000;
          if (s > round && s < round + validForS) cuts.add(s);
        }
      }
    }
    for (const r of reserved.values()) cuts.add((r.until.getTime() - t0.getTime()) / 1000);
    const starts = [...cuts].filter((s) => s < round + validForS);

    const fits = (factor: number): boolean => starts.every((from) => {
      const perStation = new Map<string, Load>();
      for (const spec of scenario.stations) {
        const fs = failsafeOf(plan, spec.stationId);
        const total = emptyLoad();
        for (const connector of spec.connectors) {
          const k = key(spec.stationId, connector.connectorId);
          const session = sessionOf.get(k);
          const reservation = reserved.get(k);
          if (session && connectedAt(scenario, spec.stationId, round)) {
            addInto(total, allocationLoad(spec, factor * session.demandW, session.phases));
          } else if (reservation && reservation.until.getTime() > at(from).getTime()) {
            addInto(total, allocationLoad(spec, reservation.powerW, reservation.phases));
          } else {
            addInto(total, defaultLoad(spec, fs));
          }
        }
        perStation.set(spec.stationId, total);
      }
      return entries.every(({ node, stations }) => {
        const load = emptyLoad();
        for (const id of stations) addInto(load, perStation.get(id)!);
        const { maxW, maxA } = limitOfNodeAt(node, at(from));
        return (maxW === undefined || load.W <= maxW + 1e-6) && (maxA === undefined || sitePhases.every((p) => load.A[p] <= maxA + 1e-6));
      });
    });

    if (!fits(0)) throw new Error(`reference balancer: nothing fits at round ${round}; the test model is wrong`);
    let factor = 0;
    if (fits(1)) factor = 1;
    else {
      let high = 1;
      for (let i = 0; i < 30; i++) {
        const mid = (factor + high) / 2;
        if (fits(mid)) factor = mid;
        else high = mid;
      }
    }

    for (const session of allocating) {
      const spec = specs.get(session.stationId)!;
      const fs = failsafeOf(plan, spec.stationId);
      const allocation: IssuedAllocation = {
        stationId: session.stationId,
        connectorId: session.connectorId,
        powerW: factor * session.demandW,
        phases: session.phases,
        issuedAt: at(round),
      };
      const profile = txProfileForAllocation(allocation, session, at(round), {
        validForS,
        unit: fs.unit,
        supplyVoltage: volts,
        chargingProfileId: 100 + session.connectorId,
        stackLevel: 1,
        clockSkewS,
        txDefault: { unit: fs.unit, limit: fs.defaultLimit },
      });
      const k = key(session.stationId, session.connectorId);
      sent.set(k, [...(sent.get(k) ?? []), { round, allocation, profile }]);
    }
  }
  return sent;
}

/** What each station holds at second s: its failsafe and, per connector, the last TxProfile it received. */
function holdingsAt(scenario: Scenario, plan: FailsafePlan, sent: Map<string, Sent[]>, s: number): Record<string, StationHoldings> {
  const holdings: Record<string, StationHoldings> = {};
  for (const spec of scenario.stations) {
    const fs = failsafeOf(plan, spec.stationId);
    const profiles: InstalledProfile[] = [fs.chargePointMax, fs.txDefault];
    const vehiclePhases: Record<number, 1 | 2 | 3> = {};
    const transactions = scenario.sessions.filter((x) => x.stationId === spec.stationId).map((x) => {
      if (spec.kind === 'AC') vehiclePhases[x.connectorId] = x.phases;
      const received = (sent.get(`${x.stationId}#${x.connectorId}`) ?? []).filter((e) => e.round <= s && connectedAt(scenario, x.stationId, e.round));
      if (received.length > 0) profiles.push(received[received.length - 1].profile);
      return { connectorId: x.connectorId, transactionId: x.transactionId, startTime: transactionStart };
    });
    holdings[spec.stationId] = { profiles, transactions, vehiclePhases, clockOffsetS: scenario.clockOffsetS[spec.stationId] };
  }
  return holdings;
}

/** Instants where a held profile starts or ends on some station's clock, and outages begin or end. */
function criticalInstants(scenario: Scenario, sent: Map<string, Sent[]>): number[] {
  const instants = new Set<number>();
  for (const list of sent.values()) {
    const last = list[list.length - 1];
    const offset = scenario.clockOffsetS[last.allocation.stationId];
    const start = (Date.parse(last.profile.profile.chargingSchedule.startSchedule!) - t0.getTime()) / 1000;
    for (const edge of [start, start + validForS, start + validForS + 2 * clockSkewS]) {
      for (const d of [-1, 0]) instants.add(edge - offset + d);
    }
  }
  for (const outage of Object.values(scenario.outages)) {
    instants.add(outage.from);
    if (outage.to !== undefined) instants.add(outage.to);
  }
  return [...instants].filter((s) => s >= 0 && s <= horizonS);
}

describe('the invariant: whatever stations drop off, and when, what all may draw stays within every limit', () => {
  it('holds at every sampled instant over random sites, stations, allocations, outages and clocks', () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        const plan = failsafeProfiles(scenario.site, scenario.stations, t0, {
          allowedUnits: scenario.units,
          horizonS,
          ...slots,
        });
        const sent = runRounds(scenario, plan);
        for (const s of [...scenario.samples, ...criticalInstants(scenario, sent)]) {
          const holdings = holdingsAt(scenario, plan, sent, s);
          const load = worstCaseLoad(scenario.site, scenario.stations, holdings, at(s));
          const over = load.nodes.filter((n) => !n.withinLimits);
          expect(over, `over a limit at ${s} s`).toEqual([]);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('connected stations are held to their allocation: what worstCaseLoad reports for them is what was allocated', () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer({ min: 0, max: rounds.length - 1 }), (scenario, roundIndex) => {
        const plan = failsafeProfiles(scenario.site, scenario.stations, t0, { allowedUnits: scenario.units, horizonS, ...slots });
        const sent = runRounds(scenario, plan);
        const round = rounds[roundIndex];
        const load = worstCaseLoad(scenario.site, scenario.stations, holdingsAt(scenario, plan, sent, round + clockSkewS), at(round + clockSkewS));
        for (const [, list] of sent) {
          const entry = list.find((e) => e.round === round);
          if (!entry || !connectedAt(scenario, entry.allocation.stationId, round)) continue;
          const drawn = load.connectors.find((c) => c.stationId === entry.allocation.stationId && c.connectorId === entry.allocation.connectorId)!;
          // Never above the allocation; below it only by the rounding to one decimal (0.1 A per phase, or 0.1 W).
          expect(drawn.powerW).toBeLessThanOrEqual(entry.allocation.powerW + 1e-6);
          expect(drawn.powerW).toBeGreaterThanOrEqual(entry.allocation.powerW - 0.1 * volts * 3 - 1e-6);
        }
      }),
      { numRuns: 60 },
    );
  });
});
