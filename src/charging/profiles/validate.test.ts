import { describe, expect, it } from 'vitest';
import type { ChargingProfile } from './model.js';
import { isLimit, profileShapeProblems, validateProfile, type ValidationContext } from './validate.js';

const ctx: ValidationContext = {
  connectors: 2,
  transactions: [{ connectorId: 1, transactionId: 7 }],
};

function txDefault(changes: Partial<ChargingProfile> = {}): ChargingProfile {
  return {
    chargingProfileId: 1,
    stackLevel: 0,
    chargingProfilePurpose: 'TxDefaultProfile',
    chargingProfileKind: 'Relative',
    chargingSchedule: {
      chargingRateUnit: 'A',
      chargingSchedulePeriod: [{ startPeriod: 0, limit: 16 }, { startPeriod: 600, limit: 6.5, numberPhases: 1 }],
    },
    ...changes,
  };
}

function withSchedule(changes: Partial<ChargingProfile['chargingSchedule']>, profile = txDefault()): ChargingProfile {
  return { ...profile, chargingSchedule: { ...profile.chargingSchedule, ...changes } };
}

const absolute = txDefault({ chargingProfileKind: 'Absolute', chargingSchedule: { ...txDefault().chargingSchedule, startSchedule: '2026-01-05T08:00:00Z' } });

describe('validateProfile accepts', () => {
  it.each<[string, number, ChargingProfile, ValidationContext?]>([
    ['a relative TxDefaultProfile on connector 0', 0, txDefault()],
    ['a relative TxDefaultProfile on a connector', 2, txDefault()],
    ['an absolute profile with startSchedule', 1, absolute],
    ['a recurring profile with recurrencyKind and startSchedule', 1, { ...absolute, chargingProfileKind: 'Recurring', recurrencyKind: 'Weekly' }],
    ['a ChargePointMaxProfile on connector 0', 0, txDefault({ chargingProfilePurpose: 'ChargePointMaxProfile' })],
    ['a TxProfile for the transaction running on its connector', 1, txDefault({ chargingProfilePurpose: 'TxProfile', transactionId: 7 })],
    ['a TxProfile without transactionId while a transaction runs', 1, txDefault({ chargingProfilePurpose: 'TxProfile' })],
    ['validFrom before validTo', 1, txDefault({ validFrom: '2026-01-05T08:00:00Z', validTo: '2026-01-05T10:00:00+01:30' })],
    ['limits at the station bounds', 1, txDefault({ stackLevel: 3 }), { ...ctx, maxStackLevel: 3, maxPeriods: 2, allowedUnits: ['A'] }],
  ])('%s', (_name, connectorId, profile, context = ctx) => {
    expect(validateProfile(connectorId, profile, context)).toEqual([]);
  });
});

