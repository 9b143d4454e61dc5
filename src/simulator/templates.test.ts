import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { loadTemplate, shippedTemplateNames, TemplateError } from './templates.js';

const dir = mkdtempSync(join(tmpdir(), 'ampyard-templates-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('station templates', () => {
  it('ships the four templates with their electrics and rate units', () => {
    expect(shippedTemplateNames()).toEqual(['ac-22kw-wallbox', 'ac-2x11kw-post', 'dc-150kw-depot', 'dc-2x300kw-hpc']);
    expect(loadTemplate('ac-22kw-wallbox')).toMatchObject({ kind: 'AC', connectors: 1, phases: 3, maxCurrentPerConnectorA: 32 });
    expect(loadTemplate('ac-2x11kw-post')).toMatchObject({ kind: 'AC', connectors: 2, maxCurrentPerConnectorA: 16, supportedRateUnits: ['A', 'W'] });
    expect(loadTemplate('dc-150kw-depot')).toMatchObject({ kind: 'DC', connectors: 1, maxPowerPerConnectorW: 150000, supportedRateUnits: ['W'] });
    const hpc = loadTemplate('dc-2x300kw-hpc');
    expect(hpc).toMatchObject({ kind: 'DC', connectors: 2, maxPowerPerConnectorW: 300000 });
    expect(hpc.stationMaxPowerW).toBeLessThan(2 * hpc.maxPowerPerConnectorW);
    // Only the post has sockets whose lock UnlockConnector can release; the others have tethered cables.
    expect(shippedTemplateNames().map((name) => loadTemplate(name).fixedCable)).toEqual([true, false, true, true]);
  });

  it('marks the configuration keys OCPP 1.6 makes read-only, and AuthorizationKey write-only', () => {
    for (const name of shippedTemplateNames()) {
      const { configuration, connectors, kind } = loadTemplate(name);
      for (const key of ['ChargeProfileMaxStackLevel', 'ChargingScheduleAllowedChargingRateUnit', 'ChargingScheduleMaxPeriods', 'MaxChargingProfilesInstalled', 'NumberOfConnectors', 'LocalAuthListMaxLength', 'SendLocalListMaxLength', 'SupportedFeatureProfiles']) {
        expect(configuration[key]?.readonly, `${name} ${key}`).toBe(true);
      }
      for (const key of ['HeartbeatInterval', 'MeterValueSampleInterval', 'MeterValuesSampledData', 'ConnectionTimeOut', 'SecurityProfile', 'LocalAuthListEnabled', 'StopTransactionOnInvalidId', 'AuthorizeRemoteTxRequests']) {
        expect(configuration[key], `${name} ${key}`).toBeDefined();
        expect(configuration[key].readonly ?? false, `${name} ${key}`).toBe(false);
      }
      expect(configuration.AuthorizationKey.writeOnly).toBe(true);
      expect(configuration.NumberOfConnectors.value).toBe(String(connectors));
      expect(configuration.MeterValuesSampledData.value.split(',').includes('SoC')).toBe(kind === 'DC');
    }
  });

  it('hands out copies, so one station changing its configuration does not change another', () => {
    loadTemplate('ac-22kw-wallbox').configuration.HeartbeatInterval.value = '10';
    expect(loadTemplate('ac-22kw-wallbox').configuration.HeartbeatInterval.value).toBe('300');
  });

  it('loads JSON and YAML files and checks them against the schema', () => {
    const custom = { ...loadTemplate('ac-2x11kw-post'), name: 'custom-post' };
    expect(loadTemplate(file('post.json', JSON.stringify(custom)))).toEqual(custom);
    expect(loadTemplate(file('post.yaml', toYaml(custom)))).toEqual(custom);
  });

  it('names the bad field', () => {
    const wallbox = loadTemplate('ac-22kw-wallbox');
    const bad = (name: string, template: unknown) => file(name, JSON.stringify(template));
    expect(() => loadTemplate(bad('a.json', { ...wallbox, connectors: 'two' }))).toThrow(/connectors: Expected integer/);
    expect(() => loadTemplate(bad('b.json', { ...wallbox, kind: 'HVDC' }))).toThrow(/kind/);
    expect(() => loadTemplate(bad('c.json', { ...wallbox, vendor: 'A vendor with a very long name' }))).toThrow(/vendor/);
    expect(() => loadTemplate(bad('d.json', { ...wallbox, configuration: { HeartbeatInterval: { value: 300 } } }))).toThrow(/configuration\.HeartbeatInterval\.value/);
    expect(() => loadTemplate(bad('e.json', { ...wallbox, connectors: 2 }))).toThrow(/NumberOfConnectors/);
    expect(() => loadTemplate(bad('f.json', { ...wallbox, supportedRateUnits: ['W'] }))).toThrow(/ChargingScheduleAllowedChargingRateUnit/);
    expect(() => loadTemplate(bad('g.json', { ...wallbox, maxPowerPerConnectorW: 50000 }))).toThrow(/maxPowerPerConnectorW/);
    expect(() => loadTemplate(file('h.yaml', 'name: [unclosed'))).toThrow(/not valid YAML/);
  });

  it('says which templates exist when the name is unknown', () => {
    expect(() => loadTemplate('ac-50kw')).toThrow(TemplateError);
    expect(() => loadTemplate('ac-50kw')).toThrow(/ac-22kw-wallbox/);
    expect(() => loadTemplate(join(dir, 'missing.json'))).toThrow(/cannot read/);
  });
});
