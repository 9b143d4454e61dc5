import { afterEach, describe, expect, it } from 'vitest';
import { installProfile, limitAt } from '../charging/profiles/composite.js';
import type { ChargingProfile, InstalledProfile } from '../charging/profiles/model.js';
import { limitOfNodeAt } from '../charging/site/model.js';
import { LiveLoad } from './live-load.js';
import type { CommandSender, DomainEvent, EventBus, Store } from './ports.js';
import { SiteBalancer } from './site-balancer.js';
import { siteModel, type StoredSite } from './sites.js';
import type { Transaction } from './types.js';

/**
 * The balancer against stations that install what they are sent, on a simulated clock. At every
 * simulated second the sum of what the stations may draw under the profiles they hold is checked
 * against the site's limit at that second: the invariant of docs/smart-charging.md, "The safe
 * envelope", seen from the stations.
 */
const start = Date.parse('2026-12-07T18:00:00Z');
const at = (s: number) => new Date(start + s * 1000);
const validityS = 1200;

class SimulatedClock {
  ms = start;
  now(): Date {
    return new Date(this.ms);
  }
}

class Bus implements EventBus {
  private listeners: Array<(e: DomainEvent) => void> = [];
  publish(e: DomainEvent): void {
    for (const l of this.listeners) l(e);
  }
  subscribe(l: (e: DomainEvent) => void): () => void {
    this.listeners.push(l);
    return () => (this.listeners = this.listeners.filter((x) => x !== l));
  }
}

/** Stations that install a profile the moment it arrives; their answers can be held back. */
class Stations implements CommandSender {
  readonly held = new Map<string, InstalledProfile[]>();
  holdAnswers = false;
  private heldAnswers: Array<() => void> = [];
  readonly offline = new Set<string>();
  /** Stations that answer Rejected and keep what they hold. */
  readonly refusing = new Set<string>();
  /** Stations that answer Rejected to the next profile only. */
  readonly refusingOnce = new Set<string>();
  /** Stations whose connection drops the moment they have installed the next profile, before they answer. */
  readonly dropAfterInstall = new Set<string>();
  constructor(ids: string[], defaultW: number) {
    // The failsafe default: what a connector draws without a grant (what the balancer counts).
    const failsafe: ChargingProfile = {
      chargingProfileId: 1,
      stackLevel: 0,
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingProfileKind: 'Absolute',
      chargingSchedule: { startSchedule: at(-86400).toISOString(), chargingRateUnit: 'W', chargingSchedulePeriod: [{ startPeriod: 0, limit: defaultW }] },
    };
    for (const id of ids) this.held.set(id, [{ connectorId: 0, profile: failsafe }]);
  }
  isConnected(stationId: string): boolean {
    return !this.offline.has(stationId);
  }
  async send(stationId: string, action: string, payload: any): Promise<any> {
    expect(action).toBe('SetChargingProfile');
    if (this.offline.has(stationId)) throw new Error(`station ${stationId} is not connected`);
    if (this.refusing.has(stationId) || this.refusingOnce.delete(stationId)) return { status: 'Rejected' };
    this.held.set(stationId, installProfile(this.held.get(stationId)!, { connectorId: payload.connectorId, profile: payload.csChargingProfiles }));
    if (this.dropAfterInstall.delete(stationId)) {
      this.goOffline(stationId);
      throw new Error('connection lost before the answer');
    }
    if (!this.holdAnswers) return { status: 'Accepted' };
    return new Promise((resolve) => this.heldAnswers.push(() => resolve({ status: 'Accepted' })));
  }
  onDrop?: (stationId: string) => void;
  goOffline(stationId: string): void {
    this.offline.add(stationId);
    this.onDrop?.(stationId);
  }
  releaseAnswers(): void {
    const answers = this.heldAnswers;
    this.heldAnswers = [];
    this.holdAnswers = false;
    for (const answer of answers) answer();
  }
}

const realTurns = () => new Promise((r) => setTimeout(r, 15));

/** A plan that holds D1's bus at 0 W (a cheaper hour is coming): D1 lends its default to the others. */
const planD1AtZero = (balancer: SiteBalancer) =>
  balancer.usePlans({ planned: (stationId) => (stationId === 'D1' ? { powerW: 0, departure: at(36_000), energyNeededWh: 200_000, periods: [] } : undefined) });

