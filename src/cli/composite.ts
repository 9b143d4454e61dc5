/**
 * `ampyard composite <case.json>`: the composite schedule a conforming OCPP 1.6 charger
 * must report for a situation written in a JSON case file. The contract of the file and
 * of the output is in docs/smart-charging.md.
 */
import { readFile } from 'node:fs/promises';
import { compositeResultJson, compositeSchedule, type CompositeInput } from '../charging/profiles/composite.js';
import {
  chargingRateUnits,
  parseOcppDateTime,
  type ChargingProfile,
  type ChargingRateUnit,
  type InstalledProfile,
  type StationElectrical,
  type TransactionInfo,
} from '../charging/profiles/model.js';
import { validateProfile } from '../charging/profiles/validate.js';

/** Reads the case file and returns the JSON text to print. */
export async function runCompositeCommand(inputPath: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(inputPath, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${inputPath}: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(`${inputPath} is not valid JSON: ${(error as Error).message}`);
  }
  let input: CompositeInput;
  try {
    input = parseCompositeCase(data);
  } catch (error) {
    throw new Error(`${inputPath}: ${(error as Error).message}`);
  }
  return JSON.stringify(compositeResultJson(compositeSchedule(input)), null, 2);
}

/**
 * Turns the parsed JSON of a case file into the composite's input, or throws an Error
 * naming the first field that is missing or wrong. Profiles are checked as a charger
 * would check them on SetChargingProfile, so the case cannot hold a profile no charger
 * would have stored.
 */
export function parseCompositeCase(data: unknown): CompositeInput {
  const root = record(data, 'the case file');
  const station = parseStation(record(root.station, 'station'));
  const transactions = optionalArray(root.transactions, 'transactions').map((item, index) =>
    parseTransaction(item, `transactions[${index}]`, station.connectors));
  const profiles = optionalArray(root.profiles, 'profiles').map((item, index) =>
    parseProfile(item, `profiles[${index}]`, station.connectors, transactions));
  const request = record(root.request, 'request');
  const chargingRateUnit = request.chargingRateUnit;
  if (chargingRateUnit !== undefined && !chargingRateUnits.includes(chargingRateUnit as ChargingRateUnit)) {
    throw new Error(`request.chargingRateUnit must be "A" or "W", not ${JSON.stringify(chargingRateUnit)}`);
  }
  return {
    station,
    profiles,
    transactions,
    request: {
      connectorId: integer(request.connectorId, 'request.connectorId'),
      startTime: dateTime(request.startTime, 'request.startTime'),
      duration: integer(request.duration, 'request.duration'),
      chargingRateUnit: chargingRateUnit as ChargingRateUnit | undefined,
      numberPhases: request.numberPhases === undefined ? undefined : integer(request.numberPhases, 'request.numberPhases'),
    },
  };
}

function parseStation(station: Record<string, unknown>): StationElectrical {
  const connectors = integer(station.connectors, 'station.connectors');
  if (connectors < 0) throw new Error(`station.connectors must be >= 0, not ${connectors}`);
  return {
    connectors,
    supplyVoltage: optionalPositive(station.supplyVoltage, 'station.supplyVoltage'),
    defaultNumberPhases: optionalPhases(station.defaultNumberPhases, 'station.defaultNumberPhases'),
    connectorMaxCurrent: optionalPositive(station.connectorMaxCurrent, 'station.connectorMaxCurrent'),
  };
}

function parseTransaction(value: unknown, field: string, connectors: number): TransactionInfo {
  const transaction = record(value, field);
  const connectorId = integer(transaction.connectorId, `${field}.connectorId`);
  if (connectorId < 1 || connectorId > connectors) {
    throw new Error(`${field}.connectorId ${connectorId} is outside 1..${connectors}`);
  }
  return {
    connectorId,
    transactionId: integer(transaction.transactionId, `${field}.transactionId`),
    startTime: dateTime(transaction.startTime, `${field}.startTime`),
  };
}

function parseProfile(
  value: unknown,
  field: string,
  connectors: number,
  transactions: readonly TransactionInfo[],
): InstalledProfile {
  const installed = record(value, field);
  const connectorId = integer(installed.connectorId, `${field}.connectorId`);
  const profile = record(installed.csChargingProfiles, `${field}.csChargingProfiles`) as unknown as ChargingProfile;
  const problems = validateProfile(connectorId, profile, { connectors, transactions });
  if (problems.length > 0) {
    throw new Error(`${field}.csChargingProfiles (chargingProfileId ${String(profile.chargingProfileId)}): ${problems.join('; ')}`);
  }
  return { connectorId, profile };
}

function record(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined) throw new Error(`${field} is missing`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${field} must be an object`);
  return value as Record<string, unknown>;
}

function optionalArray(value: unknown, field: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${field} must be an array`);
  return value;
}

function integer(value: unknown, field: string): number {
  if (value === undefined) throw new Error(`${field} is missing`);
  if (!Number.isInteger(value)) throw new Error(`${field} must be an integer, not ${JSON.stringify(value)}`);
  return value as number;
}

function optionalPositive(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`${field} must be a positive number, not ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalPhases(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (value !== 1 && value !== 2 && value !== 3) throw new Error(`${field} must be 1, 2 or 3, not ${JSON.stringify(value)}`);
  return value;
}

function dateTime(value: unknown, field: string): Date {
  if (value === undefined) throw new Error(`${field} is missing`);
  const ms = parseOcppDateTime(value);
  if (ms === undefined) {
    throw new Error(`${field} ${JSON.stringify(value)} is not a date-time with a time zone (e.g. "2026-01-05T08:00:00Z")`);
  }
  return new Date(ms);
}
