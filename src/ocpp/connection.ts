import { randomUUID } from 'node:crypto';
import type { WebSocket, RawData } from 'ws';
import { OcppConnectionClosedError, OcppError, OcppRequestInvalidError, OcppTimeoutError } from './errors.js';
import type { OcppSchemaValidator } from './schemas.js';

export const CALL = 2;
export const CALLRESULT = 3;
export const CALLERROR = 4;

export type FrameDirection = 'in' | 'out';

/** One frame as it crossed the wire, for the per-station message log. */
export interface FrameRecord {
  stationId: string;
  direction: FrameDirection;
  at: Date;
  messageType: number | null;
  messageId: string | null;
  action: string | null;
  frame: string;
}

/** Handles a CALL from the station; resolves with the CALLRESULT payload or throws an OcppError. */
export type CallHandler = (action: string, payload: any) => Promise<unknown>;

export interface OcppConnectionOptions {
  stationId: string;
  validator: OcppSchemaValidator;
  handleCall: CallHandler;
  onFrame?: (record: FrameRecord) => void;
  /** A station-bound CALL without an answer after this long fails (OCPP leaves the value open). */
  callTimeoutMs: number;
  /** Sustained CALLs per second a station may send; a burst of `rateLimitBurst` is tolerated. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /** After this many unparseable or rate-limited frames the connection is closed. */
  maxBadFrames: number;
  /** Keepalive: a WebSocket ping every this many ms; no pong by the next ping closes the socket. */
  pingIntervalMs: number;
  now?: () => Date;
  log?: { warn: (obj: object, msg: string) => void; debug?: (obj: object, msg: string) => void };
}

interface PendingCall {
  messageId: string;
  action: string;
  payload: unknown;
  frame: string;
  timeoutMs: number;
  resolve: (value: any) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

/**
 * OCPP-J RPC over one WebSocket: framing, schema validation in both directions, and the rule of
 * OCPP-J §4.1.1 that each side has at most one CALL outstanding. Our CALLs to the station wait in a
 * queue; the station's CALLs are handled one after another in arrival order, so a StartTransaction
 * is committed before the MeterValues that follow it are looked at.
 */
export class OcppConnection {
  readonly stationId: string;
  private readonly opts: OcppConnectionOptions;
  private readonly outgoing: PendingCall[] = [];
  private inFlight: PendingCall | null = null;
  private readonly incoming: Array<{ messageId: string; action: string; payload: unknown }> = [];
  private handlingIncoming = false;
  private tokens: number;
  private lastRefill: number;
  private badFrames = 0;
  private alive = true;
  private closed = false;
  private pingTimer?: NodeJS.Timeout;
  private readonly closeListeners: Array<(code: number, reason: string) => void> = [];

  constructor(
    private readonly socket: WebSocket,
    opts: OcppConnectionOptions,
  ) {
    this.opts = opts;
    this.stationId = opts.stationId;
    this.tokens = opts.rateLimitBurst;
    this.lastRefill = Date.now();
    socket.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    socket.on('close', (code: number, reason: Buffer) => this.onClose(code, reason.toString()));
    socket.on('error', (err: Error) => opts.log?.warn({ err: err.message }, 'socket error'));
    socket.on('pong', () => {
      this.alive = true;
    });
    if (opts.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => this.keepalive(), opts.pingIntervalMs);
      this.pingTimer.unref();
    }
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  onClose(listener: (code: number, reason: string) => void): void;
  onClose(code: number, reason: string): void;
  onClose(a: number | ((code: number, reason: string) => void), reason = ''): void {
    if (typeof a === 'function') {
      this.closeListeners.push(a);
      return;
    }
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pingTimer);
    // Only made when a call is waiting: an error's stack trace was a seventh of the CPU of 10,000
    // stations dropping at once, nearly all of them with nothing outstanding.
    if (this.inFlight || this.outgoing.length > 0) {
      const err = new OcppConnectionClosedError(this.stationId);
      if (this.inFlight) {
        clearTimeout(this.inFlight.timer);
        this.inFlight.reject(err);
        this.inFlight = null;
      }
      for (const queued of this.outgoing.splice(0)) queued.reject(err);
    }
    for (const l of this.closeListeners) l(a, reason);
  }

