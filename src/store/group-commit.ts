import type { Kysely, Transaction } from 'kysely';

/**
 * A write inside the group's transaction. It may finish synchronously (SQLite statements run on the
 * connection itself): then no promise is awaited for it.
 */
type Op<DB, T> = (trx: Transaction<DB>) => T | Promise<T>;
interface Queued<DB> {
  op: Op<DB, unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: writes that arrive while a commit is in progress wait and are committed together
 * in the next database transaction. Each caller's promise settles only after its write is durable,
 * so a station is never answered before its data is safe, while one fsync serves many stations.
 */
export class GroupCommitter<DB> {
  private queue: Queued<DB>[] = [];
  private flushing: Promise<void> | null = null;
  private scheduled = false;
  /** Set while `pauseFor` holds the commits. */
  private paused: Promise<void> | null = null;

  private readonly maxBatch: number;
  /**
   * How long one transaction may run its writes before it commits what it has. With SQLite every
   * await inside it is a microtask, so a batch holds the event loop from start to commit: 500
   * StatusNotifications of a connection storm took 400 ms. The rest waits for the next one.
   */
  private readonly budgetMs: number;
  /**
   * Makes what has been committed survive power loss, when the COMMIT itself does not wait for the
   * disk (SQLite's log synced on another thread, ADR 0010). Callers settle only after it.
   */
  private readonly madeDurable?: () => Promise<void>;

  constructor(
    private readonly db: Kysely<DB>,
    options: { maxBatch?: number; budgetMs?: number; madeDurable?: () => Promise<void> } = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.budgetMs = options.budgetMs ?? 10;
    this.madeDurable = options.madeDurable;
  }

  run<T>(op: Op<DB, T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  /** Resolves when everything queued so far is committed. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.flushing || this.paused) {
      // A pause whose work failed has let the commits go on all the same.
      if (this.paused) await this.paused.catch(() => undefined);
      else if (this.flushing) await this.flushing;
      else await this.flush();
    }
  }

  /**
   * Runs `during` between two transactions: once the commit in progress is durable, and before the
   * next one begins. Writes queue meanwhile; the event loop goes on. One pause at a time: a second
   * call while one runs gets the first one's promise.
   */
  pauseFor(during: () => Promise<void>): Promise<void> {
    if (this.paused) return this.paused;
    const paused = (async () => {
      while (this.flushing) await this.flushing;
      await during();
    })().finally(() => {
      this.paused = null;
      if (this.queue.length > 0) this.schedule();
    });
    this.paused = paused;
    return paused;
  }

  private schedule(): void {
    if (this.scheduled || this.flushing || this.paused) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private flush(): Promise<void> {
    if (this.paused || this.flushing || this.queue.length === 0) return this.flushing ?? Promise.resolve();
    const batch = this.queue.splice(0, this.maxBatch);
    this.flushing = this.commit(batch).finally(() => {
      this.flushing = null;
      if (this.queue.length > 0) this.schedule();
    });
    return this.flushing;
  }

  private async commit(batch: Queued<DB>[]): Promise<void> {
    let results: unknown[];
    try {
      const started = performance.now();
      results = await this.db.transaction().execute(async (trx) => {
        const out: unknown[] = [];
        for (const item of batch) {
          const result = item.op(trx);
          out.push(result instanceof Promise ? await result : result);
          if (performance.now() - started > this.budgetMs) break;
        }
        return out;
      });
    } catch (batchError) {
      if (batch.length === 1) {
        batch[0]!.reject(batchError);
        return;
      }
      // One bad write must not fail its neighbours: commit each on its own to find it.
      const committed: Array<{ item: Queued<DB>; result: unknown }> = [];
      for (const item of batch) {
        try {
          committed.push({ item, result: await this.db.transaction().execute(async (trx) => item.op(trx)) });
        } catch (err) {
          item.reject(err);
        }
      }
      await this.settleWhenDurable(committed);
      return;
    }
    // What the budget left out goes first into the next transaction.
    if (results.length < batch.length) this.queue.unshift(...batch.slice(results.length));
    await this.settleWhenDurable(results.map((result, i) => ({ item: batch[i]!, result })));
  }

  private async settleWhenDurable(committed: Array<{ item: Queued<DB>; result: unknown }>): Promise<void> {
    if (this.madeDurable && committed.length > 0) {
      try {
        await this.madeDurable();
      } catch (err) {
        // Committed but perhaps not on the disk: the caller must not tell a station it is safe.
        for (const { item } of committed) item.reject(err);
        return;
      }
    }
    for (const { item, result } of committed) item.resolve(result);
  }
}
