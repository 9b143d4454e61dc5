import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { HostTraceFigures } from './host-trace.js';
import { machineDescription, ocppLoadBench, type OcppLoadReport } from './ocpp-load.js';
import { rebalanceBench } from './rebalance.js';
import { runPlannerReplanBench } from './planner-replan.js';
import { simulatorScale } from './simulator-scale.js';

const program = new Command('ampyard-bench')
  .description('Ampyard benchmarks; each scenario runs the CSMS as its own process on 127.0.0.1 and stops by itself')
  .option('--scenario <name>', 'steady | saturate | storm | rebalance | simulator-scale | planner-replan', 'steady')
  .option('--tls', 'storm: connect over TLS (security profile 2)')
  .addOption(new Option('--tls-key <key>', "with --tls: the server certificate's key (ECDSA P-256 or RSA 2048)").choices(['ecdsa', 'rsa']).default('ecdsa'))
  .option('--reconnect', 'storm: the stations are known already; provision them, drop every connection at once, and measure their reconnect')
  .option('--db <url>', 'database of the server (default: a fresh SQLite file); e.g. postgres://postgres@127.0.0.1:5432/test')
  .option('--api-port', "the server's API on a port of its own (config apiPort): /healthz is probed there, and also on new connections to the OCPP port")
  .option('--rtt <ms>', 'with --tls: each station is this many ms of round trip away from the server (a delayed link in the load generator)', (v) => Number.parseInt(v, 10), 0)
  .option('--set <key=value...>', "a top-level key of the server's configuration for this run, e.g. --set maxConcurrentHandshakes=32")
  .option('--no-docs', 'do not add a row to docs/benchmarks.md')
  .option('--iterations <n>', 'rounds to time (rebalance: default 2000; planner-replan: 30)', (v) => Number.parseInt(v, 10))
  .option('--stations <n>', 'stations (rebalance: connectors; planner-replan: plugged-in vehicles)', (v) => Number.parseInt(v, 10))
  .option('--steps <n>', 'planner-replan: 5-minute steps planned', (v) => Number.parseInt(v, 10), 288)
  .option('--duration <s>', 'measured seconds', (v) => Number.parseInt(v, 10), 30)
  .option('--interval <s>', 'seconds between one station\'s messages (steady; simulator-scale: meter value interval)', (v) => Number.parseInt(v, 10), 10)
  .option('--rounds <n>', 'steady, saturate: run the bare server and Ampyard this many times, alternately, and report the round with the median ratio', (v) => Number.parseInt(v, 10), 1)
  .option('--json <file>', 'also write the result as JSON')
  .option('--cpu-prof <dir>', 'write a V8 CPU profile of the server process into this directory')
  .option('--trace-host', "steady, saturate (Linux): sample the kernel's memory reclaim and the server's and load generator's wait for a core every 2 ms over the window; report which answers were in flight during reclaim and the p99 of the others");

