/**
 * The safe envelope: what keeps a site inside its limits when stations lose their connection
 * to the central system. Pure: every instant is an argument, there is no I/O and no clock.
 *
 * A charger that loses its connection keeps the profiles it holds (OCPP 1.6 §3.13.6): its
 * TxProfile for the running transaction, else its TxDefaultProfile, capped by its
 * ChargePointMaxProfile. So the envelope has three parts, each a function here:
 *
 * - `failsafeProfiles`: a TxDefaultProfile per station so small that every connector of the
 *   site charging at its default at once fits every node, plus a ChargePointMaxProfile at the
 *   station's physical limit.
 * - `txProfileForAllocation` / `renewalDueAt`: what the balancer grants above the default is
 *   sent as a TxProfile that ends on its own after `validForS`, renewed while connected.
 * - `reservedForOffline`: until an offline station's last allocation has surely ended, the
 *   balancer keeps counting it.
 *
 * `worstCaseLoad` / `envelopeHolds` check the result with the composite-schedule core: what
 * each connector may draw under the profiles it holds, summed per node and phase. The
 * argument why the three parts suffice, and its assumptions, are in docs/smart-charging.md,
 * "The safe envelope".
 */
import { limitAt, type ChargingSituation } from '../profiles/composite.js';
import {
  defaultSupplyVoltage,
  type ChargingProfile,
  type ChargingRateUnit,
  type InstalledProfile,
  type TransactionInfo,
} from '../profiles/model.js';
import {
  rotationOf,
  flattenSite,
  limitOfNodeAt,
  phases as sitePhases,
  type ConnectorElectrical,
  type Phase,
  type Site,
  type SiteNode,
  type StationElectricalSpec,
} from '../site/model.js';

/** IEC 61851: an AC vehicle offered less than this current per phase does not charge. */
export const acMinimumCurrentA = 6;

/**
 * How far back the failsafe's startSchedule is put. Any charger whose clock is within a day of
 * ours sees the profile as already started (OCPP-NOTES: a start in the future leaves a gap in
 * which the charger is unconstrained); the schedule has no duration, so nothing is lost.
 */
export const failsafeBackdateS = 86_400;

/** The id and stack level a profile is sent with; the dispatcher reuses them so that a new profile replaces the old one. */
export interface ProfileSlot {
  chargingProfileId: number;
  stackLevel: number;
}

export interface FailsafeOptions {
  /**
   * The unit each station accepts (ChargingScheduleAllowedChargingRateUnit), by station id.
   * Required for every station: a profile in a unit the station rejects would leave it with
   * no failsafe at all.
   */
  allowedUnits: Readonly<Record<string, ChargingRateUnit>>;
  /**
   * Seconds after `at` whose node limits the defaults must also respect: a curtailment that
   * begins while stations are offline must find their defaults already inside it. Infinity
   * takes every override that is known.
   */
  horizonS: number;
  chargePointMax: ProfileSlot;
  txDefault: ProfileSlot;
}

export interface StationFailsafe {
  stationId: string;
  /** On connector 0, at the station's physical maximum. */
  chargePointMax: InstalledProfile;
  /** On connector 0, so it is the default of every connector. */
  txDefault: InstalledProfile;
  unit: ChargingRateUnit;
  /** The TxDefaultProfile's limit, in `unit`. */
  defaultLimit: number;
  /** The most power one connector may draw under its default. */
  defaultPowerW: number;
  /** The current per phase a vehicle using all of the station's phases is offered under its default. */
  defaultCurrentA: number;
  /** AC only: that current is below 6 A, so such vehicles pause while the station is offline. */
  pausesAcCars: boolean;
  /** The node whose limit set the default (undefined when only the station's own maximum did). */
  limitingNodeId?: string;
}

export interface FailsafePlan {
  stations: StationFailsafe[];
  /** True when any station's default pauses AC vehicles: the site is too small for everyone to charge offline. */
  pausesAcCars: boolean;
}

