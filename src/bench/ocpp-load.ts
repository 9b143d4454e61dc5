import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LoadResult, LoadTask } from './loadgen.js';
import { freePort, processUsage, startServerProcess } from './server-process.js';

export interface OcppLoadOptions {
  scenario: 'steady' | 'saturate' | 'storm';
  stations: number;
  durationS: number;
  /** steady: seconds between one station's messages (offered rate = stations / interval). */
  intervalS: number;
  tls: boolean;
  /** Database URL for the server; default a fresh SQLite file. */
  db?: string;
}

/** The JSON contract of `npm run bench -- --json` (issue 6): keep these names stable. */
export interface OcppLoadReport {
  scenario: string;
  stations: number;
  durationS: number;
  messagesPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  baselineLatencyMs: { p50: number; p99: number; max: number };
  serverCpuUsPerMessage: number;
  baselineCpuUsPerMessage: number;
  cpuRatioToBaseline: number;
  rssBytesPerStation: number;
  failures: number;
  allAcceptedAfterS?: number | null;
  healthzMaxMs?: number | null;
  failureReasons: Record<string, number>;
  /** storm: seconds until half, 90 %, 99 % and all of the stations that got in were booted. */
  acceptedAfterS?: { p50: number; p90: number; p99: number; all: number };
  loadgenCpuPct: number;
  database: string;
  tls: boolean;
  retriedUpgrades: number;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function runLoadgen(task: LoadTask): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [here('./loadgen.js'), JSON.stringify(task)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    // The benchmark stops by itself: a load generator still running well past its duration is ended.
    const deadline = setTimeout(() => child.kill('SIGKILL'), (task.durationS + 300) * 1000);
    child.on('exit', (code) => {
      clearTimeout(deadline);
      if (code === 0) resolve(JSON.parse(out) as LoadResult);
      else reject(new Error(`load generator failed (${code}): ${err.slice(-2000)}`));
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
  });

  // The reference: the same load against a server that only answers.
  const baseline = await startBaseline();
  const b0 = processUsage(baseline.pid);
  const baseResult = await runLoadgen(task(`${baseline.url}/ocpp`));
  const b1 = processUsage(baseline.pid);
  baseline.stop();
  const baseMessages = baseResult.answered + baseResult.bootLatencies.length * 2;

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
      ...(o.tls ? ['tls:', `  port: ${tlsPort}`, `  certFile: ${join(certDir, 'server.crt')}`, `  keyFile: ${join(certDir, 'server.key')}`] : []),
    ].join('\n'),
  );
  const db = o.db ?? `sqlite:${join(dir, 'bench.db')}`;
  const server = await startServerProcess(['--config', config, '--db', db]);
  const ocppUrl = o.tls ? `wss://127.0.0.1:${tlsPort}/ocpp` : server.ocppUrl;
  // The card the bench stations start their transactions with.
  const tag = await fetch(`${server.httpUrl}/api/v1/id-tags`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ idTag: 'BENCH', status: 'Accepted' }) });
  if (!tag.ok) throw new Error(`could not create the bench id tag: HTTP ${tag.status}`);
  await new Promise((r) => setTimeout(r, 500));
  const idle = server.usage();
  let peakRss = idle.rssBytes;
  const rssProbe = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, server.usage().rssBytes);
    } catch {
      /* the server is gone */
    }
  }, 250);
  // /healthz is probed from this process, which is idle while the load generator runs: a probe
  // inside the load generator would also time that process's own stalls under 10,000 sockets.
  let probing = o.scenario === 'storm';
  let healthzMaxMs = 0;
  const probe = (async () => {
    while (probing) {
      const start = performance.now();
      try {
        await fetch(`${server.httpUrl}/healthz`, { signal: AbortSignal.timeout(30_000) });
      } catch {
        /* a refused or timed-out probe counts with the time it took */
      }
      healthzMaxMs = Math.max(healthzMaxMs, performance.now() - start);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const result = await runLoadgen(task(ocppUrl));
  probing = false;
  await probe;
  clearInterval(rssProbe);
  const used = server.usage();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });

  const messages = result.answered + result.bootLatencies.length * 2;
  const serverCpuUs = (used.cpuMicros - idle.cpuMicros) / Math.max(1, messages);
  const baselineCpuUs = (b1.cpuMicros - b0.cpuMicros) / Math.max(1, baseMessages);
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
    cpuRatioToBaseline: round(serverCpuUs / Math.max(0.001, baselineCpuUs)),
    rssBytesPerStation: Math.round((peakRss - idle.rssBytes) / o.stations),
    failures: result.failures,
    failureReasons: result.failureReasons,
    ...(o.scenario === 'storm' ? { acceptedAfterS: acceptedQuantiles(result.acceptedAtS) } : {}),
    ...(o.scenario === 'storm' ? { allAcceptedAfterS: result.allAcceptedAfterS === null ? null : round(result.allAcceptedAfterS), healthzMaxMs: round(healthzMaxMs) } : {}),
    loadgenCpuPct: result.loadgenCpuPct,
    database: db.startsWith('sqlite:') ? 'sqlite' : 'postgres',
    tls: o.tls,
    retriedUpgrades: result.retries,
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
