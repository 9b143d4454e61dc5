import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  compositeSchedule,
  installProfile,
  limitAt,
  type AcceptedComposite,
  type CompositeInput,
  type CompositeRequest,
} from './composite.js';
import type {
  ChargingProfile,
  ChargingRateUnit,
  ChargingSchedulePeriod,
  InstalledProfile,
  StationElectrical,
  TransactionInfo,
} from './model.js';

// A rated current nobody would choose as a profile limit, so that a stretch reported at
// it is recognisably "nothing constrains here".
const ratedCurrent = 63;
const station: StationElectrical = { connectors: 2, supplyVoltage: 230, connectorMaxCurrent: ratedCurrent };

/** 2026-01-05 is a Monday. */
function utc(time: string, day = '2026-01-05'): string {
  return `${day}T${time}:00Z`;
}

function periods(...pairs: Array<[number, number]>): ChargingSchedulePeriod[] {
  return pairs.map(([startPeriod, limit]) => ({ startPeriod, limit }));
}

let nextProfileId = 1;
function profile(fields: Partial<ChargingProfile> & Pick<ChargingProfile, 'chargingProfilePurpose' | 'chargingSchedule'>): ChargingProfile {
  return {
    chargingProfileId: nextProfileId++,
    stackLevel: 0,
    chargingProfileKind: 'Relative',
    ...fields,
  };
}

function transaction(connectorId: number, transactionId: number, startTime: string): TransactionInfo {
  return { connectorId, transactionId, startTime: new Date(startTime) };
}

function accepted(input: CompositeInput): AcceptedComposite {
  const result = compositeSchedule(input);
  if (result.status !== 'Accepted') throw new Error(`expected Accepted, got Rejected: ${result.reason}`);
  return result;
}

/** [startPeriod, limit] pairs: the shape the edge cases are written in. */
function limits(input: CompositeInput): Array<[number, number]> {
  return accepted(input).chargingSchedule.chargingSchedulePeriod.map((p) => [p.startPeriod, p.limit]);
}

function request(connectorId: number, startTime: string, duration: number, chargingRateUnit: ChargingRateUnit = 'A', numberPhases?: number): CompositeRequest {
  return { connectorId, startTime: new Date(startTime), duration, chargingRateUnit, numberPhases };
}

