import { allocate, type Allocation, type ReservedPower } from '../charging/balancer/allocate.js';
import { txProfileExpiresAt, txProfileForAllocation } from '../charging/envelope/envelope.js';
import { flattenSite, limitOfNodeAt, sessionKey, siteOverWindow, type ChargingSessionDemand, type Site, type StationElectricalSpec } from '../charging/site/model.js';
import type { LiveLoad } from './live-load.js';
import type { PlanSource } from './site-planner.js';
import type { Clock, CommandSender, EventBus, Store } from './ports.js';
import { siteModel, type StoredSite } from './sites.js';
import type { Transaction } from './types.js';

export interface BalancerOptions {
  /** How long a TxProfile grants an allocation; renewed before it runs out while the station is connected. */
  txProfileValidityS: number;
  /** Renew this long before a TxProfile runs out. */
  renewBeforeS: number;
  /** Clocks of station and CSMS may differ by this much; reservations for offline stations last that much longer. */
  clockSkewS: number;
  /** At most one raise per connector this often; lowering is never delayed (it is what keeps the site safe). */
  minUpdateIntervalS: number;
  /** Events within this window are balanced together (real milliseconds). */
  debounceMs: number;
  /** How often (real milliseconds) renewals and expiries are checked. */
  housekeepingMs: number;
  supplyVoltage: number;
  /** TxDefaultProfile per connector when no failsafe sizing is available (W). */
  log?: { warn: (obj: object, msg: string) => void; info?: (obj: object, msg: string) => void };
}

/** The stable profile ids the balancer uses per connector, so each new one replaces the last. */
export const balancerProfileId = (connectorId: number) => 1_000_000 + connectorId;

/** Sessions with a plan rank above every priority class an operator can give (0–100). */
export const plannedPriorityBoost = 1000;

interface Grant {
  powerW: number;
  phases: 1 | 2 | 3;
  transactionId: number;
  /** When the TxProfile carrying this grant stops applying (CSMS clock, ms). */
  expiresAt: number;
  sentAt: number;
}

interface SiteState {
  stored: StoredSite;
  site: Site;
  stations: StationElectricalSpec[];
  priorities: Map<string, number>;
  lastAllocation?: Allocation;
  /** The limits in force when last looked at, to notice when one starts or ends. */
  limitsInForce?: string;
  lastRunAt?: string;
  timer?: NodeJS.Timeout;
}

/**
 * Live load balancing of every site: on each event that matters it computes a new allocation
 * (the pure `allocate`) and sends each connector whose share changed a TxProfile that grants it
 * for a bounded time. A station that drops off keeps its last grant until that runs out, and the
 * balancer keeps reserving it until then (docs/smart-charging.md, "The safe envelope").
 */
export class SiteBalancer {
  private readonly sites = new Map<string, SiteState>();
  private readonly siteOfStation = new Map<string, string>();
  /** What each connector was last granted (key: station#connector). */
  private readonly grants = new Map<string, Grant>();
  /** Power a connector may draw without a grant: the failsafe default (W). */
  private readonly defaultPowerW = new Map<string, number>();
  /** Each station's TxDefaultProfile, for the tail of the TxProfiles it is sent. */
  private readonly failsafeDefault = new Map<string, { unit: 'A' | 'W'; limit: number }>();
  private housekeeping?: NodeJS.Timeout;
  private sending = new Map<string, Promise<unknown>>();
  /**
   * Each site's rounds, one after another: a round counts what the rounds before it granted, and
   * its lowers must be confirmed before its raises, which another round running alongside would undo.
   */
  private readonly rounds = new Map<string, { chain: Promise<unknown>; waiting: number }>();
  /**
   * A connector whose station refused balancer profiles or left them unanswered: when last (CSMS
   * clock, ms) and how many times in a row. Cleared when it takes one.
   */
  private readonly refusals = new Map<string, { at: number; inARow: number }>();
  private planSource?: PlanSource;

