import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { percentile } from './percentile.js';

/**
 * What the host did beside the server while a benchmark measured it (`npm run bench -- --trace-host`):
 * the kernel's memory reclaim (DAMON's `kdamond`, `kswapd`), and how long the server's threads and
 * the load generator's waited for a core. On a shared VM both make a latency tail that is not the
 * server's own; this says how much of a run's tail came with them, so that a figure can be read for
 * what it measures.
 *
 * Sampled from outside the server (the threads' schedstat, every few ms), so the server runs as it
 * runs in production. Linux only.
 */

/**
 * One reading: when (ms since the epoch), the reclaim threads' CPU time, the server's main thread's
 * run and wait time, the wait of all the server's threads and of all the load generator's, and the
 * load generator's main thread's run time (ns).
 */
export interface HostSample {
  atMs: number;
  reclaimCpuNs: number;
  mainRunNs: number;
  mainWaitNs: number;
  serverThreadsWaitNs: number;
  loadgenWaitNs: number;
  loadgenMainRunNs: number;
}

export interface HostTraceFigures {
  /** The kernel threads counted as reclaim, by name. */
  reclaimThreads: string[];
  /** DAMON as the run began (see `damonKdamonds`): whether the host reclaims memory behind the run's back. */
  damon: string[];
  windowS: number;
  /** Runs of consecutive samples in which a reclaim thread was on a core. */
  reclaimBursts: number;
  reclaimCpuMs: number;
  /** The share of the window within `slackMs` of a burst. */
  reclaimCoverShare: number;
  /** The answers of the window, and of them those in flight within `slackMs` of a burst. */
  answers: number;
  answersDuringReclaim: number;
  /** Answers at least this slow, and of them those in flight during reclaim. */
  slowAnswerMs: number;
  slowAnswers: number;
  slowAnswersDuringReclaim: number;
  /**
   * The latency p99 of the answers that were not in flight during reclaim: what the run's p99 would
   * have been on a host without it, as far as the answers around a burst are not held up by the
   * queue it left (those count here).
   */
  latencyP99ClearOfReclaimMs: number;
  /** The server's main thread: on a core, and runnable but waiting for one. */
  mainThreadRunMs: number;
  mainThreadWaitMs: number;
  mainThreadWaitDuringReclaimMs: number;
  /**
   * The share of the time the main threads of the server and of the load generator were on a core,
   * during the bursts (their sampling intervals, `reclaimBurstMs` in all) and outside them. The same
   * work at the same rate should give the same share in both: a higher one during the bursts is work
   * that ran slower then, on a core the reclaim left to it.
   */
  reclaimBurstMs: number;
  mainThreadBusyDuringReclaim: number;
  mainThreadBusyOutsideReclaim: number;
  loadgenMainThreadBusyDuringReclaim: number;
  loadgenMainThreadBusyOutsideReclaim: number;
  /** All the server's threads (its main thread, libuv's pool, its workers, V8's), and all the load generator's: time waiting for a core. */
  serverThreadsWaitMs: number;
  serverThreadsWaitDuringReclaimMs: number;
  loadgenWaitMs: number;
  loadgenWaitDuringReclaimMs: number;
}

/** An answer: when it was sent (ms since the epoch) and how long it took (ms). */
export type TimedAnswer = [sentAtMs: number, latencyMs: number];

/** The kernel's memory reclaim threads on this machine, by pid: DAMON's kdamond and kswapd. */
function reclaimThreads(): Map<number, string> {
  const found = new Map<number, string>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const name = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (/^(kdamond|kswapd)/.test(name)) found.set(Number(entry), name);
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}

/**
 * DAMON's monitors as its sysfs admin interface shows them, one line each: "0: on, paddr, pageout"
 * (state, the first context's operations, its first scheme's action); none where DAMON is not there.
 * Why: the same run gave p99 7.6-10.3 ms with this host's DAMON off and 18-27 ms with it on, so a
 * figure means little without it.
 */
export function damonKdamonds(root = '/sys/kernel/mm/damon/admin/kdamonds'): string[] {
  let ids: string[];
  try {
    ids = readdirSync(root).filter((entry) => /^\d+$/.test(entry));
  } catch {
    return [];
  }
  return ids.map((id) => {
    const read = (path: string) => {
      try {
        return readFileSync(`${root}/${id}/${path}`, 'utf8').trim();
      } catch {
        return undefined;
      }
    };
    const parts = [read('state') ?? 'state unknown', read('contexts/0/operations'), read('contexts/0/schemes/0/action')].filter(Boolean);
    return `${id}: ${parts.join(', ')}`;
  });
}

