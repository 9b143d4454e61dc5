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

  constructor(
    private readonly slowVerify: (password: string, stored: string) => Promise<boolean> = verifyPassword,
    private readonly max = 100_000,
  ) {}

  async verify(password: string, stored: string): Promise<boolean> {
    const mac = this.mac(password);
    const known = this.verified.get(stored);
    if (known && timingSafeEqual(known, mac)) return true;
    const ok = await this.slowVerify(password, stored);
    if (ok) this.remember(stored, password, mac);
    return ok;
  }

  /** A hash just made from this password (first use): the station's next connection is quick too. */
  remember(stored: string, password: string, mac = this.mac(password)): void {
    if (this.verified.size >= this.max) this.verified.clear();
    this.verified.set(stored, mac);
  }

  private mac(password: string): Buffer {
    return createHmac('sha256', this.key).update(password).digest();
  }
}