describe('SiteBalancer: the profiles stations hold fit the site at every second', () => {
  let balancer: SiteBalancer | undefined;
  afterEach(() => balancer?.stop());

  /**
   * Five DC stations of `maxW` under a 600 kW connection, curtailed to `curtailedW` for two hours
   * from `curtailFromS`, each with a failsafe default of `defaultW`.
   */
  async function depot(curtailFromS: number, curtailedW = 300_000, defaultW = 0, maxW = 150_000) {
    const ids = ['D1', 'D2', 'D3', 'D4', 'D5'];
    const stored: StoredSite = {
      id: 'depot',
      definition: { name: 'Depot', limit: { value: 600_000, unit: 'W' }, stations: ids.map((id) => ({ id, kind: 'DC', maxPowerW: maxW })) },
      externalLimits: [{ nodeId: 'depot', from: at(curtailFromS).toISOString(), to: at(curtailFromS + 7200).toISOString(), limit: { value: curtailedW, unit: 'W' } }],
      updatedAt: at(0).toISOString(),
    };
    const clock = new SimulatedClock();
    const events = new Bus();
    const stations = new Stations(ids, defaultW);
    const active: Transaction[] = [];
    const store = {
      listSites: async () => [stored],
      getSite: async () => stored,
      listTransactions: async () => active,
    } as unknown as Store;
    balancer = new SiteBalancer(store, events, clock, stations, new LiveLoad(events), {
      txProfileValidityS: validityS,
      renewBeforeS: 400,
      clockSkewS: 30,
      minUpdateIntervalS: 0,
      debounceMs: 1,
      housekeepingMs: 2,
      supplyVoltage: 230,
    });
    for (const id of ids) balancer.setFailsafe(id, { unit: 'W', limit: defaultW }, [1], defaultW);
    stations.onDrop = (stationId) => events.publish({ type: 'station.disconnected', stationId, at: clock.now().toISOString(), reason: 'test' });
    await balancer.start();
    const site = siteModel(stored).site;

    let worstOverW = -Infinity;
    const drawW = (stationId: string, t: Date) => {
      const tx = active.find((x) => x.stationId === stationId);
      if (!tx) return 0;
      const situation = { station: { connectors: 1 }, profiles: stations.held.get(stationId)!, transactions: [{ connectorId: 1, transactionId: tx.id, startTime: new Date(tx.startTime) }] };
      return Math.min(maxW, limitAt(situation, 1, t, { chargingRateUnit: 'W' }).limit);
    };
    /** Moves the simulated clock on, checking every second, and lets the balancer's timers run every `stepS`. */
    const advance = async (seconds: number, stepS = 10) => {
      for (let done = 0; done < seconds; done += stepS) {
        for (let s = 0; s < stepS; s += 1) {
          clock.ms += 1000;
          const total = ids.reduce((sum, id) => sum + drawW(id, clock.now()), 0);
          worstOverW = Math.max(worstOverW, total - limitOfNodeAt(site, clock.now()).maxW!);
        }
        await realTurns();
      }
    };
    let nextTx = 1;
    /** A bus plugs in at each station and its transaction starts. */
    const plugIn = async (...stationIds: string[]) => {
      for (const stationId of stationIds) {
        const transaction = { id: nextTx++, stationId, connectorId: 1, idTag: 'BUS', startTime: clock.now().toISOString() } as Transaction;
        active.push(transaction);
        events.publish({ type: 'transaction.started', at: clock.now().toISOString(), transaction });
        await realTurns();
      }
    };
    /** What each station may draw now. */
    const drawing = (...stationIds: string[]) => stationIds.map((id) => drawW(id, clock.now()));
    /** The station reports what its connector draws. */
    const meter = async (stationId: string, powerW: number) => {
      const tx = active.find((x) => x.stationId === stationId)!;
      const reading = { stationId, connectorId: 1, transactionId: tx.id, timestamp: clock.now().toISOString(), measurand: 'Power.Active.Import', phase: null, location: 'Outlet', context: 'Sample.Periodic', unit: 'W', value: powerW, rawValue: String(powerW) };
      events.publish({ type: 'meter.values', at: clock.now().toISOString(), stationId, connectorId: 1, transactionId: tx.id, readings: [reading] } as DomainEvent);
      await realTurns();
    };
    return { balancer, stations, plugIn, meter, advance, worst: () => worstOverW, drawW, drawing, clock };
  }

  it('renews a grant only as far as the limits of its new life allow (a curtailment beyond the first grant)', async () => {
    // The first grants (at 0 s) last until 1,200 s; the curtailment starts at 1,300 s. Renewed at
    // 800 s, a grant reaches into the curtailment and must fit it.
    const d = await depot(1300);
    await d.plugIn('D1', 'D2', 'D3', 'D4');
    await d.advance(10);
    expect(d.drawing('D1', 'D2', 'D3', 'D4')).toEqual([150_000, 150_000, 150_000, 150_000]);
    await d.advance(2400);
    expect(d.worst()).toBeLessThanOrEqual(1);
    // Still charging after the grants were renewed, at the curtailed share.
    expect(d.drawing('D1', 'D2', 'D3', 'D4')).toEqual([75_000, 75_000, 75_000, 75_000]);
  });

  it('grants a raise only for the time its round checked, however long the lowers it waited for took', async () => {
    // At 100 s a fifth bus arrives: four grants are lowered to 120 kW, and the fifth is raised to
    // 120 kW once the lowers are confirmed. The stations take 900 s to answer. The fifth station
    // loses its connection the moment it has the raise, so no later round can lower it. The round at
    // 100 s checked the limits until 1,330 s (100 + 1,200 + 30); the curtailment to 100 kW starts at
    // 1,380 s. A raise issued when it was sent (at 1,000 s) would still grant 120 kW then.
    const d = await depot(1380, 100_000);
    await d.plugIn('D1', 'D2', 'D3', 'D4');
    await d.advance(90);
    d.stations.holdAnswers = true;
    d.stations.dropAfterInstall.add('D5');
    await d.plugIn('D5');
    await d.advance(900);
    d.stations.releaseAnswers();
    await d.advance(2000);
    expect(d.stations.offline.has('D5')).toBe(true);
    expect(d.worst()).toBeLessThanOrEqual(1);
    // The four still connected share the curtailed connection; the one cut off is back on its default.
    expect(d.drawing('D1', 'D2', 'D3', 'D4', 'D5')).toEqual([25_000, 25_000, 25_000, 25_000, 0]);
  });

  it('counts a station that lost its connection before answering at the larger of the grants it may hold', async () => {
    // At 100 s a fifth bus arrives and its station drops off the moment it has installed its
    // 120 kW grant: no answer came, but it holds the grant until it runs out (1,300 s). The four
    // others may not take that power back before then.
    const d = await depot(100_000);
    await d.plugIn('D1', 'D2', 'D3', 'D4');
    await d.advance(90);
    d.stations.dropAfterInstall.add('D5');
    await d.plugIn('D5');
    await d.advance(600);
    expect(d.stations.offline.has('D5')).toBe(true);
    expect(d.drawing('D1', 'D2', 'D3', 'D4', 'D5')).toEqual([120_000, 120_000, 120_000, 120_000, 120_000]);
    await d.advance(1000);
    expect(d.worst()).toBeLessThanOrEqual(1);
    // Once the grant it holds has run out, the others take the connection again.
    expect(d.drawing('D1', 'D2', 'D3', 'D4', 'D5')).toEqual([150_000, 150_000, 150_000, 150_000, 0]);
  });

  it('renews a lender in every round that lends its power on, so borrowers cannot outlast it if the central system stops', async () => {
    // Five 300 kW stations; defaults of 100 kW fit the 600 kW five times. The plan holds D1's bus
    // at 0 W (a cheaper hour is coming): D1 lends its default to the others. At 300 s D5's bus
    // draws little and D2–D4 are raised. Then the central system stops. D1's grant, sent at 0 s and
    // unchanged since, runs out at 1,200 s and D1 is back at its 100 kW default, while the raises
    // of 300 s last until 1,500 s.
    const d = await depot(100_000, 300_000, 100_000, 300_000);
    planD1AtZero(d.balancer);
    await d.plugIn('D1', 'D2', 'D3', 'D4', 'D5');
    await d.advance(300);
    expect(d.drawing('D1', 'D2', 'D3', 'D4', 'D5')).toEqual([0, 150_000, 150_000, 150_000, 150_000]);
    await d.meter('D5', 20_000);
    await d.advance(20);
    const now = d.clock.now();
    expect(d.drawW('D1', now)).toBe(0);
    expect(['D2', 'D3', 'D4'].every((id) => d.drawW(id, now) > 180_000)).toBe(true);
    d.balancer.stop();
    await d.advance(1400);
    expect(d.worst()).toBeLessThanOrEqual(1);
  });

  it('counts an offline lender at its default from the moment its grant runs out', async () => {
    // As above, D1 lends its 100 kW default. At 300 s it loses its connection; at 800 s the others'
    // grants are renewed until 2,000 s. D1's grant runs out at 1,200 s and, offline, nobody can
    // renew it: from then on it may draw its default, and the renewals must leave room for that.
    const d = await depot(100_000, 300_000, 100_000, 300_000);
    planD1AtZero(d.balancer);
    await d.plugIn('D1', 'D2', 'D3', 'D4', 'D5');
    await d.advance(300);
    d.stations.goOffline('D1');
    await d.advance(1500);
    expect(d.worst()).toBeLessThanOrEqual(1);
    expect(d.drawing('D1', 'D2', 'D3', 'D4', 'D5')).toEqual([100_000, 125_000, 125_000, 125_000, 125_000]);
  });

  it('sends no raise a refused lower was to make room for', async () => {
    // At 100 s a fifth bus arrives and the four grants of 150 kW are to be lowered to 120 kW, but
    // D1 refuses its profile (as a station does with a TxProfile for a transaction it does not know
    // yet) and keeps drawing 150 kW until its grant runs out at 1,200 s.
    const d = await depot(100_000);
    await d.plugIn('D1', 'D2', 'D3', 'D4');
    await d.advance(50);
    d.stations.refusing.add('D1');
    await d.advance(50);
    await d.plugIn('D5');
    await d.advance(100);
    // D5 gets what D1's refusal leaves.
    expect(d.drawing('D1', 'D2', 'D3', 'D4', 'D5')).toEqual([150_000, 112_500, 112_500, 112_500, 112_500]);
    await d.advance(1900);
    expect(d.worst()).toBeLessThanOrEqual(1);
    expect(d.drawing('D1', 'D2', 'D3', 'D4', 'D5')).toEqual([0, 150_000, 150_000, 150_000, 150_000]);
  });

  it('renews no borrower when renewing a lender did not take', async () => {
    // D1 lends its 100 kW default (the plan holds it at 0); D2–D5 borrow at 150 kW. All grants were
    // sent at 0 s and are due together at 800 s, but D1 refuses from 700 s on: its grant still ends
    // at 1,200 s, and from then on it draws its default. D2–D5 lose their connection the moment they
    // install their next profile: a borrower renewed at 800 s would hold 150 kW until 2,000 s.
    const d = await depot(100_000, 300_000, 100_000);
    planD1AtZero(d.balancer);
    await d.plugIn('D1', 'D2', 'D3', 'D4', 'D5');
    await d.advance(700);
    expect(d.drawing('D1', 'D2', 'D3', 'D4', 'D5')).toEqual([0, 150_000, 150_000, 150_000, 150_000]);
    d.stations.refusing.add('D1');
    for (const id of ['D2', 'D3', 'D4', 'D5']) d.stations.dropAfterInstall.add(id);
    await d.advance(1200);
    expect(d.worst()).toBeLessThanOrEqual(1);
    expect(d.drawing('D1', 'D2', 'D3', 'D4', 'D5')).toEqual([100_000, 125_000, 125_000, 125_000, 125_000]);
  });

  it('sends a profile refused once again at once (it may have crossed the StartTransaction answer)', async () => {
    const d = await depot(100_000);
    await d.plugIn('D1', 'D2', 'D3', 'D4');
    await d.advance(90);
    d.stations.refusingOnce.add('D5');
    await d.plugIn('D5');
    await d.advance(10);
    expect(d.stations.refusingOnce.has('D5')).toBe(false);
    expect(d.drawing('D1', 'D2', 'D3', 'D4', 'D5')).toEqual([120_000, 120_000, 120_000, 120_000, 120_000]);
    expect(d.worst()).toBeLessThanOrEqual(1);
  });
});