/**
 * The failsafe of every station, sized so that all connectors of the site drawing their
 * default at once stay inside every node on every phase, with the node limits that hold at
 * any instant of [at, at + horizonS].
 *
 * Sizing (provable by summing, see docs/smart-charging.md): a node with a W limit gives each
 * connector beneath it an equal share; a node with an A limit gives, on each site phase, an
 * equal share to each connector beneath it that is wired to that phase. A station's default is
 * the smallest share along its path, turned into its unit so that no vehicle can exceed it:
 * in A, the current share per phase; in W, a one-phase vehicle puts all of the power on one
 * phase, so the power is also held to the current share × V.
 */
export function failsafeProfiles(
  site: Site,
  stations: readonly StationElectricalSpec[],
  at: Date,
  opts: FailsafeOptions,
): FailsafePlan {
  if (!(opts.horizonS >= 0)) throw new RangeError(`horizonS ${opts.horizonS} must be >= 0 (Infinity allowed)`);
  const voltage = site.supplyVoltage ?? defaultSupplyVoltage;
  const specs = stationsById(site, stations);
  const until = at.getTime() + opts.horizonS * 1000;

  // Per station, the smallest share of any node on its path, and which node gave it.
  const powerShare = new Map<string, Share>(stations.map((spec) => [spec.stationId, { value: Infinity }]));
  const currentShare = new Map<string, Share>(stations.map((spec) => [spec.stationId, { value: Infinity }]));

  for (const { node, stations: below } of flattenSite(site)) {
    const limits = nodeLimitsWithin(node, at.getTime(), until);
    const belowSpecs = below.map((id) => specs.get(id)!);
    if (limits.maxW !== undefined) {
      const connectors = belowSpecs.reduce((n, spec) => n + spec.connectors.length, 0);
      const share = connectors === 0 ? Infinity : limits.maxW / connectors;
      for (const spec of belowSpecs) lowerShare(powerShare, spec.stationId, share, node.id);
    }
    if (limits.maxA !== undefined) {
      for (const phase of sitePhases) {
        // Connectors wired to this site phase (each with its own rotation when it has one).
        const connectorsOn = (spec: StationElectricalSpec) => spec.connectors.filter((c) => sitePhasesOfConnector(spec, c.connectorId).includes(phase)).length;
        const wired = belowSpecs.filter((spec) => connectorsOn(spec) > 0);
        const connectors = wired.reduce((n, spec) => n + connectorsOn(spec), 0);
        const share = connectors === 0 ? Infinity : limits.maxA / connectors;
        for (const spec of wired) lowerShare(currentShare, spec.stationId, share, node.id);
      }
    }
  }

  const startSchedule = ocppDateTime(wholeSeconds(at.getTime()) - failsafeBackdateS * 1000);
  const planned = stations.map((spec): StationFailsafe => {
    const unit = opts.allowedUnits[spec.stationId];
    if (unit !== 'A' && unit !== 'W') {
      throw new RangeError(`no accepted charging rate unit (A or W) given for station ${spec.stationId}`);
    }
    const p = spec.phases;
    const power = powerShare.get(spec.stationId)!;
    const current = currentShare.get(spec.stationId)!;
    // What one connector may draw, each bound turned into the station's unit for the worst
    // vehicle: in A the limit holds per phase whatever the vehicle; in W an AC vehicle on one
    // phase draws all of it there (DC draws balanced over the station's phases).
    const currentToPower = spec.kind === 'AC' ? voltage : voltage * p;
    const candidates = unit === 'A'
      ? [
        current,
        { value: power.value / (voltage * p), nodeId: power.nodeId },
        { value: spec.maxPowerW / (voltage * p), nodeId: undefined },
      ]
      : [
        power,
        { value: current.value * currentToPower, nodeId: current.nodeId },
        { value: spec.maxPowerW, nodeId: undefined },
      ];
    const binding = candidates.reduce((a, b) => (b.value < a.value ? b : a));
    const defaultLimit = floorToTenth(binding.value);
    const defaultPowerW = unit === 'A' ? defaultLimit * voltage * p : defaultLimit;
    const defaultCurrentA = unit === 'A' ? defaultLimit : defaultLimit / (voltage * p);
    const capLimit = floorToTenth(unit === 'A' ? spec.maxPowerW / (voltage * p) : spec.maxPowerW);
    return {
      stationId: spec.stationId,
      chargePointMax: {
        connectorId: 0,
        profile: absoluteProfile('ChargePointMaxProfile', opts.chargePointMax, startSchedule, unit, capLimit, p),
      },
      txDefault: {
        connectorId: 0,
        profile: absoluteProfile('TxDefaultProfile', opts.txDefault, startSchedule, unit, defaultLimit, p),
      },
      unit,
      defaultLimit,
      defaultPowerW,
      defaultCurrentA,
      pausesAcCars: spec.kind === 'AC' && defaultCurrentA < acMinimumCurrentA,
      limitingNodeId: binding.nodeId,
    };
  });
  return { stations: planned, pausesAcCars: planned.some((s) => s.pausesAcCars) };
}

