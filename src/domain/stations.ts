import type { Clock, EventBus, Store } from './ports.js';
import { hashPassword, VerifiedPasswords } from './passwords.js';
import type { RegistrationStatus, SecurityProfile, Station } from './types.js';

export type RegistrationPolicy = 'open' | 'pending' | 'closed';

export interface AdmissionRequest {
  stationId: string;
  /** Basic-auth credentials, when the station sent them. */
  credentials?: { username: string; password: string };
  tls: boolean;
}

export type AdmissionDecision =
  | { admitted: true; station: Station }
  | { admitted: false; httpStatus: 401 | 403 | 404; reason: string };

export interface BootInfo {
  vendor: string;
  model: string;
  serialNumber?: string;
  firmwareVersion?: string;
  iccid?: string;
  imsi?: string;
  meterType?: string;
  meterSerialNumber?: string;
}

export interface StationServiceOptions {
  registration: RegistrationPolicy;
  /** Heartbeat interval handed to accepted stations, in seconds. */
  heartbeatIntervalS: number;
  /** How soon a Pending or Rejected station should boot again, in seconds. */
  retryIntervalS: number;
}

/** Station registration, security profiles 0–2 and the boot handshake, as the domain sees them. */
export class StationService {
  /** Registration of connected stations, so the per-message gate needs no database read. */
  private readonly registrations = new Map<string, RegistrationStatus>();
  /** Passwords already checked in this process: a reconnect storm pays one scrypt per station, not per connection. */
  private readonly passwords = new VerifiedPasswords();

  constructor(
    private readonly store: Store,
    private readonly events: EventBus,
    private readonly clock: Clock,
    private readonly options: StationServiceOptions,
  ) {}

  /**
   * Whether admitting these credentials is likely to cost a password hash (scrypt, tens of ms of
   * CPU): true unless this process already verified this password for this station. Admission
   * control bounds the upgrades that do; a reconnect storm of known stations costs none.
   */
  mayHashPassword(stationId: string, password: string): boolean {
    return !this.passwords.knows(stationId, password);
  }

  /** Decides at the WebSocket upgrade whether this station may connect. */
  async admit(req: AdmissionRequest): Promise<AdmissionDecision> {
    let station = await this.store.getStation(req.stationId);
    if (!station) {
      if (this.options.registration === 'closed') return { admitted: false, httpStatus: 404, reason: 'unknown station and registration is closed' };
      if (req.credentials && req.credentials.username !== req.stationId) return { admitted: false, httpStatus: 401, reason: 'Basic auth username must be the station id' };
      // Profile 2 is TLS plus Basic auth, so a new station on the TLS listener must bring a password.
      if (req.tls && !req.credentials) return { admitted: false, httpStatus: 401, reason: 'Basic auth required on the TLS listener' };
      // A new station's first password is trusted on first use: in the default `pending` policy an
      // operator still accepts the station before it may do anything.
      station = await this.store.createStation({
        id: req.stationId,
        registration: this.options.registration === 'open' ? 'accepted' : 'pending',
        securityProfile: req.tls ? 2 : req.credentials ? 1 : 0,
        createdAt: this.clock.now().toISOString(),
      });
      if (req.credentials) {
        const hash = await hashPassword(req.credentials.password);
        await this.store.setStationPassword(req.stationId, hash);
        this.passwords.remember(hash, req.credentials.password, req.stationId);
        station = (await this.store.getStation(req.stationId))!;
      }
      this.registrations.set(station.id, station.registration);
      return { admitted: true, station };
    }
    // A station uses exactly the profile configured for it; anything else is refused (1.6 Security §2).
    const wantsTls = station.securityProfile >= 2;
    if (wantsTls !== req.tls) {
      return { admitted: false, httpStatus: 403, reason: `station is configured for security profile ${station.securityProfile}, connect ${wantsTls ? 'over TLS' : 'without TLS'}` };
    }
    if (station.securityProfile >= 1) {
      const hash = await this.store.getStationPasswordHash(station.id);
      if (!hash) return { admitted: false, httpStatus: 401, reason: 'station has no password set for Basic auth' };
      if (!req.credentials) return { admitted: false, httpStatus: 401, reason: 'Basic auth required' };
      if (req.credentials.username !== station.id) return { admitted: false, httpStatus: 401, reason: 'Basic auth username must be the station id' };
      if (!(await this.passwords.verify(req.credentials.password, hash, station.id))) {
        const pending = await this.store.getPendingStationPasswordHash(station.id);
        if (!pending || !(await this.passwords.verify(req.credentials.password, pending, station.id))) return { admitted: false, httpStatus: 401, reason: 'wrong password' };
        // The station now uses the password it was given: the old one stops working.
        await this.store.setStationPassword(station.id, pending);
      }
    }
    this.registrations.set(station.id, station.registration);
    return { admitted: true, station };
  }

