import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Fleet } from './fleet.js';
import type { SimulatedStation } from './station.js';

const StationParams = Type.Object({ id: Type.String() });
const ConnectorParams = Type.Object({ id: Type.String(), connectorId: Type.Integer({ minimum: 1 }) });

/**
 * The simulator's control API: what a person (or a test, or later the CSMS web UI) does to the
 * simulated stations: plug and unplug vehicles, present cards, fault connectors, cut connections,
 * inject charger faults, and read each station's profiles and the limit it computes.
 */
export async function buildControlApi(fleet: Fleet): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  await app.register(swagger, {
    openapi: { openapi: '3.0.3', info: { title: 'Ampyard simulator control API', version: '1', description: 'Drive the simulated OCPP 1.6J stations.' } },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const find = (id: string, reply: FastifyReply): SimulatedStation | undefined => {
    const station = fleet.station(id);
    if (!station) void reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no simulated station ${id}` });
    return station;
  };
  const guard = async (reply: FastifyReply, fn: () => Promise<unknown> | unknown) => {
    try {
      return await fn();
    } catch (err) {
      return reply.code(409).send({ statusCode: 409, error: 'Conflict', message: (err as Error).message });
    }
  };

  app.get('/stations', { schema: { summary: 'Every simulated station with its connectors' } }, async () => ({
    simulatedTime: fleet.clock.now().toISOString(),
    speed: fleet.clock.speed,
    items: fleet.stations.map((s) => {
      const { profiles: _p, ...rest } = s.view();
      return rest;
    }),
  }));

  app.get<{ Params: { id: string } }>('/stations/:id', { schema: { summary: 'One station: connectors, vehicles, installed profiles and the limit it computes', params: StationParams } }, async (req, reply) => {
    const s = find(req.params.id, reply);
    return s && s.view();
  });

  app.post<{ Params: { id: string; connectorId: number }; Body: { vehicle?: Record<string, unknown>; autoStart?: boolean } }>(
    '/stations/:id/connectors/:connectorId/plug',
    {
      schema: {
        summary: 'Plug an EV in (with autoStart, its driver presents the vehicle id tag at once)',
        params: ConnectorParams,
        body: Type.Object({
          autoStart: Type.Optional(Type.Boolean({ default: true })),
          vehicle: Type.Optional(
            Type.Object({
              id: Type.Optional(Type.String()),
              idTag: Type.Optional(Type.String({ maxLength: 20 })),
              batteryKwh: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
              arrivalSocPct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
              targetSocPct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
              acMaxCurrentA: Type.Optional(Type.Number({ minimum: 0 })),
              acPhases: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2), Type.Literal(3)])),
              dcMaxPowerKw: Type.Optional(Type.Number({ minimum: 0 })),
              departureInS: Type.Optional(Type.Number({ minimum: 0 })),
            }),
          ),
        }),
      },
    },
    async (req, reply) => {
      const s = find(req.params.id, reply);
      if (!s) return;
      const v = req.body?.vehicle ?? {};
      const now = fleet.clock.now();
      return guard(reply, () => {
        s.plugIn(
          req.params.connectorId,
          {
            id: (v.id as string) ?? `EV-${s.id}-${req.params.connectorId}`,
            idTag: (v.idTag as string) ?? `TAG-${s.id}`.slice(0, 20),
            batteryKwh: (v.batteryKwh as number) ?? 60,
            arrivalSocPct: (v.arrivalSocPct as number) ?? 20,
            targetSocPct: (v.targetSocPct as number) ?? 100,
            acMaxCurrentA: (v.acMaxCurrentA as number) ?? 32,
            acPhases: (v.acPhases as 1 | 2 | 3) ?? 3,
            dcMaxPowerKw: (v.dcMaxPowerKw as number) ?? 150,
            minAcCurrentA: 6,
            arrival: now,
            departure: new Date(now.getTime() + ((v.departureInS as number) ?? 8 * 3600) * 1000),
          },
          { autoStart: req.body?.autoStart ?? true },
        );
        return s.view().connectors[req.params.connectorId - 1];
      });
    },
  );

  app.post<{ Params: { id: string; connectorId: number } }>(
    '/stations/:id/connectors/:connectorId/unplug',
    { schema: { summary: 'Unplug the EV: a running transaction stops with reason EVDisconnected', params: ConnectorParams } },
    async (req, reply) => {
      const s = find(req.params.id, reply);
      if (!s) return;
      return guard(reply, async () => {
        await s.unplug(req.params.connectorId);
        return s.view().connectors[req.params.connectorId - 1];
      });
    },
  );

  app.post<{ Params: { id: string; connectorId: number }; Body: { idTag: string } }>(
    '/stations/:id/connectors/:connectorId/id-tag',
    {
      schema: {
        summary: 'Present an id tag: authorises and starts (EV plugged) or arms the connector; the same tag stops a running transaction',
        params: ConnectorParams,
        body: Type.Object({ idTag: Type.String({ minLength: 1, maxLength: 20 }) }),
      },
    },
    async (req, reply) => {
      const s = find(req.params.id, reply);
      if (!s) return;
      return guard(reply, async () => ({ status: await s.presentIdTag(req.params.connectorId, req.body.idTag) }));
    },
  );

  app.post<{ Params: { id: string; connectorId: number }; Body: { errorCode: string | null } }>(
    '/stations/:id/connectors/:connectorId/fault',
    {
      schema: {
        summary: 'Fault a connector with an OCPP error code (e.g. GroundFailure), or clear the fault with null',
        params: ConnectorParams,
        body: Type.Object({ errorCode: Type.Union([Type.String(), Type.Null()]) }),
      },
    },
    async (req, reply) => {
      const s = find(req.params.id, reply);
      if (!s) return;
      return guard(reply, async () => {
        await s.setFault(req.params.connectorId, req.body.errorCode);
        return s.view().connectors[req.params.connectorId - 1];
      });
    },
  );

  app.post<{ Params: { id: string }; Body: { online: boolean } }>(
    '/stations/:id/connection',
    {
      schema: {
        summary: 'Cut (online: false) or restore (online: true) the station connection; it keeps charging and queues transaction messages while offline',
        params: StationParams,
        body: Type.Object({ online: Type.Boolean() }),
      },
    },
    async (req, reply) => {
      const s = find(req.params.id, reply);
      if (!s) return;
      if (req.body.online) s.restoreConnection();
      else s.cutConnection();
      return { id: s.id, online: req.body.online };
    },
  );

  app.put<{ Params: { id: string }; Body: Partial<SimulatedStation['faults']> }>(
    '/stations/:id/faults',
    {
      schema: {
        summary: 'Charger faults for readiness checks: reject SetChargingProfile, ignore profile limits, answer GetCompositeSchedule wrongly, send wrong measurands',
        params: StationParams,
        body: Type.Object(
          {
            rejectSetChargingProfile: Type.Optional(Type.Boolean()),
            ignoreProfileLimit: Type.Optional(Type.Boolean()),
            wrongCompositeSchedule: Type.Optional(Type.Boolean()),
            wrongMeasurands: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const s = find(req.params.id, reply);
      if (!s) return;
      Object.assign(s.faults, req.body);
      return s.faults;
    },
  );

  return app;
}
