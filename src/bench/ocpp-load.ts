import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { analyseHostTrace, startHostTrace, type HostSample, type HostTraceFigures } from './host-trace.js';
import type { LoadPhase, LoadResult, LoadTask } from './loadgen.js';
import { percentile } from './percentile.js';
import { freePort, processUsage, startServerProcess } from './server-process.js';

export interface OcppLoadOptions {
  scenario: 'steady' | 'saturate' | 'storm';
  stations: number;
  durationS: number;
  /** steady: seconds between one station's messages (offered rate = stations / interval). */
  intervalS: number;
  tls: boolean;
  /** --tls: the key of the server's certificate. */
  tlsKey: TlsKey;
  /** storm: the stations are known already; measure their reconnect after all lost their connection at once. */
  reconnect: boolean;
  /** Database URL for the server; default a fresh SQLite file. */
  db?: string;
  /** The server serves its API (and the /healthz probed) on a port of its own, not the OCPP port. */
  apiPort: boolean;
  /** --tls: a round trip of this many ms between each station and the server (0: loopback's). */
  rttMs: number;
  /** Top-level keys of the server's configuration, set for this run (e.g. maxConcurrentHandshakes). */
  serverConfig: Record<string, string>;
  /** steady, saturate: trace the host's memory reclaim and the server's wait for a core over the window (host-trace.ts). */
  traceHost?: boolean;
}

/** --trace-host: answers at least this slow are counted apart (the `steady` target's p99). */
const slowAnswerMs = 10;

export type TlsKey = 'ecdsa' | 'rsa';

/**
 * The test certificates of the TLS benchmark, each with the one cipher suite the stations offer,
 * over TLS 1.2: the OCPP 1.6 security whitepaper's AES-128 suite for that key (a charge point
 * supports TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or TLS_RSA_WITH_AES_128_GCM_SHA256, each with
 * its AES-256 sibling). One suite, so that the server's preference cannot pick another.
 */
const tlsCertificates: Record<TlsKey, { certFile: string; keyFile: string; stationCipher: string }> = {
  ecdsa: { certFile: 'server-ec.crt', keyFile: 'server-ec.key', stationCipher: 'ECDHE-ECDSA-AES128-GCM-SHA256' },
  rsa: { certFile: 'server.crt', keyFile: 'server.key', stationCipher: 'AES128-GCM-SHA256' },
};

