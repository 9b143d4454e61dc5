import { describe, expect, it } from 'vitest';
import { hashPassword, VerifiedPasswords, verifyPassword } from './passwords.js';

describe('VerifiedPasswords', () => {
  it('checks a password with scrypt once, then from memory; wrong and changed passwords always go to scrypt', async () => {
    const slowChecks: string[] = [];
    const passwords = new VerifiedPasswords(async (password, stored) => {
      slowChecks.push(password);
      return verifyPassword(password, stored);
    });
    const stored = await hashPassword('station-key-0123456789');
    expect(await passwords.verify('station-key-0123456789', stored)).toBe(true);
    expect(await passwords.verify('station-key-0123456789', stored)).toBe(true);
    expect(slowChecks).toEqual(['station-key-0123456789']);
    // A wrong password is never taken from memory, however often it comes.
    expect(await passwords.verify('station-key-wrong', stored)).toBe(false);
    expect(await passwords.verify('station-key-wrong', stored)).toBe(false);
    expect(slowChecks).toHaveLength(3);
    // A new password means a new stored hash (its own salt): the old entry does not apply to it.
    const changed = await hashPassword('station-key-9876543210');
    expect(await passwords.verify('station-key-0123456789', changed)).toBe(false);
    expect(await passwords.verify('station-key-9876543210', changed)).toBe(true);
    expect(slowChecks).toHaveLength(5);
  });

  it('a hash just made from a password (first use) verifies without scrypt', async () => {
    let slow = 0;
    const passwords = new VerifiedPasswords(async (password, stored) => {
      slow += 1;
      return verifyPassword(password, stored);
    });
    const stored = await hashPassword('first-use-key-0123456789');
    passwords.remember(stored, 'first-use-key-0123456789');
    expect(await passwords.verify('first-use-key-0123456789', stored)).toBe(true);
    expect(slow).toBe(0);
  });

  it('knows a station whose password it verified or stored, and only with that password', async () => {
    const passwords = new VerifiedPasswords();
    const stored = await hashPassword('known-key-0123456789');
    expect(passwords.knows('CP-1', 'known-key-0123456789')).toBe(false);
    expect(await passwords.verify('known-key-0123456789', stored, 'CP-1')).toBe(true);
    expect(passwords.knows('CP-1', 'known-key-0123456789')).toBe(true);
    expect(passwords.knows('CP-1', 'known-key-wrong')).toBe(false);
    expect(passwords.knows('CP-2', 'known-key-0123456789')).toBe(false);
    // A failed check teaches it nothing.
    expect(await passwords.verify('other-key-0123456789', stored, 'CP-3')).toBe(false);
    expect(passwords.knows('CP-3', 'other-key-0123456789')).toBe(false);
    passwords.remember(await hashPassword('first-key-0123456789'), 'first-key-0123456789', 'CP-4');
    expect(passwords.knows('CP-4', 'first-key-0123456789')).toBe(true);
  });
});