describe('OCPP-NOTES §3 edge cases', () => {
  describe('relative TxDefaultProfile valid 12:00–20:00, 32 A for the first hour then 6 A', () => {
    const txDefault: InstalledProfile = {
      connectorId: 1,
      profile: profile({
        chargingProfilePurpose: 'TxDefaultProfile',
        chargingProfileKind: 'Relative',
        validFrom: utc('12:00'),
        validTo: utc('20:00'),
        chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 32], [3600, 6]) },
      }),
    };

    it('EV plugged in at 10:00 gets nothing from the profile until 12:00, then 6 A (its first hour is over)', () => {
      expect(limits({
        station,
        profiles: [txDefault],
        transactions: [transaction(1, 1, utc('10:00'))],
        request: request(1, utc('10:00'), 12 * 3600),
      })).toEqual([[0, ratedCurrent], [2 * 3600, 6], [10 * 3600, ratedCurrent]]);
    });

    it('EV plugged in at 19:50 gets 32 A for ten minutes, then the profile stops applying', () => {
      expect(limits({
        station,
        profiles: [txDefault],
        transactions: [transaction(1, 1, utc('19:50'))],
        request: request(1, utc('19:50'), 3600),
      })).toEqual([[0, 32], [600, ratedCurrent]]);
    });
  });

  it('daily recurring profile anchored at 12:00: an EV plugged in at 11:50 is under the tail of the previous day until 12:00', () => {
    const daily = profile({
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingProfileKind: 'Recurring',
      recurrencyKind: 'Daily',
      chargingSchedule: {
        startSchedule: utc('12:00', '2026-01-01'),
        chargingRateUnit: 'A',
        chargingSchedulePeriod: periods([0, 32], [3600, 6]),
      },
    });
    expect(limits({
      station,
      profiles: [{ connectorId: 1, profile: daily }],
      transactions: [transaction(1, 1, utc('11:50', '2026-01-10'))],
      request: request(1, utc('11:50', '2026-01-10'), 2 * 3600),
    })).toEqual([[0, 6], [600, 32], [600 + 3600, 6]]);
  });

  describe('two TxDefaultProfiles with the same stackLevel meant to follow each other in time', () => {
    const morning = profile({
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingProfileKind: 'Absolute',
      stackLevel: 1,
      chargingSchedule: { startSchedule: utc('08:00'), duration: 7200, chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 10]) },
    });
    const noon = profile({
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingProfileKind: 'Absolute',
      stackLevel: 1,
      chargingSchedule: { startSchedule: utc('10:00'), duration: 7200, chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 20]) },
    });

    it('in 1.6 the second replaces the first when installed', () => {
      const installed = [{ connectorId: 1, profile: morning }, { connectorId: 1, profile: noon }]
        .reduce<InstalledProfile[]>(installProfile, []);
      expect(installed.map((p) => p.profile.chargingProfileId)).toEqual([noon.chargingProfileId]);
    });

    it('so time cannot be tiled with one stackLevel: the first window is left unconstrained', () => {
      expect(limits({
        station,
        profiles: [{ connectorId: 1, profile: morning }, { connectorId: 1, profile: noon }],
        transactions: [],
        request: request(1, utc('08:00'), 5 * 3600),
      })).toEqual([[0, ratedCurrent], [7200, 20], [4 * 3600, ratedCurrent]]);
    });

    it('with different stackLevels they do follow each other', () => {
      expect(limits({
        station,
        profiles: [{ connectorId: 1, profile: morning }, { connectorId: 1, profile: { ...noon, stackLevel: 2 } }],
        transactions: [],
        request: request(1, utc('08:00'), 4 * 3600),
      })).toEqual([[0, 10], [7200, 20]]);
    });
  });

  describe('mixed units: 16 A one-phase ChargePointMaxProfile, relative TxDefaultProfile in W stepping down every 300 s', () => {
    const situation = {
      station: { connectors: 1, supplyVoltage: 230 },
      profiles: [
        {
          connectorId: 0,
          profile: profile({
            chargingProfilePurpose: 'ChargePointMaxProfile',
            chargingProfileKind: 'Absolute',
            chargingSchedule: {
              startSchedule: utc('00:00'),
              chargingRateUnit: 'A',
              chargingSchedulePeriod: [{ startPeriod: 0, limit: 16, numberPhases: 1 }],
            },
          }),
        },
        {
          connectorId: 1,
          profile: profile({
            chargingProfilePurpose: 'TxDefaultProfile',
            chargingProfileKind: 'Relative',
            chargingSchedule: {
              chargingRateUnit: 'W',
              chargingSchedulePeriod: periods([0, 12420], [300, 8280], [600, 6210], [900, 4140], [1200, 2070]),
            },
          }),
        },
      ],
      transactions: [transaction(1, 1, utc('08:00'))],
    };

    it('requested in A for one phase: 16 A until the W limit falls below 16 A × 230 V, then the converted W limit', () => {
      const result = accepted({ ...situation, request: request(1, utc('08:00'), 1500, 'A', 1) });
      expect(result.chargingSchedule.chargingSchedulePeriod).toEqual([
        { startPeriod: 0, limit: 16, numberPhases: 1, constrained: true },
        { startPeriod: 1200, limit: 9, numberPhases: 1, constrained: true },
      ]);
    });

    it('requested in A for three phases: the W limits convert to 18, 12, 9, 6, 3 A, capped at 16 A', () => {
      const result = accepted({ ...situation, request: request(1, utc('08:00'), 1500, 'A', 3) });
      expect(result.chargingSchedule.chargingSchedulePeriod).toEqual([
        { startPeriod: 0, limit: 16, numberPhases: 1, constrained: true },
        { startPeriod: 300, limit: 12, numberPhases: 3, constrained: true },
        { startPeriod: 600, limit: 9, numberPhases: 3, constrained: true },
        { startPeriod: 900, limit: 6, numberPhases: 3, constrained: true },
        { startPeriod: 1200, limit: 3, numberPhases: 3, constrained: true },
      ]);
    });

    it('requested in W: the one-phase 16 A cap is 3,680 W until the W profile falls below it', () => {
      const result = accepted({ ...situation, request: request(1, utc('08:00'), 1500, 'W') });
      expect(result.chargingSchedule.chargingSchedulePeriod).toEqual([
        { startPeriod: 0, limit: 3680, numberPhases: 1, constrained: true },
        { startPeriod: 1200, limit: 2070, numberPhases: 3, constrained: true },
      ]);
    });
  });

  describe('weekly recurring profile that crosses the week boundary (anchored Sunday 22:00)', () => {
    const weekly = (duration?: number) => profile({
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingProfileKind: 'Recurring',
      recurrencyKind: 'Weekly',
      chargingSchedule: {
        startSchedule: utc('22:00', '2026-01-04'),
        duration,
        chargingRateUnit: 'A',
        chargingSchedulePeriod: periods([0, 10], [4 * 3600, 20]),
      },
    });

    it('a week after the anchor the occurrence runs from Sunday 22:00 into Monday', () => {
      expect(limits({
        station,
        profiles: [{ connectorId: 1, profile: weekly(8 * 3600) }],
        transactions: [],
        request: request(1, utc('21:00', '2026-01-11'), 10 * 3600),
      })).toEqual([[0, ratedCurrent], [3600, 10], [3600 + 4 * 3600, 20], [3600 + 8 * 3600, ratedCurrent]]);
    });

    it('without a duration the previous week\'s last period runs until the next occurrence starts', () => {
      expect(limits({
        station,
        profiles: [{ connectorId: 1, profile: weekly() }],
        transactions: [],
        request: request(1, utc('21:30', '2026-01-11'), 3600),
      })).toEqual([[0, 20], [1800, 10]]);
    });
  });

  it('recurring profile whose duration exceeds the recurrence is cut at the recurrence', () => {
    // 100,000 s > 86,400 s: the 5 A period at 25 h is never reached, and the 20 A period
    // from 23 h gives way to the next day's 10 A at 24 h.
    const daily = profile({
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingProfileKind: 'Recurring',
      recurrencyKind: 'Daily',
      chargingSchedule: {
        startSchedule: utc('06:00', '2026-01-01'),
        duration: 100_000,
        chargingRateUnit: 'A',
        chargingSchedulePeriod: periods([0, 10], [23 * 3600, 20], [25 * 3600, 5]),
      },
    });
    expect(limits({
      station,
      profiles: [{ connectorId: 1, profile: daily }],
      transactions: [],
      request: request(1, utc('04:00'), 3 * 3600),
    })).toEqual([[0, 10], [3600, 20], [7200, 10]]);
  });

  describe('profile with validTo in the middle of a period', () => {
    const clipped = profile({
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingProfileKind: 'Absolute',
      stackLevel: 2,
      validTo: utc('09:30'),
      chargingSchedule: { startSchedule: utc('08:00'), chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 10], [3600, 12]) },
    });
    const below = profile({
      chargingProfilePurpose: 'TxDefaultProfile',
      stackLevel: 1,
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 20]) },
    });

    it('the next lower stackLevel governs from validTo on', () => {
      expect(limits({
        station,
        profiles: [{ connectorId: 1, profile: clipped }, { connectorId: 1, profile: below }],
        transactions: [],
        request: request(1, utc('08:00'), 3 * 3600),
      })).toEqual([[0, 10], [3600, 12], [5400, 20]]);
    });

    it('with nothing below, the connector is unconstrained from validTo on', () => {
      expect(limits({
        station,
        profiles: [{ connectorId: 1, profile: clipped }],
        transactions: [],
        request: request(1, utc('08:00'), 3 * 3600),
      })).toEqual([[0, 10], [3600, 12], [5400, ratedCurrent]]);
    });
  });

  it('TxProfile that ends (duration) before the transaction does, after which TxDefaultProfile applies again', () => {
    expect(limits({
      station,
      profiles: [
        {
          connectorId: 1,
          profile: profile({
            chargingProfilePurpose: 'TxProfile',
            transactionId: 7,
            chargingSchedule: { duration: 3600, chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 10]) },
          }),
        },
        {
          connectorId: 0,
          profile: profile({
            chargingProfilePurpose: 'TxDefaultProfile',
            chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 16]) },
          }),
        },
      ],
      transactions: [transaction(1, 7, utc('08:00'))],
      request: request(1, utc('08:30'), 7200),
    })).toEqual([[0, 10], [1800, 16]]);
  });

  describe('GetCompositeSchedule for connectorId 0: the expected grid consumption of the whole charge point', () => {
    const chargePointMax = profile({
      chargingProfilePurpose: 'ChargePointMaxProfile',
      chargingProfileKind: 'Absolute',
      chargingSchedule: { startSchedule: utc('00:00'), chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 30], [9 * 3600, 20]) },
    });
    const defaultForAll = profile({
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 16]) },
    });
    const txProfile = profile({
      chargingProfilePurpose: 'TxProfile',
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 10]) },
    });

    it('sums the connectors\' limits and caps the sum with the ChargePointMaxProfile', () => {
      // 10 A (TxProfile on 1) + 16 A (TxDefaultProfile on 2) = 26 A, under the 30 A cap
      // until 09:00, when the cap drops to 20 A.
      expect(limits({
        station,
        profiles: [
          { connectorId: 0, profile: chargePointMax },
          { connectorId: 0, profile: defaultForAll },
          { connectorId: 1, profile: txProfile },
        ],
        transactions: [transaction(1, 3, utc('08:00'))],
        request: request(0, utc('08:30'), 3600),
      })).toEqual([[0, 26], [1800, 20]]);
    });

    it('a connector nothing constrains counts at its rated current', () => {
      const result = accepted({
        station,
        profiles: [{ connectorId: 1, profile: { ...defaultForAll } }],
        transactions: [],
        request: request(0, utc('08:00'), 600),
      });
      expect(result.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 16 + ratedCurrent, numberPhases: 3, constrained: true }]);
      expect(result.unconstrainedLimit).toBe(2 * ratedCurrent);
    });
  });
});

