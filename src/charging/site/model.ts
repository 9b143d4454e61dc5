/**
 * The electrical topology of a site, as the balancer and the safe envelope see it: a tree from
 * the grid connection through groups (transformer, feeder, cabinet, fuse: any depth) down to
 * stations and their connectors. Pure data; no I/O.
 */

export type Phase = 'L1' | 'L2' | 'L3';
export const phases: readonly Phase[] = ['L1', 'L2', 'L3'];

/** A limit in W (total active power) or in A (current on each phase, not summed over phases). */
export interface NodeLimit {
  value: number;
  unit: 'W' | 'A';
}

/** A limit that replaces the base limit of a node for a while (e.g. a grid operator's curtailment). */
export interface LimitOverride {
  from: Date;
  to: Date;
  limit: NodeLimit;
}

export interface SiteNode {
  id: string;
  limit?: NodeLimit;
  /** Time-limited caps (external limits); each lowers the node's limit while in force. */
  overrides?: LimitOverride[];
  groups: SiteNode[];
  /** Station ids directly under this node. */
  stations: string[];
}

export interface Site extends SiteNode {
  name: string;
  /** Phase-to-neutral supply voltage used to turn A into W, default 230 V. */
  supplyVoltage?: number;
}

/**
 * Which site phase each of the station's phases is wired to. A station wired L2-L3-L1 puts a
 * one-phase car on connector 1 onto the site's L2.
 */
export type PhaseRotation = readonly [Phase, Phase, Phase];
export const standardRotation: PhaseRotation = ['L1', 'L2', 'L3'];

export interface ConnectorElectrical {
  connectorId: number;
  /** Power the connector can deliver at most. */
  maxPowerW: number;
  /** AC: current per phase the connector can deliver at most (A). Absent for DC. */
  maxCurrentA?: number;
  /**
   * The connector's own wiring when it differs from the station's: a twin-socket post often
   * rotates its second socket, so a one-phase car there loads L2 of the site.
   */
  rotation?: PhaseRotation;
}

export interface StationElectricalSpec {
  stationId: string;
  kind: 'AC' | 'DC';
  /** AC phases the station is connected with (a DC station draws balanced three-phase power). */
  phases: 1 | 3;
  rotation: PhaseRotation;
  /** The station's own physical limit (ChargePointMaxProfile), W. */
  maxPowerW: number;
  connectors: ConnectorElectrical[];
}

/** Which site phase each of a connector's phases is wired to: its own rotation, else its station's. */
export function rotationOf(station: StationElectricalSpec, connectorId: number): PhaseRotation {
  for (const c of station.connectors) if (c.connectorId === connectorId && c.rotation) return c.rotation;
  return station.rotation;
}

/** A connector with a vehicle that is (or wants to be) charging. */
export interface ChargingSessionDemand {
  stationId: string;
  connectorId: number;
  /** AC phases the vehicle uses (1 for a one-phase car); DC: 3. */
  vehiclePhases: 1 | 2 | 3;
  /** Below this the vehicle cannot charge (AC: 6 A × V × phases); 0 when any power works. */
  minPowerW: number;
  /** What the vehicle and connector could take at most now. */
  maxPowerW: number;
  /** Latest measured power, if known; used to hand power a vehicle does not use on to others. */
  measuredPowerW?: number;
  /** What it was given last time, for hysteresis and the "measured below allocation" rule. */
  previousAllocationW?: number;
  /** Higher class first (default 0). */
  priority?: number;
  /** For "needs energy soonest" ordering. */
  departure?: Date;
  energyNeededWh?: number;
}

export const sessionKey = (stationId: string, connectorId: number) => `${stationId}#${connectorId}`;

/** Every node of the tree, parents before children, with the stations under each (directly or not). */
export function flattenSite(site: SiteNode): Array<{ node: SiteNode; path: string[]; stations: string[] }> {
  const out: Array<{ node: SiteNode; path: string[]; stations: string[] }> = [];
  const visit = (node: SiteNode, path: string[]): string[] => {
    const entry = { node, path: [...path, node.id], stations: [] as string[] };
    out.push(entry);
    const below = [...node.stations];
    for (const child of node.groups) below.push(...visit(child, entry.path));
    entry.stations = below;
    return below;
  };
  visit(site, []);
  return out;
}

/**
 * What constrains a node at time t: its base limit and every override in force. An override only
 * ever lowers what may flow (a grid operator's curtailment cannot raise a fuse), so each applies as
 * an additional cap; W and A limits hold side by side.
 */
export function limitOfNodeAt(node: SiteNode, t: Date): { maxW?: number; maxA?: number } {
  const inForce = (node.overrides ?? []).filter((o) => o.from.getTime() <= t.getTime() && t.getTime() < o.to.getTime()).map((o) => o.limit);
  const result: { maxW?: number; maxA?: number } = {};
  for (const l of node.limit ? [node.limit, ...inForce] : inForce) {
    if (l.unit === 'W') result.maxW = Math.min(result.maxW ?? Infinity, l.value);
    else result.maxA = Math.min(result.maxA ?? Infinity, l.value);
  }
  return result;
}

/**
 * The site as it must be seen for something that holds over [from, to]: every cap that is in force
 * at any moment of the window applies throughout it. A grant that lasts until `to` then fits a
 * curtailment that begins before it ends.
 */
export function siteOverWindow<T extends SiteNode>(node: T, from: Date, to: Date): T {
  const overrides = (node.overrides ?? [])
    .filter((o) => o.from.getTime() < to.getTime() && o.to.getTime() > from.getTime())
    .map((o) => ({ from, to: new Date(to.getTime() + 1), limit: o.limit }));
  return { ...node, overrides, groups: node.groups.map((g) => siteOverWindow(g, from, to)) };
}
