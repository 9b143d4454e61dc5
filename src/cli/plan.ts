/**
 * `ampyard plan`: replays a sessions CSV under a charging policy and writes what it delivered,
 * the site power per step and a summary (the evaluation contract of issue 5, kept stable):
 *
 *   ampyard plan --sessions FILE.csv --step 300 --capacity-kw 60 --policy POLICY
 *                [--prices FILE.csv] [--demand-charge 15.51] --out result.json
 *
 * Step 0 starts at the earliest arrival rounded down to a multiple of the step since the Unix
 * epoch; the grid runs to the latest (real or estimated) departure.
 */
import { isoDateTimeWithZone, readCsvTable } from '../io/csv-table.js';
import { readFile, writeFile } from 'node:fs/promises';
import { loadHighsSolver, type LpSolver } from '../charging/planner/lp.js';
import { gridOrigin, meanOverIntervals, uniformIntervals, type StepPoint } from '../charging/planner/model.js';
import { PLANNER_POLICIES, replay, type MpcOptions, type PlannerPolicy, type ReplayResult, type ReplaySession } from '../charging/planner/simulate.js';
import { parseSessionsCsv } from '../simulator/scenarios.js';

export interface PlanCommandOptions {
  sessions: string;
  /** Seconds; a positive integer. */
  step: number | string;
  capacityKw: number | string;
  policy: string;
  prices?: string;
  demandCharge?: number | string;
  out: string;
  /** A loaded solver to reuse (the evaluation runs many replays); loaded on demand otherwise. */
  solver?: LpSolver;
  mpc?: MpcOptions;
}

/** result.json, as the contract names it. */
export interface PlanResultJson {
  policy: PlannerPolicy;
  sessions: Array<{ session_id: string; requested_kwh: number; delivered_kwh: number }>;
  site_power_kw: number[];
  summary: {
    energy_delivered_pct: number;
    peak_kw: number;
    energy_cost: number;
    demand_charge_cost: number;
    solve_ms_p50: number;
    solve_ms_p99: number;
  };
}

