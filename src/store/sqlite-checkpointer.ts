import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Holds the writer's commits while `during` runs: after the commit in progress is durable, before
 * the next one begins. Resolves once they may go on.
 */
export type PauseWrites = (during: () => Promise<void>) => Promise<void>;

export interface CheckpointerOptions {
  /** How often the worker checkpoints while it is not behind. */
  intervalMs: number;
  /** The log is restarted once the worker is within this many frames of its end… */
  finishWithinFrames: number;
  /** …and it has at least this many. */
  restartAfterFrames: number;
  /** A log this long is restarted however far behind the worker is (a hold that runs out lets the commits go on; the next report holds them again). */
  forceAfterFrames: number;
  /** The longest the writer's commits are held for one pass of the worker. */
  pauseMs: number;
}

const defaultOptions: CheckpointerOptions = { intervalMs: 100, finishWithinFrames: 256, restartAfterFrames: 2048, forceAfterFrames: 65536, pauseMs: 200 };

/**
 * Copies SQLite's write-ahead log back into the database file on a thread of its own.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages. Our writer is
 * the main thread, and with thousands of stations the pages a commit dirties are spread all over
 * the indexes, so that commit copies a thousand scattered pages and fsyncs the database file: 5 to
 * 18 ms during which no station is answered (1.3 % of commits in the 10,000-station steady
 * benchmark, which is what its p99 latency was made of). Here the writer never checkpoints; a
 * second connection on a worker thread does, in PASSIVE mode, which never waits for the writer and
 * never makes it wait. A commit stays a WAL append and one fsync.
 *
 * The WAL starts again from its beginning only when a write transaction begins with the whole log
 * already copied back, which a busy writer on another thread seldom sees. So the worker reports how
 * far it got, and once it is within a few pages of the end the writer's commits are held
 * (`restartLogBy`, between two transactions, the event loop going on) while the worker copies the
 * last pages; the next commit then restarts the log. Without that the WAL grew by 30 MB/s while
 * 10,000 stations booted. Until session 15 the writer copied those last pages itself (`finish`,
 * still the way when nothing holds the commits): a checkpoint with two fsyncs on the main thread,
 * which took a median 3.5 ms (up to 26) once a second at 1,000 messages a second, and 9 ms (up to
 * 17) twice a second under saturation.
 */
export class SqliteCheckpointer {
  private readonly options: CheckpointerOptions;
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private stopped = false;
  private closing?: Promise<void>;

  /** A restart of the log (a hold, or `finish`) is under way. */
  private restarting = false;
  private pauseWrites?: PauseWrites;
  /** The pass asked of the worker and not yet reported (one at a time, under `restarting`). */
  private asked: { pass: number; reported: () => void } | null = null;
  private passesAsked = 0;

  /**
   * @param finish runs `PRAGMA wal_checkpoint(PASSIVE)` on the writer's own connection, between
   *   its transactions
   */
  constructor(
    path: string,
    private readonly finish: () => Promise<void>,
    options: Partial<CheckpointerOptions> = {},
  ) {
    this.options = { ...defaultOptions, ...options };
    const betterSqlite3 = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(CHECKPOINT_WORKER, { eval: true, workerData: { path, intervalMs: this.options.intervalMs, betterSqlite3 } });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (progress: { log: number; checkpointed: number; pass?: number }) => this.onProgress(progress));
    // The main thread's exit must not wait for it; close() ends it properly.
    this.worker.unref();
    this.worker.on('error', (err) => {
      if (this.stopped) return;
      // Without checkpoints the WAL only grows; say so rather than fail the writer.
      process.emitWarning(`SQLite checkpointer stopped: ${err.message}; the WAL of ${path} will grow until the next start`);
    });
  }

  /**
   * From now on the log is restarted by holding the writer's commits for one pass of the worker,
   * rather than by `finish` on the writer's thread.
   */
  restartLogBy(pauseWrites: PauseWrites): void {
    this.pauseWrites = pauseWrites;
  }

  private onProgress({ log, checkpointed, pass }: { log: number; checkpointed: number; pass?: number }): void {
    if (pass !== undefined && pass === this.asked?.pass) this.asked.reported();
    if (this.restarting || this.stopped || log < this.options.restartAfterFrames) return;
    // A log the worker never catches up with (a writer that never pauses) is restarted anyway, at a size that bounds the disk used.
    if (log - checkpointed > this.options.finishWithinFrames && log < this.options.forceAfterFrames) return;
    this.restarting = true;
    (this.pauseWrites ? this.pauseWrites(() => this.passNow()) : this.finish())
      .catch(() => {
        /* busy with the worker's own pass, or closing: the next report tries again */
      })
      .finally(() => (this.restarting = false));
  }

  /**
   * Asks the worker for a pass now and resolves once it has reported it: with no commit since it
   * began, the whole log is then copied back. A worker that does not report within `pauseMs` (a
   * pass over a long log, or stopping) lets the commits go on; the next report tries again.
   */
  private passNow(): Promise<void> {
    const pass = ++this.passesAsked;
    return new Promise((resolve) => {
      const reported = () => {
        clearTimeout(timer);
        this.asked = null;
        resolve();
      };
      const timer = setTimeout(reported, this.options.pauseMs);
      this.asked = { pass, reported };
      this.worker.postMessage({ pass });
    });
  }

  /**
   * Stops the worker and resolves once it has closed its connection; a checkpoint it is in the
   * middle of completes first. The worker is asked, not terminated: a worker terminated while a
   * SQLite call of its was failing (its database removed at the same moment, as a test's clean-up
   * does) brought the whole process down with a V8 fatal error ("ToLocalChecked Empty MaybeLocal")
   * as better-sqlite3 built the error. Only a worker that does not stop within 5 s is terminated.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopped = true;
      this.worker.postMessage('stop');
      const stuck = setTimeout(() => void this.worker.terminate(), 5000);
      await this.exited;
      clearTimeout(stuck);
    })();
    return this.closing;
  }
}

// Plain CommonJS evaluated in the worker, so that it runs the same from src/ (tests) and dist/.
const CHECKPOINT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.betterSqlite3);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
let timer;
let stopping = false;
// Between two ticks only (a worker runs one thing at a time): never inside a checkpoint.
parentPort.on('message', (message) => {
  if (stopping) return;
  if (message !== 'stop') {
    // A pass asked for while the writer's commits are held: now rather than at the next tick.
    clearTimeout(timer);
    tick(message.pass);
    return;
  }
  stopping = true;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
const tick = (pass) => {
  let behind = false;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ log: r.log, checkpointed: r.checkpointed, pass });
    behind = r.busy === 0 && r.checkpointed < r.log;
  } catch (err) {
    // SQLITE_BUSY: another checkpoint is running (a second process, or the writer). Try again later.
    if (err.code !== 'SQLITE_BUSY' && err.code !== 'SQLITE_LOCKED') throw err;
    // A pass the writer waits for is answered all the same, as one that found no log.
    if (pass !== undefined) parentPort.postMessage({ log: 0, checkpointed: 0, pass });
  }
  // Still behind a writer that keeps appending: go on at once rather than fall further behind.
  if (!stopping) timer = setTimeout(tick, behind ? 0 : workerData.intervalMs);
};
timer = setTimeout(tick, workerData.intervalMs);
`;
