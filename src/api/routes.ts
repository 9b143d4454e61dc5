import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { V16Services } from '../adapters/v16/incoming.js';
import { isV16CsmsAction, v16CsmsActions } from '../adapters/v16/outgoing.js';
import type { Config } from '../config/config.js';
import type { DomainEvent } from '../domain/ports.js';
import type { ConnectorState, Station as DomainStation, Transaction as DomainTransaction } from '../domain/types.js';
import { iso } from '../domain/transactions.js';
import { OcppConnectionClosedError, OcppError, OcppRequestInvalidError, OcppTimeoutError } from '../ocpp/errors.js';
import { StationNotConnectedError, type CommandSender } from '../gateway/commands.js';
import type { MessageLogWriter } from '../gateway/message-log.js';
import type { Metrics } from '../gateway/metrics.js';
import type { ConnectionRegistry } from '../gateway/registry.js';
import * as S from './schemas.js';
import { errorResponses, httpError } from './http-errors.js';
import { PlanningSignalsBody, registerPlanningRoutes } from './planning-routes.js';
import type { SiteBalancer } from '../domain/site-balancer.js';
import type { SitePlanner } from '../domain/site-planner.js';
import type { LiveLoad } from '../domain/live-load.js';
import { siteModel, SiteDefinitionError, type SiteDefinition, type StoredSite } from '../domain/sites.js';
import { flattenSite, limitOfNodeAt } from '../charging/site/model.js';
import { sitePhasesOf } from '../charging/balancer/allocate.js';
import { compositeResultJson } from '../charging/profiles/composite.js';

export interface ApiDeps {
  services: V16Services;
  commands: CommandSender;
  registry: ConnectionRegistry;
  metrics: Metrics;
  messageLog: MessageLogWriter;
  config: Config;
  balancer: SiteBalancer;
  liveLoad: LiveLoad;
  planner: SitePlanner;
}