export interface Allocation {
  powerW: number;
  /** Phases the vehicle charges with (DC: 3). */
  phases: 1 | 2 | 3;
}

export interface TxProfileOptions {
  /** Seconds the allocation is granted for; after that the station is back within its failsafe default. */
  validForS: number;
  unit: ChargingRateUnit;
  supplyVoltage: number;
  chargingProfileId: number;
  stackLevel: number;
  /**
   * How far a station's clock may differ from ours, either way. The profile starts that much
   * earlier (a station whose clock lags must not see a not-yet-started profile and fall to its
   * default at each renewal) and holds the allocation only up to its default for twice that
   * long at its end (see below). 0 gives the plain profile: start now, one period, validForS.
   */
  clockSkewS: number;
  /** The station's TxDefaultProfile (StationFailsafe.unit and defaultLimit): the most its last period grants. */
  txDefault: { unit: ChargingRateUnit; limit: number };
  /**
   * A plan for the session: power (W) from each offset (s after `now`, increasing). Where it is
   * below the allocation the profile follows it; it never raises a period above the allocation,
   * so the profile grants no more than txProfileForAllocation without a plan would.
   */
  plan?: ReadonlyArray<{ offsetS: number; powerW: number }>;
}

/**
 * A TxProfile that grants the allocation from `now` for `validForS` seconds, so that a station
 * which stops hearing from us is back within its failsafe on its own: by `now + validForS` (our
 * clock; txProfileExpiresAt) it draws no more than its default, whatever its clock says.
 *
 * Shape, with S = clockSkewS: startSchedule = now - S; period 0 grants the allocation; period
 * validForS grants min(allocation, default); duration validForS + 2S. Why the tail: a station
 * drawing below its default lends the difference to others, and takes it back when its profile
 * ends. With skewed clocks a lender whose clock runs ahead would end early while a borrower whose
 * clock lags still draws its larger allocation. The tail makes every borrower give back (at
 * station time now - S + validForS, i.e. by now + validForS in ours) before any lender can
 * take back (its profile runs until station time now + validForS + S, i.e. at least until
 * now + validForS in ours).
 *
 * Limits are rounded down to the one decimal OCPP allows, so the station never gets more than
 * allocated; `now` is truncated to the whole second, so nothing ends later than computed.
 */
