/**
 * Live load balancing: how much power each charging session may draw right now so that no
 * node of the site tree, no station and no connector is over its limit on any phase. Pure:
 * the instant is an argument, there is no I/O and no clock, and the same input always gives
 * the same output (sessions are ranked by their own fields and key, never by input order).
 *
 * The rules, where the issue leaves room:
 *
 * - Electrical model. Every limit is linear in the sessions' powers: a W limit counts total
 *   power; an A limit counts the current on each site phase separately. An AC session uses
 *   min(vehicle phases, station phases) phases: the station's L1..Lp, mapped to site phases
 *   through the station's rotation, each carrying powerW / (V × p). A DC station draws
 *   powerW / (3 V) on each site phase. V is site.supplyVoltage (default 230 V).
 *
 * - Floor. A session's floor is max(minPowerW, 6 A × V × p) for AC (IEC 61851: an AC vehicle
 *   stops below 6 A) and minPowerW for DC. A session gets 0 (paused) or at least its floor.
 *   Its cap is min(vehicle maxPowerW, connector maxPowerW, connector maxCurrentA × V × p,
 *   station maxPowerW); a session whose floor is above its cap is paused.
 *
 * - Pause order. Sessions are ranked: higher priority first, then earlier departure (none
 *   last), then sessions already charging (previousAllocationW > 0) before new ones (the
 *   model carries no start time; "already charging" is what protects the earlier start), then
 *   by station id and connector id. Going down that ranking, a session is admitted when its
 *   floor fits, together with the floors of every session admitted before it and the reserved
 *   power, inside every limit on its path; otherwise it is paused. So a session is only ever
 *   paused for sessions ranked above it, and one that cannot fit does not starve the rest.
 *
 * - Handing on unused power. When a session's measuredPowerW is below previousAllocationW −
 *   margin, its cap becomes measured + margin (never below its floor), where margin =
 *   max(safetyMarginW, safetyMarginFraction × previousAllocationW); defaults 500 W and 5 %.
 *   What it no longer gets is shared among the others in the same round.
 *
 * - Sharing (progressive filling, also called water-filling). Admitted sessions start at their
 *   floors; a common level rises and every session draws clamp(level, floor, cap); when a
 *   limit becomes tight, every session under it stops rising. The result is max-min fair in
 *   watts. Strategies differ only in which sessions rise together: 'equal-share' one class of
 *   everyone; 'priority' one class per priority, highest first; 'earliest-departure' one
 *   class per laxity (whole seconds until departure minus the time the energy still needed
 *   takes at the session's cap; departure alone when energyNeededWh is unknown; sessions
 *   without departure last), least laxity first. Lower classes wait at their floors while a
 *   higher class rises, so an admitted session keeps at least its floor under any strategy.
 *
 * - Hysteresis. When the new value differs from previousAllocationW by less than
 *   max(minChangeW, minChangeFraction × previousAllocationW) (defaults 1,000 W and 5 %), the
 *   previous value is kept, if it is 0 or between the floor and the physical cap and keeping
 *   it leaves every limit on the session's path satisfied. Keeping a lower value only frees
 *   capacity, so those are kept first; then raises are tried in the ranking above, each
 *   checked against the loads as they stand. Power freed by a kept lower value is not
 *   shared again in this round: it is less than the threshold per session, by definition.
 *
 * - Reserved power (a station that lost its connection and keeps drawing its last allocation
 *   until its TxProfile expires) is counted on every limit on the station's path. A session on
 *   a reserved connector is held at the reserved power (`held`). When reserved power alone
 *   already exceeds a limit, nothing else under that limit gets more than 0 or its floor can
 *   not be admitted; the node reports the overload instead of hiding it.
 */
import {
  limitOfNodeAt,
  phases as sitePhaseList,
  sessionKey,
  type ChargingSessionDemand,
  type Phase,
  type Site,
  type SiteNode,
  type StationElectricalSpec,
} from '../site/model.js';

export type AllocationStrategy = 'equal-share' | 'priority' | 'earliest-departure';

/** Power the balancer must count as drawn but cannot change (e.g. a station that is offline). */
export interface ReservedPower {
  stationId: string;
  connectorId: number;
  powerW: number;
  phases: 1 | 2 | 3;
}

