import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/config.js';
import { createCsms } from '../app.js';
import { runCompositeCommand } from './composite.js';
import { runPlanCommand } from './plan.js';
import { runDemo } from './demo.js';
import { startSimulation } from './simulate.js';

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
}

export function buildCli(): Command {
  const program = new Command('ampyard')
    .description('Ampyard: an open-source OCPP central system (CSMS) built for smart charging')
    .showHelpAfterError();

  program
    .command('serve')
    .description('run the CSMS: OCPP 1.6J WebSockets at /ocpp/{stationId}, REST API at /api/v1, OpenAPI docs at /docs')
    .option('-c, --config <file>', 'configuration file (YAML or JSON); environment variables and flags override it')
    .option('-p, --port <port>', 'OCPP WebSocket port, also HTTP API unless --api-port (env PORT; default 8080)', integer)
    .option('--host <address>', 'address to bind (env AMPYARD_HOST; default 0.0.0.0)')
    .option('--api-port <port>', 'serve the REST API, dashboard and metrics on their own port (env AMPYARD_API_PORT)', integer)
    .option('--api-host <address>', 'address the API port binds to (env AMPYARD_API_HOST; default: --host)')
    .option('--db <url>', 'sqlite:./data/ampyard.db (default) or postgres://user@host/db (env DATABASE_URL)')
    .addOption(new Option('--registration <policy>', 'unknown stations: open (accepted), pending (default: wait for an operator), closed (refused)').choices(['open', 'pending', 'closed']))
    .option('--tls-port <port>', 'also listen with TLS 1.2+ on this port (security profile 2)', integer)
    .option('--tls-cert <file>', 'PEM certificate (chain) for the TLS listener')
    .option('--tls-key <file>', 'PEM private key for the TLS listener')
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .action(async (opts) => {
      const started = process.hrtime.bigint();
      let config;
      try {
        const flags: Record<string, unknown> = {
          port: opts.port,
          host: opts.host,
          apiPort: opts.apiPort,
          apiHost: opts.apiHost,
          db: opts.db,
          registration: opts.registration,
          logLevel: opts.logLevel,
        };
        if (opts.tlsPort !== undefined || opts.tlsCert || opts.tlsKey) {
          flags['tls.port'] = opts.tlsPort;
          flags['tls.certFile'] = opts.tlsCert;
          flags['tls.keyFile'] = opts.tlsKey;
        }
        config = loadConfig({ file: opts.config, env: process.env, flags });
      } catch (err) {
        if (err instanceof ConfigError) {
          console.error(`ampyard: ${err.message}`);
          process.exit(2);
        }
        throw err;
      }
      const csms = await createCsms(config);
      const urls = await csms.start();
      csms.log.info({ startupMs: Number(process.hrtime.bigint() - started) / 1e6 }, 'ready');
      process.stdout.isTTY &&
        console.log(`\nAmpyard is running.\n  OCPP 1.6J:  ${urls.ocppUrl}/{stationId}${urls.ocppTlsUrl ? `\n  OCPP (TLS): ${urls.ocppTlsUrl}/{stationId}` : ''}\n  REST API:   ${urls.httpUrl}/api/v1/stations\n  API docs:   ${urls.httpUrl}/docs\n`);
      let stopping = false;
      const shutdown = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        csms.log.info({ signal }, 'shutting down');
        await csms.stop();
        process.exit(0);
      };
      process.on('SIGINT', () => void shutdown('SIGINT'));
      process.on('SIGTERM', () => void shutdown('SIGTERM'));
    });

  program
    .command('simulate')
    .description('run simulated OCPP 1.6J charge points with electric vehicles against a CSMS')
    .option('--csms <url>', 'OCPP endpoint of the CSMS; the station id is appended', 'ws://127.0.0.1:8080/ocpp')
    .option('-n, --stations <n>', 'number of stations', integer, 10)
    .option('--connectors <n>', 'connectors per station (default: the template\'s)', integer)
    .option('--prefix <text>', 'station id prefix', 'SIM')
    .option('-t, --template <name|file>', 'station template: ac-22kw-wallbox, ac-2x11kw-post, dc-150kw-depot, dc-2x300kw-hpc, or a JSON/YAML file', 'ac-2x11kw-post')
    .addOption(new Option('-s, --scenario <name>', 'who arrives when').choices(['depot', 'public', 'office', 'file', 'none']).default('public'))
    .option('--sessions <file>', 'sessions CSV for --scenario file (session_id,arrival,departure,requested_kwh,max_power_kw)')
    .option('-d, --duration <time>', 'stop after this much simulated time, e.g. 90s, 10m, 2h, 1d (default: run until stopped)')
    .option('--seed <n>', 'random seed: the same seed reproduces the same run', integer, 1)
    .option('--speed <factor>', 'simulated seconds per real second', Number, 1)
    .option('--start <time>', 'simulated start time (ISO-8601; default now)')
    .option('--password <text>', 'Basic-auth password of every station (security profile 1)')
    .option('--csms-api <url>', "the CSMS's REST API (e.g. http://127.0.0.1:8080): create the scenario's id tags there as Accepted first")
    .option('--control-port <port>', 'serve the simulator control API (docs at /docs) on this port', integer)
    .option('--control-host <address>', 'address of the control API', '127.0.0.1')
    .option('--log-level <level>', 'info prints station events, warn only problems', 'info')
    .action(async (opts) => {
      const quiet = opts.logLevel !== 'info';
      const log = (event: string, details: object = {}) => {
        if (!quiet) console.log(JSON.stringify({ time: new Date().toISOString(), event, ...details }));
      };
      let sim;
      try {
        sim = await startSimulation({ ...opts, prefix: opts.prefix }, log);
      } catch (err) {
        console.error(`ampyard simulate: ${(err as Error).message}`);
        process.exit(2);
      }
      console.error(
        `simulating ${sim.fleet.stations.length} stations (${sim.fleet.plannedVisits} planned vehicle visits) against ${opts.csms}` +
          (sim.controlUrl ? `; control API ${sim.controlUrl}/docs` : ''),
      );
      const stop = async () => {
        await sim.stop();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop());
      process.on('SIGTERM', () => void stop());
      await sim.finished;
      if (opts.duration) await stop();
    });

  program
    .command('demo')
    .description('the CSMS on a fresh embedded database with a simulated bus depot at a speeded-up clock')
    .option('-p, --port <port>', 'CSMS port; the simulator control API uses the next one', integer, 8080)
    .option('-n, --stations <n>', 'depot chargers', integer, 20)
    .option('--speed <factor>', 'simulated seconds per real second', Number, 120)
    .option('--db <url>', 'database (recreated at start)', 'sqlite:./data/demo.db')
    .action(async (opts) => {
      await runDemo(opts);
    });

  program
    .command('plan')
    .description('replay charging sessions under a scheduling policy and write the result (docs/planner-evaluation.md)')
    .requiredOption('--sessions <file>', 'CSV: session_id,arrival,departure,requested_kwh,max_power_kw[,estimated_departure]')
    .requiredOption('--capacity-kw <kW>', 'site capacity')
    .requiredOption('--policy <name>', 'uncontrolled | equal-share | edf | llf | mpc | offline')
    .option('--step <s>', 'time step in seconds', '300')
    .option('--prices <file>', 'CSV: start,price_per_kwh (a step function)')
    .option('--demand-charge <per-kW>', 'cost per kW of the peak')
    .requiredOption('--out <file>', 'result JSON')
    .action(async (opts) => {
      try {
        const { json, wallMs } = await runPlanCommand({ sessions: opts.sessions, step: opts.step, capacityKw: opts.capacityKw, policy: opts.policy, prices: opts.prices, demandCharge: opts.demandCharge, out: opts.out });
        console.error(`ampyard plan: ${json.policy}: ${json.summary.energy_delivered_pct} % delivered, peak ${json.summary.peak_kw} kW, ${Math.round(wallMs)} ms; written to ${opts.out}`);
      } catch (err) {
        console.error(`ampyard plan: ${(err as Error).message}`);
        process.exitCode = 2;
      }
    });

  program
    .command('composite')
    .description('print, as JSON, the composite schedule a conforming OCPP 1.6 charger must report for a case file (docs/smart-charging.md)')
    .requiredOption('-i, --input <file>', 'case file: { station, profiles, transactions, request }')
    .action(async (opts) => {
      try {
        process.stdout.write(`${await runCompositeCommand(opts.input)}\n`);
      } catch (err) {
        console.error(`ampyard composite: ${(err as Error).message}`);
        process.exitCode = 2;
      }
    });

  return program;
}

export async function run(argv: string[]): Promise<void> {
  await buildCli().parseAsync(argv);
}
