import { compositeSchedule, installProfile, type CompositeResult } from '../charging/profiles/composite.js';
import { fitProfileToStation, type StationProfileCapabilities } from '../charging/profiles/fit.js';
import type { ChargingProfile, ChargingRateUnit } from '../charging/profiles/model.js';
import type { Clock, CommandSender, EventBus, Store } from './ports.js';
import type { InstalledChargingProfile } from './types.js';

/** The configuration keys that say what profiles a 1.6 station takes. */
const capabilityKeys = ['ChargingScheduleAllowedChargingRateUnit', 'ChargingScheduleMaxPeriods', 'ChargeProfileMaxStackLevel', 'MaxChargingProfilesInstalled'];

export interface ScheduleComparison {
  matches: boolean;
  /** Seconds from the start where the station's schedule differs from ours beyond the tolerance. */
  differences: Array<{ at: number; predicted: number | null; reported: number }>;
}

/**
 * Compares the schedule a station reports with the one we predict, instant by instant at every
 * period boundary of either. Where we predict no limit, the station may report any limit (it fills
 * the gap with its own rating). Tolerance: 1 % or 0.1 of the unit, whichever is larger.
 */
export function compareSchedules(
  predicted: Array<{ startPeriod: number; limit: number; constrained: boolean }>,
  reported: Array<{ startPeriod: number; limit: number }>,
  duration: number,
): ScheduleComparison {
  const at = <T extends { startPeriod: number }>(periods: T[], t: number) => [...periods].reverse().find((p) => p.startPeriod <= t);
  const instants = [...new Set([...predicted, ...reported].map((p) => p.startPeriod))].filter((t) => t < duration).sort((a, b) => a - b);
  const differences: ScheduleComparison['differences'] = [];
  for (const t of instants) {
    const ours = at(predicted, t);
    const theirs = at(reported, t);
    if (!theirs) {
      if (ours?.constrained) differences.push({ at: t, predicted: ours.limit, reported: NaN });
      continue;
    }
    if (!ours || !ours.constrained) continue;
    if (Math.abs(ours.limit - theirs.limit) > Math.max(0.1, 0.01 * ours.limit)) differences.push({ at: t, predicted: ours.limit, reported: theirs.limit });
  }
  return { matches: differences.length === 0, differences };
}

/**
 * Periods as seen from `by` seconds later: the period in force then starts at 0, later ones keep
 * their distance. Two schedules that start `by` seconds apart are compared in one time base this way.
 */
export function periodsFrom<T extends { startPeriod: number }>(periods: readonly T[], by: number): T[] {
  if (by <= 0) return [...periods];
  const sorted = [...periods].sort((a, b) => a.startPeriod - b.startPeriod);
  const inForce = sorted.filter((p) => p.startPeriod <= by).at(-1);
  const later = sorted.filter((p) => p.startPeriod > by).map((p) => ({ ...p, startPeriod: p.startPeriod - by }));
  return inForce ? [{ ...inForce, startPeriod: 0 }, ...later] : later;
}

/**
 * What each charger holds and whether it really does it: the record of profiles a charger
 * accepted, the composite schedule predicted from it, the check against the charger's own
 * GetCompositeSchedule, and the translation of a profile into the form a charger accepts.
 */
