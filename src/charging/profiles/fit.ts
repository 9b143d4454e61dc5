import type { ChargingProfile, ChargingRateUnit, ChargingSchedulePeriod } from './model.js';
import { defaultNumberPhases, defaultSupplyVoltage } from './model.js';

/** What a station has said it accepts (its configuration keys), where known. */
export interface StationProfileCapabilities {
  /** ChargingScheduleAllowedChargingRateUnit. */
  allowedUnits?: readonly ChargingRateUnit[];
  /** ChargingScheduleMaxPeriods. */
  maxPeriods?: number;
  supplyVoltage?: number;
}

export interface FittedProfile {
  profile: ChargingProfile;
  /** What was changed, for the operator's log; empty when the profile fitted as it was. */
  changes: string[];
}

/** Rounds down to one decimal: a converted or merged limit must never allow more than the original. */
export const floorTenth = (x: number) => Math.floor(x * 10 + 1e-9) / 10;

/**
 * Puts a profile into the form a station accepts: the other unit when the station refuses this
 * one, and fewer periods when it has too many. Both changes are conservative: at no instant does
 * the fitted profile allow more than the original (merged periods take the lowest limit among
 * them). Pure.
 */
export function fitProfileToStation(profile: ChargingProfile, caps: StationProfileCapabilities): FittedProfile {
  const changes: string[] = [];
  let schedule = profile.chargingSchedule;
  const voltage = caps.supplyVoltage ?? defaultSupplyVoltage;

  if (caps.allowedUnits && caps.allowedUnits.length > 0 && !caps.allowedUnits.includes(schedule.chargingRateUnit)) {
    const to = caps.allowedUnits[0]!;
    const from = schedule.chargingRateUnit;
    const convert = (p: ChargingSchedulePeriod): ChargingSchedulePeriod => {
      const phases = p.numberPhases ?? defaultNumberPhases;
      const limit = to === 'W' ? p.limit * voltage * phases : p.limit / (voltage * phases);
      return { ...p, limit: floorTenth(limit) };
    };
    const minChargingRate = schedule.minChargingRate === undefined ? undefined : floorTenth(to === 'W' ? schedule.minChargingRate * voltage * defaultNumberPhases : schedule.minChargingRate / (voltage * defaultNumberPhases));
    schedule = { ...schedule, chargingRateUnit: to, chargingSchedulePeriod: schedule.chargingSchedulePeriod.map(convert), ...(minChargingRate !== undefined ? { minChargingRate } : {}) };
    changes.push(`converted from ${from} to ${to} (the station accepts ${caps.allowedUnits.join(', ')})`);
  }

  if (caps.maxPeriods !== undefined && caps.maxPeriods >= 1 && schedule.chargingSchedulePeriod.length > caps.maxPeriods) {
    const before = schedule.chargingSchedulePeriod.length;
    schedule = { ...schedule, chargingSchedulePeriod: mergePeriods(schedule.chargingSchedulePeriod, caps.maxPeriods) };
    changes.push(`merged ${before} periods into ${schedule.chargingSchedulePeriod.length} (ChargingScheduleMaxPeriods ${caps.maxPeriods}), keeping the lowest limit of each merged span`);
  }

  return { profile: changes.length === 0 ? profile : { ...profile, chargingSchedule: schedule }, changes };
}

/**
 * Reduces a period list to at most `max` periods by repeatedly merging the adjacent pair whose
 * merge costs least (the energy given up by taking the lower limit over the pair, weighted by the
 * shorter period's length as a proxy when durations are open-ended).
 */
export function mergePeriods(periods: readonly ChargingSchedulePeriod[], max: number): ChargingSchedulePeriod[] {
  const list = periods.map((p) => ({ ...p }));
  while (list.length > max) {
    let best = 0;
    let bestCost = Infinity;
    for (let i = 0; i < list.length - 1; i++) {
      const a = list[i]!;
      const b = list[i + 1]!;
      const lengthA = b.startPeriod - a.startPeriod;
      const lengthB = i + 2 < list.length ? list[i + 2]!.startPeriod - b.startPeriod : lengthA;
      const cost = Math.abs(a.limit - b.limit) * (a.limit > b.limit ? lengthA : lengthB);
      if (cost < bestCost) {
        bestCost = cost;
        best = i;
      }
    }
    const a = list[best]!;
    const b = list[best + 1]!;
    const merged: ChargingSchedulePeriod = { startPeriod: a.startPeriod, limit: Math.min(a.limit, b.limit) };
    const phases = a.numberPhases ?? b.numberPhases;
    if (phases !== undefined) merged.numberPhases = a.numberPhases !== undefined && b.numberPhases !== undefined ? Math.min(a.numberPhases, b.numberPhases) : phases;
    list.splice(best, 2, merged);
  }
  return list;
}
