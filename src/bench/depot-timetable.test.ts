import { describe, expect, it } from 'vitest';
import { isoDateTimeWithZone, readCsvTable } from '../io/csv-table.js';
import { DEPOT_BEGIN, DEPOT_END, spliceDepotSection } from './depot-eval.js';
import {
  DEPOT_ANNOUNCE_LEAD_S,
  TIMETABLE_CSV_COLUMNS,
  depotReplaySessions,
  generateDepotBusNights,
  depotTimetableCsv,
  generateDepotTimetable,
  requestedKwhOf,
  type DepotTimetableRow,
} from './depot-timetable.js';

const MINUTE_MS = 60_000;
const DAY_MS = 1440 * MINUTE_MS;
const FIRST_DAY_MS = Date.UTC(2026, 2, 2);

const week = generateDepotTimetable({ buses: 120, nights: 7, seed: 1 });

/** Minutes after the midnight that starts the row's night (the evening's day). */
const sinceEveningMidnight = (ms: number, night: number) => (ms - (FIRST_DAY_MS + night * DAY_MS)) / MINUTE_MS;

describe('generateDepotTimetable', () => {
  it('is the same for the same seed and differs for another', () => {
    expect(generateDepotTimetable({ buses: 120, nights: 7, seed: 1 })).toEqual(week);
    const other = generateDepotTimetable({ buses: 120, nights: 7, seed: 2 });
    expect(other).toHaveLength(week.length);
    expect(other).not.toEqual(week);
  });

  it('has every bus once a night, ordered by night', () => {
    expect(week).toHaveLength(840);
    for (let night = 0; night < 7; night++) {
      const ids = week.slice(night * 120, (night + 1) * 120).map((r) => r.vehicleId);
      expect(new Set(ids).size).toBe(120);
      expect(ids[0]).toBe('bus-001');
      expect(ids[119]).toBe('bus-120');
    }
  });

  it('brings buses back in the evening and sends them out the next morning, within the bounds', () => {
    week.forEach((row, i) => {
      const night = Math.floor(i / 120);
      const arrival = sinceEveningMidnight(row.arrivalMs, night);
      const departure = sinceEveningMidnight(row.departureMs, night);
      // 17:30–23:30, and a late return up to two hours after that.
      expect(arrival).toBeGreaterThanOrEqual(17 * 60 + 30);
      expect(arrival).toBeLessThanOrEqual(23 * 60 + 30 + 120);
      // 04:30–07:30 the next day.
      expect(departure).toBeGreaterThanOrEqual(1440 + 4 * 60 + 30);
      expect(departure).toBeLessThanOrEqual(1440 + 7 * 60 + 30);
      expect(row.arrivalMs % MINUTE_MS).toBe(0);
      expect(row.departureMs % MINUTE_MS).toBe(0);
    });
    const late = week.filter((row, i) => sinceEveningMidnight(row.arrivalMs, Math.floor(i / 120)) > 23 * 60 + 30);
    expect(late.length).toBeGreaterThan(0);
    expect(late.length).toBeLessThan(week.length * 0.15);
  });

  it('keeps states of charge in bounds, with a few full charges', () => {
    for (const row of week) {
      expect(Number.isInteger(row.arrivalSocPct)).toBe(true);
      expect(row.arrivalSocPct).toBeGreaterThanOrEqual(15);
      expect(row.arrivalSocPct).toBeLessThanOrEqual(60);
      expect([90, 100]).toContain(row.targetSocPct);
      expect(row.batteryKwh).toBe(350);
    }
    const full = week.filter((r) => r.targetSocPct === 100).length;
    expect(full).toBeGreaterThan(0);
    expect(full).toBeLessThan(week.length * 0.2);
  });

  it('leaves every bus enough time to reach its target alone at 150 kW', () => {
    for (const row of week) expect(((row.departureMs - row.arrivalMs) / 3_600_000) * 150).toBeGreaterThan(requestedKwhOf(row));
  });

  it('rejects a fleet or a week that is not a positive whole number', () => {
    expect(() => generateDepotTimetable({ buses: 0, nights: 7, seed: 1 })).toThrow(RangeError);
    expect(() => generateDepotTimetable({ buses: 10, nights: 1.5, seed: 1 })).toThrow(RangeError);
  });
});

