/**
 * Checks a charger applies before it accepts SetChargingProfile.req (OCPP 1.6 §5.16,
 * §7.7–7.9, §9.1 configuration keys). Profiles arrive from the wire, so every field is
 * checked for its type as well as its value; each problem is a sentence for a human.
 */
import {
  chargingProfileKinds,
  chargingProfilePurposes,
  chargingRateUnits,
  parseOcppDateTime,
  recurrencyKinds,
  type ChargingProfile,
  type ChargingRateUnit,
  type TransactionInfo,
} from './model.js';

export interface ValidationContext {
  /** Connectors of the station; connector ids run 0..connectors. */
  connectors: number;
  /** Transactions running now: a TxProfile is only accepted for one of them (OCTT 058_1, 058_2). */
  transactions: ReadonlyArray<Pick<TransactionInfo, 'connectorId' | 'transactionId'>>;
  /** ChargeProfileMaxStackLevel, when the station reports it. */
  maxStackLevel?: number;
  /** ChargingScheduleMaxPeriods, when the station reports it. */
  maxPeriods?: number;
  /** ChargingScheduleAllowedChargingRateUnit, when the station reports it. */
  allowedUnits?: readonly ChargingRateUnit[];
}

/** Every reason a charger in this context would reject the profile; empty when it is valid. */
export function validateProfile(connectorId: number, profile: ChargingProfile, ctx: ValidationContext): string[] {
  const problems = profileShapeProblems(connectorId, profile, ctx.connectors);
  // Past this point the checks read fields whose shape may already have been reported
  // as wrong; each guards its own reads so one malformed field yields one problem.
  const p = profile as unknown as Record<string, unknown>;
  const schedule = (isRecord(p.chargingSchedule) ? p.chargingSchedule : {}) as Record<string, unknown>;

  if (ctx.maxStackLevel !== undefined && typeof p.stackLevel === 'number' && p.stackLevel > ctx.maxStackLevel) {
    problems.push(`stackLevel ${p.stackLevel} exceeds the station's maximum stack level ${ctx.maxStackLevel}`);
  }
  if (ctx.maxPeriods !== undefined && Array.isArray(schedule.chargingSchedulePeriod)
    && schedule.chargingSchedulePeriod.length > ctx.maxPeriods) {
    problems.push(
      `chargingSchedulePeriod has ${schedule.chargingSchedulePeriod.length} periods; the station accepts at most ${ctx.maxPeriods}`,
    );
  }
  if (ctx.allowedUnits !== undefined && isOneOf(schedule.chargingRateUnit, chargingRateUnits)
    && !ctx.allowedUnits.includes(schedule.chargingRateUnit)) {
    problems.push(
      `chargingRateUnit ${schedule.chargingRateUnit} is not allowed by the station (allowed: ${ctx.allowedUnits.join(', ') || 'none'})`,
    );
  }
  if (p.chargingProfilePurpose === 'TxProfile' && connectorId > 0) {
    const running = ctx.transactions.filter((tx) => tx.connectorId === connectorId);
    if (running.length === 0) {
      problems.push(`TxProfile for connector ${connectorId} but no transaction runs on it`);
    } else if (p.transactionId !== undefined && !running.some((tx) => tx.transactionId === p.transactionId)) {
      problems.push(
        `TxProfile for transaction ${String(p.transactionId)} but connector ${connectorId} runs transaction ${running.map((tx) => tx.transactionId).join(', ')}`,
      );
    }
  }
  return problems;
}

/**
 * The problems that depend only on the profile, its connector and the number of
 * connectors: not on the station's configuration keys nor on what runs right now.
 * The composite schedule uses this to leave out profiles no charger could hold.
 */
