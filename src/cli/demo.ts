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
  // operator's curtailment to 600 kW from 20:00 to 21:00.
  const stationEntry = (s: { id: string }) => ({ id: s.id, kind: 'DC', maxPowerW: 150000 });
  await api('PUT', '/api/v1/sites/depot', {
    name: 'Bus depot',
    limit: { value: 1_000_000, unit: 'W' },
    groups: [{ id: 'cabinet-1', limit: { value: 300_000, unit: 'W' }, stations: fleet.stations.slice(0, 8).map(stationEntry) }],
    stations: fleet.stations.slice(8).map(stationEntry),
  });
  await api('PUT', '/api/v1/sites/depot/external-limit', { periods: [{ from: at(20).toISOString(), to: at(21).toISOString(), value: 600_000, unit: 'W' }] });
  for (const idTag of fleet.idTags()) await csms.store.upsertIdTag({ idTag, status: 'Accepted', expiryDate: null, parentIdTag: null });
  fleet.start();
  const control = await buildControlApi(fleet);
  const controlUrl = await control.listen({ port: o.port + 1, host: '127.0.0.1' });

  console.log(`
Ampyard demo: a bus depot with ${o.stations} simulated 150 kW DC chargers behind a 1 MW grid connection
(8 of them behind a 300 kW cabinet; the grid operator curtails the depot to 600 kW from 20:00 to 21:00),
the evening at ${o.speed}x speed. Ampyard shares the power and keeps every limit.

  REST API      ${urls.httpUrl}/api/v1/stations   (docs: ${urls.httpUrl}/docs)
  transactions  ${urls.httpUrl}/api/v1/transactions
  live events   curl -N ${urls.httpUrl}/api/v1/events
  the depot     ${urls.httpUrl}/api/v1/sites/depot  (allocation per charger, load per node)
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
    const curtailed = fleet.clock.now() >= at(20) && fleet.clock.now() < at(21);
    console.log(
      `[depot ${simTime} UTC] ${csms.registry.size} chargers connected, ${active.length} buses charging, site ${loadKw.toFixed(0)} of ${curtailed ? '600 (curtailed)' : '1000'} kW, cabinet ${cabinetKw.toFixed(0)} of 300 kW, ${all.length} transactions, ${energyKwh.toFixed(0)} kWh delivered`,
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
