/**
 * Station templates: what a simulated charging station is (identity for BootNotification,
 * electrics, the rate units its smart charging accepts) and the OCPP 1.6 configuration
 * keys it answers GetConfiguration/ChangeConfiguration with.
 *
 * The shipped templates are TypeScript objects rather than .json files because tsc does
 * not copy .json files to dist/: this way they load the same under tsx/vitest and from the
 * build. Users' own templates are JSON or YAML files, checked against the same schema.
 */
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';

const ConfigurationEntrySchema = Type.Object(
  {
    value: Type.String({ maxLength: 500 }),
    /** GetConfiguration reports it with readonly=true; ChangeConfiguration answers Rejected. */
    readonly: Type.Optional(Type.Boolean()),
    /** ChangeConfiguration answers RebootRequired; the new value applies after a reset. */
    rebootRequired: Type.Optional(Type.Boolean()),
    /**
     * Settable but never readable: GetConfiguration must leave the key out (or list it
     * under unknownKey when asked for it by name) and must not reveal its value.
     * OCPP 1.6 security whitepaper, AuthorizationKey.
     */
    writeOnly: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const StationTemplateSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    /** BootNotification chargePointVendor / chargePointModel are CiString20. */
    vendor: Type.String({ minLength: 1, maxLength: 20 }),
    model: Type.String({ minLength: 1, maxLength: 20 }),
    firmwareVersion: Type.String({ maxLength: 50 }),
    kind: Type.Union([Type.Literal('AC'), Type.Literal('DC')]),
    connectors: Type.Integer({ minimum: 1 }),
    maxPowerPerConnectorW: Type.Number({ exclusiveMinimum: 0 }),
    maxCurrentPerConnectorA: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    /**
     * Total power of a cabinet shared by the connectors (DC chargers with power modules
     * switched between outlets); absent means connectors × maxPowerPerConnectorW.
     */
    stationMaxPowerW: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    phases: Type.Union([Type.Literal(1), Type.Literal(3)]),
    /**
     * A tethered cable, locked to the station: UnlockConnector answers NotSupported. Absent
     * means a socket (type 2 outlet) whose lock the station can release.
     */
    fixedCable: Type.Optional(Type.Boolean()),
    /** Phase-to-neutral RMS voltage of the AC supply. */
    supplyVoltageV: Type.Number({ exclusiveMinimum: 0 }),
    supportedRateUnits: Type.Array(Type.Union([Type.Literal('A'), Type.Literal('W')]), { minItems: 1, uniqueItems: true }),
    configuration: Type.Record(Type.String({ minLength: 1, maxLength: 50 }), ConfigurationEntrySchema),
  },
  { additionalProperties: false },
);

export type StationTemplate = Static<typeof StationTemplateSchema>;
export type ConfigurationEntry = Static<typeof ConfigurationEntrySchema>;

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const FIRMWARE_VERSION = '1.4.2';