  async boot(stationId: string, info: BootInfo): Promise<{ status: 'Accepted' | 'Pending' | 'Rejected'; intervalS: number; currentTime: Date }> {
    const now = this.clock.now();
    await this.store.updateStation(stationId, {
      vendor: info.vendor,
      model: info.model,
      serialNumber: info.serialNumber ?? null,
      firmwareVersion: info.firmwareVersion ?? null,
      iccid: info.iccid ?? null,
      imsi: info.imsi ?? null,
      meterType: info.meterType ?? null,
      meterSerialNumber: info.meterSerialNumber ?? null,
      lastBootAt: now.toISOString(),
      lastSeenAt: now.toISOString(),
    });
    const station = await this.store.getStation(stationId);
    const registration: RegistrationStatus = station?.registration ?? 'rejected';
    this.registrations.set(stationId, registration);
    this.events.publish({ type: 'station.booted', stationId, at: now.toISOString(), registration });
    const status = registration === 'accepted' ? 'Accepted' : registration === 'pending' ? 'Pending' : 'Rejected';
    return { status, intervalS: status === 'Accepted' ? this.options.heartbeatIntervalS : this.options.retryIntervalS, currentTime: now };
  }

  /**
   * Whether the station is accepted, when its registration is known without asking the store; on
   * the path of every CALL, where awaiting the answer already known cost a turn of the microtask queue.
   */
  acceptedIfKnown(stationId: string): boolean | undefined {
    const registration = this.registrations.get(stationId);
    return registration === undefined ? undefined : registration === 'accepted';
  }

  async isAccepted(stationId: string): Promise<boolean> {
    let registration = this.registrations.get(stationId);
    if (registration === undefined) {
      registration = (await this.store.getStation(stationId))?.registration;
      if (registration) this.registrations.set(stationId, registration);
    }
    return registration === 'accepted';
  }

  /** Forgets the cached registration of a station that disconnected. */
  forget(stationId: string): void {
    this.registrations.delete(stationId);
  }

  async touch(stationId: string): Promise<Date> {
    const now = this.clock.now();
    await this.store.updateStation(stationId, { lastSeenAt: now.toISOString() });
    return now;
  }

  async setRegistration(stationId: string, registration: RegistrationStatus): Promise<Station | undefined> {
    const station = await this.store.getStation(stationId);
    if (!station) return undefined;
    await this.store.updateStation(stationId, { registration });
    this.registrations.set(stationId, registration);
    return { ...station, registration };
  }

  /** Creates a station ahead of its first connection (needed when registration is closed). */
  async create(id: string, opts: { registration?: RegistrationStatus; securityProfile?: SecurityProfile; password?: string }): Promise<Station> {
    await this.store.createStation({
      id,
      registration: opts.registration ?? 'accepted',
      securityProfile: opts.securityProfile ?? (opts.password ? 1 : 0),
      createdAt: this.clock.now().toISOString(),
    });
    if (opts.password) await this.store.setStationPassword(id, await hashPassword(opts.password));
    return (await this.store.getStation(id))!;
  }

  /**
   * Sets the Basic-auth password. A station without a password is raised to profile 1; the profile
   * is never lowered (1.6 Security whitepaper: profiles only go up).
   */
  async setPassword(stationId: string, password: string): Promise<Station | undefined> {
    const station = await this.store.getStation(stationId);
    if (!station) return undefined;
    await this.store.setStationPassword(stationId, await hashPassword(password));
    if (station.securityProfile < 1) await this.store.updateStation(stationId, { securityProfile: 1 });
    return this.store.getStation(stationId);
  }

  async setSecurityProfile(stationId: string, profile: SecurityProfile): Promise<{ station?: Station; error?: string }> {
    const station = await this.store.getStation(stationId);
    if (!station) return {};
    if (profile < station.securityProfile) return { station, error: `security profile can only be raised (now ${station.securityProfile})` };
    if (profile >= 1 && !station.hasPassword) return { station, error: 'set a password before raising the security profile to 1 or more' };
    if (profile === 3) return { station, error: 'security profile 3 (client certificates) is not supported yet' };
    await this.store.updateStation(stationId, { securityProfile: profile });
    return { station: await this.store.getStation(stationId) };
  }
}