export function txProfileForAllocation(
  allocation: Allocation,
  transaction: { transactionId: number; connectorId: number },
  now: Date,
  opts: TxProfileOptions,
): InstalledProfile {
  checkValidFor(opts.validForS);
  if (!Number.isInteger(opts.clockSkewS) || opts.clockSkewS < 0) {
    throw new RangeError(`clockSkewS ${opts.clockSkewS} must be a whole number of seconds >= 0`);
  }
  if (!(allocation.powerW >= 0) || !Number.isFinite(allocation.powerW)) {
    throw new RangeError(`allocation powerW ${allocation.powerW} must be a finite number >= 0`);
  }
  if (![1, 2, 3].includes(allocation.phases)) throw new RangeError(`allocation phases ${allocation.phases} must be 1, 2 or 3`);
  if (!Number.isInteger(transaction.connectorId) || transaction.connectorId < 1) {
    throw new RangeError(`a TxProfile needs a connector > 0, not ${transaction.connectorId}`);
  }
  const { unit, supplyVoltage: voltage, clockSkewS: skew } = opts;
  const k = allocation.phases;
  const limit = floorToTenth(unit === 'A' ? allocation.powerW / (voltage * k) : allocation.powerW);
  // The default in this profile's unit, for a vehicle on k phases: never more per phase, nor in total.
  const fallback = opts.txDefault.unit === unit
    ? opts.txDefault.limit
    : floorToTenth(unit === 'W' ? opts.txDefault.limit * voltage * k : opts.txDefault.limit / (voltage * k));
  const inUnit = (powerW: number) => floorToTenth(unit === 'A' ? powerW / (voltage * k) : powerW);
  const periods = [{ startPeriod: 0, limit, numberPhases: k }];
  for (const step of opts.plan ?? []) {
    // On a station whose clock agrees with ours, the plan's step lands on its own instant.
    // What holds at once is the allocation itself (the caller caps it by the plan).
    if (!(step.offsetS > 0) || !(step.powerW >= 0)) continue;
    const startPeriod = Math.round(step.offsetS) + skew;
    if (startPeriod >= opts.validForS) continue;
    const planned = Math.min(limit, inUnit(step.powerW));
    const last = periods[periods.length - 1]!;
    if (startPeriod <= last.startPeriod) continue;
    if (planned !== last.limit) periods.push({ startPeriod, limit: planned, numberPhases: k });
  }
  const lastLimit = periods[periods.length - 1]!.limit;
  const tailLimit = Math.min(lastLimit, fallback);
  if (skew > 0 && tailLimit < lastLimit) periods.push({ startPeriod: opts.validForS, limit: tailLimit, numberPhases: k });
  return {
    connectorId: transaction.connectorId,
    profile: {
      chargingProfileId: opts.chargingProfileId,
      transactionId: transaction.transactionId,
      stackLevel: opts.stackLevel,
      chargingProfilePurpose: 'TxProfile',
      chargingProfileKind: 'Absolute',
      chargingSchedule: {
        startSchedule: ocppDateTime(wholeSeconds(now.getTime()) - skew * 1000),
        duration: opts.validForS + 2 * skew,
        chargingRateUnit: unit,
        chargingSchedulePeriod: periods,
      },
    },
  };
}

/**
 * From this instant (our clock) a station that was sent txProfileForAllocation(…, issuedAt, …)
 * draws no more than its default, whatever its clock (within clockSkewS). Before it, the
 * allocation may still be in force.
 */
export function txProfileExpiresAt(issuedAt: Date, validForS: number): Date {
  checkValidFor(validForS);
  return new Date(wholeSeconds(issuedAt.getTime()) + validForS * 1000);
}

/**
 * When to send the next TxProfile. marginS must cover twice the clock skew (a station whose
 * clock runs ahead reaches the last period that much earlier) plus the time a
 * SetChargingProfile takes, so that a connected station never drops to its default between two.
 */
export function renewalDueAt(issuedAt: Date, validForS: number, marginS: number): Date {
  checkValidFor(validForS);
  if (!(marginS >= 0 && marginS < validForS)) {
    throw new RangeError(`marginS ${marginS} must be >= 0 and below validForS ${validForS}`);
  }
  return new Date(txProfileExpiresAt(issuedAt, validForS).getTime() - marginS * 1000);
}

/** An allocation as sent to a station in a TxProfile. */
export interface IssuedAllocation extends Allocation {
  stationId: string;
  connectorId: number;
  /** The `now` the TxProfile was made with. */
  issuedAt: Date;
}

/** Power the balancer must keep counting for a connector of an offline station; shaped like the balancer's ReservedPower. */
export interface OfflineReservation {
  stationId: string;
  connectorId: number;
  powerW: number;
  phases: 1 | 2 | 3;
  /** From this instant (our clock) the station draws no more than its default on this connector. */
  until: Date;
}

/**
 * The allocations of stations that lost their connection whose TxProfile may still grant them
 * at `now`: each until txProfileExpiresAt (the clock-skew margin is inside the profile, see
 * txProfileForAllocation). From `until` on, the balancer counts the connector at its default.
 *
 * `lastAllocations` holds every TxProfile a station may hold: the last one it confirmed and,
 * when a SetChargingProfile was unanswered when the connection dropped, that one too (each is
 * then reserved: the station holds one of them, we cannot know which). A station is offline
 * from its `disconnectedAt` on; remove it from that record when it is back.
 */
