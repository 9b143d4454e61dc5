import { describe, expect, it } from 'vitest';
import { InProcessEventBus } from './events.js';
import { LiveLoad } from './live-load.js';
import { normaliseSample } from './meter.js';

const at = '2026-12-07T05:00:00.000Z';
function meterValues(bus: InProcessEventBus, stationId: string, connectorId: number, sampled: Array<{ measurand: string; value: string; phase?: string; unit?: string }>) {
  const readings = normaliseSample({ stationId, connectorId, transactionId: 1 }, at, sampled);
  bus.publish({ type: 'meter.values', at, stationId, connectorId, transactionId: 1, readings });
}

describe('LiveLoad', () => {
  it('takes the power of the connector as a whole and the current of each phase, L1-N counting as L1', () => {
    const bus = new InProcessEventBus(() => undefined);
    const load = new LiveLoad(bus);
    meterValues(bus, 'CP1', 1, [
      { measurand: 'Power.Active.Import', value: '5', unit: 'kW', phase: 'L1' },
      { measurand: 'Power.Active.Import', value: '11000', unit: 'W' },
      { measurand: 'Current.Import', value: '16', phase: 'L1-N' },
      { measurand: 'Current.Import', value: '15', phase: 'L2' },
      { measurand: 'Current.Import', value: '14', phase: 'L3' },
      { measurand: 'Current.Import', value: '2', phase: 'N' },
    ]);
    expect(load.of('CP1', 1)).toEqual({ powerW: 11000, currentA: { L1: 16, L2: 15, L3: 14 }, at });
  });

  it('without power, sums the phase currents at 230 V; a current without phase is L1', () => {
    const bus = new InProcessEventBus(() => undefined);
    const load = new LiveLoad(bus);
    meterValues(bus, 'CP1', 2, [{ measurand: 'Current.Import', value: '10' }]);
    // No voltage, so no derived power either.
    expect(load.of('CP1', 2)).toEqual({ powerW: 2300, currentA: { L1: 10, L2: 0, L3: 0 }, at });
  });

  it('with power only, spreads it over three phases at 230 V; readings of neither leave the last load as it was', () => {
    const bus = new InProcessEventBus(() => undefined);
    const load = new LiveLoad(bus);
    meterValues(bus, 'CP1', 1, [{ measurand: 'Power.Active.Import', value: '6.9', unit: 'kW' }]);
    expect(load.of('CP1', 1)).toEqual({ powerW: 6900, currentA: { L1: 10, L2: 10, L3: 10 }, at });
    meterValues(bus, 'CP1', 1, [{ measurand: 'Energy.Active.Import.Register', value: '1000' }]);
    expect(load.of('CP1', 1)?.powerW).toBe(6900);
    bus.publish({ type: 'station.disconnected', at, stationId: 'CP1', reason: 'closed' });
    expect(load.of('CP1', 1)).toBeUndefined();
  });
});
