import { generateArrivals, mulberry32, type Scenario } from './scenarios.js';
import { SimulatedStation, type SimClock } from './station.js';
import type { StationTemplate } from './templates.js';
import type { VehicleSpec } from './vehicle.js';

/** Simulated time: starts at `start` and runs `speed` times faster than the wall clock. */
export class SpeedClock implements SimClock {
  private readonly realStart = Date.now();
  constructor(
    readonly start: Date,
    readonly speed: number,
  ) {}
  now(): Date {
    return new Date(this.start.getTime() + (Date.now() - this.realStart) * this.speed);
  }
}

export interface FleetOptions {
  csmsUrl: string;
  stations: number;
  prefix: string;
  template: StationTemplate;
  scenario?: Scenario | 'none';
  sessionsFile?: string;
  /** Simulated seconds the scenario covers (and, when set, after which the fleet stops). */
  durationS?: number;
  seed: number;
  speed: number;
  start: Date;
  /** Real milliseconds between ticks. */
  tickMs?: number;
  password?: string;
  /** Real milliseconds per firmware/diagnostics job step. */
  jobStepMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  callTimeoutMs?: number;
  log?: (event: string, details?: object) => void;
  /** A clock to share (e.g. with a CSMS in the same process); default a new SpeedClock from start and speed. */
  clock?: SpeedClock;
}

interface PlannedVisit {
  stationIndex: number;
  connectorId: number;
  vehicle: VehicleSpec;
}

/**
 * A fleet of simulated stations under one clock and one ticker (per-station cost stays low: no
 * timer per station). The scenario's vehicles arrive and leave at their simulated times.
 */
export class Fleet {
  readonly stations: SimulatedStation[];
  readonly clock: SpeedClock;
  private readonly visits: PlannedVisit[];
  private nextVisit = 0;
  private readonly parked: PlannedVisit[] = [];
  private ticker: NodeJS.Timeout | undefined;
  private readonly random: () => number;
  /** Vehicles whose arrival found their connector busy (e.g. taken by hand through the control API). */
  skippedArrivals = 0;

  constructor(private readonly opts: FleetOptions) {
    this.random = mulberry32(opts.seed);
    this.clock = opts.clock ?? new SpeedClock(opts.start, opts.speed);
    this.stations = Array.from(
      { length: opts.stations },
      (_, i) =>
        new SimulatedStation({
          id: `${opts.prefix}${String(i + 1).padStart(String(opts.stations).length, '0')}`,
          template: opts.template,
          csmsUrl: opts.csmsUrl,
          password: opts.password,
          clock: this.clock,
          random: this.random,
          jobStepMs: opts.jobStepMs,
          reconnectMinMs: opts.reconnectMinMs,
          reconnectMaxMs: opts.reconnectMaxMs,
          callTimeoutMs: opts.callTimeoutMs,
          log: opts.log,
        }),
    );
    this.visits =
      !opts.scenario || opts.scenario === 'none'
        ? []
        : generateArrivals(opts.scenario, {
            stations: opts.stations,
            connectorsPerStation: opts.template.connectors,
            start: opts.start,
            // A sessions file is replayed whole unless a duration cuts it; a synthetic scenario needs a window.
            durationS: opts.scenario === 'file' ? opts.durationS : (opts.durationS ?? 86400),
            seed: opts.seed,
            sessionsFile: opts.sessionsFile,
          });
  }

  get plannedVisits(): number {
    return this.visits.length;
  }

  /** The id tags the scenario's drivers will present, for registering them with the CSMS. */
  idTags(): string[] {
    return [...new Set(this.visits.map((v) => v.vehicle.idTag))];
  }

  /**
   * The scenario's visits as a depot's timetable would list them: who comes, when, with what SoC
   * and wanting what. What a fleet operator knows in advance, for the CSMS's planner.
   */
  timetable(): Array<{ vehicleId: string; idTag: string; arrival: Date; departure: Date; arrivalSocPct: number; targetSocPct: number; batteryKwh: number; maxPowerKw: number }> {
    return this.visits.map(({ vehicle: v }) => ({
      vehicleId: v.id,
      idTag: v.idTag,
      arrival: v.arrival,
      departure: v.departure,
      arrivalSocPct: v.arrivalSocPct,
      targetSocPct: v.targetSocPct,
      batteryKwh: v.batteryKwh,
      maxPowerKw: v.dcMaxPowerKw > 0 ? v.dcMaxPowerKw : (v.acMaxCurrentA * v.acPhases * 230) / 1000,
    }));
  }

  station(id: string): SimulatedStation | undefined {
    return this.stations.find((s) => s.id === id);
  }

  start(): void {
    for (const s of this.stations) s.start();
    const tickMs = this.opts.tickMs ?? 1000;
    this.ticker = setInterval(() => this.tick(), tickMs);
  }

  /** Called after every simulated second with the fleet's state at that instant (tests, meters). */
  onSecond?: (now: Date) => void;
  private lastStep: number | undefined;

  /**
   * Advances every station to the clock's now, one simulated second at a time, so that all
   * stations are observed at the same instants (a site's load is a sum over stations).
   */
  tick(): void {
    const target = this.clock.now().getTime();
    let t = this.lastStep ?? target - 1;
    while (t < target) {
      t = Math.min(t + 1000, target);
      this.step(new Date(t));
    }
    this.lastStep = t;
  }

  private step(now: Date): void {
    const t = now.getTime();
    while (this.nextVisit < this.visits.length && this.visits[this.nextVisit]!.vehicle.arrival.getTime() <= t) {
      const visit = this.visits[this.nextVisit++]!;
      const station = this.stations[visit.stationIndex];
      try {
        // A vehicle that should have left already is not plugged in at all.
        if (!station || visit.vehicle.departure.getTime() <= t) continue;
        station.plugIn(visit.connectorId, visit.vehicle);
        this.parked.push(visit);
      } catch {
        this.skippedArrivals += 1;
      }
    }
    for (let i = this.parked.length - 1; i >= 0; i--) {
      const visit = this.parked[i]!;
      if (visit.vehicle.departure.getTime() > t) continue;
      this.parked.splice(i, 1);
      const station = this.stations[visit.stationIndex]!;
      // Only this visit's own vehicle leaves: someone may have swapped it by hand in the meantime.
      if (station.connector(visit.connectorId).vehicle?.spec.id !== visit.vehicle.id) continue;
      void station.unplug(visit.connectorId).catch(() => {});
    }
    for (const s of this.stations) s.tick(now);
    this.onSecond?.(now);
  }

  stop(): void {
    clearInterval(this.ticker);
    for (const s of this.stations) s.stop();
  }
}
