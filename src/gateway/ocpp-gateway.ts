import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import { OcppConnection, type FrameRecord } from '../ocpp/connection.js';
import { schemaValidator, type OcppSubprotocol } from '../ocpp/schemas.js';
import type { EventBus } from '../domain/ports.js';
import type { StationService } from '../domain/stations.js';
import type { ConnectionRegistry } from './registry.js';
import type { Metrics } from './metrics.js';
import { AdmissionQueue } from './admission-queue.js';

export interface GatewayOptions {
  ocppPath: string;
  maxFrameBytes: number;
  callTimeoutMs: number;
  rateLimit: { perSecond: number; burst: number };
  maxBadFrames: number;
  pingIntervalS: number;
  /** Upgrades waiting for admission or being admitted; above it new ones get 503 with Retry-After (admission control). */
  maxPendingUpgrades: number;
  /** Of those, admissions running at once; the rest wait their turn (see AdmissionQueue). */
  maxConcurrentAdmissions: number;
  /**
   * Of the admitted, WebSocket handshakes completed in one turn of the event loop; the rest complete
   * in the next turns. Admissions finish together: a reconnect's lookups take microtasks, and first
   * registrations wait for the same commit.
   */
  maxHandshakesPerTurn: number;
  /**
   * Of those, upgrades that will hash a password (scrypt, tens of ms of CPU): any with credentials
   * this process has not already checked for that station. They are bounded by the work they
   * queue, not only by their number.
   */
  maxPendingPasswordChecks: number;
}

export interface GatewayDeps {
  stations: StationService;
  registry: ConnectionRegistry;
  events: EventBus;
  metrics: Metrics;
  log: Logger;
  handleCall: (stationId: string, action: string, payload: unknown) => Promise<unknown>;
  onFrame: (record: FrameRecord) => void;
  /** Called once a station's connection is registered (e.g. to trigger a boot of a freshly accepted one). */
  onConnected?: (connection: OcppConnection) => void;
}

const supportedSubprotocols: OcppSubprotocol[] = ['ocpp1.6'];

/** OCPP 1.6 JSON charge box identities are printable and at most 48 characters; '/' would break the URL. */
const stationIdPattern = /^[\x21-\x2e\x30-\x7e]{1,48}$/;

