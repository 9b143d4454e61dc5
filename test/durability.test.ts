import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { connectStation, freshDatabase, testDatabases, type TestDatabase } from './helpers/csms.js';

/** Starts `ampyard serve` as a separate process and resolves with its HTTP URL once it listens. */
function serveProcess(dbUrl: string): Promise<{ child: ChildProcess; httpUrl: string; ocppUrl: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/serve-process.ts', 'serve', '--host', '127.0.0.1', '--port', '0', '--db', dbUrl, '--registration', 'open'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AMPYARD_LOG_LEVEL: 'info' },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start within 20 s')), 20000);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'ampyard listening') {
          clearTimeout(timer);
          resolve({ child, httpUrl: entry.httpUrl, ocppUrl: entry.ocppUrl });
        }
      } catch {
        /* not a log line */
      }
    });
  });
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const getJson = async (url: string) => (await fetch(url)).json() as Promise<any>;

describe.each(testDatabases)('durability: kill -9 right after an answer loses nothing answered (%s)', (database) => {
  let db: TestDatabase;
  let children: ChildProcess[] = [];
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) await killHard(c);
    children = [];
    await db?.drop();
  });

  it('keeps a transaction, its meter values and its stop when the server is killed the moment StopTransaction is answered', async () => {
    db = await freshDatabase(database);
    const first = await serveProcess(db.url);
    children.push(first.child);
    const station = await connectStation(first.ocppUrl, 'CP-KILL');
    await station.call('BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' });
    await station.call('StatusNotification', { connectorId: 1, status: 'Charging', errorCode: 'NoError', timestamp: '2026-02-01T09:59:59.000Z' });
    const { transactionId } = await station.call('StartTransaction', { connectorId: 1, idTag: 'ANY', meterStart: 5000, timestamp: '2026-02-01T10:00:00.000Z' });
    // Sent without waiting, as a station with a burst of queued readings does; each is answered only once durable.
    const answers = Array.from({ length: 30 }, (_, i) =>
      station.call('MeterValues', {
        connectorId: 1,
        transactionId,
        meterValue: [{ timestamp: new Date(Date.parse('2026-02-01T10:00:00Z') + (i + 1) * 1000).toISOString(), sampledValue: [{ value: String(5000 + (i + 1) * 10) }] }],
      }),
    );
    await Promise.all(answers);
    await station.call('StopTransaction', { transactionId, meterStop: 5300, timestamp: '2026-02-01T10:00:31.000Z', reason: 'EVDisconnected' });
    await killHard(first.child);
    station.close({ force: true }).catch(() => {});

    const second = await serveProcess(db.url);
    children.push(second.child);
    const tx = await getJson(`${second.httpUrl}/api/v1/transactions/${transactionId}`);
    expect(tx).toMatchObject({ id: transactionId, meterStart: 5000, meterStop: 5300, energyWh: 300, stopReason: 'EVDisconnected', active: false });
    expect(tx.meterValues.filter((m: any) => m.measurand === 'Energy.Active.Import.Register')).toHaveLength(30);
    const station2 = await getJson(`${second.httpUrl}/api/v1/stations/CP-KILL`);
    expect(station2.connectors[0]).toMatchObject({ connectorId: 1, status: 'Charging' });
    await killHard(second.child);
  });

  it('keeps a started transaction when the server is killed the moment StartTransaction is answered, and the ids stay monotonic after restart', async () => {
    db = await freshDatabase(database);
    const first = await serveProcess(db.url);
    children.push(first.child);
    const station = await connectStation(first.ocppUrl, 'CP-KILL2');
    await station.call('BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' });
    const { transactionId } = await station.call('StartTransaction', { connectorId: 2, idTag: 'ANY', meterStart: 0, timestamp: '2026-02-01T11:00:00.000Z' });
    await killHard(first.child);
    station.close({ force: true }).catch(() => {});

    const second = await serveProcess(db.url);
    children.push(second.child);
    const tx = await getJson(`${second.httpUrl}/api/v1/transactions/${transactionId}`);
    expect(tx).toMatchObject({ id: transactionId, stationId: 'CP-KILL2', connectorId: 2, active: true });
    const again = await connectStation(second.ocppUrl, 'CP-KILL2');
    await again.call('BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' });
    const next = await again.call('StartTransaction', { connectorId: 1, idTag: 'ANY', meterStart: 0, timestamp: '2026-02-01T11:05:00.000Z' });
    expect(next.transactionId).toBeGreaterThan(transactionId);
    await again.close();
    await killHard(second.child);
  });
});
