import { describe, expect, it } from 'vitest';
import { iso } from './transactions.js';

describe('iso', () => {
  it('gives what Date gives for any text of the form toISOString writes, whatever its digits', () => {
    // Random digits in that form: days and hours out of range, 29 to 31 in any month, seconds of 60.
    let seed = 42;
    const digits = (n: number) => {
      let out = '';
      for (let i = 0; i < n; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        out += String(seed % 10);
      }
      return out;
    };
    const pick = (choices: string[]) => choices[Number(digits(2)) % choices.length]!;
    for (let i = 0; i < 20_000; i++) {
      const text = `${pick(['2024', '2026', '2100', '0000', '9999'])}-${pick(['01', '02', '04', '12', '13', '00', digits(2)])}-${pick(['01', '28', '29', '30', '31', '00', digits(2)])}T${pick(['00', '23', '24', digits(2)])}:${pick(['00', '59', '60', digits(2)])}:${pick(['00', '59', '60', digits(2)])}.${digits(3)}Z`;
      const date = new Date(text);
      if (Number.isNaN(date.getTime())) expect(() => iso(text)).toThrow(RangeError);
      else expect(iso(text)).toBe(date.toISOString());
    }
  });

  it('normalises other forms and days past the 28th as Date does', () => {
    expect(iso('2026-02-30T00:00:00.000Z')).toBe('2026-03-02T00:00:00.000Z');
    expect(iso('2024-02-29T23:59:59.999Z')).toBe('2024-02-29T23:59:59.999Z');
    expect(iso('2026-01-01T24:00:00.000Z')).toBe('2026-01-02T00:00:00.000Z');
    expect(iso('2026-12-07T10:00:00Z')).toBe('2026-12-07T10:00:00.000Z');
    expect(iso('2026-12-07T11:00:00.000+01:00')).toBe('2026-12-07T10:00:00.000Z');
    expect(iso(new Date(Date.UTC(2026, 11, 7)))).toBe('2026-12-07T00:00:00.000Z');
  });

  it('refuses what is not a time', () => {
    expect(() => iso('2026-13-01T00:00:00.000Z')).toThrow(RangeError);
    expect(() => iso('2026-01-01T23:59:60.000Z')).toThrow(RangeError);
    expect(() => iso('yesterday')).toThrow(RangeError);
  });
});
