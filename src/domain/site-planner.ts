import { planWithHeuristic } from '../charging/planner/heuristics.js';
import { loadHighsSolver, planWithLp, type LpSolver } from '../charging/planner/lp.js';
import type { Plan, PlanningProblem } from '../charging/planner/model.js';
import { floorTenth } from '../charging/profiles/fit.js';
import type { ChargingProfile } from '../charging/profiles/model.js';
import { siteProblem, type PlannedSession } from '../charging/planner/site-problem.js';
import { sessionKey } from '../charging/site/model.js';
import { currentTrip, departureSocPct, resolveNeeds, tripNeedKwh, type ResolvedNeeds, type Vehicle, type VehicleTrip } from './fleet.js';
import type { Clock, EventBus, Store } from './ports.js';
import { siteModel, type StoredSite } from './sites.js';
import type { Transaction } from './types.js';

export interface PlannerOptions {
  /** Length of a plan step, s (the live plan's resolution). */
  stepS: number;
  /** How far ahead a plan looks, s. */
  horizonS: number;
  /** Solver budget per re-plan, s; past it least-laxity-first plans instead. */
  timeBudgetS: number;
  /** Re-plan each site at least this often (s), besides on events. */
  replanEveryS: number;
  /** Events within this window are planned together (real ms). */
  debounceMs: number;
  /** How often (real ms) the periodic re-plan is checked. */
  housekeepingMs: number;
  supplyVoltage: number;
  /** A session short by at least this much (kWh) raises a ChargingShortfall alarm. */
  shortfallAlarmKwh: number;
  log?: { warn: (obj: object, msg: string) => void; info?: (obj: object, msg: string) => void };
}

/** One controlled session in a site's plan. */
export interface PlannedVehicle {
  transactionId: number;
  stationId: string;
  connectorId: number;
  vehicleId: string | null;
  departure: string;
  needKwh: number;
  plannedKwh: number;
  shortfallKwh: number;
  socPct: number | null;
  targetSocPct: number | null;
  /** SoC at departure if the plan is followed, when it can be told. */
  departureSocPct: number | null;
  /** Power while plugged in per interval, kW. */
  powerKw: number[];
  sources: ResolvedNeeds['sources'];
}

export interface SitePlan {
  siteId: string;
  plannedAt: string;
  method: Plan['method'];
  fallbackReason: string | null;
  solveMs: number;
  intervals: Array<{ start: string; end: string }>;
  sitePowerKw: number[];
  vehicles: PlannedVehicle[];
  /** Sessions the plan does not control, and why: they get the balancer's fair share. */
  unplanned: Array<{ transactionId: number; stationId: string; connectorId: number; reason: string }>;
  /** Vehicles the timetable says will arrive at this site within the horizon: planned for, so that capacity is kept for them. */
  expected: ExpectedVehicle[];
}

export interface ExpectedVehicle {
  vehicleId: string;
  arrival: string;
  departure: string;
  needKwh: number;
  plannedKwh: number;
  shortfallKwh: number;
  targetSocPct: number | null;
  departureSocPct: number | null;
}

/** What the balancer asks of the plan for one connector. */
export interface PlannedPower {
  /** Power the plan gives now, W. */
  powerW: number;
  departure: Date;
  energyNeededWh: number;
  /** Plan values from now on: [startMs, powerW] pairs, increasing. */
  periods: Array<{ startMs: number; powerW: number }>;
}

/** Answers the balancer's question: what does the plan give this connector's session now. */
export interface PlanSource {
  planned(stationId: string, connectorId: number, transactionId: number, nowMs: number): PlannedPower | undefined;
}

interface SiteState {
  plan?: SitePlan;
  /** Start ms of each interval and the plan's rows by station#connector, for quick look-ups. */
  index?: { startMs: number[]; endMs: number[]; rows: Map<string, { transactionId: number; powerKw: number[]; departureMs: number; needKwh: number }> };
  timer?: NodeJS.Timeout;
  running: Promise<unknown>;
  nextDueMs: number;
}

export const shortfallAlarmType = 'ChargingShortfall';

/** A plan asked for something the site cannot have (an unknown connector). */
export class PlanRequestError extends Error {}