export interface AllocationOptions {
  /** Headroom left above a session's measured power when its unused allocation is handed on; default 500 W. */
  safetyMarginW?: number;
  /** The same headroom as a share of the previous allocation; the larger of the two applies; default 0.05. */
  safetyMarginFraction?: number;
  /** Changes smaller than this are not made (hysteresis); default 1,000 W. */
  minChangeW?: number;
  /** The same threshold as a share of the previous allocation; the larger of the two applies; default 0.05. */
  minChangeFraction?: number;
  /** Default 'equal-share'. */
  strategy?: AllocationStrategy;
}

export const defaultAllocationOptions: Required<AllocationOptions> = {
  safetyMarginW: 500,
  safetyMarginFraction: 0.05,
  minChangeW: 1000,
  minChangeFraction: 0.05,
  strategy: 'equal-share',
};

/** IEC 61851: an AC vehicle stops charging below this current per phase. */
export const acMinimumCurrentA = 6;

export interface AllocationInput {
  site: Site;
  stations: StationElectricalSpec[];
  sessions: ChargingSessionDemand[];
  now: Date;
  reserved?: ReservedPower[];
  options?: AllocationOptions;
}

export interface SessionAllocation {
  stationId: string;
  connectorId: number;
  powerW: number;
  /** Current on each phase the session uses (powerW / (V × phases)). */
  currentA: number;
  /** Phases the session draws on: AC min(vehicle, station); DC 3. */
  phases: 1 | 2 | 3;
  /** The site phases those are, after the station's rotation. */
  sitePhases: Phase[];
  /** Exactly when powerW is 0. */
  paused: boolean;
  /** The connector has reserved power: the session is held at it, the balancer cannot change it. */
  held: boolean;
}

export interface NodeAllocation {
  nodeId: string;
  /** Everything allocated or reserved under the node. */
  powerW: number;
  currentA: Record<Phase, number>;
  /** The limits in force at `now` (base limit and overrides combined). */
  limit: { maxW?: number; maxA?: number };
}

export interface Allocation {
  /** In the order of input.sessions. */
  sessions: SessionAllocation[];
  /** Parents before children, in the order flattenSite lists them. */
  nodes: NodeAllocation[];
}

/** The site phases a load on this station uses: AC through the rotation, DC all three. */
export function sitePhasesOf(station: StationElectricalSpec, requestedPhases: 1 | 2 | 3): Phase[] {
  if (station.kind === 'DC') return [...sitePhaseList];
  const used = station.phases === 1 ? 1 : requestedPhases;
  return station.rotation.slice(0, used);
}

/** What allocate needs of each station that has a session or reserved power. */
interface StationEntry {
  spec: StationElectricalSpec;
  /** Node indices from the grid connection down to the station's parent. */
  path: number[];
  /** Index of the station's own maxPowerW constraint. */
  constraint: number;
  sessionConnectors: Set<number>;
  reservedW: Map<number, number>;
}

// Session states during filling.
const atFloor = 0; // admitted, drawing its floor (waiting for the level, or in a later class)
const rising = 1;
const settled = 2;

/** Relative tolerance for "within a limit": floating-point sums of thousands of terms drift. */
const tolerance = 1e-9;
const fits = (load: number, limit: number) => load <= limit + tolerance * Math.max(1, Math.abs(limit));

