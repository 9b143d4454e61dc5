import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { fitProfileToStation } from '../charging/profiles/fit.js';
import { parseTimetableCsv, type SessionNeeds, type Vehicle } from '../domain/fleet.js';
import { PlanRequestError } from '../domain/site-planner.js';
import { siteModel, type PlanningSignals, type StoredSite } from '../domain/sites.js';
import { CsvError } from '../io/csv-table.js';
import { errorResponses, httpError } from './http-errors.js';
import type { ApiDeps } from './routes.js';

const DateTime = Type.String({ format: 'date-time' });

export const PlanningSignalsBody = Type.Object(
  {
    prices: Type.Optional(Type.Array(Type.Object({ start: DateTime, pricePerKwh: Type.Number() }, { additionalProperties: false }), { maxItems: 10000 })),
    co2: Type.Optional(Type.Array(Type.Object({ start: DateTime, kgPerKwh: Type.Number({ minimum: 0 }) }, { additionalProperties: false }), { maxItems: 10000 })),
    co2CostPerKg: Type.Optional(Type.Number({ minimum: 0 })),
    demandChargePerKw: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);

const VehicleBody = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 200 })),
    batteryKwh: Type.Number({ exclusiveMinimum: 0, maximum: 100000 }),
    maxPowerKw: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    targetSocPct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    idTags: Type.Array(Type.String({ minLength: 1, maxLength: 20 }), { maxItems: 100, uniqueItems: true }),
  },
  { additionalProperties: false },
);

const NeedsBody = Type.Object(
  {
    departure: Type.Optional(DateTime),
    energyKwh: Type.Optional(Type.Number({ minimum: 0, maximum: 100000, description: 'energy the whole session should deliver, counted from its start' })),
    targetSocPct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    batteryKwh: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100000 })),
    maxPowerKw: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    vehicleId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false, minProperties: 1 },
);

const GenerateBody = Type.Object(
  {
    stationId: Type.String({ minLength: 1, maxLength: 48 }),
    connectorId: Type.Integer({ minimum: 1 }),
    departure: DateTime,
    energyKwh: Type.Number({ exclusiveMinimum: 0, maximum: 100000 }),
    maxPowerKw: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    transactionId: Type.Optional(Type.Integer()),
    unit: Type.Optional(Type.Union([Type.Literal('W'), Type.Literal('A')], { default: 'W' })),
    phases: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2), Type.Literal(3)], { default: 3 })),
    chargingProfileId: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
    stackLevel: Type.Optional(Type.Integer({ minimum: 0, default: 1 })),
  },
  { additionalProperties: false },
);

/**
 * The planner's API: the fleet registry, the timetable import, the needs of a session, each
 * site's plan and its prices, and profile generation for outside systems.
 */
