import { afterEach, describe, expect, it, vi } from 'vitest';
import { sql } from 'kysely';
import { openDatabase, type OpenedDatabase } from './database.js';
import { GroupCommitter } from './group-commit.js';

describe('group commit', () => {
  let opened: OpenedDatabase;
  afterEach(async () => opened?.db.destroy());

  it('commits writes that arrive together in one database transaction and settles each caller after it', async () => {
    opened = await openDatabase('sqlite::memory:');
    const db = opened.db;
    let transactions = 0;
    const original = db.transaction.bind(db);
    (db as any).transaction = () => {
      transactions += 1;
      return original();
    };
    // A budget no machine reaches with 50 inserts: this test is about batching, not the budget.
    const committer = new GroupCommitter(db, { budgetMs: 60_000 });
    const writes = Array.from({ length: 50 }, (_, i) =>
      committer.run((trx) => trx.insertInto('id_tags').values({ id_tag: `T${i}`, status: 'Accepted', expiry_date: null, parent_id_tag: null }).execute().then(() => i)),
    );
    expect(await Promise.all(writes)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(transactions).toBe(1);
    const { count } = (await sql<{ count: number }>`select count(*) as count from id_tags`.execute(db)).rows[0]!;
    expect(Number(count)).toBe(50);
  });

  it('fails only the write that breaks, not the others in its batch', async () => {
    opened = await openDatabase('sqlite::memory:');
    const committer = new GroupCommitter(opened.db);
    const insert = (id: string) => committer.run((trx) => trx.insertInto('id_tags').values({ id_tag: id, status: 'Accepted', expiry_date: null, parent_id_tag: null }).execute());
    const results = await Promise.allSettled([insert('A'), insert('B'), insert('A'), insert('C')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const rows = await opened.db.selectFrom('id_tags').select('id_tag').orderBy('id_tag').execute();
    expect(rows.map((r) => r.id_tag)).toEqual(['A', 'B', 'C']);
  });

  it('commits what it has once a batch runs past its time budget, letting the event loop run between transactions', async () => {
    opened = await openDatabase('sqlite::memory:');
    let transactions = 0;
    const original = opened.db.transaction.bind(opened.db);
    (opened.db as any).transaction = () => {
      transactions += 1;
      return original();
    };
    const committer = new GroupCommitter(opened.db, { budgetMs: 5 });
    const busy = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    // Ten writes of 3 ms each: at most two fit in one 5 ms budget.
    let loopTurns = 0;
    const ticker = setInterval(() => (loopTurns += 1), 0);
    const writes = Array.from({ length: 10 }, (_, i) =>
      committer.run(async (trx) => {
        busy(3);
        await trx.insertInto('id_tags').values({ id_tag: `T${i}`, status: 'Accepted', expiry_date: null, parent_id_tag: null }).execute();
        return i;
      }),
    );
    expect(await Promise.all(writes)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    clearInterval(ticker);
    expect(transactions).toBeGreaterThanOrEqual(5);
    expect(loopTurns).toBeGreaterThanOrEqual(3);
    const rows = await opened.db.selectFrom('id_tags').select('id_tag').execute();
    expect(rows).toHaveLength(10);
  });

  it('settles callers only once what they wrote is made durable, and fails them when it cannot be', async () => {
    opened = await openDatabase('sqlite::memory:');
    let syncs = 0;
    let finishSync: (() => void) | undefined;
    let failSync: ((err: Error) => void) | undefined;
    const committer = new GroupCommitter(opened.db, {
      madeDurable: () =>
        new Promise<void>((resolve, reject) => {
          syncs += 1;
          finishSync = resolve;
          failSync = reject;
        }),
    });
    const insert = (id: string) => committer.run((trx) => trx.insertInto('id_tags').values({ id_tag: id, status: 'Accepted', expiry_date: null, parent_id_tag: null }).execute().then(() => id));
    let settled = false;
    const first = insert('A').finally(() => (settled = true));
    await vi.waitFor(() => expect(syncs).toBe(1));
    // Committed (a reader sees it) but not yet durable: its caller waits.
    expect(await opened.db.selectFrom('id_tags').select('id_tag').execute()).toEqual([{ id_tag: 'A' }]);
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    finishSync!();
    expect(await first).toBe('A');

    const second = insert('B');
    await vi.waitFor(() => expect(syncs).toBe(2));
    failSync!(new Error('EIO: the disk went away'));
    await expect(second).rejects.toThrow('EIO');
  });

  it('pauseFor waits for the commit in progress to be durable, then holds the next one until its work is done, while the event loop goes on', async () => {
    opened = await openDatabase('sqlite::memory:');
    let makeDurable!: () => void;
    let durable = new Promise<void>((resolve) => (makeDurable = resolve));
    const committer = new GroupCommitter(opened.db, { madeDurable: () => durable });
    const insert = (id: string) => committer.run((trx) => trx.insertInto('id_tags').values({ id_tag: id, status: 'Accepted', expiry_date: null, parent_id_tag: null }).execute());
    const stored = async () => (await opened.db.selectFrom('id_tags').select('id_tag').orderBy('id_tag').execute()).map((r) => r.id_tag);
    const first = insert('A');
    // The commit of A begins at the next turn and then waits for its sync.
    await new Promise((r) => setImmediate(r));
    let release!: () => void;
    let pausedAfter: string[] | undefined;
    const pause = committer.pauseFor(async () => {
      pausedAfter = await stored();
      await new Promise<void>((resolve) => (release = resolve));
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(pausedAfter).toBeUndefined();
    makeDurable();
    durable = Promise.resolve();
    await first;
    const second = insert('B');
    let secondDone = false;
    void second.then(() => (secondDone = true));
    // Timers run while the commits are held.
    await new Promise((r) => setTimeout(r, 20));
    expect(pausedAfter).toEqual(['A']);
    expect(secondDone).toBe(false);
    expect(await stored()).toEqual(['A']);
    release();
    await pause;
    await second;
    expect(await stored()).toEqual(['A', 'B']);
    // drain() waits for a pause too.
    const third = insert('C');
    let releaseAgain!: () => void;
    void committer.pauseFor(() => new Promise<void>((resolve) => (releaseAgain = resolve)));
    setTimeout(() => releaseAgain(), 10);
    await committer.drain();
    await third;
    expect(await stored()).toEqual(['A', 'B', 'C']);
    // A pause whose work fails lets the commits go on, and drain() with them.
    const fourth = insert('D');
    const failing = committer.pauseFor(() => Promise.reject(new Error('the worker is gone')));
    const drained = committer.drain();
    await expect(failing).rejects.toThrow('the worker is gone');
    await drained;
    await fourth;
    expect(await stored()).toEqual(['A', 'B', 'C', 'D']);
  });
});
