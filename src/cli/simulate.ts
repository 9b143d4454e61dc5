import { buildControlApi } from '../simulator/control-api.js';
import { Fleet } from '../simulator/fleet.js';
import { SCENARIO_NAMES, type ScenarioName } from '../simulator/scenarios.js';
import { loadTemplate } from '../simulator/templates.js';
import { registerIdTags } from '../simulator/csms-api.js';

/** "90", "90s", "10m", "2h", "1d" → seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a duration such as 90s, 10m, 2h or 1d`);
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

export interface SimulateOptions {
  csms: string;
  stations: number;
  connectors?: number;
  prefix: string;
  template: string;
  scenario: ScenarioName | 'none';
  sessions?: string;
  duration?: string;
  seed: number;
  speed: number;
  start?: string;
  password?: string;
  controlPort?: number;
  controlHost: string;
  /** REST API of the CSMS: the scenario's id tags are created there as Accepted before the run. */
  csmsApi?: string;
}

/** Starts a fleet (and its control API); resolves with a handle that stops both. */
export async function startSimulation(o: SimulateOptions, log: (event: string, details?: object) => void) {
  if (o.scenario !== 'none' && !SCENARIO_NAMES.includes(o.scenario)) throw new Error(`unknown scenario "${o.scenario}" (one of ${SCENARIO_NAMES.join(', ')}, none)`);
  if (o.scenario === 'file' && !o.sessions) throw new Error('--scenario file needs --sessions FILE.csv');
  const template = loadTemplate(o.template);
  const connectors = o.connectors ?? template.connectors;
  const durationS = o.duration ? parseDuration(o.duration) : undefined;
  const start = o.start ? new Date(o.start) : new Date();
  if (Number.isNaN(start.getTime())) throw new Error(`--start "${o.start}" is not an ISO-8601 time`);
  const fleet = new Fleet({
    csmsUrl: o.csms,
    stations: o.stations,
    prefix: o.prefix,
    template: { ...template, connectors },
    scenario: o.scenario,
    sessionsFile: o.sessions,
    durationS,
    seed: o.seed,
    speed: o.speed,
    start,
    password: o.password,
    log,
  });
  if (o.csmsApi) await registerIdTags(o.csmsApi, fleet.idTags());
  fleet.start();
  let control: Awaited<ReturnType<typeof buildControlApi>> | undefined;
  let controlUrl: string | undefined;
  if (o.controlPort !== undefined) {
    control = await buildControlApi(fleet);
    controlUrl = await control.listen({ port: o.controlPort, host: o.controlHost });
  }
  let stopTimer: NodeJS.Timeout | undefined;
  const stopped = new Promise<void>((resolve) => {
    if (durationS !== undefined) stopTimer = setTimeout(resolve, (durationS * 1000) / o.speed);
  });
  return {
    fleet,
    controlUrl,
    /** Resolves when --duration (in simulated time) has passed. */
    finished: stopped,
    async stop() {
      clearTimeout(stopTimer);
      fleet.stop();
      await control?.close();
    },
  };
}