describe('depotTimetableCsv', () => {
  it('round-trips through the CSV reader', () => {
    const text = depotTimetableCsv(week);
    const { header, rows } = readCsvTable(text, 'timetable.csv', TIMETABLE_CSV_COLUMNS);
    expect(header).toEqual(['vehicle_id', 'arrival', 'departure', 'arrival_soc_pct', 'target_soc_pct', 'battery_kwh']);
    expect(rows).toHaveLength(week.length);
    const back = rows.map(({ record }): DepotTimetableRow => {
      expect(record.arrival).toMatch(isoDateTimeWithZone);
      expect(record.departure).toMatch(/Z$/);
      return {
        vehicleId: record.vehicle_id,
        arrivalMs: Date.parse(record.arrival),
        departureMs: Date.parse(record.departure),
        arrivalSocPct: Number(record.arrival_soc_pct),
        targetSocPct: Number(record.target_soc_pct),
        batteryKwh: Number(record.battery_kwh),
      };
    });
    expect(back).toEqual(week);
    expect(rows[0].line).toBe(2);
  });

  it('writes whole-second UTC times', () => {
    const [first] = depotTimetableCsv(week.slice(0, 1)).trimEnd().split('\n').slice(1);
    expect(first).toMatch(/^bus-001,2026-03-02T\d\d:\d\d:00Z,2026-03-03T\d\d:\d\d:00Z,\d+,(90|100),350$/);
  });
});

describe('depotReplaySessions', () => {
  it('asks for the energy from arrival to target state of charge, with the known departure', () => {
    const sessions = depotReplaySessions(week);
    expect(new Set(sessions.map((s) => s.id)).size).toBe(week.length);
    sessions.forEach((session, i) => {
      const row = week[i];
      expect(session.requestedKwh).toBeCloseTo(((row.targetSocPct - row.arrivalSocPct) / 100) * 350, 9);
      expect(row.arrivalSocPct + (100 * session.requestedKwh) / row.batteryKwh).toBeCloseTo(row.targetSocPct, 9);
      expect(session.maxPowerKw).toBe(150);
      expect(session.arrivalMs).toBe(row.arrivalMs);
      expect(session.departureMs).toBe(row.departureMs);
      expect(session.estimatedDepartureMs).toBe(row.departureMs);
    });
  });

  it('announces each bus-night ahead of its scheduled return, which a late return misses', () => {
    const nights = generateDepotBusNights({ buses: 120, nights: 7, seed: 1 });
    expect(nights.map(({ scheduledArrivalMs: _, ...row }) => row)).toEqual(week);
    const sessions = depotReplaySessions(nights, 150, DEPOT_ANNOUNCE_LEAD_S);
    let late = 0;
    sessions.forEach((session, i) => {
      const night = nights[i];
      expect(session.expectedArrivalMs).toBe(night.scheduledArrivalMs);
      expect(session.announcedMs).toBe(night.scheduledArrivalMs - 12 * 3_600_000);
      expect(night.scheduledArrivalMs).toBeLessThanOrEqual(night.arrivalMs);
      if (night.scheduledArrivalMs < night.arrivalMs) late++;
    });
    expect(late).toBeGreaterThan(0);
    // Without a lead nothing is announced: MPC learns of a bus when it plugs in.
    expect(depotReplaySessions(nights).every((s) => s.announcedMs === undefined && s.expectedArrivalMs === undefined)).toBe(true);
  });

  it('computes an exact need for whole percents', () => {
    const row: DepotTimetableRow = { vehicleId: 'b', arrivalMs: 0, departureMs: 1, arrivalSocPct: 15, targetSocPct: 90, batteryKwh: 350 };
    expect(requestedKwhOf(row)).toBe(262.5);
    expect(requestedKwhOf({ ...row, arrivalSocPct: 95 })).toBe(0);
  });
});

describe('spliceDepotSection', () => {
  const planner = '<!-- eval:planner begin: x -->\nplanner figures\n<!-- eval:planner end -->';
  const doc = `# Title\n\n${planner}\n\n## Reading\n\ntext\n\n## Reproduce\n\n\`\`\`\ncmd\n\`\`\`\n`;

  it('puts the section before "## Reproduce" when the markers are missing', () => {
    const out = spliceDepotSection(doc, 'depot figures');
    expect(out).toContain(planner);
    expect(out.indexOf(DEPOT_BEGIN)).toBeGreaterThan(out.indexOf('## Reading'));
    expect(out.indexOf(DEPOT_END)).toBeLessThan(out.indexOf('## Reproduce'));
    expect(out).toContain(`${DEPOT_BEGIN}\ndepot figures\n${DEPOT_END}`);
  });

  it('replaces only what lies between the markers', () => {
    const once = spliceDepotSection(doc, 'old figures').replace('## Depot scenario\n', '## Depot scenario\n\nhand-written intro\n');
    const twice = spliceDepotSection(once, 'new figures');
    expect(twice).toBe(once.replace('old figures', 'new figures'));
    expect(twice).toContain(planner);
    expect(twice).toContain('hand-written intro');
  });
});
