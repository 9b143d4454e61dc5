import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });

const PlannerSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'plan sessions with known needs (needs the balancer)' }),
    stepS: Type.Integer({ minimum: 60, maximum: 3600, default: 300, description: 'length of a plan step' }),
    horizonS: Type.Integer({ minimum: 3600, maximum: 7 * 86400, default: 86400, description: 'how far ahead a plan looks' }),
    timeBudgetS: Type.Number({ exclusiveMinimum: 0, default: 2, description: 'solver time per re-plan before least-laxity-first takes over' }),
    replanEveryS: Type.Integer({ minimum: 10, default: 300, description: 're-plan each site at least this often' }),
    shortfallAlarmKwh: Type.Number({ minimum: 0, default: 1, description: 'a session that will leave at least this short (and 1 % of its need) raises an alarm' }),
  },
  { default: {}, additionalProperties: false },
);

/** The planner's settings with every default (a config that leaves them out gets these). */
export const plannerDefaults = (): Static<typeof PlannerSchema> => Value.Default(PlannerSchema, {}) as Static<typeof PlannerSchema>;

export const ConfigSchema = Type.Object(
  {
    host: Type.String({ default: '0.0.0.0', description: 'address the HTTP/WebSocket listener binds to' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'the OCPP WebSocket port; also the REST API, dashboard and metrics unless apiPort is set' }),
    apiPort: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 65535,
        description:
          'serve the REST API, dashboard, /docs and /metrics on this port of their own; the OCPP ports then answer only WebSocket upgrades and /healthz. A reconnect storm of chargers then never queues an operator\'s requests behind theirs',
      }),
    ),
    apiHost: Type.Optional(Type.String({ description: 'address the API port binds to (default: host)' })),
    db: Type.String({ default: 'sqlite:./data/ampyard.db', pattern: '^(sqlite:|postgres://|postgresql://)' }),
    registration: Type.Union([Type.Literal('open'), Type.Literal('pending'), Type.Literal('closed')], { default: 'pending' }),
    ocppPath: Type.String({ default: '/ocpp', pattern: '^/' }),
    heartbeatIntervalS: Type.Integer({ minimum: 1, default: 300 }),
    retryIntervalS: Type.Integer({ minimum: 1, default: 60 }),
    callTimeoutMs: Type.Integer({ minimum: 100, default: 30000 }),
    maxFrameBytes: Type.Integer({ minimum: 1024, default: 262144 }),
    maxBadFrames: Type.Integer({ minimum: 1, default: 10 }),
    pingIntervalS: Type.Integer({ minimum: 0, default: 60 }),
    rateLimit: Type.Object(
      { perSecond: Type.Number({ exclusiveMinimum: 0, default: 20 }), burst: Type.Integer({ minimum: 1, default: 100 }) },
      { default: {}, additionalProperties: false },
    ),
    allowConcurrentTx: Type.Boolean({ default: false }),
    maxPendingPasswordChecks: Type.Integer({
      minimum: 1,
      default: 100,
      description: 'upgrades with a password being checked at once (scrypt, ~35 ms of CPU each); above it new ones get 503 with Retry-After',
    }),
    maxPendingUpgrades: Type.Integer({
      minimum: 1,
      default: 10000,
      description: 'upgrades waiting for admission or being admitted; above it new ones get 503 with Retry-After (a whole 10,000-station reconnect storm fits)',
    }),
    maxConcurrentHandshakes: Type.Integer({
      minimum: 1,
      default: 8,
      description: 'TLS handshakes in progress at once (each keeps its place at most 1 s); other new TLS connections wait unread, so a storm of handshakes never holds the event loop',
    }),
    handshakePlaceMs: Type.Integer({
      minimum: 1,
      default: 20,
      description:
        'how long a TLS handshake keeps its place (of maxConcurrentHandshakes) at most; one that takes longer is waiting for the network, not the CPU, and goes on without it (1000 until session 6: 10,000 chargers 100 ms away then took 137 s, with 20 ms 33 s)',
    }),
    maxConcurrentNewConnections: Type.Integer({
      minimum: 1,
      default: 64,
      description:
        'new plain connections to the OCPP path parsed at once until their first request is parsed (each keeps its place at most 1 s); the others wait with only their first bytes read, so a storm of upgrade requests never holds the event loop. Requests for other paths (/healthz, the API) do not wait',
    }),
    acceptsPerTurn: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 8,
      description:
        'new connections each OCPP port accepts per turn of the event loop at most. Node 20 accepts one per listening descriptor and turn; above 1, copies of the listening socket are made at start (by a short-lived helper process), so that in a storm new connections wait in the CSMS, where /healthz goes first, rather than in the kernel behind every charger',
    }),
    maxConcurrentAdmissions: Type.Integer({
      minimum: 1,
      default: 64,
      description: 'of the pending upgrades, admissions running at once; the others wait in order, so a storm never holds the event loop',
    }),
    maxHandshakesPerTurn: Type.Integer({
      minimum: 1,
      default: 16,
      description:
        'of the admitted upgrades, WebSocket handshakes completed in one turn of the event loop; the others complete in the next turns, so admissions that finish together (the lookups of a reconnect, first registrations sharing a commit) do not bring their BootNotifications all in one turn',
    }),
    sqliteSynchronous: Type.Union([Type.Literal('FULL'), Type.Literal('NORMAL')], {
      default: 'FULL',
      description: 'FULL: an acknowledged write survives power loss (the log is synced off the main thread before the answer); NORMAL: it survives a killed process',
    }),
    messageLog: Type.Object(
      { retentionDays: Type.Number({ exclusiveMinimum: 0, default: 14 }), maxPerStation: Type.Integer({ minimum: 1, default: 20000 }) },
      { default: {}, additionalProperties: false },
    ),
    tls: Type.Optional(
      Type.Object(
        {
          port: Port,
          host: Type.Optional(Type.String()),
          certFile: Type.String(),
          keyFile: Type.String(),
        },
        { additionalProperties: false },
      ),
    ),
    smartCharging: Type.Object(
      {
        supplyVoltage: Type.Number({ exclusiveMinimum: 0, default: 230, description: 'phase-to-neutral voltage for A ↔ W' }),
        verifyProfiles: Type.Boolean({ default: true, description: 'after a profile is installed, compare the station\'s GetCompositeSchedule with the prediction' }),
        verifyDurationS: Type.Integer({ minimum: 60, default: 3600 }),
        balancer: Type.Object(
          {
            enabled: Type.Boolean({ default: true }),
            txProfileValidityS: Type.Integer({ minimum: 30, default: 300, description: 'how long a balancer TxProfile grants its allocation' }),
            renewBeforeS: Type.Integer({ minimum: 5, default: 60 }),
            clockSkewS: Type.Integer({ minimum: 0, default: 10 }),
            minUpdateIntervalS: Type.Integer({ minimum: 0, default: 10, description: 'at most one raise per connector this often' }),
            debounceMs: Type.Integer({ minimum: 0, default: 200 }),
            housekeepingMs: Type.Integer({ minimum: 50, default: 5000 }),
            failsafeHorizonS: Type.Integer({ minimum: 0, default: 86400, description: 'failsafe defaults also fit limits that start within this horizon' }),
            failsafeFraction: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.5, description: 'share of the largest safe default that stations get as their TxDefaultProfile' }),
          },
          { default: {}, additionalProperties: false },
        ),
        planner: PlannerSchema,
      },
      { default: {}, additionalProperties: false },
    ),
    logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Environment variables that set configuration keys (nested keys use a dot in the mapping). */
