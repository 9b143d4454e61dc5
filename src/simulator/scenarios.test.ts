import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  generateArrivals,
  mulberry32,
  parseSessionsCsv,
  planArrivals,
  SessionsCsvError,
  type ArrivalOptions,
  type PlannedArrival,
  type ScenarioName,
} from './scenarios.js';
import { vehicleSpecProblem } from './vehicle.js';

const ACN_SESSIONS = new URL('../../datasets/acn-caltech-2019-03/sessions.csv', import.meta.url).pathname;
const DAY_S = 24 * 3600;

const base: ArrivalOptions = {
  stations: 4,
  connectorsPerStation: 2,
  start: new Date('2025-03-03T00:00:00Z'), // a Monday
  durationS: 3 * DAY_S,
  seed: 42,
};

const hoursOfDay = (date: Date, utcOffsetMinutes = 0) => {
  const local = new Date(date.getTime() + utcOffsetMinutes * 60_000);
  return local.getUTCHours() + local.getUTCMinutes() / 60;
};

function overlapsOnAConnector(arrivals: readonly PlannedArrival[]): string | null {
  const byConnector = new Map<string, PlannedArrival[]>();
  for (const a of arrivals) {
    const key = `${a.stationIndex}/${a.connectorId}`;
    byConnector.set(key, [...(byConnector.get(key) ?? []), a]);
  }
  for (const [key, list] of byConnector) {
    const sorted = [...list].sort((a, b) => a.vehicle.arrival.getTime() - b.vehicle.arrival.getTime());
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].vehicle.arrival < sorted[i - 1].vehicle.departure) return `${key}: ${sorted[i - 1].vehicle.id} and ${sorted[i].vehicle.id}`;
    }
  }
  return null;
}

describe('mulberry32', () => {
  it('repeats for a seed, differs between seeds and stays in [0, 1)', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    const c = mulberry32(8);
    const first = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(first);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(first);
    expect(first.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = first.reduce((s, x) => s + x, 0) / first.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
  });
});

describe.each(['depot', 'public', 'office'] as const)('scenario %s', (scenario: ScenarioName) => {
  it('is reproducible for a seed and changes with the seed', () => {
    const first = generateArrivals(scenario, base);
    expect(first.length).toBeGreaterThan(0);
    expect(generateArrivals(scenario, base)).toEqual(first);
    expect(generateArrivals(scenario, { ...base, seed: 43 })).not.toEqual(first);
  });

  it('never puts two vehicles on one connector at once, and sorts by arrival', () => {
    for (const seed of [1, 2, 3]) {
      const arrivals = generateArrivals(scenario, { ...base, seed, stations: 3, connectorsPerStation: 2, durationS: 7 * DAY_S });
      expect(overlapsOnAConnector(arrivals)).toBeNull();
      for (let i = 1; i < arrivals.length; i++) {
        expect(arrivals[i].vehicle.arrival.getTime()).toBeGreaterThanOrEqual(arrivals[i - 1].vehicle.arrival.getTime());
      }
    }
  });

  it('uses only existing stations and connectors, valid vehicles and unique ids, inside the window', () => {
    const arrivals = generateArrivals(scenario, base);
    const startMs = base.start!.getTime();
    for (const { stationIndex, connectorId, vehicle } of arrivals) {
      expect(stationIndex).toBeGreaterThanOrEqual(0);
      expect(stationIndex).toBeLessThan(base.stations);
      expect(connectorId).toBeGreaterThanOrEqual(1);
      expect(connectorId).toBeLessThanOrEqual(base.connectorsPerStation);
      expect(vehicleSpecProblem(vehicle)).toBeNull();
      expect(vehicle.idTag.length).toBeLessThanOrEqual(20);
      expect(vehicle.arrival.getTime()).toBeGreaterThanOrEqual(startMs);
      expect(vehicle.arrival.getTime()).toBeLessThan(startMs + base.durationS! * 1000);
    }
    expect(new Set(arrivals.map((a) => a.vehicle.id)).size).toBe(arrivals.length);
  });
});

