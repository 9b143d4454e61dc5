import { compositeSchedule, installProfile, limitAt } from '../charging/profiles/composite.js';
import type { ChargingProfile, ChargingRateUnit, InstalledProfile, TransactionInfo } from '../charging/profiles/model.js';
import { validateProfile } from '../charging/profiles/validate.js';
import { CallErrorResponse, SimClient } from './client.js';
import type { StationTemplate } from './templates.js';
import { Vehicle, type VehicleSpec } from './vehicle.js';

export interface SimClock {
  now(): Date;
}

/** Switches that make a station misbehave, for the charger readiness checks. */
export interface StationFaults {
  rejectSetChargingProfile: boolean;
  ignoreProfileLimit: boolean;
  wrongCompositeSchedule: boolean;
  wrongMeasurands: boolean;
}

interface ConfigEntry {
  value: string;
  readonly: boolean;
  rebootRequired: boolean;
  /** Write-only keys (AuthorizationKey) are never reported by GetConfiguration. */
  secret: boolean;
}

/** What the station itself knows of a transaction, to check the CSMS against. */
export interface TransactionRecord {
  connectorId: number;
  id?: number;
  idTag: string;
  meterStartWh: number;
  meterStopWh?: number;
  startedAt: string;
  stoppedAt?: string;
  /** Periodic meter-value samples sent (or queued) during the transaction. */
  samples: number;
}

interface SimTransaction {
  /** The CSMS's id once StartTransaction is answered (it may be queued while offline). */
  id?: number;
  idTag: string;
  meterStartWh: number;
  startedAt: Date;
  /** A TxProfile that came with RemoteStartTransaction, installed once the id is known. */
  pendingProfile?: ChargingProfile;
  record: TransactionRecord;
}

export interface SimConnector {
  connectorId: number;
  status: string;
  errorCode: string;
  vehicle?: Vehicle;
  transaction?: SimTransaction;
  /** Id tag authorised remotely or presented, waiting for a plug-in (or a plugged car waiting for one). */
  authorizedIdTag?: string;
  authorizedUntil?: Date;
  reservation?: { id: number; idTag: string; parentIdTag?: string; expiry: Date };
  operative: boolean;
  /** Inoperative requested while a transaction runs: applied when it ends (ChangeAvailability Scheduled). */
  pendingInoperative: boolean;
  meterWh: number;
  powerW: number;
  limit: { unit: ChargingRateUnit; value: number } | null;
}

export interface StationOptions {
  id: string;
  template: StationTemplate;
  csmsUrl: string;
  password?: string;
  clock: SimClock;
  random: () => number;
  callTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How long firmware and diagnostics jobs take per step, in real milliseconds. */
  jobStepMs?: number;
  log?: (event: string, details?: object) => void;
}

const rateUnitsOfConfig = (value: string): ChargingRateUnit[] =>
  value
    .split(',')
    .map((v) => v.trim())
    .flatMap((v) => (v === 'Current' ? ['A' as const] : v === 'Power' ? ['W' as const] : []));

/**
 * One simulated OCPP 1.6J charge point: configuration keys, connectors with vehicles, the charging
 * profiles it holds (stored and combined with the same code the CSMS uses), transactions that
 * survive a lost connection, and meter values at its sample interval.
 */
export class SimulatedStation {
  readonly id: string;
  readonly template: StationTemplate;
  readonly connectors: SimConnector[];
  readonly faults: StationFaults = { rejectSetChargingProfile: false, ignoreProfileLimit: false, wrongCompositeSchedule: false, wrongMeasurands: false };
  /** The profiles the station holds now. */
  get profiles(): InstalledProfile[] {
    return this.held;
  }

  set profiles(next: InstalledProfile[]) {
    const at = this.now().getTime();
    // Seconds the fleet has not stepped this station through yet were lived under what it held then.
    if (this.lastTick !== undefined && at > this.lastTick) this.heldBefore.push({ until: at, profiles: this.held });
    this.held = next;
  }

  private held: InstalledProfile[] = [];
  /**
   * What the station held before each change of its profiles since the fleet last stepped it, with
   * the simulated time of the change, oldest first. Why: the fleet steps every station through the
   * seconds since its last tick together, after the clock has moved on, and a profile that arrived
   * meanwhile must not govern the seconds before it arrived: a charger cannot draw under a profile it
   * has not received. The balancer's profiles start half a minute early (clock skew), so a grant sent
   * just after a grid operator's curtailment ended was drawn under in the seconds before its end.
   */
  private heldBefore: Array<{ until: number; profiles: InstalledProfile[] }> = [];
  localList = { version: 0, entries: new Map<string, { status: string; expiryDate?: string; parentIdTag?: string }>() };
  registration: 'Accepted' | 'Pending' | 'Rejected' | 'Unknown' = 'Unknown';
  /** Every transaction this station started, newest last. */
  readonly transactionHistory: TransactionRecord[] = [];
  firmwareVersion: string;
  private readonly config = new Map<string, ConfigEntry>();
  private readonly client: SimClient;
  private password: string | undefined;
  private nextHeartbeat = 0;
  private nextSample = 0;
  private bootTimer: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private lastTick: number | undefined;

