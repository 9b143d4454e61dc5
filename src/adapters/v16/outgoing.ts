import { hashPassword } from '../../domain/passwords.js';
import type { V16Services } from './incoming.js';

/** Messages the central system sends to a 1.6 station (Core, profiles and the security extension). */
export const v16CsmsActions = [
  'CancelReservation',
  'CertificateSigned',
  'ChangeAvailability',
  'ChangeConfiguration',
  'ClearCache',
  'ClearChargingProfile',
  'DataTransfer',
  'DeleteCertificate',
  'ExtendedTriggerMessage',
  'GetCompositeSchedule',
  'GetConfiguration',
  'GetDiagnostics',
  'GetInstalledCertificateIds',
  'GetLocalListVersion',
  'GetLog',
  'InstallCertificate',
  'RemoteStartTransaction',
  'RemoteStopTransaction',
  'ReserveNow',
  'Reset',
  'SendLocalList',
  'SetChargingProfile',
  'SignedUpdateFirmware',
  'TriggerMessage',
  'UnlockConnector',
  'UpdateFirmware',
] as const;

export type V16CsmsAction = (typeof v16CsmsActions)[number];

export function isV16CsmsAction(action: string): action is V16CsmsAction {
  return (v16CsmsActions as readonly string[]).includes(action);
}

/**
 * Fills in what the central system knows and the operator may leave out: a ReserveNow for an id tag
 * with a parent carries that parentIdTag, so the reservation can also be used by a sibling card.
 */
export async function completeCommand(s: V16Services, stationId: string, action: string, payload: any): Promise<unknown> {
  // Profiles go out in the form the station accepts (its unit, its number of periods).
  if (action === 'SetChargingProfile' && payload?.csChargingProfiles?.chargingSchedule) {
    const fitted = await s.chargingProfiles.fitForStation(stationId, payload.csChargingProfiles);
    return fitted.changes.length === 0 ? payload : { ...payload, csChargingProfiles: fitted.profile };
  }
  if (action === 'RemoteStartTransaction' && payload?.chargingProfile?.chargingSchedule) {
    const fitted = await s.chargingProfiles.fitForStation(stationId, payload.chargingProfile);
    return fitted.changes.length === 0 ? payload : { ...payload, chargingProfile: fitted.profile };
  }
  if (action === 'ReserveNow' && payload && typeof payload.idTag === 'string' && payload.parentIdTag === undefined) {
    const tag = await s.store.getIdTag(payload.idTag);
    if (tag?.parentIdTag) return { ...payload, parentIdTag: tag.parentIdTag };
  }
  return payload;
}

/**
 * What the central system must remember once a station accepted a command: the local list
 * version it now holds, a reservation, a new Basic-auth password.
 */
export async function recordCommandOutcome(s: V16Services, stationId: string, action: string, request: any, response: any, source = 'api'): Promise<void> {
  switch (action) {
    case 'SendLocalList':
      if (response.status === 'Accepted') await s.store.updateStation(stationId, { localListVersion: request.listVersion });
      return;
    case 'GetLocalListVersion':
      if (response.listVersion >= 0) await s.store.updateStation(stationId, { localListVersion: response.listVersion });
      return;
    case 'ReserveNow':
      if (response.status === 'Accepted') {
        await s.store.createReservation({
          id: request.reservationId,
          stationId,
          connectorId: request.connectorId,
          idTag: request.idTag,
          parentIdTag: request.parentIdTag ?? null,
          expiryDate: new Date(request.expiryDate).toISOString(),
          status: 'active',
        });
      }
      return;
    case 'CancelReservation':
      if (response.status === 'Accepted') await s.store.updateReservation(request.reservationId, 'cancelled');
      return;
    case 'SetChargingProfile':
      if (response.status === 'Accepted') {
        await s.chargingProfiles.recordSet(stationId, request.connectorId, request.csChargingProfiles, source);
        // The balancer renews its short TxProfiles often; checking each would double the traffic.
        if (source !== 'balancer') s.afterProfileInstalled?.(stationId, request.connectorId, request.csChargingProfiles.chargingSchedule.chargingRateUnit);
      }
      return;
    case 'ClearChargingProfile':
      if (response.status === 'Accepted') await s.chargingProfiles.recordClear(stationId, request);
      return;
    case 'RemoteStartTransaction':
      // The station installs the TxProfile for the transaction it starts (OCPP 1.6 §5.11).
      if (response.status === 'Accepted' && request.chargingProfile && request.connectorId !== undefined) {
        await s.chargingProfiles.recordSet(stationId, request.connectorId, request.chargingProfile, 'api');
      }
      return;
    case 'ChangeConfiguration':
      // TC_073: Accepted means the station authenticates with the new AuthorizationKey from now on.
      // RebootRequired means it will after a reboot: both are accepted until it first uses the new one.
      if (request.key === 'AuthorizationKey' && response.status === 'Accepted') {
        await s.store.setStationPassword(stationId, await hashPassword(request.value));
      } else if (request.key === 'AuthorizationKey' && response.status === 'RebootRequired') {
        await s.store.setPendingStationPassword(stationId, await hashPassword(request.value));
      }
      return;
  }
}
