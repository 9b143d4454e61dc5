import { createHmac, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(scryptCallback) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

/** A station's Basic-auth password as `scrypt$salt$hash` (hex): never stored in the clear. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, 32);
  return `scrypt$${salt.toString('hex')}$${hash.toString('hex')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, saltHex, hashHex] = stored.split('$');
  if (scheme !== 'scrypt' || !saltHex || !hashHex) return false;
  const expected = Buffer.from(hashHex, 'hex');
  const actual = await scrypt(password, Buffer.from(saltHex, 'hex'), expected.length);
  return timingSafeEqual(actual, expected);
}

/**
 * Passwords that verified against a stored hash, remembered by this process, so that a station
 * that reconnects (10,000 of them after a mobile network outage) is checked in microseconds instead
 * of one scrypt each (about 34 ms of CPU). Entries are keyed by the stored hash, whose salt is its
 * own, so a changed password never meets an old entry; they hold an HMAC of the password under a
 * key made at start, never the password. A wrong password always pays the full scrypt.
 */
export class VerifiedPasswords {
  private readonly key = randomBytes(32);
  private readonly verified = new Map<string, Buffer>();
  /** The same HMACs by station id, so that admission control can tell a cheap reconnect before any lookup. */
  private readonly byStation = new Map<string, Buffer>();

  constructor(
    private readonly slowVerify: (password: string, stored: string) => Promise<boolean> = verifyPassword,
    private readonly max = 100_000,
  ) {}

  async verify(password: string, stored: string, stationId?: string): Promise<boolean> {
    const mac = this.mac(password);
    const known = this.verified.get(stored);
    if (known && timingSafeEqual(known, mac)) {
      if (stationId !== undefined) this.byStation.set(stationId, mac);
      return true;
    }
    const ok = await this.slowVerify(password, stored);
    if (ok) this.remember(stored, password, stationId, mac);
    return ok;
  }

  /** A hash just made from this password (first use): the station's next connection is quick too. */
  remember(stored: string, password: string, stationId?: string, mac = this.mac(password)): void {
    if (this.verified.size >= this.max) this.verified.clear();
    if (this.byStation.size >= this.max) this.byStation.clear();
    this.verified.set(stored, mac);
    if (stationId !== undefined) this.byStation.set(stationId, mac);
  }

  /**
   * Whether this process has verified this password for this station before. Only an estimate of
   * what checking it will cost (the stored hash may have changed since, and `verify` decides); a
   * wrong password is never "known".
   */
  knows(stationId: string, password: string): boolean {
    const known = this.byStation.get(stationId);
    return known !== undefined && timingSafeEqual(known, this.mac(password));
  }

  private mac(password: string): Buffer {
    return createHmac('sha256', this.key).update(password).digest();
  }
}