/**
 * Starts sampling every `periodMs`; `stop` ends it and returns the samples. Each file is kept open
 * and read again from its start, one system call a reading.
 */
export function startHostTrace(serverPid: number, loadgenPid: number | undefined, periodMs = 2): { threads: string[]; damon: string[]; stop(): HostSample[] } {
  const threads = reclaimThreads();
  const damon = damonKdamonds();
  const open = (path: string): number | null => {
    try {
      return openSync(path, 'r');
    } catch {
      return null;
    }
  };
  const main = open(`/proc/${serverPid}/task/${serverPid}/schedstat`);
  const loadgenMain = loadgenPid === undefined ? null : open(`/proc/${loadgenPid}/task/${loadgenPid}/schedstat`);
  const opened = (fds: Array<number | null>) => fds.filter((fd): fd is number => fd !== null);
  const reclaim = opened([...threads.keys()].map((pid) => open(`/proc/${pid}/schedstat`)));
  // The threads there are as the window begins; the server starts its pool and workers long before.
  const tasksOf = (pid: number | undefined) => {
    try {
      return pid === undefined ? [] : opened(readdirSync(`/proc/${pid}/task`).map((tid) => open(`/proc/${pid}/task/${tid}/schedstat`)));
    } catch {
      return [];
    }
  };
  const serverThreads = tasksOf(serverPid);
  const loadgenThreads = tasksOf(loadgenPid);
  const buffer = Buffer.alloc(128);
  /** schedstat: time on a core, time runnable and waiting (ns), timeslices. */
  const read = (fd: number): [number, number] => {
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    const [run, wait] = buffer.toString('latin1', 0, n).split(' ');
    return [Number(run), Number(wait)];
  };
  const samples: HostSample[] = [];
  const sample = () => {
    if (main === null) return;
    try {
      const [mainRunNs, mainWaitNs] = read(main);
      let reclaimCpuNs = 0;
      for (const fd of reclaim) reclaimCpuNs += read(fd)[0];
      const waitOf = (fds: number[]) => fds.reduce((sum, fd) => sum + read(fd)[1], 0);
      const loadgenMainRunNs = loadgenMain === null ? 0 : read(loadgenMain)[0];
      samples.push({ atMs: performance.timeOrigin + performance.now(), reclaimCpuNs, mainRunNs, mainWaitNs, serverThreadsWaitNs: waitOf(serverThreads), loadgenWaitNs: waitOf(loadgenThreads), loadgenMainRunNs });
    } catch {
      /* the server is gone: the samples so far stand */
    }
  };
  sample();
  const timer = setInterval(sample, periodMs);
  // A run that fails between the window's start and end must not be kept alive by its sampling.
  timer.unref();
  return {
    threads: [...new Set(threads.values())],
    damon,
    stop() {
      clearInterval(timer);
      sample();
      for (const fd of [main, loadgenMain, ...reclaim, ...serverThreads, ...loadgenThreads]) if (fd !== null) closeSync(fd);
      return samples;
    },
  };
}

/**
 * The figures of a trace. A burst is a run of consecutive sampling intervals in which the reclaim
 * threads' CPU time grew; an answer counts as during reclaim when its time in flight comes within
 * `slackMs` of one (the samples are `periodMs` apart, and a thread that has just been on a core
 * leaves its caches and its queue behind it).
 */
