import type { EventBus } from './ports.js';
import type { MeterReading } from './types.js';

/** The station phase a reading's phase belongs to: none given is L1; L1-N and L1-L2 are L1's. */
function stationPhaseOf(phase: string | null): 'L1' | 'L2' | 'L3' | undefined {
  if (phase === null) return 'L1';
  if (phase.startsWith('L1')) return 'L1';
  if (phase.startsWith('L2')) return 'L2';
  if (phase.startsWith('L3')) return 'L3';
  return undefined;
}

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
        // One pass over the readings, on the path of every MeterValues: the newest power of the
        // connector as a whole, and the current of each phase.
        let power: MeterReading | undefined;
        let lastCurrent: MeterReading | undefined;
        const currentA = { L1: 0, L2: 0, L3: 0 };
        for (const r of e.readings) {
          if (r.value === null) continue;
          if (r.measurand === 'Power.Active.Import') {
            if (r.phase === null) power = r;
          } else if (r.measurand === 'Current.Import') {
            lastCurrent = r;
            const phase = stationPhaseOf(r.phase);
            if (phase) currentA[phase] = r.value;
          }
        }
        if (!power && !lastCurrent) return;
        const newest = power ?? lastCurrent!;
        // A station reporting only power is taken as balanced over three phases at 230 V.
        const powerW = power?.value ?? (currentA.L1 + currentA.L2 + currentA.L3) * 230;
        if (!lastCurrent) currentA.L1 = currentA.L2 = currentA.L3 = powerW / (3 * 230);
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
