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
 *   already exceeds a limit, nothing else under that limit is admitted or raised; the node
 *   reports the overload instead of hiding it.
 *
 * Cost. Every limit is a constraint (one per W limit, one per phase of an A limit, one per
 * station); each session lists the few constraints on its path (O(depth)). Filling is event
 * driven: a session starts rising, reaches its cap, or a constraint fills, found with a heap;
 * each event touches only the constraints of one session, and each constraint's member list is
 * walked once, when it fills. So a rebalance is O(n · depth · log n), not sessions × nodes.
 */
import {
  rotationOf,
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
  /** The site phases those are, after the station's rotation (shared between sessions: do not modify). */
  sitePhases: readonly Phase[];
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

/** The site phases a load on this connector uses: AC through its rotation, DC all three. */
export function sitePhasesOf(station: StationElectricalSpec, requestedPhases: 1 | 2 | 3, connectorId?: number): Phase[] {
  if (station.kind === 'DC') return [...sitePhaseList];
  const used = station.phases === 1 ? 1 : requestedPhases;
  return (connectorId === undefined ? station.rotation : rotationOf(station, connectorId)).slice(0, used);
}

/** What allocate needs of each station that has a session or reserved power. */
interface StationEntry {
  spec: StationElectricalSpec;
  /** Node indices from the grid connection down to the station's parent. */
  path: number[];
  /** Index of the station's own maxPowerW constraint. */
  constraint: number;
  /** Connectors with a session (a station has few: a list beats a Set). */
  sessionConnectors: number[];
  /** Reserved power per connector, created only for stations that have some. */
  reservedW?: Map<number, number>;
  /** The site phases a load with 1, 2 or 3 phases uses, computed once per station and shared. */
  sitePhases: Array<readonly Phase[] | undefined>;
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
  // Cached per station; a connector wired differently from its station gets its own list.
  const phasesOn = (station: StationEntry, requested: 1 | 2 | 3, connectorId: number): readonly Phase[] =>
    rotationOf(station.spec, connectorId) === station.spec.rotation
      ? (station.sitePhases[requested] ??= sitePhasesOf(station.spec, requested))
      : sitePhasesOf(station.spec, requested, connectorId);
  // `what` names the caller in an error; a function so that the text is only built when needed.
  const stationOf = (stationId: string, what: () => string): StationEntry => {
    const known = entries.get(stationId);
    if (known) return known;
    const spec = specs.get(stationId);
    if (!spec) throw new RangeError(`${what()} on unknown station ${stationId}`);
    const path = pathOfStation.get(stationId);
    if (!path) throw new RangeError(`${what()} on station ${stationId}, which is not in site ${input.site.id}`);
    const entry: StationEntry = { spec, path, constraint: limit.push(spec.maxPowerW) - 1, sessionConnectors: [], sitePhases: [] };
    entries.set(stationId, entry);
    return entry;
  };

  /** Appends the constraints a load of 1 W on this station and these site phases counts against, with its coefficient in each. */
  const appendTerms = (station: StationEntry, sitePhases: readonly Phase[], cs: number[], as: number[]) => {
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
  const reservedLoads: Array<{ terms: { cs: number[]; as: number[] }; powerW: number; path: number[]; sitePhases: readonly Phase[] }> = [];
  // In a fixed order, like the sessions, so that the sums do not depend on how the input is listed.
  const reserved = [...(input.reserved ?? [])].sort((a, b) => compareKeys(a, b) || a.powerW - b.powerW || a.phases - b.phases);
  for (const r of reserved) {
    const station = stationOf(r.stationId, () => `reserved power on connector ${r.connectorId}`);
    const sitePhases = phasesOn(station, r.phases, r.connectorId);
    station.reservedW ??= new Map();
    station.reservedW.set(r.connectorId, (station.reservedW.get(r.connectorId) ?? 0) + r.powerW);
    const terms = { cs: [] as number[], as: [] as number[] };
    appendTerms(station, sitePhases, terms.cs, terms.as);
    reservedLoads.push({ terms, powerW: r.powerW, path: station.path, sitePhases });
  }

  // ---- Sessions: phases, floor, cap, terms. ----
  // Sessions are numbered internally in rank order (see rankSessions), not in input order, so
  // that every sum and every tie below is taken in the same order however the input is listed.
  const asGiven = readDemands(input.sessions);
  const inputIndex = rankSessions(asGiven);
  const d = reorder(asGiven, inputIndex);
  const sessionCount = inputIndex.length;
  const floor = new Float64Array(sessionCount);
  const cap = new Float64Array(sessionCount);
  const physicalCap = new Float64Array(sessionCount);
  const value = new Float64Array(sessionCount);
  const state = new Uint8Array(sessionCount).fill(settled);
  const held = new Uint8Array(sessionCount);
  const phaseCount = new Uint8Array(sessionCount);
  const sessionPhases: Array<readonly Phase[]> = [];
  const sessionPath: number[][] = [];
  const termStart = new Int32Array(sessionCount + 1);
  const termC: number[] = [];
  const termA: number[] = [];
  for (let i = 0; i < sessionCount; i++) {
    const stationId = d.stationId[i];
    const connectorId = d.connectorId[i];
    const station = stationOf(stationId, () => `session on connector ${connectorId}`);
    const spec = station.spec;
    if (station.sessionConnectors.includes(connectorId)) throw new RangeError(`two sessions on connector ${sessionKey(stationId, connectorId)}`);
    station.sessionConnectors.push(connectorId);
    let connector: StationElectricalSpec['connectors'][number] | undefined;
    for (const candidate of spec.connectors) if (candidate.connectorId === connectorId) connector = candidate;
    if (!connector) throw new RangeError(`station ${stationId} has no connector ${connectorId}`);
    const sitePhases = phasesOn(station, d.vehiclePhases[i] as 1 | 2 | 3, connectorId);
    const p = sitePhases.length;
    sessionPhases.push(sitePhases);
    sessionPath.push(station.path);
    phaseCount[i] = p;
    const physical = Math.min(
      d.maxPowerW[i],
      connector.maxPowerW,
      spec.kind === 'AC' && connector.maxCurrentA !== undefined ? connector.maxCurrentA * voltage * p : Infinity,
      spec.maxPowerW,
    );
    if (!Number.isFinite(physical)) throw new RangeError(`session on ${sessionKey(stationId, connectorId)} has no finite maximum power`);
    physicalCap[i] = Math.max(0, physical);
    floor[i] = Math.max(0, d.minPowerW[i], spec.kind === 'AC' ? acMinimumCurrentA * voltage * p : 0);
    cap[i] = physicalCap[i];
    const previous = d.previousW[i];
    const measured = d.measuredW[i];
    // NaN (unknown) fails every comparison, so the rule only applies when both are known.
    const margin = Math.max(options.safetyMarginW, options.safetyMarginFraction * previous);
    if (measured < previous - margin) cap[i] = Math.min(cap[i], Math.max(floor[i], Math.max(0, measured) + margin));
    termStart[i] = termC.length;
    appendTerms(station, sitePhases, termC, termA);
    const reservedW = station.reservedW?.get(connectorId);
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
  const admitted = new Uint8Array(sessionCount);
  for (let i = 0; i < sessionCount; i++) {
    if (held[i]) continue;
    if (floor[i] > cap[i]) continue; // cannot charge at all: paused
    let admissible = true;
    for (let k = termStart[i]; k < termStart[i + 1] && admissible; k++) {
      admissible = fits(base[termC[k]] + termA[k] * floor[i], limits[termC[k]]);
    }
    if (!admissible) continue;
    for (let k = termStart[i]; k < termStart[i + 1]; k++) base[termC[k]] += termA[k] * floor[i];
    admitted[i] = 1;
    value[i] = floor[i];
    state[i] = floor[i] === cap[i] ? settled : atFloor;
  }

  // The admitted sessions under each constraint, in rank order: members of c are
  // memberList[memberStart[c] .. memberStart[c + 1]).
  const memberStart = new Int32Array(constraintCount() + 1);
  for (let i = 0; i < sessionCount; i++) {
    if (admitted[i]) for (let k = termStart[i]; k < termStart[i + 1]; k++) memberStart[termC[k] + 1]++;
  }
  for (let c = 0; c < constraintCount(); c++) memberStart[c + 1] += memberStart[c];
  const memberList = new Int32Array(memberStart[constraintCount()]);
  const memberFill = memberStart.slice(0, constraintCount());
  for (let i = 0; i < sessionCount; i++) {
    if (admitted[i]) for (let k = termStart[i]; k < termStart[i + 1]; k++) memberList[memberFill[termC[k]]++] = i;
  }

  // ---- Progressive filling, class by class. ----
  const rate = new Float64Array(constraintCount());
  const risingCount = new Int32Array(constraintCount());
  const saturated = new Uint8Array(constraintCount());
  // The heap holds at most one live entry per constraint: the level in `scheduledAt`, with
  // `version` telling it from superseded ones. An entry may be early (the constraint's rate
  // fell since) but never late: a change that makes a constraint fill sooner pushes a new
  // entry; one that makes it fill later leaves the old entry, which is checked when it comes up.
  const version = new Int32Array(constraintCount());
  const scheduledAt = new Float64Array(constraintCount()).fill(Infinity);
  const heap = new EventHeap();
  // Constraints changed by the events of one level, rescheduled once afterwards.
  const dirty: number[] = [];
  const isDirty = new Uint8Array(constraintCount());

  const tightLevel = (c: number) => (risingCount[c] > 0 ? (limits[c] - base[c]) / rate[c] : Infinity);
  const touch = (c: number) => {
    if (!isDirty[c]) {
      isDirty[c] = 1;
      dirty.push(c);
    }
  };
  const reschedule = (level: number) => {
    for (const c of dirty) {
      isDirty[c] = 0;
      if (saturated[c]) continue;
      const at = Math.max(level, tightLevel(c));
      if (at < scheduledAt[c]) {
        scheduledAt[c] = at;
        heap.push(at, c, ++version[c]);
      }
    }
    dirty.length = 0;
  };
  const startRising = (i: number) => {
    state[i] = rising;
    for (let k = termStart[i]; k < termStart[i + 1]; k++) {
      const c = termC[k];
      base[c] -= termA[k] * floor[i];
      rate[c] += termA[k];
      risingCount[c]++;
      touch(c);
    }
  };
  const settle = (i: number, at: number) => {
    if (state[i] === rising) {
      for (let k = termStart[i]; k < termStart[i + 1]; k++) {
        const c = termC[k];
        base[c] += termA[k] * at;
        rate[c] -= termA[k];
        // Counting rising sessions lets the rate return to exactly 0 instead of a rounding residue.
        if (--risingCount[c] === 0) rate[c] = 0;
        touch(c);
      }
    }
    // A session settled at its floor is already counted in base.
    state[i] = settled;
    value[i] = at;
  };
  const saturate = (c: number, level: number) => {
    saturated[c] = 1;
    for (let m = memberStart[c]; m < memberStart[c + 1]; m++) {
      const j = memberList[m];
      if (state[j] === rising) settle(j, Math.min(level, cap[j]));
      // Waiting at its floor, in this class or a later one: the limit leaves it no more.
      else if (state[j] === atFloor) settle(j, floor[j]);
    }
  };

  for (const members of sharingClasses(d, options.strategy, nowMs, cap)) {
    const open = members.filter((i) => state[i] === atFloor);
    if (open.length === 0) continue;
    const byFloor = sortedBy(open, floor);
    const byCap = sortedBy(open, cap);
    heap.clear();
    scheduledAt.fill(Infinity);
    let level = 0;
    let f = 0;
    let u = 0;
    for (;;) {
      reschedule(level);
      while (f < byFloor.length && state[byFloor[f]] !== atFloor) f++;
      while (u < byCap.length && state[byCap[u]] === settled) u++;
      while (heap.size > 0 && heap.topVersion() !== version[heap.topConstraint()]) heap.pop();
      const nextStart = f < byFloor.length ? floor[byFloor[f]] : Infinity;
      const nextCap = u < byCap.length ? cap[byCap[u]] : Infinity;
      const nextTight = heap.size > 0 ? heap.topLevel() : Infinity;
      const next = Math.min(nextStart, nextCap, nextTight);
      if (next === Infinity) break;
      level = Math.max(level, next);
      if (nextTight === next) {
        const c = heap.topConstraint();
        heap.pop();
        scheduledAt[c] = Infinity;
        const at = tightLevel(c);
        // The entry was early: the constraint fills later now (or never); look again then.
        if (at > level) touch(c);
        else saturate(c, level);
        continue;
      }
      // Every session event at this level at once, so that each constraint is rescheduled once.
      while (f < byFloor.length && floor[byFloor[f]] === level) {
        if (state[byFloor[f]] === atFloor) startRising(byFloor[f]);
        f++;
      }
      while (u < byCap.length && cap[byCap[u]] === level) {
        if (state[byCap[u]] === rising) settle(byCap[u], level);
        u++;
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
    const previous = d.previousW[i];
    if (held[i] || Number.isNaN(previous) || previous === value[i]) return undefined;
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
  const nodePowerW = new Float64Array(tree.length);
  const nodeCurrentA = new Float64Array(tree.length * 3);
  const addLoad = (path: number[], powerW: number, sitePhases: readonly Phase[]) => {
    if (powerW === 0) return;
    const perPhase = powerW / (voltage * sitePhases.length);
    for (const n of path) {
      nodePowerW[n] += powerW;
      for (const phase of sitePhases) nodeCurrentA[n * 3 + phaseIndex(phase)] += perPhase;
    }
  };
  for (const r of reservedLoads) addLoad(r.path, r.powerW, r.sitePhases);
  const sessions = new Array<SessionAllocation>(sessionCount);
  for (let i = 0; i < sessionCount; i++) {
    if (!held[i]) addLoad(sessionPath[i], value[i], sessionPhases[i]);
    sessions[inputIndex[i]] = {
      stationId: d.stationId[i],
      connectorId: d.connectorId[i],
      powerW: value[i],
      currentA: value[i] / (voltage * phaseCount[i]),
      phases: phaseCount[i] as 1 | 2 | 3,
      sitePhases: sessionPhases[i],
      paused: value[i] === 0,
      held: held[i] === 1,
    };
  }
  const nodes: NodeAllocation[] = tree.map((node, n) => ({
    nodeId: node.id,
    powerW: nodePowerW[n],
    currentA: { L1: nodeCurrentA[n * 3], L2: nodeCurrentA[n * 3 + 1], L3: nodeCurrentA[n * 3 + 2] },
    limit: nodeLimits[n],
  }));
  return { sessions, nodes };
}

/** The indices ordered by key[index], ties in the order given. */
function sortedBy(indices: readonly number[], key: Float64Array): Int32Array {
  return orderBy(Int32Array.from(indices), [key]);
}

/**
 * A stable bottom-up merge sort of indices by several keys (ascending, first key first), then
 * by `tieBreak` (is a before b?) where all keys are equal.
 * Written out rather than Array.prototype.sort with a comparator because sorting is the
 * largest single cost of a rebalance, and a loop over typed arrays avoids a call per comparison.
 */
function orderBy(indices: Int32Array, keys: readonly Float64Array[], tieBreak?: (a: number, b: number) => boolean): Int32Array {
  const n = indices.length;
  let from: Int32Array = indices;
  let to: Int32Array = new Int32Array(n);
  const first = keys[0];
  const before = (a: number, b: number): boolean => {
    // Most comparisons are settled by the first key.
    if (first[a] !== first[b]) return first[a] < first[b];
    for (let k = 1; k < keys.length; k++) {
      const key = keys[k];
      if (key[a] !== key[b]) return key[a] < key[b];
    }
    return tieBreak ? tieBreak(a, b) : false;
  };
  for (let width = 1; width < n; width *= 2) {
    for (let start = 0; start < n; start += 2 * width) {
      const middle = Math.min(start + width, n);
      const end = Math.min(start + 2 * width, n);
      let left = start;
      let right = middle;
      let out = start;
      // Taking from the right only when strictly before keeps equal keys in their order.
      while (left < middle && right < end) to[out++] = before(from[right], from[left]) ? from[right++] : from[left++];
      while (left < middle) to[out++] = from[left++];
      while (right < end) to[out++] = from[right++];
    }
    [from, to] = [to, from];
  }
  return from;
}

function phaseIndex(phase: Phase): number {
  return phase === 'L1' ? 0 : phase === 'L2' ? 1 : 2;
}

/**
 * The fields of the sessions, each read once into an array. Reading properties of objects the
 * caller built (spread copies, for instance) can cost far more than the arithmetic here, so
 * nothing below touches a session object again. Unknown numbers are NaN, a missing departure is
 * Infinity.
 */
interface Demands {
  stationId: string[];
  connectorId: number[];
  vehiclePhases: Uint8Array;
  minPowerW: Float64Array;
  maxPowerW: Float64Array;
  measuredW: Float64Array;
  previousW: Float64Array;
  priority: Float64Array;
  departureMs: Float64Array;
  energyNeededWh: Float64Array;
}

function emptyDemands(n: number): Demands {
  return {
    stationId: new Array<string>(n),
    connectorId: new Array<number>(n),
    vehiclePhases: new Uint8Array(n),
    minPowerW: new Float64Array(n),
    maxPowerW: new Float64Array(n),
    measuredW: new Float64Array(n),
    previousW: new Float64Array(n),
    priority: new Float64Array(n),
    departureMs: new Float64Array(n),
    energyNeededWh: new Float64Array(n),
  };
}

function readDemands(sessions: readonly ChargingSessionDemand[]): Demands {
  const n = sessions.length;
  const d = emptyDemands(n);
  for (let i = 0; i < n; i++) {
    const s = sessions[i];
    d.stationId[i] = s.stationId;
    d.connectorId[i] = s.connectorId;
    d.vehiclePhases[i] = s.vehiclePhases;
    d.minPowerW[i] = s.minPowerW;
    d.maxPowerW[i] = s.maxPowerW;
    d.measuredW[i] = s.measuredPowerW ?? NaN;
    d.previousW[i] = s.previousAllocationW ?? NaN;
    d.priority[i] = s.priority ?? 0;
    d.departureMs[i] = s.departure?.getTime() ?? Infinity;
    d.energyNeededWh[i] = s.energyNeededWh ?? NaN;
  }
  return d;
}

/** The same demands, entry i taken from entry order[i]. */
function reorder(from: Demands, order: Int32Array): Demands {
  const to = emptyDemands(order.length);
  for (let i = 0; i < order.length; i++) {
    const k = order[i];
    to.stationId[i] = from.stationId[k];
    to.connectorId[i] = from.connectorId[k];
    to.vehiclePhases[i] = from.vehiclePhases[k];
    to.minPowerW[i] = from.minPowerW[k];
    to.maxPowerW[i] = from.maxPowerW[k];
    to.measuredW[i] = from.measuredW[k];
    to.previousW[i] = from.previousW[k];
    to.priority[i] = from.priority[k];
    to.departureMs[i] = from.departureMs[k];
    to.energyNeededWh[i] = from.energyNeededWh[k];
  }
  return to;
}

/** Input indices in keep order, best first: priority, departure, already charging, station id, connector id. */
function rankSessions(d: Demands): Int32Array {
  const n = d.stationId.length;
  const byPriority = new Float64Array(n);
  const byCharging = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    byPriority[i] = -d.priority[i];
    byCharging[i] = d.previousW[i] > 0 ? 0 : 1;
  }
  const all = new Int32Array(n);
  for (let i = 0; i < n; i++) all[i] = i;
  // Station ids compare in code-unit order, not localeCompare: the result must not depend on the host's locale.
  const byKey = (a: number, b: number) =>
    d.stationId[a] !== d.stationId[b] ? d.stationId[a] < d.stationId[b] : d.connectorId[a] < d.connectorId[b];
  return orderBy(all, [byPriority, d.departureMs, byCharging], byKey);
}

/** The groups of sessions that rise together, in the order they are served. */
function sharingClasses(d: Demands, strategy: AllocationStrategy, nowMs: number, cap: Float64Array): number[][] {
  const all = new Array<number>(d.stationId.length);
  for (let i = 0; i < all.length; i++) all[i] = i;
  if (strategy === 'equal-share') return [all];
  const keys = strategy === 'priority'
    ? all.map((i) => -d.priority[i])
    : all.map((i) => laxitySeconds(d.departureMs[i], d.energyNeededWh[i], nowMs, cap[i]));
  const classes = new Map<number, number[]>();
  for (const i of all) {
    const group = classes.get(keys[i]);
    if (group) group.push(i);
    else classes.set(keys[i], [i]);
  }
  return [...classes.entries()].sort((a, b) => compareNumbers(a[0], b[0])).map(([, group]) => group);
}

/** Whole seconds to spare before departure at full power; Infinity without a departure. */
function laxitySeconds(departureMs: number, energyNeededWh: number, nowMs: number, capW: number): number {
  if (departureMs === Infinity) return Infinity;
  const left = (departureMs - nowMs) / 1000;
  const needed = energyNeededWh > 0 ? (capW > 0 ? (energyNeededWh / capW) * 3600 : Infinity) : 0;
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