export class ChargingProfileService {
  private sender: CommandSender | undefined;
  /** Changes to one station's record, one after another: each reads the record and writes it back. */
  private readonly recordQueue = new Map<string, Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly events: EventBus,
    private readonly clock: Clock,
    private readonly options: { verifyDurationS: number; supplyVoltage: number },
  ) {
    events.subscribe((e) => {
      // A charger removes a TxProfile when its transaction ends (OCPP 1.6 §3.13.2); so does our record.
      if (e.type === 'transaction.stopped') void this.forgetTxProfiles(e.transaction.stationId, e.transaction.connectorId).catch(() => {});
      // After a reboot its configuration may have changed: ask again when next needed.
      if (e.type === 'station.booted') void this.store.setProfileCapabilities(e.stationId, null).catch(() => {});
    });
  }

  /** The sender is given after construction: the gateway that sends commands also calls back into this service. */
  useSender(sender: CommandSender): void {
    this.sender = sender;
  }

  installed(stationId: string): Promise<InstalledChargingProfile[]> {
    return this.store.installedProfiles(stationId);
  }

  /** Runs a read-modify-write of a station's record after the ones already queued for it. */
  private changeRecord(stationId: string, change: () => Promise<void>): Promise<void> {
    const run = (this.recordQueue.get(stationId) ?? Promise.resolve()).then(change, change);
    this.recordQueue.set(stationId, run);
    void run.finally(() => {
      if (this.recordQueue.get(stationId) === run) this.recordQueue.delete(stationId);
    }).catch(() => {});
    return run;
  }

  recordSet(stationId: string, connectorId: number, profile: ChargingProfile, source: string): Promise<void> {
    return this.changeRecord(stationId, () => this.applySet(stationId, connectorId, profile, source));
  }

  private async applySet(stationId: string, connectorId: number, profile: ChargingProfile, source: string): Promise<void> {
    const current = await this.store.installedProfiles(stationId);
    const next = installProfile(current, { connectorId, profile }).map((p) => {
      const known = current.find((c) => c.profile === p.profile);
      return known ?? { connectorId: p.connectorId, profile: p.profile, source, installedAt: this.clock.now().toISOString() };
    });
    await this.store.replaceInstalledProfiles(stationId, next);
  }

  recordClear(stationId: string, criteria: { id?: number; connectorId?: number; chargingProfilePurpose?: string; stackLevel?: number }): Promise<void> {
    return this.changeRecord(stationId, () => this.applyClear(stationId, criteria));
  }

  private async applyClear(stationId: string, criteria: { id?: number; connectorId?: number; chargingProfilePurpose?: string; stackLevel?: number }): Promise<void> {
    const current = await this.store.installedProfiles(stationId);
    const matches = (p: InstalledChargingProfile) =>
      criteria.id !== undefined
        ? p.profile.chargingProfileId === criteria.id
        : (criteria.connectorId === undefined || p.connectorId === criteria.connectorId) &&
          (criteria.chargingProfilePurpose === undefined || p.profile.chargingProfilePurpose === criteria.chargingProfilePurpose) &&
          (criteria.stackLevel === undefined || p.profile.stackLevel === criteria.stackLevel);
    await this.store.replaceInstalledProfiles(stationId, current.filter((p) => !matches(p)));
  }

  private forgetTxProfiles(stationId: string, connectorId: number): Promise<void> {
    return this.changeRecord(stationId, () => this.applyForgetTxProfiles(stationId, connectorId));
  }

  private async applyForgetTxProfiles(stationId: string, connectorId: number): Promise<void> {
    const current = await this.store.installedProfiles(stationId);
    const kept = current.filter((p) => !(p.connectorId === connectorId && p.profile.chargingProfilePurpose === 'TxProfile'));
    if (kept.length !== current.length) await this.store.replaceInstalledProfiles(stationId, kept);
  }

  /** What a conforming charger with the profiles we installed must report now (the prediction). */
  async predict(stationId: string, request: { connectorId: number; duration: number; chargingRateUnit?: ChargingRateUnit; startTime?: Date }): Promise<CompositeResult> {
    const [installed, connectors, active] = await Promise.all([
      this.store.installedProfiles(stationId),
      this.store.listConnectors(stationId),
      this.store.listTransactions({ stationId, active: true, limit: 100, offset: 0 }),
    ]);
    const connectorCount = Math.max(1, request.connectorId, ...connectors.map((c) => c.connectorId), ...installed.map((p) => p.connectorId));
    return compositeSchedule({
      station: { connectors: connectorCount, supplyVoltage: this.options.supplyVoltage },
      profiles: installed.map((p) => ({ connectorId: p.connectorId, profile: p.profile })),
      transactions: active.map((t) => ({ connectorId: t.connectorId, transactionId: t.id, startTime: new Date(t.startTime) })),
      request: { connectorId: request.connectorId, startTime: request.startTime ?? this.clock.now(), duration: request.duration, chargingRateUnit: request.chargingRateUnit },
    });
  }

  /** Asks the station for its composite schedule and raises an alarm when it differs from the prediction. */
  async verify(stationId: string, connectorId: number, unit: ChargingRateUnit): Promise<ScheduleComparison | undefined> {
    if (!this.sender) return undefined;
    const duration = this.options.verifyDurationS;
    const predicted = await this.predict(stationId, { connectorId, duration, chargingRateUnit: unit });
    if (predicted.status !== 'Accepted') return undefined;
    const reported = await this.sender.send(stationId, 'GetCompositeSchedule', { connectorId, duration, chargingRateUnit: unit });
    if (reported.status !== 'Accepted' || !reported.chargingSchedule) {
      await this.alarm(stationId, 'The station could not report its composite schedule', { connectorId, answer: reported, predicted: predicted.chargingSchedule });
      return { matches: false, differences: [] };
    }
    // The station's scheduleStart may differ from ours by the round trip (later) or by its clock:
    // compare from the later of the two starts, where both schedules say something.
    const offset = reported.scheduleStart ? Math.round((Date.parse(reported.scheduleStart) - predicted.scheduleStart.getTime()) / 1000) : 0;
    const reportedPeriods = reported.chargingSchedule.chargingSchedulePeriod as Array<{ startPeriod: number; limit: number }>;
    const comparison =
      reported.chargingSchedule.chargingRateUnit === unit
        ? compareSchedules(periodsFrom(predicted.chargingSchedule.chargingSchedulePeriod, offset), periodsFrom(reportedPeriods, -offset), duration - Math.abs(offset))
        : { matches: false, differences: [] };
    if (!comparison.matches) {
      await this.alarm(stationId, 'Charging profile not applied as expected', {
        connectorId,
        predicted: predicted.chargingSchedule,
        reported: reported.chargingSchedule,
        differences: comparison.differences,
      });
    }
    return comparison;
  }

  private async alarm(stationId: string, message: string, details: unknown): Promise<void> {
    const alarm = await this.store.raiseAlarm({ stationId, type: 'ProfileNotApplied', severity: 'major', message, details, raisedAt: this.clock.now().toISOString() });
    this.events.publish({ type: 'alarm.raised', at: alarm.raisedAt, alarm });
  }

  /** The station's profile capabilities, asked once (GetConfiguration) and kept until it reboots. */
  async capabilities(stationId: string): Promise<StationProfileCapabilities> {
    const known = await this.store.getProfileCapabilities(stationId);
    if (known) return known;
    const caps: StationProfileCapabilities = { supplyVoltage: this.options.supplyVoltage };
    if (!this.sender) return caps;
    try {
      const answer = await this.sender.send(stationId, 'GetConfiguration', { key: capabilityKeys }, { timeoutMs: 10000 });
      for (const { key, value } of (answer.configurationKey ?? []) as Array<{ key: string; value?: string }>) {
        if (value === undefined) continue;
        if (key === 'ChargingScheduleAllowedChargingRateUnit') {
          const units = value.split(',').flatMap((v) => (v.trim() === 'Current' ? ['A' as const] : v.trim() === 'Power' ? ['W' as const] : []));
          if (units.length > 0) caps.allowedUnits = units;
        }
        if (key === 'ChargingScheduleMaxPeriods' && Number(value) > 0) caps.maxPeriods = Number(value);
      }
    } catch {
      // A station that cannot tell gets profiles as they are; it may still reject them.
    }
    await this.store.setProfileCapabilities(stationId, caps);
    return caps;
  }

  /** The profile in a form this station accepts (unit, number of periods). */
  async fitForStation(stationId: string, profile: ChargingProfile): Promise<{ profile: ChargingProfile; changes: string[] }> {
    return fitProfileToStation(profile, await this.capabilities(stationId));
  }
}
