import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { AppError } from '../errors.js';
import type { Schema } from './schemas.js';

// One Ajv instance; every schema is compiled once, at start.
const ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false });
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addFormat('date-time', true);

export function compile<T>(schema: Schema): (value: unknown) => T {
  const check: ValidateFunction = ajv.compile(schema);
  return (value) => {
    if (check(value)) return value as T;
    throw new AppError('invalid_payload', describe(check.errors), check.errors?.map(detail));
  };
}

function describe(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return 'Request payload is invalid';
  const field = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : (e.params as { missingProperty?: string }).missingProperty;
  return field ? `${field} ${e.message}` : `payload ${e.message}`;
}

function detail(e: ErrorObject): { path: string; rule: string; message?: string } {
  return { path: e.instancePath || '/', rule: e.keyword, message: e.message };
}
