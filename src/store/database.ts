import { mkdirSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { SqliteCheckpointer, type PauseWrites } from './sqlite-checkpointer.js';
import { migrationProvider, type SqlFlavour } from './migrations.js';
import type { Database } from './schema.js';

export interface OpenedDatabase {
  db: Kysely<Database>;
  flavour: SqlFlavour;
  /** The URL with any password masked, for logs. */
  description: string;
  /**
   * The SQLite connection itself (statements cached), for the writes on the path of every
   * MeterValues: run synchronously inside a group commit, they skip Kysely's asynchronous layers.
   * Only for use inside a group-commit operation, which holds the connection's transaction.
   */
  sqlite?: BetterSqlite3.Database;
  /** SQLite: resolves once the checkpointer's thread has closed its connection, after `db.destroy()`. */
  checkpointerStopped?: () => Promise<void>;
  /**
   * SQLite on a file: hands the checkpointer the way to hold every write of this connection between
   * two transactions, so that it restarts the write-ahead log without checkpointing on the writer's
   * thread (see SqliteCheckpointer). Only for the one place all writes go through.
   */
  restartLogBy?: (pauseWrites: PauseWrites) => void;
  /**
   * SQLite with `synchronous` FULL on a file: what the connection has committed survives power
   * loss once this resolves. The connection runs with NORMAL, whose COMMIT does not wait for the
   * disk; this syncs the write-ahead log on libuv's thread pool instead of the main thread (ADR 0010).
   * Every write must be followed by it before anyone is told the write is safe.
   */
  syncLog?: () => Promise<void>;
}

export interface DatabaseOptions {
  /** SQLite `synchronous` pragma: FULL survives power loss, NORMAL survives a killed process. */
  sqliteSynchronous?: 'FULL' | 'NORMAL';
  poolSize?: number;
  /** Told about a pooled PostgreSQL connection that broke while idle (restart, failover, terminate). */
  onConnectionError?: (err: Error) => void;
}

/** Opens `sqlite:PATH`, `sqlite::memory:` or `postgres://…` and brings the schema up to date. */
export async function openDatabase(url: string, options: DatabaseOptions = {}): Promise<OpenedDatabase> {
  let opened: OpenedDatabase;
  let afterMigrations: (() => Promise<void>) | undefined;
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // int8 (bigserial ids, count(*)) arrives as text by default; our ids stay far below 2^53.
    pg.types.setTypeParser(20, (v: string) => Number(v));
    const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 });
    // A connection the server ends (restart, failover, pg_terminate_backend) emits 'error': on the
    // pool when it was idle, on the client itself when it was in use. Without a listener either one
    // would crash the process; the query in flight fails on its own and the pool opens a new client.
    pool.on('error', (err) => options.onConnectionError?.(err));
    pool.on('connect', (client) => client.on('error', (err) => options.onConnectionError?.(err)));
    opened = {
      db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
      flavour: 'postgres',
      description: url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@'),
    };
  } else if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const sqlite = new BetterSqlite3(path);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`synchronous = ${options.sqliteSynchronous ?? 'FULL'}`);
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    // A multi-row insert keeps a statement journal to undo itself; past 64 KiB (a chunk of the
    // message log) SQLite spilled it into a temporary file it created, wrote and deleted each time.
    sqlite.pragma('temp_store = MEMORY');
    // The log is copied back into the file off the main thread (see SqliteCheckpointer).
    let db: Kysely<Database> | undefined;
    const checkpointer = path === ':memory:' ? null : new SqliteCheckpointer(path, async () => void (await sql`pragma wal_checkpoint(PASSIVE)`.execute(db!)));
    if (checkpointer) sqlite.pragma('wal_autocheckpoint = 0');
    let log: FileHandle | undefined;
    const cached = withStatementCache(sqlite, () => {
      void checkpointer?.close();
      void log?.close();
    });
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cached }) });
    opened = {
      db,
      flavour: 'sqlite',
      description: url,
      sqlite: cached,
      checkpointerStopped: () => checkpointer?.close() ?? Promise.resolve(),
      restartLogBy: checkpointer ? (pauseWrites) => checkpointer.restartLogBy(pauseWrites) : undefined,
    };
    const wantFull = (options.sqliteSynchronous ?? 'FULL') === 'FULL';
    // After the migrations (below), which commit with FULL as they are.
    if (wantFull && path !== ':memory:') {
      afterMigrations = async () => {
        try {
          log = await open(`${path}-wal`, 'r');
        } catch {
          // No log file to sync (it appears with the first write): the connection keeps FULL.
          return;
        }
        // fdatasync covers the file whoever wrote it: the frames SQLite's COMMIT appended are what a
        // FULL commit would have synced before returning, and it is the same file until the last
        // connection closes.
        const file = log;
        sqlite.pragma('synchronous = NORMAL');
        opened.syncLog = () => file.datasync();
      };
    }
  } else {
    throw new Error(`database URL must start with sqlite: or postgres://, got "${url}"`);
  }
  const migrator = new Migrator({ db: opened.db, provider: migrationProvider(opened.flavour) });
  const { error } = await migrator.migrateToLatest();
  if (error) {
    await opened.db.destroy();
    throw new Error(`database migration failed on ${opened.description}: ${(error as Error).message ?? String(error)}`);
  }
  await afterMigrations?.();
  return opened;
}

/**
 * Kysely asks SQLite to prepare every query anew; preparing cost about a tenth of the CPU of a
 * MeterValues under load. The same SQL text gets the same prepared statement back instead.
 * better-sqlite3 statements can be run again and again (Kysely never iterates them lazily).
 */
function withStatementCache(sqlite: BetterSqlite3.Database, onClose: () => void, max = 2000): BetterSqlite3.Database {
  const cache = new Map<string, BetterSqlite3.Statement>();
  // Bound once: Kysely reaches for the database's methods on every query.
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(sqlite, {
    get(target, property, receiver) {
      if (property === 'close') {
        return () => {
          target.close();
          onClose();
          return receiver;
        };
      }
      if (property !== 'prepare') {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        let method = bound.get(property);
        if (!method) bound.set(property, (method = value.bind(target)));
        return method;
      }
      return (sql: string) => {
        let statement = cache.get(sql);
        if (!statement) {
          // Multi-row inserts vary with their row count: a bounded cache, emptied when full.
          if (cache.size >= max) cache.clear();
          statement = target.prepare(sql);
          cache.set(sql, statement);
        }
        return statement;
      };
    },
  });
}