/** Keys every shipped template shares; the per-template ones are added by stationConfiguration. */
function stationConfiguration(options: {
  connectors: number;
  rateUnits: string;
  sampledData: string;
  maxPeriods: number;
}): Record<string, ConfigurationEntry> {
  return {
    HeartbeatInterval: { value: '300' },
    MeterValueSampleInterval: { value: '60' },
    MeterValuesSampledData: { value: options.sampledData },
    MeterValuesSampledDataMaxLength: { value: '8', readonly: true },
    StopTxnSampledData: { value: 'Energy.Active.Import.Register' },
    ClockAlignedDataInterval: { value: '900' },
    MeterValuesAlignedData: { value: 'Energy.Active.Import.Register' },
    ConnectionTimeOut: { value: '60' },
    ResetRetries: { value: '3' },
    TransactionMessageAttempts: { value: '5' },
    TransactionMessageRetryInterval: { value: '30' },
    WebSocketPingInterval: { value: '60' },
    GetConfigurationMaxKeys: { value: '100', readonly: true },
    NumberOfConnectors: { value: String(options.connectors), readonly: true },
    ConnectorPhaseRotation: { value: Array.from({ length: options.connectors }, (_, i) => `${i + 1}.RST`).join(',') },
    UnlockConnectorOnEVSideDisconnect: { value: 'true' },
    StopTransactionOnEVSideDisconnect: { value: 'true' },
    StopTransactionOnInvalidId: { value: 'true' },
    AuthorizeRemoteTxRequests: { value: 'false' },
    LocalAuthorizeOffline: { value: 'true' },
    LocalPreAuthorize: { value: 'false' },
    AllowOfflineTxForUnknownId: { value: 'false' },
    AuthorizationCacheEnabled: { value: 'true' },
    LocalAuthListEnabled: { value: 'true' },
    LocalAuthListMaxLength: { value: '1000', readonly: true },
    SendLocalListMaxLength: { value: '100', readonly: true },
    ChargeProfileMaxStackLevel: { value: '8', readonly: true },
    ChargingScheduleAllowedChargingRateUnit: { value: options.rateUnits, readonly: true },
    ChargingScheduleMaxPeriods: { value: String(options.maxPeriods), readonly: true },
    MaxChargingProfilesInstalled: { value: '16', readonly: true },
    ConnectorSwitch3to1PhaseSupported: { value: 'false', readonly: true },
    // Security whitepaper keys. The key is empty until the CSMS or the simulator sets one.
    AuthorizationKey: { value: '', writeOnly: true },
    SecurityProfile: { value: '0', rebootRequired: true },
    SupportedFeatureProfiles: {
      value: 'Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger',
      readonly: true,
    },
  };
}

const AC_SAMPLED_DATA = 'Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage';
const DC_SAMPLED_DATA = `${AC_SAMPLED_DATA},SoC`;

const SHIPPED_TEMPLATES: readonly StationTemplate[] = [
  {
    name: 'ac-22kw-wallbox',
    vendor: 'Ampyard Sim',
    model: 'WB22-3P',
    firmwareVersion: FIRMWARE_VERSION,
    kind: 'AC',
    connectors: 1,
    maxPowerPerConnectorW: 22080,
    maxCurrentPerConnectorA: 32,
    phases: 3,
    fixedCable: true,
    supplyVoltageV: 230,
    supportedRateUnits: ['A'],
    configuration: stationConfiguration({ connectors: 1, rateUnits: 'Current', sampledData: AC_SAMPLED_DATA, maxPeriods: 24 }),
  },
  {
    name: 'ac-2x11kw-post',
    vendor: 'Ampyard Sim',
    model: 'POST2x11',
    firmwareVersion: FIRMWARE_VERSION,
    kind: 'AC',
    connectors: 2,
    maxPowerPerConnectorW: 11040,
    maxCurrentPerConnectorA: 16,
    phases: 3,
    fixedCable: false,
    supplyVoltageV: 230,
    supportedRateUnits: ['A', 'W'],
    configuration: stationConfiguration({ connectors: 2, rateUnits: 'Current,Power', sampledData: AC_SAMPLED_DATA, maxPeriods: 48 }),
  },
  {
    name: 'dc-150kw-depot',
    vendor: 'Ampyard Sim',
    model: 'DC150-DEPOT',
    firmwareVersion: FIRMWARE_VERSION,
    kind: 'DC',
    connectors: 1,
    maxPowerPerConnectorW: 150000,
    phases: 3,
    fixedCable: true,
    supplyVoltageV: 230,
    supportedRateUnits: ['W'],
    configuration: stationConfiguration({ connectors: 1, rateUnits: 'Power', sampledData: DC_SAMPLED_DATA, maxPeriods: 96 }),
  },
  {
    name: 'dc-2x300kw-hpc',
    vendor: 'Ampyard Sim',
    model: 'HPC2x300',
    firmwareVersion: FIRMWARE_VERSION,
    kind: 'DC',
    connectors: 2,
    maxPowerPerConnectorW: 300000,
    // One 400 kW cabinet whose power modules are switched between the two outlets: one car
    // alone gets 300 kW, two together share 400 kW.
    stationMaxPowerW: 400000,
    phases: 3,
    fixedCable: true,
    supplyVoltageV: 230,
    supportedRateUnits: ['W'],
    configuration: stationConfiguration({ connectors: 2, rateUnits: 'Power', sampledData: DC_SAMPLED_DATA, maxPeriods: 96 }),
  },
];