describe('stacking and purposes', () => {
  const txDefault = (stackLevel: number, limit: number, fields: Partial<ChargingProfile> = {}) => profile({
    chargingProfilePurpose: 'TxDefaultProfile',
    stackLevel,
    chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, limit]) },
    ...fields,
  });

  it('the highest stackLevel in force wins, and the lower one governs again when it ends', () => {
    const short = txDefault(3, 8, {
      chargingSchedule: { duration: 1200, chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 8]) },
    });
    expect(limits({
      station,
      profiles: [{ connectorId: 1, profile: txDefault(1, 20) }, { connectorId: 1, profile: short }, { connectorId: 1, profile: txDefault(2, 24) }],
      transactions: [transaction(1, 1, utc('08:00'))],
      request: request(1, utc('08:00'), 3600),
    })).toEqual([[0, 8], [1200, 24]]);
  });

  it('a higher stackLevel wins even when its limit is higher (stacking is not a minimum)', () => {
    expect(limits({
      station,
      profiles: [{ connectorId: 1, profile: txDefault(1, 10) }, { connectorId: 1, profile: txDefault(2, 30) }],
      transactions: [],
      request: request(1, utc('08:00'), 600),
    })).toEqual([[0, 30]]);
  });

  it('at equal stackLevel a TxDefaultProfile on the connector beats the one on connector 0', () => {
    expect(limits({
      station,
      profiles: [{ connectorId: 1, profile: txDefault(1, 12) }, { connectorId: 0, profile: txDefault(1, 30) }],
      transactions: [],
      request: request(1, utc('08:00'), 600),
    })).toEqual([[0, 12]]);
  });

  it('a TxDefaultProfile on connector 0 with a higher stackLevel beats the connector\'s own', () => {
    expect(limits({
      station,
      profiles: [{ connectorId: 1, profile: txDefault(1, 12) }, { connectorId: 0, profile: txDefault(2, 30) }],
      transactions: [],
      request: request(1, utc('08:00'), 600),
    })).toEqual([[0, 30]]);
  });

  it('TxProfile overrides TxDefaultProfile whatever their stackLevels, from the transaction start on', () => {
    const tx = profile({
      chargingProfilePurpose: 'TxProfile',
      stackLevel: 0,
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 25]) },
    });
    // Absolute, so that it governs before the transaction starts as well.
    const absoluteDefault = txDefault(5, 10, {
      chargingProfileKind: 'Absolute',
      chargingSchedule: { startSchedule: utc('00:00'), chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 10]) },
    });
    expect(limits({
      station,
      profiles: [{ connectorId: 1, profile: absoluteDefault }, { connectorId: 1, profile: tx }],
      transactions: [transaction(1, 1, utc('08:10'))],
      request: request(1, utc('08:00'), 1800),
    })).toEqual([[0, 10], [600, 25]]);
  });

  it('a TxProfile for another transaction, or on a connector without a transaction, does not apply', () => {
    const forOtherTransaction = profile({
      chargingProfilePurpose: 'TxProfile',
      transactionId: 99,
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 6]) },
    });
    const onIdleConnector = profile({
      chargingProfilePurpose: 'TxProfile',
      stackLevel: 1,
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 7]) },
    });
    const input = {
      station,
      profiles: [
        { connectorId: 1, profile: txDefault(0, 16) },
        { connectorId: 1, profile: forOtherTransaction },
        { connectorId: 2, profile: onIdleConnector },
        { connectorId: 2, profile: txDefault(0, 18) },
      ],
      transactions: [transaction(1, 5, utc('08:00'))],
    };
    expect(limits({ ...input, request: request(1, utc('08:00'), 600) })).toEqual([[0, 16]]);
    expect(limits({ ...input, request: request(2, utc('08:00'), 600) })).toEqual([[0, 18]]);
  });

  it('the result is the minimum with the ChargePointMaxProfile', () => {
    const cap = profile({
      chargingProfilePurpose: 'ChargePointMaxProfile',
      chargingProfileKind: 'Absolute',
      chargingSchedule: { startSchedule: utc('08:00'), chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 32], [600, 14], [1200, 40]) },
    });
    expect(limits({
      station,
      profiles: [{ connectorId: 0, profile: cap }, { connectorId: 1, profile: txDefault(0, 20) }],
      transactions: [],
      request: request(1, utc('08:00'), 1800),
    })).toEqual([[0, 20], [600, 14], [1200, 20]]);
  });

  it('an Absolute profile whose schedule has not started yet leaves a gap until it starts', () => {
    const later = profile({
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingProfileKind: 'Absolute',
      chargingSchedule: { startSchedule: utc('09:00'), chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 11]) },
    });
    expect(limits({
      station,
      profiles: [{ connectorId: 1, profile: later }],
      transactions: [],
      request: request(1, utc('08:00'), 7200),
    })).toEqual([[0, ratedCurrent], [3600, 11]]);
  });

  it('a Relative profile on a connector without a transaction starts at the request time', () => {
    const relative = txDefault(0, 10, {
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 10], [900, 13]) },
    });
    expect(limits({
      station,
      profiles: [{ connectorId: 2, profile: relative }],
      transactions: [transaction(1, 1, utc('07:00'))],
      request: request(2, utc('08:00'), 1800),
    })).toEqual([[0, 10], [900, 13]]);
  });

  it('a profile no charger would have accepted is left out', () => {
    const firstPeriodNotAtZero = txDefault(1, 5, {
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([60, 5]) },
    });
    expect(limits({
      station,
      profiles: [{ connectorId: 1, profile: txDefault(0, 16) }, { connectorId: 1, profile: firstPeriodNotAtZero }],
      transactions: [],
      request: request(1, utc('08:00'), 600),
    })).toEqual([[0, 16]]);
  });

  it('on equal limits the smaller phase count is reported', () => {
    const cap = profile({
      chargingProfilePurpose: 'ChargePointMaxProfile',
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 16, numberPhases: 1 }] },
    });
    const threePhase = txDefault(0, 0, {
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 16, numberPhases: 3 }] },
    });
    const result = accepted({
      station,
      profiles: [{ connectorId: 1, profile: threePhase }, { connectorId: 0, profile: cap }],
      transactions: [],
      request: request(1, utc('08:00'), 60, 'A'),
    });
    expect(result.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 16, numberPhases: 1, constrained: true }]);
  });

  it('A limits convert to W with the phases of their own period, and W to A rounds down to one decimal', () => {
    const onePhase = txDefault(0, 0, {
      chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 15.5, numberPhases: 1 }] },
    });
    expect(limits({ station, profiles: [{ connectorId: 1, profile: onePhase }], transactions: [], request: request(1, utc('08:00'), 60, 'W') }))
      .toEqual([[0, 3565]]);
    const elevenKilowatt = txDefault(0, 0, {
      chargingSchedule: { chargingRateUnit: 'W', chargingSchedulePeriod: periods([0, 11000]) },
    });
    // 11,000 W / (230 V × 3) = 15.942… A
    expect(limits({ station, profiles: [{ connectorId: 1, profile: elevenKilowatt }], transactions: [], request: request(1, utc('08:00'), 60, 'A') }))
      .toEqual([[0, 15.9]]);
  });
});