describe('depot scenario', () => {
  it('brings every bus in the evening and sends it out the next morning', () => {
    const arrivals = generateArrivals('depot', base);
    expect(arrivals).toHaveLength(3 * 8); // one bus per connector per night
    for (const { vehicle } of arrivals) {
      expect(hoursOfDay(vehicle.arrival)).toBeGreaterThanOrEqual(18);
      expect(hoursOfDay(vehicle.arrival)).toBeLessThanOrEqual(23);
      expect(hoursOfDay(vehicle.departure)).toBeGreaterThanOrEqual(5);
      expect(hoursOfDay(vehicle.departure)).toBeLessThanOrEqual(7);
      const dwellH = (vehicle.departure.getTime() - vehicle.arrival.getTime()) / 3_600_000;
      expect(dwellH).toBeGreaterThan(6);
      expect(dwellH).toBeLessThan(13);
      expect(vehicle.batteryKwh).toBeGreaterThanOrEqual(300);
      expect(vehicle.batteryKwh).toBeLessThanOrEqual(500);
      expect(vehicle.dcMaxPowerKw).toBeLessThanOrEqual(150);
      expect(vehicle.arrivalSocPct).toBeGreaterThanOrEqual(20);
      expect(vehicle.arrivalSocPct).toBeLessThanOrEqual(50);
      expect(vehicle.targetSocPct).toBeGreaterThanOrEqual(90);
    }
  });

  it('reads the evening in the site local time', () => {
    const utcOffsetMinutes = 60;
    const arrivals = generateArrivals('depot', { ...base, utcOffsetMinutes });
    for (const { vehicle } of arrivals) {
      expect(hoursOfDay(vehicle.arrival, utcOffsetMinutes)).toBeGreaterThanOrEqual(18);
      expect(hoursOfDay(vehicle.arrival, utcOffsetMinutes)).toBeLessThanOrEqual(23);
    }
    // The same instants in UTC fall an hour earlier, some before 18:00.
    expect(arrivals.some(({ vehicle }) => hoursOfDay(vehicle.arrival) < 18)).toBe(true);
  });
});

describe('office scenario', () => {
  it('arrives 07:30–10:00 and leaves 16:00–18:30 on weekdays only', () => {
    const arrivals = generateArrivals('office', { ...base, start: new Date('2025-03-07T00:00:00Z') }); // Fri, Sat, Sun
    expect(arrivals.length).toBeGreaterThan(0);
    for (const { vehicle } of arrivals) {
      expect(vehicle.arrival.getUTCDay()).toBe(5);
      expect(hoursOfDay(vehicle.arrival)).toBeGreaterThanOrEqual(7.5);
      expect(hoursOfDay(vehicle.arrival)).toBeLessThanOrEqual(10);
      expect(hoursOfDay(vehicle.departure)).toBeGreaterThanOrEqual(16);
      expect(hoursOfDay(vehicle.departure)).toBeLessThanOrEqual(18.5);
    }
  });
});

