import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { connectStation, startCsms, type TestCsms } from './helpers/csms.js';

const postgresUrl = process.env.AMPYARD_TEST_POSTGRES_URL;

describe.runIf(postgresUrl)('PostgreSQL connections that break', () => {
  let server: TestCsms;
  afterEach(async () => server?.stop());

  it('survives the database terminating its connections: the API and stations keep working on new ones', async () => {
    server = await startCsms({ database: 'postgres' });
    const station = await connectStation(server.ocppUrl, 'CP-OUTAGE');
    await station.call('BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' });
    expect((await server.api('GET', '/api/v1/stations')).status).toBe(200);

    const dbName = new URL(server.csms.config.db).pathname.slice(1);
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    // Connections are ended while queries run on them, as well as while they sit idle in the pool.
    const busy = Array.from({ length: 40 }, () => server.api('GET', '/api/v1/transactions?limit=1000').catch(() => undefined));
    const { rowCount } = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [dbName]);
    await Promise.all(busy);
    await admin.end();
    expect(rowCount).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 200));

    expect((await server.api('GET', '/api/v1/stations')).status).toBe(200);
    const { transactionId } = await station.call('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 0, timestamp: new Date().toISOString() });
    expect((await server.api('GET', `/api/v1/transactions/${transactionId}`)).body.active).toBe(true);
    await station.close();
  });
});