describe('the request', () => {
  const situation = { station, profiles: [], transactions: [] };

  it.each([
    ['a connector beyond the station', request(3, utc('08:00'), 60), /connectorId 3 is outside 0..2/],
    ['a negative connector', request(-1, utc('08:00'), 60), /connectorId -1/],
    ['a zero duration', request(1, utc('08:00'), 0), /duration 0/],
    ['a fractional duration', request(1, utc('08:00'), 1.5), /duration 1.5/],
    ['an invalid start time', { connectorId: 1, startTime: new Date('not a date'), duration: 60 }, /startTime/],
    ['an unknown unit', { connectorId: 1, startTime: new Date(utc('08:00')), duration: 60, chargingRateUnit: 'kW' as ChargingRateUnit }, /chargingRateUnit kW/],
    ['four phases', request(1, utc('08:00'), 60, 'A', 4), /numberPhases 4/],
  ])('is rejected for %s', (_name, rejected, reason) => {
    const result = compositeSchedule({ ...situation, request: rejected });
    expect(result.status).toBe('Rejected');
    expect(result.status === 'Rejected' && result.reason).toMatch(reason);
  });

  it('without profiles reports the rated current as unconstrained, in W by default, for the whole duration', () => {
    const result = accepted({ ...situation, request: { connectorId: 1, startTime: new Date(utc('08:00')), duration: 900 } });
    expect(result).toEqual({
      status: 'Accepted',
      connectorId: 1,
      scheduleStart: new Date(utc('08:00')),
      chargingSchedule: {
        chargingRateUnit: 'W',
        duration: 900,
        chargingSchedulePeriod: [{ startPeriod: 0, limit: ratedCurrent * 230 * 3, numberPhases: 3, constrained: false }],
      },
      unconstrainedLimit: ratedCurrent * 230 * 3,
    });
  });

  it('drops the sub-second part of the start time', () => {
    const result = accepted({ ...situation, request: { connectorId: 1, startTime: new Date('2026-01-05T08:00:00.750Z'), duration: 60 } });
    expect(result.scheduleStart.toISOString()).toBe('2026-01-05T08:00:00.000Z');
  });
});

