import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/** CPU time and resident memory of a process, read from /proc (Linux). */
export function processUsage(pid: number): { cpuMicros: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const clockTicksPerSecond = 100;
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  return { cpuMicros: (cpuTicks * 1e6) / clockTicksPerSecond, rssBytes: Number(fields[21]) * 4096 };
}

export interface ServerProcess {
  child: ChildProcess;
  /** The API's address: its own port when started with `apiPort`, else the OCPP port. */
  httpUrl: string;
  /** The OCPP port as an http:// address (its /healthz). */
  ocppHttpUrl: string;
  ocppUrl: string;
  usage(): { cpuMicros: number; rssBytes: number };
  stop(): Promise<void>;
}

/** A port that is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts `ampyard serve` as its own process, as it runs in production, and waits until /healthz
 * answers. The server's own log goes to a file-less sink: benchmarks read their figures elsewhere.
 */
export async function startServerProcess(args: string[], env: NodeJS.ProcessEnv = {}, options: { apiPort?: boolean } = {}): Promise<ServerProcess> {
  const port = await freePort();
  const apiPort = options.apiPort ? await freePort() : undefined;
  const bin = fileURLToPath(new URL('../../bin/ampyard.js', import.meta.url));
  // `npm run bench -- --cpu-prof DIR` profiles the server (V8 .cpuprofile files, for Chrome DevTools or speedscope).
  const profile = process.env.AMPYARD_BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.AMPYARD_BENCH_CPU_PROF_DIR}`] : [];
  const child = spawn(process.execPath, [...profile, bin, 'serve', '--host', '127.0.0.1', '--port', String(port), ...(apiPort ? ['--api-port', String(apiPort)] : []), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, AMPYARD_LOG_LEVEL: 'warn', ...env },
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const ocppHttpUrl = `http://127.0.0.1:${port}`;
  const httpUrl = `http://127.0.0.1:${apiPort ?? port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`server exited with ${exited}: ${stderr}`);
    try {
      if ((await fetch(`${httpUrl}/healthz`)).ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`server did not answer /healthz within 30 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    httpUrl,
    ocppHttpUrl,
    ocppUrl: `ws://127.0.0.1:${port}/ocpp`,
    usage: () => processUsage(child.pid!),
    stop: () =>
      new Promise<void>((done) => {
        if (exited !== undefined) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
        // A server that does not finish its shutdown in time is killed: the benchmark must end.
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}
