import { failsafeProfiles } from '../charging/envelope/envelope.js';
import type { ChargingRateUnit } from '../charging/profiles/model.js';
import type { ChargingProfileService } from './charging-profiles.js';
import type { Clock, CommandSender, EventBus, Store } from './ports.js';
import type { SiteBalancer } from './site-balancer.js';

/** The profile ids of the failsafe, so that a new failsafe replaces the old one on the station. */
export const failsafeProfileIds = { chargePointMax: 900_001, txDefault: 900_002 } as const;

export interface FailsafeOptions {
  horizonS: number;
  /**
   * The share of the largest safe default that stations get. The balancer counts every connector
   * without a grant at its default (a car may plug in at any moment), so a smaller default leaves
   * more to share among the cars that are charging, at the price of slower offline charging.
   */
  fraction: number;
}

/**
 * Installs the failsafe of the safe envelope on a site's stations: a ChargePointMaxProfile at the
 * station's physical maximum and a TxDefaultProfile sized so that every connector of the site at
 * its default fits every limit (src/charging/envelope). Tells the balancer each station's default.
 */
export class FailsafeInstaller {
  constructor(
    private readonly store: Store,
    private readonly events: EventBus,
    private readonly clock: Clock,
    private readonly sender: CommandSender,
    private readonly chargingProfiles: ChargingProfileService,
    private readonly balancer: () => SiteBalancer,
    private readonly options: FailsafeOptions,
    private readonly log?: { warn: (obj: object, msg: string) => void },
  ) {}

  async install(siteId: string, sendTo: string[]): Promise<void> {
    const state = this.balancer().siteState(siteId);
    if (!state) return;
    const allowedUnits: Record<string, ChargingRateUnit> = {};
    for (const spec of state.stations) {
      const caps = this.sender.isConnected(spec.stationId) && sendTo.includes(spec.stationId)
        ? await this.chargingProfiles.capabilities(spec.stationId)
        : await this.store.getProfileCapabilities(spec.stationId);
      allowedUnits[spec.stationId] = !caps?.allowedUnits || caps.allowedUnits.includes('W') ? 'W' : 'A';
    }
    const now = this.clock.now();
    const plan = failsafeProfiles(state.site, state.stations, now, {
      allowedUnits,
      horizonS: this.options.horizonS,
      chargePointMax: { chargingProfileId: failsafeProfileIds.chargePointMax, stackLevel: 0 },
      txDefault: { chargingProfileId: failsafeProfileIds.txDefault, stackLevel: 0 },
    });
    for (const fs of plan.stations) {
      const limit = Math.floor(fs.defaultLimit * this.options.fraction * 10) / 10;
      const powerW = fs.defaultPowerW * this.options.fraction;
      const spec = state.stations.find((s) => s.stationId === fs.stationId)!;
      this.balancer().setFailsafe(fs.stationId, { unit: fs.unit, limit }, spec.connectors.map((c) => c.connectorId), powerW);
      if (!sendTo.includes(fs.stationId) || !this.sender.isConnected(fs.stationId)) continue;
      const txDefault = {
        ...fs.txDefault.profile,
        chargingSchedule: {
          ...fs.txDefault.profile.chargingSchedule,
          chargingSchedulePeriod: fs.txDefault.profile.chargingSchedule.chargingSchedulePeriod.map((p) => ({ ...p, limit: Math.min(p.limit, limit) })),
        },
      };
      try {
        for (const profile of [fs.chargePointMax.profile, txDefault]) {
          const answer = await this.sender.send(fs.stationId, 'SetChargingProfile', { connectorId: 0, csChargingProfiles: profile }, { source: 'failsafe' });
          if (answer.status !== 'Accepted') throw new Error(`${profile.chargingProfilePurpose} ${answer.status}`);
        }
      } catch (err) {
        const alarm = await this.store.raiseAlarm({
          stationId: fs.stationId,
          type: 'FailsafeNotInstalled',
          severity: 'critical',
          message: 'The failsafe profiles could not be installed: the site limit is not guaranteed if this station loses its connection',
          details: { error: (err as Error).message },
          raisedAt: now.toISOString(),
        });
        this.events.publish({ type: 'alarm.raised', at: alarm.raisedAt, alarm });
        this.log?.warn({ stationId: fs.stationId, err: (err as Error).message }, 'failsafe not installed');
      }
    }
  }
}
