import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/config.js';
import { createCsms } from '../app.js';
import { runCompositeCommand } from './composite.js';

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
    .option('-p, --port <port>', 'HTTP and OCPP WebSocket port (env PORT; default 8080)', integer)
    .option('--host <address>', 'address to bind (env AMPYARD_HOST; default 0.0.0.0)')
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
