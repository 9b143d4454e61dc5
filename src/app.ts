import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createSecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { v16CallHandler, type V16Services } from './adapters/v16/incoming.js';
import { buildApi } from './api/routes.js';
import { plannerDefaults, type Config } from './config/config.js';
import { AuthorizationService } from './domain/authorization.js';
import { InProcessEventBus, systemClock } from './domain/events.js';
import type { Clock } from './domain/ports.js';
import { ChargingProfileService } from './domain/charging-profiles.js';
import { FailsafeInstaller } from './domain/failsafe.js';
import { LiveLoad } from './domain/live-load.js';
import { SiteBalancer } from './domain/site-balancer.js';
import { SitePlanner } from './domain/site-planner.js';
import { StationService } from './domain/stations.js';
import { TransactionService } from './domain/transactions.js';
import { LocalCommandSender } from './gateway/commands.js';
import { MessageLogWriter } from './gateway/message-log.js';
import { createMetrics } from './gateway/metrics.js';
import { OcppGateway } from './gateway/ocpp-gateway.js';
import { PacedPlainListener } from './gateway/paced-listener.js';
import { PacedTlsListener } from './gateway/tls-listener.js';
import { ConnectionRegistry } from './gateway/registry.js';
import { KyselyStore } from './store/kysely-store.js';

export interface Csms {
  config: Config;
  log: Logger;
  store: KyselyStore;
  services: V16Services;
  commands: LocalCommandSender;
  registry: ConnectionRegistry;
  http: FastifyInstance;
  messageLog: MessageLogWriter;
  balancer: SiteBalancer;
  planner: SitePlanner;
  /** Listens on the configured ports; resolves with the actual addresses (port 0 picks a free one). */
  start(): Promise<{ httpUrl: string; ocppUrl: string; ocppTlsUrl?: string }>;
  stop(): Promise<void>;
}

