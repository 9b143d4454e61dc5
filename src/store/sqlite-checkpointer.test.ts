import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteCheckpointer } from './sqlite-checkpointer.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function database(): { path: string; db: BetterSqlite3.Database } {
  const dir = mkdtempSync(join(tmpdir(), 'ampyard-checkpoint-'));
  dirs.push(dir);
  const path = join(dir, 'db.sqlite');
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('create table t (id integer primary key, payload blob)');
  return { path, db };
}

const walBytes = (path: string) => statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0;
const tick = () => new Promise((r) => setImmediate(r));

/** Writes `commits` transactions of one 4 KB row, yielding between them as the server does; returns the largest WAL seen. */
async function write(db: BetterSqlite3.Database, path: string, commits: number): Promise<number> {
  const insert = db.prepare('insert into t (payload) values (?)');
  let largest = 0;
  for (let i = 0; i < commits; i++) {
    insert.run(Buffer.alloc(4096, i % 256));
    largest = Math.max(largest, walBytes(path));
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    else await tick();
  }
  return largest;
}

/** A checkpointer that restarts the log after 256 frames, on the test's own connection. */
const smallLogCheckpointer = (path: string, db: BetterSqlite3.Database, intervalMs: number) =>
  new SqliteCheckpointer(path, async () => void db.pragma('wal_checkpoint(PASSIVE)'), { intervalMs, finishWithinFrames: 64, restartAfterFrames: 256, forceAfterFrames: 4096 });

describe('SqliteCheckpointer', () => {
  it('keeps the write-ahead log bounded while the writer never checkpoints itself, and loses nothing', async () => {
    const { path, db } = database();
    const checkpointer = smallLogCheckpointer(path, db, 5);
    const largest = await write(db, path, 3000);
    await checkpointer.close();
    // 3,000 commits of at least two 4 KB pages each would be over 24 MB of log without checkpoints.
    expect(largest).toBeLessThan(8 * 2 ** 20);
    // The database file itself holds the rows: the worker copied them back.
    expect(statSync(path).size).toBeGreaterThan(3000 * 4096);
    db.close();
    const reopened = new BetterSqlite3(path, { readonly: true });
    expect(reopened.prepare('select count(*) as n from t').get()).toEqual({ n: 3000 });
    reopened.close();
  });

  it('close() asks the worker to stop and resolves once it has closed its connection, also when the files are removed meanwhile', async () => {
    const { path, db } = database();
    const checkpointer = smallLogCheckpointer(path, db, 1);
    await write(db, path, 200);
    db.close();
    // What a test's clean-up does: the directory goes while the worker may be checkpointing.
    rmSync(join(path, '..'), { recursive: true, force: true });
    const closing = checkpointer.close();
    expect(checkpointer.close()).toBe(closing);
    await closing;
    // The worker's thread is gone: nothing holds the removed files open any more.
    const held = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(path);
      } catch {
        return false;
      }
    });
    expect(held).toEqual([]);
  });

  it('restarts the log by holding the writer between two commits for a pass of the worker, never checkpointing on the writer', async () => {
    const { path, db } = database();
    let finishes = 0;
    const checkpointer = new SqliteCheckpointer(path, async () => void (finishes += 1), { intervalMs: 5, finishWithinFrames: 64, restartAfterFrames: 256, forceAfterFrames: 4096 });
    // The writer below checks the hold before each commit, as the store's group commit does.
    let held: Promise<void> | null = null;
    let holds = 0;
    checkpointer.restartLogBy((during) => {
      holds += 1;
      held = during().finally(() => (held = null));
      return held;
    });
    const insert = db.prepare('insert into t (payload) values (?)');
    let largest = 0;
    for (let i = 0; i < 3000; i++) {
      if (held) await held;
      insert.run(Buffer.alloc(4096, i % 256));
      largest = Math.max(largest, walBytes(path));
      // Never a pause of its own: left alone, the worker seldom finds the whole log copied back.
      await tick();
    }
    await checkpointer.close();
    expect(finishes).toBe(0);
    expect(holds).toBeGreaterThan(0);
    expect(largest).toBeLessThan(8 * 2 ** 20);
    db.close();
    const reopened = new BetterSqlite3(path, { readonly: true });
    expect(reopened.prepare('select count(*) as n from t').get()).toEqual({ n: 3000 });
    reopened.close();
  });

  it('without it the same writes grow the log without bound (what the test above guards against)', async () => {
    const { path, db } = database();
    const largest = await write(db, path, 1000);
    expect(largest).toBeGreaterThan(1000 * 4096);
    db.close();
  });
});
