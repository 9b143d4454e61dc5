import { describe, expect, it } from 'vitest';
import { allocateStep, laxityHours, planWithHeuristic, type StepVehicle } from './heuristics.js';
import { HOUR_MS, uniformIntervals } from './model.js';

const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const firstHour = { startMs: T0, endMs: T0 + HOUR_MS };

const vehicle = (id: string, remainingKwh: number, departureH: number, fields: Partial<StepVehicle> = {}): StepVehicle => ({
  id,
  remainingKwh,
  maxPowerKw: 10,
  presence: 1,
  arrivalMs: T0,
  departureMs: T0 + departureH * HOUR_MS,
  ...fields,
});

describe('allocateStep', () => {
  it('uncontrolled gives everyone its max and ignores the capacity', () => {
    expect(allocateStep('uncontrolled', [vehicle('a', 50, 5), vehicle('b', 50, 5)], 5, firstHour)).toEqual([10, 10]);
  });

  it('never gives more than finishes the need', () => {
    expect(allocateStep('uncontrolled', [vehicle('a', 4, 5)], 100, firstHour)).toEqual([4]);
    // Half the hour plugged in: 4 kWh in 30 minutes takes 8 kW.
    expect(allocateStep('edf', [vehicle('a', 4, 5, { presence: 0.5 })], 100, firstHour)).toEqual([8]);
  });

  it('equal-share fills water: a small need is met and the rest is split evenly', () => {
    const power = allocateStep('equal-share', [vehicle('small', 2, 5), vehicle('b', 50, 5), vehicle('c', 50, 5)], 12, firstHour);
    expect(power).toEqual([2, 5, 5]);
  });

  it('equal-share counts a vehicle plugged in for part of the step by its share', () => {
    const power = allocateStep('equal-share', [vehicle('half', 50, 5, { presence: 0.5 }), vehicle('full', 50, 5)], 9, firstHour);
    // p × 0.5 + p = 9.
    expect(power).toEqual([6, 6]);
  });

  it('edf serves the earliest departure first', () => {
    const power = allocateStep('edf', [vehicle('late', 50, 3), vehicle('early', 50, 1)], 12, firstHour);
    expect(power).toEqual([2, 10]);
  });

  it('llf serves the least laxity first, which edf does not', () => {
    // tight: leaves in 2 h, needs 19 kWh at 10 kW: laxity 0.1 h. easy: leaves in 1 h, needs 1 kWh: laxity 0.9 h.
    const vehicles = [vehicle('tight', 19, 2), vehicle('easy', 1, 1)];
    expect(laxityHours(vehicles[0], T0)).toBeCloseTo(0.1, 12);
    expect(allocateStep('llf', vehicles, 10, firstHour)).toEqual([10, 0]);
    expect(allocateStep('edf', vehicles, 10, firstHour)).toEqual([9, 1]);
  });

  it('breaks ties by arrival then id, so a replay is reproducible', () => {
    const vehicles = [vehicle('b', 50, 2), vehicle('a', 50, 2), vehicle('c', 50, 2, { arrivalMs: T0 - 1 })];
    expect(allocateStep('edf', vehicles, 10, firstHour)).toEqual([0, 0, 10]);
    expect(allocateStep('edf', vehicles.slice(0, 2), 10, firstHour)).toEqual([0, 10]);
  });

  it('gives nothing when the capacity is zero', () => {
    for (const policy of ['equal-share', 'edf', 'llf'] as const) {
      expect(allocateStep(policy, [vehicle('a', 5, 2)], 0, firstHour)).toEqual([0]);
    }
  });
});