/**
 * The charging planner, live: for each site it gathers the sessions with known needs (explicit
 * needs, the fleet registry and timetable, the SoC the charger reports), plans them with the LP
 * (least-laxity-first when the solver fails or runs over its budget), hands the plan to the
 * balancer as a ceiling per session, and raises an alarm for each vehicle that will leave short.
 * It re-plans on the events that change the picture and at every step (model-predictive
 * control: it only ever knows who is plugged in now).
 *
 * Sessions without known needs are not planned: the balancer serves planned sessions first (up to
 * their plan) and shares what is left fairly among the rest. The plan therefore never waits on
 * energy an unknown session might want, and what it plans is what the balancer can grant.
 */
export class SitePlanner implements PlanSource {
  private readonly sites = new Map<string, SiteState>();
  private readonly siteOfStation = new Map<string, string>();
  /** Latest SoC per transaction, from MeterValues. */
  private readonly socOf = new Map<number, number>();
  /** Open shortfall alarms by what they are about: `tx:<id>` or `trip:<vehicle>@<departure>`. */
  private readonly openAlarms = new Map<string, number>();
  /** The site each trip alarm was raised for. */
  private readonly tripAlarmSite = new Map<string, string>();
  private solver?: Promise<LpSolver>;
  private housekeeping?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  /** Called after each re-plan, so that the balancer applies it. */
  onPlanned?: (siteId: string) => void;

  constructor(
    private readonly store: Store,
    private readonly events: EventBus,
    private readonly clock: Clock,
    private readonly options: PlannerOptions,
    private readonly loadSolver: () => Promise<LpSolver> = loadHighsSolver,
  ) {}

  async start(): Promise<void> {
    // Loaded now, so that the first session's plan does not wait for it.
    void this.solverOnce().catch((err) => this.warn({ err }, 'LP solver not loaded; least-laxity-first plans until it is'));
    for (const stored of await this.store.listSites()) this.index(stored);
    for (const alarm of await this.store.listAlarms({ active: true, type: shortfallAlarmType, limit: 10000 })) {
      const subject = (alarm.details as { subject?: string } | null)?.subject;
      if (typeof subject === 'string') this.openAlarms.set(subject, alarm.id);
      const siteId = (alarm.details as { siteId?: string }).siteId;
      if (typeof subject === 'string' && subject.startsWith('trip:') && typeof siteId === 'string') this.tripAlarmSite.set(subject, siteId);
    }
    this.unsubscribe = this.events.subscribe((e) => {
      switch (e.type) {
        case 'transaction.started':
          return this.touchStation(e.transaction.stationId);
        case 'transaction.stopped':
          this.socOf.delete(e.transaction.id);
          void this.clearShortfall(`tx:${e.transaction.id}`).catch((err) => this.warn({ err }, 'shortfall alarm not cleared'));
          return this.touchStation(e.transaction.stationId);
        case 'meter.values': {
          if (e.transactionId === null) return;
          // Every MeterValues passes here: the newest SoC, found without copying the readings.
          let soc: (typeof e.readings)[number] | undefined;
          for (let i = e.readings.length - 1; i >= 0 && !soc; i--) if (e.readings[i]!.measurand === 'SoC' && e.readings[i]!.value !== null) soc = e.readings[i];
          if (!soc) return;
          const first = !this.socOf.has(e.transactionId);
          this.socOf.set(e.transactionId, soc.value!);
          // The first SoC of a session is what turns a target SoC into an energy need.
          if (first) this.touchStation(e.stationId);
          return;
        }
      }
    });
    this.housekeeping = setInterval(() => {
      const nowMs = this.clock.now().getTime();
      for (const [siteId, state] of this.sites) if (nowMs >= state.nextDueMs) this.schedule(siteId);
    }, this.options.housekeepingMs);
    this.housekeeping.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    clearInterval(this.housekeeping);
    for (const s of this.sites.values()) clearTimeout(s.timer);
  }

  /** A site was created, changed or deleted. */
  async reloadSite(siteId: string): Promise<void> {
    for (const [stationId, id] of this.siteOfStation) if (id === siteId) this.siteOfStation.delete(stationId);
    const stored = await this.store.getSite(siteId);
    if (!stored) {
      const state = this.sites.get(siteId);
      if (state) clearTimeout(state.timer);
      this.sites.delete(siteId);
      return;
    }
    this.index(stored);
    this.schedule(siteId);
  }