program.parse();
const o = program.opts();
if (o.cpuProf) process.env.AMPYARD_BENCH_CPU_PROF_DIR = resolve(o.cpuProf);
let result: object;
switch (o.scenario) {
  case 'simulator-scale':
    result = await simulatorScale({ stations: o.stations ?? 5000, durationS: o.duration, sampleIntervalS: o.interval });
    break;
  case 'rebalance':
    result = await rebalanceBench({ connectors: o.stations ?? 1000, iterations: o.iterations ?? 2000 });
    break;
  case 'planner-replan': {
    const report = await runPlannerReplanBench({ vehicles: o.stations ?? 100, steps: o.steps, stepS: 300, iterations: o.iterations ?? 30, seed: 1 });
    result = report;
    if (o.docs) {
      const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
      addLogRow(
        `| ${new Date().toISOString().slice(0, 10)} | ${commit} | \`npm run bench -- --scenario planner-replan --stations ${report.vehicles} --steps ${report.steps}\` (${machineDescription()}) | one re-plan (LP, ${report.lpRows} rows × ${report.lpColumns} columns) p50 ${report.solveMsP50} / p99 ${report.solveMsP99} / max ${report.solveMsMax} ms over ${report.iterations} re-plans, ${report.fallbacks} fallbacks |\n`,
      );
    }
    break;
  }
  case 'steady':
  case 'saturate':
  case 'storm': {
    if (o.reconnect && o.scenario !== 'storm') {
      console.error('--reconnect is for --scenario storm');
      process.exit(2);
    }
    if (!Number.isInteger(o.rounds) || o.rounds < 1 || (o.scenario === 'storm' && o.rounds > 1)) {
      console.error('--rounds takes a whole number from 1, and more than 1 only for steady and saturate');
      process.exit(2);
    }
    if (o.traceHost && o.scenario === 'storm') {
      console.error('--trace-host is for steady and saturate');
      process.exit(2);
    }
    if (!Number.isInteger(o.rtt) || o.rtt < 0 || (o.rtt > 0 && !o.tls)) {
      console.error('--rtt takes a whole number of milliseconds, and needs --tls');
      process.exit(2);
    }
    const serverConfig: Record<string, string> = {};
    for (const pair of (o.set as string[] | undefined) ?? []) {
      const match = /^([A-Za-z][A-Za-z0-9]*)=(.+)$/.exec(pair);
      if (!match) {
        console.error(`--set takes key=value with a top-level configuration key, got "${pair}"`);
        process.exit(2);
      }
      serverConfig[match[1]!] = match[2]!;
    }
    const runOnce = () =>
      ocppLoadBench({
        scenario: o.scenario,
        stations: o.stations ?? (o.scenario === 'saturate' ? 100 : 1000),
        durationS: o.duration,
        intervalS: o.interval,
        tls: Boolean(o.tls),
        tlsKey: o.tlsKey,
        reconnect: Boolean(o.reconnect),
        db: o.db,
        apiPort: Boolean(o.apiPort),
        rttMs: o.rtt,
        serverConfig,
        traceHost: Boolean(o.traceHost),
      });
    // The machine's speed drifts over minutes, and the bare server and Ampyard run one after the
    // other (saturate: the bare server before and after): alternating them over several rounds and
    // taking the median ratio steadies the figure.
    const rounds = [];
    for (let i = 0; i < o.rounds; i++) rounds.push(await runOnce());
    const byRatio = [...rounds].sort((a, b) => a.cpuRatioToBaseline - b.cpuRatioToBaseline);
    const report = { ...byRatio[Math.floor((byRatio.length - 1) / 2)]!, ...(rounds.length > 1 ? { rounds: rounds.map(roundFigures) } : {}) };
    result = report;
    if (o.docs) {
      const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
      const figures =
        `${report.messagesPerSecond} msg/s, latency p50 ${report.latencyMs.p50} / p99 ${report.latencyMs.p99} / max ${report.latencyMs.max} ms, ` +
        `server ${report.serverCpuUsPerMessage} µs CPU/msg vs bare ws ${report.baselineCpuUsPerMessage}${report.baselineCpuUsPerMessageBeforeAfter ? ` (mean of ${report.baselineCpuUsPerMessageBeforeAfter.join(' before and ')} after)` : ''} (ratio ${report.cpuRatioToBaseline}), ` +
        `${report.rssBytesPerStation} B RSS/station, ${report.failures} failures, load generator ${report.loadgenCpuPct} % CPU` +
        (report.scenario === 'storm' ? `, ${report.allAcceptedAfterS === null ? `not all accepted (storm over after ${report.durationS} s)` : `all accepted after ${report.allAcceptedAfterS} s`}, /healthz max ${report.healthzMaxMs} ms (kept-alive ${report.healthzKeptAliveMaxMs}, new connection ${report.healthzNewConnectionMaxMs}${report.apiPort ? ` on the API port; new connection to the OCPP port ${report.healthzOcppPortMaxMs}` : ''}; ${report.teardownHealthzMaxMs} ms while the load generator dropped every connection after it), ${report.retriedUpgrades} upgrades retried after 503${typeof report.listenOverflows === 'number' ? `, ${report.listenOverflows} connections dropped on a full listen queue` : ''}` : '') +
        (report.tlsCipher ? `, ${report.tlsCipher}` : '') +
        (rounds.length > 1 ? `; the median of ${rounds.length} alternating rounds, ratios ${rounds.map((r) => r.cpuRatioToBaseline).join(', ')}` : '') +
        // The server's own view beside the probe's: a stall no probe happened to meet still shows here.
        (report.serverRuntime ? `; server event-loop delay max ${report.serverRuntime.eventLoopDelayMaxMs} ms, ${report.serverRuntime.gcOver10msCount} GC pauses over 10 ms, /metrics scrape up to ${report.serverRuntime.metricsScrapeMaxMs} ms` : '') +
        (report.hostTrace ? `; host trace: ${hostTraceText(report.hostTrace)}${report.baselineHostTrace ? `; bare server's run: ${hostTraceText(report.baselineHostTrace)}` : ''}` : '') +
        (report.reconnect
          ? `; provisioning before the outage: ${report.provisionedAfterS === null ? `${report.provisioningFailures} failures` : `all booted after ${report.provisionedAfterS} s`}, /healthz max ${report.provisioningHealthzMaxMs} ms; in the outage ${report.outageHealthzMaxMs} ms`
          : '');
      addLogRow(
        `| ${new Date().toISOString().slice(0, 10)} | ${commit} | \`npm run bench -- --scenario ${report.scenario} --stations ${report.stations}${o.scenario === 'storm' ? '' : ` --duration ${o.duration}`}${o.scenario === 'steady' ? ` --interval ${o.interval}` : ''}${o.rounds > 1 ? ` --rounds ${o.rounds}` : ''}${o.traceHost ? ' --trace-host' : ''}${o.reconnect ? ' --reconnect' : ''}${o.apiPort ? ' --api-port' : ''}${o.rtt > 0 ? ` --rtt ${o.rtt}` : ''}${Object.entries(serverConfig).map(([k, v]) => ` --set ${k}=${v}`).join('')}${o.tls ? ` --tls --tls-key ${o.tlsKey}` : ''}${o.db ? ' --db …' : ''}\` (${report.database}; ${machineDescription()}) | ${figures} |\n`,
      );
    }
    break;
  }
  default:
    console.error(`unknown scenario ${o.scenario}`);
    process.exit(2);
}
if (o.json) writeFileSync(o.json, JSON.stringify(result, null, 2));

/** A share as a percentage (a function declaration: the report is written above, before a const here is set). */
function pct(share: number): string {
  return `${Math.round(share * 1000) / 10} %`;
}

/** --trace-host's figures, for the docs row. */
function hostTraceText(t: HostTraceFigures): string {
  const damon = `DAMON ${t.damon.length === 0 ? 'not found' : t.damon.join('; ')}`;
  const reclaim = t.reclaimThreads.length === 0 ? 'no reclaim thread found' : `reclaim (${t.reclaimThreads.join(', ')}) ${t.reclaimBursts} bursts, ${t.reclaimCpuMs} ms CPU, ${pct(t.reclaimCoverShare)} of the window`;
  return `${damon}; ${reclaim}; ${t.slowAnswersDuringReclaim} of ${t.slowAnswers} answers over ${t.slowAnswerMs} ms in flight during reclaim (of all answers ${t.answersDuringReclaim} of ${t.answers}), p99 of those clear of it ${t.latencyP99ClearOfReclaimMs} ms; waiting for a core: server main thread ${t.mainThreadWaitMs} ms (${t.mainThreadWaitDuringReclaimMs} during reclaim), all server threads ${t.serverThreadsWaitMs} (${t.serverThreadsWaitDuringReclaimMs}), load generator ${t.loadgenWaitMs} (${t.loadgenWaitDuringReclaimMs}); main threads on a core during reclaim and outside it: server ${pct(t.mainThreadBusyDuringReclaim)} and ${pct(t.mainThreadBusyOutsideReclaim)}, load generator ${pct(t.loadgenMainThreadBusyDuringReclaim)} and ${pct(t.loadgenMainThreadBusyOutsideReclaim)}`;
}

/** One round's CPU figures, kept beside the median round's full report. */
function roundFigures(r: OcppLoadReport) {
  return {
    serverCpuUsPerMessage: r.serverCpuUsPerMessage,
    baselineCpuUsPerMessage: r.baselineCpuUsPerMessage,
    ...(r.baselineCpuUsPerMessageBeforeAfter ? { baselineCpuUsPerMessageBeforeAfter: r.baselineCpuUsPerMessageBeforeAfter } : {}),
    cpuRatioToBaseline: r.cpuRatioToBaseline,
    messagesPerSecond: r.messagesPerSecond,
  };
}

/** Adds a row at the end of the log table, the first table of docs/benchmarks.md (prose follows it). */
function addLogRow(row: string): void {
  const file = new URL('../../docs/benchmarks.md', import.meta.url);
  const text = readFileSync(file, 'utf8');
  const tableStart = text.indexOf('\n|');
  const tableEnd = tableStart < 0 ? -1 : text.indexOf('\n\n', tableStart + 1);
  const at = tableEnd < 0 ? text.length : tableEnd + 1;
  writeFileSync(file, text.slice(0, at) + row + text.slice(at));
}
// Exit once the output is flushed (process.exit() truncates a pending write to a pipe).
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`, () => process.exit(0));