  constructor(private readonly opts: StationOptions) {
    this.id = opts.id;
    this.template = opts.template;
    this.password = opts.password;
    this.firmwareVersion = opts.template.firmwareVersion;
    for (const [key, entry] of Object.entries(opts.template.configuration)) {
      this.config.set(key, { value: entry.value, readonly: entry.readonly ?? false, rebootRequired: entry.rebootRequired ?? false, secret: entry.writeOnly ?? key === 'AuthorizationKey' });
    }
    if (this.password && !this.config.has('AuthorizationKey')) this.config.set('AuthorizationKey', { value: this.password, readonly: false, rebootRequired: false, secret: true });
    this.connectors = Array.from({ length: opts.template.connectors }, (_, i) => ({
      connectorId: i + 1,
      status: 'Available',
      errorCode: 'NoError',
      operative: true,
      pendingInoperative: false,
      meterWh: Math.floor(opts.random() * 1_000_000),
      powerW: 0,
      limit: null,
    }));
    this.client = new SimClient({
      csmsUrl: opts.csmsUrl,
      stationId: opts.id,
      password: () => this.password,
      handleCall: (action, payload) => this.handleCall(action, payload),
      onConnected: () => this.onConnected(),
      onDisconnected: () => this.log('disconnected'),
      callTimeoutMs: opts.callTimeoutMs ?? 30000,
      reconnectMinMs: opts.reconnectMinMs ?? 1000,
      reconnectMaxMs: opts.reconnectMaxMs ?? 60000,
      random: opts.random,
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  start(): void {
    this.client.connect();
  }

  stop(): void {
    clearTimeout(this.bootTimer);
    for (const t of this.timers) clearTimeout(t);
    this.client.close();
  }

  get online(): boolean {
    return this.client.connected;
  }

  get queuedMessages(): number {
    return this.client.queuedCount;
  }

  /** Loses the network: keeps charging under the profiles it holds and queues transaction messages. */
  cutConnection(): void {
    this.log('connection cut');
    this.client.disconnect();
  }

  restoreConnection(): void {
    this.log('connection restored');
    this.client.connect();
  }

  private now(): Date {
    return this.opts.clock.now();
  }

  private log(event: string, details: object = {}): void {
    this.opts.log?.(event, { stationId: this.id, ...details });
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  configValue(key: string): string | undefined {
    return this.config.get(key)?.value;
  }

  private configNumber(key: string, fallback: number): number {
    const n = Number(this.configValue(key));
    return Number.isFinite(n) && n > 0 ? n : fallback;
  }

  private async onConnected(): Promise<void> {
    this.log('connected');
    if (this.registration === 'Accepted') {
      // Back after a lost connection: the CSMS learns the current state of every connector.
      for (const c of [{ connectorId: 0 } as SimConnector, ...this.connectors]) void this.sendStatus(c.connectorId).catch(() => {});
      return;
    }
    await this.boot();
  }

  private async boot(): Promise<void> {
    clearTimeout(this.bootTimer);
    try {
      const res = await this.client.call('BootNotification', {
        chargePointVendor: this.template.vendor,
        chargePointModel: this.template.model,
        chargePointSerialNumber: `${this.id}-SN`,
        firmwareVersion: this.firmwareVersion,
      });
      this.registration = res.status;
      const intervalS = Math.max(1, Number(res.interval) || 60);
      if (res.status === 'Accepted') {
        this.config.set('HeartbeatInterval', { ...(this.config.get('HeartbeatInterval') ?? { readonly: false, rebootRequired: false, secret: false }), value: String(intervalS) });
        this.nextHeartbeat = this.now().getTime() + intervalS * 1000;
        // Stations booted together must not all sample in the same instant.
        this.nextSample = this.now().getTime() + this.opts.random() * this.configNumber('MeterValueSampleInterval', 60) * 1000;
        await this.sendStatus(0);
        for (const c of this.connectors) await this.sendStatus(c.connectorId);
      } else {
        // Pending or Rejected: boot again after the interval the CSMS gave (real time).
        this.bootTimer = setTimeout(() => void this.boot(), intervalS * 1000);
        this.bootTimer.unref();
      }
    } catch {
      // Offline or refused: the next connection boots again.
    }
  }

  private async sendStatus(connectorId: number): Promise<void> {
    const c = this.connectors.find((x) => x.connectorId === connectorId);
    const status = c ? c.status : this.connectors.every((x) => !x.operative) ? 'Unavailable' : 'Available';
    await this.client.call('StatusNotification', { connectorId, status, errorCode: c?.errorCode ?? 'NoError', timestamp: this.now().toISOString() }, { durable: false });
  }

  private setStatus(c: SimConnector, status: string, errorCode = 'NoError'): void {
    if (c.status === status && c.errorCode === errorCode) return;
    c.status = status;
    c.errorCode = errorCode;
    if (this.registration === 'Accepted' && this.client.connected) void this.sendStatus(c.connectorId).catch(() => {});
  }

  // ---- what a driver does (scenario and control API) ---------------------------------------

  connector(connectorId: number): SimConnector {
    const c = this.connectors.find((x) => x.connectorId === connectorId);
    if (!c) throw new RangeError(`${this.id} has no connector ${connectorId}`);
    return c;
  }

  /** An EV is plugged in. With `autoStart`, its driver presents the vehicle's id tag at once. */
  plugIn(connectorId: number, spec: VehicleSpec, opts: { autoStart?: boolean } = {}): void {
    const c = this.connector(connectorId);
    if (c.vehicle) throw new Error(`connector ${connectorId} of ${this.id} already has a vehicle`);
    if (!c.operative || c.status === 'Faulted') throw new Error(`connector ${connectorId} of ${this.id} is ${c.status}`);
    c.vehicle = new Vehicle(spec);
    this.setStatus(c, 'Preparing');
    if (c.authorizedIdTag) void this.startTransaction(c, c.authorizedIdTag);
    else if (opts.autoStart ?? true) void this.presentIdTag(connectorId, spec.idTag);
  }

  /** The driver leaves: the transaction stops (EVDisconnected) and the connector becomes free. */
  async unplug(connectorId: number): Promise<void> {
    const c = this.connector(connectorId);
    if (c.transaction) await this.stopTransaction(c, 'EVDisconnected');
    c.vehicle = undefined;
    c.powerW = 0;
    c.authorizedIdTag = undefined;
    this.settle(c);
  }

  /** The driver holds a card to the reader. Returns the authorisation status. */
  async presentIdTag(connectorId: number, idTag: string): Promise<string> {
    const c = this.connector(connectorId);
    if (c.transaction) {
      // The same card (or one with the same parent) ends a running transaction.
      if (c.transaction.idTag === idTag) {
        await this.stopTransaction(c, 'Local', idTag);
        return 'Accepted';
      }
    }
    const status = await this.authorize(idTag);
    if (status !== 'Accepted') return status;
    // The transaction starts now; its id arrives with the CSMS's answer (later, when offline).
    if (c.vehicle) void this.startTransaction(c, idTag);
    else {
      c.authorizedIdTag = idTag;
      c.authorizedUntil = new Date(this.now().getTime() + this.configNumber('ConnectionTimeOut', 60) * 1000);
      this.setStatus(c, 'Preparing');
    }
    return status;
  }

  private async authorize(idTag: string): Promise<string> {
    if (this.client.connected) {
      try {
        const res = await this.client.call('Authorize', { idTag });
        return res.idTagInfo.status;
      } catch {
        /* fall through to offline rules */
      }
    }
    // Offline: the local list if enabled, else the station lets the driver charge (AllowOfflineTxForUnknownId).
    const local = this.localList.entries.get(idTag);
    if (local && this.configValue('LocalAuthListEnabled') === 'true') return local.status;
    return 'Accepted';
  }

  private async startTransaction(c: SimConnector, idTag: string, reservationId?: number): Promise<void> {
    if (c.transaction) return;
    c.authorizedIdTag = undefined;
    const startedAt = this.now();
    const meterStartWh = Math.round(c.meterWh);
    const record: TransactionRecord = { connectorId: c.connectorId, idTag, meterStartWh, startedAt: startedAt.toISOString(), samples: 0 };
    this.transactionHistory.push(record);
    const tx: SimTransaction = { idTag, meterStartWh, startedAt, record };
    c.transaction = tx;
    const resId = reservationId ?? (c.reservation && (c.reservation.idTag === idTag || c.reservation.parentIdTag) ? c.reservation.id : undefined);
    c.reservation = undefined;
    this.setStatus(c, 'Charging');
    try {
      const res = await this.client.call(
        'StartTransaction',
        { connectorId: c.connectorId, idTag, meterStart: tx.meterStartWh, timestamp: tx.startedAt.toISOString(), ...(resId !== undefined ? { reservationId: resId } : {}) },
        { durable: true },
      );
      tx.id = res.transactionId;
      record.id = res.transactionId;
      if (tx.pendingProfile) {
        this.profiles = installProfile(this.profiles, { connectorId: c.connectorId, profile: { ...tx.pendingProfile, transactionId: tx.id } });
        tx.pendingProfile = undefined;
      }
      if (res.idTagInfo?.status !== 'Accepted' && this.configValue('StopTransactionOnInvalidId') !== 'false' && c.transaction === tx) {
        await this.stopTransaction(c, 'DeAuthorized');
      }
    } catch {
      /* the station is stopping */
    }
  }

  private async stopTransaction(c: SimConnector, reason: string, idTag?: string): Promise<void> {
    const tx = c.transaction;
    if (!tx) return;
    c.transaction = undefined;
    c.powerW = 0;
    const stoppedAt = this.now();
    const meterStop = Math.round(c.meterWh);
    tx.record.meterStopWh = meterStop;
    tx.record.stoppedAt = stoppedAt.toISOString();
    // TxProfiles end with their transaction (OCPP 1.6 §3.13.2).
    this.profiles = this.profiles.filter((p) => !(p.profile.chargingProfilePurpose === 'TxProfile' && p.connectorId === c.connectorId));
    this.setStatus(c, c.vehicle ? 'Finishing' : 'Available');
    // Queued, not awaited: offline, the answer comes only after reconnecting, and the connector is free now.
    void this.client
      .call(
        'StopTransaction',
        () => ({
          transactionId: tx.id ?? -1,
          meterStop,
          timestamp: stoppedAt.toISOString(),
          reason,
          ...(idTag ? { idTag } : {}),
          transactionData: [{ timestamp: stoppedAt.toISOString(), sampledValue: [{ value: String(meterStop), context: 'Transaction.End', measurand: 'Energy.Active.Import.Register', unit: 'Wh' }] }],
        }),
        { durable: true },
      )
      .catch(() => {});
    if (c.pendingInoperative) {
      c.pendingInoperative = false;
      c.operative = false;
      if (!c.vehicle) this.setStatus(c, 'Unavailable');
    }
  }

  /** After an EV leaves: Available, Reserved or Unavailable. */
  private settle(c: SimConnector): void {
    if (c.transaction || c.vehicle) return;
    if (!c.operative) this.setStatus(c, 'Unavailable');
    else if (c.reservation) this.setStatus(c, 'Reserved');
    else this.setStatus(c, 'Available');
  }

  /** Faults a connector (or clears the fault): a running transaction stops as a real charger's would. */
  async setFault(connectorId: number, errorCode: string | null): Promise<void> {
    const c = this.connector(connectorId);
    if (errorCode) {
      if (c.transaction) await this.stopTransaction(c, 'Other');
      this.setStatus(c, 'Faulted', errorCode);
    } else {
      c.status = 'Faulted';
      this.setStatus(c, c.vehicle ? 'Preparing' : 'Available');
      this.settle(c);
    }
  }

  // ---- the physics: called by the fleet every simulated second --------------------------------

  /** The limit the station's profiles put on a connector now, in the unit the vehicle is driven in. */
  currentLimit(c: SimConnector, at: Date): { unit: ChargingRateUnit; value: number } | null {
    const unit: ChargingRateUnit = this.template.kind === 'AC' ? 'A' : 'W';
    const phases = this.template.kind === 'AC' ? (c.vehicle ? Math.min(c.vehicle.phasesUsed, this.template.phases) : this.template.phases) : 3;
    const r = limitAt(this.situation(this.profilesAt(at.getTime())), c.connectorId, at, { chargingRateUnit: unit, numberPhases: phases, relativeStart: c.transaction?.startedAt });
    return r.constrained ? { unit, value: r.limit } : null;
  }

  /** The profiles the station held at `t` (ms): those before the first change after it. */
  private profilesAt(t: number): InstalledProfile[] {
    for (const before of this.heldBefore) if (t < before.until) return before.profiles;
    return this.held;
  }

  private situation(profiles: InstalledProfile[] = this.held) {
    const transactions: TransactionInfo[] = this.connectors
      .filter((c) => c.transaction?.id !== undefined)
      .map((c) => ({ connectorId: c.connectorId, transactionId: c.transaction!.id!, startTime: c.transaction!.startedAt }));
    return {
      station: {
        connectors: this.template.connectors,
        supplyVoltage: this.template.supplyVoltageV,
        defaultNumberPhases: this.template.phases,
        connectorMaxCurrent: this.template.maxCurrentPerConnectorA ?? Math.round(this.template.maxPowerPerConnectorW / (this.template.supplyVoltageV * this.template.phases)),
      },
      profiles,
      transactions,
    };
  }

  /** Advances the station to `now`: draws power second by second, sends heartbeats and meter values. */
  tick(now: Date): void {
    const t = now.getTime();
    const from = this.lastTick ?? t;
    this.lastTick = t;
    for (const c of this.connectors) {
      if (c.authorizedUntil && !c.vehicle && c.authorizedUntil.getTime() <= t) {
        // ConnectionTimeOut: nobody plugged in after the authorisation.
        c.authorizedIdTag = undefined;
        c.authorizedUntil = undefined;
        this.settle(c);
      }
      if (c.reservation && c.reservation.expiry.getTime() <= t) {
        c.reservation = undefined;
        this.settle(c);
      }
    }
    const charging = this.connectors.filter((c) => c.transaction && c.vehicle);
    for (let s = from; s < t && charging.length > 0; ) {
      const dt = Math.min(1000, t - s);
      for (const c of charging) this.drawPower(c, new Date(s));
      this.shareCabinet(charging);
      for (const c of charging) {
        c.vehicle!.step(c.powerW, dt / 1000);
        c.meterWh += (c.powerW * dt) / 3_600_000;
      }
      s += dt;
    }
    // The seconds up to now are lived: what came before the changes up to now is no longer asked.
    if (this.heldBefore.length > 0) this.heldBefore = this.heldBefore.filter((before) => before.until > t);
    for (const c of charging) {
      const state = c.powerW > 0 ? 'Charging' : c.vehicle!.wantsMore ? 'SuspendedEVSE' : 'SuspendedEV';
      if (c.status !== 'Faulted') this.setStatus(c, state);
    }
    if (this.registration !== 'Accepted' || !this.client.connected && this.client.queuedCount > 10000) return;
    if (this.client.connected && t >= this.nextHeartbeat) {
      this.nextHeartbeat = t + this.configNumber('HeartbeatInterval', 300) * 1000;
      void this.client.call('Heartbeat', {}).catch(() => {});
    }
    if (t >= this.nextSample) {
      this.nextSample = t + this.configNumber('MeterValueSampleInterval', 60) * 1000;
      for (const c of this.connectors) if (c.transaction) this.sendMeterValues(c, now, 'Sample.Periodic');
    }
  }

  private drawPower(c: SimConnector, at: Date): void {
    const supply = {
      kind: this.template.kind,
      voltageV: this.template.supplyVoltageV,
      stationPhases: this.template.phases,
      maxCurrentA: this.template.maxCurrentPerConnectorA,
      maxPowerW: this.template.maxPowerPerConnectorW,
    };
    c.limit = this.faults.ignoreProfileLimit ? null : this.currentLimit(c, at);
    c.powerW = Math.min(c.vehicle!.powerForLimit(c.limit, supply), this.template.maxPowerPerConnectorW);
  }

  /** Outlets that share one power cabinet split its rating in proportion to what each would draw. */
  private shareCabinet(charging: SimConnector[]): void {
    const cabinet = this.template.stationMaxPowerW;
    if (!cabinet) return;
    const total = charging.reduce((sum, c) => sum + c.powerW, 0);
    if (total <= cabinet) return;
    for (const c of charging) c.powerW = (c.powerW * cabinet) / total;
  }

  private sendMeterValues(c: SimConnector, at: Date, context: string): void {
    const measurands = (this.configValue('MeterValuesSampledData') ?? 'Energy.Active.Import.Register').split(',').map((m) => m.trim());
    const sampled: Array<Record<string, string>> = [];
    const phases = this.template.kind === 'AC' ? Math.min(c.vehicle?.phasesUsed ?? this.template.phases, this.template.phases) : 0;
    const voltage = this.template.supplyVoltageV;
    const wrong = this.faults.wrongMeasurands;
    for (const m of measurands) {
      if (m === 'Energy.Active.Import.Register') {
        // The wrong-measurand fault reports power where energy belongs, a classic firmware bug.
        sampled.push({ value: String(Math.round(wrong ? c.powerW : c.meterWh)), measurand: m, unit: 'Wh', context });
      } else if (m === 'Power.Active.Import') {
        sampled.push({ value: String(Math.round(c.powerW)), measurand: m, unit: wrong ? 'kW' : 'W', context });
      } else if (m === 'Current.Import' && phases > 0) {
        const amps = (c.powerW / (voltage * phases)).toFixed(1);
        for (const p of ['L1', 'L2', 'L3'].slice(0, phases)) sampled.push({ value: amps, measurand: m, unit: 'A', phase: p, context });
      } else if (m === 'Voltage') {
        for (const p of ['L1-N', 'L2-N', 'L3-N'].slice(0, Math.max(phases, 1))) sampled.push({ value: String(voltage), measurand: m, unit: 'V', phase: p, context });
      } else if (m === 'SoC' && this.template.kind === 'DC' && c.vehicle) {
        sampled.push({ value: String(Math.round(c.vehicle.socPct)), measurand: m, unit: 'Percent', context, location: 'EV' });
      }
    }
    const tx = c.transaction;
    if (tx && context === 'Sample.Periodic') tx.record.samples += 1;
    void this.client
      .call('MeterValues', () => ({ connectorId: c.connectorId, ...(tx?.id !== undefined ? { transactionId: tx.id } : {}), meterValue: [{ timestamp: at.toISOString(), sampledValue: sampled }] }), {
        durable: tx !== undefined,
      })
      .catch(() => {});
  }

  // ---- what the CSMS asks ---------------------------------------------------------------------

  private async handleCall(action: string, p: any): Promise<unknown> {
    switch (action) {
      case 'RemoteStartTransaction':
        return this.remoteStart(p);
      case 'RemoteStopTransaction': {
        const c = this.connectors.find((x) => x.transaction?.id === p.transactionId);
        if (!c) return { status: 'Rejected' };
        queueMicrotask(() => void this.stopTransaction(c, 'Remote'));
        return { status: 'Accepted' };
      }
      case 'Reset':
        queueMicrotask(() => void this.reset(p.type));
        return { status: 'Accepted' };
      case 'UnlockConnector': {
        const c = this.connectors.find((x) => x.connectorId === p.connectorId);
        if (!c) return { status: 'NotSupported' };
        if (c.transaction) queueMicrotask(() => void this.stopTransaction(c, 'UnlockCommand'));
        return { status: this.template.fixedCable ? 'NotSupported' : 'Unlocked' };
      }
      case 'ChangeAvailability':
        return this.changeAvailability(p.connectorId, p.type === 'Operative');
      case 'ChangeConfiguration':
        return this.changeConfiguration(p.key, p.value);
      case 'GetConfiguration': {
        const visible = [...this.config.entries()].filter(([, e]) => !e.secret);
        const keys: string[] | undefined = p.key;
        const known = keys ? visible.filter(([k]) => keys.includes(k)) : visible;
        return {
          configurationKey: known.map(([key, e]) => ({ key, readonly: e.readonly, value: e.value })),
          ...(keys ? { unknownKey: keys.filter((k) => !visible.some(([v]) => v === k)) } : {}),
        };
      }
      case 'ClearCache':
        return { status: 'Accepted' };
      case 'DataTransfer':
        return { status: 'UnknownVendorId' };
      case 'TriggerMessage':
      case 'ExtendedTriggerMessage':
        return this.trigger(p.requestedMessage, p.connectorId);
      case 'UpdateFirmware':
        this.runJob('FirmwareStatusNotification', ['Downloading', 'Downloaded', 'Installing', 'Installed'], () => {
          this.firmwareVersion = `${this.firmwareVersion}+1`;
        });
        return {};
      case 'GetDiagnostics':
        this.runJob('DiagnosticsStatusNotification', ['Uploading', 'Uploaded']);
        return { fileName: `${this.id}-diagnostics.zip` };
      case 'SendLocalList':
        return this.sendLocalList(p);
      case 'GetLocalListVersion':
        return { listVersion: this.configValue('LocalAuthListEnabled') === 'false' ? -1 : this.localList.version };
      case 'ReserveNow':
        return this.reserve(p);
      case 'CancelReservation': {
        const c = this.connectors.find((x) => x.reservation?.id === p.reservationId);
        if (!c) return { status: 'Rejected' };
        c.reservation = undefined;
        this.settle(c);
        return { status: 'Accepted' };
      }
      case 'SetChargingProfile':
        return this.setChargingProfile(p.connectorId, p.csChargingProfiles);
      case 'ClearChargingProfile':
        return this.clearChargingProfile(p);
      case 'GetCompositeSchedule':
        return this.getCompositeSchedule(p);
      default:
        throw new CallErrorResponse('NotImplemented', `${action} is not simulated`);
    }
  }

  private remoteStart(p: { connectorId?: number; idTag: string; chargingProfile?: ChargingProfile }): { status: string } {
    const c = p.connectorId !== undefined ? this.connectors.find((x) => x.connectorId === p.connectorId) : this.connectors.find((x) => !x.transaction && x.operative && x.status !== 'Faulted');
    if (!c || c.transaction || !c.operative || c.status === 'Faulted') return { status: 'Rejected' };
    if (p.chargingProfile && p.chargingProfile.chargingProfilePurpose !== 'TxProfile') return { status: 'Rejected' };
    queueMicrotask(async () => {
      const status = this.configValue('AuthorizeRemoteTxRequests') === 'true' ? await this.authorize(p.idTag) : 'Accepted';
      if (status !== 'Accepted') return;
      if (c.vehicle) {
        await this.startTransaction(c, p.idTag);
        if (p.chargingProfile && c.transaction) {
          if (c.transaction.id !== undefined) this.profiles = installProfile(this.profiles, { connectorId: c.connectorId, profile: { ...p.chargingProfile, transactionId: c.transaction.id } });
          else c.transaction.pendingProfile = p.chargingProfile;
        }
      } else {
        c.authorizedIdTag = p.idTag;
        c.authorizedUntil = new Date(this.now().getTime() + this.configNumber('ConnectionTimeOut', 60) * 1000);
        this.setStatus(c, 'Preparing');
      }
    });
    return { status: 'Accepted' };
  }

  private async reset(type: 'Hard' | 'Soft'): Promise<void> {
    for (const c of this.connectors) if (c.transaction) await this.stopTransaction(c, type === 'Hard' ? 'HardReset' : 'SoftReset');
    // A reboot: the connection drops, the station boots again, and profiles survive (they are persistent in 1.6).
    this.registration = 'Unknown';
    this.client.disconnect();
    this.later(500, () => this.client.connect());
  }

  private changeAvailability(connectorId: number, operative: boolean): { status: string } {
    const targets = connectorId === 0 ? this.connectors : this.connectors.filter((c) => c.connectorId === connectorId);
    if (targets.length === 0) return { status: 'Rejected' };
    let scheduled = false;
    for (const c of targets) {
      if (!operative && c.transaction) {
        c.pendingInoperative = true;
        scheduled = true;
        continue;
      }
      c.pendingInoperative = false;
      c.operative = operative;
      if (!c.transaction && c.status !== 'Faulted') this.settle(c);
    }
    return { status: scheduled ? 'Scheduled' : 'Accepted' };
  }

  private changeConfiguration(key: string, value: string): { status: string } {
    const entry = this.config.get(key);
    if (!entry) return { status: 'NotSupported' };
    if (entry.readonly) return { status: 'Rejected' };
    const numeric = ['HeartbeatInterval', 'MeterValueSampleInterval', 'ConnectionTimeOut'];
    if (numeric.includes(key) && !(Number.isInteger(Number(value)) && Number(value) >= 0)) return { status: 'Rejected' };
    if (key === 'AuthorizationKey') {
      // 16 to 20 bytes, sent as up to 40 hex characters (1.6 Security whitepaper); used from the next connection.
      if (value.length < 16 || value.length > 40) return { status: 'Rejected' };
      this.password = value;
    }
    if (key === 'SecurityProfile' && Number(value) < Number(entry.value)) return { status: 'Rejected' };
    this.config.set(key, { ...entry, value });
    if (key === 'HeartbeatInterval') this.nextHeartbeat = this.now().getTime() + Number(value) * 1000;
    if (key === 'MeterValueSampleInterval') this.nextSample = this.now().getTime() + Number(value) * 1000;
    return { status: entry.rebootRequired ? 'RebootRequired' : 'Accepted' };
  }

  private trigger(requested: string, connectorId?: number): { status: string } {
    const targets = connectorId !== undefined ? this.connectors.filter((c) => c.connectorId === connectorId) : this.connectors;
    if (connectorId !== undefined && connectorId > 0 && targets.length === 0) return { status: 'Rejected' };
    const send: Record<string, () => void> = {
      BootNotification: () => void this.boot(),
      Heartbeat: () => void this.client.call('Heartbeat', {}).catch(() => {}),
      StatusNotification: () => {
        if (connectorId === undefined) void this.sendStatus(0).catch(() => {});
        for (const c of targets) void this.sendStatus(c.connectorId).catch(() => {});
      },
      MeterValues: () => {
        for (const c of targets) this.sendMeterValues(c, this.now(), 'Trigger');
      },
      DiagnosticsStatusNotification: () => void this.client.call('DiagnosticsStatusNotification', { status: 'Idle' }).catch(() => {}),
      FirmwareStatusNotification: () => void this.client.call('FirmwareStatusNotification', { status: 'Idle' }).catch(() => {}),
    };
    const fn = send[requested];
    if (!fn) return { status: 'NotImplemented' };
    queueMicrotask(fn);
    return { status: 'Accepted' };
  }

  private runJob(action: string, steps: string[], onDone?: () => void): void {
    const step = this.opts.jobStepMs ?? 1000;
    steps.forEach((status, i) =>
      this.later(step * (i + 1), () => {
        void this.client.call(action, { status }).catch(() => {});
        if (i === steps.length - 1) onDone?.();
      }),
    );
  }

  private sendLocalList(p: { listVersion: number; updateType: 'Full' | 'Differential'; localAuthorizationList?: Array<{ idTag: string; idTagInfo?: any }> }): { status: string } {
    if (this.configValue('LocalAuthListEnabled') === undefined) return { status: 'NotSupported' };
    const entries = p.localAuthorizationList ?? [];
    if (entries.length > this.configNumber('SendLocalListMaxLength', 1000)) return { status: 'Failed' };
    if (p.updateType === 'Differential' && p.listVersion <= this.localList.version) return { status: 'VersionMismatch' };
    if (p.updateType === 'Full') this.localList.entries.clear();
    for (const e of entries) {
      if (e.idTagInfo) this.localList.entries.set(e.idTag, e.idTagInfo);
      else this.localList.entries.delete(e.idTag);
    }
    this.localList.version = p.listVersion;
    return { status: 'Accepted' };
  }

  private reserve(p: { connectorId: number; expiryDate: string; idTag: string; parentIdTag?: string; reservationId: number }): { status: string } {
    const free = (c: SimConnector) => c.operative && !c.transaction && !c.vehicle && c.status !== 'Faulted' && (!c.reservation || c.reservation.id === p.reservationId);
    const c = p.connectorId === 0 ? this.connectors.find(free) : this.connectors.find((x) => x.connectorId === p.connectorId);
    if (!c) return { status: p.connectorId === 0 ? 'Occupied' : 'Rejected' };
    if (c.status === 'Faulted') return { status: 'Faulted' };
    if (!c.operative) return { status: 'Unavailable' };
    if (c.transaction || c.vehicle || (c.reservation && c.reservation.id !== p.reservationId)) return { status: 'Occupied' };
    c.reservation = { id: p.reservationId, idTag: p.idTag, parentIdTag: p.parentIdTag, expiry: new Date(p.expiryDate) };
    this.setStatus(c, 'Reserved');
    return { status: 'Accepted' };
  }

  private setChargingProfile(connectorId: number, profile: ChargingProfile): { status: string } {
    if (this.faults.rejectSetChargingProfile) return { status: 'Rejected' };
    const transactions = this.connectors.filter((c) => c.transaction?.id !== undefined).map((c) => ({ connectorId: c.connectorId, transactionId: c.transaction!.id! }));
    const problems = validateProfile(connectorId, profile, {
      connectors: this.template.connectors,
      transactions,
      maxStackLevel: Number(this.configValue('ChargeProfileMaxStackLevel') ?? 10),
      maxPeriods: Number(this.configValue('ChargingScheduleMaxPeriods') ?? 24),
      allowedUnits: rateUnitsOfConfig(this.configValue('ChargingScheduleAllowedChargingRateUnit') ?? 'Current,Power'),
    });
    if (problems.length > 0) {
      this.log('SetChargingProfile rejected', { problems });
      return { status: 'Rejected' };
    }
    const next = installProfile(this.profiles, { connectorId, profile });
    if (next.length > this.configNumber('MaxChargingProfilesInstalled', 20)) return { status: 'Rejected' };
    this.profiles = next;
    return { status: 'Accepted' };
  }

  private clearChargingProfile(p: { id?: number; connectorId?: number; chargingProfilePurpose?: string; stackLevel?: number }): { status: string } {
    const matches = (ip: InstalledProfile) =>
      p.id !== undefined
        ? ip.profile.chargingProfileId === p.id
        : (p.connectorId === undefined || ip.connectorId === p.connectorId) &&
          (p.chargingProfilePurpose === undefined || ip.profile.chargingProfilePurpose === p.chargingProfilePurpose) &&
          (p.stackLevel === undefined || ip.profile.stackLevel === p.stackLevel);
    const kept = this.profiles.filter((ip) => !matches(ip));
    if (kept.length === this.profiles.length) return { status: 'Unknown' };
    this.profiles = kept;
    return { status: 'Accepted' };
  }

  private getCompositeSchedule(p: { connectorId: number; duration: number; chargingRateUnit?: ChargingRateUnit }): unknown {
    const result = compositeSchedule({ ...this.situation(), request: { connectorId: p.connectorId, startTime: this.now(), duration: p.duration, chargingRateUnit: p.chargingRateUnit } });
    if (result.status !== 'Accepted') return { status: 'Rejected' };
    // On the wire every period needs a limit: where nothing constrains, the station reports its rating.
    const periods = result.chargingSchedule.chargingSchedulePeriod.map((period) => ({
      startPeriod: period.startPeriod,
      // The fault doubles every limit: what a charger that misreads its own profiles reports.
      limit: this.faults.wrongCompositeSchedule ? period.limit * 2 : period.limit,
      numberPhases: period.numberPhases,
    }));
    return {
      status: 'Accepted',
      connectorId: p.connectorId,
      scheduleStart: result.scheduleStart.toISOString(),
      chargingSchedule: { ...result.chargingSchedule, chargingSchedulePeriod: periods },
    };
  }

  /** A snapshot for the control API. */
  view() {
    return {
      id: this.id,
      template: this.template.name,
      online: this.online,
      registration: this.registration,
      queuedMessages: this.queuedMessages,
      faults: this.faults,
      localListVersion: this.localList.version,
      connectors: this.connectors.map((c) => ({
        connectorId: c.connectorId,
        status: c.status,
        errorCode: c.errorCode,
        operative: c.operative,
        meterWh: Math.round(c.meterWh),
        powerW: Math.round(c.powerW),
        limit: c.transaction ? (this.faults.ignoreProfileLimit ? null : this.currentLimit(c, this.now())) : null,
        transaction: c.transaction ? { id: c.transaction.id ?? null, idTag: c.transaction.idTag, meterStartWh: c.transaction.meterStartWh, startedAt: c.transaction.startedAt.toISOString() } : null,
        reservation: c.reservation ? { ...c.reservation, expiry: c.reservation.expiry.toISOString() } : null,
        vehicle: c.vehicle ? { id: c.vehicle.spec.id, socPct: Math.round(c.vehicle.socPct * 10) / 10, deliveredWh: Math.round(c.vehicle.deliveredWh), wantsMore: c.vehicle.wantsMore } : null,
      })),
      profiles: this.profiles,
    };
  }
}