describe('limitAt', () => {
  const situation = {
    station,
    profiles: [{
      connectorId: 1,
      profile: profile({
        chargingProfilePurpose: 'TxDefaultProfile',
        chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: periods([0, 16], [1800, 8]) },
      }),
    }],
    transactions: [transaction(1, 1, utc('08:00'))],
  };

  it('answers "how much may I draw now" for a connector', () => {
    expect(limitAt(situation, 1, new Date(utc('08:45')), { chargingRateUnit: 'A' }))
      .toEqual({ chargingRateUnit: 'A', limit: 8, numberPhases: 3, constrained: true });
    expect(limitAt(situation, 2, new Date(utc('08:45')), { chargingRateUnit: 'A' }))
      .toEqual({ chargingRateUnit: 'A', limit: ratedCurrent, numberPhases: 3, constrained: false });
  });

  it('throws for a connector the station does not have', () => {
    expect(() => limitAt(situation, 5, new Date(utc('08:45')))).toThrow(/connectorId 5/);
  });
});

// ---------------------------------------------------------------------------------
// Properties over random profile sets, checked against a brute-force reference.

/**
 * The reference: the semantics of docs/smart-charging.md evaluated for one second at a
 * time, as literally as possible, sharing no code with composite.ts. Profiles given to
 * it are valid and unique per (connector, purpose, stackLevel) and per id, so no
 * replacement happens.
 */
