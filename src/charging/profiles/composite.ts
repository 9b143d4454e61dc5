/**
 * The composite schedule of OCPP 1.6 (§3.13, GetCompositeSchedule): the limit a
 * conforming charger applies on a connector over time, given the profiles it holds and
 * the transactions running on it. Pure: the time of the question is an argument, there
 * is no I/O and no clock. The semantics and every choice the specification leaves open
 * are written down in docs/smart-charging.md; the comments here say why the code is
 * shaped the way it is.
 *
 * Time is handled in whole seconds since the epoch (OCPP schedules count whole
 * seconds); sub-second parts of the inputs are dropped.
 */
import {
  resolveStation,
  parseOcppDateTime,
  type ChargingProfile,
  type ChargingRateUnit,
  type ChargingSchedulePeriod,
  type InstalledProfile,
  type ResolvedStationElectrical,
  type StationElectrical,
  type TransactionInfo,
} from './model.js';
import { profileShapeProblems } from './validate.js';

/** What a charger knows at the moment it is asked: its electrics, its profiles, its transactions. */
export interface ChargingSituation {
  station: StationElectrical;
  /** Profiles in the order they were installed; see installProfile for how later ones replace earlier ones. */
  profiles: readonly InstalledProfile[];
  /** Running transactions, at most one per connector (if more are given the latest start governs). */
  transactions: readonly TransactionInfo[];
}

/** GetCompositeSchedule.req, with the time of the request made explicit. */
export interface CompositeRequest {
  /** 0 asks for the whole charge point. */
  connectorId: number;
  startTime: Date;
  /** Seconds. */
  duration: number;
  /** Default 'W': total power is unambiguous and sums across connectors. */
  chargingRateUnit?: ChargingRateUnit;
  /**
   * Phases the vehicle on this connector charges with; default station.defaultNumberPhases.
   * Used to turn a limit in W into A per phase, and to size the unconstrained fill.
   */
  numberPhases?: number;
}

export interface CompositeInput extends ChargingSituation {
  request: CompositeRequest;
}

export interface CompositePeriod {
  /** Seconds from scheduleStart. */
  startPeriod: number;
  /** In the schedule's unit, rounded down to one decimal. */
  limit: number;
  /** Always present: the phase count that belongs with the limit (see docs/smart-charging.md). */
  numberPhases: number;
  /**
   * False for a stretch no profile constrains: `limit` is then the unconstrained fill, which a
   * charger must put on the wire (OCPP needs a number) and `ampyard composite` leaves out.
   */
  constrained: boolean;
}

export interface CompositeSchedule {
  chargingRateUnit: ChargingRateUnit;
  /** The requested duration, always: the periods cover all of it. */
  duration: number;
  /** Contiguous from 0 to duration; a new period wherever limit or numberPhases changes. */
  chargingSchedulePeriod: CompositePeriod[];
}

export interface AcceptedComposite {
  status: 'Accepted';
  connectorId: number;
  scheduleStart: Date;
  chargingSchedule: CompositeSchedule;
  /**
   * OCPP cannot say "no limit" inside a schedule, so a stretch where no profile
   * constrains is reported at this limit: the connector's rated current
   * (StationElectrical.connectorMaxCurrent) in the schedule's unit, or the sum over all
   * connectors for connector 0. Not part of GetCompositeSchedule.conf.
   */
  unconstrainedLimit: number;
}

export interface RejectedComposite {
  status: 'Rejected';
  reason: string;
}

export type CompositeResult = AcceptedComposite | RejectedComposite;

/**
 * Installs a profile the way an OCPP 1.6 charger does (§5.16.1 / SetChargingProfile): it
 * replaces an installed profile with the same chargingProfileId (on any connector) and one
 * with the same connector, purpose and stackLevel. Two profiles with one stackLevel can
 * therefore never tile time one after the other: the second replaces the first.
 */
