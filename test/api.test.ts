import { afterEach, describe, expect, it } from 'vitest';
import { connectStation, startCsms, testDatabases, type TestCsms } from './helpers/csms.js';

/** Reads Server-Sent Events until `count` events arrived (or the time is up). */
async function readEvents(url: string, count: number, during: () => Promise<void>, timeoutMs = 5000): Promise<Array<{ event: string; data: any }>> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = res.body!.getReader();
  const events: Array<{ event: string; data: any }> = [];
  let buffer = '';
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const reading = (async () => {
    const decoder = new TextDecoder();
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
    }
  })();
  await during();
  await reading.catch(() => {});
  clearTimeout(timer);
  controller.abort();
  return events;
}

describe.each(testDatabases)('REST API (%s)', (database) => {
  let server: TestCsms;
  afterEach(async () => server?.stop());

  it('streams connects, boots, status changes, transaction starts and stops and meter values as Server-Sent Events', async () => {
    server = await startCsms({ database });
    let station: Awaited<ReturnType<typeof connectStation>> | undefined;
    const events = await readEvents(`${server.httpUrl}/api/v1/events?stationId=CP-SSE`, 7, async () => {
      station = await connectStation(server.ocppUrl, 'CP-SSE');
      await station.call('BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' });
      await station.call('StatusNotification', { connectorId: 1, status: 'Charging', errorCode: 'NoError' });
      const { transactionId } = await station.call('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 0, timestamp: new Date().toISOString() });
      await station.call('MeterValues', { connectorId: 1, transactionId, meterValue: [{ timestamp: new Date().toISOString(), sampledValue: [{ value: '10' }] }] });
      await station.call('StopTransaction', { transactionId, meterStop: 10, timestamp: new Date().toISOString() });
      await station.close();
    });
    expect(events.map((e) => e.event)).toEqual([
      'station.connected',
      'station.booted',
      'connector.status',
      'transaction.started',
      'meter.values',
      'transaction.stopped',
      'station.disconnected',
    ]);
    expect(events[5]!.data.transaction).toMatchObject({ stationId: 'CP-SSE', energyWh: 10 });
  });

  it('serves the OpenAPI document, the interactive docs, health and Prometheus metrics', async () => {
    server = await startCsms({ database });
    const doc = await server.api('GET', '/api/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    for (const path of ['/api/v1/stations', '/api/v1/stations/{id}', '/api/v1/stations/{id}/accept', '/api/v1/id-tags', '/api/v1/transactions', '/api/v1/transactions/{id}', '/api/v1/stations/{id}/commands/{action}', '/api/v1/events']) {
      expect(Object.keys(doc.body.paths)).toContain(path);
    }
    const docs = await fetch(`${server.httpUrl}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('<html');

    const station = await connectStation(server.ocppUrl, 'CP-METRICS');
    await station.call('BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' });
    await station.call('Heartbeat', {});
    expect((await server.api('GET', '/healthz')).body).toEqual({ status: 'ok', connectedStations: 1 });
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^ampyard_connected_stations 1$/m);
    expect(metrics).toMatch(/^ampyard_ocpp_messages_total\{action="Heartbeat",direction="in",type="2"\} 1$/m);
    expect(metrics).toMatch(/ampyard_ocpp_handle_duration_seconds_count\{action="BootNotification"\} 1/);
    // Counters are totals: a second scrape counts what came since on top, and nothing twice.
    await station.call('Heartbeat', {});
    const again = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(again).toMatch(/^ampyard_ocpp_messages_total\{action="Heartbeat",direction="in",type="2"\} 2$/m);
    expect(again).toMatch(/^ampyard_ocpp_messages_total\{action="Heartbeat",direction="out",type="3"\} 2$/m);
    expect(again).toMatch(/^ampyard_ocpp_messages_total\{action="BootNotification",direction="in",type="2"\} 1$/m);
    await station.close();
  });

  it('manages id tags: create, conflict, replace, list, delete, and Authorize sees each change', async () => {
    server = await startCsms({ database });
    expect((await server.api('POST', '/api/v1/id-tags', { idTag: 'PARENT', status: 'Accepted' })).status).toBe(201);
    expect((await server.api('POST', '/api/v1/id-tags', { idTag: 'CARD', status: 'Accepted', parentIdTag: 'PARENT', expiryDate: '2099-01-01T00:00:00Z' })).status).toBe(201);
    expect((await server.api('POST', '/api/v1/id-tags', { idTag: 'CARD', status: 'Accepted' })).status).toBe(409);
    const station = await connectStation(server.ocppUrl, 'CP-TAGS');
    await station.call('BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' });
    expect((await station.call('Authorize', { idTag: 'CARD' })).idTagInfo).toEqual({ status: 'Accepted', parentIdTag: 'PARENT', expiryDate: '2099-01-01T00:00:00.000Z' });
    expect((await server.api('PUT', '/api/v1/id-tags/CARD', { status: 'Blocked' })).status).toBe(200);
    expect((await station.call('Authorize', { idTag: 'CARD' })).idTagInfo).toEqual({ status: 'Blocked' });
    expect((await server.api('PUT', '/api/v1/id-tags/CARD', { status: 'Accepted', expiryDate: '2020-01-01T00:00:00Z' })).status).toBe(200);
    expect((await station.call('Authorize', { idTag: 'CARD' })).idTagInfo.status).toBe('Expired');
    expect((await server.api('GET', '/api/v1/id-tags')).body.items.map((t: any) => t.idTag)).toEqual(['CARD', 'PARENT']);
    expect((await server.api('DELETE', '/api/v1/id-tags/CARD')).status).toBe(204);
    expect((await server.api('DELETE', '/api/v1/id-tags/CARD')).status).toBe(404);
    expect((await station.call('Authorize', { idTag: 'CARD' })).idTagInfo).toEqual({ status: 'Invalid' });
    await station.close();
  });

  it('filters transactions by station, id tag, time range and activity, and answers ConcurrentTx for a tag already charging elsewhere', async () => {
    server = await startCsms({ database });
    await server.api('POST', '/api/v1/id-tags', { idTag: 'A', status: 'Accepted' });
    await server.api('POST', '/api/v1/id-tags', { idTag: 'B', status: 'Accepted' });
    const one = await connectStation(server.ocppUrl, 'CP-F1');
    const two = await connectStation(server.ocppUrl, 'CP-F2');
    for (const s of [one, two]) await s.call('BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' });
    const t1 = await one.call('StartTransaction', { connectorId: 1, idTag: 'A', meterStart: 0, timestamp: '2026-05-01T08:00:00Z' });
    await one.call('StopTransaction', { transactionId: t1.transactionId, meterStop: 1000, timestamp: '2026-05-01T09:00:00Z' });
    const t2 = await two.call('StartTransaction', { connectorId: 1, idTag: 'B', meterStart: 0, timestamp: '2026-05-02T08:00:00Z' });
    const t3 = await one.call('StartTransaction', { connectorId: 2, idTag: 'B', meterStart: 0, timestamp: '2026-05-02T08:30:00Z' });
    expect(t2.idTagInfo.status).toBe('Accepted');
    expect(t3.idTagInfo.status).toBe('ConcurrentTx');

    const ids = async (query: string) => (await server.api('GET', `/api/v1/transactions${query}`)).body.items.map((t: any) => t.id);
    expect(await ids('?stationId=CP-F1')).toEqual([t3.transactionId, t1.transactionId]);
    expect(await ids('?idTag=B')).toEqual([t3.transactionId, t2.transactionId]);
    expect(await ids('?active=true')).toEqual([t3.transactionId, t2.transactionId]);
    expect(await ids('?from=2026-05-01T00:00:00Z&to=2026-05-01T23:59:59Z')).toEqual([t1.transactionId]);
    expect(await ids('?limit=1&offset=1')).toEqual([t2.transactionId]);
    expect((await server.api('GET', '/api/v1/transactions/999999')).status).toBe(404);
    await one.close();
    await two.close();
  });
});