describe('public scenario', () => {
  it('dwells 30 min to 4 h, mixes cars, is busier by day than by night, and turns drivers away when full', () => {
    const plan = planArrivals('public', { ...base, stations: 10, connectorsPerStation: 2, durationS: 14 * DAY_S });
    const arrivals = plan.arrivals;
    for (const { vehicle } of arrivals) {
      const dwellMin = (vehicle.departure.getTime() - vehicle.arrival.getTime()) / 60_000;
      expect(dwellMin).toBeGreaterThanOrEqual(29.5);
      expect(dwellMin).toBeLessThanOrEqual(240.5);
      expect(vehicle.batteryKwh).toBeGreaterThanOrEqual(40);
      expect(vehicle.batteryKwh).toBeLessThanOrEqual(100);
    }
    const kinds = new Set(arrivals.map(({ vehicle }) => `${vehicle.acPhases}x${vehicle.acMaxCurrentA}`));
    expect(kinds).toEqual(new Set(['1x16', '1x32', '3x16', '3x32']));
    const byDay = arrivals.filter(({ vehicle }) => hoursOfDay(vehicle.arrival) >= 10 && hoursOfDay(vehicle.arrival) < 14).length;
    const byNight = arrivals.filter(({ vehicle }) => hoursOfDay(vehicle.arrival) >= 0 && hoursOfDay(vehicle.arrival) < 4).length;
    expect(byDay).toBeGreaterThan(5 * byNight);
    const fewConnectors = planArrivals('public', { ...base, stations: 1, connectorsPerStation: 1, durationS: 7 * DAY_S });
    expect(fewConnectors.turnedAway.length).toBeGreaterThan(0);
  });
});

describe('file scenario on the Caltech ACN sessions', () => {
  const text = readFileSync(ACN_SESSIONS, 'utf8');
  const rows = text.trim().split('\n').length - 1;
  const rowsKwh = text
    .trim()
    .split('\n')
    .slice(1)
    .reduce((sum, line) => sum + Number(line.split(',')[5]), 0);

  it('places every session of the file with its requested energy', () => {
    expect(rows).toBe(954);
    const plan = planArrivals('file', { stations: 47, connectorsPerStation: 1, seed: 1, sessionsFile: ACN_SESSIONS });
    expect(plan.turnedAway).toEqual([]);
    expect(plan.arrivals).toHaveLength(rows);
    const totalKwh = plan.arrivals.reduce((sum, a) => sum + (a.vehicle.energyWantedKwh ?? 0), 0);
    expect(totalKwh).toBeCloseTo(rowsKwh, 6);
    expect(totalKwh).toBeCloseTo(8900.5, 0);
    expect(overlapsOnAConnector(plan.arrivals)).toBeNull();
    const first = plan.arrivals[0].vehicle;
    expect(first.id).toBe('2_39_89_25_2019-03-01 14:24:58.323646');
    expect(first.arrival.toISOString()).toBe('2019-03-01T14:20:00.000Z');
    expect(first.energyWantedKwh).toBe(4.216);
    expect(first.dcMaxPowerKw).toBe(6.6);
    expect(first.acMaxCurrentA * 230).toBeCloseTo(6600, 6);
    for (const { vehicle } of plan.arrivals) {
      expect(vehicleSpecProblem(vehicle)).toBeNull();
      // The battery has room for the requested energy, so the energy ends the charge.
      expect(((vehicle.targetSocPct - vehicle.arrivalSocPct) / 100) * vehicle.batteryKwh).toBeGreaterThan(vehicle.energyWantedKwh!);
    }
  });

  it('shifts the sessions so that the first arrives at start, and keeps only the window', () => {
    const start = new Date('2025-06-02T06:00:00Z');
    const all = generateArrivals('file', { stations: 47, connectorsPerStation: 1, seed: 1, sessionsFile: ACN_SESSIONS, start });
    expect(all[0].vehicle.arrival.toISOString()).toBe(start.toISOString());
    // The second session arrived 45 minutes after the first.
    expect(all[1].vehicle.arrival.getTime() - start.getTime()).toBe(45 * 60_000);
    const firstDay = generateArrivals('file', { stations: 47, connectorsPerStation: 1, seed: 1, sessionsFile: ACN_SESSIONS, start, durationS: DAY_S });
    expect(firstDay.length).toBeGreaterThan(0);
    expect(firstDay.length).toBeLessThan(all.length);
    expect(firstDay.every((a) => a.vehicle.arrival.getTime() < start.getTime() + DAY_S * 1000)).toBe(true);
  });

  it('turns sessions away when there are fewer connectors than cars present', () => {
    const plan = planArrivals('file', { stations: 5, connectorsPerStation: 2, seed: 1, sessionsFile: ACN_SESSIONS });
    expect(plan.turnedAway.length).toBeGreaterThan(0);
    expect(plan.arrivals.length + plan.turnedAway.length).toBe(rows);
    expect(overlapsOnAConnector(plan.arrivals)).toBeNull();
  });
});