  constructor(
    private readonly store: Store,
    private readonly events: EventBus,
    private readonly clock: Clock,
    private readonly sender: CommandSender,
    private readonly liveLoad: LiveLoad,
    private readonly options: BalancerOptions,
    /** Sends a station its failsafe profiles; set by the safe envelope. */
    private readonly failsafe?: (siteId: string, stationIds: string[]) => Promise<void>,
  ) {}

  async start(): Promise<void> {
    for (const stored of await this.store.listSites()) this.load(stored);
    this.events.subscribe((e) => {
      switch (e.type) {
        case 'transaction.started':
        case 'transaction.stopped':
          return this.touch(e.transaction.stationId);
        case 'station.connected':
        case 'station.disconnected':
          return this.touch(e.stationId);
        case 'station.booted':
          if (e.registration === 'accepted') {
            const siteId = this.siteOfStation.get(e.stationId);
            if (siteId && this.failsafe) void this.failsafe(siteId, [e.stationId]).catch((err) => this.warn({ stationId: e.stationId, err }, 'failsafe profiles not installed'));
            this.touch(e.stationId);
          }
          return;
        case 'meter.values': {
          // A vehicle drawing well below its grant frees power for others.
          const grant = this.grants.get(sessionKey(e.stationId, e.connectorId));
          const load = this.liveLoad.of(e.stationId, e.connectorId);
          if (grant && load && load.powerW < grant.powerW * 0.8 - 500) this.touch(e.stationId);
          return;
        }
      }
    });
    this.housekeeping = setInterval(() => this.renewAndExpire(), this.options.housekeepingMs);
    this.housekeeping.unref();
  }

  stop(): void {
    clearInterval(this.housekeeping);
    for (const s of this.sites.values()) clearTimeout(s.timer);
  }

  /** A site was created, changed or deleted: rebuild its model and rebalance. */
  async reloadSite(siteId: string): Promise<void> {
    const stored = await this.store.getSite(siteId);
    const old = this.sites.get(siteId);
    if (old) {
      clearTimeout(old.timer);
      for (const s of old.stations) this.siteOfStation.delete(s.stationId);
      this.sites.delete(siteId);
    }
    if (!stored) return;
    const state = this.load(stored);
    if (this.failsafe) await this.failsafe(siteId, state.stations.map((s) => s.stationId).filter((id) => this.sender.isConnected(id)));
    this.schedule(siteId);
  }

  private load(stored: StoredSite): SiteState {
    const { site, stations, priorities } = siteModel(stored);
    const state: SiteState = { stored, site, stations, priorities };
    this.sites.set(stored.id, state);
    for (const s of stations) this.siteOfStation.set(s.stationId, stored.id);
    return state;
  }

  /** A station's failsafe: its TxDefaultProfile limit and what each connector may draw under it. */
  setFailsafe(stationId: string, txDefault: { unit: 'A' | 'W'; limit: number }, connectorIds: number[], powerW: number): void {
    this.failsafeDefault.set(stationId, txDefault);
    for (const c of connectorIds) this.defaultPowerW.set(sessionKey(stationId, c), powerW);
  }

  /** The charging planner: sessions it plans are granted at most their plan, before the others. */
  usePlans(source: PlanSource): void {
    this.planSource = source;
  }

  /** Rebalance a site soon (a new plan, for instance). */
  touchSite(siteId: string): void {
    this.schedule(siteId);
  }

  siteState(siteId: string): SiteState | undefined {
    return this.sites.get(siteId);
  }

  grantOf(stationId: string, connectorId: number): Grant | undefined {
    return this.grants.get(sessionKey(stationId, connectorId));
  }

  private touch(stationId: string): void {
    const siteId = this.siteOfStation.get(stationId);
    if (siteId) this.schedule(siteId);
  }