const envKeys: Record<string, string> = {
  PORT: 'port',
  AMPYARD_PORT: 'port',
  AMPYARD_HOST: 'host',
  AMPYARD_API_PORT: 'apiPort',
  AMPYARD_API_HOST: 'apiHost',
  DATABASE_URL: 'db',
  AMPYARD_DB: 'db',
  AMPYARD_REGISTRATION: 'registration',
  AMPYARD_LOG_LEVEL: 'logLevel',
  AMPYARD_HEARTBEAT_INTERVAL_S: 'heartbeatIntervalS',
  AMPYARD_CALL_TIMEOUT_MS: 'callTimeoutMs',
  AMPYARD_TLS_PORT: 'tls.port',
  AMPYARD_TLS_CERT_FILE: 'tls.certFile',
  AMPYARD_TLS_KEY_FILE: 'tls.keyFile',
};

function setPath(target: Record<string, any>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const k of keys.slice(0, -1)) node = node[k] ??= {};
  node[keys.at(-1)!] = value;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('top level must be an object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

/**
 * Configuration from, in rising precedence: defaults, the file, environment variables, flags.
 * Strings from the environment and flags are converted to the schema's types; the result is
 * validated and any error names the offending key.
 */
export function loadConfig(sources: { file?: string; env?: NodeJS.ProcessEnv; flags?: Record<string, unknown> } = {}): Config {
  const merged: Record<string, any> = sources.file ? readConfigFile(sources.file) : {};
  for (const [name, key] of Object.entries(envKeys)) {
    const value = sources.env?.[name];
    if (value !== undefined && value !== '') setPath(merged, key, value);
  }
  for (const [key, value] of Object.entries(sources.flags ?? {})) if (value !== undefined) setPath(merged, key, value);

  const withDefaults = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, structuredClone(merged)));
  const errors = [...Value.Errors(ConfigSchema, withDefaults)];
  if (errors.length > 0) {
    const lines = errors.slice(0, 5).map((e) => {
      const key = e.path.replace(/^\//, '').replaceAll('/', '.') || '(root)';
      const got = e.value === undefined ? '' : ` (got ${JSON.stringify(e.value)})`;
      return `${key}: ${e.message}${got}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const config = withDefaults as Config;
  // Port 0 asks the system for a free port, so only fixed ports can collide.
  const fixed = [
    ['port', config.port],
    ['apiPort', config.apiPort],
    ['tls.port', config.tls?.port],
  ].filter((entry): entry is [string, number] => typeof entry[1] === 'number' && entry[1] !== 0);
  for (let i = 0; i < fixed.length; i++)
    for (let j = i + 1; j < fixed.length; j++)
      if (fixed[i]![1] === fixed[j]![1]) throw new ConfigError(`invalid configuration:\n  ${fixed[j]![0]}: must differ from ${fixed[i]![0]} (both ${fixed[i]![1]})`);
  // A balancer grant is renewed renewBeforeS before it ends. The renewal must reach a station whose
  // clock runs up to clockSkewS ahead before it falls back (2 × clockSkewS), even when the station
  // takes the whole call timeout to answer (docs/smart-charging.md, ADR 0011).
  const balancer = config.smartCharging.balancer;
  const renewalNeedsS = 2 * balancer.clockSkewS + Math.ceil(config.callTimeoutMs / 1000);
  if (balancer.renewBeforeS >= balancer.txProfileValidityS)
    throw new ConfigError(`invalid configuration:\n  smartCharging.balancer.renewBeforeS: must be less than txProfileValidityS (${balancer.renewBeforeS} >= ${balancer.txProfileValidityS})`);
  if (balancer.renewBeforeS < renewalNeedsS)
    throw new ConfigError(
      `invalid configuration:\n  smartCharging.balancer.renewBeforeS: must be at least 2 × clockSkewS + callTimeoutMs, ${renewalNeedsS} s (got ${balancer.renewBeforeS})`,
    );
  return config;
}