export function analyseHostTrace(
  samples: HostSample[],
  answers: TimedAnswer[],
  options: { threads: string[]; damon?: string[]; slowAnswerMs: number; slackMs?: number },
): HostTraceFigures {
  const slack = options.slackMs ?? 2;
  const sorted = [...samples].sort((a, b) => a.atMs - b.atMs);
  const bursts: Array<{ from: number; to: number }> = [];
  type Counter = Exclude<keyof HostSample, 'atMs'>;
  // What each counter grew by during the bursts.
  const duringReclaim: Record<Counter, number> = { reclaimCpuNs: 0, mainRunNs: 0, mainWaitNs: 0, serverThreadsWaitNs: 0, loadgenWaitNs: 0, loadgenMainRunNs: 0 };
  let burstMs = 0;
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (b.reclaimCpuNs <= a.reclaimCpuNs) continue;
    for (const counter of Object.keys(duringReclaim) as Counter[]) duringReclaim[counter] += b[counter] - a[counter];
    burstMs += b.atMs - a.atMs;
    const last = bursts.at(-1);
    if (last && last.to === a.atMs) last.to = b.atMs;
    else bursts.push({ from: a.atMs, to: b.atMs });
  }
  const first = sorted[0];
  const end = sorted.at(-1);
  const windowMs = first && end ? end.atMs - first.atMs : 0;
  // The bursts widened by the slack, merged where they meet, and clipped to the window.
  const covered: Array<{ from: number; to: number }> = [];
  for (const b of bursts) {
    const from = Math.max(first!.atMs, b.from - slack);
    const to = Math.min(end!.atMs, b.to + slack);
    const last = covered.at(-1);
    if (last && from <= last.to) last.to = Math.max(last.to, to);
    else covered.push({ from, to });
  }
  const coveredMs = covered.reduce((sum, c) => sum + (c.to - c.from), 0);
  const inWindow = first && end ? answers.filter(([sent]) => sent >= first.atMs && sent <= end.atMs) : [];
  const clear: number[] = [];
  let slow = 0;
  let slowDuringReclaim = 0;
  for (const [sent, latency] of inWindow) {
    const during = overlapsAny(covered, sent, sent + latency);
    if (!during) clear.push(latency);
    if (latency >= options.slowAnswerMs) {
      slow += 1;
      if (during) slowDuringReclaim += 1;
    }
  }
  clear.sort((a, b) => a - b);
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  /** What a counter grew by over the whole window, in ms. */
  const overWindow = (counter: Counter) => (first && end ? ms(end[counter] - first[counter]) : 0);
  /** The share of the bursts' time and of the rest of the window in which a thread's run time grew. */
  const busy = (counter: Counter): [during: number, outside: number] => {
    const share = (ns: number, spanMs: number) => (spanMs > 0 ? Math.round((ns / 1e6 / spanMs) * 1000) / 1000 : 0);
    const all = first && end ? end[counter] - first[counter] : 0;
    return [share(duringReclaim[counter], burstMs), share(all - duringReclaim[counter], windowMs - burstMs)];
  };
  const [mainBusyDuring, mainBusyOutside] = busy('mainRunNs');
  const [loadgenBusyDuring, loadgenBusyOutside] = busy('loadgenMainRunNs');
  return {
    reclaimThreads: options.threads,
    damon: options.damon ?? [],
    windowS: Math.round(windowMs) / 1000,
    reclaimBursts: bursts.length,
    reclaimCpuMs: ms(duringReclaim.reclaimCpuNs),
    reclaimCoverShare: windowMs > 0 ? Math.round((coveredMs / windowMs) * 1000) / 1000 : 0,
    answers: inWindow.length,
    answersDuringReclaim: inWindow.length - clear.length,
    slowAnswerMs: options.slowAnswerMs,
    slowAnswers: slow,
    slowAnswersDuringReclaim: slowDuringReclaim,
    latencyP99ClearOfReclaimMs: Math.round(percentile(clear, 0.99) * 100) / 100,
    mainThreadRunMs: overWindow('mainRunNs'),
    mainThreadWaitMs: overWindow('mainWaitNs'),
    mainThreadWaitDuringReclaimMs: ms(duringReclaim.mainWaitNs),
    reclaimBurstMs: Math.round(burstMs * 100) / 100,
    mainThreadBusyDuringReclaim: mainBusyDuring,
    mainThreadBusyOutsideReclaim: mainBusyOutside,
    loadgenMainThreadBusyDuringReclaim: loadgenBusyDuring,
    loadgenMainThreadBusyOutsideReclaim: loadgenBusyOutside,
    serverThreadsWaitMs: overWindow('serverThreadsWaitNs'),
    serverThreadsWaitDuringReclaimMs: ms(duringReclaim.serverThreadsWaitNs),
    loadgenWaitMs: overWindow('loadgenWaitNs'),
    loadgenWaitDuringReclaimMs: ms(duringReclaim.loadgenWaitNs),
  };
}

/** Whether [from, to] meets one of `spans` (sorted, not overlapping). */
function overlapsAny(spans: Array<{ from: number; to: number }>, from: number, to: number): boolean {
  let lo = 0;
  let hi = spans.length;
  // The first span that ends at or after `from`.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (spans[mid]!.to < from) lo = mid + 1;
    else hi = mid;
  }
  return lo < spans.length && spans[lo]!.from <= to;
}