export function reservedForOffline(
  lastAllocations: readonly IssuedAllocation[],
  disconnectedAt: Readonly<Record<string, Date>>,
  now: Date,
  validForS: number,
): OfflineReservation[] {
  const reserved: OfflineReservation[] = [];
  for (const issued of lastAllocations) {
    const lost = disconnectedAt[issued.stationId];
    if (lost === undefined || lost.getTime() > now.getTime()) continue;
    const until = txProfileExpiresAt(issued.issuedAt, validForS);
    if (until.getTime() <= now.getTime()) continue;
    reserved.push({ stationId: issued.stationId, connectorId: issued.connectorId, powerW: issued.powerW, phases: issued.phases, until });
  }
  return reserved;
}

/** What a station holds: the profiles it was sent and accepted, and its running transactions. */
export interface StationHoldings {
  profiles: readonly InstalledProfile[];
  transactions: readonly TransactionInfo[];
  /**
   * Phases the vehicle of a running transaction draws on, by connector, where known from
   * measurements. Without it any vehicle the station can serve is assumed, which matters for
   * limits in W: a one-phase vehicle puts all of the power on one phase.
   */
  vehiclePhases?: Readonly<Record<number, 1 | 2 | 3>>;
  /** How far the station's clock runs ahead of ours (negative: behind); it applies its profiles at its own time. */
  clockOffsetS?: number;
}

export type PhaseCurrents = Record<Phase, number>;

export interface ConnectorLoad {
  stationId: string;
  connectorId: number;
  /** The most power the connector may draw. */
  powerW: number;
  /** The most current it may draw on each site phase (each phase on its own: not all at once for every vehicle). */
  currentA: PhaseCurrents;
}

export interface NodeLoad {
  nodeId: string;
  powerW: number;
  currentA: PhaseCurrents;
  /** The node's limits at the instant. */
  maxW?: number;
  maxA?: number;
  withinLimits: boolean;
}

export interface SiteLoad {
  connectors: ConnectorLoad[];
  nodes: NodeLoad[];
}

/**
 * Tolerance of the limit check, in W or A: sums of shares of a limit differ from it by float
 * rounding only (a micro-ampere is far below any meter's resolution).
 */
export const limitTolerance = 1e-6;

/**
 * The most every connector may draw at `t` under the profiles its station holds (per the
 * composite-schedule core: TxProfile while it runs, else TxDefaultProfile, capped by the
 * ChargePointMaxProfile; unconstrained means the physical maximum), and the resulting worst
 * load on every node and phase. Bounds per connector are taken over every vehicle the
 * connector could serve, each phase separately, so a node's phase load is the most that
 * phase can carry, not a load all phases carry at once.
 */