export function registerPlanningRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { store } = deps.services;
  const clock = deps.services.clock;
  const planner = deps.planner;

  // A timetable is a CSV file; it may be posted as it is.
  app.addContentTypeParser(['text/csv', 'text/plain'], { parseAs: 'string', bodyLimit: 16 * 1024 * 1024 }, (_req, body, done) => done(null, body));

  // vehicles

  const VehicleId = Type.Object({ vehicleId: Type.String({ minLength: 1, maxLength: 64 }) });
  app.get('/api/v1/vehicles', { schema: { tags: ['fleet'], summary: 'The fleet registry' } }, async () => ({ items: await store.listVehicles() }));
  app.get<{ Params: { vehicleId: string } }>(
    '/api/v1/vehicles/:vehicleId',
    { schema: { tags: ['fleet'], summary: 'One vehicle with its coming trips', params: VehicleId, response: { 404: errorResponses[404] } } },
    async (req, reply) => {
      const vehicle = await store.getVehicle(req.params.vehicleId);
      if (!vehicle) return httpError(reply, 404, `vehicle ${req.params.vehicleId} not found`);
      const trips = await store.listTrips({ vehicleId: vehicle.id, departsAfter: clock.now().toISOString(), limit: 100 });
      return { ...vehicle, trips };
    },
  );
  app.put<{ Params: { vehicleId: string }; Body: { name?: string; batteryKwh: number; maxPowerKw?: number; targetSocPct?: number; idTags: string[] } }>(
    '/api/v1/vehicles/:vehicleId',
    {
      schema: {
        tags: ['fleet'],
        summary: 'Create or replace a vehicle: battery size, max power, the SoC it should leave with, and the id tags that identify it when it starts charging',
        params: VehicleId,
        body: VehicleBody,
        response: { 400: errorResponses[400], 409: errorResponses[409] },
      },
    },
    async (req, reply) => {
      const others = (await store.listVehicles()).filter((v) => v.id !== req.params.vehicleId);
      const clash = req.body.idTags.find((tag) => others.some((v) => v.idTags.includes(tag)));
      if (clash) return httpError(reply, 409, `id tag ${clash} already identifies vehicle ${others.find((v) => v.idTags.includes(clash))!.id}`);
      const existing = await store.getVehicle(req.params.vehicleId);
      const vehicle: Vehicle = {
        id: req.params.vehicleId,
        name: req.body.name ?? null,
        batteryKwh: req.body.batteryKwh,
        maxPowerKw: req.body.maxPowerKw ?? null,
        targetSocPct: req.body.targetSocPct ?? null,
        idTags: req.body.idTags,
        updatedAt: clock.now().toISOString(),
      };
      await store.putVehicle(vehicle);
      planner.touchAll();
      return reply.code(existing ? 200 : 201).send(vehicle);
    },
  );
  app.delete<{ Params: { vehicleId: string } }>(
    '/api/v1/vehicles/:vehicleId',
    { schema: { tags: ['fleet'], summary: 'Remove a vehicle from the registry (its trips stay)', params: VehicleId, response: { 204: Type.Null(), 404: errorResponses[404] } } },
    async (req, reply) => {
      if (!(await store.deleteVehicle(req.params.vehicleId))) return httpError(reply, 404, `vehicle ${req.params.vehicleId} not found`);
      planner.touchAll();
      return reply.code(204).send();
    },
  );

  // timetable

  app.post<{ Body: string | { csv: string }; Querystring: { createVehicles?: boolean } }>(
    '/api/v1/timetable',
    {
      schema: {
        tags: ['fleet'],
        summary:
          'Import a timetable (rotation plan) CSV: vehicle_id,arrival,departure and energy_kwh or target_soc_pct (optional arrival_soc_pct, battery_kwh). Trips with the same vehicle and departure are updated. A bad row imports nothing and names its line.',
        querystring: Type.Object({ createVehicles: Type.Optional(Type.Boolean({ default: true, description: 'register unknown vehicles that have a battery_kwh' })) }),
        response: {
          400: Type.Object({
            statusCode: Type.Integer(),
            error: Type.String(),
            message: Type.String(),
            line: Type.Optional(Type.Integer({ description: 'line of the CSV (the header is line 1)' })),
            column: Type.Optional(Type.Union([Type.String(), Type.Null()])),
          }),
        },
      },
    },
    async (req, reply) => {
      const text = typeof req.body === 'string' ? req.body : typeof req.body?.csv === 'string' ? req.body.csv : null;
      if (text === null) return httpError(reply, 400, 'send the timetable as text/csv, or as JSON { "csv": "..." }');
      let parsed: ReturnType<typeof parseTimetableCsv>;
      try {
        parsed = parseTimetableCsv(text, 'timetable');
      } catch (err) {
        if (err instanceof CsvError) return httpError(reply, 400, err.message, { line: err.line, column: err.column });
        throw err;
      }
      const known = new Map((await store.listVehicles()).map((v) => [v.id, v]));
      const now = clock.now().toISOString();
      const missing = [...new Set(parsed.trips.map((t) => t.vehicleId))].filter((id) => !known.has(id));
      const created: string[] = [];
      if (req.query.createVehicles !== false) {
        for (const id of missing) {
          const batteryKwh = parsed.batteryKwh.get(id);
          if (batteryKwh === undefined) continue;
          await store.putVehicle({ id, name: null, batteryKwh, maxPowerKw: null, targetSocPct: null, idTags: [id], updatedAt: now });
          created.push(id);
        }
      }
      const unknown = missing.filter((id) => !created.includes(id));
      const result = await store.putTrips(parsed.trips, now);
      planner.touchAll();
      return reply.code(200).send({ ...result, vehiclesCreated: created, unknownVehicles: unknown });
    },
  );
  app.get<{ Querystring: { vehicleId?: string; from?: string; to?: string; limit: number } }>(
    '/api/v1/timetable',
    {
      schema: {
        tags: ['fleet'],
        summary: 'Trips of the timetable, by departure',
        querystring: Type.Object({
          vehicleId: Type.Optional(Type.String()),
          from: Type.Optional(DateTime),
          to: Type.Optional(DateTime),
          limit: Type.Integer({ minimum: 1, maximum: 10000, default: 1000 }),
        }),
      },
    },
    async (req) => ({ items: await store.listTrips({ vehicleId: req.query.vehicleId, departsAfter: req.query.from, arrivesBefore: req.query.to, limit: req.query.limit }) }),
  );

  // needs of a session

  const TxId = Type.Object({ id: Type.Integer() });
  const needsView = async (transactionId: number) => {
    const t = (await store.getTransaction(transactionId))!;
    const { needs, trip } = await planner.needsOf(t);
    return {
      transactionId,
      given: (await store.getSessionNeeds(transactionId)) ?? null,
      resolved: { ...needs, departure: needs.departureMs === null ? null : new Date(needs.departureMs).toISOString(), departureMs: undefined },
      trip: trip ?? null,
    };
  };
  app.get<{ Params: { id: number } }>(
    '/api/v1/transactions/:id/needs',
    { schema: { tags: ['transactions'], summary: 'What is known of a session\'s needs, and from where (api, timetable, vehicle, SoC)', params: TxId, response: { 404: errorResponses[404] } } },
    async (req, reply) => ((await store.getTransaction(req.params.id)) ? needsView(req.params.id) : httpError(reply, 404, `transaction ${req.params.id} not found`)),
  );
  app.put<{ Params: { id: number }; Body: Omit<SessionNeeds, 'updatedAt'> }>(
    '/api/v1/transactions/:id/needs',
    {
      schema: {
        tags: ['transactions'],
        summary: 'Tell the planner a session\'s departure and energy (or target SoC and battery); they replace what was given before and win over the timetable',
        params: TxId,
        body: NeedsBody,
        response: { 400: errorResponses[400], 404: errorResponses[404], 409: errorResponses[409] },
      },
    },
    async (req, reply) => {
      const t = await store.getTransaction(req.params.id);
      if (!t) return httpError(reply, 404, `transaction ${req.params.id} not found`);
      if (t.stopTime !== null) return httpError(reply, 409, `transaction ${t.id} has ended`);
      if (req.body.vehicleId && !(await store.getVehicle(req.body.vehicleId))) return httpError(reply, 400, `vehicle ${req.body.vehicleId} is not in the registry`);
      const needs: SessionNeeds = { ...req.body, ...(req.body.departure ? { departure: new Date(req.body.departure).toISOString() } : {}), updatedAt: clock.now().toISOString() };
      await store.putSessionNeeds(t.id, needs);
      planner.touchStation(t.stationId);
      return needsView(t.id);
    },
  );

  // plans and prices of a site

  const SiteId = Type.Object({ siteId: Type.String({ minLength: 1, maxLength: 64 }) });
  app.get<{ Params: { siteId: string } }>(
    '/api/v1/sites/:siteId/plan',
    { schema: { tags: ['sites'], summary: 'The site\'s charging plan: power per session per step, expected shortfalls, and the sessions left to fair sharing', params: SiteId, response: { 404: errorResponses[404] } } },
    async (req, reply) => {
      if (!(await store.getSite(req.params.siteId))) return httpError(reply, 404, `site ${req.params.siteId} not found`);
      return planner.planOf(req.params.siteId) ?? httpError(reply, 404, `site ${req.params.siteId} has no plan yet`);
    },
  );
  app.post<{ Params: { siteId: string } }>(
    '/api/v1/sites/:siteId/plan',
    { schema: { tags: ['sites'], summary: 'Re-plan the site now (it also re-plans on its own, on events and every step)', params: SiteId, response: { 404: errorResponses[404] } } },
    async (req, reply) => {
      if (!(await store.getSite(req.params.siteId))) return httpError(reply, 404, `site ${req.params.siteId} not found`);
      return (await planner.replan(req.params.siteId)) ?? httpError(reply, 404, `site ${req.params.siteId} is not planned (is the planner enabled?)`);
    },
  );
  app.put<{ Params: { siteId: string }; Body: PlanningSignals }>(
    '/api/v1/sites/:siteId/planning',
    {
      schema: {
        tags: ['sites'],
        summary: 'Energy prices, CO2 intensity (step functions from each start), the cost of a kg of CO2 and the demand charge per kW that the planner optimises against',
        params: SiteId,
        body: PlanningSignalsBody,
        response: { 404: errorResponses[404] },
      },
    },
    async (req, reply) => {
      const stored = await store.getSite(req.params.siteId);
      if (!stored) return httpError(reply, 404, `site ${req.params.siteId} not found`);
      const updated: StoredSite = { ...stored, definition: { ...stored.definition, planning: req.body }, updatedAt: clock.now().toISOString() };
      siteModel(updated);
      await store.putSite(updated);
      await planner.reloadSite(updated.id);
      return updated.definition.planning;
    },
  );

  // profiles for outside systems

  app.post<{
    Body: { stationId: string; connectorId: number; departure: string; energyKwh: number; maxPowerKw?: number; transactionId?: number; unit: 'W' | 'A'; phases: 1 | 2 | 3; chargingProfileId: number; stackLevel: number };
  }>(
    '/api/v1/charging-profiles/generate',
    {
      schema: {
        tags: ['charging profiles'],
        summary:
          'The OCPP csChargingProfiles a vehicle about to charge should get: planned with every session of its site (limits, prices, CO2, other departures), fitted to what the station accepts. Nothing is sent or stored.',
        body: GenerateBody,
        response: { 400: errorResponses[400], 404: errorResponses[404] },
      },
    },
    async (req, reply) => {
      const departure = new Date(req.body.departure);
      if (departure.getTime() <= clock.now().getTime()) return httpError(reply, 400, `departure ${req.body.departure} is not in the future`);
      try {
        const generated = await planner.generateProfile({ ...req.body, departure });
        const caps = (await store.getProfileCapabilities(req.body.stationId)) ?? { supplyVoltage: deps.config.smartCharging.supplyVoltage };
        const fitted = fitProfileToStation(generated.profile, caps);
        return {
          connectorId: req.body.connectorId,
          csChargingProfiles: fitted.profile,
          fitted: fitted.changes,
          plannedKwh: generated.plannedKwh,
          shortfallKwh: generated.shortfallKwh,
          method: generated.method,
          siteId: generated.siteId,
          plan: generated.intervals.map((interval, i) => ({ ...interval, powerKw: generated.powerKw[i], sitePowerKw: generated.sitePowerKw[i] })),
        };
      } catch (err) {
        if (err instanceof PlanRequestError) return httpError(reply, 400, err.message);
        throw err;
      }
    },
  );
}
