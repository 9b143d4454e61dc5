import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { afterEach } from 'vitest';
import { KyselyStore } from '../../src/store/kysely-store.js';
import { migrationProvider } from '../../src/store/migrations.js';
import { freshDatabase, type TestDatabase } from './csms.js';

/**
 * A store on a fresh database of `kind` for each test of the calling suite, closed and dropped
 * after it. `migratedTo` gives the same database at an older migration, as raw Kysely, for a test
 * that stores data the old way before `open` brings the schema up to date.
 */
export function storePerTest(kind: 'sqlite' | 'postgres') {
  let database: TestDatabase | undefined;
  let store: KyselyStore | undefined;
  afterEach(async () => {
    await store?.close();
    await database?.drop();
    store = undefined;
    database = undefined;
  });
  return {
    async open(): Promise<KyselyStore> {
      database ??= await freshDatabase(kind);
      store = await KyselyStore.open(database.url);
      return store;
    },
    /** The caller destroys the returned Kysely before `open`. */
    async migratedTo(migration: string): Promise<Kysely<any>> {
      database ??= await freshDatabase(kind);
      const db =
        kind === 'sqlite'
          ? new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(database.url.slice('sqlite:'.length)) }) })
          : new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url, max: 1 }) }) });
      const { error } = await new Migrator({ db, provider: migrationProvider(kind) }).migrateTo(migration);
      if (error) throw error;
      return db;
    },
  };
}
