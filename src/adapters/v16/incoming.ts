import { OcppError } from '../../ocpp/errors.js';
import type { AuthorizationService } from '../../domain/authorization.js';
import type { ChargingProfileService } from '../../domain/charging-profiles.js';
import type { EventBus, Store, Clock } from '../../domain/ports.js';
import type { StationService } from '../../domain/stations.js';
import { iso, type TransactionService } from '../../domain/transactions.js';
import type { Authorization } from '../../domain/types.js';

export interface V16Services {
  stations: StationService;
  chargingProfiles: ChargingProfileService;
  /** Called once a station accepted a profile; the CSMS then checks the station really applies it. */
  afterProfileInstalled?: (stationId: string, connectorId: number, unit: 'A' | 'W') => void;
  authorization: AuthorizationService;
  transactions: TransactionService;
  store: Store;
  events: EventBus;
  clock: Clock;
}

/** OCPP 1.6 IdTagInfo from the domain's Authorization. */
function idTagInfo(a: Authorization) {
  return {
    status: a.status,
    ...(a.expiryDate ? { expiryDate: a.expiryDate } : {}),
    ...(a.parentIdTag ? { parentIdTag: a.parentIdTag } : {}),
  };
}

type Handler = (stationId: string, payload: any) => Promise<unknown>;

/**
 * The station-initiated half of OCPP 1.6 (Core and the security extension), translated into domain
 * calls. Every handler returns only after what it stored is committed.
 */
export function v16IncomingHandlers(s: V16Services): Record<string, Handler> {
  /** Stores a status report a station sends about a job we gave it (firmware, diagnostics, logs…). */
  const stationEvent =
    (kind: string, status: (p: any) => string | null, answer: (p: any) => unknown = () => ({})): Handler =>
    async (stationId, p) => {
      const event = { stationId, kind, status: status(p), timestamp: s.clock.now().toISOString(), payload: p };
      await s.store.addStationEvent(event);
      s.events.publish({ type: 'station.event', at: event.timestamp, event });
      return answer(p);
    };

  return {
    async BootNotification(stationId, p) {
      const r = await s.stations.boot(stationId, {
        vendor: p.chargePointVendor,
        model: p.chargePointModel,
        serialNumber: p.chargePointSerialNumber ?? p.chargeBoxSerialNumber,
        firmwareVersion: p.firmwareVersion,
        iccid: p.iccid,
        imsi: p.imsi,
        meterType: p.meterType,
        meterSerialNumber: p.meterSerialNumber,
      });
      return { status: r.status, currentTime: r.currentTime.toISOString(), interval: r.intervalS };
    },

    async Heartbeat(stationId) {
      const now = await s.stations.touch(stationId);
      return { currentTime: now.toISOString() };
    },

    async StatusNotification(stationId, p) {
      await s.transactions.recordStatus({
        stationId,
        connectorId: p.connectorId,
        status: p.status,
        errorCode: p.errorCode,
        info: p.info ?? null,
        vendorId: p.vendorId ?? null,
        vendorErrorCode: p.vendorErrorCode ?? null,
        timestamp: p.timestamp,
      });
      return {};
    },

    async Authorize(_stationId, p) {
      return { idTagInfo: idTagInfo(await s.authorization.authorize(p.idTag)) };
    },

    async StartTransaction(stationId, p) {
      const { transaction, authorization } = await s.transactions.start({
        stationId,
        connectorId: p.connectorId,
        idTag: p.idTag,
        meterStart: p.meterStart,
        timestamp: p.timestamp,
        reservationId: p.reservationId,
      });
      return { transactionId: transaction.id, idTagInfo: idTagInfo(authorization) };
    },

    async StopTransaction(stationId, p) {
      const r = await s.transactions.stop({
        stationId,
        transactionId: p.transactionId,
        meterStop: p.meterStop,
        timestamp: p.timestamp,
        idTag: p.idTag,
        reason: p.reason,
        transactionData: p.transactionData,
      });
      return r.authorization ? { idTagInfo: idTagInfo(r.authorization) } : {};
    },

    async MeterValues(stationId, p) {
      await s.transactions.addMeterValues(stationId, p.connectorId, p.transactionId ?? null, p.meterValue);
      return {};
    },

    DataTransfer: stationEvent(
      'DataTransfer',
      () => null,
      // No vendor extension is known to us yet: OCPP's answer for an unknown vendorId.
      () => ({ status: 'UnknownVendorId' }),
    ),
    DiagnosticsStatusNotification: stationEvent('DiagnosticsStatus', (p) => p.status),
    FirmwareStatusNotification: stationEvent('FirmwareStatus', (p) => p.status),
    SecurityEventNotification: stationEvent('SecurityEvent', (p) => p.type),
    LogStatusNotification: stationEvent('LogStatus', (p) => p.status),
    SignedFirmwareStatusNotification: stationEvent('SignedFirmwareStatus', (p) => p.status),
    // The CSR is kept for the certificate authority that a later issue connects; accepting it tells
    // the station its request arrived (1.6 Security: the CertificateSigned call follows separately).
    SignCertificate: stationEvent('SignCertificate', () => 'Received', () => ({ status: 'Accepted' })),
  };
}

/** Actions a station may send before it is accepted (OCPP 1.6 §4.2.1: only BootNotification). */
const allowedBeforeAcceptance = new Set(['BootNotification']);

/** Wraps the handlers with the registration gate and the timestamps check. */
export function v16CallHandler(s: V16Services) {
  const handlers = v16IncomingHandlers(s);
  return async (stationId: string, action: string, payload: any): Promise<unknown> => {
    const handler = handlers[action];
    if (!handler) throw new OcppError('NotSupported', `${action} is a central-system-initiated message`);
    if (!allowedBeforeAcceptance.has(action) && !(s.stations.acceptedIfKnown(stationId) ?? (await s.stations.isAccepted(stationId)))) {
      throw new OcppError('SecurityError', 'station is not accepted by the central system; send BootNotification');
    }
    if (typeof payload.timestamp === 'string') {
      try {
        iso(payload.timestamp);
      } catch {
        throw new OcppError('PropertyConstraintViolation', `timestamp "${payload.timestamp}" is not a valid date-time`);
      }
    }
    // Awaited: an async function that returns a promise settles two turns of the microtask queue later.
    return await handler(stationId, payload);
  };
}