/** The JSON contract of `npm run bench -- --json` (issue 6): keep these names stable. */
export interface OcppLoadReport {
  scenario: string;
  stations: number;
  durationS: number;
  messagesPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  baselineLatencyMs: { p50: number; p99: number; max: number };
  serverCpuUsPerMessage: number;
  /** saturate: the mean of the bare server's runs before and after Ampyard's (`baselineCpuUsPerMessageBeforeAfter`). */
  baselineCpuUsPerMessage: number;
  baselineCpuUsPerMessageBeforeAfter?: [number, number];
  cpuRatioToBaseline: number;
  rssBytesPerStation: number;
  failures: number;
  allAcceptedAfterS?: number | null;
  /** The slowest /healthz probe of the storm, of either kind below (on the API's port). */
  healthzMaxMs?: number | null;
  healthzKeptAliveMaxMs?: number;
  healthzNewConnectionMaxMs?: number;
  /** --api-port: the API has a port of its own; then also the slowest /healthz on a new connection to the OCPP port. */
  apiPort: boolean;
  healthzOcppPortMaxMs?: number;
  rttMs: number;
  serverConfig: Record<string, string>;
  teardownHealthzMaxMs?: number;
  outageHealthzMaxMs?: number;
  failureReasons: Record<string, number>;
  /** storm: seconds until half, 90 %, 99 % and all of the stations that got in were booted. */
  acceptedAfterS?: { p50: number; p90: number; p99: number; all: number };
  loadgenCpuPct: number;
  /**
   * storm, on Linux: connections the kernel dropped because a listen queue was full during the storm
   * (TcpExt ListenOverflows, machine-wide); each is a charger whose TCP stack tries again 1, 3, 7 s
   * later. A connection that waits in a queue that is not full (libuv accepts one per turn of the
   * event loop) is not counted: docs/benchmarks.md, session 12.
   */
  listenOverflows?: number | null;
  /** steady, saturate: the CALLs answered in the measured window, by action (what the load was made of). */
  answeredByAction?: Record<string, number>;
  /** steady, saturate: latency of each action's CALLs, as `latencyMs` (which message kinds make the tail). */
  latencyMsByAction?: Record<string, { p50: number; p99: number; max: number }>;
  database: string;
  tls: boolean;
  /** --tls: the key of the server's certificate, and what the stations' connections negotiated. */
  tlsKey: TlsKey | null;
  tlsCipher?: string;
  retriedUpgrades: number;
  /**
   * storm --reconnect: the figures above are those of the reconnect; these of the provisioning
   * before it (every station brought in and booted once, 200 at a time).
   */
  reconnect: boolean;
  provisionedAfterS?: number | null;
  provisioningFailures?: number;
  provisioningFailureReasons?: Record<string, number>;
  provisioningHealthzMaxMs?: number;
  /** The server's garbage collection and event-loop delay over the phase measured (null: /metrics did not answer). */
  serverRuntime: Record<string, number> | null;
  /** --trace-host: what the host did beside Ampyard, and beside the bare server in its (first) run, over the window. */
  hostTrace?: HostTraceFigures;
  baselineHostTrace?: HostTraceFigures;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/**
 * Runs the load generator, and reads the CPU time `usage` gives (of the server under load) over the
 * phase measured, from the load generator's announcements (which also go to `onPhase`): a storm's
 * storm, steady's and saturate's window of counted messages.
 */
function runLoadgen(task: LoadTask, usage: () => { cpuMicros: number }, onPhase?: (phase: LoadPhase, loadgenPid: number) => void): Promise<{ result: LoadResult; cpuMicros: number }> {
  return new Promise((resolve, reject) => {
    // Read inside event handlers: a server that died must fail the run, not throw out of a handler.
    let gone: Error | undefined;
    const cpuNow = (): number => {
      try {
        return usage().cpuMicros;
      } catch (err) {
        gone ??= new Error(`the measured server process is gone: ${(err as Error).message}`);
        return Number.NaN;
      }
    };
    let cpuFrom: number | undefined;
    let cpuTo: number | undefined;
    // The phases come on an IPC channel.
    const child = spawn(process.execPath, [here('./loadgen.js'), JSON.stringify(task)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    child.on('message', (phase: LoadPhase) => {
      if (phase === 'storm' || phase === 'measure') cpuFrom = cpuNow();
      if (phase === 'done') cpuTo = cpuNow();
      onPhase?.(phase, child.pid!);
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    // The benchmark stops by itself: a load generator still running well past its duration (each
    // phase of a reconnect storm has its own) is ended.
    const deadline = setTimeout(() => child.kill('SIGKILL'), (task.durationS + 300 + (task.reconnect ? 1800 : 0)) * 1000);
    // 'close', not 'exit': it comes after the last of stdout and of the phases sent.
    child.on('close', (code) => {
      clearTimeout(deadline);
      if (gone) reject(gone);
      else if (code !== 0) reject(new Error(`load generator failed (${code}): ${err.slice(-2000)}`));
      else if (cpuFrom === undefined || cpuTo === undefined) reject(new Error('the load generator did not announce the start and the end of the phase measured'));
      else resolve({ result: JSON.parse(out) as LoadResult, cpuMicros: cpuTo - cpuFrom });
    });
  });
}

async function startBaseline(): Promise<{ pid: number; url: string; stop: () => void }> {
  const child = spawn(process.execPath, [here('./baseline-server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  return { pid: child.pid!, url: `ws://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

/** Runs one scenario against the bare-`ws` baseline and against `ampyard serve`, in the same run. */
export async function ocppLoadBench(o: OcppLoadOptions): Promise<OcppLoadReport> {
  const task = (url: string): LoadTask => ({
    scenario: o.scenario,
    url,
    stations: o.stations,
    durationS: o.durationS,
    intervalS: o.intervalS,
    connectBatch: 200,
    prefix: 'BENCH-',
    password: o.tls ? 'bench-password-0123' : undefined,
    reconnect: o.reconnect,
    ...(o.rttMs > 0 ? { rttMs: o.rttMs } : {}),
    ...(o.traceHost ? { traceAnswers: true } : {}),
  });
  const certificate = tlsCertificates[o.tlsKey];

  // The reference: the same load against a server that only answers.
  const runBaseline = async () => {
    const baseline = await startBaseline();
    try {
      const tracer = hostTracer(baseline.pid, o.traceHost);
      const { result, cpuMicros } = await runLoadgen(task(`${baseline.url}/ocpp`), () => processUsage(baseline.pid), tracer.onPhase);
      return { result, cpuUsPerMessage: cpuMicros / Math.max(1, result.answered + result.bootLatencies.length * 2), hostTrace: tracer.figures(result) };
    } finally {
      baseline.stop();
    }
  };
  const { result: baseResult, cpuUsPerMessage: baselineBeforeCpuUs, hostTrace: baselineHostTrace } = await runBaseline();

  const dir = mkdtempSync(join(tmpdir(), 'ampyard-bench-'));
  const tlsPort = o.tls ? await freePort() : 0;
  const config = join(dir, 'bench.yaml');
  const certDir = here('../../test/fixtures/tls');
  writeFileSync(
    config,
    [
      'registration: open',
      'logLevel: warn',
      // Bench stations send as fast as they are answered; the per-station limit is not what is measured.
      'rateLimit:',
      '  perSecond: 100000',
      '  burst: 100000',
      'smartCharging:',
      '  verifyProfiles: false',
      ...Object.entries(o.serverConfig).map(([key, value]) => `${key}: ${value}`),
      ...(o.tls ? ['tls:', `  port: ${tlsPort}`, `  certFile: ${join(certDir, certificate.certFile)}`, `  keyFile: ${join(certDir, certificate.keyFile)}`] : []),
    ].join('\n'),
  );
  // PostgreSQL: a database of the run's own on the server given, so that no earlier run's data
  // weighs on the figures; it is dropped afterwards.
  const scratch = o.db && /^postgres(ql)?:\/\//.test(o.db) ? await createScratchDatabase(o.db) : null;
  const db = scratch?.url ?? o.db ?? `sqlite:${join(dir, 'bench.db')}`;
  // Whatever happens below, the server is stopped and the scratch database and files removed:
  // a run that failed midway once left its PostgreSQL database behind.
  const servers: Array<{ stop(): Promise<void> }> = [];
  const measure = async (): Promise<OcppLoadReport> => {
    const server = await startServerProcess(['--config', config, '--db', db], {}, { apiPort: o.apiPort });
    servers.push(server);
    const ocppUrl = o.tls ? `wss://127.0.0.1:${tlsPort}/ocpp` : server.ocppUrl;
    // The card the bench stations start their transactions with.
    const tag = await fetch(`${server.httpUrl}/api/v1/id-tags`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ idTag: 'BENCH', status: 'Accepted' }) });
    if (!tag.ok) throw new Error(`could not create the bench id tag: HTTP ${tag.status}`);
    await new Promise((r) => setTimeout(r, 500));
    const idle = server.usage();
    // A storm's figures are those of its storm phase, from the first connection until every station
    // is in (not the load generator dropping them all at the end, reported on its own); steady's and
    // saturate's, of the window whose messages are counted (since session 12: before, of the whole
    // run, connecting and booting every station included).
    let phase: LoadPhase | 'start' = 'start';
    const measuredPhase = o.scenario === 'storm' ? 'storm' : 'measure';
    let peakRss = idle.rssBytes;
    const rssProbe = setInterval(() => {
      try {
        if (phase === measuredPhase) peakRss = Math.max(peakRss, server.usage().rssBytes);
      } catch {
        /* the server is gone */
      }
    }, 250);
    // /healthz is probed from this process, which is idle while the load generator runs: a probe
    // inside the load generator would also time that process's own stalls under 10,000 sockets.
    // Probes alternate between a kept-alive connection (a load balancer's) and a new connection each
    // time (an orchestrator's liveness probe), which also waits for the server to accept and read it.
    // With --api-port both go to the API's port, and a third kind to the OCPP port, where the
    // chargers' connections are.
    let probing = o.scenario === 'storm';
    type ProbeKind = 'keptAlive' | 'newConnection' | 'ocppPort';
    const kinds: ProbeKind[] = o.apiPort ? ['keptAlive', 'newConnection', 'ocppPort'] : ['keptAlive', 'newConnection'];
    const healthzMaxMs: Record<ProbeKind, Map<LoadPhase | 'start', number>> = { keptAlive: new Map(), newConnection: new Map(), ocppPort: new Map() };
    const probe = (async () => {
      for (let i = 0; probing; i++) {
        const kind = kinds[i % kinds.length]!;
        const startPhase = phase;
        const start = performance.now();
        try {
          if (kind === 'keptAlive') await fetch(`${server.httpUrl}/healthz`, { signal: AbortSignal.timeout(30_000) });
          else await getOnNewConnection(`${kind === 'ocppPort' ? server.ocppHttpUrl : server.httpUrl}/healthz`, 30_000);
        } catch {
          /* a refused or timed-out probe counts with the time it took */
        }
        const ms = performance.now() - start;
        // A probe that spans the start or the end of a phase counts in both.
        for (const p of new Set([startPhase, phase])) healthzMaxMs[kind].set(p, Math.max(healthzMaxMs[kind].get(p) ?? 0, ms));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const healthzMax = (p: LoadPhase | 'start') => round(Math.max(healthzMaxMs.keptAlive.get(p) ?? 0, healthzMaxMs.newConnection.get(p) ?? 0));
    // The runtime figures are those of the phase measured: scraped as it begins and as it ends.
    let metricsBefore: Promise<Scrape | null> = Promise.resolve(null);
    let metricsAfter: Promise<Scrape | null> | undefined;
    let overflowsBefore: number | null = null;
    let overflowsAfter: number | null = null;
    const tracer = hostTracer(server.child.pid!, o.traceHost);
    const { result, cpuMicros: serverCpuMicros } = await runLoadgen({ ...task(ocppUrl), tlsCiphers: o.tls ? certificate.stationCipher : undefined }, server.usage, (next, loadgenPid) => {
      tracer.onPhase(next, loadgenPid);
      // The end of a storm, every station connected, is its peak whatever the probe's period missed.
      if (next === 'done') peakRss = Math.max(peakRss, server.usage().rssBytes);
      if (next === measuredPhase) {
        metricsBefore = scrapeMetrics(server.httpUrl);
        overflowsBefore = listenOverflowCount();
      }
      if (phase === measuredPhase && next !== measuredPhase) {
        metricsAfter = scrapeMetrics(server.httpUrl);
        overflowsAfter = listenOverflowCount();
      }
      phase = next;
    });
    probing = false;
    await probe;
    clearInterval(rssProbe);
    const runtime = serverRuntimeFigures(await metricsBefore, await (metricsAfter ?? scrapeMetrics(server.httpUrl)));
    await server.stop();

    const messages = result.answered + result.bootLatencies.length * 2;
    const serverCpuUs = serverCpuMicros / Math.max(1, messages);
    // saturate: the bare server runs again after Ampyard, and the reference is the mean of the two
    // runs. The machine's speed drifts within the minute a round takes (the bare server read 17 to
    // 31 µs per message within one hour), and bracketing Ampyard cancels a drift that is steady.
    const baselineAfterCpuUs = o.scenario === 'saturate' ? (await runBaseline()).cpuUsPerMessage : undefined;
    const baselineCpuUs = baselineAfterCpuUs === undefined ? baselineBeforeCpuUs : (baselineBeforeCpuUs + baselineAfterCpuUs) / 2;
    const latencies = (o.scenario === 'storm' ? result.bootLatencies : result.latencies).sort((a, b) => a - b);
    const baseLatencies = (o.scenario === 'storm' ? baseResult.bootLatencies : baseResult.latencies).sort((a, b) => a - b);
    const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
    return {
      scenario: o.scenario,
      stations: o.stations,
      durationS: round(result.durationS),
      messagesPerSecond: round((o.scenario === 'storm' ? messages : result.answered) / Math.max(0.001, result.durationS), 1),
      latencyMs: { p50: round(percentile(latencies, 0.5)), p99: round(percentile(latencies, 0.99)), max: round(latencies.at(-1) ?? 0) },
      // The same load against the bare server: what the load generator and the loopback add on their own.
      baselineLatencyMs: { p50: round(percentile(baseLatencies, 0.5)), p99: round(percentile(baseLatencies, 0.99)), max: round(baseLatencies.at(-1) ?? 0) },
      serverCpuUsPerMessage: round(serverCpuUs, 1),
      baselineCpuUsPerMessage: round(baselineCpuUs, 1),
      ...(baselineAfterCpuUs === undefined ? {} : { baselineCpuUsPerMessageBeforeAfter: [round(baselineBeforeCpuUs, 1), round(baselineAfterCpuUs, 1)] }),
      cpuRatioToBaseline: round(serverCpuUs / Math.max(0.001, baselineCpuUs)),
      rssBytesPerStation: Math.round((peakRss - idle.rssBytes) / o.stations),
      failures: result.failures,
      failureReasons: result.failureReasons,
      ...(o.scenario === 'storm' ? { acceptedAfterS: acceptedQuantiles(result.acceptedAtS) } : {}),
      ...(o.scenario === 'storm'
        ? {
            allAcceptedAfterS: result.allAcceptedAfterS === null ? null : round(result.allAcceptedAfterS),
            healthzMaxMs: healthzMax(measuredPhase),
            healthzKeptAliveMaxMs: round(healthzMaxMs.keptAlive.get(measuredPhase) ?? 0),
            healthzNewConnectionMaxMs: round(healthzMaxMs.newConnection.get(measuredPhase) ?? 0),
            ...(o.apiPort ? { healthzOcppPortMaxMs: round(healthzMaxMs.ocppPort.get(measuredPhase) ?? 0) } : {}),
            // After the storm the load generator drops every connection at once: not the storm, but
            // a central system should stay responsive then too.
            teardownHealthzMaxMs: healthzMax('done'),
            listenOverflows: overflowsBefore === null || overflowsAfter === null ? null : overflowsAfter - overflowsBefore,
          }
        : {}),
      loadgenCpuPct: result.loadgenCpuPct,
      ...(o.scenario === 'storm'
        ? {}
        : {
            answeredByAction: result.answeredByAction,
            latencyMsByAction: Object.fromEntries(
              Object.entries(result.latenciesByAction).map(([action, values]) => {
                const sorted = values.sort((a, b) => a - b);
                return [action, { p50: round(percentile(sorted, 0.5)), p99: round(percentile(sorted, 0.99)), max: round(sorted.at(-1) ?? 0) }];
              }),
            ),
          }),
      serverRuntime: runtime,
      ...(o.traceHost ? { hostTrace: tracer.figures(result), baselineHostTrace } : {}),
      database: db.startsWith('sqlite:') ? 'sqlite' : 'postgres',
      tls: o.tls,
      apiPort: o.apiPort,
      rttMs: o.rttMs,
      serverConfig: o.serverConfig,
      tlsKey: o.tls ? o.tlsKey : null,
      ...(o.tls ? { tlsCipher: result.tlsCipher } : {}),
      retriedUpgrades: result.retries,
      reconnect: o.reconnect,
      ...(o.reconnect
        ? {
            provisionedAfterS: typeof result.provisionedAfterS === 'number' ? round(result.provisionedAfterS) : null,
            provisioningFailures: result.provisioningFailures,
            provisioningFailureReasons: result.provisioningFailureReasons,
            provisioningHealthzMaxMs: healthzMax('provisioning'),
            outageHealthzMaxMs: healthzMax('outage'),
          }
        : {}),
    };
  };
  try {
    return await measure();
  } finally {
    for (const server of servers) await server.stop();
    await scratch?.drop().catch((err: Error) => console.error(`could not drop the scratch database: ${err.message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * --trace-host over one process's run: sampling from the start of the measured window to its end.
 * Without `on`, it does nothing and has no figures.
 */
function hostTracer(pid: number, on: boolean | undefined): { onPhase(phase: LoadPhase, loadgenPid: number): void; figures(result: LoadResult): HostTraceFigures | undefined } {
  let trace: ReturnType<typeof startHostTrace> | undefined;
  let samples: HostSample[] = [];
  return {
    onPhase(phase, loadgenPid) {
      if (!on) return;
      if (phase === 'measure') trace = startHostTrace(pid, loadgenPid);
      if (phase === 'done' && trace) samples = trace.stop();
    },
    figures(result) {
      if (!on || !trace) return undefined;
      return analyseHostTrace(samples, result.answerTimes ?? [], { threads: trace.threads, damon: trace.damon, slowAnswerMs });
    },
  };
}

/** The machine, for the table in docs/benchmarks.md. */
export function machineDescription(): string {
  return `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB`;
}

function acceptedQuantiles(times: number[]): { p50: number; p90: number; p99: number; all: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length === 0 ? 0 : Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! * 100) / 100);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), all: at(1) };
}

/** A new, empty database on the PostgreSQL server of `url` (which must allow CREATE DATABASE). */
async function createScratchDatabase(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `ampyard_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const scratch = new URL(url);
  scratch.pathname = `/${name}`;
  return {
    url: scratch.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Linux's count of connections dropped on a full listen queue (TcpExt ListenOverflows), or null elsewhere. */
function listenOverflowCount(): number | null {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/);
    const value = Number(values[names.indexOf('ListenOverflows')]);
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

/** GET on a connection of its own (no keep-alive), resolved once the whole answer is read. */
function getOnNewConnection(url: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => resolve());
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error('probe timed out')));
    req.once('error', reject);
  });
}

interface Scrape {
  /** The server's own /metrics text (prom-client's default metrics and Ampyard's). */
  text: string;
  /** From the request to the last byte of the answer: what a Prometheus scrape costs the event loop, and everyone waiting behind it. */
  ms: number;
}

/** Scrapes the server's /metrics; null when it did not answer. */
async function scrapeMetrics(httpUrl: string): Promise<Scrape | null> {
  const started = performance.now();
  try {
    const text = await (await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    return { text, ms: performance.now() - started };
  } catch {
    return null;
  }
}

/**
 * The server's garbage collection and event-loop delay over the phase measured, from its own
 * /metrics scraped as the phase began and as it ended: where a latency tail comes from when it is
 * not our code. Counts are the difference of the two scrapes; the event-loop delay is prom-client's
 * histogram, which each scrape resets, so the second one covers the phase alone. Without the first
 * scrape the figures are those of the server's whole life.
 */
function serverRuntimeFigures(scrapedBefore: Scrape | null, scrapedAfter: Scrape | null): Record<string, number> | null {
  if (scrapedAfter === null) return null;
  const before = scrapedBefore?.text ?? null;
  const after = scrapedAfter.text;
  const value = (text: string | null, name: string) => {
    if (text === null) return 0;
    const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
  };
  const delta = (name: string) => value(after, name) - value(before, name);
  const over = (le: string) => sumOver(after, 'nodejs_gc_duration_seconds_bucket', le) - (before === null ? 0 : sumOver(before, 'nodejs_gc_duration_seconds_bucket', le));
  const ms = (s: number) => Math.round(s * 1e4) / 10;
  return {
    gcMajorCount: delta('nodejs_gc_duration_seconds_count{kind="major"}'),
    gcMajorTotalMs: ms(delta('nodejs_gc_duration_seconds_sum{kind="major"}')),
    // prom-client's buckets are coarse (1, 10, 100 ms, 1 s): the pauses that reach a 10 ms p99, and a 100 ms /healthz.
    gcOver10msCount: over('0.01'),
    gcOver100msCount: over('0.1'),
    gcMinorCount: delta('nodejs_gc_duration_seconds_count{kind="minor"}'),
    gcMinorTotalMs: ms(delta('nodejs_gc_duration_seconds_sum{kind="minor"}')),
    eventLoopDelayP99Ms: ms(value(after, 'nodejs_eventloop_lag_p99_seconds')),
    eventLoopDelayMaxMs: ms(value(after, 'nodejs_eventloop_lag_max_seconds')),
    heapUsedBytes: value(after, 'nodejs_heap_size_used_bytes'),
    // The slower of the two scrapes (with every station connected): a scrape holds up every station's answer.
    metricsScrapeMaxMs: ms(Math.max(scrapedBefore?.ms ?? 0, scrapedAfter.ms) / 1000),
  };
}

function sumOver(text: string, bucketName: string, le: string): number {
  let over = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(bucketName)) continue;
    const count = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.includes('le="+Inf"')) over += count;
    else if (line.includes(`le="${le}"`)) over -= count;
  }
  return over;
}
