/**
 * The load generator of the benchmarks: a separate process on plain `ws` (no RPC library), so that
 * it is not the bottleneck. Each simulated station keeps at most one CALL outstanding, as OCPP
 * requires. Reads its task as JSON from argv[2]; prints its result as JSON on stdout. When started
 * with an IPC channel it sends the parent each `LoadPhase` as it begins, so that the parent can time
 * the server over the phase measured only.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import WebSocket from 'ws';

export interface LoadTask {
  scenario: 'steady' | 'saturate' | 'storm';
  /** ws://host:port/ocpp (the station id is appended). */
  url: string;
  stations: number;
  durationS: number;
  /** steady: seconds between a station's messages. */
  intervalS: number;
  /** How many stations open their connection at once while ramping up (steady, saturate; storm --reconnect: provisioning). */
  connectBatch: number;
  prefix: string;
  /** Basic-auth password (the TLS listener needs security profile 2: TLS plus Basic auth). */
  password?: string;
  /** wss: the cipher suites the stations offer, over TLS 1.2 (OpenSSL names, colon-separated). */
  tlsCiphers?: string;
  /** wss: a round trip of this many ms between each station and the server (half each way), as on a mobile network. */
  rttMs?: number;
  /**
   * storm: the stations are known to the server already. They are brought in and booted first
   * (provisioning), all lose their connection at once (outage), then all reconnect at once (the
   * storm, the phase measured).
   */
  reconnect?: boolean;
  /** steady, saturate: note when each answer of the window was sent, beside its latency (`--trace-host`). */
  traceAnswers?: boolean;
}

/**
 * The phases of a run, announced to the parent as each begins. A storm has `provisioning` and
 * `outage` (with --reconnect) and `storm`; steady and saturate have `measure`, their window of
 * counted messages (not connecting and booting the stations, nor a steady run's ramp). `done` ends
 * the phase measured.
 */
export type LoadPhase = 'provisioning' | 'outage' | 'storm' | 'measure' | 'done';

export interface LoadResult {
  /** storm: seconds from the start of the storm (not of provisioning) at which each station was booted: how the storm drains. */
  acceptedAtS: number[];
  /** Why stations failed, by message (at most the first 80 characters), for the report. */
  failureReasons: Record<string, number>;
  connected: number;
  failures: number;
  answered: number;
  /** steady, saturate: the CALLs answered in the measured window, by action. */
  answeredByAction: Record<string, number>;
  durationS: number;
  latencies: number[];
  /** steady, saturate: the latencies of each action's CALLs in the measured window (at most 50,000 each, a uniform sample). */
  latenciesByAction: Record<string, number[]>;
  bootLatencies: number[];
  allAcceptedAfterS: number | null;
  loadgenCpuPct: number;
  retries: number;
  /** reconnect: seconds until every station was booted once before the outage (null: some failed). */
  provisionedAfterS?: number | null;
  provisioningFailures?: number;
  provisioningFailureReasons?: Record<string, number>;
  /** wss: the protocol and cipher suite the first station's connection negotiated. */
  tlsCipher?: string;
  /** With `traceAnswers`: the window's answers as [sent at, ms since the epoch; latency, ms] (a uniform sample of at most 200,000). */
  answerTimes?: Array<[number, number]>;
}

/** What one phase of bringing stations in counted. */
type Tally = Pick<LoadResult, 'connected' | 'failures' | 'failureReasons' | 'retries' | 'bootLatencies' | 'acceptedAtS'>;
const emptyTally = (): Tally => ({ connected: 0, failures: 0, failureReasons: {}, retries: 0, bootLatencies: [], acceptedAtS: [] });

