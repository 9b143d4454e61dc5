/**
 * An electric vehicle behind a simulated charging station. Pure: no I/O and no clock; the
 * station passes in the supply, the limit it applies and the length of each time step.
 *
 * Conventions:
 * - Voltages are phase-to-neutral RMS (230 V in Europe), as in the composite-schedule core;
 *   AC power is current per phase × voltage × phases used.
 * - Energy is counted on two sides. `deliveredWh` is what the station's meter sees (grid
 *   side). The battery receives `chargingEfficiency` of it (default 0.95: onboard-charger
 *   and battery losses), so SoC rises a little slower than the meter. Planners that assume
 *   lossless charging are therefore a few per cent optimistic, as they would be in reality.
 * - `energyWantedKwh` is meter side: the data sets we replay (ACN) record the energy the
 *   meter counted. Without it the car wants (target − arrival SoC) × capacity into the
 *   battery, i.e. that divided by the efficiency from the grid.
 * - DC charging follows a simple curve: full power up to 80 % SoC, then linear down to 10 %
 *   of full power at 100 % SoC. AC charging does not taper: the onboard charger, not the
 *   battery, is the bottleneck at AC powers.
 */

/** Minimum AC charging current of IEC 61851-1: below it a car pauses rather than draws less. */
export const IEC_61851_MIN_CURRENT_A = 6;

export const DEFAULT_CHARGING_EFFICIENCY = 0.95;

/** SoC (%) up to which a DC charge runs at full power. */
export const DC_TAPER_START_SOC_PCT = 80;
/** Share of full DC power still accepted at 100 % SoC; the curve is linear in between. */
export const DC_POWER_SHARE_AT_FULL = 0.1;

/** Below this much still wanted (Wh, meter side) the car considers itself done; absorbs float rounding. */
const DONE_TOLERANCE_WH = 1e-3;

export interface VehicleSpec {
  id: string;
  /** What the driver presents (RFID card, app token); OCPP 1.6 CiString20. */
  idTag: string;
  batteryKwh: number;
  arrivalSocPct: number;
  targetSocPct: number;
  /** Per-phase current the onboard charger takes at most. */
  acMaxCurrentA: number;
  /** Phases the onboard charger can use. */
  acPhases: 1 | 2 | 3;
  dcMaxPowerKw: number;
  /** 6 per IEC 61851: a limit below it pauses the charge. */
  minAcCurrentA: number;
  arrival: Date;
  departure: Date;
  /** Meter-side energy after which the car stops taking power, whatever its SoC. */
  energyWantedKwh?: number;
  /** Share of metered energy that reaches the battery; default DEFAULT_CHARGING_EFFICIENCY. */
  chargingEfficiency?: number;
}

/** What the connector the car is plugged into can offer, before any charging profile. */
export interface Supply {
  kind: 'AC' | 'DC';
  /** Phase-to-neutral RMS voltage of the station's AC supply. */
  voltageV: number;
  stationPhases: 1 | 3;
  /** Per-phase current rating of the connector or cable, if it is below what the car takes. */
  maxCurrentA?: number;
  /** Power rating of the connector (DC chargers), if it is below what the car takes. */
  maxPowerW?: number;
}

/** The limit the station applies (its composite schedule now); A is per phase. */
export interface ChargingLimit {
  unit: 'A' | 'W';
  value: number;
}

export class Vehicle {
  readonly spec: Readonly<VehicleSpec>;
  readonly chargingEfficiency: number;
  private meterWh = 0;
  private batteryWh = 0;

  constructor(spec: VehicleSpec) {
    const problem = vehicleSpecProblem(spec);
    if (problem) throw new RangeError(`vehicle ${spec.id}: ${problem}`);
    this.spec = { ...spec };
    this.chargingEfficiency = spec.chargingEfficiency ?? DEFAULT_CHARGING_EFFICIENCY;
  }

  get socPct(): number {
    // Capped because the energy clamp in step() can leave the last bit a rounding error above the target.
    return Math.min(100, this.spec.arrivalSocPct + (this.batteryWh / (this.spec.batteryKwh * 1000)) * 100);
  }

  /** Energy the station's meter has counted for this car (grid side). */
  get deliveredWh(): number {
    return this.meterWh;
  }

  /** Meter-side energy the car still takes before it reaches its target SoC or its wanted energy. */
  get energyStillWantedWh(): number {
    const toTargetBatteryWh = ((this.spec.targetSocPct - this.socPct) / 100) * this.spec.batteryKwh * 1000;
    let remaining = toTargetBatteryWh / this.chargingEfficiency;
    if (this.spec.energyWantedKwh !== undefined) {
      remaining = Math.min(remaining, this.spec.energyWantedKwh * 1000 - this.meterWh);
    }
    return Math.max(0, remaining);
  }

  get wantsMore(): boolean {
    return this.energyStillWantedWh > DONE_TOLERANCE_WH;
  }

  /** Whether the driver has left by `at` (the car is unplugged at its departure time). */
  hasDeparted(at: Date): boolean {
    return at.getTime() >= this.spec.departure.getTime();
  }

  /** Phases the car's onboard charger uses on an AC station that has at least as many. */
  get phasesUsed(): 1 | 2 | 3 {
    return this.spec.acPhases;
  }

  /**
   * Phases that carry current on this supply. On AC the car uses at most its own phases and
   * the station's; a DC charger draws from all the phases of its supply whatever the car.
   */
  phasesUsedOn(supply: Supply): 1 | 2 | 3 {
    if (supply.kind === 'DC') return supply.stationPhases;
    return Math.min(this.spec.acPhases, supply.stationPhases) as 1 | 2 | 3;
  }

