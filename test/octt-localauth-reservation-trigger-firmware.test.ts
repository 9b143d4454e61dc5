/**
 * OCTT conformance cases (OCPP 1.6, central system under test) for the Local Auth List Management,
 * Firmware Management, Reservation and Remote Trigger profiles. The OCPP client plays the charger:
 * it answers the CSMS's calls as the OCTT case's charger does and sends the notifications that
 * charger sends; the operator acts through the REST API.
 */
import { createRPCError } from 'ocpp-rpc';
import type { OcppTestClient } from './helpers/csms.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootStation, connectStation, startCsms, testDatabases, type TestCsms } from './helpers/csms.js';

type Handler = (payload: any) => unknown;

const now = () => new Date().toISOString();
const inOneHour = () => new Date(Date.now() + 3600_000).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(testDatabases)('OCTT local list, firmware, reservation and remote trigger (%s)', (database) => {
  let server: TestCsms;
  let clients: OcppTestClient[] = [];

  beforeEach(async () => {
    server = await startCsms({ database });
  });
  afterEach(async () => {
    for (const c of clients) await c.close({ force: true }).catch(() => {});
    clients = [];
    await server?.stop();
  });

  /** Connects and boots a one-connector charger; `received` lists the CALLs the CSMS sent it, in order. */
  async function charger(id: string, answers: Record<string, Handler> = {}, opts: { boot?: boolean; firmwareVersion?: string } = {}) {
    const received: Array<{ action: string; payload: any }> = [];
    const handlers = Object.fromEntries(
      Object.entries(answers).map(([action, answer]) => [
        action,
        (payload: any) => {
          received.push({ action, payload });
          return answer(payload);
        },
      ]),
    );
    const client = await connectStation(server.ocppUrl, id, { handlers });
    clients.push(client);
    if (opts.boot !== false) {
      if (opts.firmwareVersion) {
        await client.call('BootNotification', { chargePointVendor: 'Ampyard', chargePointModel: 'TestBox', firmwareVersion: opts.firmwareVersion });
        await status(client, 0, 'Available');
        await status(client, 1, 'Available');
      } else {
        await bootStation(client, 1);
      }
    }
    return { client, received, of: (action: string) => received.filter((r) => r.action === action).map((r) => r.payload) };
  }

  const status = (client: OcppTestClient, connectorId: number, s: string, errorCode = 'NoError') =>
    client.call('StatusNotification', { connectorId, status: s, errorCode, timestamp: now() });

  const command = (stationId: string, action: string, body: unknown) => server.api('POST', `/api/v1/stations/${stationId}/commands/${action}`, body);
  const stationView = async (stationId: string) => (await server.api('GET', `/api/v1/stations/${stationId}`)).body;
  const connectorStatus = async (stationId: string, connectorId: number) =>
    (await stationView(stationId)).connectors.find((c: any) => c.connectorId === connectorId)?.status;
  const reservations = async (stationId: string) => (await server.api('GET', `/api/v1/stations/${stationId}/reservations`)).body.items;
  /** The statuses of one kind of station event (FirmwareStatus, DiagnosticsStatus), oldest first. */
  const eventStatuses = async (stationId: string, kind: string) =>
    (await server.api('GET', `/api/v1/stations/${stationId}/events?kind=${kind}`)).body.items.map((e: any) => e.status).reverse();
  const idTag = (body: { idTag: string; status: string; expiryDate?: string; parentIdTag?: string }) => server.api('POST', '/api/v1/id-tags', body);

  describe('local authorization list', () => {
    /** A charger that holds a local list version and applies SendLocalList as `decide` says. */
    function localListAnswers(decide: (req: any) => string | Error = () => 'Accepted') {
      const state = { version: 0 };
      return {
        state,
        answers: {
          GetLocalListVersion: () => ({ listVersion: state.version }),
          SendLocalList: (req: any) => {
            const outcome = decide(req);
            if (outcome instanceof Error) throw outcome;
            if (outcome === 'Accepted') state.version = req.listVersion;
            return { status: outcome };
          },
        },
      };
    }

    it('TC_042_1_CSMS get local list version, not supported', async () => {
      let answer: Handler = () => ({ listVersion: -1 });
      const cp = await charger('CP-042-1', { GetLocalListVersion: (p) => answer(p) });

      const res = await command('CP-042-1', 'GetLocalListVersion', {});
      expect(res).toMatchObject({ status: 200, body: { listVersion: -1 } });
      expect(cp.of('GetLocalListVersion')).toEqual([{}]);
      // -1 means "no local list support", not a version the CSMS may record.
      expect((await stationView('CP-042-1')).localListVersion).toBe(0);

      // The other answer OCTT allows: a CALLERROR NotSupported.
      answer = () => {
        throw createRPCError('NotSupported', 'no local authorization list');
      };
      const err = await command('CP-042-1', 'GetLocalListVersion', {});
      expect(err.status).toBe(502);
      expect(err.body.ocppErrorCode).toBe('NotSupported');
      expect((await stationView('CP-042-1')).localListVersion).toBe(0);
    });

    it('TC_042_2_CSMS get local list version, empty', async () => {
      const { answers } = localListAnswers();
      const cp = await charger('CP-042-2', answers);

      const res = await command('CP-042-2', 'GetLocalListVersion', {});
      expect(res).toMatchObject({ status: 200, body: { listVersion: 0 } });
      expect((await stationView('CP-042-2')).localListVersion).toBe(0);

      // With an empty list on the charger, the next full list the CSMS sends is version 1.
      await idTag({ idTag: 'TAG-042', status: 'Accepted' });
      expect((await server.api('POST', '/api/v1/stations/CP-042-2/local-list')).body).toEqual({ status: 'Accepted' });
      expect(cp.of('SendLocalList')[0]).toMatchObject({ listVersion: 1, updateType: 'Full' });
    });

    it('TC_043_1_CSMS send local list, not supported', async () => {
      await idTag({ idTag: 'TAG-043-1', status: 'Accepted' });
      let outcome: string | Error = 'NotSupported';
      const { answers, state } = localListAnswers(() => outcome);
      const cp = await charger('CP-043-1', answers);

      const res = await server.api('POST', '/api/v1/stations/CP-043-1/local-list');
      expect(res).toMatchObject({ status: 200, body: { status: 'NotSupported' } });
      expect(cp.of('SendLocalList')[0]).toMatchObject({ updateType: 'Full', listVersion: 1 });
      expect((await stationView('CP-043-1')).localListVersion).toBe(0);

      outcome = createRPCError('NotSupported', 'no local authorization list') as Error;
      const err = await server.api('POST', '/api/v1/stations/CP-043-1/local-list');
      expect(err.status).toBe(502);
      expect(err.body.ocppErrorCode).toBe('NotSupported');
      expect((await stationView('CP-043-1')).localListVersion).toBe(0);
      expect(state.version).toBe(0);
    });

    it('TC_043_3_CSMS send local list, failed', async () => {
      await idTag({ idTag: 'TAG-043-3', status: 'Accepted' });
      const { answers } = localListAnswers(() => 'Failed');
      const cp = await charger('CP-043-3', answers);

      const res = await server.api('POST', '/api/v1/stations/CP-043-3/local-list');
      expect(res).toMatchObject({ status: 200, body: { status: 'Failed' } });
      expect(cp.of('SendLocalList')).toHaveLength(1);
      expect((await stationView('CP-043-3')).localListVersion).toBe(0);

      // Retried after the failure: still version 1, since the charger never took version 1.
      await server.api('POST', '/api/v1/stations/CP-043-3/local-list');
      expect(cp.of('SendLocalList')[1]).toMatchObject({ listVersion: 1, updateType: 'Full' });
      expect((await stationView('CP-043-3')).localListVersion).toBe(0);
    });

    it('TC_043_4_CSMS send local list, full', async () => {
      const expiry = '2030-01-01T00:00:00.000Z';
      await idTag({ idTag: 'PARENT-043', status: 'Accepted' });
      await idTag({ idTag: 'TAG-043-A', status: 'Accepted', expiryDate: expiry, parentIdTag: 'PARENT-043' });
      await idTag({ idTag: 'TAG-043-B', status: 'Blocked' });
      const { answers, state } = localListAnswers();
      const cp = await charger('CP-043-4', answers);

      const res = await server.api('POST', '/api/v1/stations/CP-043-4/local-list');
      expect(res).toMatchObject({ status: 200, body: { status: 'Accepted' } });
      const sent = cp.of('SendLocalList')[0];
      expect(sent).toMatchObject({ listVersion: 1, updateType: 'Full' });
      // Every entry carries an idTagInfo that says what the CSMS itself would answer.
      const byTag = Object.fromEntries(sent.localAuthorizationList.map((e: any) => [e.idTag, e.idTagInfo]));
      expect(byTag).toEqual({
        'PARENT-043': { status: 'Accepted' },
        'TAG-043-A': { status: 'Accepted', expiryDate: expiry, parentIdTag: 'PARENT-043' },
        'TAG-043-B': { status: 'Blocked' },
      });
      expect((await stationView('CP-043-4')).localListVersion).toBe(1);

      // The charger reports the version it now holds; the next full list is one higher.
      expect((await command('CP-043-4', 'GetLocalListVersion', {})).body).toEqual({ listVersion: 1 });
      await server.api('POST', '/api/v1/stations/CP-043-4/local-list');
      expect(cp.of('SendLocalList')[1]).toMatchObject({ listVersion: 2, updateType: 'Full' });
      expect(state.version).toBe(2);
      expect((await stationView('CP-043-4')).localListVersion).toBe(2);
    });

    it('TC_043_5_CSMS send local list, differential', async () => {
      await idTag({ idTag: 'TAG-043-5', status: 'Accepted' });
      let outcome = 'Accepted';
      const { answers, state } = localListAnswers(() => outcome);
      const cp = await charger('CP-043-5', answers);
      // Memory state: the initial list, sent as a full update.
      expect((await server.api('POST', '/api/v1/stations/CP-043-5/local-list')).body).toEqual({ status: 'Accepted' });
      expect((await command('CP-043-5', 'GetLocalListVersion', {})).body).toEqual({ listVersion: 1 });

      const differential = {
        listVersion: 2,
        updateType: 'Differential',
        localAuthorizationList: [{ idTag: 'TAG-043-NEW', idTagInfo: { status: 'Accepted' } }],
      };
      const res = await command('CP-043-5', 'SendLocalList', differential);
      expect(res).toMatchObject({ status: 200, body: { status: 'Accepted' } });
      expect(cp.of('SendLocalList')[1]).toEqual(differential);
      expect(state.version).toBe(2);
      expect((await stationView('CP-043-5')).localListVersion).toBe(2);

      // A differential update the charger refuses leaves the recorded version where it was.
      outcome = 'VersionMismatch';
      const mismatch = await command('CP-043-5', 'SendLocalList', { ...differential, listVersion: 3 });
      expect(mismatch.body).toEqual({ status: 'VersionMismatch' });
      expect((await stationView('CP-043-5')).localListVersion).toBe(2);
    });
  });

  describe('firmware management', () => {
    const firmwareUrl = 'https://firmware.example.com/testbox-2.0.0.bin';

    async function updateFirmware(stationId: string) {
      const cp = await charger(stationId, { UpdateFirmware: () => ({}) }, { firmwareVersion: '1.0.0' });
      const retrieveDate = now();
      const res = await command(stationId, 'UpdateFirmware', { location: firmwareUrl, retrieveDate, retries: 1 });
      expect(res).toMatchObject({ status: 200, body: {} });
      expect(cp.of('UpdateFirmware')).toEqual([{ location: firmwareUrl, retrieveDate, retries: 1 }]);
      return cp;
    }

    /** The charger restarts into its (new or old) firmware: reconnect, boot, report its connectors. */
    async function reboot(old: OcppTestClient, stationId: string, firmwareVersion: string) {
      await old.close();
      const { client } = await charger(stationId, {}, { firmwareVersion });
      return client;
    }

    const firmwareStatus = (client: OcppTestClient, s: string) => client.call('FirmwareStatusNotification', { status: s });

    it('TC_044_1_CSMS firmware update, download and install', async () => {
      const { client } = await updateFirmware('CP-044-1');
      await firmwareStatus(client, 'Downloading');
      await firmwareStatus(client, 'Downloaded');
      await status(client, 1, 'Unavailable');
      await firmwareStatus(client, 'Installing');
      const rebooted = await reboot(client, 'CP-044-1', '2.0.0');
      await firmwareStatus(rebooted, 'Installed');

      expect(await eventStatuses('CP-044-1', 'FirmwareStatus')).toEqual(['Downloading', 'Downloaded', 'Installing', 'Installed']);
      const station = await stationView('CP-044-1');
      expect(station.firmwareVersion).toBe('2.0.0');
      expect(station.connected).toBe(true);
    });

    it('TC_044_2_CSMS firmware update, download failed', async () => {
      const { client } = await updateFirmware('CP-044-2');
      await firmwareStatus(client, 'Downloading');
      await firmwareStatus(client, 'DownloadFailed');

      expect(await eventStatuses('CP-044-2', 'FirmwareStatus')).toEqual(['Downloading', 'DownloadFailed']);
      expect((await stationView('CP-044-2')).firmwareVersion).toBe('1.0.0');
    });

    it('TC_044_3_CSMS firmware update, installation failed', async () => {
      const { client } = await updateFirmware('CP-044-3');
      await firmwareStatus(client, 'Downloading');
      await firmwareStatus(client, 'Downloaded');
      await status(client, 1, 'Unavailable');
      await firmwareStatus(client, 'Installing');
      const rebooted = await reboot(client, 'CP-044-3', '1.0.0');
      await firmwareStatus(rebooted, 'InstallationFailed');

      expect(await eventStatuses('CP-044-3', 'FirmwareStatus')).toEqual(['Downloading', 'Downloaded', 'Installing', 'InstallationFailed']);
      const station = await stationView('CP-044-3');
      expect(station.firmwareVersion).toBe('1.0.0');
      expect(station.connectors.find((c: any) => c.connectorId === 1).status).toBe('Available');
    });

    async function getDiagnostics(stationId: string) {
      const cp = await charger(stationId, { GetDiagnostics: () => ({ fileName: `${stationId}-diagnostics.zip` }) });
      const location = 'ftp://user:secret@diagnostics.example.com/uploads/';
      const res = await command(stationId, 'GetDiagnostics', { location });
      expect(res).toMatchObject({ status: 200, body: { fileName: `${stationId}-diagnostics.zip` } });
      expect(cp.of('GetDiagnostics')).toEqual([{ location }]);
      return cp.client;
    }

    it('TC_045_1_CSMS get diagnostics', async () => {
      const client = await getDiagnostics('CP-045-1');
      await client.call('DiagnosticsStatusNotification', { status: 'Uploading' });
      await client.call('DiagnosticsStatusNotification', { status: 'Uploaded' });
      expect(await eventStatuses('CP-045-1', 'DiagnosticsStatus')).toEqual(['Uploading', 'Uploaded']);
    });

    it('TC_045_2_CSMS get diagnostics, upload failed', async () => {
      const client = await getDiagnostics('CP-045-2');
      await client.call('DiagnosticsStatusNotification', { status: 'Uploading' });
      await client.call('DiagnosticsStatusNotification', { status: 'UploadFailed' });
      expect(await eventStatuses('CP-045-2', 'DiagnosticsStatus')).toEqual(['Uploading', 'UploadFailed']);
    });
  });

  describe('reservation', () => {
    const reserve = (stationId: string, body: { connectorId: number; idTag: string; reservationId: number; expiryDate?: string; parentIdTag?: string }) =>
      command(stationId, 'ReserveNow', { expiryDate: inOneHour(), ...body });

    /** Authorize, plug in and start on connector 1 with the reservation, as the OCTT "Charging" state does. */
    async function chargeWithReservation(client: OcppTestClient, tag: string, reservationId: number) {
      const auth: any = await client.call('Authorize', { idTag: tag });
      await status(client, 1, 'Preparing');
      const start: any = await client.call('StartTransaction', { connectorId: 1, idTag: tag, meterStart: 1000, timestamp: now(), reservationId });
      await status(client, 1, 'Charging');
      return { auth, start };
    }

    it('TC_046_CSMS reserve a connector, transaction', async () => {
      await idTag({ idTag: 'TAG-046', status: 'Accepted' });
      const cp = await charger('CP-046', { ReserveNow: () => ({ status: 'Accepted' }) });
      const expiryDate = inOneHour();

      const res = await reserve('CP-046', { connectorId: 1, idTag: 'TAG-046', reservationId: 46, expiryDate });
      expect(res).toMatchObject({ status: 200, body: { status: 'Accepted' } });
      expect(cp.of('ReserveNow')).toEqual([{ connectorId: 1, idTag: 'TAG-046', reservationId: 46, expiryDate }]);
      expect(await reservations('CP-046')).toEqual([
        { id: 46, stationId: 'CP-046', connectorId: 1, idTag: 'TAG-046', parentIdTag: null, expiryDate: new Date(expiryDate).toISOString(), status: 'active' },
      ]);
      await status(cp.client, 1, 'Reserved');
      expect(await connectorStatus('CP-046', 1)).toBe('Reserved');

      const { auth, start } = await chargeWithReservation(cp.client, 'TAG-046', 46);
      expect(auth.idTagInfo.status).toBe('Accepted');
      expect(start.idTagInfo.status).toBe('Accepted');
      expect((await reservations('CP-046'))[0].status).toBe('used');
      const txs = (await server.api('GET', '/api/v1/transactions?stationId=CP-046')).body.items;
      expect(txs).toHaveLength(1);
      expect(txs[0]).toMatchObject({ id: start.transactionId, connectorId: 1, idTag: 'TAG-046', reservationId: 46, active: true });
    });

    it('TC_047_CSMS reservation expires', async () => {
      await idTag({ idTag: 'TAG-047', status: 'Accepted' });
      const cp = await charger('CP-047', { ReserveNow: () => ({ status: 'Accepted' }) });
      const expiryDate = new Date(Date.now() + 1500).toISOString();

      expect((await reserve('CP-047', { connectorId: 1, idTag: 'TAG-047', reservationId: 47, expiryDate })).body).toEqual({ status: 'Accepted' });
      await status(cp.client, 1, 'Reserved');
      expect((await reservations('CP-047'))[0]).toMatchObject({ id: 47, status: 'active' });

      // The driver does not come; at the expiry date the charger frees the connector.
      await sleep(Date.parse(expiryDate) - Date.now() + 50);
      await status(cp.client, 1, 'Available');
      expect(await connectorStatus('CP-047', 1)).toBe('Available');
      // The CSMS must no longer show the reservation as active.
      expect((await reservations('CP-047'))[0]).toMatchObject({ id: 47, status: 'expired' });
    });

    const refusals: Array<{ name: string; answer: string; prepare: (client: OcppTestClient, stationId: string) => Promise<void> }> = [
      { name: 'TC_048_1_CSMS reserve a connector, faulted', answer: 'Faulted', prepare: async (c) => void (await status(c, 1, 'Faulted', 'GroundFailure')) },
      { name: 'TC_048_2_CSMS reserve a connector, occupied', answer: 'Occupied', prepare: async (c) => void (await status(c, 1, 'Preparing')) },
      {
        name: 'TC_048_3_CSMS reserve a connector, unavailable',
        answer: 'Unavailable',
        prepare: async (c, stationId) => {
          const res = await command(stationId, 'ChangeAvailability', { connectorId: 1, type: 'Inoperative' });
          expect(res.body).toEqual({ status: 'Accepted' });
          await status(c, 1, 'Unavailable');
          expect(await connectorStatus(stationId, 1)).toBe('Unavailable');
        },
      },
      { name: 'TC_048_4_CSMS reserve a connector, rejected', answer: 'Rejected', prepare: async () => {} },
    ];

    for (const { name, answer, prepare } of refusals) {
      it(name, async () => {
        await idTag({ idTag: 'TAG-048', status: 'Accepted' });
        const stationId = `CP-048-${answer}`;
        const cp = await charger(stationId, { ReserveNow: () => ({ status: answer }), ChangeAvailability: () => ({ status: 'Accepted' }) });
        await prepare(cp.client, stationId);

        const res = await reserve(stationId, { connectorId: 1, idTag: 'TAG-048', reservationId: 48 });
        expect(res).toMatchObject({ status: 200, body: { status: answer } });
        expect(cp.of('ReserveNow')).toHaveLength(1);
        // A reservation the charger did not make is not recorded.
        expect(await reservations(stationId)).toEqual([]);
      });
    }

    it('TC_049_CSMS reserve the whole charge point (connector 0)', async () => {
      await idTag({ idTag: 'TAG-049', status: 'Accepted' });
      const cp = await charger('CP-049', { ReserveNow: () => ({ status: 'Accepted' }) });

      const res = await reserve('CP-049', { connectorId: 0, idTag: 'TAG-049', reservationId: 49 });
      expect(res.body).toEqual({ status: 'Accepted' });
      expect(cp.of('ReserveNow')[0]).toMatchObject({ connectorId: 0, reservationId: 49 });
      expect(await reservations('CP-049')).toEqual([expect.objectContaining({ id: 49, connectorId: 0, idTag: 'TAG-049', status: 'active' })]);

      // Any connector may serve a reservation of the whole charge point.
      const { start } = await chargeWithReservation(cp.client, 'TAG-049', 49);
      expect(start.idTagInfo.status).toBe('Accepted');
      expect((await reservations('CP-049'))[0].status).toBe('used');
      const tx = (await server.api('GET', `/api/v1/transactions/${start.transactionId}`)).body;
      expect(tx).toMatchObject({ connectorId: 1, idTag: 'TAG-049', reservationId: 49 });
    });

    it('TC_051_CSMS cancel reservation', async () => {
      await idTag({ idTag: 'TAG-051', status: 'Accepted' });
      const cp = await charger('CP-051', { ReserveNow: () => ({ status: 'Accepted' }), CancelReservation: () => ({ status: 'Accepted' }) });
      expect((await reserve('CP-051', { connectorId: 1, idTag: 'TAG-051', reservationId: 51 })).body).toEqual({ status: 'Accepted' });
      await status(cp.client, 1, 'Reserved');
      expect((await reservations('CP-051'))[0].status).toBe('active');

      const res = await command('CP-051', 'CancelReservation', { reservationId: 51 });
      expect(res).toMatchObject({ status: 200, body: { status: 'Accepted' } });
      expect(cp.of('CancelReservation')).toEqual([{ reservationId: 51 }]);
      await status(cp.client, 1, 'Available');
      expect((await reservations('CP-051'))[0]).toMatchObject({ id: 51, status: 'cancelled' });
      expect(await connectorStatus('CP-051', 1)).toBe('Available');
    });

    it('TC_052_CSMS cancel reservation, rejected', async () => {
      await idTag({ idTag: 'TAG-052', status: 'Accepted' });
      const cp = await charger('CP-052', { ReserveNow: () => ({ status: 'Accepted' }), CancelReservation: () => ({ status: 'Rejected' }) });
      expect((await reserve('CP-052', { connectorId: 1, idTag: 'TAG-052', reservationId: 52 })).body).toEqual({ status: 'Accepted' });

      const res = await command('CP-052', 'CancelReservation', { reservationId: 52 });
      expect(res).toMatchObject({ status: 200, body: { status: 'Rejected' } });
      // The charger still holds the reservation, so does the CSMS.
      expect((await reservations('CP-052'))[0]).toMatchObject({ id: 52, status: 'active' });

      // A reservation the charger does not know (OCTT's variant) is rejected as well and changes nothing.
      expect((await command('CP-052', 'CancelReservation', { reservationId: 5299 })).body).toEqual({ status: 'Rejected' });
      expect(await reservations('CP-052')).toEqual([expect.objectContaining({ id: 52, status: 'active' })]);
    });

    it('TC_053_CSMS reserved connector used with parentIdTag', async () => {
      await idTag({ idTag: 'PARENT-053', status: 'Accepted' });
      await idTag({ idTag: 'TAG-053-1', status: 'Accepted', parentIdTag: 'PARENT-053' });
      await idTag({ idTag: 'TAG-053-2', status: 'Accepted', parentIdTag: 'PARENT-053' });
      const cp = await charger('CP-053', { ReserveNow: () => ({ status: 'Accepted' }) });

      const res = await reserve('CP-053', { connectorId: 1, idTag: 'TAG-053-1', parentIdTag: 'PARENT-053', reservationId: 53 });
      expect(res.body).toEqual({ status: 'Accepted' });
      expect(cp.of('ReserveNow')[0]).toMatchObject({ connectorId: 1, idTag: 'TAG-053-1', parentIdTag: 'PARENT-053', reservationId: 53 });
      expect((await reservations('CP-053'))[0]).toMatchObject({ id: 53, idTag: 'TAG-053-1', parentIdTag: 'PARENT-053', status: 'active' });
      await status(cp.client, 1, 'Reserved');

      // Another card of the same group: the charger learns its parentIdTag from Authorize and lets it use the reservation.
      const { auth, start } = await chargeWithReservation(cp.client, 'TAG-053-2', 53);
      expect(auth.idTagInfo).toEqual({ status: 'Accepted', parentIdTag: 'PARENT-053' });
      expect(start.idTagInfo).toEqual({ status: 'Accepted', parentIdTag: 'PARENT-053' });
      expect((await reservations('CP-053'))[0].status).toBe('used');
      const tx = (await server.api('GET', `/api/v1/transactions/${start.transactionId}`)).body;
      expect(tx).toMatchObject({ idTag: 'TAG-053-2', reservationId: 53, authorization: 'Accepted' });
    });
  });

  describe('remote trigger', () => {
    it('TC_054_CSMS trigger message', async () => {
      // The charger answers Accepted, then sends the requested message once its answer is out.
      let client!: OcppTestClient;
      const sent: Array<Promise<unknown>> = [];
      const messages: Record<string, (connectorId?: number) => [string, unknown]> = {
        MeterValues: (c = 1) => [
          'MeterValues',
          { connectorId: c, meterValue: [{ timestamp: now(), sampledValue: [{ value: '4321', context: 'Trigger', measurand: 'Energy.Active.Import.Register', unit: 'Wh' }] }] },
        ],
        Heartbeat: () => ['Heartbeat', {}],
        StatusNotification: (c = 1) => ['StatusNotification', { connectorId: c, status: 'Preparing', errorCode: 'NoError', timestamp: now() }],
        DiagnosticsStatusNotification: () => ['DiagnosticsStatusNotification', { status: 'Idle' }],
        FirmwareStatusNotification: () => ['FirmwareStatusNotification', { status: 'Idle' }],
      };
      const cp = await charger('CP-054', {
        TriggerMessage: (req) => {
          const [action, payload] = messages[req.requestedMessage](req.connectorId);
          sent.push(sleep(20).then(() => client.call(action, payload)));
          return { status: 'Accepted' };
        },
      });
      client = cp.client;
      const trigger = async (body: { requestedMessage: string; connectorId?: number }) => {
        const res = await command('CP-054', 'TriggerMessage', body);
        expect(res).toMatchObject({ status: 200, body: { status: 'Accepted' } });
        await sent.at(-1);
      };

      await trigger({ requestedMessage: 'MeterValues', connectorId: 1 });
      const readings = (await server.api('GET', '/api/v1/stations/CP-054/meter-values')).body.items;
      expect(readings).toEqual([expect.objectContaining({ connectorId: 1, measurand: 'Energy.Active.Import.Register', context: 'Trigger', value: 4321 })]);

      const lastSeenBefore = (await stationView('CP-054')).lastSeenAt;
      await sleep(5);
      const beforeHeartbeat = now();
      await trigger({ requestedMessage: 'Heartbeat' });
      const lastSeen = (await stationView('CP-054')).lastSeenAt;
      expect(lastSeen > lastSeenBefore && lastSeen >= beforeHeartbeat).toBe(true);

      expect(await connectorStatus('CP-054', 1)).toBe('Available');
      await trigger({ requestedMessage: 'StatusNotification', connectorId: 1 });
      expect(await connectorStatus('CP-054', 1)).toBe('Preparing');

      await trigger({ requestedMessage: 'DiagnosticsStatusNotification' });
      expect(await eventStatuses('CP-054', 'DiagnosticsStatus')).toEqual(['Idle']);
      await trigger({ requestedMessage: 'FirmwareStatusNotification' });
      expect(await eventStatuses('CP-054', 'FirmwareStatus')).toEqual(['Idle']);

      expect(cp.of('TriggerMessage')).toEqual([
        { requestedMessage: 'MeterValues', connectorId: 1 },
        { requestedMessage: 'Heartbeat' },
        { requestedMessage: 'StatusNotification', connectorId: 1 },
        { requestedMessage: 'DiagnosticsStatusNotification' },
        { requestedMessage: 'FirmwareStatusNotification' },
      ]);
    });

    it('TC_055_CSMS trigger message, rejected', async () => {
      const cp = await charger('CP-055', { TriggerMessage: (req) => ({ status: req.requestedMessage === 'MeterValues' ? 'Rejected' : 'NotImplemented' }) });

      const res = await command('CP-055', 'TriggerMessage', { requestedMessage: 'MeterValues' });
      expect(res).toMatchObject({ status: 200, body: { status: 'Rejected' } });
      expect(cp.of('TriggerMessage')).toEqual([{ requestedMessage: 'MeterValues' }]);

      const notImplemented = await command('CP-055', 'TriggerMessage', { requestedMessage: 'DiagnosticsStatusNotification' });
      expect(notImplemented).toMatchObject({ status: 200, body: { status: 'NotImplemented' } });

      // The charger stays connected and usable after refusing.
      expect((await stationView('CP-055')).connected).toBe(true);
      expect(((await cp.client.call('Heartbeat', {})) as any).currentTime).toEqual(expect.any(String));
    });
  });
});
