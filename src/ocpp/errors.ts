/** OCPP-J RPC error codes (OCPP-J 1.6 §4.2.3). 2.0.1 renames FormationViolation to FormatViolation;
 * the 1.6 adapter speaks the 1.6 names. */
export type OcppErrorCode =
  | 'NotImplemented'
  | 'NotSupported'
  | 'InternalError'
  | 'ProtocolError'
  | 'SecurityError'
  | 'FormationViolation'
  | 'PropertyConstraintViolation'
  | 'OccurenceConstraintViolation'
  | 'TypeConstraintViolation'
  | 'GenericError';

/** An error that travels as a CALLERROR frame, in either direction. */
export class OcppError extends Error {
  constructor(
    public readonly code: OcppErrorCode | string,
    message: string,
    public readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'OcppError';
  }
}

/** Our CALL got no answer within the call timeout. */
export class OcppTimeoutError extends Error {
  constructor(action: string, timeoutMs: number) {
    super(`${action} got no answer within ${timeoutMs} ms`);
    this.name = 'OcppTimeoutError';
  }
}

/** The connection closed while a CALL was queued or waiting for its answer. */
export class OcppConnectionClosedError extends Error {
  constructor(stationId: string) {
    super(`connection of ${stationId} closed before the call was answered`);
    this.name = 'OcppConnectionClosedError';
  }
}

/** A CALL we were about to send breaks the schema: the caller's request is wrong, not the station. */
export class OcppRequestInvalidError extends Error {
  constructor(
    public readonly action: string,
    public readonly cause: OcppError,
  ) {
    super(`${action} request is invalid: ${cause.message}`);
    this.name = 'OcppRequestInvalidError';
  }
}