/** Replays, writes `out`, and returns the JSON written together with the replay's details. */
export async function runPlanCommand(opts: PlanCommandOptions): Promise<{ json: PlanResultJson; replay: ReplayResult; wallMs: number }> {
  const stepS = positiveNumber(opts.step, '--step');
  if (!Number.isInteger(stepS)) throw new Error(`--step must be a whole number of seconds, got ${opts.step}`);
  const capacityKw = positiveNumber(opts.capacityKw, '--capacity-kw');
  if (!(PLANNER_POLICIES as readonly string[]).includes(opts.policy)) {
    throw new Error(`--policy must be one of ${PLANNER_POLICIES.join(', ')}, got ${JSON.stringify(opts.policy)}`);
  }
  const policy = opts.policy as PlannerPolicy;
  const demandChargePerKw = opts.demandCharge === undefined ? 0 : nonNegativeNumber(opts.demandCharge, '--demand-charge');

  const sessions = parsePlanSessions(await readText(opts.sessions, 'sessions file'), opts.sessions);
  if (sessions.length === 0) throw new Error(`${opts.sessions}: no sessions`);
  const startMs = gridOrigin(Math.min(...sessions.map((s) => s.arrivalMs)), stepS);
  const endMs = Math.max(...sessions.map((s) => Math.max(s.departureMs, s.estimatedDepartureMs)));
  const steps = Math.ceil((endMs - startMs) / (stepS * 1000));
  const intervals = uniformIntervals(startMs, stepS, steps);
  let pricePerKwh: number[] | undefined;
  if (opts.prices !== undefined) {
    const points = parsePricesCsv(await readText(opts.prices, 'prices file'), opts.prices);
    try {
      pricePerKwh = meanOverIntervals(points, intervals, `${opts.prices}`);
    } catch (error) {
      throw new Error(`${(error as Error).message} (step 0 starts at ${new Date(startMs).toISOString()})`);
    }
  }

  const started = performance.now();
  const solver = policy === 'mpc' || policy === 'offline' ? (opts.solver ?? (await loadHighsSolver())) : undefined;
  const result = replay(
    { sessions, grid: { startMs, stepS, steps }, capacityKw, ...(pricePerKwh ? { pricePerKwh } : {}), demandChargePerKw },
    { policy, ...(solver ? { solver } : {}), ...(opts.mpc ? { mpc: opts.mpc } : {}) },
  );
  const wallMs = performance.now() - started;
  const json = toResultJson(result);
  try {
    await writeFile(opts.out, `${JSON.stringify(json)}\n`);
  } catch (error) {
    throw new Error(`cannot write ${opts.out}: ${(error as Error).message}`);
  }
  return { json, replay: result, wallMs };
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

export function toResultJson(result: ReplayResult): PlanResultJson {
  const s = result.summary;
  return {
    policy: result.policy,
    sessions: result.sessions.map((x) => ({ session_id: x.sessionId, requested_kwh: x.requestedKwh, delivered_kwh: round(x.deliveredKwh, 6) })),
    site_power_kw: result.sitePowerKw.map((p) => round(p, 4)),
    summary: {
      energy_delivered_pct: round(s.energyDeliveredPct, 4),
      peak_kw: round(s.peakKw, 4),
      energy_cost: round(s.energyCost, 4),
      demand_charge_cost: round(s.demandChargeCost, 4),
      solve_ms_p50: round(s.solveMsP50, 4),
      solve_ms_p99: round(s.solveMsP99, 4),
    },
  };
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${what} ${path}: ${(error as Error).message}`);
  }
}

function positiveNumber(value: number | string, flag: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n) || n <= 0 || (typeof value === 'string' && value.trim() === '')) throw new Error(`${flag} must be a number > 0, got ${JSON.stringify(value)}`);
  return n;
}

function nonNegativeNumber(value: number | string, flag: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n) || n < 0 || (typeof value === 'string' && value.trim() === '')) throw new Error(`${flag} must be a number >= 0, got ${JSON.stringify(value)}`);
  return n;
}


/**
 * The sessions of the contract: the simulator's sessions parser checks the required columns
 * (and names file, line and column on a defect) and passes the optional estimated_departure
 * through, which is checked here. An empty estimate means the real departure.
 */
export function parsePlanSessions(text: string, source: string): ReplaySession[] {
  return parseSessionsCsv(text, source).map((s) => {
    const estimate = s.estimatedDeparture;
    let estimatedDepartureMs = s.departure.getTime();
    if (estimate !== undefined && estimate !== '') {
      const date = new Date(estimate);
      if (!isoDateTimeWithZone.test(estimate) || Number.isNaN(date.getTime())) {
        throw new Error(`${source} line ${s.line}, column estimated_departure: ${JSON.stringify(estimate)} is not an ISO-8601 date-time with a zone`);
      }
      if (date.getTime() <= s.arrival.getTime()) {
        throw new Error(`${source} line ${s.line}, column estimated_departure: ${estimate} is not after the arrival`);
      }
      estimatedDepartureMs = date.getTime();
    }
    return {
      id: s.sessionId,
      arrivalMs: s.arrival.getTime(),
      departureMs: s.departure.getTime(),
      estimatedDepartureMs,
      requestedKwh: s.requestedKwh,
      maxPowerKw: s.maxPowerKw,
    };
  });
}

/** A tariff: `start,price_per_kwh`, each price holding until the next start. Starts must increase. */
export function parsePricesCsv(text: string, source: string): StepPoint[] {
  const { rows } = readCsvTable(text, source, ['start', 'price_per_kwh']);
  const points: StepPoint[] = [];
  for (const { record, line } of rows) {
    const start = record.start ?? '';
    const date = new Date(start);
    if (!isoDateTimeWithZone.test(start) || Number.isNaN(date.getTime())) {
      throw new Error(`${source} line ${line}, column start: ${JSON.stringify(start)} is not an ISO-8601 date-time with a zone`);
    }
    const priceText = record.price_per_kwh ?? '';
    const value = Number(priceText);
    if (priceText === '' || !Number.isFinite(value)) throw new Error(`${source} line ${line}, column price_per_kwh: ${JSON.stringify(priceText)} is not a number`);
    if (points.length > 0 && date.getTime() <= points[points.length - 1].startMs) {
      throw new Error(`${source} line ${line}, column start: ${start} is not after the previous start`);
    }
    points.push({ startMs: date.getTime(), value });
  }
  if (points.length === 0) throw new Error(`${source}: no prices`);
  return points;
}
