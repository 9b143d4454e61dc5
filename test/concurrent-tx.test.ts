import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { testDatabases } from './helpers/csms.js';
import { storePerTest } from './helpers/store.js';

const minute = (m: number) => new Date(Date.UTC(2026, 11, 7, 0, m)).toISOString();

describe.each(testDatabases)('ConcurrentTx: another open transaction of a tag (%s)', (kind) => {
  const stores = storePerTest(kind);

  it('finds an open transaction of the tag elsewhere, not the same start repeated and not the finished ones', async () => {
    const store = await stores.open();
    for (const id of ['CP-1', 'CP-2']) await store.createStation({ id, registration: 'accepted', securityProfile: 0, createdAt: minute(0) });
    // A shared fleet tag with a history of finished sessions on both stations.
    for (let i = 0; i < 40; i++) {
      const { transaction } = await store.startTransaction({ stationId: i % 2 ? 'CP-1' : 'CP-2', connectorId: 1, idTag: 'FLEET', startTime: minute(i), meterStart: 0, reservationId: null, authorization: 'Accepted' });
      await store.stopTransaction({ id: transaction.id, stopTime: minute(i), meterStop: 10, stopReason: null, stopIdTag: null });
    }
    const here = { stationId: 'CP-1', connectorId: 1, startTime: minute(100) };
    expect(await store.otherActiveTransactionOfIdTag('FLEET', here)).toBeUndefined();

    const { transaction: mine } = await store.startTransaction({ ...here, idTag: 'FLEET', meterStart: 0, reservationId: null, authorization: 'Accepted' });
    // The station repeating its own StartTransaction is not charging elsewhere.
    expect(await store.otherActiveTransactionOfIdTag('FLEET', here)).toBeUndefined();

    const there = { stationId: 'CP-2', connectorId: 1, startTime: minute(101) };
    expect((await store.otherActiveTransactionOfIdTag('FLEET', there))?.id).toBe(mine.id);
    expect(await store.otherActiveTransactionOfIdTag('OTHER', there)).toBeUndefined();

    await store.stopTransaction({ id: mine.id, stopTime: minute(102), meterStop: 20, stopReason: null, stopIdTag: null });
    expect(await store.otherActiveTransactionOfIdTag('FLEET', there)).toBeUndefined();
  });
});

describe('ConcurrentTx on SQLite', () => {
  const stores = storePerTest('sqlite');

  it('reads the open transactions of the tag through their own index, not every session the tag ever had', async () => {
    const store = await stores.open();
    const db = (store as unknown as { db: import('kysely').Kysely<any> }).db;
    const plan = await sql<{ detail: string }>`explain query plan select * from transactions where id_tag = ${'FLEET'} and stop_time is null and not (station_id = ${'CP-1'} and connector_id = ${1} and start_time = ${minute(0)}) limit 1`.execute(db);
    expect(plan.rows.map((r) => r.detail).join('; ')).toContain('USING INDEX transactions_open_id_tag');
  });
});