export function installProfile(installed: readonly InstalledProfile[], incoming: InstalledProfile): InstalledProfile[] {
  const kept = installed.filter(
    ({ connectorId, profile }) =>
      profile.chargingProfileId !== incoming.profile.chargingProfileId
      && !(
        connectorId === incoming.connectorId
        && profile.chargingProfilePurpose === incoming.profile.chargingProfilePurpose
        && profile.stackLevel === incoming.profile.stackLevel
      ),
  );
  return [...kept, incoming];
}

/** What the charger must report in GetCompositeSchedule.conf for this request. */
export function compositeSchedule(input: CompositeInput): CompositeResult {
  const station = resolveStation(input.station);
  const { request } = input;
  const reason = requestProblem(station, request);
  if (reason !== undefined) return { status: 'Rejected', reason };

  const unit = request.chargingRateUnit ?? 'W';
  const phases = request.numberPhases ?? station.defaultNumberPhases;
  const from = toSeconds(request.startTime.getTime());
  const to = from + request.duration;
  const evaluator = new SituationEvaluator(input, station, from, unit, phases);

  const instants = new Set<number>([from]);
  for (const placed of evaluator.allPlaced()) {
    for (const instant of changeInstants(placed, from, to)) {
      if (instant > from && instant < to) instants.add(instant);
    }
  }
  // Between two consecutive change instants nothing can change, so the value at the
  // first instant holds for the whole stretch.
  const periods: CompositePeriod[] = [];
  for (const instant of [...instants].sort((a, b) => a - b)) {
    const value = evaluator.valueAt(request.connectorId, instant);
    const previous = periods[periods.length - 1];
    if (previous && previous.limit === value.limit && previous.numberPhases === value.numberPhases && previous.constrained === value.constrained) continue;
    periods.push({ startPeriod: instant - from, limit: value.limit, numberPhases: value.numberPhases, constrained: value.constrained });
  }

  return {
    status: 'Accepted',
    connectorId: request.connectorId,
    scheduleStart: new Date(from * 1000),
    chargingSchedule: { chargingRateUnit: unit, duration: request.duration, chargingSchedulePeriod: periods },
    unconstrainedLimit: evaluator.unconstrainedTenths(request.connectorId) / 10,
  };
}

export interface LimitAtOptions {
  /** Default 'W'. */
  chargingRateUnit?: ChargingRateUnit;
  /** Default station.defaultNumberPhases; as CompositeRequest.numberPhases. */
  numberPhases?: number;
  /**
   * Where a Relative profile starts on a connector without a transaction (and for a
   * relative ChargePointMaxProfile); default t itself, i.e. "as if charging began now".
   */
  relativeStart?: Date;
}

export interface InstantLimit {
  chargingRateUnit: ChargingRateUnit;
  limit: number;
  numberPhases: number;
  /** False when no profile constrains and limit is the unconstrained fill. */
  constrained: boolean;
}

/** How much a connector (or, for 0, the whole charge point) may draw at instant t. */
export function limitAt(
  situation: ChargingSituation,
  connectorId: number,
  t: Date,
  options: LimitAtOptions = {},
): InstantLimit {
  const station = resolveStation(situation.station);
  const unit = options.chargingRateUnit ?? 'W';
  const request: CompositeRequest = { connectorId, startTime: t, duration: 1, chargingRateUnit: unit, numberPhases: options.numberPhases };
  const reason = requestProblem(station, request);
  if (reason !== undefined) throw new RangeError(reason);
  const relativeStart = toSeconds((options.relativeStart ?? t).getTime());
  const phases = options.numberPhases ?? station.defaultNumberPhases;
  const evaluator = new SituationEvaluator(situation, station, relativeStart, unit, phases);
  const value = evaluator.valueAt(connectorId, toSeconds(t.getTime()));
  return { chargingRateUnit: unit, ...value };
}

