import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { OcppError, type OcppErrorCode } from './errors.js';

const require = createRequire(import.meta.url);
// ajv-formats is CommonJS whose typings declare an ES default export; require gives the function.
const addFormats = require('ajv-formats') as (ajv: Ajv) => Ajv;

/** OCPP-J 1.6 §4.2.3 says which code a broken payload gets; this maps the JSON-schema keyword
 * that failed onto it. A field that is not in the PDU at all breaks its structure. */
const errorCodeByKeyword: Record<string, OcppErrorCode> = {
  type: 'TypeConstraintViolation',
  required: 'OccurenceConstraintViolation',
  minItems: 'OccurenceConstraintViolation',
  maxItems: 'OccurenceConstraintViolation',
  additionalProperties: 'FormationViolation',
  enum: 'PropertyConstraintViolation',
  pattern: 'PropertyConstraintViolation',
  format: 'PropertyConstraintViolation',
  maxLength: 'PropertyConstraintViolation',
  minLength: 'PropertyConstraintViolation',
  maximum: 'PropertyConstraintViolation',
  minimum: 'PropertyConstraintViolation',
  exclusiveMaximum: 'PropertyConstraintViolation',
  exclusiveMinimum: 'PropertyConstraintViolation',
  multipleOf: 'PropertyConstraintViolation',
};

export type OcppSubprotocol = 'ocpp1.6';

/** Validates payloads of one OCPP version against the official JSON schemas (shipped in ocpp-rpc). */
export class OcppSchemaValidator {
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(public readonly subprotocol: OcppSubprotocol) {
    const file = { 'ocpp1.6': 'ocpp-rpc/lib/schemas/ocpp1_6.json' }[subprotocol];
    const schemas = require(file) as Array<{ $id: string }>;
    const ajv = new Ajv({ strictSchema: false, allErrors: false });
    addFormats(ajv);
    // The official schemas use multipleOf 0.1 for limits; binary floating point makes 0.3 fail a
    // literal multipleOf check, so compare with a tolerance.
    ajv.removeKeyword('multipleOf');
    ajv.addKeyword({
      keyword: 'multipleOf',
      type: 'number',
      errors: false,
      metaSchema: { type: 'number' },
      compile: (step: number) => (data: number) => Math.abs(Math.round(data / step) - data / step) < 1e-6,
    });
    for (const { $id, ...schema } of schemas) {
      // The ids ("urn:Authorize.req") are dropped before compiling: the URI library behind current
      // Ajv refuses URNs without a namespace id, and the schemas hold no $ref that needs them.
      this.validators.set($id.replace(/^urn:/, ''), ajv.compile(schema));
    }
  }

  /** True when the version defines this action (in either direction). */
  knows(action: string): boolean {
    return this.validators.has(`${action}.req`);
  }

  /** Throws an OcppError carrying the right CALLERROR code when the payload breaks the schema. */
  validate(action: string, kind: 'req' | 'conf', payload: unknown): void {
    const validate = this.validators.get(`${action}.${kind}`);
    if (!validate) throw new OcppError('NotImplemented', `unknown action ${action}`);
    if (validate(payload)) return;
    const errors = validate.errors ?? [];
    const first = errors[0];
    const code = (first && errorCodeByKeyword[first.keyword]) || 'FormationViolation';
    throw new OcppError(code, describeSchemaErrors(errors), { errors: errors.slice(0, 5) });
  }
}

export function describeSchemaErrors(errors: ErrorObject[]): string {
  return errors
    .slice(0, 5)
    .map((e) => {
      const where = e.instancePath || '(payload)';
      if (e.keyword === 'additionalProperties') {
        return `${where} has unexpected property "${(e.params as { additionalProperty: string }).additionalProperty}"`;
      }
      return `${where} ${e.message}`;
    })
    .join('; ');
}

const validatorCache = new Map<OcppSubprotocol, OcppSchemaValidator>();
/** Schemas are compiled once per process: compiling all 78 takes tens of milliseconds. */
export function schemaValidator(subprotocol: OcppSubprotocol): OcppSchemaValidator {
  let v = validatorCache.get(subprotocol);
  if (!v) {
    v = new OcppSchemaValidator(subprotocol);
    validatorCache.set(subprotocol, v);
  }
  return v;
}
