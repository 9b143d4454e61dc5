import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

export class StationOfflineError extends Error {
  constructor(stationId: string) {
    super(`${stationId} is offline`);
    this.name = 'StationOfflineError';
  }
}

export class CallErrorResponse extends Error {
  constructor(
    public readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'CallErrorResponse';
  }
}

interface QueuedCall {
  action: string;
  /** Built when sent, so that a queued MeterValues carries the transaction id its StartTransaction got. */
  build: () => unknown;
  /** Transaction-related messages survive a lost connection and are sent after reconnecting (OCPP 1.6 §4.7). */
  durable: boolean;
  resolve: (payload: any) => void;
  reject: (err: Error) => void;
  messageId?: string;
  timer?: NodeJS.Timeout;
}

export interface SimClientOptions {
  /** ws://host:port/ocpp (the station id is appended). */
  csmsUrl: string;
  stationId: string;
  password?: () => string | undefined;
  handleCall: (action: string, payload: any) => Promise<unknown> | unknown;
  onConnected: () => void;
  onDisconnected: () => void;
  callTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  random: () => number;
}

/**
 * The OCPP-J client side of one simulated station on plain `ws`: one outstanding CALL, a queue that
 * keeps transaction messages while offline, and reconnection with exponential back-off and jitter.
 * Kept small: one process runs thousands of these.
 */
export class SimClient {
  private socket: WebSocket | undefined;
  private readonly queue: QueuedCall[] = [];
  private inFlight: QueuedCall | undefined;
  private attempts = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** False while the connection is deliberately cut (by command or scenario) or the fleet stops. */
  private wanted = true;
  connected = false;

  constructor(private readonly opts: SimClientOptions) {}

  connect(): void {
    this.wanted = true;
    if (this.socket) return;
    const password = this.opts.password?.();
    const headers: Record<string, string> = {};
    if (password) headers.authorization = `Basic ${Buffer.from(`${this.opts.stationId}:${password}`).toString('base64')}`;
    const socket = new WebSocket(`${this.opts.csmsUrl.replace(/\/$/, '')}/${encodeURIComponent(this.opts.stationId)}`, ['ocpp1.6'], {
      headers,
      perMessageDeflate: false,
      handshakeTimeout: 10000,
    });
    this.socket = socket;
    socket.on('open', () => {
      this.connected = true;
      this.attempts = 0;
      this.opts.onConnected();
      this.pump();
    });
    socket.on('message', (data) => this.onMessage(data.toString()));
    socket.on('error', () => {
      /* the close event that follows decides what to do */
    });
    socket.on('close', () => this.onClose(socket));
  }

  /** Cuts the connection as a lost network would; queued transaction messages stay. */
  disconnect(): void {
    this.wanted = false;
    clearTimeout(this.reconnectTimer);
    this.socket?.terminate();
  }

  get queuedCount(): number {
    return this.queue.length + (this.inFlight ? 1 : 0);
  }

  call<T = any>(action: string, build: unknown | (() => unknown), opts: { durable?: boolean } = {}): Promise<T> {
    const durable = opts.durable ?? false;
    if (!this.connected && !durable) return Promise.reject(new StationOfflineError(this.opts.stationId));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ action, build: typeof build === 'function' ? (build as () => unknown) : () => build, durable, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (!this.connected || this.inFlight || !this.socket) return;
    const next = this.queue.shift();
    if (!next) return;
    this.inFlight = next;
    next.messageId = randomUUID();
    next.timer = setTimeout(() => {
      if (this.inFlight !== next) return;
      this.inFlight = undefined;
      if (next.durable) {
        // Resent later: the CSMS recognises a repeat, and the station must not lose a transaction message.
        this.queue.unshift(next);
        this.socket?.terminate();
      } else {
        next.reject(new Error(`${next.action} timed out`));
        this.pump();
      }
    }, this.opts.callTimeoutMs);
    this.socket.send(JSON.stringify([2, next.messageId, next.action, next.build()]));
  }

  private onMessage(text: string): void {
    let frame: any;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!Array.isArray(frame)) return;
    const [type, messageId] = frame;
    if (type === 2) {
      // Taken in the order the frames came, as a charger does: an answer that arrived in the same
      // read (our StartTransaction's, say) has been acted on before the CALL after it is handled.
      setImmediate(() => void this.answer(messageId, frame[2], frame[3]));
      return;
    }
    const pending = this.inFlight;
    if (!pending || pending.messageId !== messageId) return;
    clearTimeout(pending.timer);
    this.inFlight = undefined;
    if (type === 3) pending.resolve(frame[2]);
    else pending.reject(new CallErrorResponse(String(frame[2]), String(frame[3] ?? '')));
    // The next CALL is built after the caller has seen this answer: a queued MeterValues must carry
    // the transaction id that the StartTransaction before it just received.
    setImmediate(() => this.pump());
  }

  private async answer(messageId: string, action: string, payload: unknown): Promise<void> {
    let reply: unknown[];
    try {
      reply = [3, messageId, await this.opts.handleCall(action, payload)];
    } catch (err) {
      const code = err instanceof CallErrorResponse ? err.code : 'InternalError';
      reply = [4, messageId, code, (err as Error).message, {}];
    }
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(reply));
  }

  private onClose(socket: WebSocket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    const wasConnected = this.connected;
    this.connected = false;
    if (this.inFlight) {
      clearTimeout(this.inFlight.timer);
      const lost = this.inFlight;
      this.inFlight = undefined;
      if (lost.durable) this.queue.unshift(lost);
      else lost.reject(new StationOfflineError(this.opts.stationId));
    }
    // Only what must survive stays queued.
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (!this.queue[i]!.durable) this.queue.splice(i, 1)[0]!.reject(new StationOfflineError(this.opts.stationId));
    }
    if (wasConnected) this.opts.onDisconnected();
    if (this.wanted) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const base = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectMinMs * 2 ** this.attempts);
    this.attempts += 1;
    // Full jitter between half and one and a half times the back-off: thousands of stations that lost
    // the network together must not come back in the same millisecond.
    const delay = base * (0.5 + this.opts.random());
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.reconnectTimer.unref();
  }

  /** Stops for good: no reconnect; queued calls are rejected. */
  close(): void {
    this.wanted = false;
    clearTimeout(this.reconnectTimer);
    for (const q of this.queue.splice(0)) q.reject(new StationOfflineError(this.opts.stationId));
    this.socket?.close(1000);
    const socket = this.socket;
    setTimeout(() => socket?.terminate(), 1000).unref();
  }
}