/** Names of the templates that ship with Ampyard. */
export function shippedTemplateNames(): string[] {
  return SHIPPED_TEMPLATES.map((t) => t.name);
}

/**
 * A shipped template by name ("ac-22kw-wallbox") or a template file by path (.json, .yaml,
 * .yml), validated. Returns a fresh copy: callers may change it (e.g. a configuration
 * value) without affecting other stations.
 */
export function loadTemplate(nameOrPath: string): StationTemplate {
  const shipped = SHIPPED_TEMPLATES.find((t) => t.name === nameOrPath);
  if (shipped) return structuredClone(shipped);
  if (!/\.(json|ya?ml)$/i.test(nameOrPath)) {
    throw new TemplateError(
      `unknown station template ${JSON.stringify(nameOrPath)}: not a shipped template (${shippedTemplateNames().join(', ')}) nor a .json/.yaml file`,
    );
  }
  let text: string;
  try {
    text = readFileSync(nameOrPath, 'utf8');
  } catch (err) {
    throw new TemplateError(`cannot read station template ${nameOrPath}: ${(err as Error).message}`);
  }
  const isJson = /\.json$/i.test(nameOrPath);
  let parsed: unknown;
  try {
    parsed = isJson ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new TemplateError(`station template ${nameOrPath} is not valid ${isJson ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  return validateTemplate(parsed, nameOrPath);
}

/** Checks a template's shape and consistency; errors name the field. */
export function validateTemplate(candidate: unknown, source = 'station template'): StationTemplate {
  const problems = [...Value.Errors(StationTemplateSchema, candidate)].slice(0, 5).map((e) => {
    const field = e.path.replace(/^\//, '').replaceAll('/', '.') || '(root)';
    const got = e.value === undefined ? '' : ` (got ${JSON.stringify(e.value)})`;
    return `${field}: ${e.message}${got}`;
  });
  if (problems.length === 0) problems.push(...consistencyProblems(candidate as StationTemplate));
  if (problems.length > 0) throw new TemplateError(`invalid ${source}:\n  ${problems.join('\n  ')}`);
  return candidate as StationTemplate;
}

/** Contradictions the schema cannot see: what the template says twice must agree. */
function consistencyProblems(template: StationTemplate): string[] {
  const problems: string[] = [];
  const configured = (key: string) => template.configuration[key]?.value;
  const connectorsKey = configured('NumberOfConnectors');
  if (connectorsKey !== undefined && connectorsKey !== String(template.connectors)) {
    problems.push(`configuration.NumberOfConnectors.value: ${connectorsKey} disagrees with connectors (${template.connectors})`);
  }
  const rateUnitsKey = configured('ChargingScheduleAllowedChargingRateUnit');
  if (rateUnitsKey !== undefined) {
    const fromKey = rateUnitsKey.split(',').map((u) => u.trim()).map((u) => (u === 'Current' ? 'A' : u === 'Power' ? 'W' : u)).sort();
    const declared = [...template.supportedRateUnits].sort();
    if (fromKey.join() !== declared.join()) {
      problems.push(
        `configuration.ChargingScheduleAllowedChargingRateUnit.value: ${JSON.stringify(rateUnitsKey)} disagrees with supportedRateUnits (${declared.join(',')})`,
      );
    }
  }
  if (template.kind === 'AC' && template.maxCurrentPerConnectorA !== undefined) {
    const powerAtMaxCurrentW = template.maxCurrentPerConnectorA * template.supplyVoltageV * template.phases;
    // A connector cannot deliver more power than its current rating allows (1 % for rounding).
    if (template.maxPowerPerConnectorW > powerAtMaxCurrentW * 1.01) {
      problems.push(
        `maxPowerPerConnectorW: ${template.maxPowerPerConnectorW} W exceeds maxCurrentPerConnectorA × supplyVoltageV × phases (${powerAtMaxCurrentW} W)`,
      );
    }
  }
  return problems;
}