describe('allocateStep under node limits', () => {
  const fast = (id: string, departureH: number) => vehicle(id, 50, departureH, { maxPowerKw: 20 });
  // a and b share a cabinet of 10 kW; c is elsewhere; the site has 30 kW.
  const cabinet = [{ capacityKw: 10, members: [0, 1] }];

  it('greedy rules give each what is left under the site and under every node it is in', () => {
    const vehicles = [fast('a', 1), fast('b', 2), fast('c', 3)];
    expect(allocateStep('edf', vehicles, 30, firstHour)).toEqual([20, 10, 0]);
    expect(allocateStep('edf', vehicles, 30, firstHour, cabinet)).toEqual([10, 0, 20]);
    expect(allocateStep('llf', vehicles, 30, firstHour, cabinet)).toEqual([10, 0, 20]);
  });

  it('equal-share stops the vehicles of a full node and lets the others rise', () => {
    const vehicles = [fast('a', 5), fast('b', 5), fast('c', 5)];
    expect(allocateStep('equal-share', vehicles, 30, firstHour)).toEqual([10, 10, 10]);
    expect(allocateStep('equal-share', vehicles, 30, firstHour, cabinet)).toEqual([5, 5, 20]);
  });

  it('equal-share is max-min fair under nested nodes', () => {
    // Cabinet {a, b} 8 kW inside feeder {a, b, c} 18 kW; d on its own; site 40 kW; 10 kW cars.
    const vehicles = ['a', 'b', 'c', 'd'].map((id) => vehicle(id, 50, 5));
    const nodes = [
      { capacityKw: 18, members: [0, 1, 2] },
      { capacityKw: 8, members: [0, 1] },
    ];
    expect(allocateStep('equal-share', vehicles, 40, firstHour, nodes)).toEqual([4, 4, 10, 10]);
    // The site binds before the feeder: the cabinet fills at 4, then c and d share the 16 kW left.
    expect(allocateStep('equal-share', vehicles, 24, firstHour, nodes)).toEqual([4, 4, 8, 8]);
  });

  it('weighs node use by presence like the site', () => {
    const vehicles = [vehicle('half', 50, 5, { presence: 0.5 }), vehicle('full', 50, 5)];
    // p × 0.5 + p = 6 in the node.
    expect(allocateStep('equal-share', vehicles, 100, firstHour, [{ capacityKw: 6, members: [0, 1] }])).toEqual([4, 4]);
  });

  it('treats an unlimited node as absent and a zero node as closed', () => {
    const vehicles = [fast('a', 1), fast('b', 2), fast('c', 3)];
    for (const policy of ['equal-share', 'edf', 'llf'] as const) {
      expect(allocateStep(policy, vehicles, 30, firstHour, [{ capacityKw: Infinity, members: [0, 1, 2] }])).toEqual(allocateStep(policy, vehicles, 30, firstHour));
      expect(allocateStep(policy, vehicles, 30, firstHour, [{ capacityKw: 0, members: [2] }])[2]).toBe(0);
    }
  });

  it('uncontrolled ignores node limits as it ignores the site', () => {
    expect(allocateStep('uncontrolled', [fast('a', 1), fast('b', 2)], 1, firstHour, [{ capacityKw: 1, members: [0, 1] }])).toEqual([20, 20]);
  });

  it('refuses a node member that is not one of the vehicles', () => {
    expect(() => allocateStep('edf', [fast('a', 1)], 30, firstHour, [{ capacityKw: 5, members: [1] }])).toThrow(RangeError);
  });
});

describe('planWithHeuristic', () => {
  it('rolls the rule over the horizon with the windows as known', () => {
    const intervals = uniformIntervals(T0, 3600, 3);
    const plan = planWithHeuristic(
      {
        intervals,
        capacityKw: [10, 10, 10],
        pricePerKwh: [0, 0, 0],
        vehicles: [
          { id: 'a', energyNeedKwh: 15, maxPowerKw: 10, arrivalMs: T0, departureMs: T0 + 3 * HOUR_MS },
          { id: 'b', energyNeedKwh: 10, maxPowerKw: 10, arrivalMs: T0 + HOUR_MS, departureMs: T0 + 2 * HOUR_MS },
        ],
      },
      'edf',
    );
    expect(plan.method).toBe('edf');
    expect(plan.energyKwh).toEqual([
      [10, 0, 5],
      [0, 10, 0],
    ]);
    expect(plan.unmetKwh).toEqual([0, 0]);
    expect(plan.sitePowerKw).toEqual([10, 10, 5]);
  });

  it('keeps every node limit over the horizon', () => {
    const intervals = uniformIntervals(T0, 3600, 2);
    const plan = planWithHeuristic(
      {
        intervals,
        capacityKw: [30, 30],
        pricePerKwh: [0, 0],
        nodeLimits: [{ id: 'cabinet', capacityKw: [10, Infinity], vehicles: [0, 1] }],
        vehicles: ['a', 'b', 'c'].map((id) => ({ id, energyNeedKwh: 30, maxPowerKw: 20, arrivalMs: T0, departureMs: T0 + 2 * HOUR_MS })),
      },
      'equal-share',
    );
    expect(plan.sitePowerKw).toEqual([30, 30]);
    expect(plan.energyKwh.map((row) => row[0])).toEqual([5, 5, 20]);
    expect(plan.energyKwh.map((row) => row[1])).toEqual([10, 10, 10]);
  });

  it('refuses a node that names a vehicle the problem does not have', () => {
    const intervals = uniformIntervals(T0, 3600, 1);
    const problem = { intervals, capacityKw: [10], pricePerKwh: [0], vehicles: [], nodeLimits: [{ id: 'x', capacityKw: [1], vehicles: [0] }] };
    expect(() => planWithHeuristic(problem, 'llf')).toThrow(/names vehicle index 0/);
  });
});
