import { Type } from '@sinclair/typebox';

/** Schemas of the REST API, declared once for validation, serialisation and the OpenAPI document. */

export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String(),
    message: Type.String(),
    ocppErrorCode: Type.Optional(Type.String()),
    ocppErrorDescription: Type.Optional(Type.String()),
    ocppErrorDetails: Type.Optional(Type.Unknown()),
  },
  { $id: 'Error' },
);

export const Connector = Type.Object({
  connectorId: Type.Integer(),
  status: Type.String(),
  errorCode: Type.String(),
  info: Type.Union([Type.String(), Type.Null()]),
  vendorErrorCode: Type.Union([Type.String(), Type.Null()]),
  since: Type.String({ format: 'date-time' }),
});

const nullableString = Type.Union([Type.String(), Type.Null()]);

export const Station = Type.Object({
  id: Type.String(),
  connected: Type.Boolean(),
  registration: Type.Union([Type.Literal('accepted'), Type.Literal('pending'), Type.Literal('rejected')]),
  securityProfile: Type.Integer(),
  hasPassword: Type.Boolean(),
  vendor: nullableString,
  model: nullableString,
  serialNumber: nullableString,
  firmwareVersion: nullableString,
  meterType: nullableString,
  meterSerialNumber: nullableString,
  iccid: nullableString,
  imsi: nullableString,
  localListVersion: Type.Integer(),
  createdAt: Type.String(),
  lastBootAt: nullableString,
  lastSeenAt: nullableString,
  connectors: Type.Array(Connector),
});

export const StationId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 48 }) });

export const CreateStation = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 48, pattern: '^[\\x21-\\x2e\\x30-\\x7e]+$' }),
    registration: Type.Optional(Type.Union([Type.Literal('accepted'), Type.Literal('pending'), Type.Literal('rejected')])),
    password: Type.Optional(Type.String({ minLength: 16, maxLength: 40 })),
    securityProfile: Type.Optional(Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)])),
  },
  { additionalProperties: false },
);

export const IdTag = Type.Object(
  {
    idTag: Type.String({ minLength: 1, maxLength: 20 }),
    status: Type.Union([Type.Literal('Accepted'), Type.Literal('Blocked'), Type.Literal('Expired'), Type.Literal('Invalid')]),
    expiryDate: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
    parentIdTag: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 20 }), Type.Null()])),
  },
  { additionalProperties: false },
);

export const Transaction = Type.Object({
  id: Type.Integer(),
  stationId: Type.String(),
  connectorId: Type.Integer(),
  idTag: Type.String(),
  startTime: Type.String(),
  stopTime: nullableString,
  meterStart: Type.Number(),
  meterStop: Type.Union([Type.Number(), Type.Null()]),
  energyWh: Type.Union([Type.Number(), Type.Null()]),
  stopReason: nullableString,
  stopIdTag: nullableString,
  reservationId: Type.Union([Type.Integer(), Type.Null()]),
  authorization: Type.String(),
  active: Type.Boolean(),
});

export const MeterReading = Type.Object({
  timestamp: Type.String(),
  connectorId: Type.Integer(),
  transactionId: Type.Union([Type.Integer(), Type.Null()]),
  measurand: Type.String(),
  phase: nullableString,
  location: Type.String(),
  context: Type.String(),
  unit: nullableString,
  value: Type.Union([Type.Number(), Type.Null()]),
  rawValue: Type.String(),
  rawUnit: nullableString,
  format: Type.String(),
  derived: Type.Boolean(),
});

export const StatusChange = Type.Object({
  connectorId: Type.Integer(),
  status: Type.String(),
  errorCode: Type.String(),
  info: nullableString,
  vendorId: nullableString,
  vendorErrorCode: nullableString,
  since: Type.String(),
  receivedAt: Type.String(),
});

export const TimeRange = {
  from: Type.Optional(Type.String({ format: 'date-time' })),
  to: Type.Optional(Type.String({ format: 'date-time' })),
};

export const Limit = (max: number, def: number) => Type.Optional(Type.Integer({ minimum: 1, maximum: max, default: def }));