/** The REST API: stations, id tags, transactions, meter values, the message log, commands and events. */
export async function buildApi(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { services, commands, registry, metrics } = deps;
  const { store } = services;

  app.addSchema(S.ErrorBody);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Ampyard CSMS API', version: '1', description: 'Stations, transactions, meter values and OCPP commands of an Ampyard central system.' },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const stationView = (s: DomainStation, connectors: ConnectorState[]) => ({
    ...s,
    connected: registry.isConnected(s.id),
    connectors: connectors
      .filter((c) => c.stationId === s.id)
      .map((c) => ({ connectorId: c.connectorId, status: c.status, errorCode: c.errorCode, info: c.info, vendorErrorCode: c.vendorErrorCode, since: c.since })),
  });
  const transactionView = (t: DomainTransaction) => ({ ...t, active: t.stopTime === null });
  const readingView = ({ stationId: _s, ...r }: import('../domain/types.js').MeterReading) => r;

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok', connectedStations: registry.size }));
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // stations

  app.get(
    '/api/v1/stations',
    { schema: { tags: ['stations'], summary: 'All stations with their connectors', response: { 200: Type.Object({ items: Type.Array(S.Station) }) } } },
    async () => {
      const stations = await store.listStations();
      const connectors = await store.listConnectorsOfStations(stations.map((s) => s.id));
      return { items: stations.map((s) => stationView(s, connectors)) };
    },
  );

  app.post<{ Body: { id: string; registration?: 'accepted' | 'pending' | 'rejected'; password?: string; securityProfile?: 0 | 1 | 2 } }>(
    '/api/v1/stations',
    { schema: { tags: ['stations'], summary: 'Register a station ahead of its first connection', body: S.CreateStation, response: { 201: S.Station, ...errorResponses } } },
    async (req, reply) => {
      if (await store.getStation(req.body.id)) return httpError(reply, 409, `station ${req.body.id} already exists`);
      if ((req.body.securityProfile ?? 0) >= 1 && !req.body.password) return httpError(reply, 400, 'security profile 1 and 2 need a password');
      const station = await services.stations.create(req.body.id, req.body);
      return reply.code(201).send(stationView(station, []));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/stations/:id',
    { schema: { tags: ['stations'], summary: 'One station with its connectors and their live status', params: S.StationId, response: { 200: S.Station, ...errorResponses } } },
    async (req, reply) => {
      const station = await store.getStation(req.params.id);
      if (!station) return httpError(reply, 404, `station ${req.params.id} not found`);
      return stationView(station, await store.listConnectors(station.id));
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/stations/:id',
    { schema: { tags: ['stations'], summary: 'Remove a station (its history stays)', params: S.StationId, response: { 204: Type.Null(), ...errorResponses } } },
    async (req, reply) => {
      registry.get(req.params.id)?.close(1000, 'station removed');
      if (!(await store.deleteStation(req.params.id))) return httpError(reply, 404, `station ${req.params.id} not found`);
      return reply.code(204).send();
    },
  );

  for (const [verb, registration] of [
    ['accept', 'accepted'],
    ['reject', 'rejected'],
  ] as const) {
    app.post<{ Params: { id: string } }>(
      `/api/v1/stations/:id/${verb}`,
      {
        schema: {
          tags: ['stations'],
          summary: `${verb === 'accept' ? 'Accept' : 'Reject'} a station's registration`,
          description: 'When the station is connected it is asked (TriggerMessage) to send BootNotification again, so the new registration takes effect at once.',
          params: S.StationId,
          response: { 200: S.Station, ...errorResponses },
        },
      },
      async (req, reply) => {
        const station = await services.stations.setRegistration(req.params.id, registration);
        if (!station) return httpError(reply, 404, `station ${req.params.id} not found`);
        if (commands.isConnected(station.id)) {
          commands.send(station.id, 'TriggerMessage', { requestedMessage: 'BootNotification' }).catch((err) => {
            req.log.warn({ stationId: station.id, err: (err as Error).message }, 'could not trigger BootNotification after registration change');
          });
        }
        return stationView(station, await store.listConnectors(station.id));
      },
    );
  }

  app.put<{ Params: { id: string }; Body: { password: string } }>(
    '/api/v1/stations/:id/password',
    {
      schema: {
        tags: ['stations'],
        summary: 'Set the Basic-auth password (security profile 1 and 2)',
        description: 'Stored as a salted scrypt hash. A station without a password moves to security profile 1. This changes only what the CSMS expects: to change the password on the station too, send ChangeConfiguration AuthorizationKey.',
        params: S.StationId,
        body: Type.Object({ password: Type.String({ minLength: 16, maxLength: 40 }) }, { additionalProperties: false }),
        response: { 200: S.Station, ...errorResponses },
      },
    },
    async (req, reply) => {
      const station = await services.stations.setPassword(req.params.id, req.body.password);
      if (!station) return httpError(reply, 404, `station ${req.params.id} not found`);
      return stationView(station, await store.listConnectors(station.id));
    },
  );

  app.put<{ Params: { id: string }; Body: { securityProfile: 0 | 1 | 2 | 3 } }>(
    '/api/v1/stations/:id/security-profile',
    {
      schema: {
        tags: ['stations'],
        summary: 'Raise the security profile the CSMS requires of this station (never lowered)',
        params: S.StationId,
        body: Type.Object({ securityProfile: Type.Integer({ minimum: 0, maximum: 3 }) }, { additionalProperties: false }),
        response: { 200: S.Station, ...errorResponses },
      },
    },
    async (req, reply) => {
      const { station, error } = await services.stations.setSecurityProfile(req.params.id, req.body.securityProfile);
      if (!station) return httpError(reply, 404, `station ${req.params.id} not found`);
      if (error) return httpError(reply, 409, error);
      return stationView(station, await store.listConnectors(station.id));
    },
  );

  app.get<{ Params: { id: string }; Querystring: { connectorId?: number; from?: string; to?: string; limit: number } }>(
    '/api/v1/stations/:id/status-history',
    {
      schema: {
        tags: ['stations'],
        summary: 'Every status a station reported, oldest first',
        params: S.StationId,
        querystring: Type.Object({ connectorId: Type.Optional(Type.Integer({ minimum: 0 })), ...S.TimeRange, limit: S.Limit(10000, 1000) }),
        response: { 200: Type.Object({ items: Type.Array(S.StatusChange) }), ...errorResponses },
      },
    },
    async (req) => ({ items: await store.statusHistory({ stationId: req.params.id, ...req.query, from: req.query.from && iso(req.query.from), to: req.query.to && iso(req.query.to) }) }),
  );

  app.get<{ Params: { id: string }; Querystring: { measurand?: string; from?: string; to?: string; limit: number } }>(
    '/api/v1/stations/:id/meter-values',
    {
      schema: {
        tags: ['meter values'],
        summary: 'Meter readings of a station over a time range, normalised to Wh, W, A, V and %',
        params: S.StationId,
        querystring: Type.Object({ measurand: Type.Optional(Type.String()), ...S.TimeRange, limit: S.Limit(50000, 5000) }),
        response: { 200: Type.Object({ items: Type.Array(S.MeterReading) }) },
      },
    },
    async (req) => {
      const items = await store.meterReadings({ stationId: req.params.id, measurand: req.query.measurand, from: req.query.from && iso(req.query.from), to: req.query.to && iso(req.query.to), limit: req.query.limit });
      return { items: items.map(readingView) };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { before?: number; limit: number; action?: string } }>(
    '/api/v1/stations/:id/messages',
    {
      schema: {
        tags: ['stations'],
        summary: 'The OCPP message log of a station, newest first; page with `before` = the last id seen',
        params: S.StationId,
        querystring: Type.Object({ before: Type.Optional(Type.Integer()), limit: S.Limit(1000, 100), action: Type.Optional(Type.String()) }),
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Object({
                id: Type.Integer(),
                at: Type.String(),
                direction: Type.String(),
                messageType: Type.Union([Type.Integer(), Type.Null()]),
                messageId: Type.Union([Type.String(), Type.Null()]),
                action: Type.Union([Type.String(), Type.Null()]),
                frame: Type.String(),
              }),
            ),
            nextBefore: Type.Union([Type.Integer(), Type.Null()]),
          }),
        },
      },
    },
    async (req) => {
      await deps.messageLog.flush();
      const items = await store.messageLog({ stationId: req.params.id, ...req.query });
      return { items, nextBefore: items.length === req.query.limit ? items.at(-1)!.id : null };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { kind?: string; limit: number } }>(
    '/api/v1/stations/:id/events',
    {
      schema: {
        tags: ['stations'],
        summary: 'What the station reported besides transactions: security events, firmware, diagnostics and log status, data transfers, CSRs',
        params: S.StationId,
        querystring: Type.Object({ kind: Type.Optional(Type.String()), limit: S.Limit(1000, 100) }),
      },
    },
    async (req) => ({ items: await store.stationEvents({ stationId: req.params.id, ...req.query }) }),
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/stations/:id/reservations',
    { schema: { tags: ['stations'], summary: 'Reservations made on a station', params: S.StationId } },
    async (req) => {
      await store.expireReservations(services.clock.now().toISOString());
      return { items: await store.listReservations(req.params.id) };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/api/v1/stations/:id/local-list',
    {
      schema: {
        tags: ['commands'],
        summary: 'Send the whole id-tag store to the station as its local authorization list (SendLocalList Full)',
        params: S.StationId,
        response: { ...errorResponses },
      },
    },
    async (req, reply) => {
      const station = await store.getStation(req.params.id);
      if (!station) return httpError(reply, 404, `station ${req.params.id} not found`);
      const tags = await store.listIdTags();
      const payload = {
        listVersion: station.localListVersion + 1,
        updateType: 'Full',
        localAuthorizationList: tags.map((t) => ({ idTag: t.idTag, idTagInfo: services.authorization.statusOf(t) })),
      };
      return sendCommand(reply, req.params.id, 'SendLocalList', payload);
    },
  );

  // smart charging: what each station holds, and what it must be doing

  app.get<{ Params: { id: string } }>(
    '/api/v1/stations/:id/charging-profiles',
    { schema: { tags: ['smart charging'], summary: 'The charging profiles the station accepted (as the CSMS keeps them)', params: S.StationId } },
    async (req, reply) => {
      if (!(await store.getStation(req.params.id))) return httpError(reply, 404, `station ${req.params.id} not found`);
      return { items: await services.chargingProfiles.installed(req.params.id) };
    },
  );

  app.post<{ Params: { id: string }; Body: { connectorId: number; duration: number; chargingRateUnit?: 'A' | 'W'; startTime?: string } }>(
    '/api/v1/stations/:id/composite-schedule/predicted',
    {
      schema: {
        tags: ['smart charging'],
        summary: 'The composite schedule a conforming charger with the installed profiles must report (docs/smart-charging.md; a period without a limit means nothing constrains)',
        params: S.StationId,
        body: Type.Object(
          {
            connectorId: Type.Integer({ minimum: 0 }),
            duration: Type.Integer({ minimum: 1, maximum: 7 * 86400 }),
            chargingRateUnit: Type.Optional(Type.Union([Type.Literal('A'), Type.Literal('W')])),
            startTime: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: { ...errorResponses },
      },
    },
    async (req, reply) => {
      if (!(await store.getStation(req.params.id))) return httpError(reply, 404, `station ${req.params.id} not found`);
      const result = await services.chargingProfiles.predict(req.params.id, { ...req.body, startTime: req.body.startTime ? new Date(req.body.startTime) : undefined });
      if (result.status === 'Rejected') return httpError(reply, 400, result.reason);
      return compositeResultJson(result);
    },
  );

  // sites and load balancing

  const siteView = (stored: StoredSite) => {
    const { site, stations } = siteModel(stored);
    const state = deps.balancer.siteState(stored.id);
    const now = services.clock.now();
    const voltage = site.supplyVoltage ?? deps.config.smartCharging.supplyVoltage;
    const specOf = new Map(stations.map((s) => [s.stationId, s]));
    const nodes = flattenSite(site).map(({ node, stations: below }) => {
      const measured = { powerW: 0, currentA: { L1: 0, L2: 0, L3: 0 } };
      for (const stationId of below) {
        const spec = specOf.get(stationId)!;
        for (const c of spec.connectors) {
          const load = deps.liveLoad.of(stationId, c.connectorId);
          if (!load) continue;
          measured.powerW += load.powerW;
          // Station phases land on site phases through the connector's (or station's) rotation.
          const onSite = sitePhasesOf(spec, 3, c.connectorId);
          (['L1', 'L2', 'L3'] as const).forEach((p, i) => (measured.currentA[onSite[i] ?? p] += spec.kind === 'DC' ? load.powerW / (3 * voltage) : load.currentA[p]));
        }
      }
      const allocated = state?.lastAllocation?.nodes.find((n) => n.nodeId === node.id);
      return { id: node.id, limit: node.limit ?? null, limitInForce: limitOfNodeAt(node, now), measured, allocated: allocated ? { powerW: allocated.powerW, currentA: allocated.currentA } : null };
    });
    return {
      id: stored.id,
      ...stored.definition,
      externalLimits: stored.externalLimits,
      updatedAt: stored.updatedAt,
      balancedAt: state?.lastRunAt ?? null,
      nodes,
      allocation: (state?.lastAllocation?.sessions ?? []).map((a) => ({
        stationId: a.stationId,
        connectorId: a.connectorId,
        powerW: a.powerW,
        currentA: a.currentA,
        phases: a.phases,
        paused: a.paused,
        held: a.held,
        grantExpiresAt: (() => {
          const g = deps.balancer.grantOf(a.stationId, a.connectorId);
          return g ? new Date(g.expiresAt).toISOString() : null;
        })(),
        measuredPowerW: deps.liveLoad.of(a.stationId, a.connectorId)?.powerW ?? null,
      })),
    };
  };

  const LimitBody = Type.Object({ value: Type.Number({ exclusiveMinimum: 0 }), unit: Type.Union([Type.Literal('W'), Type.Literal('A')]) }, { additionalProperties: false });
  const StationEntry = Type.Union([
    Type.String({ minLength: 1, maxLength: 48 }),
    Type.Object(
      {
        id: Type.String({ minLength: 1, maxLength: 48 }),
        kind: Type.Optional(Type.Union([Type.Literal('AC'), Type.Literal('DC')])),
        phases: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(3)])),
        maxPowerW: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
        rotation: Type.Optional(Type.Array(Type.Union([Type.Literal('L1'), Type.Literal('L2'), Type.Literal('L3')]), { minItems: 3, maxItems: 3, uniqueItems: true })),
        connectors: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
        connectorRotations: Type.Optional(
          Type.Array(Type.Union([Type.Array(Type.Union([Type.Literal('L1'), Type.Literal('L2'), Type.Literal('L3')]), { minItems: 3, maxItems: 3, uniqueItems: true }), Type.Null()]), { maxItems: 32 }),
        ),
        connectorMaxPowerW: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
        priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
      },
      { additionalProperties: false },
    ),
  ]);
  const Group = Type.Recursive((This) =>
    Type.Object(
      { id: Type.String({ minLength: 1 }), limit: Type.Optional(LimitBody), groups: Type.Optional(Type.Array(This)), stations: Type.Optional(Type.Array(StationEntry)) },
      { additionalProperties: false },
    ),
  );
  const SiteBody = Type.Object(
    {
      name: Type.String({ minLength: 1 }),
      strategy: Type.Optional(Type.Union([Type.Literal('equal-share'), Type.Literal('priority'), Type.Literal('earliest-departure')])),
      limit: Type.Optional(LimitBody),
      supplyVoltage: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
      groups: Type.Optional(Type.Array(Group)),
      stations: Type.Optional(Type.Array(StationEntry)),
      planning: Type.Optional(PlanningSignalsBody),
    },
    { additionalProperties: false },
  );
  const SiteId = Type.Object({ siteId: Type.String({ minLength: 1, maxLength: 64 }) });

  app.put<{ Params: { siteId: string }; Body: SiteDefinition }>(
    '/api/v1/sites/:siteId',
    {
      schema: {
        tags: ['sites'],
        summary: 'Create or replace a site: the grid connection, groups (any depth) with limits in W or A per phase, and the stations under each',
        params: SiteId,
        body: SiteBody,
        response: { ...errorResponses },
      },
    },
    async (req, reply) => {
      const existing = await store.getSite(req.params.siteId);
      const stored: StoredSite = { id: req.params.siteId, definition: req.body, externalLimits: existing?.externalLimits ?? [], updatedAt: services.clock.now().toISOString() };
      try {
        siteModel(stored);
        for (const other of await store.listSites()) {
          if (other.id === stored.id) continue;
          const taken = new Set(siteModel(other).stations.map((s) => s.stationId));
          const clash = siteModel(stored).stations.find((s) => taken.has(s.stationId));
          if (clash) throw new SiteDefinitionError(`station ${clash.stationId} already belongs to site ${other.id}`);
        }
      } catch (err) {
        if (err instanceof SiteDefinitionError) return httpError(reply, 400, err.message);
        throw err;
      }
      await store.putSite(stored);
      await deps.balancer.reloadSite(stored.id);
      await deps.planner.reloadSite(stored.id);
      return reply.code(existing ? 200 : 201).send(siteView(stored));
    },
  );

  app.get('/api/v1/sites', { schema: { tags: ['sites'], summary: 'All sites' } }, async () => ({ items: (await store.listSites()).map(siteView) }));

  app.get<{ Params: { siteId: string } }>(
    '/api/v1/sites/:siteId',
    { schema: { tags: ['sites'], summary: 'A site with the live allocation per connector and the measured and allocated load per node', params: SiteId } },
    async (req, reply) => {
      const stored = await store.getSite(req.params.siteId);
      return stored ? siteView(stored) : httpError(reply, 404, `site ${req.params.siteId} not found`);
    },
  );

  app.delete<{ Params: { siteId: string } }>(
    '/api/v1/sites/:siteId',
    { schema: { tags: ['sites'], summary: 'Delete a site (its stations are no longer balanced)', params: SiteId, response: { 204: Type.Null(), ...errorResponses } } },
    async (req, reply) => {
      if (!(await store.deleteSite(req.params.siteId))) return httpError(reply, 404, `site ${req.params.siteId} not found`);
      await deps.balancer.reloadSite(req.params.siteId);
      await deps.planner.reloadSite(req.params.siteId);
      return reply.code(204).send();
    },
  );

  app.put<{ Params: { siteId: string }; Body: { nodeId?: string; periods: Array<{ from: string; to: string; value: number; unit: 'W' | 'A' }> } }>(
    '/api/v1/sites/:siteId/external-limit',
    {
      schema: {
        tags: ['sites'],
        summary: 'Limits from a grid operator or energy management system: values over time on the site (or a group); they replace earlier external limits of that node and take effect within one balancing round',
        params: SiteId,
        body: Type.Object(
          {
            nodeId: Type.Optional(Type.String()),
            periods: Type.Array(
              Type.Object(
                { from: Type.String({ format: 'date-time' }), to: Type.String({ format: 'date-time' }), value: Type.Number({ minimum: 0 }), unit: Type.Union([Type.Literal('W'), Type.Literal('A')]) },
                { additionalProperties: false },
              ),
              { maxItems: 1000 },
            ),
          },
          { additionalProperties: false },
        ),
        response: { ...errorResponses },
      },
    },
    async (req, reply) => {
      const stored = await store.getSite(req.params.siteId);
      if (!stored) return httpError(reply, 404, `site ${req.params.siteId} not found`);
      const nodeId = req.body.nodeId ?? stored.id;
      for (const p of req.body.periods) if (Date.parse(p.to) <= Date.parse(p.from)) return httpError(reply, 400, `period ${p.from} – ${p.to} ends before it starts`);
      const updated: StoredSite = {
        ...stored,
        externalLimits: [
          ...stored.externalLimits.filter((l) => l.nodeId !== nodeId),
          ...req.body.periods.map((p) => ({ nodeId, from: new Date(p.from).toISOString(), to: new Date(p.to).toISOString(), limit: { value: p.value, unit: p.unit } })),
        ],
        updatedAt: services.clock.now().toISOString(),
      };
      try {
        siteModel(updated);
      } catch (err) {
        if (err instanceof SiteDefinitionError) return httpError(reply, 400, err.message);
        throw err;
      }
      await store.putSite(updated);
      await deps.balancer.reloadSite(updated.id);
      await deps.planner.reloadSite(updated.id);
      return siteView(updated);
    },
  );

  registerPlanningRoutes(app, deps);

  // alarms

  app.get<{ Querystring: { stationId?: string; active?: boolean; type?: string; limit: number } }>(
    '/api/v1/alarms',
    {
      schema: {
        tags: ['alarms'],
        summary: 'Alarms, newest first (e.g. ProfileNotApplied: a station does not do what its profiles say)',
        querystring: Type.Object({ stationId: Type.Optional(Type.String()), active: Type.Optional(Type.Boolean()), type: Type.Optional(Type.String()), limit: S.Limit(1000, 100) }),
      },
    },
    async (req) => ({ items: await store.listAlarms(req.query) }),
  );

  app.post<{ Params: { alarmId: number } }>(
    '/api/v1/alarms/:alarmId/clear',
    { schema: { tags: ['alarms'], summary: 'Clear an active alarm', params: Type.Object({ alarmId: Type.Integer() }), response: { 204: Type.Null(), ...errorResponses } } },
    async (req, reply) =>
      (await store.clearAlarm(req.params.alarmId, services.clock.now().toISOString())) ? reply.code(204).send() : httpError(reply, 404, `no active alarm ${req.params.alarmId}`),
  );

  // commands

  const sendCommand = async (reply: FastifyReply, stationId: string, action: string, payload: unknown, timeoutMs?: number) => {
    try {
      return reply.send(await commands.send(stationId, action, payload, { timeoutMs }));
    } catch (err) {
      if (err instanceof StationNotConnectedError) return httpError(reply, 409, err.message);
      if (err instanceof OcppConnectionClosedError) return httpError(reply, 409, err.message);
      if (err instanceof OcppRequestInvalidError) return httpError(reply, 400, err.message, { ocppErrorCode: err.cause.code });
      if (err instanceof OcppTimeoutError) return httpError(reply, 504, err.message);
      if (err instanceof OcppError) {
        return httpError(reply, 502, `station answered ${action} with ${err.code}`, { ocppErrorCode: String(err.code), ocppErrorDescription: err.message, ocppErrorDetails: err.details });
      }
      throw err;
    }
  };

  app.post<{ Params: { id: string; action: string }; Querystring: { timeoutMs?: number }; Body: unknown }>(
    '/api/v1/stations/:id/commands/:action',
    {
      schema: {
        tags: ['commands'],
        summary: 'Send an OCPP command to a station and return its answer',
        description:
          `The body is the OCPP request payload, validated against the official schema. 200 carries the station's CALLRESULT payload; ` +
          `409 the station is not connected; 504 no answer in time; 502 the station answered with a CALLERROR (ocppErrorCode, ocppErrorDescription). Actions: ${v16CsmsActions.join(', ')}.`,
        params: Type.Object({ id: Type.String(), action: Type.String({ enum: [...v16CsmsActions] }) }),
        querystring: Type.Object({ timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 300000 })) }),
        body: Type.Object({}, { additionalProperties: true }),
        response: { ...errorResponses },
      },
    },
    async (req, reply) => {
      if (!isV16CsmsAction(req.params.action)) return httpError(reply, 404, `unknown command ${req.params.action}`);
      if (!(await store.getStation(req.params.id))) return httpError(reply, 404, `station ${req.params.id} not found`);
      return sendCommand(reply, req.params.id, req.params.action, req.body ?? {}, req.query.timeoutMs);
    },
  );

  // id tags

  app.get('/api/v1/id-tags', { schema: { tags: ['id tags'], summary: 'All id tags', response: { 200: Type.Object({ items: Type.Array(S.IdTag) }) } } }, async () => ({
    items: await store.listIdTags(),
  }));

  app.get<{ Params: { idTag: string } }>(
    '/api/v1/id-tags/:idTag',
    { schema: { tags: ['id tags'], summary: 'One id tag', response: { 200: S.IdTag, ...errorResponses } } },
    async (req, reply) => (await store.getIdTag(req.params.idTag)) ?? httpError(reply, 404, `id tag ${req.params.idTag} not found`),
  );

  const saveIdTag = async (body: { idTag: string; status: 'Accepted' | 'Blocked' | 'Expired' | 'Invalid'; expiryDate?: string | null; parentIdTag?: string | null }) => {
    const tag = { idTag: body.idTag, status: body.status, expiryDate: body.expiryDate ? iso(body.expiryDate) : null, parentIdTag: body.parentIdTag ?? null };
    await store.upsertIdTag(tag);
    return tag;
  };

  app.post<{ Body: { idTag: string; status: 'Accepted' | 'Blocked' | 'Expired' | 'Invalid'; expiryDate?: string | null; parentIdTag?: string | null } }>(
    '/api/v1/id-tags',
    { schema: { tags: ['id tags'], summary: 'Create an id tag', body: S.IdTag, response: { 201: S.IdTag, ...errorResponses } } },
    async (req, reply) => {
      if (await store.getIdTag(req.body.idTag)) return httpError(reply, 409, `id tag ${req.body.idTag} already exists; PUT /api/v1/id-tags/${req.body.idTag} changes it`);
      return reply.code(201).send(await saveIdTag(req.body));
    },
  );

  app.put<{ Params: { idTag: string }; Body: { status: 'Accepted' | 'Blocked' | 'Expired' | 'Invalid'; expiryDate?: string | null; parentIdTag?: string | null } }>(
    '/api/v1/id-tags/:idTag',
    {
      schema: {
        tags: ['id tags'],
        summary: 'Create or replace an id tag',
        body: Type.Omit(S.IdTag, ['idTag'], { additionalProperties: false }),
        response: { 200: S.IdTag, ...errorResponses },
      },
    },
    async (req, reply) => {
      if (req.params.idTag.length > 20) return httpError(reply, 400, 'idTag is at most 20 characters');
      return saveIdTag({ ...req.body, idTag: req.params.idTag });
    },
  );

  app.delete<{ Params: { idTag: string } }>(
    '/api/v1/id-tags/:idTag',
    { schema: { tags: ['id tags'], summary: 'Delete an id tag', response: { 204: Type.Null(), ...errorResponses } } },
    async (req, reply) => ((await store.deleteIdTag(req.params.idTag)) ? reply.code(204).send() : httpError(reply, 404, `id tag ${req.params.idTag} not found`)),
  );

  // transactions

  app.get<{ Querystring: { stationId?: string; idTag?: string; from?: string; to?: string; active?: boolean; limit: number; offset: number } }>(
    '/api/v1/transactions',
    {
      schema: {
        tags: ['transactions'],
        summary: 'Transactions, newest start first; `from`/`to` select those that overlap the range',
        querystring: Type.Object({
          stationId: Type.Optional(Type.String()),
          idTag: Type.Optional(Type.String()),
          ...S.TimeRange,
          active: Type.Optional(Type.Boolean()),
          limit: S.Limit(1000, 100),
          offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
        }),
        response: { 200: Type.Object({ items: Type.Array(S.Transaction) }) },
      },
    },
    async (req) => {
      const q = req.query;
      const items = await store.listTransactions({ ...q, from: q.from && iso(q.from), to: q.to && iso(q.to) });
      return { items: items.map(transactionView) };
    },
  );

  app.get<{ Params: { id: number } }>(
    '/api/v1/transactions/:id',
    {
      schema: {
        tags: ['transactions'],
        summary: 'One transaction with its meter values and the status history of its connector during it',
        params: Type.Object({ id: Type.Integer() }),
        response: {
          200: Type.Composite([S.Transaction, Type.Object({ meterValues: Type.Array(S.MeterReading), statusHistory: Type.Array(S.StatusChange) })]),
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const t = await store.getTransaction(req.params.id);
      if (!t) return httpError(reply, 404, `transaction ${req.params.id} not found`);
      const meterValues = await store.meterReadings({ transactionId: t.id, limit: 100000 });
      const statusHistory = await store.statusHistory({ stationId: t.stationId, connectorId: t.connectorId, from: t.startTime, to: t.stopTime ?? undefined, limit: 10000 });
      return { ...transactionView(t), meterValues: meterValues.map(readingView), statusHistory };
    },
  );

  app.get<{ Params: { id: number }; Querystring: { measurand?: string; from?: string; to?: string; limit: number } }>(
    '/api/v1/transactions/:id/meter-values',
    {
      schema: {
        tags: ['meter values'],
        summary: 'Meter readings of a transaction',
        params: Type.Object({ id: Type.Integer() }),
        querystring: Type.Object({ measurand: Type.Optional(Type.String()), ...S.TimeRange, limit: S.Limit(100000, 10000) }),
        response: { 200: Type.Object({ items: Type.Array(S.MeterReading) }) },
      },
    },
    async (req) => {
      const items = await store.meterReadings({ transactionId: req.params.id, measurand: req.query.measurand, from: req.query.from && iso(req.query.from), to: req.query.to && iso(req.query.to), limit: req.query.limit });
      return { items: items.map(readingView) };
    },
  );

  // live events

  app.get<{ Querystring: { stationId?: string } }>(
    '/api/v1/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Server-Sent Events: connects, disconnects, boots, status changes, transaction starts and stops, meter values, station events',
        querystring: Type.Object({ stationId: Type.Optional(Type.String()) }),
      },
    },
    (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      res.write(': connected\n\n');
      const wanted = req.query.stationId;
      const unsubscribe = services.events.subscribe((event: DomainEvent) => {
        if (wanted && stationOf(event) !== wanted) return;
        res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      });
      // Proxies drop idle streams; a comment line every 15 s keeps it open.
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), 15000);
      keepalive.unref();
      req.raw.on('close', () => {
        clearInterval(keepalive);
        unsubscribe();
      });
    },
  );
}

function stationOf(e: DomainEvent): string {
  switch (e.type) {
    case 'connector.status':
      return e.status.stationId;
    case 'transaction.started':
    case 'transaction.stopped':
      return e.transaction.stationId;
    case 'station.event':
      return e.event.stationId;
    case 'alarm.raised':
      return e.alarm.stationId ?? '';
    default:
      return e.stationId;
  }
}
