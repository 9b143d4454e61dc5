import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { registerIdTags } from '../simulator/csms-api.js';
import { Fleet } from '../simulator/fleet.js';
import { loadTemplate } from '../simulator/templates.js';
import { processUsage, startServerProcess } from './server-process.js';

export interface SimulatorScaleOptions {
  stations: number;
  durationS: number;
  sampleIntervalS: number;
}

/**
 * Can one simulator process drive N stations with meter values every `sampleIntervalS` seconds
 * without falling behind? Runs the real CSMS as its own process, charges a vehicle on every
 * station, and reports the meter values sent against those due, the simulator's tick lag and CPU.
 */
export async function simulatorScale(o: SimulatorScaleOptions) {
  const dir = mkdtempSync(join(tmpdir(), 'ampyard-bench-'));
  const server = await startServerProcess(['--db', `sqlite:${join(dir, 'bench.db')}`, '--registration', 'open']);
  const template = loadTemplate('ac-22kw-wallbox');
  template.configuration.MeterValueSampleInterval = { ...template.configuration.MeterValueSampleInterval, value: String(o.sampleIntervalS) };
  const fleet = new Fleet({
    csmsUrl: server.ocppUrl,
    stations: o.stations,
    prefix: 'SCALE-',
    template,
    scenario: 'none',
    seed: 1,
    speed: 1,
    start: new Date(),
    reconnectMinMs: 500,
    reconnectMaxMs: 5000,
  });
  let sent = 0;
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();

  await registerIdTags(server.httpUrl, fleet.stations.map((s) => `EV-${s.id}`.slice(0, 20)));
  const t0 = Date.now();
  fleet.start();
  while (!fleet.stations.every((s) => s.registration === 'Accepted') && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 250));
  const bootedAfterS = (Date.now() - t0) / 1000;
  const accepted = fleet.stations.filter((s) => s.registration === 'Accepted').length;
  for (const s of fleet.stations) {
    s.plugIn(1, {
      id: `EV-${s.id}`,
      idTag: `EV-${s.id}`.slice(0, 20),
      batteryKwh: 500,
      arrivalSocPct: 10,
      targetSocPct: 100,
      acMaxCurrentA: 32,
      acPhases: 3,
      dcMaxPowerKw: 0,
      minAcCurrentA: 6,
      arrival: fleet.clock.now(),
      departure: new Date(Date.now() + 86400_000),
    });
  }
  // Count the periodic samples the stations record; every one is a MeterValues the station sends.
  const samplesNow = () => fleet.stations.reduce((sum, s) => sum + s.transactionHistory.reduce((n, t) => n + t.samples, 0), 0);
  await new Promise((r) => setTimeout(r, o.sampleIntervalS * 1000 + 1000));
  lag.reset();
  const startSamples = samplesNow();
  const cpu0 = process.cpuUsage();
  const server0 = server.usage();
  const measureStart = Date.now();
  await new Promise((r) => setTimeout(r, o.durationS * 1000));
  const elapsedS = (Date.now() - measureStart) / 1000;
  sent = samplesNow() - startSamples;
  const cpu = process.cpuUsage(cpu0);
  const serverUsage = server.usage();
  const queued = fleet.stations.reduce((n, s) => n + s.queuedMessages, 0);
  const result = {
    scenario: 'simulator-scale',
    stations: o.stations,
    acceptedStations: accepted,
    bootedAfterS,
    sampleIntervalS: o.sampleIntervalS,
    durationS: elapsedS,
    meterValuesDue: Math.round((o.stations * elapsedS) / o.sampleIntervalS),
    meterValuesSent: sent,
    queuedAtEnd: queued,
    simulatorCpuPct: Math.round(((cpu.user + cpu.system) / 1e6 / elapsedS) * 1000) / 10,
    simulatorRssMb: Math.round(processUsage(process.pid).rssBytes / 1e6),
    simulatorEventLoopLagP99Ms: Math.round(lag.percentile(99) / 1e4) / 100,
    serverCpuPct: Math.round(((serverUsage.cpuMicros - server0.cpuMicros) / 1e6 / elapsedS) * 1000) / 10,
    serverRssMb: Math.round(serverUsage.rssBytes / 1e6),
  };
  lag.disable();
  fleet.stop();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
  return result;
}
