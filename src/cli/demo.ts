import { rmSync } from 'node:fs';
import pino from 'pino';
import { createCsms } from '../app.js';
import { loadConfig } from '../config/config.js';
import { buildControlApi } from '../simulator/control-api.js';
import { Fleet } from '../simulator/fleet.js';
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
  const config = loadConfig({ env: process.env, flags: { port: o.port, db: o.db, registration: 'open', logLevel: 'warn', heartbeatIntervalS: 300 } });
  const csms = await createCsms(config, { logger: pino({ level: 'warn' }) });
  const urls = await csms.start();

  // The simulated evening begins two minutes before the first buses can arrive (18:00 at the depot).
  const today = new Date();
  const start = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(), 17, 58));
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
  });
  for (const idTag of fleet.idTags()) await csms.store.upsertIdTag({ idTag, status: 'Accepted', expiryDate: null, parentIdTag: null });
  fleet.start();
  const control = await buildControlApi(fleet);
  const controlUrl = await control.listen({ port: o.port + 1, host: '127.0.0.1' });

  console.log(`
Ampyard demo: a bus depot with ${o.stations} simulated 150 kW DC chargers, the evening at ${o.speed}x speed.

  REST API      ${urls.httpUrl}/api/v1/stations   (docs: ${urls.httpUrl}/docs)
  transactions  ${urls.httpUrl}/api/v1/transactions
  live events   curl -N ${urls.httpUrl}/api/v1/events
  simulator     ${controlUrl}/stations            (docs: ${controlUrl}/docs)

Stop with Ctrl-C.
`);
  const summary = setInterval(async () => {
    const active = await csms.store.listTransactions({ active: true, limit: 1000, offset: 0 });
    const all = await csms.store.listTransactions({ limit: 100000, offset: 0 });
    const energyKwh = all.reduce((sum, t) => sum + (t.energyWh ?? 0), 0) / 1000;
    const simTime = fleet.clock.now().toISOString().slice(11, 16);
    console.log(`[depot ${simTime} UTC] ${csms.registry.size} stations connected, ${active.length} buses charging, ${all.length} transactions, ${energyKwh.toFixed(1)} kWh delivered`);
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
