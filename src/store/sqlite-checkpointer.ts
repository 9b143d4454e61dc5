import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

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
 * already copied back, which a busy writer on another thread never sees. So the worker reports how
 * far it got, and once it is within a few pages of the end the writer copies those last pages
 * itself (`finish`, about a millisecond) and its next commit restarts the log. Without that the WAL
 * grew by 30 MB/s while 10,000 stations booted.
 */
export class SqliteCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private stopped = false;
  private closing?: Promise<void>;

  private finishing = false;

  /**
   * @param finish runs `PRAGMA wal_checkpoint(PASSIVE)` on the writer's own connection, between
   *   its transactions
   */
  constructor(
    path: string,
    private readonly finish: () => Promise<void>,
    private readonly options = { intervalMs: 100, finishWithinFrames: 256, restartAfterFrames: 2048, forceAfterFrames: 65536 },
  ) {
    const betterSqlite3 = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(CHECKPOINT_WORKER, { eval: true, workerData: { path, intervalMs: options.intervalMs, betterSqlite3 } });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (progress: { log: number; checkpointed: number }) => this.onProgress(progress));
    // The main thread's exit must not wait for it; close() ends it properly.
    this.worker.unref();
    this.worker.on('error', (err) => {
      if (this.stopped) return;
      // Without checkpoints the WAL only grows; say so rather than fail the writer.
      process.emitWarning(`SQLite checkpointer stopped: ${err.message}; the WAL of ${path} will grow until the next start`);
    });
  }

  private onProgress({ log, checkpointed }: { log: number; checkpointed: number }): void {
    if (this.finishing || this.stopped || log < this.options.restartAfterFrames) return;
    // A log the worker never catches up with (a writer that never pauses) is finished anyway, once, at a size that bounds the disk used.
    if (log - checkpointed > this.options.finishWithinFrames && log < this.options.forceAfterFrames) return;
    this.finishing = true;
    this.finish()
      .catch(() => {
        /* busy with the worker's own pass, or closing: the next report tries again */
      })
      .finally(() => (this.finishing = false));
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
  if (message !== 'stop') return;
  stopping = true;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
const tick = () => {
  let behind = false;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ log: r.log, checkpointed: r.checkpointed });
    behind = r.busy === 0 && r.checkpointed < r.log;
  } catch (err) {
    // SQLITE_BUSY: another checkpoint is running (a second process, or the writer). Try again later.
    if (err.code !== 'SQLITE_BUSY' && err.code !== 'SQLITE_LOCKED') throw err;
  }
  // Still behind a writer that keeps appending: go on at once rather than fall further behind.
  if (!stopping) timer = setTimeout(tick, behind ? 0 : workerData.intervalMs);
};
timer = setTimeout(tick, workerData.intervalMs);
`;
