import type { EventBus } from './ports.js';

export interface ConnectorLoad {
  powerW: number;
  /** Current per station phase (L1..L3 of the station, before its rotation onto the site). */
  currentA: { L1: number; L2: number; L3: number };
  at: string;
}

/**
 * The latest measured load of every connector, from the meter values stations send: what the
 * balancer uses to see a vehicle drawing less than it was given, and what a site's live view shows.
 */
export class LiveLoad {
  /** By station, then connector: a station that drops off forgets its connectors without a scan of all. */
  private readonly latest = new Map<string, Map<number, ConnectorLoad>>();

  constructor(events: EventBus) {
    events.subscribe((e) => {
      if (e.type === 'meter.values') {
        const power = e.readings.filter((r) => r.measurand === 'Power.Active.Import' && r.value !== null && r.phase === null);
        const currents = e.readings.filter((r) => r.measurand === 'Current.Import' && r.value !== null);
        if (power.length === 0 && currents.length === 0) return;
        const newest = power.at(-1) ?? currents.at(-1)!;
        const currentA = { L1: 0, L2: 0, L3: 0 };
        for (const c of currents) {
          const phase = (c.phase ?? 'L1').slice(0, 2) as 'L1' | 'L2' | 'L3';
          if (phase in currentA) currentA[phase] = c.value!;
        }
        // A station reporting only power is taken as balanced over three phases at 230 V.
        const powerW = power.at(-1)?.value ?? (currentA.L1 + currentA.L2 + currentA.L3) * 230;
        if (currents.length === 0) currentA.L1 = currentA.L2 = currentA.L3 = powerW / (3 * 230);
        let station = this.latest.get(e.stationId);
        if (!station) this.latest.set(e.stationId, (station = new Map()));
        station.set(e.connectorId, { powerW, currentA, at: newest.timestamp });
      }
      if (e.type === 'transaction.stopped') this.latest.get(e.transaction.stationId)?.delete(e.transaction.connectorId);
      if (e.type === 'station.disconnected') this.latest.delete(e.stationId);
    });
  }

  of(stationId: string, connectorId: number): ConnectorLoad | undefined {
    return this.latest.get(stationId)?.get(connectorId);
  }
}