function requestProblem(station: ResolvedStationElectrical, request: CompositeRequest): string | undefined {
  if (!Number.isInteger(station.connectors) || station.connectors < 0) {
    return `the station's number of connectors ${station.connectors} is not a whole number >= 0`;
  }
  if (!Number.isInteger(request.connectorId) || request.connectorId < 0 || request.connectorId > station.connectors) {
    return `connectorId ${request.connectorId} is outside 0..${station.connectors}`;
  }
  if (!(request.startTime instanceof Date) || Number.isNaN(request.startTime.getTime())) {
    return 'startTime is not a valid date';
  }
  if (!Number.isInteger(request.duration) || request.duration <= 0) {
    return `duration ${request.duration} is not a positive whole number of seconds`;
  }
  if (request.chargingRateUnit !== undefined && request.chargingRateUnit !== 'A' && request.chargingRateUnit !== 'W') {
    return `chargingRateUnit ${String(request.chargingRateUnit)} is neither A nor W`;
  }
  if (request.numberPhases !== undefined && ![1, 2, 3].includes(request.numberPhases)) {
    return `numberPhases ${request.numberPhases} is not 1, 2 or 3`;
  }
  return undefined;
}

const secondsPerRecurrence = { Daily: 86_400, Weekly: 604_800 } as const;

/** A profile fixed on the time line for one connector: every instant resolved to seconds. */
interface PlacedProfile {
  stackLevel: number;
  /** A TxDefaultProfile installed on the connector itself beats one on connector 0 at equal stackLevel. */
  onConnector: boolean;
  unit: ChargingRateUnit;
  periods: readonly ChargingSchedulePeriod[];
  validFrom: number;
  validTo: number;
  /** A TxProfile only governs while its transaction runs. */
  notBefore: number;
  /** Start of the schedule, or for a recurring one the start of any one occurrence. */
  anchor: number;
  recurrence: number | undefined;
  /** How long one occurrence lasts: duration, cut at the recurrence. */
  span: number;
}

/** A limit converted to the requested unit, in tenths so that sums and comparisons are exact. */
interface Constraint {
  tenths: number;
  numberPhases: number;
}

function place(
  profile: ChargingProfile,
  onConnector: boolean,
  relativeAnchor: number,
  notBefore: number,
): PlacedProfile {
  const schedule = profile.chargingSchedule;
  const startSchedule = parseOcppDateTime(schedule.startSchedule);
  const validFrom = parseOcppDateTime(profile.validFrom);
  const validTo = parseOcppDateTime(profile.validTo);
  const recurrence = profile.chargingProfileKind === 'Recurring' && profile.recurrencyKind
    ? secondsPerRecurrence[profile.recurrencyKind]
    : undefined;
  // A Relative profile ignores any startSchedule it carries: it starts with the transaction.
  const anchor = profile.chargingProfileKind === 'Relative' || startSchedule === undefined
    ? relativeAnchor
    : toSeconds(startSchedule);
  return {
    stackLevel: profile.stackLevel,
    onConnector,
    unit: schedule.chargingRateUnit,
    periods: schedule.chargingSchedulePeriod,
    validFrom: validFrom === undefined ? -Infinity : toSeconds(validFrom),
    validTo: validTo === undefined ? Infinity : toSeconds(validTo),
    notBefore,
    anchor,
    recurrence,
    span: Math.min(schedule.duration ?? Infinity, recurrence ?? Infinity),
  };
}

/** Start of the occurrence that covers t (for a recurring profile the latest one not after t). */
function occurrenceStart(placed: PlacedProfile, t: number): number {
  if (placed.recurrence === undefined) return placed.anchor;
  return placed.anchor + Math.floor((t - placed.anchor) / placed.recurrence) * placed.recurrence;
}

/** The period of this profile in force at t, or undefined where the profile does not apply. */
function periodAt(placed: PlacedProfile, t: number): ChargingSchedulePeriod | undefined {
  if (t < placed.validFrom || t >= placed.validTo || t < placed.notBefore) return undefined;
  const offset = t - occurrenceStart(placed, t);
  if (offset < 0 || offset >= placed.span) return undefined;
  let inForce: ChargingSchedulePeriod | undefined;
  for (const period of placed.periods) {
    if (period.startPeriod > offset) break;
    inForce = period;
  }
  return inForce;
}

