import { afterEach, describe, expect, it } from 'vitest';
import { KyselyStore } from '../store/kysely-store.js';
import { ChargingProfileService } from './charging-profiles.js';
import { InProcessEventBus } from './events.js';

const profile = (id: number) => ({
  chargingProfileId: id,
  stackLevel: 0,
  chargingProfilePurpose: 'TxDefaultProfile' as const,
  chargingProfileKind: 'Absolute' as const,
  chargingSchedule: { startSchedule: '2026-01-01T00:00:00Z', chargingRateUnit: 'A' as const, chargingSchedulePeriod: [{ startPeriod: 0, limit: 16 }] },
});

describe('the record of what a charger holds', () => {
  let store: KyselyStore;
  afterEach(async () => store?.close());

  it('keeps every profile when accepted answers for the same station are recorded at the same time', async () => {
    store = await KyselyStore.open('sqlite::memory:');
    await store.createStation({ id: 'CP', registration: 'accepted', securityProfile: 0, createdAt: new Date().toISOString() });
    const service = new ChargingProfileService(store, new InProcessEventBus(), { now: () => new Date() }, { verifyDurationS: 3600, supplyVoltage: 230 });
    await Promise.all([1, 2, 3, 4].map((connectorId) => service.recordSet('CP', connectorId, profile(10 + connectorId), 'balancer')));
    const held = await service.installed('CP');
    expect(held.map((p) => p.profile.chargingProfileId).sort()).toEqual([11, 12, 13, 14]);
  });

  describe('checking what the charger reports against the prediction', () => {
    const now = new Date('2026-06-01T12:00:00.000Z');
    // A TxDefaultProfile at 16 A until 12:30, then 10 A.
    const stepped = {
      ...profile(20),
      chargingSchedule: { startSchedule: '2026-06-01T12:00:00Z', chargingRateUnit: 'A' as const, chargingSchedulePeriod: [{ startPeriod: 0, limit: 16 }, { startPeriod: 1800, limit: 10 }] },
    };

    /** A service whose charger answers GetCompositeSchedule with the schedule seen from `lagS` seconds after our start. */
    async function serviceWithCharger(lagS: number, limits: { before: number; after: number }) {
      store = await KyselyStore.open('sqlite::memory:');
      await store.createStation({ id: 'CP', registration: 'accepted', securityProfile: 0, createdAt: now.toISOString() });
      const service = new ChargingProfileService(store, new InProcessEventBus(), { now: () => now }, { verifyDurationS: 3600, supplyVoltage: 230 });
      await service.recordSet('CP', 0, stepped, 'api');
      service.useSender({
        isConnected: () => true,
        send: async () => ({
          status: 'Accepted',
          connectorId: 0,
          scheduleStart: new Date(now.getTime() + lagS * 1000).toISOString(),
          chargingSchedule: {
            duration: 3600,
            chargingRateUnit: 'A',
            chargingSchedulePeriod: [
              { startPeriod: 0, limit: limits.before },
              { startPeriod: 1800 - lagS, limit: limits.after },
            ],
          },
        }),
      });
      return service;
    }

    it.each([
      ['answers a second after our start (a slow round trip)', 1],
      ['answers with its clock 3 s ahead', 3],
      ['answers with its clock 2 s behind', -2],
    ])('a charger that does what was predicted matches when it %s', async (_what, lagS) => {
      const service = await serviceWithCharger(lagS, { before: 16, after: 10 });
      expect(await service.verify('CP', 0, 'A')).toEqual({ matches: true, differences: [] });
      expect((await store.listAlarms({ stationId: 'CP', limit: 10 })).length).toBe(0);
    });

    it('a charger that reports another limit does not match, whatever its lag', async () => {
      const service = await serviceWithCharger(1, { before: 16, after: 12 });
      const comparison = await service.verify('CP', 0, 'A');
      expect(comparison?.matches).toBe(false);
      expect(comparison?.differences).toEqual([{ at: 1799, predicted: 10, reported: 12 }]);
    });
  });
});

