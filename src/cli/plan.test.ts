import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlanCommand } from './plan.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ampyard-plan-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

let fileCount = 0;
async function file(text: string): Promise<string> {
  const path = join(directory, `input-${fileCount++}.csv`);
  await writeFile(path, text);
  return path;
}

const HEADER = 'session_id,arrival,departure,requested_kwh,max_power_kw';
const twoCars = [
  'session_id,station_id,arrival,departure,estimated_departure,requested_kwh,max_power_kw',
  // a plugs in at 00:02: step 0 starts at 00:00, and a is there for 3 of its 5 minutes.
  'a,S1,2026-01-05T00:02:00Z,2026-01-05T01:00:00Z,2026-01-05T01:00:00Z,5,10',
  'b,S2,2026-01-05T00:00:00Z,2026-01-05T01:00:00Z,,5,10',
].join('\n');

describe('ampyard plan', () => {
  it('writes result.json as the contract states', async () => {
    const out = join(directory, 'result.json');
    await runPlanCommand({ sessions: await file(twoCars), step: '300', capacityKw: '6', policy: 'edf', out });
    const json = JSON.parse(await readFile(out, 'utf8'));
    expect(Object.keys(json)).toEqual(['policy', 'sessions', 'site_power_kw', 'summary']);
    expect(json.policy).toBe('edf');
    expect(Object.keys(json.summary)).toEqual(['energy_delivered_pct', 'peak_kw', 'energy_cost', 'demand_charge_cost', 'solve_ms_p50', 'solve_ms_p99']);
    expect(json.site_power_kw).toHaveLength(12);
    expect(json.site_power_kw.every((p: number) => p <= 6)).toBe(true);
    // 6 kW for an hour is all the energy there is for the 10 kWh asked.
    const delivered = json.sessions.reduce((sum: number, s: { delivered_kwh: number }) => sum + s.delivered_kwh, 0);
    expect(delivered).toBeCloseTo(6, 5);
    expect(json.summary.energy_delivered_pct).toBeCloseTo(60, 3);
    expect(json.summary.peak_kw).toBeCloseTo(6, 6);
    expect(json.sessions.map((s: { session_id: string; requested_kwh: number }) => [s.session_id, s.requested_kwh])).toEqual([
      ['a', 5],
      ['b', 5],
    ]);
  });

  it('prices energy with the tariff and bills the peak', async () => {
    const prices = await file('start,price_per_kwh\n2026-01-05T00:00:00Z,0.3\n2026-01-05T00:30:00Z,0.1\n');
    const out = join(directory, 'priced.json');
    const { json } = await runPlanCommand({ sessions: await file(twoCars), step: 300, capacityKw: 100, policy: 'offline', prices, demandCharge: '15.51', out });
    expect(json.summary.energy_delivered_pct).toBeCloseTo(100, 4);
    // Flat is cheapest with a demand charge this high: 10 kWh over the hour, 10 kW (a is only
    // there from 00:02, so the flat level is a little above).
    expect(json.summary.peak_kw).toBeGreaterThanOrEqual(10);
    expect(json.summary.peak_kw).toBeLessThan(10.5);
    expect(json.summary.demand_charge_cost).toBeCloseTo(json.summary.peak_kw * 15.51, 2);
    expect(json.summary.energy_cost).toBeGreaterThan(10 * 0.1);
    expect(json.summary.energy_cost).toBeLessThan(10 * 0.3);
  });

  it('tells the planner the estimated departure and ends the session at the real one', async () => {
    const csv = [
      'session_id,arrival,departure,estimated_departure,requested_kwh,max_power_kw',
      'stays,2026-01-05T00:00:00Z,2026-01-05T02:00:00Z,2026-01-05T00:30:00Z,10,10',
      'leaves,2026-01-05T00:00:00Z,2026-01-05T01:10:00Z,2026-01-05T01:10:00Z,10,10',
    ].join('\n');
    const { json } = await runPlanCommand({ sessions: await file(csv), step: 300, capacityKw: 10, policy: 'edf', out: join(directory, 'estimate.json') });
    // EDF believes "stays" leaves first and serves it; past its estimate it is taken to leave at
    // the end of each step, so it stays first until its need is met at 01:00, and "leaves" gets
    // only its last 10 minutes. Told the truth, EDF would serve "leaves" first and meet both needs.
    expect(json.sessions.map((s: { delivered_kwh: number }) => Math.round(s.delivered_kwh * 1000) / 1000)).toEqual([10, 1.667]);
    expect(json.site_power_kw).toHaveLength(24);
  });

  it.each([
    [{ sessions: 'missing.csv' }, /cannot read sessions file missing\.csv/],
    [{ policy: 'fifo' }, /--policy must be one of uncontrolled, equal-share, edf, llf, mpc, offline/],
    [{ step: '0' }, /--step must be a number > 0/],
    [{ step: '90.5' }, /--step must be a whole number/],
    [{ capacityKw: 'lots' }, /--capacity-kw must be a number > 0/],
    [{ demandCharge: '-1' }, /--demand-charge must be a number >= 0/],
  ])('refuses bad options: %o', async (override, message) => {
    const sessions = await file(twoCars);
    await expect(runPlanCommand({ sessions, step: 300, capacityKw: 10, policy: 'edf', out: join(directory, 'x.json'), ...override })).rejects.toThrow(message);
  });

  it('names the file, line and column of a bad session', async () => {
    const path = await file(`${HEADER}\na,2026-01-05T00:00:00Z,2026-01-05T01:00:00Z,5,10\nb,yesterday,2026-01-05T01:00:00Z,5,10\n`);
    await expect(runPlanCommand({ sessions: path, step: 300, capacityKw: 10, policy: 'edf', out: join(directory, 'x.json') })).rejects.toThrow(
      `${path} line 3, column 2 (arrival): "yesterday" is not an ISO-8601 date-time with a zone`,
    );
    const noPower = await file('session_id,arrival,departure,requested_kwh\na,2026-01-05T00:00:00Z,2026-01-05T01:00:00Z,5\n');
    await expect(runPlanCommand({ sessions: noPower, step: 300, capacityKw: 10, policy: 'edf', out: join(directory, 'x.json') })).rejects.toThrow(
      /line 1, column max_power_kw: missing from the header/,
    );
    const badEstimate = await file('session_id,arrival,departure,estimated_departure,requested_kwh,max_power_kw\na,2026-01-05T00:00:00Z,2026-01-05T01:00:00Z,soon,5,10\n');
    await expect(runPlanCommand({ sessions: badEstimate, step: 300, capacityKw: 10, policy: 'edf', out: join(directory, 'x.json') })).rejects.toThrow(
      /line 2, column estimated_departure: "soon" is not an ISO-8601/,
    );
  });

  it('names the line of a bad price and refuses a tariff that starts too late', async () => {
    const sessions = await file(twoCars);
    const run = async (pricesText: string) =>
      runPlanCommand({ sessions, step: 300, capacityKw: 10, policy: 'edf', prices: await file(pricesText), out: join(directory, 'x.json') });
    await expect(run('start,price_per_kwh\n2026-01-05T00:00:00Z,cheap\n')).rejects.toThrow(/line 2, column price_per_kwh: "cheap" is not a number/);
    await expect(run('start,price_per_kwh\n2026-01-05T01:00:00Z,0.1\n2026-01-05T00:00:00Z,0.2\n')).rejects.toThrow(/line 3, column start: .* is not after the previous start/);
    await expect(run('start,price\n2026-01-05T00:00:00Z,0.1\n')).rejects.toThrow(/column price_per_kwh: missing from the header/);
    await expect(run('start,price_per_kwh\n2026-01-05T00:10:00Z,0.1\n')).rejects.toThrow(/starts at 2026-01-05T00:10:00\.000Z, after 2026-01-05T00:00:00\.000Z/);
  });

  it('replays the real ACN month with mpc at a 15-minute step', async () => {
    const data = new URL('../../datasets/acn-caltech-2019-03/', import.meta.url).pathname;
    const out = join(directory, 'acn.json');
    const started = performance.now();
    const { json } = await runPlanCommand({
      sessions: join(data, 'sessions.csv'),
      prices: join(data, 'tou-prices.csv'),
      step: 900,
      capacityKw: 30,
      policy: 'mpc',
      demandCharge: 15.51,
      out,
    });
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(json.sessions).toHaveLength(954);
    // 2019-03-01T14:20Z rounded down to the quarter hour; the grid reaches the last departure.
    expect(json.site_power_kw.length).toBeGreaterThan(30 * 96);
    expect(Math.max(...json.site_power_kw)).toBeLessThanOrEqual(30);
    expect(json.summary.energy_delivered_pct).toBeGreaterThan(90);
    expect(json.summary.energy_delivered_pct).toBeLessThanOrEqual(100);
  }, 30_000);
});