/** Every instant in [from, to) at which periodAt(placed, ·) may change value. */
function changeInstants(placed: PlacedProfile, from: number, to: number): number[] {
  const instants = [placed.validFrom, placed.validTo, placed.notBefore];
  const starts: number[] = [];
  if (placed.recurrence === undefined) {
    starts.push(placed.anchor);
  } else {
    // The occurrence covering `from` may have begun before it; include it for its later periods.
    for (let start = occurrenceStart(placed, from); start < to; start += placed.recurrence) starts.push(start);
  }
  for (const start of starts) {
    instants.push(start, start + placed.span);
    for (const period of placed.periods) instants.push(start + period.startPeriod);
  }
  return instants.filter((instant) => Number.isFinite(instant) && instant >= from && instant < to);
}

/** The profiles of a situation placed on the time line, and the rules that combine them. */
class SituationEvaluator {
  private readonly chargePointMax: PlacedProfile[] = [];
  private readonly txDefault = new Map<number, PlacedProfile[]>();
  private readonly txProfile = new Map<number, PlacedProfile[]>();

  constructor(
    situation: ChargingSituation,
    private readonly station: ResolvedStationElectrical,
    relativeStart: number,
    private readonly unit: ChargingRateUnit,
    private readonly requestPhases: number,
  ) {
    const running = runningTransactions(situation.transactions);
    // A charger never holds a profile it would have rejected, and installing in order
    // applies the replacement rules; so the input is normalised the same way.
    const installed = situation.profiles
      .filter(({ connectorId, profile }) => profileShapeProblems(connectorId, profile, station.connectors).length === 0)
      .reduce<InstalledProfile[]>(installProfile, []);

    for (let connector = 1; connector <= station.connectors; connector++) {
      this.txDefault.set(connector, []);
      this.txProfile.set(connector, []);
    }
    for (const { connectorId, profile } of installed) {
      switch (profile.chargingProfilePurpose) {
        case 'ChargePointMaxProfile':
          this.chargePointMax.push(place(profile, false, relativeStart, -Infinity));
          break;
        case 'TxDefaultProfile': {
          // On connector 0 the profile applies to every connector, each with its own transaction start.
          const connectors = connectorId === 0 ? [...this.txDefault.keys()] : [connectorId];
          for (const connector of connectors) {
            const anchor = running.get(connector)?.startSeconds ?? relativeStart;
            this.txDefault.get(connector)!.push(place(profile, connectorId !== 0, anchor, -Infinity));
          }
          break;
        }
        case 'TxProfile': {
          const transaction = running.get(connectorId);
          if (!transaction) break;
          if (profile.transactionId !== undefined && profile.transactionId !== transaction.transactionId) break;
          const start = transaction.startSeconds;
          this.txProfile.get(connectorId)!.push(place(profile, true, start, start));
          break;
        }
      }
    }
  }

  allPlaced(): PlacedProfile[] {
    return [this.chargePointMax, ...this.txDefault.values(), ...this.txProfile.values()].flat();
  }

  /** The fill for a stretch nobody constrains: the rated current of the connector(s), in the requested unit. */
  unconstrainedTenths(connectorId: number): number {
    const perConnector = this.convert(this.station.connectorMaxCurrent, 'A', this.requestPhases).tenths;
    return connectorId === 0 ? perConnector * this.station.connectors : perConnector;
  }

  valueAt(connectorId: number, t: number): { limit: number; numberPhases: number; constrained: boolean } {
    const cap = this.governing(this.chargePointMax, t);
    let own: Constraint | undefined;
    let constrained: boolean;
    if (connectorId > 0) {
      own = this.transactionLimit(connectorId, t);
      constrained = own !== undefined || cap !== undefined;
    } else {
      // The whole charge point draws what its connectors may draw, each filled with its
      // rated current where nothing constrains it, capped by the ChargePointMaxProfile.
      const fill = this.unconstrainedTenths(1);
      let tenths = 0;
      let numberPhases = 0;
      constrained = cap !== undefined;
      for (let connector = 1; connector <= this.station.connectors; connector++) {
        const limit = this.transactionLimit(connector, t);
        if (limit) constrained = true;
        tenths += limit?.tenths ?? fill;
        numberPhases = Math.max(numberPhases, limit?.numberPhases ?? this.requestPhases);
      }
      own = this.station.connectors > 0 ? { tenths, numberPhases } : undefined;
    }
    const result = lower(cap, own) ?? { tenths: this.unconstrainedTenths(connectorId), numberPhases: this.requestPhases };
    return { limit: result.tenths / 10, numberPhases: result.numberPhases, constrained };
  }