/** Wires storage, domain services, the OCPP gateway and the REST API into one CSMS node. */
export async function createCsms(config: Config, opts: { logger?: Logger; clock?: Clock } = {}): Promise<Csms> {
  const log = opts.logger ?? pino({ level: config.logLevel });
  const clock = opts.clock ?? systemClock;
  const store = await KyselyStore.open(config.db, {
    sqliteSynchronous: config.sqliteSynchronous,
    onConnectionError: (err) => log.warn({ err: err.message }, 'idle database connection lost; the pool opens a new one'),
  });
  const events = new InProcessEventBus((err) => log.error({ err }, 'event listener failed'));
  const authorization = new AuthorizationService(store, clock);
  const stations = new StationService(store, events, clock, {
    registration: config.registration,
    heartbeatIntervalS: config.heartbeatIntervalS,
    retryIntervalS: config.retryIntervalS,
  });
  const transactions = new TransactionService(store, events, clock, authorization, { allowConcurrentTx: config.allowConcurrentTx });
  const chargingProfiles = new ChargingProfileService(store, events, clock, { verifyDurationS: config.smartCharging.verifyDurationS, supplyVoltage: config.smartCharging.supplyVoltage });
  const services: V16Services = { stations, authorization, transactions, chargingProfiles, store, events, clock };
  const metrics = createMetrics();
  const registry = new ConnectionRegistry();
  const commands = new LocalCommandSender(registry, services, metrics);
  chargingProfiles.useSender(commands);
  const liveLoad = new LiveLoad(events);
  const failsafe = new FailsafeInstaller(
    store,
    events,
    clock,
    commands,
    chargingProfiles,
    () => balancer,
    { horizonS: config.smartCharging.balancer.failsafeHorizonS, fraction: config.smartCharging.balancer.failsafeFraction },
    log.child({ component: 'failsafe' }),
  );
  const balancer: SiteBalancer = new SiteBalancer(
    store,
    events,
    clock,
    commands,
    liveLoad,
    { ...config.smartCharging.balancer, supplyVoltage: config.smartCharging.supplyVoltage, log: log.child({ component: 'balancer' }) },
    (siteId, stationIds) => failsafe.install(siteId, stationIds),
  );
  const plannerConfig = { ...plannerDefaults(), ...config.smartCharging.planner };
  const planner = new SitePlanner(
    store,
    events,
    clock,
    {
      ...plannerConfig,
      debounceMs: config.smartCharging.balancer.debounceMs,
      housekeepingMs: config.smartCharging.balancer.housekeepingMs,
      supplyVoltage: config.smartCharging.supplyVoltage,
      log: log.child({ component: 'planner' }),
    },
  );
  const planning = config.smartCharging.balancer.enabled && plannerConfig.enabled;
  if (planning) {
    balancer.usePlans(planner);
    planner.onPlanned = (siteId) => balancer.touchSite(siteId);
  }
  if (config.smartCharging.verifyProfiles) {
    services.afterProfileInstalled = (stationId, connectorId, unit) => {
      // After the answer has gone back to the caller: ask the station what it now does.
      setImmediate(() =>
        chargingProfiles.verify(stationId, connectorId, unit).catch((err) => log.warn({ stationId, err: (err as Error).message }, 'could not verify the installed profile')),
      );
    };
  }
  const messageLog = new MessageLogWriter(store, {
    flushMs: 200,
    retentionDays: config.messageLog.retentionDays,
    maxPerStation: config.messageLog.maxPerStation,
    onError: (err) => log.error({ err }, 'message log write failed'),
  });
  const handleCall = v16CallHandler(services);
  const gateway = new OcppGateway(
    {
      ocppPath: config.ocppPath,
      maxFrameBytes: config.maxFrameBytes,
      callTimeoutMs: config.callTimeoutMs,
      rateLimit: config.rateLimit,
      maxBadFrames: config.maxBadFrames,
      pingIntervalS: config.pingIntervalS,
      maxPendingUpgrades: config.maxPendingUpgrades,
      maxConcurrentAdmissions: config.maxConcurrentAdmissions,
      maxHandshakesPerTurn: config.maxHandshakesPerTurn,
      maxPendingPasswordChecks: config.maxPendingPasswordChecks,
    },
    {
      stations,
      registry,
      events,
      metrics,
      log,
      handleCall: (stationId, action, payload) => handleCall(stationId, action, payload),
      onFrame: (record) => messageLog.append(record),
    },
  );

  const http = Fastify({
    // Request lines stay out of the log (level warn); the API logs what goes wrong.
    loggerInstance: log.child({ component: 'api' }, { level: log.levelVal > 40 ? log.level : 'warn' }) as unknown as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
  }) as unknown as FastifyInstance;
  await buildApi(http, { services, commands, registry, metrics, messageLog, config, balancer, liveLoad, planner });

  // The OCPP ports. Without an API port of its own, the plain port's HTTP server is the API's and
  // serves both; with one, the OCPP ports answer only upgrades and /healthz (for load balancers).
  const ocppRequests = (req: IncomingMessage, res: ServerResponse) => {
    if (config.apiPort === undefined || (req.url ?? '').split('?')[0] === '/healthz') return http.routing(req, res);
    res.writeHead(404, { 'Content-Type': 'text/plain', Connection: 'close' }).end('This port serves OCPP WebSocket connections and /healthz; the API has a port of its own.\n');
  };
  const overPlain = config.apiPort === undefined ? http.server : createHttpServer(ocppRequests);
  gateway.attach(overPlain);
  // New connections are read a few at a time (gateway/paced-listener.ts).
  const plainListener = new PacedPlainListener(overPlain, {
    concurrency: config.maxConcurrentNewConnections,
    placeMs: 1000,
    acceptsPerTurn: config.acceptsPerTurn,
    firstRequestTimeoutMs: 30_000,
    // On one port for everything, only the chargers' upgrades wait their turn, so that /healthz and
    // the API on a new connection are answered during a storm. Each new connection's first bytes are
    // then read as they come, about 30 µs of CPU a connection and longer stalls of the event loop
    // in a burst (paced-listener.ts); with the API on a port of its own that is not worth it.
    ...(config.apiPort === undefined ? { pacedPath: `${config.ocppPath.replace(/\/$/, '')}/` } : {}),
  });

  let tlsListener: PacedTlsListener | undefined;
  if (config.tls) {
    // The TLS listener does the handshakes; this server sees only connections already secure.
    const overTls = createHttpServer(ocppRequests);
    gateway.attach(overTls);
    tlsListener = new PacedTlsListener(overTls, {
      secureContext: createSecureContext({ cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile), minVersion: 'TLSv1.2' }),
      concurrency: config.maxConcurrentHandshakes,
      placeMs: config.handshakePlaceMs,
      acceptsPerTurn: config.acceptsPerTurn,
      // As a charger on a slow mobile link may need, well short of Node's default of 120 s.
      handshakeTimeoutMs: 30_000,
    });
  }

  const urlOf = (scheme: string, address: AddressInfo) => {
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address === '0.0.0.0' ? '127.0.0.1' : address.address;
    return `${scheme}://${host}:${address.port}`;
  };

  return {
    config,
    log,
    store,
    services,
    commands,
    registry,
    http,
    messageLog,
    balancer,
    planner,
    async start() {
      messageLog.start();
      if (config.smartCharging.balancer.enabled) await balancer.start();
      if (planning) await planner.start();
      // A backlog the size of a reconnect storm: with Node's default of 511, connection attempts beyond
      // it are dropped and the chargers' TCP retries them 1, 3, 7 s later (the kernel caps it at somaxconn).
      await http.ready();
      const address = await plainListener.listen({ host: config.host, port: config.port, backlog: listenBacklog });
      let httpUrl = urlOf('http', address);
      if (config.apiPort !== undefined) {
        await http.listen({ host: config.apiHost ?? config.host, port: config.apiPort });
        httpUrl = urlOf('http', http.server.address() as AddressInfo);
      }
      const result: { httpUrl: string; ocppUrl: string; ocppTlsUrl?: string } = {
        httpUrl,
        ocppUrl: `${urlOf('ws', address)}${config.ocppPath}`,
      };
      if (tlsListener && config.tls) {
        const address = await tlsListener.listen({ port: config.tls.port, host: config.tls.host ?? config.host, backlog: listenBacklog });
        result.ocppTlsUrl = `${urlOf('wss', address)}${config.ocppPath}`;
      }
      // What the kernel grants, for whoever sizes a host for storms (ops notes in docs/benchmarks.md).
      log.info({ ...result, db: store.description, registration: config.registration, listenBacklog: grantedBacklog(listenBacklog), acceptsPerTurn: plainListener.acceptsPerTurn }, 'ampyard listening');
      return result;
    },
    async stop() {
      planner.stop();
      balancer.stop();
      gateway.close();
      await tlsListener?.close();
      await plainListener.close();
      await http.close();
      await messageLog.stop();
      await store.close();
    },
  };
}

const listenBacklog = 8192;

/**
 * The listen backlog Linux grants: the one asked for, capped at net.core.somaxconn (4096 by default
 * since Linux 5.4). Connections beyond it that arrive before the process accepts them are dropped,
 * and each charger's TCP stack tries again 1, 3, 7 s later. Elsewhere: the one asked for.
 */
function grantedBacklog(asked: number): number {
  try {
    const cap = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    return Number.isFinite(cap) && cap > 0 ? Math.min(asked, cap) : asked;
  } catch {
    return asked;
  }
}