  /** Power (W, meter side) the car would draw now with no charging limit. */
  acceptedPowerW(supply: Supply): number {
    if (!this.wantsMore) return 0;
    if (supply.kind === 'AC') {
      const currentA = this.acCurrentCeilingA(supply);
      // A cable or car rated below the IEC minimum cannot charge at all.
      if (currentA < this.spec.minAcCurrentA) return 0;
      return currentA * supply.voltageV * this.phasesUsedOn(supply);
    }
    const curveW = this.spec.dcMaxPowerKw * 1000 * dcPowerShare(this.socPct);
    return Math.min(curveW, supply.maxPowerW ?? Infinity);
  }

  /**
   * Power (W) actually drawn under `limit` (null: no limit): the smaller of what the limit
   * allows and what the car accepts.
   *
   * On AC, an A limit is per phase on the phases the car uses; a W limit is total power and
   * is turned into a per-phase current over those phases. Either way, a current below
   * minAcCurrentA pauses the car (IEC 61851 has no charging below it).
   * On DC, a W limit is DC power; an A limit is read as the station's AC input current per
   * phase (value × voltage × station phases), since DC-side current depends on the battery
   * voltage that OCPP 1.6 does not carry.
   */
  powerForLimit(limit: ChargingLimit | null, supply: Supply): number {
    if (limit !== null && !(Number.isFinite(limit.value) && limit.value >= 0)) {
      throw new RangeError(`charging limit must be a finite number >= 0, got ${limit.value} ${limit.unit}`);
    }
    const acceptedW = this.acceptedPowerW(supply);
    if (acceptedW === 0 || limit === null) return acceptedW;

    if (supply.kind === 'AC') {
      const phases = this.phasesUsedOn(supply);
      const allowedCurrentA = limit.unit === 'A' ? limit.value : limit.value / (supply.voltageV * phases);
      const currentA = Math.min(allowedCurrentA, this.acCurrentCeilingA(supply));
      if (currentA < this.spec.minAcCurrentA) return 0;
      return currentA * supply.voltageV * phases;
    }
    const allowedW = limit.unit === 'W' ? limit.value : limit.value * supply.voltageV * supply.stationPhases;
    return Math.min(allowedW, acceptedW);
  }

  /**
   * Integrates `powerW` (meter side) over `dtS` seconds and returns the energy taken (Wh).
   * The car stops mid-step when it reaches its target or its wanted energy, so the meter
   * never runs past either. The caller passes the power from powerForLimit at the start of
   * the step; shorter steps follow the DC taper more closely.
   */
  step(powerW: number, dtS: number): number {
    if (!(Number.isFinite(powerW) && powerW >= 0)) throw new RangeError(`power must be a finite number >= 0, got ${powerW}`);
    if (!(Number.isFinite(dtS) && dtS >= 0)) throw new RangeError(`time step must be a finite number >= 0, got ${dtS}`);
    const takenWh = Math.min((powerW * dtS) / 3600, this.energyStillWantedWh);
    this.meterWh += takenWh;
    this.batteryWh += takenWh * this.chargingEfficiency;
    return takenWh;
  }

  /** Per-phase current the car takes at most on this AC supply. */
  private acCurrentCeilingA(supply: Supply): number {
    return Math.min(this.spec.acMaxCurrentA, supply.maxCurrentA ?? Infinity);
  }
}

/** Share of full DC power the battery accepts at a given SoC (1 up to 80 %, then linear to 0.1 at 100 %). */
export function dcPowerShare(socPct: number): number {
  if (socPct <= DC_TAPER_START_SOC_PCT) return 1;
  const intoTaper = (Math.min(socPct, 100) - DC_TAPER_START_SOC_PCT) / (100 - DC_TAPER_START_SOC_PCT);
  return 1 - intoTaper * (1 - DC_POWER_SHARE_AT_FULL);
}

/** The first thing wrong with a spec, or null. Exported so scenario loaders can report bad input early. */
export function vehicleSpecProblem(spec: VehicleSpec): string | null {
  const positive = (name: keyof VehicleSpec, value: number) =>
    Number.isFinite(value) && value > 0 ? null : `${name} must be a number > 0, got ${value}`;
  const nonNegative = (name: keyof VehicleSpec, value: number) =>
    Number.isFinite(value) && value >= 0 ? null : `${name} must be a number >= 0, got ${value}`;
  const percentage = (name: keyof VehicleSpec, value: number) =>
    Number.isFinite(value) && value >= 0 && value <= 100 ? null : `${name} must be between 0 and 100, got ${value}`;
  const checks = [
    positive('batteryKwh', spec.batteryKwh),
    percentage('arrivalSocPct', spec.arrivalSocPct),
    percentage('targetSocPct', spec.targetSocPct),
    nonNegative('acMaxCurrentA', spec.acMaxCurrentA),
    [1, 2, 3].includes(spec.acPhases) ? null : `acPhases must be 1, 2 or 3, got ${spec.acPhases}`,
    nonNegative('dcMaxPowerKw', spec.dcMaxPowerKw),
    nonNegative('minAcCurrentA', spec.minAcCurrentA),
    Number.isNaN(spec.arrival.getTime()) ? 'arrival is not a valid date' : null,
    Number.isNaN(spec.departure.getTime()) ? 'departure is not a valid date' : null,
    spec.departure.getTime() < spec.arrival.getTime() ? 'departure is before arrival' : null,
    spec.energyWantedKwh === undefined ? null : nonNegative('energyWantedKwh', spec.energyWantedKwh),
    spec.chargingEfficiency === undefined || (spec.chargingEfficiency > 0 && spec.chargingEfficiency <= 1)
      ? null
      : `chargingEfficiency must be in (0, 1], got ${spec.chargingEfficiency}`,
  ];
  return checks.find((c) => c !== null) ?? null;
}