function refuse(socket: Duplex, status: number, reason: string, headers: Record<string, string> = {}): void {
  const statusText = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status] ?? 'Error';
  const extra = Object.entries({ ...headers, ...(status === 401 ? { 'WWW-Authenticate': 'Basic realm="ampyard"' } : {}) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`,
  );
}

/**
 * Basic-auth credentials. A station id may itself contain ':', which Basic auth cannot delimit, so
 * credentials that begin with "{stationId}:" are split after the id rather than at the first colon.
 */
export function parseBasicAuth(header: string | undefined, stationId?: string): { username: string; password: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  if (stationId && decoded.startsWith(`${stationId}:`)) return { username: stationId, password: decoded.slice(stationId.length + 1) };
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * The OCPP WebSocket endpoint: `{ocppPath}/{stationId}` on any HTTP or HTTPS server it is attached
 * to. It checks the path, subprotocol and credentials before completing the upgrade, keeps one live
 * connection per station, and wires each connection to the handlers and the message log.
 */
export class OcppGateway {
  private readonly wss: WebSocketServer;
  private readonly admissions: AdmissionQueue;
  private readonly handshakes: AdmissionQueue;
  /** `{ocppPath}/`, before the station id. */
  private readonly ocppPrefix: string;
  private pendingPasswordChecks = 0;

  constructor(
    private readonly opts: GatewayOptions,
    private readonly deps: GatewayDeps,
  ) {
    // Compiled now rather than by the first station to connect: it takes about 200 ms, which held
    // the event loop in the first second of a connection storm.
    for (const subprotocol of supportedSubprotocols) schemaValidator(subprotocol);
    this.admissions = new AdmissionQueue(opts.maxConcurrentAdmissions);
    // Its jobs finish synchronously, so its concurrency is how many start in one turn.
    this.handshakes = new AdmissionQueue(opts.maxHandshakesPerTurn);
    this.ocppPrefix = opts.ocppPath.replace(/\/$/, '') + '/';
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxFrameBytes,
      handleProtocols: (offered) => supportedSubprotocols.find((p) => offered.has(p)) ?? false,
      // Per-message deflate costs CPU and memory per socket; OCPP frames are small.
      perMessageDeflate: false,
    });
  }

  attach(server: import('node:http').Server | import('node:https').Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head));
  }

  /** The checks that need no lookup happen at once; the admission itself waits its turn in the queue. */
  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { log, metrics } = this.deps;
    // Not a closure: one made here would keep this call's scope, the upgrade request with its
    // headers among it, for as long as the station stays connected (about 1 KB each).
    socket.on('error', destroyOnError);
    const reject = (status: number, reason: string, headers?: Record<string, string>) => {
      metrics.rejectedUpgrades.inc({ status: String(status) });
      // The peer address is a system call (getpeername): only asked for when it is logged.
      if (log.isLevelEnabled('info')) log.info({ url: req.url, status, reason, remote: req.socket.remoteAddress }, 'websocket upgrade refused');
      refuse(socket, status, reason, headers);
    };

    const url = req.url ?? '';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    const prefix = this.ocppPrefix;
    if (!path.startsWith(prefix)) return reject(404, `OCPP endpoint is ${prefix}{stationId}`);
    let stationId: string;
    try {
      stationId = decodeURIComponent(path.slice(prefix.length));
    } catch {
      return reject(400, 'station id is not valid URL encoding');
    }
    if (!stationIdPattern.test(stationId)) return reject(400, 'station id must be 1 to 48 printable ASCII characters without "/"');

    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!supportedSubprotocols.some((p) => offered.includes(p))) {
      return reject(400, `no supported OCPP subprotocol offered (supported: ${supportedSubprotocols.join(', ')})`);
    }

    const credentials = parseBasicAuth(req.headers.authorization, stationId);
    // Only upgrades that will hash a password are bounded by the CPU they queue: a station this
    // process has already checked reconnects in microseconds.
    const withPassword = credentials !== undefined && this.deps.stations.mayHashPassword(stationId, credentials.password);
    if (this.admissions.size >= this.opts.maxPendingUpgrades || (withPassword && this.pendingPasswordChecks >= this.opts.maxPendingPasswordChecks)) {
      // Over capacity: tell the station when to come back rather than letting every upgrade time out.
      // Soon: a backlog of admissions clears in well under a second, and a longer wait only leaves
      // the central system idle while stations sleep (1 or 2 s spreads the next wave).
      return reject(503, 'central system busy, retry later', { 'Retry-After': String(1 + Math.floor(Math.random() * 2)) });
    }
    if (withPassword) this.pendingPasswordChecks += 1;
    this.admissions.push(async () => {
      try {
        // A station that gave up while it waited has nothing left to admit.
        if (socket.destroyed) return;
        const tls = Boolean((req.socket as TLSSocket).encrypted);
        const decision = await this.deps.stations.admit({ stationId, credentials, tls });
        if (!decision.admitted) return reject(decision.httpStatus, decision.reason);
        await this.inHandshakeTurn(() => {
          // It may have given up during its lookup or while it waited for its turn.
          if (!socket.destroyed) this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, stationId, req));
        });
      } catch (err) {
        log.error({ err, stationId }, 'websocket admission failed');
        reject(503, 'central system could not admit the station, retry later', { 'Retry-After': '10' });
      } finally {
        if (withPassword) this.pendingPasswordChecks -= 1;
      }
    });
  }

  /**
   * Runs a handshake's completion on a turn of the event loop with room for it. Why: admissions
   * finish together (a reconnect's lookups all started in one turn and take microtasks; first
   * registrations wait for the same commit), each completing its handshake in that turn, and their
   * BootNotifications then came in together too.
   */
  private inHandshakeTurn(complete: () => void): Promise<void> {
    return new Promise((resolve, reject) =>
      this.handshakes.push(async () => {
        try {
          complete();
          resolve();
        } catch (err) {
          reject(err);
        }
      }),
    );
  }

  private onConnection(ws: WebSocket, stationId: string, req: IncomingMessage): void {
    const { registry, events, metrics, log } = this.deps;
    const connection = new OcppConnection(ws, {
      stationId,
      validator: schemaValidator(ws.protocol as OcppSubprotocol),
      handleCall: async (action, payload) => {
        const end = metrics.handleLatency.startTimer(action);
        try {
          return await this.deps.handleCall(stationId, action, payload);
        } finally {
          end();
        }
      },
      onFrame: (record) => {
        metrics.countFrame(record.action ?? '', record.direction, record.messageType === null ? 'invalid' : String(record.messageType));
        if (record.messageType === 4) metrics.errors.inc({ direction: record.direction, code: errorCodeOf(record.frame) });
        this.deps.onFrame(record);
      },
      callTimeoutMs: this.opts.callTimeoutMs,
      rateLimitPerSecond: this.opts.rateLimit.perSecond,
      rateLimitBurst: this.opts.rateLimit.burst,
      maxBadFrames: this.opts.maxBadFrames,
      pingIntervalMs: this.opts.pingIntervalS * 1000,
      log: new StationLog(log, stationId),
    });
    const previous = registry.set(connection);
    if (previous) {
      log.info({ stationId }, 'new connection replaces the previous one');
      previous.close(1000, 'replaced by a new connection');
    }
    metrics.connectedStations.set(registry.size);
    const at = new Date().toISOString();
    if (log.isLevelEnabled('info')) log.info({ stationId, remote: req.socket.remoteAddress, protocol: ws.protocol }, 'station connected');
    events.publish({ type: 'station.connected', stationId, at });
    connection.onClose((code, reason) => {
      const wasCurrent = registry.delete(connection);
      metrics.connectedStations.set(registry.size);
      log.info({ stationId, code, reason, replaced: !wasCurrent }, 'station disconnected');
      if (wasCurrent) {
        this.deps.stations.forget(stationId);
        events.publish({ type: 'station.disconnected', stationId, at: new Date().toISOString(), reason: `${code} ${reason}`.trim() });
      }
    });
    this.deps.onConnected?.(connection);
  }

  /** Closes every station connection (going away) and the WebSocket server. */
  close(): void {
    for (const connection of this.deps.registry.all()) connection.close(1001, 'central system shutting down');
    this.wss.close();
  }
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * A station's logger, made when it first logs: a pino child builds its own set of bound level
 * functions, about half a KB for every connected station, and most stations never log.
 */
class StationLog {
  private child: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly stationId: string,
  ) {}

  private get log(): Logger {
    return (this.child ??= this.parent.child({ stationId: this.stationId }));
  }

  warn(obj: object, msg: string): void {
    this.log.warn(obj, msg);
  }

  debug(obj: object, msg: string): void {
    this.log.debug(obj, msg);
  }
}

function errorCodeOf(frame: string): string {
  try {
    const parsed = JSON.parse(frame);
    return typeof parsed[2] === 'string' ? parsed[2] : 'unknown';
  } catch {
    return 'unknown';
  }
}