export function worstCaseLoad(
  site: Site,
  stations: readonly StationElectricalSpec[],
  holdings: Readonly<Record<string, StationHoldings>>,
  t: Date,
): SiteLoad {
  const voltage = site.supplyVoltage ?? defaultSupplyVoltage;
  // Checked for its errors only: every station must sit exactly once in the tree.
  stationsById(site, stations);
  const connectors: ConnectorLoad[] = [];
  const byStation = new Map<string, { powerW: number; currentA: PhaseCurrents }>();

  for (const spec of stations) {
    const held = holdings[spec.stationId] ?? { profiles: [], transactions: [] };
    const situation: ChargingSituation = {
      station: {
        connectors: Math.max(0, ...spec.connectors.map((c) => c.connectorId)),
        supplyVoltage: voltage,
        defaultNumberPhases: spec.phases,
      },
      profiles: held.profiles,
      transactions: held.transactions,
    };
    const stationTime = new Date(t.getTime() + (held.clockOffsetS ?? 0) * 1000);
    const stationLoad = { powerW: 0, currentA: zeroCurrents() };
    for (const connector of spec.connectors) {
      const bound = connectorBound(spec, connector, situation, stationTime, voltage, held.vehiclePhases?.[connector.connectorId]);
      const currentA = zeroCurrents();
      bound.stationPhaseCurrentA.forEach((amps, index) => {
        if (index < spec.phases) currentA[rotationOf(spec, connector.connectorId)[index]] += amps;
      });
      connectors.push({ stationId: spec.stationId, connectorId: connector.connectorId, powerW: bound.powerW, currentA });
      stationLoad.powerW += bound.powerW;
      for (const phase of sitePhases) stationLoad.currentA[phase] += currentA[phase];
    }
    // However its connectors are limited, a station cannot draw more than it is built for.
    stationLoad.powerW = Math.min(stationLoad.powerW, spec.maxPowerW);
    byStation.set(spec.stationId, stationLoad);
  }

  const nodes = flattenSite(site).map(({ node, stations: below }): NodeLoad => {
    const load = { powerW: 0, currentA: zeroCurrents() };
    for (const id of below) {
      const stationLoad = byStation.get(id)!;
      load.powerW += stationLoad.powerW;
      for (const phase of sitePhases) load.currentA[phase] += stationLoad.currentA[phase];
    }
    const { maxW, maxA } = limitOfNodeAt(node, t);
    const withinLimits = (maxW === undefined || load.powerW <= maxW + limitTolerance)
      && (maxA === undefined || sitePhases.every((phase) => load.currentA[phase] <= maxA + limitTolerance));
    return { nodeId: node.id, powerW: load.powerW, currentA: load.currentA, maxW, maxA, withinLimits };
  });
  return { connectors, nodes };
}

/** True when, at `t`, no node of the site can be over any of its limits on any phase. */
export function envelopeHolds(
  site: Site,
  stations: readonly StationElectricalSpec[],
  holdings: Readonly<Record<string, StationHoldings>>,
  t: Date,
): boolean {
  return worstCaseLoad(site, stations, holdings, t).nodes.every((node) => node.withinLimits);
}

/**
 * The most one connector may draw at stationTime, in total and on each of the station's
 * phases (index 0 = the station's L1). A vehicle with m phases uses the station's L1..Lm
 * (IEC 62196 type 2: a one-phase car charges on L1); the bound on each phase is the largest
 * over every m the connector could serve.
 */
function connectorBound(
  spec: StationElectricalSpec,
  connector: ConnectorElectrical,
  situation: ChargingSituation,
  stationTime: Date,
  voltage: number,
  vehiclePhases: 1 | 2 | 3 | undefined,
): { powerW: number; stationPhaseCurrentA: number[] } {
  const p = spec.phases;
  // DC draws balanced from all the station's phases whatever the vehicle.
  const candidates = spec.kind === 'DC' ? [p] : vehiclePhases !== undefined ? [Math.min(vehiclePhases, p)] : range(1, p);
  let powerW = 0;
  const stationPhaseCurrentA = [0, 0, 0];
  for (const m of candidates) {
    const inA = limitAt(situation, connector.connectorId, stationTime, { chargingRateUnit: 'A', numberPhases: m });
    const inW = limitAt(situation, connector.connectorId, stationTime, { chargingRateUnit: 'W', numberPhases: m });
    let used = m;
    let current = Infinity;
    let power = Infinity;
    if (inA.constrained) {
      // A period's numberPhases says how many phases the station lets the vehicle use.
      used = Math.min(m, inA.numberPhases);
      power = inW.limit;
      if (inA.numberPhases !== m) {
        // Only an A limit carries its own phase count: the current is exact.
        current = inA.limit;
      } else {
        // The core rounds a W limit converted to A down to 0.1 A, but the vehicle may draw the
        // unrounded current. When the A value is within 0.1 A of W / (V·m) it may come from a
        // W limit, so take the larger; where an A and a W limit are within 0.1 A of each other
        // this errs by less than 0.1 A on the safe side.
        const fromPower = inW.limit / (voltage * m);
        current = fromPower < inA.limit + 0.1 ? Math.max(inA.limit, fromPower) : inA.limit;
      }
    }
    current = Math.min(current, connector.maxCurrentA ?? Infinity, connector.maxPowerW / (voltage * used));
    power = Math.min(power, current * voltage * used, connector.maxPowerW);
    powerW = Math.max(powerW, power);
    for (let phase = 0; phase < used; phase++) stationPhaseCurrentA[phase] = Math.max(stationPhaseCurrentA[phase], current);
  }
  return { powerW, stationPhaseCurrentA };
}

