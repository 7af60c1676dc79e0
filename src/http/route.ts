import type { AccessClaims } from '../auth/tokens.js';
import { AppError } from '../errors.js';
import { isUuid } from '../ids.js';
import type { HttpContext, Reply } from './respond.js';
import type { Schema } from './schemas.js';

/** One HTTP route: enough to serve it and to describe it in OpenAPI. */
export interface RouteDef {
  method: 'get' | 'post' | 'patch' | 'del';
  /** uWS pattern, e.g. /rooms/:id */
  path: string;
  summary: string;
  tag: string;
  auth: boolean;
  body?: Schema;
  query?: Record<string, Schema>;
  responses: Record<number, { description: string; schema?: Schema }>;
  /** Error codes this route can answer with (documentation). */
  errors?: string[];
  handle(ctx: HttpContext, input: RouteInput): Promise<Reply>;
}

export interface RouteInput {
  body: unknown;
  user: AccessClaims | null;
}

/** A path id must be a UUID: a malformed one is a 400, never a database error. */
export function uuidParam(ctx: HttpContext, index = 0): string {
  const id = ctx.params[index];
  if (!isUuid(id)) throw new AppError('invalid_id', `Malformed id: ${JSON.stringify(id ?? '')}`);
  return id.toLowerCase();
}

/**
 * An optional non-negative integer query parameter within bounds. A bad value is
 * invalid_cursor for paging positions (cursor, after_seq) and invalid_payload for
 * anything else (?limit=abc is a bad limit, not a bad cursor).
 */
export function intQuery(ctx: HttpContext, name: string, opts: { min: number; max: number }): number | null {
  const raw = ctx.query.get(name);
  if (raw === null || raw === '') return null;
  const code = name === 'cursor' || name === 'after_seq' ? 'invalid_cursor' : 'invalid_payload';
  if (!/^\d{1,16}$/.test(raw)) throw new AppError(code, `${name} must be a non-negative integer`);
  const n = Number(raw);
  if (n < opts.min || n > opts.max) throw new AppError(code, `${name} must be between ${opts.min} and ${opts.max}`);
  return n;
}

export function mustUser(input: RouteInput): AccessClaims {
  if (!input.user) throw new AppError('unauthorized');
  return input.user;
}