function reference(input: CompositeInput): (t: number) => { limit: number; numberPhases: number; cap?: number } {
  const voltage = input.station.supplyVoltage ?? 230;
  const defaultPhases = input.station.defaultNumberPhases ?? 3;
  const ratedAmps = input.station.connectorMaxCurrent ?? 32;
  const unit = input.request.chargingRateUnit ?? 'W';
  const requestPhases = input.request.numberPhases ?? defaultPhases;
  const requestStart = Math.floor(input.request.startTime.getTime() / 1000);
  const seconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);

  const transactionOn = (connector: number) => input.transactions.find((tx) => tx.connectorId === connector);

  return (t) => {
  // The limit of one profile for one connector at t, in tenths of the requested unit.
  function profileAt(installed: InstalledProfile, connector: number): { tenths: number; phases: number } | undefined {
    const p = installed.profile;
    if (p.validFrom !== undefined && t < seconds(p.validFrom)) return undefined;
    if (p.validTo !== undefined && t >= seconds(p.validTo)) return undefined;
    const tx = transactionOn(connector);
    const txStart = tx ? Math.floor(tx.startTime.getTime() / 1000) : undefined;
    if (p.chargingProfilePurpose === 'TxProfile') {
      if (!tx || t < txStart!) return undefined;
      if (p.transactionId !== undefined && p.transactionId !== tx.transactionId) return undefined;
    }
    let start: number;
    let recurrence = Infinity;
    if (p.chargingProfileKind === 'Relative') {
      start = txStart ?? requestStart;
    } else if (p.chargingProfileKind === 'Absolute') {
      start = seconds(p.chargingSchedule.startSchedule!);
    } else {
      recurrence = p.recurrencyKind === 'Daily' ? 86400 : 604800;
      start = seconds(p.chargingSchedule.startSchedule!);
      while (start > t) start -= recurrence;
      while (start + recurrence <= t) start += recurrence;
    }
    if (t < start) return undefined;
    const offset = t - start;
    if (offset >= recurrence) return undefined;
    if (p.chargingSchedule.duration !== undefined && offset >= p.chargingSchedule.duration) return undefined;
    const inForce = p.chargingSchedule.chargingSchedulePeriod.filter((period) => period.startPeriod <= offset).pop();
    if (!inForce) return undefined;
    const phases = inForce.numberPhases ?? defaultPhases;
    const tenths = Math.round(inForce.limit * 10);
    if (p.chargingSchedule.chargingRateUnit === unit) return { tenths, phases };
    if (unit === 'W') return { tenths: tenths * voltage * phases, phases };
    return { tenths: Math.floor(tenths / (voltage * requestPhases)), phases: requestPhases };
  }

  function winner(candidates: Array<{ installed: InstalledProfile; rank: number }>, connector: number) {
    let best: { tenths: number; phases: number; stackLevel: number; rank: number } | undefined;
    for (const { installed, rank } of candidates) {
      const value = profileAt(installed, connector);
      if (!value) continue;
      const stackLevel = installed.profile.stackLevel;
      if (!best || stackLevel > best.stackLevel || (stackLevel === best.stackLevel && rank > best.rank)) {
        best = { ...value, stackLevel, rank };
      }
    }
    return best;
  }

  const ofPurpose = (purpose: ChargingProfile['chargingProfilePurpose'], connectors: number[]) =>
    input.profiles
      .filter((ip) => ip.profile.chargingProfilePurpose === purpose && connectors.includes(ip.connectorId))
      .map((installed) => ({ installed, rank: installed.connectorId > 0 ? 1 : 0 }));

  const connectorLimit = (connector: number) =>
    winner(ofPurpose('TxProfile', [connector]), connector) ?? winner(ofPurpose('TxDefaultProfile', [0, connector]), connector);
  const cap = winner(ofPurpose('ChargePointMaxProfile', [0]), 0);
  const ratedTenths = unit === 'A' ? Math.round(ratedAmps * 10) : Math.round(ratedAmps * 10) * voltage * requestPhases;

  let own: { tenths: number; phases: number } | undefined;
  if (input.request.connectorId > 0) {
    own = connectorLimit(input.request.connectorId);
  } else {
    own = { tenths: 0, phases: 0 };
    for (let connector = 1; connector <= input.station.connectors; connector++) {
      const limit = connectorLimit(connector);
      own.tenths += limit ? limit.tenths : ratedTenths;
      own.phases = Math.max(own.phases, limit ? limit.phases : requestPhases);
    }
  }
  let result = own;
  if (cap && (!result || cap.tenths < result.tenths || (cap.tenths === result.tenths && cap.phases < result.phases))) {
    result = cap;
  }
  if (!result) {
    result = { tenths: input.request.connectorId > 0 ? ratedTenths : ratedTenths * input.station.connectors, phases: requestPhases };
  }
  return { limit: result.tenths / 10, numberPhases: result.phases, ...(cap ? { cap: cap.tenths / 10 } : {}) };
  };
}

const base = Date.parse('2026-01-05T08:00:00Z') / 1000;
const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
const hour = 3600;

