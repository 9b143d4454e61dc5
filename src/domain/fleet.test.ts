import { describe, expect, it } from 'vitest';
import { CsvError } from '../io/csv-table.js';
import { currentTrip, departureSocPct, parseTimetableCsv, resolveNeeds, type VehicleTrip } from './fleet.js';
import type { Transaction } from './types.js';

const tx = (energyWh: number | null): Transaction => ({
  id: 7,
  stationId: 'S',
  connectorId: 1,
  idTag: 'CARD',
  startTime: '2026-11-22T18:00:00.000Z',
  meterStart: 0,
  reservationId: null,
  stopTime: null,
  meterStop: null,
  stopReason: null,
  stopIdTag: null,
  lastMeterWh: energyWh,
  energyWh,
  authorization: 'Accepted',
});
const vehicle = { id: 'BUS-1', name: null, batteryKwh: 350, maxPowerKw: 150, targetSocPct: 80, idTags: ['CARD'], updatedAt: '' };
const trip: VehicleTrip = { vehicleId: 'BUS-1', siteId: null, arrival: '2026-11-22T18:00:00.000Z', departure: '2026-11-23T06:00:00.000Z', energyKwh: null, arrivalSocPct: 30, targetSocPct: 90 };

describe('resolveNeeds', () => {
  it('explicit needs win over the timetable, the timetable over the vehicle; energy already delivered counts', () => {
    const explicit = resolveNeeds({ transaction: tx(20_000), needs: { departure: '2026-11-23T05:00:00.000Z', energyKwh: 100, updatedAt: '' }, vehicle, trip });
    expect(explicit).toMatchObject({ departureMs: Date.parse('2026-11-23T05:00:00Z'), remainingKwh: 80, deliveredKwh: 20, sources: { departure: 'api', energy: 'api' } });
    // From the trip's arrival SoC: (90 - 30) % of 350 kWh, less the 20 kWh delivered.
    const fromTrip = resolveNeeds({ transaction: tx(20_000), vehicle, trip });
    expect(fromTrip).toMatchObject({ departureMs: Date.parse(trip.departure), targetSocPct: 90, sources: { departure: 'timetable', energy: 'timetable' } });
    expect(fromTrip.remainingKwh).toBeCloseTo(190, 9);
    // A live SoC replaces the estimate: (90 - 50) % of 350 kWh.
    const fromSoc = resolveNeeds({ transaction: tx(20_000), vehicle, trip, socPct: 50 });
    expect(fromSoc.remainingKwh).toBeCloseTo(140, 9);
    expect(fromSoc.sources.energy).toBe('soc');
    expect(departureSocPct(fromSoc, 70, trip)).toBeCloseTo(70, 9);
    // Past its target: nothing more, never a negative need.
    expect(resolveNeeds({ transaction: tx(0), vehicle, trip, socPct: 95 }).remainingKwh).toBe(0);
    // Nothing known: no departure, no energy (the balancer's fair share).
    expect(resolveNeeds({ transaction: tx(null) })).toMatchObject({ departureMs: null, remainingKwh: null, vehicleId: null });
  });

  it('finds the trip a vehicle is on: arrived (or due within two hours), not yet left, soonest departure', () => {
    const next: VehicleTrip = { ...trip, arrival: '2026-11-23T18:00:00.000Z', departure: '2026-11-24T06:00:00.000Z' };
    expect(currentTrip([next, trip], 'BUS-1', Date.parse('2026-11-22T19:00:00Z'))).toBe(trip);
    expect(currentTrip([next, trip], 'BUS-1', Date.parse('2026-11-22T16:30:00Z'))).toBe(trip);
    expect(currentTrip([next, trip], 'BUS-1', Date.parse('2026-11-22T15:00:00Z'))).toBeUndefined();
    expect(currentTrip([next, trip], 'BUS-1', Date.parse('2026-11-23T07:00:00Z'))).toBeUndefined();
    expect(currentTrip([next, trip], 'BUS-2', Date.parse('2026-11-22T19:00:00Z'))).toBeUndefined();
  });
});

describe('parseTimetableCsv', () => {
  it('reads trips with energy or SoCs, and batteries per vehicle', () => {
    const { trips, batteryKwh } = parseTimetableCsv(
      'vehicle_id,arrival,departure,energy_kwh,arrival_soc_pct,target_soc_pct,battery_kwh\r\nB1,2026-11-22T18:00:00+01:00,2026-11-23T06:00:00Z,120,,,\r\nB2,2026-11-22T19:00:00Z,2026-11-23T05:00:00Z,,20,90,350\r\n',
    );
    expect(trips).toEqual([
      { vehicleId: 'B1', siteId: null, arrival: '2026-11-22T17:00:00.000Z', departure: '2026-11-23T06:00:00.000Z', energyKwh: 120, arrivalSocPct: null, targetSocPct: null },
      { vehicleId: 'B2', siteId: null, arrival: '2026-11-22T19:00:00.000Z', departure: '2026-11-23T05:00:00.000Z', energyKwh: null, arrivalSocPct: 20, targetSocPct: 90 },
    ]);
    expect([...batteryKwh]).toEqual([['B2', 350]]);
  });

  it.each([
    ['vehicle_id,arrival\nB1,2026-11-22T18:00:00Z', 1, 'departure'],
    ['vehicle_id,arrival,departure,energy_kwh\nB1,2026-11-22 18:00,2026-11-23T06:00:00Z,10', 2, 'arrival'],
    ['vehicle_id,arrival,departure,energy_kwh\nB1,2026-11-22T18:00:00Z,2026-11-23T06:00:00Z,lots', 2, 'energy_kwh'],
    ['vehicle_id,arrival,departure,target_soc_pct\nB1,2026-11-22T18:00:00Z,2026-11-23T06:00:00Z,120', 2, 'target_soc_pct'],
    ['vehicle_id,arrival,departure,energy_kwh\nB1,2026-11-22T18:00:00Z,2026-11-23T06:00:00Z,1\n,2026-11-22T18:00:00Z,2026-11-23T06:00:00Z,1', 3, 'vehicle_id'],
    ['vehicle_id,arrival,departure\nB1,2026-11-22T18:00:00Z,2026-11-23T06:00:00Z', 2, null],
  ])('rejects %j at line %i, column %s', (csv, line, column) => {
    try {
      parseTimetableCsv(csv);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CsvError);
      expect(err).toMatchObject({ line, column });
    }
  });
});