  private schedule(siteId: string): void {
    const state = this.sites.get(siteId);
    if (!state || state.timer) return;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      void this.rebalance(siteId).catch((err) => this.warn({ siteId, err }, 'rebalance failed'));
    }, this.options.debounceMs);
  }

  private warn(obj: { err?: unknown } & Record<string, unknown>, msg: string): void {
    this.options.log?.warn({ ...obj, err: obj.err instanceof Error ? obj.err.message : obj.err }, msg);
  }

  /** Computes a new allocation for a site and sends the changes, after any round still running. Returns the allocation. */
  async rebalance(siteId: string): Promise<Allocation | undefined> {
    const rounds = this.rounds.get(siteId) ?? { chain: Promise.resolve(), waiting: 0 };
    this.rounds.set(siteId, rounds);
    rounds.waiting += 1;
    const round = rounds.chain.then(() => {
      rounds.waiting -= 1;
      return this.round(siteId);
    });
    rounds.chain = round.catch(() => undefined);
    return round;
  }

  /** A round that has yet to start (and so will see the clock as it is then) is coming for the site. */
  private roundComing(siteId: string): boolean {
    return this.sites.get(siteId)?.timer !== undefined || (this.rounds.get(siteId)?.waiting ?? 0) > 0;
  }

  /**
   * One round at `now`: the allocation must fit every limit until the TxProfiles it sends run out,
   * and every TxProfile it sends (changes and renewals alike) is issued at `now`, so none of them
   * outlives the window that was checked, however long the sending takes.
   */
  private async round(siteId: string): Promise<Allocation | undefined> {
    const state = this.sites.get(siteId);
    if (!state) return undefined;
    const now = this.clock.now();
    const nowMs = now.getTime();
    const inSite = new Set(state.stations.map((s) => s.stationId));
    const active = (await this.store.listTransactions({ active: true, limit: 100000, offset: 0 })).filter((t) => inSite.has(t.stationId));
    const voltage = state.site.supplyVoltage ?? this.options.supplyVoltage;

    const sessions: ChargingSessionDemand[] = [];
    const reserved: ReservedPower[] = [];
    const connectedTx: Transaction[] = [];
    /** What each session's connector may draw right now: its valid grant, else its failsafe default. */
    const mayDrawNow: number[] = [];
    const grantNow: Array<Grant | undefined> = [];
    const defaultNow: number[] = [];
    // A grant lasts until its TxProfile expires: it must fit every limit in force until then.
    const until = new Date(nowMs + (this.options.txProfileValidityS + this.options.clockSkewS) * 1000);
    let anyPlanned = false;
    const txOn = new Map(active.map((t) => [sessionKey(t.stationId, t.connectorId), t]));
    for (const spec of state.stations) {
      const connected = this.sender.isConnected(spec.stationId);
      for (const connector of spec.connectors) {
        const key = sessionKey(spec.stationId, connector.connectorId);
        const t = txOn.get(key);
        const validGrant = this.grantInForce(key, t?.id, nowMs);
        const fallback = this.defaultPowerW.get(key) ?? 0;
        const phases = t ? this.vehiclePhases(spec, t) : spec.kind === 'DC' ? 3 : spec.phases;
        // A station that refused its last two profiles, or did not answer them, is left as it is for
        // a while and counted at what it may draw: sending it the same again would only hold up every
        // raise of the site. Once is tried again at once: a profile that crossed our
        // StartTransaction answer on the way is refused for a transaction the station did not know yet.
        const refusal = this.refusals.get(key);
        const refused = refusal !== undefined && refusal.inARow >= 2 && refusal.at > nowMs - this.options.renewBeforeS * 1000;
        if (!connected || !t || refused) {
          // Nothing to change here, but it counts: an offline station may draw its grant until it
          // expires and its default after (so both, where the grant ends before what this round
          // checks does); an idle connector may start drawing its default any moment.
          const powerW = !validGrant ? fallback : t && validGrant.expiresAt >= until.getTime() ? validGrant.powerW : Math.max(validGrant.powerW, fallback);
          if (powerW > 0) reserved.push({ stationId: spec.stationId, connectorId: connector.connectorId, powerW, phases });
          continue;
        }
        connectedTx.push(t);
        mayDrawNow.push(validGrant ? validGrant.powerW : fallback);
        grantNow.push(validGrant);
        defaultNow.push(fallback);
        const measured = this.liveLoad.of(t.stationId, t.connectorId);
        const minPowerW = spec.kind === 'AC' ? 6 * voltage * Math.min(phases, spec.phases) : 0;
        const plan = this.planSource?.planned(t.stationId, t.connectorId, t.id, nowMs);
        if (plan) anyPlanned = true;
        sessions.push({
          stationId: t.stationId,
          connectorId: t.connectorId,
          vehiclePhases: phases,
          minPowerW,
          // A plan is a ceiling: what the planner gives now, raised to the AC minimum (the LP knows
          // no minimum; every limit is still checked by allocate) or 0 where it waits.
          maxPowerW: plan ? Math.min(connector.maxPowerW, plan.powerW > 1 ? Math.max(plan.powerW, minPowerW) : 0) : connector.maxPowerW,
          measuredPowerW: measured?.powerW,
          previousAllocationW: validGrant?.powerW,
          priority: (state.priorities.get(spec.stationId) ?? 0) + (plan ? plannedPriorityBoost : 0),
          ...(plan ? { departure: plan.departure, energyNeededWh: plan.energyNeededWh } : {}),
        });
      }
    }
    const allocation = allocate({
      site: siteOverWindow(state.site, now, until),
      stations: state.stations,
      sessions,
      now,
      reserved,
      // Planned sessions get their plan before the rest share what is left: under equal shares
      // that takes priority classes (everyone else is in one class, as before).
      options: { strategy: anyPlanned && (state.stored.definition.strategy ?? 'equal-share') === 'equal-share' ? 'priority' : (state.stored.definition.strategy ?? 'equal-share') },
    });
    state.lastAllocation = allocation;
    state.lastRunAt = now.toISOString();

    // Lower first and wait for the stations to accept, then raise: at no moment does the sum of
    // what stations may draw exceed what the new allocation counted. A grant about to run out is
    // renewed here, in a round, at what this round allocates: renewed as it was, it would last into
    // a time whose limits nobody checked (a curtailment that starts after the old grant ends).
    const changes = allocation.sessions.map((a, i) => ({ a, t: connectedTx[i]!, before: mayDrawNow[i]!, grant: grantNow[i], defaultW: defaultNow[i]! }));
    const raising = changes.filter((c) => c.a.powerW > c.before + 1);
    const lowering = changes.filter((c) => c.a.powerW < c.before - 1);
    // The same power, sent to a connector without a grant or renewed: at or below its default it
    // only makes room and goes with the lowers; above it, it borrows for longer and goes with the
    // raises, so that it is not sent if making room failed.
    for (const c of changes) {
      if (Math.abs(c.a.powerW - c.before) > 1 || (c.grant && !this.renewalDue(c.grant, nowMs))) continue;
      (c.a.powerW <= c.defaultW + 1 ? lowering : raising).push(c);
    }
    // A connector granted less than its default lends the rest to others. A borrower sent a grant
    // now keeps it until now + validity; the lender must not get its default back before then, or
    // a central system that stops right after this round leaves the site over its limit. So the
    // lenders whose grant ends sooner are renewed, with the lowers.
    const expiresAt = txProfileExpiresAt(now, this.options.txProfileValidityS).getTime();
    const borrows = [...lowering, ...raising].some((c) => c.a.powerW > c.defaultW + 1);
    if (borrows) {
      for (const c of changes) {
        const lender = c.a.powerW < c.defaultW - 1 && c.grant !== undefined && c.grant.expiresAt < expiresAt;
        if (lender && !lowering.includes(c) && !raising.includes(c)) lowering.push(c);
      }
    }
    const lowered = await Promise.all(lowering.map((c) => this.grant(c.t, c.a.powerW, c.a.phases, voltage, now)));
    if (lowered.some((outcome) => outcome !== 'accepted')) {
      // A lower that did not take leaves its power with its station, and the raises counted on it:
      // none is sent. A new round counts what each station may draw now.
      this.schedule(siteId);
      return allocation;
    }
    const raised = await Promise.all(
      raising.map(async (c) => {
        if (c.grant && !this.renewalDue(c.grant, nowMs) && nowMs - c.grant.sentAt < this.options.minUpdateIntervalS * 1000) {
          // Raised again soon: wait, so a charger is not flooded; a later round raises it.
          setTimeout(() => this.schedule(siteId), this.options.minUpdateIntervalS * 1000).unref();
          return 'accepted';
        }
        return this.grant(c.t, c.a.powerW, c.a.phases, voltage, now);
      }),
    );
    // What a refused raise would have taken goes to the others in a new round.
    if (raised.some((outcome) => outcome !== 'accepted')) this.schedule(siteId);
    return allocation;
  }

  /** Below this an AC vehicle stops (6 A per phase); DC has no such floor. */
  private minimumPowerW(stationId: string, phases: 1 | 2 | 3, voltage: number): number {
    const siteId = this.siteOfStation.get(stationId);
    const spec = siteId ? this.sites.get(siteId)?.stations.find((s) => s.stationId === stationId) : undefined;
    return spec?.kind === 'AC' ? 6 * voltage * Math.min(phases, spec.phases) : 0;
  }

  private vehiclePhases(spec: StationElectricalSpec, t: Transaction): 1 | 2 | 3 {
    if (spec.kind === 'DC') return 3;
    if (spec.phases === 1) return 1;
    // A car drawing on fewer phases shows it in its per-phase currents.
    const load = this.liveLoad.of(t.stationId, t.connectorId);
    if (!load || load.powerW < 500) return 3;
    const drawing = [load.currentA.L1, load.currentA.L2, load.currentA.L3].filter((a) => a > 1).length;
    return (drawing === 0 ? 3 : drawing) as 1 | 2 | 3;
  }

  /**
   * Sends (or renews) the TxProfile that grants a connector `powerW` from `issuedAt`, the time of the
   * round that checked it, until issuedAt + validity: a profile that goes out later lasts no longer.
   */
  private async grant(t: Transaction, powerW: number, phases: 1 | 2 | 3, voltage: number, issuedAt: Date): Promise<'accepted' | 'refused' | 'unanswered'> {
    const key = sessionKey(t.stationId, t.connectorId);
    const previous = this.sending.get(key) ?? Promise.resolve();
    const run = previous.then(async (): Promise<'accepted' | 'refused' | 'unanswered'> => {
      const now = issuedAt;
      const validity = this.options.txProfileValidityS;
      const nowMs = now.getTime();
      const plan = this.planSource?.planned(t.stationId, t.connectorId, t.id, nowMs);
      const { profile } = txProfileForAllocation({ powerW, phases }, { transactionId: t.id, connectorId: t.connectorId }, now, {
        validForS: validity,
        unit: 'W',
        supplyVoltage: voltage,
        chargingProfileId: balancerProfileId(t.connectorId),
        stackLevel: 0,
        clockSkewS: this.options.clockSkewS,
        // Without a known failsafe the tail cannot go below the grant itself.
        txDefault: this.failsafeDefault.get(t.stationId) ?? { unit: 'W', limit: powerW },
        // The plan's next steps, where it lowers the grant (a cheaper hour coming is not a raise).
        plan: plan?.periods
          .filter((p) => p.startMs > nowMs)
          .map((p) => ({ offsetS: (p.startMs - nowMs) / 1000, powerW: p.powerW > 1 ? Math.max(p.powerW, this.minimumPowerW(t.stationId, phases, voltage)) : 0 })),
      });
      try {
        const answer = await this.sender.send(t.stationId, 'SetChargingProfile', { connectorId: t.connectorId, csChargingProfiles: profile }, { source: 'balancer' });
        if (answer.status === 'Accepted') {
          this.grants.set(key, { powerW, phases, transactionId: t.id, expiresAt: txProfileExpiresAt(now, validity).getTime(), sentAt: now.getTime() });
          this.refusals.delete(key);
          return 'accepted';
        }
        // The station keeps what it held (a TxProfile for a transaction it does not know yet, for one).
        this.noteRefusal(key, now);
        this.warn({ stationId: t.stationId, connectorId: t.connectorId, answer }, 'station rejected the balancer profile');
        return 'refused';
      } catch (err) {
        // No answer: the station may hold the new profile or the old one. Count the larger of the
        // two until the later one ends; the next round sends a profile that settles it.
        // Without the old grant, or once it ends before the new one would, that is its default.
        const held = this.grantInForce(key, t.id, now.getTime());
        const expiresAt = txProfileExpiresAt(now, validity).getTime();
        const fallback = held && held.expiresAt >= expiresAt ? 0 : (this.defaultPowerW.get(key) ?? 0);
        const mayDraw = Math.max(powerW, held?.powerW ?? 0, fallback);
        this.grants.set(key, { powerW: mayDraw, phases: held && held.powerW > powerW ? held.phases : phases, transactionId: t.id, expiresAt: Math.max(expiresAt, held?.expiresAt ?? 0), sentAt: now.getTime() });
        this.noteRefusal(key, now);
        this.warn({ stationId: t.stationId, err }, 'balancer profile not delivered');
        return 'unanswered';
      }
    });
    this.sending.set(key, run);
    return run;
  }

  /**
   * The grant a connector holds at `nowMs` for its transaction (for whichever, where none runs). The
   * TxProfile carries the clock-skew margin itself, so a grant ends exactly at expiresAt.
   */
  private grantInForce(key: string, transactionId: number | undefined, nowMs: number): Grant | undefined {
    const grant = this.grants.get(key);
    return grant && (transactionId === undefined || grant.transactionId === transactionId) && grant.expiresAt > nowMs ? grant : undefined;
  }

  private renewalDue(grant: Grant, nowMs: number): boolean {
    return grant.expiresAt - nowMs <= this.options.renewBeforeS * 1000;
  }

  private noteRefusal(key: string, at: Date): void {
    this.refusals.set(key, { at: at.getTime(), inARow: (this.refusals.get(key)?.inARow ?? 0) + 1 });
  }

  /** Starts a round where grants of connected stations are about to run out, and drops grants that ended. */
  private renewAndExpire(): void {
    const now = this.clock.now();
    const nowMs = now.getTime();
    for (const [siteId, state] of this.sites) {
      // A limit that starts or ends (an external curtailment at 14:00) is a reason to rebalance.
      const limits = JSON.stringify(flattenSite(state.site).map(({ node }) => limitOfNodeAt(node, now)));
      if (limits !== state.limitsInForce) {
        state.limitsInForce = limits;
        this.schedule(siteId);
      }
      const allocation = state.lastAllocation;
      if (!allocation) continue;
      const due = allocation.sessions.filter((a) => {
        const g = this.grants.get(sessionKey(a.stationId, a.connectorId));
        return g !== undefined && this.sender.isConnected(a.stationId) && this.renewalDue(g, nowMs);
      });
      // A round renews them: one that is coming will, else one starts now (a renewal does not
      // wait for the debounce; it is late already if the process was held up).
      if (due.length > 0 && !this.roundComing(siteId)) void this.rebalance(siteId).catch((err) => this.warn({ siteId, err }, 'renewal round failed'));
    }
    // An expired grant no longer binds the station (it is back on its failsafe default): forget it.
    for (const [key, g] of this.grants) if (g.expiresAt <= nowMs) this.grants.delete(key);
  }
}