export function profileShapeProblems(connectorId: number, profile: ChargingProfile, connectors: number): string[] {
  const problems: string[] = [];
  if (!isRecord(profile)) return ['the charging profile is not an object'];
  const p = profile as unknown as Record<string, unknown>;

  if (!Number.isInteger(connectorId) || connectorId < 0 || connectorId > connectors) {
    problems.push(`connectorId ${connectorId} is outside 0..${connectors}`);
  }
  if (!Number.isInteger(p.chargingProfileId)) problems.push('chargingProfileId must be an integer');
  if (!Number.isInteger(p.stackLevel) || (p.stackLevel as number) < 0) {
    problems.push('stackLevel must be an integer >= 0');
  }

  const purpose = p.chargingProfilePurpose;
  if (!isOneOf(purpose, chargingProfilePurposes)) {
    problems.push(`chargingProfilePurpose must be one of ${chargingProfilePurposes.join(', ')}`);
  } else if (purpose === 'ChargePointMaxProfile' && connectorId !== 0) {
    problems.push(`ChargePointMaxProfile is only allowed on connector 0, not on connector ${connectorId}`);
  } else if (purpose === 'TxProfile' && connectorId === 0) {
    problems.push('TxProfile is only allowed on a connector > 0');
  }
  if (p.transactionId !== undefined) {
    if (!Number.isInteger(p.transactionId)) problems.push('transactionId must be an integer');
    if (purpose !== 'TxProfile') problems.push('transactionId is only allowed on a TxProfile');
  }

  const kind = p.chargingProfileKind;
  if (!isOneOf(kind, chargingProfileKinds)) {
    problems.push(`chargingProfileKind must be one of ${chargingProfileKinds.join(', ')}`);
  }
  if (p.recurrencyKind !== undefined && !isOneOf(p.recurrencyKind, recurrencyKinds)) {
    problems.push(`recurrencyKind must be one of ${recurrencyKinds.join(', ')}`);
  }
  if (kind === 'Recurring' && p.recurrencyKind === undefined) {
    problems.push('a Recurring profile needs a recurrencyKind');
  }

  const validFrom = checkDateTime(p.validFrom, 'validFrom', problems);
  const validTo = checkDateTime(p.validTo, 'validTo', problems);
  if (validFrom !== undefined && validTo !== undefined && validFrom >= validTo) {
    problems.push(`validFrom ${String(p.validFrom)} must be before validTo ${String(p.validTo)}`);
  }

  if (!isRecord(p.chargingSchedule)) {
    problems.push('chargingSchedule is missing');
    return problems;
  }
  const schedule = p.chargingSchedule;
  checkDateTime(schedule.startSchedule, 'chargingSchedule.startSchedule', problems);
  if ((kind === 'Absolute' || kind === 'Recurring') && schedule.startSchedule === undefined) {
    problems.push(`an ${kind} profile needs chargingSchedule.startSchedule`);
  }
  if (!isOneOf(schedule.chargingRateUnit, chargingRateUnits)) {
    problems.push(`chargingSchedule.chargingRateUnit must be one of ${chargingRateUnits.join(', ')}`);
  }
  if (schedule.duration !== undefined && (!Number.isInteger(schedule.duration) || (schedule.duration as number) <= 0)) {
    problems.push('chargingSchedule.duration must be a positive integer number of seconds');
  }
  if (schedule.minChargingRate !== undefined && !isLimit(schedule.minChargingRate)) {
    problems.push('chargingSchedule.minChargingRate must be >= 0 with at most one decimal');
  }
  checkPeriods(schedule.chargingSchedulePeriod, problems);
  return problems;
}

function checkPeriods(periods: unknown, problems: string[]): void {
  if (!Array.isArray(periods) || periods.length === 0) {
    problems.push('chargingSchedule.chargingSchedulePeriod must hold at least one period');
    return;
  }
  let previousStart: number | undefined;
  periods.forEach((period: unknown, index) => {
    const where = `chargingSchedulePeriod[${index}]`;
    if (!isRecord(period)) {
      problems.push(`${where} is not an object`);
      return;
    }
    const start = period.startPeriod;
    if (!Number.isInteger(start) || (start as number) < 0) {
      problems.push(`${where}.startPeriod must be an integer >= 0`);
    } else {
      if (index === 0 && start !== 0) problems.push(`the first startPeriod must be 0, not ${String(start)}`);
      if (previousStart !== undefined && (start as number) <= previousStart) {
        problems.push(`${where}.startPeriod ${String(start)} must be greater than the previous ${previousStart}`);
      }
      previousStart = start as number;
    }
    if (!isLimit(period.limit)) problems.push(`${where}.limit must be >= 0 with at most one decimal`);
    const phases = period.numberPhases;
    if (phases !== undefined && (!Number.isInteger(phases) || (phases as number) < 1 || (phases as number) > 3)) {
      problems.push(`${where}.numberPhases must be 1, 2 or 3`);
    }
  });
}

/** OCPP limits are decimals with at most one digit after the point. */
export function isLimit(value: unknown): value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return false;
  const tenths = value * 10;
  return Math.abs(tenths - Math.round(tenths)) < 1e-6;
}

function checkDateTime(value: unknown, field: string, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseOcppDateTime(value);
  if (ms === undefined) problems.push(`${field} ${JSON.stringify(value)} is not an OCPP dateTime with a time zone`);
  return ms;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isOneOf<T extends string>(value: unknown, allowed: readonly T[]): value is T {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value);
}