export function allocate(input: AllocationInput): Allocation {
  const options = { ...defaultAllocationOptions, ...stripUndefined(input.options ?? {}) };
  const voltage = input.site.supplyVoltage ?? 230;
  const nowMs = input.now.getTime();

  // ---- The tree: nodes parents first (the order of flattenSite), each station's path of node indices. ----
  const tree: SiteNode[] = [];
  const pathOfStation = new Map<string, number[]>();
  const walk = (node: SiteNode, path: number[]) => {
    const here = [...path, tree.push(node) - 1];
    for (const stationId of node.stations) {
      if (pathOfStation.has(stationId)) throw new RangeError(`station ${stationId} appears twice in site ${input.site.id}`);
      pathOfStation.set(stationId, here);
    }
    for (const child of node.groups) walk(child, here);
  };
  walk(input.site, []);
  const nodeLimits = tree.map((node) => limitOfNodeAt(node, input.now));

  // ---- Constraints: one per W limit, one per phase of an A limit, one per station. ----
  const limit: number[] = [];
  const nodeW = new Int32Array(tree.length).fill(-1);
  const nodeA = new Int32Array(tree.length * 3).fill(-1);
  nodeLimits.forEach((l, n) => {
    if (l.maxW !== undefined) nodeW[n] = limit.push(l.maxW) - 1;
    if (l.maxA !== undefined) for (let p = 0; p < 3; p++) nodeA[n * 3 + p] = limit.push(l.maxA) - 1;
  });
  const specs = new Map<string, StationElectricalSpec>();
  for (const spec of input.stations) specs.set(spec.stationId, spec);
  const entries = new Map<string, StationEntry>();
  const stationOf = (stationId: string, what: string): StationEntry => {
    const known = entries.get(stationId);
    if (known) return known;
    const spec = specs.get(stationId);
    if (!spec) throw new RangeError(`${what} on unknown station ${stationId}`);
    const path = pathOfStation.get(stationId);
    if (!path) throw new RangeError(`${what} on station ${stationId}, which is not in site ${input.site.id}`);
    const entry = { spec, path, constraint: limit.push(spec.maxPowerW) - 1, sessionConnectors: new Set<number>(), reservedW: new Map<number, number>() };
    entries.set(stationId, entry);
    return entry;
  };

  /** Appends the constraints a load of 1 W on this station and these site phases counts against, with its coefficient in each. */
  const appendTerms = (station: StationEntry, sitePhases: Phase[], cs: number[], as: number[]) => {
    cs.push(station.constraint);
    as.push(1);
    const perPhase = 1 / (voltage * sitePhases.length);
    for (const n of station.path) {
      if (nodeW[n] >= 0) { cs.push(nodeW[n]); as.push(1); }
      for (const phase of sitePhases) {
        const c = nodeA[n * 3 + phaseIndex(phase)];
        if (c >= 0) { cs.push(c); as.push(perPhase); }
      }
    }
  };

  // ---- Reserved power. ----
  const reservedLoads: Array<{ terms: { cs: number[]; as: number[] }; powerW: number; stationId: string; sitePhases: Phase[] }> = [];
  // In a fixed order, like the sessions, so that the sums do not depend on how the input is listed.
  const reserved = [...(input.reserved ?? [])].sort((a, b) => compareKeys(a, b) || a.powerW - b.powerW || a.phases - b.phases);
  for (const r of reserved) {
    const station = stationOf(r.stationId, `reserved power on connector ${r.connectorId}`);
    const sitePhases = sitePhasesOf(station.spec, r.phases);
    station.reservedW.set(r.connectorId, (station.reservedW.get(r.connectorId) ?? 0) + r.powerW);
    const terms = { cs: [] as number[], as: [] as number[] };
    appendTerms(station, sitePhases, terms.cs, terms.as);
    reservedLoads.push({ terms, powerW: r.powerW, stationId: r.stationId, sitePhases });
  }

  // ---- Sessions: phases, floor, cap, terms. ----
  // Sessions are numbered internally in rank order (see rankSessions), not in input order, so
  // that every sum and every tie below is taken in the same order however the input is listed.
  const inputIndex = rankSessions(input.sessions);
  const ranked = inputIndex.map((k) => input.sessions[k]);
  const sessionCount = ranked.length;
  const floor = new Float64Array(sessionCount);
  const cap = new Float64Array(sessionCount);
  const physicalCap = new Float64Array(sessionCount);
  const value = new Float64Array(sessionCount);
  const state = new Uint8Array(sessionCount).fill(settled);
  const held = new Uint8Array(sessionCount);
  const phaseCount = new Uint8Array(sessionCount);
  const sessionPhases: Phase[][] = [];
  const sessionPath: number[][] = [];
  const termStart = new Int32Array(sessionCount + 1);
  const termC: number[] = [];
  const termA: number[] = [];
  for (let i = 0; i < sessionCount; i++) {
    const s = ranked[i];
    const station = stationOf(s.stationId, `session on connector ${s.connectorId}`);
    const spec = station.spec;
    if (station.sessionConnectors.has(s.connectorId)) throw new RangeError(`two sessions on connector ${sessionKey(s.stationId, s.connectorId)}`);
    station.sessionConnectors.add(s.connectorId);
    const connector = spec.connectors.find((c) => c.connectorId === s.connectorId);
    if (!connector) throw new RangeError(`station ${s.stationId} has no connector ${s.connectorId}`);
    const sitePhases = sitePhasesOf(spec, s.vehiclePhases);
    const p = sitePhases.length;
    sessionPhases.push(sitePhases);
    sessionPath.push(station.path);
    phaseCount[i] = p;
    const physical = Math.min(
      s.maxPowerW,
      connector.maxPowerW,
      spec.kind === 'AC' && connector.maxCurrentA !== undefined ? connector.maxCurrentA * voltage * p : Infinity,
      spec.maxPowerW,
    );
    if (!Number.isFinite(physical)) throw new RangeError(`session on ${sessionKey(s.stationId, s.connectorId)} has no finite maximum power`);
    physicalCap[i] = Math.max(0, physical);
    floor[i] = Math.max(0, s.minPowerW, spec.kind === 'AC' ? acMinimumCurrentA * voltage * p : 0);
    cap[i] = physicalCap[i];
    const previous = s.previousAllocationW;
    if (s.measuredPowerW !== undefined && previous !== undefined) {
      const margin = Math.max(options.safetyMarginW, options.safetyMarginFraction * previous);
      if (s.measuredPowerW < previous - margin) {
        cap[i] = Math.min(cap[i], Math.max(floor[i], Math.max(0, s.measuredPowerW) + margin));
      }
    }
    termStart[i] = termC.length;
    appendTerms(station, sitePhases, termC, termA);
    const reservedW = station.reservedW.get(s.connectorId);
    if (reservedW !== undefined) {
      held[i] = 1;
      value[i] = reservedW;
    }
  }
  termStart[sessionCount] = termC.length;

  const constraintCount = () => limit.length;
  // base + rate × level is a constraint's load while its rising sessions follow the level.
  const base = new Float64Array(constraintCount());
  const limits = Float64Array.from(limit);
  for (const r of reservedLoads) {
    for (let k = 0; k < r.terms.cs.length; k++) base[r.terms.cs[k]] += r.terms.as[k] * r.powerW;
  }

  // ---- Admission: floors in rank order; a session whose floor does not fit is paused. ----
  const members: number[][] = Array.from({ length: constraintCount() }, () => []);
  for (let i = 0; i < sessionCount; i++) {
    if (held[i]) continue;
    if (floor[i] > cap[i]) continue; // cannot charge at all: paused
    let admissible = true;
    for (let k = termStart[i]; k < termStart[i + 1] && admissible; k++) {
      admissible = fits(base[termC[k]] + termA[k] * floor[i], limits[termC[k]]);
    }
    if (!admissible) continue;
    for (let k = termStart[i]; k < termStart[i + 1]; k++) {
      base[termC[k]] += termA[k] * floor[i];
      members[termC[k]].push(i);
    }
    value[i] = floor[i];
    state[i] = floor[i] === cap[i] ? settled : atFloor;
  }

  // ---- Progressive filling, class by class. ----
  const rate = new Float64Array(constraintCount());
  const risingCount = new Int32Array(constraintCount());
  const version = new Int32Array(constraintCount());
  const saturated = new Uint8Array(constraintCount());
  const heap = new EventHeap();

  const schedule = (c: number, level: number) => {
    version[c]++;
    if (risingCount[c] > 0 && !saturated[c]) heap.push(Math.max(level, (limits[c] - base[c]) / rate[c]), c, version[c]);
  };
  const startRising = (i: number, level: number) => {
    state[i] = rising;
    for (let k = termStart[i]; k < termStart[i + 1]; k++) {
      const c = termC[k];
      base[c] -= termA[k] * floor[i];
      rate[c] += termA[k];
      risingCount[c]++;
      schedule(c, level);
    }
  };
  const settle = (i: number, at: number, level: number) => {
    if (state[i] === rising) {
      for (let k = termStart[i]; k < termStart[i + 1]; k++) {
        const c = termC[k];
        base[c] += termA[k] * at;
        rate[c] -= termA[k];
        // Counting rising sessions lets the rate return to exactly 0 instead of a rounding residue.
        if (--risingCount[c] === 0) rate[c] = 0;
        schedule(c, level);
      }
    }
    // A session settled at its floor is already counted in base.
    state[i] = settled;
    value[i] = at;
  };
  const saturate = (c: number, level: number) => {
    saturated[c] = 1;
    for (const j of members[c]) {
      if (state[j] === rising) settle(j, Math.min(level, cap[j]), level);
      // Waiting at its floor, in this class or a later one: the limit leaves it no more.
      else if (state[j] === atFloor) settle(j, floor[j], level);
    }
  };

  for (const members of sharingClasses(ranked, options.strategy, nowMs, cap)) {
    const open = members.filter((i) => state[i] === atFloor);
    if (open.length === 0) continue;
    const byFloor = [...open].sort((a, b) => floor[a] - floor[b] || a - b);
    const byCap = [...open].sort((a, b) => cap[a] - cap[b] || a - b);
    heap.clear();
    let level = 0;
    let f = 0;
    let u = 0;
    for (;;) {
      while (f < byFloor.length && state[byFloor[f]] !== atFloor) f++;
      while (u < byCap.length && state[byCap[u]] === settled) u++;
      while (heap.size > 0 && (heap.topVersion() !== version[heap.topConstraint()] || saturated[heap.topConstraint()])) heap.pop();
      const nextStart = f < byFloor.length ? floor[byFloor[f]] : Infinity;
      const nextCap = u < byCap.length ? cap[byCap[u]] : Infinity;
      const nextTight = heap.size > 0 ? heap.topLevel() : Infinity;
      const next = Math.min(nextStart, nextCap, nextTight);
      if (next === Infinity) break;
      level = Math.max(level, next);
      if (nextTight === next) {
        const c = heap.topConstraint();
        heap.pop();
        saturate(c, level);
      } else if (nextStart === next) {
        startRising(byFloor[f], level);
      } else {
        settle(byCap[u], cap[byCap[u]], level);
      }
    }
  }

  // ---- Hysteresis. ----
  const loads = new Float64Array(constraintCount());
  for (const r of reservedLoads) {
    for (let k = 0; k < r.terms.cs.length; k++) loads[r.terms.cs[k]] += r.terms.as[k] * r.powerW;
  }
  for (let i = 0; i < sessionCount; i++) {
    if (held[i] || value[i] === 0) continue;
    for (let k = termStart[i]; k < termStart[i + 1]; k++) loads[termC[k]] += termA[k] * value[i];
  }
  const keepable = (i: number): number | undefined => {
    const previous = ranked[i].previousAllocationW;
    if (held[i] || previous === undefined || previous === value[i]) return undefined;
    const threshold = Math.max(options.minChangeW, options.minChangeFraction * previous);
    if (!(Math.abs(previous - value[i]) < threshold)) return undefined;
    if (previous !== 0 && !(previous >= floor[i] && previous <= physicalCap[i])) return undefined;
    return previous;
  };
  const keep = (i: number, previous: number) => {
    for (let k = termStart[i]; k < termStart[i + 1]; k++) loads[termC[k]] += termA[k] * (previous - value[i]);
    value[i] = previous;
  };
  for (let i = 0; i < sessionCount; i++) {
    const previous = keepable(i);
    if (previous !== undefined && previous < value[i]) keep(i, previous);
  }
  for (let i = 0; i < sessionCount; i++) {
    const previous = keepable(i);
    if (previous === undefined || previous < value[i]) continue;
    let allowed = true;
    for (let k = termStart[i]; k < termStart[i + 1] && allowed; k++) {
      allowed = fits(loads[termC[k]] + termA[k] * (previous - value[i]), limits[termC[k]]);
    }
    if (allowed) keep(i, previous);
  }

  // ---- Output. ----
  const nodes: NodeAllocation[] = tree.map((node, n) => ({
    nodeId: node.id,
    powerW: 0,
    currentA: { L1: 0, L2: 0, L3: 0 },
    limit: nodeLimits[n],
  }));
  const addLoad = (path: number[], powerW: number, sitePhases: Phase[]) => {
    if (powerW === 0) return;
    const perPhase = powerW / (voltage * sitePhases.length);
    for (const n of path) {
      nodes[n].powerW += powerW;
      for (const phase of sitePhases) nodes[n].currentA[phase] += perPhase;
    }
  };
  for (const r of reservedLoads) addLoad(pathOfStation.get(r.stationId)!, r.powerW, r.sitePhases);
  const sessions = new Array<SessionAllocation>(sessionCount);
  for (let i = 0; i < sessionCount; i++) {
    const s = ranked[i];
    if (!held[i]) addLoad(sessionPath[i], value[i], sessionPhases[i]);
    sessions[inputIndex[i]] = {
      stationId: s.stationId,
      connectorId: s.connectorId,
      powerW: value[i],
      currentA: value[i] / (voltage * phaseCount[i]),
      phases: phaseCount[i] as 1 | 2 | 3,
      sitePhases: sessionPhases[i],
      paused: value[i] === 0,
      held: held[i] === 1,
    };
  }
  return { sessions, nodes };
}

