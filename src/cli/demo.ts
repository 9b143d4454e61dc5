import { rmSync } from 'node:fs';
import pino from 'pino';
import { createCsms } from '../app.js';
import { loadConfig } from '../config/config.js';
import { buildControlApi } from '../simulator/control-api.js';
import { Fleet, SpeedClock } from '../simulator/fleet.js';
import { loadTemplate } from '../simulator/templates.js';

export interface DemoOptions {
  port: number;
  stations: number;
  speed: number;
  db: string;
}

/**
 * `npm run demo`: the CSMS on a fresh embedded database and a simulated bus depot whose evening
 * starts at once at a speeded-up clock, so a newcomer sees stations connect, transactions start,
 * meter values flow and the API fill up within a minute.
 */
export async function runDemo(o: DemoOptions): Promise<void> {
  if (o.db.startsWith('sqlite:')) {
    const path = o.db.slice('sqlite:'.length);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
  }
  // The simulated evening begins two minutes before the first buses can arrive (18:00 at the depot).
  const today = new Date();
  const start = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(), 17, 58));
  const at = (h: number) => new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(), h));
  // The CSMS runs on the simulated clock too, so that profiles mean the same to both sides.
  const clock = new SpeedClock(start, o.speed);
  const config = loadConfig({ env: process.env, flags: { port: o.port, db: o.db, registration: 'open', logLevel: 'warn', heartbeatIntervalS: 300 } });
  config.smartCharging.balancer = { ...config.smartCharging.balancer, debounceMs: 50, housekeepingMs: 250, minUpdateIntervalS: 0 };
  const csms = await createCsms(config, { logger: pino({ level: 'warn' }), clock });
  const urls = await csms.start();
  const api = async (method: string, path: string, body: unknown) => {
    const res = await fetch(`${urls.httpUrl}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  };

  const fleet = new Fleet({
    csmsUrl: urls.ocppUrl.replace('0.0.0.0', '127.0.0.1'),
    stations: o.stations,
    prefix: 'DEPOT-',
    template: loadTemplate('dc-150kw-depot'),
    scenario: 'depot',
    durationS: 14 * 3600,
    seed: 7,
    speed: o.speed,
    start,
    clock,
  });
  // The depot: a 1 MW grid connection, the first 8 chargers behind a 300 kW cabinet, and the grid
  // operator's curtailment to 600 kW from 22:00 to 23:00.
  const stationEntry = (s: { id: string }) => ({ id: s.id, kind: 'DC', maxPowerW: 150000 });
  await api('PUT', '/api/v1/sites/depot', {
    name: 'Bus depot',
    limit: { value: 1_000_000, unit: 'W' },
    groups: [{ id: 'cabinet-1', limit: { value: 300_000, unit: 'W' }, stations: fleet.stations.slice(0, 8).map(stationEntry) }],
    stations: fleet.stations.slice(8).map(stationEntry),
  });
  await api('PUT', '/api/v1/sites/depot/external-limit', { periods: [{ from: at(22).toISOString(), to: at(23).toISOString(), value: 600_000, unit: 'W' }] });
  for (const idTag of fleet.idTags()) await csms.store.upsertIdTag({ idTag, status: 'Accepted', expiryDate: null, parentIdTag: null });
  // The fleet operator's side: the buses, tonight's timetable, and a night tariff. The planner
  // charges each bus by its departure, mostly in the cheap hours, and warns of any that will not make it.
  const timetable = fleet.timetable();
  for (const bus of timetable) {
    await api('PUT', `/api/v1/vehicles/${encodeURIComponent(bus.vehicleId)}`, { batteryKwh: bus.batteryKwh, maxPowerKw: bus.maxPowerKw, idTags: [bus.idTag] });
  }
  const csv = ['vehicle_id,site_id,arrival,departure,arrival_soc_pct,target_soc_pct']
    .concat(timetable.map((b) => [b.vehicleId, 'depot', b.arrival.toISOString(), b.departure.toISOString(), b.arrivalSocPct.toFixed(1), b.targetSocPct.toFixed(1)].join(',')))
    .join('\n');
  const imported = await fetch(`${urls.httpUrl}/api/v1/timetable`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv });
  if (!imported.ok) throw new Error(`timetable import: HTTP ${imported.status} ${await imported.text()}`);
  // The evening peak tariff until 21:00, the night tariff until 06:00.
  await api('PUT', '/api/v1/sites/depot/planning', {
    prices: [
      { start: at(0).toISOString(), pricePerKwh: 0.32 },
      { start: at(21).toISOString(), pricePerKwh: 0.12 },
      { start: at(30).toISOString(), pricePerKwh: 0.32 },
    ],
  });
  fleet.start();
  const control = await buildControlApi(fleet);
  const controlUrl = await control.listen({ port: o.port + 1, host: '127.0.0.1' });

  console.log(`
Ampyard demo: a bus depot with ${o.stations} simulated 150 kW DC chargers behind a 1 MW grid connection
(8 of them behind a 300 kW cabinet; the grid operator curtails the depot to 600 kW from 22:00 to 23:00),
the evening at ${o.speed}x speed. Ampyard shares the power and keeps every limit; the planner
charges each bus by its timetabled departure, in the night tariff from 21:00 where it can.

  REST API      ${urls.httpUrl}/api/v1/stations   (docs: ${urls.httpUrl}/docs)
  transactions  ${urls.httpUrl}/api/v1/transactions
  live events   curl -N ${urls.httpUrl}/api/v1/events
  the depot     ${urls.httpUrl}/api/v1/sites/depot  (allocation per charger, load per node)
  the plan      ${urls.httpUrl}/api/v1/sites/depot/plan  (power per bus per 5 minutes, shortfalls)
  alarms        ${urls.httpUrl}/api/v1/alarms?active=true
  simulator     ${controlUrl}/stations            (docs: ${controlUrl}/docs)

Stop with Ctrl-C.
`);
  const summary = setInterval(async () => {
    const active = await csms.store.listTransactions({ active: true, limit: 1000, offset: 0 });
    const all = await csms.store.listTransactions({ limit: 100000, offset: 0 });
    const energyKwh = all.reduce((sum, t) => sum + (t.energyWh ?? 0), 0) / 1000;
    const simTime = fleet.clock.now().toISOString().slice(11, 16);
    const loadKw = fleet.stations.reduce((sum, s) => sum + s.connectors.reduce((n, c) => n + c.powerW, 0), 0) / 1000;
    const cabinetKw = fleet.stations.slice(0, 8).reduce((sum, s) => sum + s.connectors.reduce((n, c) => n + c.powerW, 0), 0) / 1000;
    const curtailed = fleet.clock.now() >= at(22) && fleet.clock.now() < at(23);
    const plan = csms.planner.planOf('depot');
    const short = plan ? plan.vehicles.filter((v) => v.shortfallKwh >= 1).length + plan.expected.filter((v) => v.shortfallKwh >= 1).length : 0;
    console.log(
      `[depot ${simTime} UTC] ${csms.registry.size} chargers connected, ${active.length} buses plugged in, site ${loadKw.toFixed(0)} of ${curtailed ? '600 (curtailed)' : '1000'} kW, cabinet ${cabinetKw.toFixed(0)} of 300 kW, ${all.length} transactions, ${energyKwh.toFixed(0)} kWh delivered` +
        (plan ? `; plan: ${plan.vehicles.length} buses planned, ${plan.expected.length} expected, ${short} short` : ''),
    );
  }, 5000);

  const stop = async () => {
    clearInterval(summary);
    fleet.stop();
    await control.close();
    await csms.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}