describe('parseSessionsCsv', () => {
  const header = 'session_id,arrival,departure,requested_kwh,max_power_kw';
  const good = 's1,2019-03-01T14:20:00Z,2019-03-01T15:40:00Z,4.2,6.6';

  it('reads the minimal columns in any order, with CRLF and blank lines', () => {
    const sessions = parseSessionsCsv(`max_power_kw,requested_kwh,departure,arrival,session_id\r\n6.6,4.2,2019-03-01T15:40:00Z,2019-03-01T14:20:00+01:00,s1\r\n\r\n`);
    expect(sessions).toEqual([
      {
        sessionId: 's1',
        arrival: new Date('2019-03-01T13:20:00Z'),
        departure: new Date('2019-03-01T15:40:00Z'),
        requestedKwh: 4.2,
        maxPowerKw: 6.6,
        line: 2,
      },
    ]);
  });

  it('reads a quoted field with a comma in it', () => {
    const [session] = parseSessionsCsv(`${header}\n"s,1",2019-03-01T14:20:00Z,2019-03-01T15:40:00Z,4.2,6.6`);
    expect(session?.sessionId).toBe('s,1');
  });

  it.each([
    ['a requested energy that is not a number', `${header}\n${good}\ns2,2019-03-01T15:00:00Z,2019-03-01T16:00:00Z,lots,6.6`, /line 3, column 4 \(requested_kwh\)/],
    ['a missing field', `${header}\n${good}\n${good}\ns3,2019-03-01T15:00:00Z,2019-03-01T16:00:00Z,1.0`, /line 4: .*columns length is 5, got 4/],
    ['a time without a zone', `${header}\ns1,2019-03-01 14:20:00,2019-03-01T15:40:00Z,4.2,6.6`, /line 2, column 2 \(arrival\)/],
    ['a departure before the arrival', `${header}\ns1,2019-03-01T14:20:00Z,2019-03-01T13:40:00Z,4.2,6.6`, /line 2, column 3 \(departure\): .* not after/],
    ['a zero max power', `${header}\ns1,2019-03-01T14:20:00Z,2019-03-01T15:40:00Z,4.2,0`, /line 2, column 5 \(max_power_kw\)/],
    ['an unterminated quote', `${header}\n"s1,2019-03-01T14:20:00Z,2019-03-01T15:40:00Z,4.2,6.6`, /line 2: .*quote/i],
    ['a header without max_power_kw', 'session_id,arrival,departure,requested_kwh\n', /line 1, column max_power_kw: missing from the header/],
  ])('rejects %s, naming the line and column', (_, csv, message) => {
    expect(() => parseSessionsCsv(csv, 'test.csv')).toThrow(SessionsCsvError);
    expect(() => parseSessionsCsv(csv, 'test.csv')).toThrow(message);
  });

  it('names the file when the file scenario meets a bad line', () => {
    expect(() =>
      generateArrivals('file', { stations: 1, connectorsPerStation: 1, seed: 1, sessionsCsv: `${header}\n${good}\ns2,x,y,1,1` }),
    ).toThrow(/sessions CSV line 3, column 2 \(arrival\)/);
  });
});

describe('options', () => {
  it('rejects a layout without connectors and a synthetic scenario without a window', () => {
    expect(() => generateArrivals('depot', { ...base, stations: 0 })).toThrow(/stations/);
    expect(() => generateArrivals('office', { ...base, start: undefined })).toThrow(/start/);
    expect(() => generateArrivals('file', { ...base })).toThrow(/sessionsFile/);
  });
});
