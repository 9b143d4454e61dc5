import { standardRotation, type NodeLimit, type Phase, type PhaseRotation, type Site, type SiteNode, type StationElectricalSpec } from '../charging/site/model.js';

/** A station in a site definition: its id, or its id with what the balancer must know of it. */
export type SiteStationEntry =
  | string
  | {
      id: string;
      kind?: 'AC' | 'DC';
      phases?: 1 | 3;
      /** The station's own limit (its ChargePointMaxProfile), W. */
      maxPowerW?: number;
      rotation?: [Phase, Phase, Phase];
      connectors?: number;
      /** Per connector (first entry: connector 1), its own wiring where it differs from the station's. */
      connectorRotations?: Array<[Phase, Phase, Phase] | null>;
      /** Per connector, W (default: the station's maxPowerW). */
      connectorMaxPowerW?: number;
      /** Priority class of this station's sessions under the 'priority' strategy (higher first). */
      priority?: number;
    };

export interface SiteGroupDefinition {
  id: string;
  limit?: NodeLimit;
  groups?: SiteGroupDefinition[];
  stations?: SiteStationEntry[];
}

/** The body of PUT /api/v1/sites/{siteId}. */
export interface SiteDefinition {
  name: string;
  /** How the balancer shares: equal shares (default), priority classes, or the earliest departure first. */
  strategy?: 'equal-share' | 'priority' | 'earliest-departure';
  limit?: NodeLimit;
  supplyVoltage?: number;
  groups?: SiteGroupDefinition[];
  stations?: SiteStationEntry[];
  /** What the charging planner optimises against; without it energy is free and only departures count. */
  planning?: PlanningSignals;
}

/** Prices, CO2 and the demand charge of a site: step functions from each start until the next. */
export interface PlanningSignals {
  prices?: Array<{ start: string; pricePerKwh: number }>;
  co2?: Array<{ start: string; kgPerKwh: number }>;
  /** What a kg of CO2 costs in the plan, in the currency of the prices. */
  co2CostPerKg?: number;
  /** Cost per kW of the billing period's peak. */
  demandChargePerKw?: number;
}

/** A limit from a grid operator or energy management system on one node, for a time. */
export interface ExternalLimit {
  nodeId: string;
  from: string;
  to: string;
  limit: NodeLimit;
}

export interface StoredSite {
  id: string;
  definition: SiteDefinition;
  externalLimits: ExternalLimit[];
  updatedAt: string;
}

/** Station defaults for entries that give only an id: a 22 kW three-phase AC station with one connector. */
export const defaultStationSpec = { kind: 'AC' as const, phases: 3 as const, maxPowerW: 22080, connectors: 1 };

export class SiteDefinitionError extends Error {}

/**
 * Turns a stored site into the pure core's model: the node tree with external limits as caps, and
 * an electrical spec per station. Throws SiteDefinitionError for a station or group id that
 * appears twice.
 */
export function siteModel(stored: StoredSite): { site: Site; stations: StationElectricalSpec[]; priorities: Map<string, number> } {
  const priorities = new Map<string, number>();
  const seenStations = new Set<string>();
  const seenNodes = new Set<string>([stored.id]);
  const stations: StationElectricalSpec[] = [];
  const caps = (nodeId: string) =>
    stored.externalLimits.filter((l) => l.nodeId === nodeId).map((l) => ({ from: new Date(l.from), to: new Date(l.to), limit: l.limit }));

  const takeStations = (entries: SiteStationEntry[] | undefined): string[] =>
    (entries ?? []).map((entry) => {
      const e = typeof entry === 'string' ? { id: entry } : entry;
      if (seenStations.has(e.id)) throw new SiteDefinitionError(`station ${e.id} appears more than once in the site`);
      seenStations.add(e.id);
      if ('priority' in e && e.priority !== undefined) priorities.set(e.id, e.priority);
      const maxPowerW = e.maxPowerW ?? defaultStationSpec.maxPowerW;
      const count = e.connectors ?? defaultStationSpec.connectors;
      stations.push({
        stationId: e.id,
        kind: e.kind ?? defaultStationSpec.kind,
        phases: e.phases ?? defaultStationSpec.phases,
        rotation: (e.rotation ?? standardRotation) as PhaseRotation,
        maxPowerW,
        connectors: Array.from({ length: count }, (_, i) => {
          const rotation = e.connectorRotations?.[i];
          return { connectorId: i + 1, maxPowerW: e.connectorMaxPowerW ?? maxPowerW, ...(rotation ? { rotation: rotation as PhaseRotation } : {}) };
        }),
      });
      return e.id;
    });

  const node = (g: SiteGroupDefinition): SiteNode => {
    if (seenNodes.has(g.id)) throw new SiteDefinitionError(`group id ${g.id} appears more than once in the site`);
    seenNodes.add(g.id);
    return { id: g.id, limit: g.limit, overrides: caps(g.id), stations: takeStations(g.stations), groups: (g.groups ?? []).map(node) };
  };

  const d = stored.definition;
  const site: Site = {
    id: stored.id,
    name: d.name,
    supplyVoltage: d.supplyVoltage,
    limit: d.limit,
    overrides: caps(stored.id),
    stations: takeStations(d.stations),
    groups: (d.groups ?? []).map(node),
  };
  for (const l of stored.externalLimits) {
    if (!seenNodes.has(l.nodeId)) throw new SiteDefinitionError(`external limit for unknown node ${l.nodeId}`);
  }
  return { site, stations, priorities };
}
