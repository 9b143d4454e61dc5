import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCompositeCommand } from './composite.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ampyard-composite-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

let fileCount = 0;
async function caseFile(content: unknown): Promise<string> {
  const path = join(directory, `case-${fileCount++}.json`);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const contractCase = {
  station: { connectors: 2, supplyVoltage: 230 },
  profiles: [
    {
      connectorId: 1,
      csChargingProfiles: {
        chargingProfileId: 1,
        transactionId: 7,
        stackLevel: 0,
        chargingProfilePurpose: 'TxProfile',
        chargingProfileKind: 'Relative',
        chargingSchedule: {
          chargingRateUnit: 'W',
          chargingSchedulePeriod: [{ startPeriod: 0, limit: 11000, numberPhases: 3 }, { startPeriod: 3600, limit: 7400 }],
        },
      },
    },
    {
      connectorId: 0,
      csChargingProfiles: {
        chargingProfileId: 2,
        stackLevel: 0,
        chargingProfilePurpose: 'ChargePointMaxProfile',
        chargingProfileKind: 'Absolute',
        chargingSchedule: {
          startSchedule: '2026-01-05T00:00:00Z',
          chargingRateUnit: 'A',
          chargingSchedulePeriod: [{ startPeriod: 0, limit: 32 }, { startPeriod: 36000, limit: 8 }],
        },
      },
    },
  ],
  transactions: [{ connectorId: 1, transactionId: 7, startTime: '2026-01-05T08:00:00Z' }],
  request: { connectorId: 1, startTime: '2026-01-05T08:30:00Z', duration: 7200, chargingRateUnit: 'W' },
};

describe('ampyard composite', () => {
  it('prints GetCompositeSchedule.conf for the case in the file', async () => {
    const output = await runCompositeCommand(await caseFile(contractCase));
    // The TxProfile started with the transaction at 08:00 and steps down after an hour,
    // i.e. 30 minutes into the request; the 8 A (5,520 W) cap only starts at 10:00.
    expect(JSON.parse(output)).toEqual({
      status: 'Accepted',
      connectorId: 1,
      scheduleStart: '2026-01-05T08:30:00.000Z',
      chargingSchedule: {
        chargingRateUnit: 'W',
        duration: 7200,
        chargingSchedulePeriod: [
          { startPeriod: 0, limit: 11000, numberPhases: 3 },
          { startPeriod: 1800, limit: 7400, numberPhases: 3 },
          { startPeriod: 5400, limit: 5520, numberPhases: 3 },
        ],
      },
    });
  });

  it('keeps the key order of the contract', async () => {
    const output = await runCompositeCommand(await caseFile(contractCase));
    expect(Object.keys(JSON.parse(output))).toEqual(['status', 'connectorId', 'scheduleStart', 'chargingSchedule']);
    expect(Object.keys(JSON.parse(output).chargingSchedule)).toEqual(['chargingRateUnit', 'duration', 'chargingSchedulePeriod']);
  });

  it('prints Rejected with the reason for a request the charger would reject', async () => {
    const output = await runCompositeCommand(await caseFile({ ...contractCase, request: { ...contractCase.request, connectorId: 5 } }));
    expect(JSON.parse(output)).toEqual({ status: 'Rejected', reason: 'connectorId 5 is outside 0..2' });
  });

  it.each<[string, unknown, RegExp]>([
    ['text that is not JSON', '{"station": ', /is not valid JSON/],
    ['a missing station', { ...contractCase, station: undefined }, /station is missing/],
    ['a missing request duration', { ...contractCase, request: { ...contractCase.request, duration: undefined } }, /request\.duration is missing/],
    ['a request start time that is not a date', { ...contractCase, request: { ...contractCase.request, startTime: '5 January' } },
      /request\.startTime "5 January" is not a date-time/],
    ['a transaction start without time zone', { ...contractCase, transactions: [{ connectorId: 1, transactionId: 7, startTime: '2026-01-05T08:00:00' }] },
      /transactions\[0\]\.startTime "2026-01-05T08:00:00" is not a date-time with a time zone/],
    ['a transaction on a connector the station lacks', { ...contractCase, transactions: [{ connectorId: 3, transactionId: 7, startTime: '2026-01-05T08:00:00Z' }] },
      /transactions\[0\]\.connectorId 3 is outside 1..2/],
    ['a profile without csChargingProfiles', { ...contractCase, profiles: [{ connectorId: 1 }] }, /profiles\[0\]\.csChargingProfiles is missing/],
    ['a TxProfile for a transaction that does not run', { ...contractCase, transactions: [] },
      /profiles\[0\]\.csChargingProfiles \(chargingProfileId 1\): TxProfile for connector 1 but no transaction runs on it/],
    ['a unit that is neither A nor W', { ...contractCase, request: { ...contractCase.request, chargingRateUnit: 'kW' } },
      /request\.chargingRateUnit must be "A" or "W"/],
  ])('names what is wrong in a file with %s', async (_name, content, message) => {
    const path = await caseFile(content);
    await expect(runCompositeCommand(path)).rejects.toThrow(message);
  });

  it('names the file it cannot read', async () => {
    await expect(runCompositeCommand(join(directory, 'absent.json'))).rejects.toThrow(/cannot read .*absent\.json/);
  });
});

describe('ampyard composite: stretches nothing constrains', () => {
  it('reports them as periods without a limit (OCPP-NOTES: validFrom 12:00, validTo 20:00, EV plugged in at 10:00)', async () => {
    const path = await caseFile({
      station: { connectors: 1, supplyVoltage: 230 },
      profiles: [
        {
          connectorId: 1,
          csChargingProfiles: {
            chargingProfileId: 1,
            stackLevel: 0,
            chargingProfilePurpose: 'TxDefaultProfile',
            chargingProfileKind: 'Relative',
            validFrom: '2026-01-05T12:00:00Z',
            validTo: '2026-01-05T20:00:00Z',
            chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 32 }, { startPeriod: 3600, limit: 6 }] },
          },
        },
      ],
      transactions: [{ connectorId: 1, transactionId: 1, startTime: '2026-01-05T10:00:00Z' }],
      request: { connectorId: 1, startTime: '2026-01-05T10:00:00Z', duration: 12 * 3600, chargingRateUnit: 'A' },
    });
    const output = JSON.parse(await runCompositeCommand(path));
    expect(output.chargingSchedule.chargingSchedulePeriod).toEqual([
      { startPeriod: 0, numberPhases: 3 },
      { startPeriod: 2 * 3600, limit: 6, numberPhases: 3 },
      { startPeriod: 10 * 3600, numberPhases: 3 },
    ]);
  });
});