  /** Closes the socket; queued and outstanding calls fail with OcppConnectionClosedError. */
  close(code = 1000, reason = ''): void {
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(code, reason);
      // A peer that never completes the closing handshake must not hold the socket for ever.
      setTimeout(() => this.socket.terminate(), 2000).unref();
    }
    this.onClose(code, reason);
  }

  /**
   * Sends a CALL to the station once earlier ones are answered. The payload is validated before it
   * leaves (OcppError on violation) and the answer after it arrives.
   */
  call<T = any>(action: string, payload: unknown, timeoutMs = this.opts.callTimeoutMs): Promise<T> {
    if (this.closed) return Promise.reject(new OcppConnectionClosedError(this.stationId));
    try {
      this.opts.validator.validate(action, 'req', payload);
    } catch (err) {
      return Promise.reject(err instanceof OcppError ? new OcppRequestInvalidError(action, err) : err);
    }
    return new Promise<T>((resolve, reject) => {
      const messageId = randomUUID();
      const frame = JSON.stringify([CALL, messageId, action, payload]);
      this.outgoing.push({ messageId, action, payload, frame, timeoutMs, resolve, reject });
      this.pumpOutgoing();
    });
  }

  private pumpOutgoing(): void {
    if (this.inFlight || this.closed) return;
    const next = this.outgoing.shift();
    if (!next) return;
    this.inFlight = next;
    next.timer = setTimeout(() => {
      if (this.inFlight !== next) return;
      this.inFlight = null;
      next.reject(new OcppTimeoutError(next.action, next.timeoutMs));
      this.pumpOutgoing();
    }, next.timeoutMs);
    this.send(next.frame, CALL, next.messageId, next.action);
  }

  private send(frame: string, messageType: number, messageId: string | null, action: string | null): void {
    if (this.closed) return;
    this.opts.onFrame?.({ stationId: this.stationId, direction: 'out', at: this.now(), messageType, messageId, action, frame });
    this.socket.send(frame);
  }

  private now(): Date {
    return this.opts.now ? this.opts.now() : new Date();
  }

  private keepalive(): void {
    if (!this.alive) {
      this.opts.log?.warn({}, 'no pong since last ping, closing');
      this.socket.terminate();
      this.onClose(1006, 'keepalive timeout');
      return;
    }
    this.alive = false;
    this.socket.ping();
  }

  private takeToken(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.opts.rateLimitBurst, this.tokens + ((now - this.lastRefill) / 1000) * this.opts.rateLimitPerSecond);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private badFrame(reason: string): void {
    this.badFrames += 1;
    this.opts.log?.warn({ reason, badFrames: this.badFrames }, 'bad frame');
    if (this.badFrames >= this.opts.maxBadFrames) {
      this.opts.log?.warn({}, 'too many bad frames, closing connection');
      this.close(1008, 'too many bad frames');
    }
  }

  private sendError(messageId: string, code: string, description: string, details: object = {}): void {
    this.send(JSON.stringify([CALLERROR, messageId, code, description.slice(0, 500), details]), CALLERROR, messageId, null);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    // Frames still in flight after we decided to close are not processed (nor answered).
    if (this.closed) return;
    this.alive = true;
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8');
    let frame: unknown;
    try {
      frame = isBinary ? undefined : JSON.parse(text);
    } catch {
      frame = undefined;
    }
    const messageType = Array.isArray(frame) && typeof frame[0] === 'number' ? frame[0] : null;
    const messageId = Array.isArray(frame) && typeof frame[1] === 'string' ? frame[1] : null;
    const action = messageType === CALL && typeof (frame as unknown[])[2] === 'string' ? ((frame as unknown[])[2] as string) : null;
    this.opts.onFrame?.({ stationId: this.stationId, direction: 'in', at: this.now(), messageType, messageId, action, frame: text });

    if (!Array.isArray(frame) || messageId === null || messageId.length > 36) {
      // Without a usable message id the answer cannot be matched; OCPP-J has no better id than "-1".
      this.sendError(messageId ?? '-1', 'FormationViolation', isBinary ? 'binary frames are not OCPP-J' : 'frame is not a JSON array [type, id, …]');
      this.badFrame('unparseable frame');
      return;
    }
    switch (messageType) {
      case CALL:
        return this.onCall(frame, messageId);
      case CALLRESULT:
      case CALLERROR:
        return this.onAnswer(frame, messageType, messageId);
      default:
        this.sendError(messageId, 'ProtocolError', `unknown message type ${String(frame[0])}`);
        this.badFrame('unknown message type');
    }
  }

  private onCall(frame: unknown[], messageId: string): void {
    const [, , action, payload] = frame;
    if (frame.length !== 4 || typeof action !== 'string' || typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      this.sendError(messageId, 'FormationViolation', 'a CALL is [2, messageId, action, {payload}]');
      this.badFrame('malformed CALL');
      return;
    }
    if (!this.takeToken()) {
      // Not processed, so nothing is acknowledged and the station may send it again later.
      this.sendError(messageId, 'GenericError', 'rate limit exceeded, retry later');
      this.badFrame('rate limit exceeded');
      return;
    }
    if (!this.opts.validator.knows(action)) {
      this.sendError(messageId, 'NotImplemented', `unknown action ${action}`);
      return;
    }
    this.incoming.push({ messageId, action, payload });
    if (!this.handlingIncoming) void this.drainIncoming();
  }

  private async drainIncoming(): Promise<void> {
    this.handlingIncoming = true;
    try {
      while (this.incoming.length > 0 && !this.closed) {
        const { messageId, action, payload } = this.incoming.shift()!;
        try {
          this.opts.validator.validate(action, 'req', payload);
          const result = await this.opts.handleCall(action, payload);
          this.opts.validator.validate(action, 'conf', result);
          this.send(JSON.stringify([CALLRESULT, messageId, result]), CALLRESULT, messageId, action);
        } catch (err) {
          if (err instanceof OcppError) {
            this.sendError(messageId, err.code, err.message, err.details);
          } else {
            this.opts.log?.warn({ action, err: (err as Error).message }, 'handler failed');
            this.sendError(messageId, 'InternalError', 'the central system could not process this message; nothing was stored');
          }
        }
      }
    } finally {
      this.handlingIncoming = false;
    }
  }

  private onAnswer(frame: unknown[], messageType: number, messageId: string): void {
    const pending = this.inFlight;
    if (!pending || pending.messageId !== messageId) {
      this.opts.log?.warn({ messageId }, 'answer to no outstanding call, ignored');
      return;
    }
    clearTimeout(pending.timer);
    this.inFlight = null;
    if (messageType === CALLRESULT) {
      const payload = frame[2];
      try {
        this.opts.validator.validate(pending.action, 'conf', payload);
        pending.resolve(payload);
      } catch (err) {
        const e = err as OcppError;
        pending.reject(new OcppError(e.code, `the station's ${pending.action} answer is invalid: ${e.message}`, { ...e.details, payload }));
      }
    } else {
      const [, , code, description, details] = frame;
      pending.reject(
        new OcppError(String(code ?? 'GenericError'), String(description ?? ''), (details && typeof details === 'object' ? details : {}) as Record<string, unknown>),
      );
    }
    this.pumpOutgoing();
  }
}
