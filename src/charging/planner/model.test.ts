import { describe, expect, it } from 'vitest';
import { coarseningIntervals, gridOrigin, HOUR_MS, meanOverIntervals, presenceShare, uniformIntervals } from './model.js';

const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const MIN = 60_000;

describe('planner model', () => {
  it('starts the grid at a multiple of the step since the epoch', () => {
    expect(gridOrigin(T0 + 7 * MIN + 13_000, 300)).toBe(T0 + 5 * MIN);
    expect(gridOrigin(T0, 300)).toBe(T0);
    expect(gridOrigin(T0 + 59 * MIN, 3600)).toBe(T0);
  });

  it('measures the share of an interval inside a window', () => {
    const interval = { startMs: T0, endMs: T0 + HOUR_MS };
    expect(presenceShare({ arrivalMs: T0 + 15 * MIN, departureMs: T0 + 2 * HOUR_MS }, interval)).toBe(0.75);
    expect(presenceShare({ arrivalMs: T0 + 15 * MIN, departureMs: T0 + 45 * MIN }, interval)).toBe(0.5);
    expect(presenceShare({ arrivalMs: T0 + HOUR_MS, departureMs: T0 + 2 * HOUR_MS }, interval)).toBe(0);
  });

  it('averages a step function over each interval by time', () => {
    const points = [
      { startMs: T0, value: 0.1 },
      { startMs: T0 + 30 * MIN, value: 0.3 },
    ];
    const means = meanOverIntervals(points, uniformIntervals(T0, 3600, 2));
    expect(means[0]).toBeCloseTo(0.2, 12);
    expect(means[1]).toBeCloseTo(0.3, 12);
  });

  it('refuses to invent a value before the first point', () => {
    expect(() => meanOverIntervals([{ startMs: T0, value: 1 }], uniformIntervals(T0 - 300_000, 300, 1), 'prices.csv')).toThrow(/prices\.csv starts at/);
  });

  it('coarsens the far horizon on whole blocks of the step grid', () => {
    // Fine 5-minute steps for 10 minutes from 00:50, then blocks ending on the hour, the last cut at the end.
    const intervals = coarseningIntervals(T0 + 50 * MIN, 300, T0 + 60 * MIN, 3600, T0 + 150 * MIN);
    expect(intervals.map((i) => [(i.startMs - T0) / MIN, (i.endMs - T0) / MIN])).toEqual([
      [50, 55],
      [55, 60],
      [60, 120],
      [120, 150],
    ]);
  });
});
