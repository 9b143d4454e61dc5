import { describe, expect, it } from 'vitest';
import type { Site, StationElectricalSpec } from '../site/model.js';
import { liveIntervals, siteProblem } from './site-problem.js';

const t0 = Date.parse('2026-11-22T18:02:30Z');
const min = 60_000;

const dc = (stationId: string, connectors = 1): StationElectricalSpec => ({
  stationId,
  kind: 'DC',
  phases: 3,
  rotation: ['L1', 'L2', 'L3'],
  maxPowerW: 150_000,
  connectors: Array.from({ length: connectors }, (_, i) => ({ connectorId: i + 1, maxPowerW: 150_000 })),
});

describe('liveIntervals', () => {
  it('runs from now to the next step boundary, then whole steps, to the last departure or the horizon', () => {
    const grid = liveIntervals(t0, 300, 86_400, t0 + 20 * min);
    expect(grid.map((i) => [(i.startMs - t0) / 1000, (i.endMs - t0) / 1000])).toEqual([
      [0, 150],
      [150, 450],
      [450, 750],
      [750, 1050],
      [1050, 1200],
    ]);
    expect(liveIntervals(t0, 300, 3600, t0 + 10 * 3600_000).at(-1)!.endMs).toBe(t0 + 3600_000);
    // Within a second of a boundary, the sliver joins the first step.
    expect(liveIntervals(Date.parse('2026-11-22T18:04:59.500Z'), 300, 3600, t0 + 3600_000)[0]).toEqual({ startMs: Date.parse('2026-11-22T18:04:59.500Z'), endMs: Date.parse('2026-11-22T18:10:00Z') });
  });
});

describe('siteProblem', () => {
  it('turns every limit of the tree, external limits included, into kW per interval, and a station with two planned connectors into a node', () => {
    const site: Site = {
      id: 'depot',
      name: 'Depot',
      limit: { value: 400_000, unit: 'W' },
      overrides: [{ from: new Date(t0 + 10 * min), to: new Date(t0 + 20 * min), limit: { value: 100_000, unit: 'W' } }],
      stations: ['D3'],
      groups: [{ id: 'cabinet', limit: { value: 200, unit: 'A' }, stations: ['D1', 'D2'], groups: [] }],
    };
    const problem = siteProblem({
      site,
      stations: [dc('D1'), dc('D2'), dc('D3', 2)],
      sessions: [
        { id: 'D1#1', stationId: 'D1', energyNeedKwh: 50, maxPowerKw: 150, departureMs: t0 + 30 * min },
        { id: 'D3#1', stationId: 'D3', energyNeedKwh: 50, maxPowerKw: 150, departureMs: t0 + 30 * min },
        { id: 'D3#2', stationId: 'D3', energyNeedKwh: 50, maxPowerKw: 150, departureMs: t0 + 30 * min },
      ],
      nowMs: t0,
      stepS: 300,
      horizonS: 86_400,
      supplyVoltage: 230,
      prices: [{ startMs: t0 + 5 * min, value: 0.2 }],
    });
    // 18:02:30 to 18:32:30: a first half step, five steps, a last half step.
    expect(problem.intervals).toHaveLength(7);
    // The curtailment from 18:12:30 to 18:22:30 lowers every interval it touches.
    expect(problem.capacityKw).toEqual([400, 400, 100, 100, 100, 400, 400]);
    expect(problem.nodeLimits).toEqual([
      { id: 'cabinet', capacityKw: Array(7).fill((200 * 230 * 3) / 1000), vehicles: [0] },
      { id: 'station:D3', capacityKw: Array(7).fill(150), vehicles: [1, 2] },
    ]);
    // Prices known only from 18:07:30 hold from now too.
    expect(problem.pricePerKwh).toEqual(Array(7).fill(0.2));
    expect(problem.latenessCostPerKwh).toBe(0.1);
    expect(problem.vehicles.map((v) => v.arrivalMs)).toEqual([t0, t0, t0]);
  });

  it('a site without a limit plans as if the grid connection could take everything the vehicles can', () => {
    const site: Site = { id: 's', name: 's', stations: ['D1'], groups: [] };
    const problem = siteProblem({
      site,
      stations: [dc('D1')],
      sessions: [{ id: 'D1#1', stationId: 'D1', energyNeedKwh: 10, maxPowerKw: 50, departureMs: t0 + 3600_000 }],
      nowMs: t0,
      stepS: 900,
      horizonS: 86_400,
      supplyVoltage: 230,
    });
    expect(problem.capacityKw.every((c) => c === 51)).toBe(true);
    expect(problem.pricePerKwh.every((p) => p === 0)).toBe(true);
    expect(problem.nodeLimits).toEqual([]);
  });
});