describe('validateProfile rejects', () => {
  it.each<[string, number, ChargingProfile, RegExp, ValidationContext?]>([
    ['a first startPeriod other than 0', 1,
      withSchedule({ chargingSchedulePeriod: [{ startPeriod: 60, limit: 16 }] }), /first startPeriod must be 0/],
    ['startPeriods that do not strictly increase', 1,
      withSchedule({ chargingSchedulePeriod: [{ startPeriod: 0, limit: 16 }, { startPeriod: 600, limit: 8 }, { startPeriod: 600, limit: 6 }] }),
      /chargingSchedulePeriod\[2\]\.startPeriod 600 must be greater than the previous 600/],
    ['a negative limit', 1, withSchedule({ chargingSchedulePeriod: [{ startPeriod: 0, limit: -1 }] }), /limit must be >= 0/],
    ['a limit with two decimals', 1, withSchedule({ chargingSchedulePeriod: [{ startPeriod: 0, limit: 16.25 }] }), /at most one decimal/],
    ['no periods', 1, withSchedule({ chargingSchedulePeriod: [] }), /at least one period/],
    ['four phases', 1, withSchedule({ chargingSchedulePeriod: [{ startPeriod: 0, limit: 16, numberPhases: 4 }] }), /numberPhases must be 1, 2 or 3/],
    ['a ChargePointMaxProfile on a connector', 1, txDefault({ chargingProfilePurpose: 'ChargePointMaxProfile' }), /only allowed on connector 0/],
    ['a TxProfile on connector 0', 0, txDefault({ chargingProfilePurpose: 'TxProfile' }), /TxProfile is only allowed on a connector > 0/],
    ['TC_058_1 a TxProfile without an ongoing transaction', 2, txDefault({ chargingProfilePurpose: 'TxProfile' }), /no transaction runs on it/],
    ['TC_058_2 a TxProfile with a wrong transactionId', 1, txDefault({ chargingProfilePurpose: 'TxProfile', transactionId: 8 }),
      /TxProfile for transaction 8 but connector 1 runs transaction 7/],
    ['a transactionId on a TxDefaultProfile', 1, txDefault({ transactionId: 7 }), /transactionId is only allowed on a TxProfile/],
    ['a Recurring profile without recurrencyKind', 1, { ...absolute, chargingProfileKind: 'Recurring' }, /needs a recurrencyKind/],
    ['a Recurring profile without startSchedule', 1, txDefault({ chargingProfileKind: 'Recurring', recurrencyKind: 'Daily' }),
      /Recurring profile needs chargingSchedule.startSchedule/],
    ['an Absolute profile without startSchedule', 1, txDefault({ chargingProfileKind: 'Absolute' }), /Absolute profile needs chargingSchedule.startSchedule/],
    ['a stackLevel above the station maximum', 1, txDefault({ stackLevel: 4 }), /stackLevel 4 exceeds the station's maximum stack level 3/,
      { ...ctx, maxStackLevel: 3 }],
    ['a negative stackLevel', 1, txDefault({ stackLevel: -1 }), /stackLevel must be an integer >= 0/],
    ['more periods than the station holds', 1, txDefault(), /has 2 periods; the station accepts at most 1/, { ...ctx, maxPeriods: 1 }],
    ['a unit the station does not allow', 1, txDefault(), /chargingRateUnit A is not allowed by the station \(allowed: W\)/,
      { ...ctx, allowedUnits: ['W'] }],
    ['a connector beyond the station', 3, txDefault(), /connectorId 3 is outside 0..2/],
    ['a negative connector', -1, txDefault(), /connectorId -1 is outside 0..2/],
    ['validFrom equal to validTo', 1, txDefault({ validFrom: '2026-01-05T08:00:00Z', validTo: '2026-01-05T08:00:00Z' }), /validFrom .* must be before validTo/],
    ['validFrom after validTo', 1, txDefault({ validFrom: '2026-01-05T09:00:00Z', validTo: '2026-01-05T08:00:00Z' }), /must be before validTo/],
    ['a date without time zone', 1, txDefault({ validFrom: '2026-01-05T08:00:00' }), /validFrom "2026-01-05T08:00:00" is not an OCPP dateTime/],
    ['a date that is not a date', 1, withSchedule({ startSchedule: 'tomorrow' }, absolute), /startSchedule "tomorrow" is not an OCPP dateTime/],
    ['a zero duration', 1, withSchedule({ duration: 0 }), /duration must be a positive integer/],
    ['an unknown unit', 1, withSchedule({ chargingRateUnit: 'kW' as 'W' }), /chargingRateUnit must be one of A, W/],
    ['an unknown purpose', 1, txDefault({ chargingProfilePurpose: 'Tx' as 'TxProfile' }), /chargingProfilePurpose must be one of/],
    ['an unknown kind', 1, txDefault({ chargingProfileKind: 'Once' as 'Absolute' }), /chargingProfileKind must be one of/],
    ['a minChargingRate with two decimals', 1, withSchedule({ minChargingRate: 6.05 }), /minChargingRate must be >= 0 with at most one decimal/],
  ])('%s', (_name, connectorId, profile, problem, context = ctx) => {
    const problems = validateProfile(connectorId, profile, context);
    expect(problems).toContainEqual(expect.stringMatching(problem));
  });

  it('reports a profile missing its schedule instead of throwing', () => {
    const noSchedule = { ...txDefault(), chargingSchedule: undefined } as unknown as ChargingProfile;
    expect(validateProfile(1, noSchedule, ctx)).toEqual(['chargingSchedule is missing']);
  });

  it('reports every problem, not only the first', () => {
    const broken = withSchedule(
      { chargingSchedulePeriod: [{ startPeriod: 5, limit: 1.25 }] },
      txDefault({ chargingProfilePurpose: 'ChargePointMaxProfile', stackLevel: 9 }),
    );
    expect(validateProfile(1, broken, { ...ctx, maxStackLevel: 8 })).toHaveLength(4);
  });
});

describe('profileShapeProblems', () => {
  it('does not look at running transactions or station configuration', () => {
    const txProfileWithoutTransaction = txDefault({ chargingProfilePurpose: 'TxProfile', stackLevel: 50 });
    expect(profileShapeProblems(2, txProfileWithoutTransaction, 2)).toEqual([]);
    expect(validateProfile(2, txProfileWithoutTransaction, { ...ctx, maxStackLevel: 10 })).toHaveLength(2);
  });
});

describe('isLimit', () => {
  it.each([[0, true], [16, true], [15.9, true], [0.1, true], [11040, true], [15.95, false], [-0.1, false], [Number.NaN, false], ['16', false]])(
    '%s → %s',
    (value, expected) => {
      expect(isLimit(value)).toBe(expected);
    },
  );
});
