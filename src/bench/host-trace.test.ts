import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { analyseHostTrace, damonKdamonds, startHostTrace, type HostSample } from './host-trace.js';

/**
 * Samples every 2 ms from t = 1000; reclaim runs 1 ms of CPU in each interval of `reclaimAt` (interval
 * i ends at 1000 + 2i). The server's main thread is on a core 0.5 of each interval, 0.9 in those with
 * reclaim; the load generator's 0.2, and 0.4 with reclaim.
 */
function samples(count: number, reclaimAt: Set<number>, waitAt: Set<number> = new Set()): HostSample[] {
  const out: HostSample[] = [];
  let reclaim = 0;
  let wait = 0;
  let run = 0;
  let loadgenRun = 0;
  for (let i = 0; i < count; i++) {
    if (reclaimAt.has(i)) reclaim += 1e6;
    if (waitAt.has(i)) wait += 5e5;
    run += reclaimAt.has(i) ? 1.8e6 : 1e6;
    loadgenRun += reclaimAt.has(i) ? 0.8e6 : 0.4e6;
    // The server's other threads wait as long again as its main thread; the load generator twice as long.
    out.push({ atMs: 1000 + 2 * i, reclaimCpuNs: reclaim, mainRunNs: run, mainWaitNs: wait, serverThreadsWaitNs: 2 * wait, loadgenWaitNs: 2 * wait, loadgenMainRunNs: loadgenRun });
  }
  return out;
}

it('finds the reclaim bursts, tells the answers that met one from those that did not, and gives the p99 of the others', () => {
  // Two bursts: intervals 10-12 (t 1018-1024) and 40 (t 1078-1080); the main thread waits in 11 and 30.
  const trace = samples(101, new Set([10, 11, 12, 40]), new Set([11, 30]));
  const figures = analyseHostTrace(
    trace,
    [
      [1020, 12], // slow, in flight during the first burst
      [1060, 15], // slow, ends at 1075, just before the second burst's slack (from 1076)
      [1081, 11], // slow, starts within the slack after the second burst
      [1150, 30], // slow, none
      [900, 50], // before the window: not counted
      [1017, 1], // fast, within the slack before the first burst
      ...Array.from({ length: 96 }, (_, i): [number, number] => [1100 + i, 1 + i / 100]), // fast, none
    ],
    { threads: ['kdamond.0'], slowAnswerMs: 10 },
  );
  expect(figures).toEqual({
    reclaimThreads: ['kdamond.0'],
    damon: [],
    windowS: 0.2,
    reclaimBursts: 2,
    reclaimCpuMs: 4,
    // (1016..1026) and (1076..1082): 16 ms of 200.
    reclaimCoverShare: 0.08,
    answers: 101,
    answersDuringReclaim: 3,
    slowAnswerMs: 10,
    slowAnswers: 4,
    slowAnswersDuringReclaim: 2,
    // 98 clear of reclaim: the 96 fast ones (1 to 1.95 ms), 15 and 30 ms; the 97th of them (index 97 = floor(98 × 0.99)).
    latencyP99ClearOfReclaimMs: 30,
    // Intervals 1-100 (interval 0 is the first reading): 96 at 1 ms, 4 with reclaim at 1.8 ms.
    mainThreadRunMs: 103.2,
    mainThreadWaitMs: 1,
    mainThreadWaitDuringReclaimMs: 0.5,
    // Four intervals of reclaim, 8 ms; the other 96, 192 ms.
    reclaimBurstMs: 8,
    mainThreadBusyDuringReclaim: 0.9,
    mainThreadBusyOutsideReclaim: 0.5,
    loadgenMainThreadBusyDuringReclaim: 0.4,
    loadgenMainThreadBusyOutsideReclaim: 0.2,
    serverThreadsWaitMs: 2,
    serverThreadsWaitDuringReclaimMs: 1,
    loadgenWaitMs: 2,
    loadgenWaitDuringReclaimMs: 1,
  });
});

it('a trace with no reclaim at all has no bursts and no slow answer during one', () => {
  const figures = analyseHostTrace(samples(50, new Set()), [[1010, 20]], { threads: [], slowAnswerMs: 10 });
  expect(figures.reclaimBursts).toBe(0);
  expect(figures.reclaimCoverShare).toBe(0);
  expect(figures.slowAnswers).toBe(1);
  expect(figures.slowAnswersDuringReclaim).toBe(0);
});

it.runIf(process.platform === 'linux' && existsSync('/proc/self/schedstat'))('samples a real process: its main thread’s time on a core grows while it spins, and the load generator’s while it works', async () => {
  // A child that keeps one core busy for about 300 ms, then exits; this process, as the load generator, spins half of that.
  const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 300; while (Date.now() < end);']);
  const trace = startHostTrace(child.pid!, process.pid);
  const spinUntil = Date.now() + 150;
  while (Date.now() < spinUntil);
  await new Promise((r) => child.once('exit', r));
  const samples = trace.stop();
  const figures = analyseHostTrace(samples, [], { threads: trace.threads, slowAnswerMs: 10 });
  expect(figures.mainThreadRunMs).toBeGreaterThan(100);
  expect(figures.windowS).toBeGreaterThan(0.1);
  // This thread spun for 150 ms while sampling was due (the readings come late, not fewer: one at the end).
  expect(samples.at(-1)!.loadgenMainRunNs - samples[0]!.loadgenMainRunNs).toBeGreaterThan(100e6);
});

it('reads DAMON off its sysfs admin tree: each monitor with its state, operations and action; none where it is absent', () => {
  const root = mkdtempSync(join(tmpdir(), 'damon-'));
  try {
    const put = (path: string, text: string) => {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), `${text}\n`);
    };
    put('0/state', 'on');
    put('0/contexts/0/operations', 'paddr');
    put('0/contexts/0/schemes/0/action', 'pageout');
    put('1/state', 'off');
    put('nr_kdamonds', '2');
    expect(damonKdamonds(root).sort()).toEqual(['0: on, paddr, pageout', '1: off']);
    expect(damonKdamonds(join(root, 'missing'))).toEqual([]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