const meterValue = (i: number, transactionId: number | undefined) => ({
  connectorId: 1,
  ...(transactionId === undefined ? {} : { transactionId }),
  meterValue: [
    {
      timestamp: new Date().toISOString(),
      sampledValue: [
        { value: String(1000 + i * 10), measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
        { value: '11000', measurand: 'Power.Active.Import', unit: 'W' },
        { value: '16.0', measurand: 'Current.Import', phase: 'L1', unit: 'A' },
        { value: '16.0', measurand: 'Current.Import', phase: 'L2', unit: 'A' },
        { value: '16.0', measurand: 'Current.Import', phase: 'L3', unit: 'A' },
        { value: '230', measurand: 'Voltage', phase: 'L1-N', unit: 'V' },
        { value: '230', measurand: 'Voltage', phase: 'L2-N', unit: 'V' },
        { value: '230', measurand: 'Voltage', phase: 'L3-N', unit: 'V' },
      ],
    },
  ],
});

/**
 * A TLS connection over a link that delays everything by `oneWayMs` in each direction: loopback
 * with the round trips of a mobile network (the kernel's netem is not available here). The TCP
 * connection itself opens at once; every TLS flight and WebSocket frame after it waits.
 */
function delayedTlsConnect(oneWayMs: number) {
  return (options: ConnectionOptions): TLSSocket => {
    const raw = netConnect({ host: options.host ?? '127.0.0.1', port: options.port! });
    const link = new Duplex({
      read() {},
      write(chunk, _encoding, done) {
        setTimeout(() => raw.write(chunk), oneWayMs);
        done();
      },
      final(done) {
        setTimeout(() => raw.end(), oneWayMs);
        done();
      },
      destroy(err, done) {
        raw.destroy();
        done(err);
      },
    });
    raw.on('data', (chunk) => setTimeout(() => link.push(chunk), oneWayMs));
    raw.on('end', () => setTimeout(() => link.push(null), oneWayMs));
    raw.on('error', (err) => link.destroy(err));
    raw.on('close', () => setTimeout(() => link.destroy(), oneWayMs));
    return tlsConnect({ ...options, socket: link });
  };
}

class Station {
  ws?: WebSocket;
  private seq = 0;
  private pending?: { id: string; sentAt: number; resolve: (p: any) => void; reject: (e: Error) => void };
  constructor(
    readonly id: string,
    private readonly url: string,
    private readonly password?: string,
    private readonly tlsCiphers?: string,
    private readonly rttMs = 0,
  ) {}

  /** Resolves with the upgrade response's socket (a TLSSocket on wss), once the connection is open. */
  connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = this.password ? { authorization: `Basic ${Buffer.from(`${this.id}:${this.password}`).toString('base64')}` } : {};
      // The benchmark's TLS listener uses the test certificate: trust is not what is measured.
      // Each connection is a full TLS handshake (no session resumption), as after a charger reboots.
      const tls = this.tlsCiphers
        ? { ciphers: this.tlsCiphers, maxVersion: 'TLSv1.2' as const, ...(this.rttMs > 0 ? { createConnection: delayedTlsConnect(this.rttMs / 2) } : {}) }
        : {};
      const ws = new WebSocket(`${this.url}/${this.id}`, 'ocpp1.6', { perMessageDeflate: false, handshakeTimeout: 30000, headers, rejectUnauthorized: false, ...tls });
      this.ws = ws;
      let socket: Socket;
      ws.once('upgrade', (res) => (socket = res.socket));
      ws.once('open', () => resolve(socket));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, retryAfter: Number(res.headers['retry-after'] ?? 1) })));
      ws.once('error', reject);
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString());
        if (frame[0] === 2) {
          ws.send(JSON.stringify([4, frame[1], 'NotImplemented', '', {}]));
          return;
        }
        const p = this.pending;
        if (!p || p.id !== frame[1]) return;
        this.pending = undefined;
        if (frame[0] === 3) p.resolve(frame[2]);
        else p.reject(new Error(`${frame[2]}: ${frame[3]}`));
      });
      ws.on('close', () => this.pending?.reject(new Error('closed')));
    });
  }

  /** Sends a CALL and resolves with [payload, latency ms]. */
  call(action: string, payload: unknown): Promise<[any, number]> {
    return new Promise((resolve, reject) => {
      const id = String(++this.seq);
      const sentAt = performance.now();
      // An answer that never comes is a failure, not a hang of the whole benchmark.
      const timer = setTimeout(() => {
        if (this.pending?.id === id) this.pending = undefined;
        reject(new Error(`${action} not answered within 30 s`));
      }, 30_000);
      this.pending = {
        id,
        sentAt,
        resolve: (p) => {
          clearTimeout(timer);
          resolve([p, performance.now() - sentAt]);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.ws!.send(JSON.stringify([2, id, action, payload]));
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keeps in `sample` a uniform sample of at most `max` of the values seen so far (`seen` counts `value`). */
function sampleInto<T>(sample: T[], value: T, seen: number, max: number): void {
  if (sample.length < max) sample.push(value);
  else if (Math.random() < max / seen) sample[Math.floor(Math.random() * max)] = value;
}

async function boot(s: Station): Promise<number> {
  const [boot, latency] = await s.call('BootNotification', { chargePointVendor: 'Bench', chargePointModel: 'LoadGen' });
  if (boot.status !== 'Accepted') throw new Error(`boot ${boot.status}`);
  await s.call('StatusNotification', { connectorId: 1, status: 'Charging', errorCode: 'NoError' });
  return latency;
}

/** What a wss connection negotiated, e.g. "TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256". */
function negotiatedTls(socket: Socket): string | undefined {
  if (!('getCipher' in socket)) return undefined;
  const tls = socket as TLSSocket;
  return `${tls.getProtocol()} ${tls.getCipher().standardName}`;
}

/** Runs the task; `announce` is told as each phase begins. */
export async function runLoad(task: LoadTask, announce: (phase: LoadPhase) => void = () => {}): Promise<LoadResult> {
  const t0 = performance.now();
  // The load generator's own CPU is reported over the phase measured.
  let cpu0 = process.cpuUsage();
  let measuredSince = t0;
  const stations = Array.from({ length: task.stations }, (_, i) => new Station(`${task.prefix}${i}`, task.url, task.password, task.tlsCiphers, task.rttMs));
  const result: LoadResult = { ...emptyTally(), answered: 0, answeredByAction: {}, durationS: 0, latencies: [], latenciesByAction: {}, allAcceptedAfterS: null, loadgenCpuPct: 0 };

  /**
   * Connects and boots one station, coming back after Retry-After when the server says it is busy;
   * counts into `tally`, with times from `phaseStart`.
   */
  const bringInto = (tally: Tally, phaseStart: number, giveUpAfterS = 240) => {
    // A charger never gives up on a busy central system; the load generator does, this long into a phase.
    const giveUpAt = phaseStart + giveUpAfterS * 1000;
    return async (s: Station) => {
      while (performance.now() < giveUpAt) {
        try {
          const socket = await s.connect();
          result.tlsCipher ??= negotiatedTls(socket);
          tally.bootLatencies.push(await boot(s));
          tally.connected += 1;
          tally.acceptedAtS.push((performance.now() - phaseStart) / 1000);
          return;
        } catch (err) {
          const e = err as Error & { status?: number; retryAfter?: number };
          s.ws?.terminate();
          if (e.status === 503) {
            tally.retries += 1;
            await sleep((e.retryAfter ?? 1) * 1000 * (0.5 + Math.random()));
            continue;
          }
          tally.failures += 1;
          const reason = (e.message || String(err)).slice(0, 80);
          tally.failureReasons[reason] = (tally.failureReasons[reason] ?? 0) + 1;
          return;
        }
      }
      tally.failures += 1;
      const reason = `still 503 after ${giveUpAfterS} s`;
      tally.failureReasons[reason] = (tally.failureReasons[reason] ?? 0) + 1;
    };
  };
  /** Brings the stations in `connectBatch` at a time, as a fleet is rolled out. */
  const inBatches = async (bring: (s: Station) => Promise<void>) => {
    for (let i = 0; i < stations.length; i += task.connectBatch) await Promise.all(stations.slice(i, i + task.connectBatch).map(bring));
  };

  if (task.scenario === 'storm') {
    if (task.reconnect) {
      announce('provisioning');
      const provisioning = emptyTally();
      const provisioningStart = performance.now();
      // Not the phase measured, and over TLS each first registration stores its password with
      // scrypt (about 35 ms of CPU): 10,000 of them take minutes, so this phase waits longer.
      await inBatches(bringInto(provisioning, provisioningStart, 1800));
      result.provisionedAfterS = provisioning.failures === 0 ? (performance.now() - provisioningStart) / 1000 : null;
      result.provisioningFailures = provisioning.failures;
      result.provisioningFailureReasons = provisioning.failureReasons;
      // A mobile network outage: every connection is lost at once, with no OCPP goodbye.
      announce('outage');
      for (const s of stations) s.ws?.terminate();
      await sleep(2000);
    }
    announce('storm');
    cpu0 = process.cpuUsage();
    const stormStart = (measuredSince = performance.now());
    await Promise.all(stations.map(bringInto(result, stormStart)));
    result.durationS = (performance.now() - stormStart) / 1000;
    announce('done');
    // The parent reads the server's figures for the storm now; this process's exit then drops
    // every connection at once, which must not be in them.
    await sleep(1000);
    // Only a storm in which every station got in has an "all accepted" time.
    result.allAcceptedAfterS = result.failures === 0 ? result.durationS : null;
  } else {
    await inBatches(bringInto(result, t0));
    const live = stations.filter((s) => s.ws?.readyState === WebSocket.OPEN);
    const measureStart = performance.now();
    const until = measureStart + task.durationS * 1000;
    // steady: stations start at random within the first interval, so the offered rate is reached
    // only after it; messages are counted from then on (the ramp would dilute the rate).
    const windowStart = task.scenario === 'steady' ? Math.min(measureStart + task.intervalS * 1000, until - 1000) : measureStart;
    // The parent times the server over the window: connecting and booting 10,000 stations costs
    // more CPU than a steady run's messages, and is not what a message costs.
    setTimeout(() => {
      cpu0 = process.cpuUsage();
      measuredSince = performance.now();
      announce('measure');
    }, windowStart - performance.now());
    const windowClosed = sleep(until - performance.now()).then(() => announce('done'));
    await Promise.all(
      live.map(async (s, index) => {
        let i = 0;
        // Each station's tenth message is another kind, at a place in the ten and of a kind spread
        // over the stations: with 10,000 stations at 10 s a run sees only a station's first four or
        // five messages, and a tenth counted from zero never came (no transaction started or stopped).
        const phase = index % 10;
        let other = Math.floor(index / 10) % 4;
        let transactionId: number | undefined;
        const timestamp = () => new Date().toISOString();
        // steady: each station begins at a random moment of the first interval (not counted).
        if (task.scenario === 'steady') await sleep(Math.random() * task.intervalS * 1000);
        try {
          // Meter values belong to a transaction, as a charging station's do. In steady half the
          // stations are charging when the run begins, so that transactions both stop and start in it.
          if (task.scenario === 'saturate' || (task.scenario === 'steady' && index % 2 === 0)) transactionId = (await s.call('StartTransaction', { connectorId: 1, idTag: 'BENCH', meterStart: 0, timestamp: timestamp() }))[0].transactionId;
        } catch {
          result.failures += 1;
          return;
        }
        while (performance.now() < until) {
          const sentAt = performance.now();
          try {
            // A real AC charger: mostly MeterValues; now and then a Heartbeat, a transaction that starts, a status, a transaction that stops.
            let action = 'MeterValues';
            let payload: object = meterValue(i, transactionId);
            if (task.scenario === 'steady' && (i + phase) % 10 === 9) {
              const kind = other++ % 4;
              if (kind === 1 && transactionId === undefined) {
                action = 'StartTransaction';
                payload = { connectorId: 1, idTag: 'BENCH', meterStart: 1000 + i * 10, timestamp: timestamp() };
              } else if (kind === 2) {
                action = 'StatusNotification';
                payload = { connectorId: 1, status: transactionId === undefined ? 'Available' : 'Charging', errorCode: 'NoError' };
              } else if (kind === 3 && transactionId !== undefined) {
                action = 'StopTransaction';
                payload = { transactionId, meterStop: 1000 + i * 10, timestamp: timestamp() };
              } else {
                action = 'Heartbeat';
                payload = {};
              }
            }
            const [answer, latency] = await s.call(action, payload);
            if (action === 'StartTransaction') transactionId = answer.transactionId;
            if (action === 'StopTransaction') transactionId = undefined;
            if (sentAt >= windowStart) {
              // A uniform sample of at most 200,000 latencies keeps the report small at any rate.
              result.answered += 1;
              sampleInto(result.latencies, latency, result.answered, 200_000);
              result.answeredByAction[action] = (result.answeredByAction[action] ?? 0) + 1;
              sampleInto((result.latenciesByAction[action] ??= []), latency, result.answeredByAction[action], 50_000);
              if (task.traceAnswers) sampleInto((result.answerTimes ??= []), [performance.timeOrigin + sentAt, latency], result.answered, 200_000);
            }
          } catch {
            result.failures += 1;
            break;
          }
          i += 1;
          if (task.scenario === 'steady') await sleep(Math.max(0, task.intervalS * 1000 - (performance.now() - sentAt)));
        }
      }),
    );
    result.durationS = task.scenario === 'steady' ? (until - windowStart) / 1000 : (performance.now() - measureStart) / 1000;
    // Stations that failed stop early; the window is announced closed all the same.
    await windowClosed;
  }
  const cpu = process.cpuUsage(cpu0);
  result.loadgenCpuPct = Math.round(((cpu.user + cpu.system) / 1e6 / ((performance.now() - measuredSince) / 1000)) * 1000) / 10;
  for (const s of stations) s.ws?.terminate();
  return result;
}

// Run as a process: `node loadgen.js '{"scenario":…}'`.
if (process.argv[1]?.endsWith('loadgen.js') && process.argv[2]) {
  // The parent listens for the phases on an IPC channel when it opened one.
  runLoad(JSON.parse(process.argv[2]) as LoadTask, (phase) => process.send?.(phase)).then(
    // Exit only once the result is flushed: process.exit() truncates a pending write to a pipe.
    (r) => process.stdout.write(JSON.stringify(r), () => process.exit(0)),
    (err) => {
      process.stderr.write(String(err?.stack ?? err));
      process.exit(1);
    },
  );
}