const periodsArb = (unit: ChargingRateUnit) =>
  fc.array(
    fc.record({
      gap: fc.integer({ min: 1, max: 2 * hour }),
      // A few common values besides the random ones, so that equal limits (ties) occur.
      tenths: unit === 'A'
        ? fc.oneof(fc.integer({ min: 0, max: 800 }), fc.constantFrom(0, 60, 160, 320))
        : fc.oneof(fc.integer({ min: 0, max: 300_000 }), fc.constantFrom(0, 36_800, 110_400, 220_800)),
      numberPhases: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 4 },
  ).map((drafts) => {
    let startPeriod = 0;
    return drafts.map((draft, index) => {
      if (index > 0) startPeriod += draft.gap;
      const period: ChargingSchedulePeriod = { startPeriod, limit: draft.tenths / 10 };
      if (draft.numberPhases !== undefined) period.numberPhases = draft.numberPhases;
      return period;
    });
  });

const anchorArb = fc.oneof(
  fc.integer({ min: -3 * hour, max: 3 * hour }),
  fc.tuple(fc.integer({ min: -3, max: 1 }), fc.integer({ min: -3 * hour, max: 3 * hour })).map(([days, s]) => days * 86400 + s),
  fc.tuple(fc.integer({ min: -2, max: 0 }), fc.integer({ min: -3 * hour, max: 3 * hour })).map(([weeks, s]) => weeks * 604800 + s),
);

const profileDraftArb = (connectors: number) =>
  fc.record({
    purpose: fc.constantFrom<ChargingProfile['chargingProfilePurpose']>('ChargePointMaxProfile', 'TxDefaultProfile', 'TxProfile'),
    connectorPick: fc.integer({ min: 0, max: connectors }),
    kind: fc.constantFrom<ChargingProfile['chargingProfileKind']>('Absolute', 'Recurring', 'Relative'),
    recurrencyKind: fc.constantFrom<'Daily' | 'Weekly'>('Daily', 'Weekly'),
    stackLevel: fc.integer({ min: 0, max: 3 }),
    anchor: anchorArb,
    duration: fc.option(fc.oneof(fc.integer({ min: 1, max: 4 * hour }), fc.constantFrom(90_000, 700_000)), { nil: undefined }),
    unit: fc.constantFrom<ChargingRateUnit>('A', 'W'),
    periodsSeed: fc.integer(),
    validFrom: fc.option(fc.integer({ min: -4 * hour, max: 4 * hour }), { nil: undefined }),
    validTo: fc.option(fc.integer({ min: -4 * hour, max: 4 * hour }), { nil: undefined }),
    transactionId: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  }).chain((draft) => periodsArb(draft.unit).map((chargingSchedulePeriod) => ({ ...draft, chargingSchedulePeriod })));

const inputArb: fc.Arbitrary<CompositeInput> = fc.integer({ min: 1, max: 3 }).chain((connectors) =>
  fc.record({
    station: fc.record({
      connectors: fc.constant(connectors),
      supplyVoltage: fc.option(fc.constantFrom(230, 220, 120, 240), { nil: undefined }),
      defaultNumberPhases: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      connectorMaxCurrent: fc.option(fc.constantFrom(16, 32, 63.5), { nil: undefined }),
    }, { requiredKeys: ['connectors'] }),
    drafts: fc.array(profileDraftArb(connectors), { maxLength: 7 }),
    transactions: fc.array(
      fc.record({ transactionId: fc.integer({ min: 1, max: 3 }), start: fc.integer({ min: -3 * hour, max: 2 * hour }) }),
      { minLength: connectors, maxLength: connectors },
    ).chain((txs) => fc.array(fc.boolean(), { minLength: connectors, maxLength: connectors }).map((running) =>
      txs.flatMap((tx, index) => running[index]
        ? [{ connectorId: index + 1, transactionId: tx.transactionId, startTime: new Date((base + tx.start) * 1000) }]
        : []))),
    request: fc.record({
      connectorId: fc.integer({ min: 0, max: connectors }),
      start: fc.integer({ min: -hour, max: hour }),
      duration: fc.integer({ min: 1, max: 3 * hour }),
      chargingRateUnit: fc.option(fc.constantFrom<ChargingRateUnit>('A', 'W'), { nil: undefined }),
      numberPhases: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    }),
  }).map(({ station: electrical, drafts, transactions, request: r }) => {
    const profiles: InstalledProfile[] = [];
    drafts.forEach((draft, index) => {
      const connectorId = draft.purpose === 'ChargePointMaxProfile' ? 0
        : draft.purpose === 'TxProfile' ? Math.max(1, draft.connectorPick)
        : draft.connectorPick;
      const p: ChargingProfile = {
        chargingProfileId: index + 1,
        stackLevel: draft.stackLevel,
        chargingProfilePurpose: draft.purpose,
        chargingProfileKind: draft.kind,
        chargingSchedule: { chargingRateUnit: draft.unit, chargingSchedulePeriod: draft.chargingSchedulePeriod },
      };
      if (draft.kind === 'Recurring') p.recurrencyKind = draft.recurrencyKind;
      if (draft.kind !== 'Relative') p.chargingSchedule.startSchedule = iso(base + draft.anchor);
      if (draft.duration !== undefined) p.chargingSchedule.duration = draft.duration;
      if (draft.purpose === 'TxProfile' && draft.transactionId !== undefined) p.transactionId = draft.transactionId;
      if (draft.validFrom !== undefined && draft.validTo !== undefined) {
        if (draft.validFrom !== draft.validTo) {
          p.validFrom = iso(base + Math.min(draft.validFrom, draft.validTo));
          p.validTo = iso(base + Math.max(draft.validFrom, draft.validTo));
        }
      } else if (draft.validFrom !== undefined) {
        p.validFrom = iso(base + draft.validFrom);
      } else if (draft.validTo !== undefined) {
        p.validTo = iso(base + draft.validTo);
      }
      // Keep the set as a charger would hold it: a later profile with the same
      // connector, purpose and stackLevel replaces the earlier one.
      const clash = profiles.findIndex((ip) => ip.connectorId === connectorId
        && ip.profile.chargingProfilePurpose === p.chargingProfilePurpose && ip.profile.stackLevel === p.stackLevel);
      if (clash >= 0) profiles.splice(clash, 1);
      profiles.push({ connectorId, profile: p });
    });
    return {
      station: electrical,
      profiles,
      transactions,
      request: {
        connectorId: r.connectorId,
        startTime: new Date((base + r.start) * 1000),
        duration: r.duration,
        chargingRateUnit: r.chargingRateUnit,
        numberPhases: r.numberPhases,
      },
    };
  }),
);

/** The composite's period in force at each second of the request, expanded. */
function perSecond(result: AcceptedComposite): Array<{ limit: number; numberPhases: number }> {
  const { duration, chargingSchedulePeriod } = result.chargingSchedule;
  const out: Array<{ limit: number; numberPhases: number }> = [];
  let index = 0;
  for (let offset = 0; offset < duration; offset++) {
    while (index + 1 < chargingSchedulePeriod.length && chargingSchedulePeriod[index + 1]!.startPeriod <= offset) index++;
    const { limit, numberPhases } = chargingSchedulePeriod[index]!;
    out.push({ limit, numberPhases });
  }
  return out;
}

describe('properties over random profile sets', () => {
  it('the composite equals a brute-force per-second evaluation at every second', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const referenceAt = reference(input);
        const start = Math.floor(input.request.startTime.getTime() / 1000);
        const composite = perSecond(accepted(input));
        const mismatch = composite.findIndex((value, offset) => {
          const expected = referenceAt(start + offset);
          return value.limit !== expected.limit || value.numberPhases !== expected.numberPhases;
        });
        if (mismatch >= 0) {
          const { limit, numberPhases } = referenceAt(start + mismatch);
          expect({ offset: mismatch, ...composite[mismatch] }).toEqual({ offset: mismatch, limit, numberPhases });
        }
      }),
      { numRuns: 200 },
    );
  }, 120_000);

  it('periods start at 0, strictly increase, stay inside the duration and differ from their predecessor', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const { chargingSchedulePeriod, duration } = accepted(input).chargingSchedule;
        expect(chargingSchedulePeriod[0]?.startPeriod).toBe(0);
        for (let i = 1; i < chargingSchedulePeriod.length; i++) {
          const previous = chargingSchedulePeriod[i - 1]!;
          const current = chargingSchedulePeriod[i]!;
          expect(current.startPeriod).toBeGreaterThan(previous.startPeriod);
          expect(current.startPeriod).toBeLessThan(duration);
          expect([current.limit, current.numberPhases, current.constrained]).not.toEqual([previous.limit, previous.numberPhases, previous.constrained]);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('output limits are >= 0 with at most one decimal', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        for (const { limit } of accepted(input).chargingSchedule.chargingSchedulePeriod) {
          expect(limit).toBeGreaterThanOrEqual(0);
          expect(Number.isInteger(Math.round(limit * 10)) && Math.abs(limit * 10 - Math.round(limit * 10)) < 1e-9).toBe(true);
          expect(String(limit)).toMatch(/^\d+(\.\d)?$/);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('the composite never exceeds the ChargePointMaxProfile at any instant', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const referenceAt = reference(input);
        const start = Math.floor(input.request.startTime.getTime() / 1000);
        const composite = perSecond(accepted(input));
        const excess = composite.findIndex((value, offset) => {
          const { cap } = referenceAt(start + offset);
          return cap !== undefined && value.limit > cap;
        });
        if (excess >= 0) {
          expect({ offset: excess, limit: composite[excess]!.limit }).toEqual({ offset: excess, limit: referenceAt(start + excess).cap });
        }
      }),
      { numRuns: 100 },
    );
  }, 120_000);

  it('limitAt agrees with the composite schedule at sampled instants', () => {
    fc.assert(
      fc.property(inputArb, fc.double({ min: 0, max: 1, noNaN: true }), (input, fraction) => {
        const result = accepted(input);
        const offset = Math.min(input.request.duration - 1, Math.floor(fraction * input.request.duration));
        const t = new Date(input.request.startTime.getTime() + offset * 1000);
        const now = limitAt(input, input.request.connectorId, t, {
          chargingRateUnit: input.request.chargingRateUnit,
          numberPhases: input.request.numberPhases,
          relativeStart: input.request.startTime,
        });
        expect({ limit: now.limit, numberPhases: now.numberPhases }).toEqual(perSecond(result)[offset]);
      }),
      { numRuns: 300 },
    );
  });
});