/** The lowest W and A limits a node has at any instant of [from, to] (ms): its base limit and every override that overlaps. */
export function nodeLimitsWithin(node: SiteNode, from: number, to: number): { maxW?: number; maxA?: number } {
  const overlapping = (node.overrides ?? []).filter((o) => o.from.getTime() <= to && o.to.getTime() > from);
  // limitOfNodeAt is the one definition of how limits combine; asking it at each overlapping
  // override's start (or at `from` if it began earlier) and at `from` covers every value taken.
  const instants = [from, ...overlapping.map((o) => Math.max(from, o.from.getTime()))];
  const result: { maxW?: number; maxA?: number } = {};
  for (const instant of instants) {
    const at = limitOfNodeAt(node, new Date(instant));
    if (at.maxW !== undefined) result.maxW = Math.min(result.maxW ?? Infinity, at.maxW);
    if (at.maxA !== undefined) result.maxA = Math.min(result.maxA ?? Infinity, at.maxA);
  }
  return result;
}

/** The site phases a connector draws from: on a one-phase station the one its L1 is wired to, else all three. */
function sitePhasesOfConnector(spec: StationElectricalSpec, connectorId: number): Phase[] {
  return rotationOf(spec, connectorId).slice(0, spec.phases);
}

/**
 * Every station must sit exactly once in the tree and every station in the tree must be
 * described: a station outside the tree, or unknown to the sizing, would draw from some node
 * without its default having been counted there.
 */
function stationsById(site: Site, stations: readonly StationElectricalSpec[]): Map<string, StationElectricalSpec> {
  const specs = new Map<string, StationElectricalSpec>();
  for (const spec of stations) {
    if (specs.has(spec.stationId)) throw new RangeError(`station ${spec.stationId} is described twice`);
    specs.set(spec.stationId, spec);
  }
  const placed = flattenSite(site)[0].stations;
  const seen = new Set<string>();
  for (const id of placed) {
    if (seen.has(id)) throw new RangeError(`station ${id} appears more than once in site ${site.id}`);
    if (!specs.has(id)) throw new RangeError(`station ${id} of site ${site.id} has no electrical description`);
    seen.add(id);
  }
  for (const id of specs.keys()) {
    if (!seen.has(id)) throw new RangeError(`station ${id} is not in site ${site.id}`);
  }
  return specs;
}

interface Share {
  value: number;
  nodeId?: string;
}

function lowerShare(shares: Map<string, Share>, stationId: string, value: number, nodeId: string): void {
  if (value < shares.get(stationId)!.value) shares.set(stationId, { value, nodeId });
}

function absoluteProfile(
  purpose: 'ChargePointMaxProfile' | 'TxDefaultProfile',
  slot: ProfileSlot,
  startSchedule: string,
  unit: ChargingRateUnit,
  limit: number,
  numberPhases: number,
): ChargingProfile {
  return {
    chargingProfileId: slot.chargingProfileId,
    stackLevel: slot.stackLevel,
    chargingProfilePurpose: purpose,
    chargingProfileKind: 'Absolute',
    chargingSchedule: {
      startSchedule,
      chargingRateUnit: unit,
      chargingSchedulePeriod: [{ startPeriod: 0, limit, numberPhases }],
    },
  };
}

function checkValidFor(validForS: number): void {
  if (!Number.isInteger(validForS) || validForS <= 0) {
    throw new RangeError(`validForS ${validForS} must be a positive whole number of seconds`);
  }
}

/** Down to the one decimal OCPP allows, never above the value (the epsilon absorbs binary error of exact tenths). */
function floorToTenth(value: number): number {
  if (value === Infinity) throw new RangeError('no limit constrains the value to be rounded');
  return Math.max(0, Math.floor(value * 10 + 1e-9) / 10);
}

function wholeSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/** OCPP dateTime in UTC without fractional seconds. */
function ocppDateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function zeroCurrents(): PhaseCurrents {
  return { L1: 0, L2: 0, L3: 0 };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
