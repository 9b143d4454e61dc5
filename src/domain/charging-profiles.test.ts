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
});