  /** TxProfile while one applies, else TxDefaultProfile: what governs one connector before the cap. */
  private transactionLimit(connectorId: number, t: number): Constraint | undefined {
    return this.governing(this.txProfile.get(connectorId)!, t) ?? this.governing(this.txDefault.get(connectorId)!, t);
  }

  /** Among profiles of one purpose, the highest stackLevel in force at t decides. */
  private governing(candidates: readonly PlacedProfile[], t: number): Constraint | undefined {
    let best: { placed: PlacedProfile; period: ChargingSchedulePeriod } | undefined;
    for (const placed of candidates) {
      const period = periodAt(placed, t);
      if (!period) continue;
      if (
        !best
        || placed.stackLevel > best.placed.stackLevel
        || (placed.stackLevel === best.placed.stackLevel && placed.onConnector && !best.placed.onConnector)
      ) {
        best = { placed, period };
      }
    }
    if (!best) return undefined;
    return this.convert(best.period.limit, best.placed.unit, best.period.numberPhases ?? this.station.defaultNumberPhases);
  }

  /**
   * W = A × supplyVoltage × phases. A limit in A becomes W with the phases of its own
   * period; a limit in W becomes A per phase with the phases of the request, because a
   * power limit does not say how many phases will share it. Rounded down, so the
   * converted limit never exceeds the original.
   */
  private convert(limit: number, from: ChargingRateUnit, periodPhases: number): Constraint {
    const tenths = Math.round(limit * 10);
    if (from === this.unit) return { tenths, numberPhases: periodPhases };
    const voltage = this.station.supplyVoltage;
    if (from === 'A') return { tenths: floorTenths(tenths * voltage * periodPhases), numberPhases: periodPhases };
    return { tenths: floorTenths(tenths / (voltage * this.requestPhases)), numberPhases: this.requestPhases };
  }
}

/** The smaller limit; on a tie the smaller phase count, the more conservative reading. */
function lower(a: Constraint | undefined, b: Constraint | undefined): Constraint | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.tenths !== b.tenths) return a.tenths < b.tenths ? a : b;
  return a.numberPhases <= b.numberPhases ? a : b;
}

function runningTransactions(
  transactions: readonly TransactionInfo[],
): Map<number, { transactionId: number; startSeconds: number }> {
  const running = new Map<number, { transactionId: number; startSeconds: number }>();
  for (const transaction of transactions) {
    const startSeconds = toSeconds(transaction.startTime.getTime());
    const known = running.get(transaction.connectorId);
    if (!known || startSeconds >= known.startSeconds) {
      running.set(transaction.connectorId, { transactionId: transaction.transactionId, startSeconds });
    }
  }
  return running;
}

function toSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** Floor to a whole number of tenths, tolerating the binary representation error of exact quotients. */
function floorTenths(tenths: number): number {
  return Math.floor(tenths + 1e-6);
}

/**
 * The composite schedule as JSON for `ampyard composite` and the predicted-schedule API: dates as
 * ISO text, the reason when rejected, and a stretch nothing constrains as a period without a limit.
 */
export function compositeResultJson(result: CompositeResult): unknown {
  if (result.status === 'Rejected') return { status: result.status, reason: result.reason };
  return {
    status: result.status,
    connectorId: result.connectorId,
    scheduleStart: result.scheduleStart.toISOString(),
    chargingSchedule: {
      chargingRateUnit: result.chargingSchedule.chargingRateUnit,
      duration: result.chargingSchedule.duration,
      // A stretch that nothing constrains is a period without a limit (docs/smart-charging.md).
      chargingSchedulePeriod: result.chargingSchedule.chargingSchedulePeriod.map(({ startPeriod, limit, numberPhases, constrained }) => (
        constrained ? { startPeriod, limit, numberPhases } : { startPeriod, numberPhases }
      )),
    },
  };
}