  /** Something about a station's sessions changed (needs, timetable, vehicle): re-plan its site soon. */
  touchStation(stationId: string): void {
    const siteId = this.siteOfStation.get(stationId);
    if (siteId) this.schedule(siteId);
  }

  /** Re-plans every site soon (after a timetable import or a change of vehicles). */
  touchAll(): void {
    for (const siteId of this.sites.keys()) this.schedule(siteId);
  }

  planOf(siteId: string): SitePlan | undefined {
    return this.sites.get(siteId)?.plan;
  }

  private index(stored: StoredSite): void {
    const { stations } = siteModel(stored);
    for (const s of stations) this.siteOfStation.set(s.stationId, stored.id);
    if (!this.sites.has(stored.id)) this.sites.set(stored.id, { running: Promise.resolve(), nextDueMs: 0 });
  }

  private schedule(siteId: string): void {
    const state = this.sites.get(siteId);
    if (!state || state.timer) return;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      void this.replan(siteId).catch((err) => this.warn({ siteId, err }, 're-plan failed'));
    }, this.options.debounceMs);
  }

  private warn(obj: { err?: unknown } & Record<string, unknown>, msg: string): void {
    this.options.log?.warn({ ...obj, err: obj.err instanceof Error ? obj.err.message : obj.err }, msg);
  }

  private solverOnce(): Promise<LpSolver> {
    this.solver ??= this.loadSolver().catch((err) => {
      // Try again next time; until then least-laxity-first plans.
      this.solver = undefined;
      throw err;
    });
    return this.solver;
  }

  /** What is known of a transaction's needs now: explicit needs, its vehicle and trip, its SoC. */
  async needsOf(transaction: Transaction, vehicles?: Vehicle[]): Promise<{ needs: ResolvedNeeds; vehicle?: Vehicle; trip?: VehicleTrip }> {
    const nowMs = this.clock.now().getTime();
    const explicit = await this.store.getSessionNeeds(transaction.id);
    const fleet = vehicles ?? (await this.store.listVehicles());
    const vehicle = explicit?.vehicleId
      ? fleet.find((v) => v.id === explicit.vehicleId)
      : fleet.find((v) => v.idTags.includes(transaction.idTag));
    let trip: VehicleTrip | undefined;
    if (vehicle) {
      const trips = await this.store.listTrips({ vehicleId: vehicle.id, departsAfter: new Date(nowMs).toISOString(), limit: 20 });
      trip = currentTrip(trips, vehicle.id, nowMs);
    }
    const needs = resolveNeeds({ transaction, needs: explicit, vehicle, trip, socPct: this.socOf.get(transaction.id) });
    return { needs, vehicle, trip };
  }

  /** Plans a site now and hands the plan to the balancer. One plan per site at a time. */
  replan(siteId: string): Promise<SitePlan | undefined> {
    const state = this.sites.get(siteId);
    if (!state) return Promise.resolve(undefined);
    const run = state.running.catch(() => undefined).then(() => this.planSite(siteId, state));
    state.running = run;
    return run;
  }

  private async planSite(siteId: string, state: SiteState): Promise<SitePlan | undefined> {
    const stored = await this.store.getSite(siteId);
    if (!stored) return undefined;
    const now = this.clock.now();
    state.nextDueMs = now.getTime() + this.options.replanEveryS * 1000;
    const { sitePlan, problem } = await this.buildPlan(stored, now);
    // Re-plan at the next step boundary too: that is where the plan's power changes, and where
    // model-predictive control decides again with what it knows then.
    const nextStep = problem.intervals[1]?.startMs;
    if (nextStep !== undefined) state.nextDueMs = Math.min(state.nextDueMs, nextStep);
    state.plan = sitePlan;
    state.index = {
      startMs: problem.intervals.map((i) => i.startMs),
      endMs: problem.intervals.map((i) => i.endMs),
      rows: new Map(sitePlan.vehicles.map((v) => [sessionKey(v.stationId, v.connectorId), { transactionId: v.transactionId, powerKw: v.powerKw, departureMs: Date.parse(v.departure), needKwh: v.needKwh }])),
    };
    if (sitePlan.fallbackReason) this.warn({ siteId, reason: sitePlan.fallbackReason }, 'planner fell back to least-laxity-first');
    // The balancer first: alarms are news, the new ceilings are what keeps the plan.
    this.onPlanned?.(siteId);
    await this.reportShortfalls(sitePlan);
    return sitePlan;
  }

  /**
   * The plan of a site's sessions now, with `extra` (a vehicle that is about to charge) planned
   * beside them when given. No side effects: nothing is stored, sent or raised.
   */
  private async buildPlan(
    stored: StoredSite,
    now: Date,
    extra?: { stationId: string; connectorId: number; departureMs: number; energyKwh: number; maxPowerKw?: number },
  ): Promise<{ sitePlan: SitePlan; problem: PlanningProblem; plan: Plan }> {
    const nowMs = now.getTime();
    const { site, stations } = siteModel(stored);
    const voltage = site.supplyVoltage ?? this.options.supplyVoltage;
    const specOf = new Map(stations.map((s) => [s.stationId, s]));
    const active = (await this.store.listTransactions({ active: true, limit: 100000, offset: 0 })).filter((t) => specOf.has(t.stationId));
    const vehicles = active.length > 0 ? await this.store.listVehicles() : [];

    const sessions: PlannedSession[] = [];
    const planned: Array<{ t: Transaction; needs: ResolvedNeeds; trip?: VehicleTrip }> = [];
    const unplanned: SitePlan['unplanned'] = [];
    const connectorMaxKw = (stationId: string, connectorId: number) => {
      const spec = specOf.get(stationId);
      const connector = spec?.connectors.find((c) => c.connectorId === connectorId);
      return spec && connector ? Math.min(connector.maxPowerW, spec.maxPowerW) / 1000 : undefined;
    };
    for (const t of active) {
      // The generated vehicle takes the place of whatever session its connector has now.
      if (extra && t.stationId === extra.stationId && t.connectorId === extra.connectorId) continue;
      const connectorKw = connectorMaxKw(t.stationId, t.connectorId);
      const { needs, trip } = await this.needsOf(t, vehicles);
      const reason =
        connectorKw === undefined ? `connector ${t.connectorId} is not in the site definition`
        : needs.departureMs === null ? 'no departure known'
        : needs.departureMs <= nowMs + 60_000 ? 'departure has passed'
        : needs.remainingKwh === null ? 'no energy need known'
        : null;
      if (reason !== null) {
        unplanned.push({ transactionId: t.id, stationId: t.stationId, connectorId: t.connectorId, reason });
        continue;
      }
      const maxPowerKw = Math.min(needs.maxPowerKw ?? Infinity, connectorKw!);
      sessions.push({ id: sessionKey(t.stationId, t.connectorId), stationId: t.stationId, energyNeedKwh: needs.remainingKwh!, maxPowerKw, departureMs: needs.departureMs! });
      planned.push({ t, needs, trip });
    }
    // Vehicles the timetable sends to this site within the horizon, not plugged in yet: planned
    // for (on the grid connection, their charger unknown) so that the plan keeps capacity for them.
    const expected: Array<{ trip: VehicleTrip; vehicle: Vehicle; needKwh: number }> = [];
    const pluggedIn = new Set(planned.map((p) => p.needs.vehicleId).filter((id) => id !== null));
    const activeTags = new Set(active.map((t) => t.idTag));
    const trips = await this.store.listTrips({ siteId: stored.id, departsAfter: new Date(nowMs + 60_000).toISOString(), arrivesBefore: new Date(nowMs + this.options.horizonS * 1000).toISOString(), limit: 10000 });
    const fleet = trips.length > 0 ? (vehicles.length > 0 ? vehicles : await this.store.listVehicles()) : [];
    const largestConnectorKw = Math.max(0, ...stations.flatMap((spec) => spec.connectors.map((c) => Math.min(c.maxPowerW, spec.maxPowerW) / 1000)));
    for (const trip of trips) {
      const vehicle = fleet.find((v) => v.id === trip.vehicleId);
      if (!vehicle || pluggedIn.has(vehicle.id) || vehicle.idTags.some((tag) => activeTags.has(tag))) continue;
      // Its current trip only: a later one is planned when this one is over.
      if (expected.some((e) => e.vehicle.id === vehicle.id)) continue;
      const needKwh = tripNeedKwh(trip, vehicle);
      if (needKwh === null) continue;
      expected.push({ trip, vehicle, needKwh });
      sessions.push({
        id: `trip:${vehicle.id}@${trip.departure}`,
        stationId: null,
        // A vehicle overdue is expected at the next step, not in the past.
        arrivalMs: Math.max(Date.parse(trip.arrival), nowMs + this.options.stepS * 1000),
        energyNeedKwh: needKwh,
        maxPowerKw: Math.min(vehicle.maxPowerKw ?? Infinity, largestConnectorKw),
        departureMs: Date.parse(trip.departure),
      });
    }
    if (extra) {
      const connectorKw = connectorMaxKw(extra.stationId, extra.connectorId);
      if (connectorKw === undefined) throw new PlanRequestError(`connector ${extra.connectorId} of station ${extra.stationId} is not in site ${stored.id}`);
      sessions.push({
        id: sessionKey(extra.stationId, extra.connectorId),
        stationId: extra.stationId,
        energyNeedKwh: extra.energyKwh,
        maxPowerKw: Math.min(extra.maxPowerKw ?? Infinity, connectorKw),
        departureMs: extra.departureMs,
      });
    }

    const signals = stored.definition.planning ?? {};
    const problem = siteProblem({
      site,
      stations,
      sessions,
      nowMs,
      stepS: this.options.stepS,
      horizonS: this.options.horizonS,
      supplyVoltage: voltage,
      prices: signals.prices?.map((p) => ({ startMs: Date.parse(p.start), value: p.pricePerKwh })),
      co2: signals.co2 ? { kgPerKwh: signals.co2.map((p) => ({ startMs: Date.parse(p.start), value: p.kgPerKwh })), weightPerKg: signals.co2CostPerKg ?? 0 } : undefined,
      demandChargePerKw: signals.demandChargePerKw,
    });
    const plan = await this.solve(problem);

    const sitePlan: SitePlan = {
      siteId: stored.id,
      plannedAt: now.toISOString(),
      method: plan.method,
      fallbackReason: plan.fallbackReason ?? null,
      solveMs: plan.solveMs,
      intervals: problem.intervals.map((i) => ({ start: new Date(i.startMs).toISOString(), end: new Date(i.endMs).toISOString() })),
      sitePowerKw: plan.sitePowerKw,
      vehicles: planned.map(({ t, needs, trip }, v) => {
        const plannedKwh = plan.energyKwh[v]!.reduce((a, b) => a + b, 0);
        return {
          transactionId: t.id,
          stationId: t.stationId,
          connectorId: t.connectorId,
          vehicleId: needs.vehicleId,
          departure: new Date(needs.departureMs!).toISOString(),
          needKwh: needs.remainingKwh!,
          plannedKwh,
          shortfallKwh: plan.unmetKwh[v]!,
          socPct: needs.socPct,
          targetSocPct: needs.targetSocPct,
          departureSocPct: departureSocPct(needs, plannedKwh, trip),
          powerKw: plan.powerKw[v]!,
          sources: needs.sources,
        };
      }),
      unplanned,
      expected: expected.map(({ trip, vehicle, needKwh }, k) => {
        const v = planned.length + k;
        const plannedKwh = plan.energyKwh[v]!.reduce((a, b) => a + b, 0);
        const target = trip.targetSocPct ?? vehicle.targetSocPct;
        return {
          vehicleId: vehicle.id,
          arrival: trip.arrival,
          departure: trip.departure,
          needKwh,
          plannedKwh,
          shortfallKwh: plan.unmetKwh[v]!,
          targetSocPct: target,
          departureSocPct: trip.arrivalSocPct !== null ? Math.min(100, trip.arrivalSocPct + (plannedKwh / vehicle.batteryKwh) * 100) : null,
        };
      }),
    };
    return { sitePlan, problem, plan };
  }

  /**
   * The charging profile a vehicle about to charge on a connector should get: it is planned
   * together with every session of the station's site (what a re-plan at its plug-in would do),
   * and its row of that plan becomes an Absolute TxProfile from now to its departure. A station
   * in no site is planned alone, within its own limits.
   */
  async generateProfile(req: {
    stationId: string;
    connectorId: number;
    departure: Date;
    energyKwh: number;
    maxPowerKw?: number;
    transactionId?: number;
    unit: 'W' | 'A';
    phases: 1 | 2 | 3;
    chargingProfileId: number;
    stackLevel: number;
  }): Promise<{ profile: ChargingProfile; plannedKwh: number; shortfallKwh: number; method: Plan['method']; intervals: SitePlan['intervals']; powerKw: number[]; sitePowerKw: number[]; siteId: string | null }> {
    const now = new Date(Math.floor(this.clock.now().getTime() / 1000) * 1000);
    const siteId = this.siteOfStation.get(req.stationId) ?? null;
    const stored: StoredSite = (siteId ? await this.store.getSite(siteId) : undefined) ?? {
      id: `station:${req.stationId}`,
      definition: { name: req.stationId, stations: [{ id: req.stationId, connectors: Math.max(1, req.connectorId), ...(req.maxPowerKw ? { maxPowerW: req.maxPowerKw * 1000 } : {}) }] },
      externalLimits: [],
      updatedAt: now.toISOString(),
    };
    const { problem, plan } = await this.buildPlan(stored, now, {
      stationId: req.stationId,
      connectorId: req.connectorId,
      departureMs: req.departure.getTime(),
      energyKwh: req.energyKwh,
      maxPowerKw: req.maxPowerKw,
    });
    const v = problem.vehicles.length - 1;
    const voltage = stored.definition.supplyVoltage ?? this.options.supplyVoltage;
    const startMs = problem.intervals[0]!.startMs;
    const periods: ChargingProfile['chargingSchedule']['chargingSchedulePeriod'] = [];
    problem.intervals.forEach((interval, i) => {
      const powerW = plan.powerKw[v]![i]! * 1000;
      // Rounded down to the tenth OCPP carries, so the profile never allows more than the plan.
      const limit = floorTenth(req.unit === 'A' ? powerW / (voltage * req.phases) : powerW);
      if (periods.length > 0 && periods[periods.length - 1]!.limit === limit) return;
      periods.push({ startPeriod: Math.round((interval.startMs - startMs) / 1000), limit, ...(req.unit === 'A' ? { numberPhases: req.phases } : {}) });
    });
    const endMs = Math.min(req.departure.getTime(), problem.intervals[problem.intervals.length - 1]!.endMs);
    const profile: ChargingProfile = {
      chargingProfileId: req.chargingProfileId,
      ...(req.transactionId !== undefined ? { transactionId: req.transactionId } : {}),
      stackLevel: req.stackLevel,
      chargingProfilePurpose: 'TxProfile',
      chargingProfileKind: 'Absolute',
      chargingSchedule: {
        duration: Math.max(1, Math.round((endMs - startMs) / 1000)),
        startSchedule: new Date(startMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        chargingRateUnit: req.unit,
        chargingSchedulePeriod: periods,
      },
    };
    return {
      profile,
      plannedKwh: plan.energyKwh[v]!.reduce((a, b) => a + b, 0),
      shortfallKwh: plan.unmetKwh[v]!,
      method: plan.method,
      intervals: problem.intervals.map((i) => ({ start: new Date(i.startMs).toISOString(), end: new Date(i.endMs).toISOString() })),
      powerKw: plan.powerKw[v]!,
      sitePowerKw: plan.sitePowerKw,
      siteId,
    };
  }

  private async solve(problem: PlanningProblem): Promise<Plan> {
    let solver: LpSolver;
    try {
      solver = await this.solverOnce();
    } catch (err) {
      return planWithHeuristic(problem, 'llf', 0, `solver not available: ${(err as Error).message}`);
    }
    return planWithLp(problem, solver, { timeLimitS: this.options.timeBudgetS });
  }

  planned(stationId: string, connectorId: number, transactionId: number, nowMs: number): PlannedPower | undefined {
    const siteId = this.siteOfStation.get(stationId);
    const index = siteId ? this.sites.get(siteId)?.index : undefined;
    const row = index?.rows.get(sessionKey(stationId, connectorId));
    if (!index || !row || row.transactionId !== transactionId) return undefined;
    const n = index.startMs.length;
    if (n === 0 || nowMs >= index.endMs[n - 1]!) return undefined;
    // The interval holding now (or the first, if the plan was made a moment after now).
    let i = 0;
    while (i + 1 < n && index.startMs[i + 1]! <= nowMs) i++;
    const periods: PlannedPower['periods'] = [];
    for (let k = i; k < n; k++) periods.push({ startMs: k === i ? nowMs : index.startMs[k]!, powerW: row.powerKw[k]! * 1000 });
    periods.push({ startMs: Math.max(nowMs, index.endMs[n - 1]!), powerW: 0 });
    const remainingKwh = row.powerKw.reduce((sum, p, k) => (k >= i ? sum + (p * (index.endMs[k]! - Math.max(nowMs, index.startMs[k]!))) / 3_600_000 : sum), 0);
    return { powerW: row.powerKw[i]! * 1000, departure: new Date(row.departureMs), energyNeededWh: Math.max(remainingKwh, 0) * 1000, periods };
  }

  /**
   * One open alarm per vehicle that will leave short, plugged in or expected; cleared when the
   * plan catches up or the session ends.
   */
  private async reportShortfalls(plan: SitePlan): Promise<void> {
    const threshold = (needKwh: number) => Math.max(this.options.shortfallAlarmKwh, 0.01 * needKwh);
    const subjects = new Set<string>();
    const report = async (
      subject: string,
      v: { vehicleId: string | null; departure: string; needKwh: number; plannedKwh: number; shortfallKwh: number; departureSocPct: number | null; targetSocPct: number | null },
      where: { stationId: string | null; connectorId?: number; transactionId?: number; arrival?: string },
    ) => {
      subjects.add(subject);
      const short = v.shortfallKwh >= threshold(v.needKwh);
      const open = this.openAlarms.get(subject);
      if (short && open === undefined) {
        const who = v.vehicleId ? `vehicle ${v.vehicleId}` : `the vehicle on ${where.stationId} connector ${where.connectorId}`;
        const message =
          v.departureSocPct !== null && v.targetSocPct !== null
            ? `${who} will leave at ${v.departure} with ${Math.floor(v.departureSocPct)} % instead of ${Math.round(v.targetSocPct)} %`
            : `${who} will leave at ${v.departure} with ${v.plannedKwh.toFixed(1)} of the ${v.needKwh.toFixed(1)} kWh it needs`;
        const alarm = await this.store.raiseAlarm({
          stationId: where.stationId,
          type: shortfallAlarmType,
          severity: 'warning',
          message: where.arrival ? `${message} (expected at ${where.arrival})` : message,
          details: { subject, siteId: plan.siteId, ...where, vehicleId: v.vehicleId, departure: v.departure, needKwh: v.needKwh, plannedKwh: v.plannedKwh, shortfallKwh: v.shortfallKwh, departureSocPct: v.departureSocPct, targetSocPct: v.targetSocPct },
          raisedAt: plan.plannedAt,
        });
        this.openAlarms.set(subject, alarm.id);
        this.events.publish({ type: 'alarm.raised', at: alarm.raisedAt, alarm });
      } else if (!short && open !== undefined && v.shortfallKwh < 0.5 * threshold(v.needKwh)) {
        // Cleared only well below the threshold, so a shortfall hovering at it does not flap.
        await this.clearShortfall(subject);
      }
    };
    for (const v of plan.vehicles) {
      await report(`tx:${v.transactionId}`, v, { stationId: v.stationId, connectorId: v.connectorId, transactionId: v.transactionId });
    }
    for (const e of plan.expected) await report(`trip:${e.vehicleId}@${e.departure}`, e, { stationId: null, arrival: e.arrival });
    // An expected vehicle that has arrived (or whose trip is gone) is no longer the subject of its trip alarm.
    for (const subject of [...this.openAlarms.keys()]) {
      if (subject.startsWith('trip:') && !subjects.has(subject) && this.tripAlarmSite.get(subject) === plan.siteId) await this.clearShortfall(subject);
    }
    for (const subject of subjects) if (subject.startsWith('trip:')) this.tripAlarmSite.set(subject, plan.siteId);
  }

  private async clearShortfall(subject: string): Promise<void> {
    const id = this.openAlarms.get(subject);
    this.tripAlarmSite.delete(subject);
    if (id === undefined) return;
    this.openAlarms.delete(subject);
    await this.store.clearAlarm(id, this.clock.now().toISOString());
  }
}