function phaseIndex(phase: Phase): number {
  return phase === 'L1' ? 0 : phase === 'L2' ? 1 : 2;
}

/** Keep order, best first: priority, departure, already charging, station id, connector id. */
function rankSessions(sessions: readonly ChargingSessionDemand[]): number[] {
  // Sort keys computed once: the comparator runs n log n times.
  const priority = sessions.map((s) => s.priority ?? 0);
  const departure = sessions.map((s) => s.departure?.getTime() ?? Infinity);
  const charging = sessions.map((s) => ((s.previousAllocationW ?? 0) > 0 ? 1 : 0));
  return sessions
    .map((_, i) => i)
    .sort((a, b) => priority[b] - priority[a]
      || compareNumbers(departure[a], departure[b])
      || charging[b] - charging[a]
      || compareKeys(sessions[a], sessions[b]));
}

/** The groups of sessions that rise together, in the order they are served. */
function sharingClasses(
  sessions: readonly ChargingSessionDemand[],
  strategy: AllocationStrategy,
  nowMs: number,
  cap: Float64Array,
): number[][] {
  const all = sessions.map((_, i) => i);
  if (strategy === 'equal-share') return [all];
  const key = strategy === 'priority'
    ? (i: number) => -(sessions[i].priority ?? 0)
    : (i: number) => laxitySeconds(sessions[i], nowMs, cap[i]);
  const keys = all.map(key);
  const classes = new Map<number, number[]>();
  for (const i of all) {
    const group = classes.get(keys[i]);
    if (group) group.push(i);
    else classes.set(keys[i], [i]);
  }
  return [...classes.entries()].sort((a, b) => compareNumbers(a[0], b[0])).map(([, group]) => group);
}

