import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openDatabase, type OpenedDatabase } from './database.js';
import { KyselyStore } from './kysely-store.js';

const dirs: string[] = [];
const opened: OpenedDatabase[] = [];
const stores: KyselyStore[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const s of stores.splice(0)) await s.close();
  for (const o of opened.splice(0)) {
    await o.db.destroy();
    await o.checkpointerStopped?.();
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function databasePath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ampyard-durable-'));
  dirs.push(dir);
  return join(dir, 'csms.sqlite');
}

/** The prototype every FileHandle shares, to watch its datasync. */
async function fileHandlePrototype(): Promise<FileHandle> {
  const handle = await open(process.execPath, 'r');
  await handle.close();
  return Object.getPrototypeOf(handle) as FileHandle;
}

const synchronousOf = (o: OpenedDatabase) => o.sqlite!.pragma('synchronous', { simple: true });

describe('SQLite commits made durable off the main thread (ADR 0010)', () => {
  it('with FULL (the default) the connection commits with NORMAL and the store syncs the write-ahead log before it acknowledges a write', async () => {
    const path = databasePath();
    const prototype = await fileHandlePrototype();
    const events: string[] = [];
    const syncedFiles = new Set<string>();
    const datasync = prototype.datasync;
    vi.spyOn(prototype, 'datasync').mockImplementation(async function (this: FileHandle) {
      syncedFiles.add(readlinkSync(`/proc/self/fd/${this.fd}`));
      events.push('sync started');
      // A slow disk: the write must not be acknowledged before its sync is over.
      await new Promise((r) => setTimeout(r, 50));
      await datasync.call(this);
      events.push('synced');
    });
    const store = await KyselyStore.open(`sqlite:${path}`);
    stores.push(store);
    // Opening the store writes too (it folds what a previous run left); only this write counts here.
    events.splice(0);
    await store.addStationEvent({ stationId: 'CP-1', kind: 'SecurityEvent', status: null, timestamp: '2026-12-07T08:00:00.000Z', payload: { type: 'Test' } });
    events.push('acknowledged');
    expect(events).toEqual(['sync started', 'synced', 'acknowledged']);
    expect([...syncedFiles]).toEqual([`${path}-wal`]);
  });

  it('reports the connection at NORMAL with a log to sync only for a file database that asks for FULL', async () => {
    const full = await openDatabase(`sqlite:${databasePath()}`);
    opened.push(full);
    expect(synchronousOf(full)).toBe(1);
    expect(full.syncLog).toBeTypeOf('function');
    await full.syncLog!();

    const normal = await openDatabase(`sqlite:${databasePath()}`, { sqliteSynchronous: 'NORMAL' });
    opened.push(normal);
    expect(synchronousOf(normal)).toBe(1);
    expect(normal.syncLog).toBeUndefined();

    const memory = await openDatabase('sqlite::memory:');
    opened.push(memory);
    expect(memory.syncLog).toBeUndefined();
  });

  it('does not sync at all when NORMAL is asked for', async () => {
    const prototype = await fileHandlePrototype();
    const datasync = vi.spyOn(prototype, 'datasync');
    const store = await KyselyStore.open(`sqlite:${databasePath()}`, { sqliteSynchronous: 'NORMAL' });
    stores.push(store);
    await store.addStationEvent({ stationId: 'CP-1', kind: 'SecurityEvent', status: null, timestamp: '2026-12-07T08:00:00.000Z', payload: {} });
    expect(datasync).not.toHaveBeenCalled();
  });
});