/** Whole seconds to spare before departure at full power; Infinity without a departure. */
function laxitySeconds(session: ChargingSessionDemand, nowMs: number, capW: number): number {
  if (!session.departure) return Infinity;
  const left = (session.departure.getTime() - nowMs) / 1000;
  const needed = session.energyNeededWh !== undefined && session.energyNeededWh > 0
    ? (capW > 0 ? (session.energyNeededWh / capW) * 3600 : Infinity)
    : 0;
  // A vehicle that cannot charge at all has no urgency the balancer can act on.
  return needed === Infinity ? Infinity : Math.floor(left - needed);
}

function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareKeys(a: { stationId: string; connectorId: number }, b: { stationId: string; connectorId: number }): number {
  // Plain code-unit order, not localeCompare: the result must not depend on the host's locale.
  if (a.stationId !== b.stationId) return a.stationId < b.stationId ? -1 : 1;
  return a.connectorId - b.connectorId;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * A binary min-heap of (level, constraint, version) in parallel arrays. Entries are never
 * updated in place: a changed constraint is pushed again with a new version and stale
 * entries are dropped when they reach the top. Ties go to the lower constraint index so that
 * the order of events is fully determined by the input.
 */
class EventHeap {
  private levels: number[] = [];
  private constraints: number[] = [];
  private versions: number[] = [];

  get size(): number {
    return this.levels.length;
  }

  clear(): void {
    this.levels.length = 0;
    this.constraints.length = 0;
    this.versions.length = 0;
  }

  topLevel(): number {
    return this.levels[0];
  }

  topConstraint(): number {
    return this.constraints[0];
  }

  topVersion(): number {
    return this.versions[0];
  }

  push(level: number, constraint: number, version: number): void {
    let at = this.levels.length;
    this.levels.push(level);
    this.constraints.push(constraint);
    this.versions.push(version);
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!this.before(at, parent)) break;
      this.swap(at, parent);
      at = parent;
    }
  }

  pop(): void {
    const last = this.levels.length - 1;
    this.swap(0, last);
    this.levels.pop();
    this.constraints.pop();
    this.versions.pop();
    let at = 0;
    const size = this.levels.length;
    for (;;) {
      const left = 2 * at + 1;
      const right = left + 1;
      let best = at;
      if (left < size && this.before(left, best)) best = left;
      if (right < size && this.before(right, best)) best = right;
      if (best === at) break;
      this.swap(at, best);
      at = best;
    }
  }

  private before(a: number, b: number): boolean {
    return this.levels[a] < this.levels[b] || (this.levels[a] === this.levels[b] && this.constraints[a] < this.constraints[b]);
  }

  private swap(a: number, b: number): void {
    const level = this.levels[a];
    this.levels[a] = this.levels[b];
    this.levels[b] = level;
    const constraint = this.constraints[a];
    this.constraints[a] = this.constraints[b];
    this.constraints[b] = constraint;
    const version = this.versions[a];
    this.versions[a] = this.versions[b];
    this.versions[b] = version;
  }
}
