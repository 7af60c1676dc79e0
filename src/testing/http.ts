import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Room } from '../db/rooms.js';

/** A tiny HTTP client for tests, on global fetch (keep-alive connections, reused). */
export interface TestResponse<T = any> {
  status: number;
  /** Parsed JSON when the response says JSON, else the text ('' when empty). */
  body: T;
  headers: Headers;
}

const REQUEST_TIMEOUT_MS = 30_000;

export interface RequestOptions {
  token?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is (bad JSON, oversized bodies); Content-Type stays application/json unless headers set it. */
  rawBody?: string | Uint8Array;
  /** Extra headers; a header set to '' is left out (e.g. to send no Content-Type at all). */
  headers?: Record<string, string>;
}

export async function request<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  opts: RequestOptions = {},
): Promise<TestResponse<T>> {
  const headers: Record<string, string> = {};
  let body: Blob | undefined;
  if (opts.body !== undefined || opts.rawBody !== undefined) {
    headers['content-type'] = 'application/json';
    const raw = opts.rawBody ?? JSON.stringify(opts.body);
    // A typeless Blob, not a string: fetch would otherwise add its own text/plain Content-Type.
    body = new Blob([typeof raw === 'string' ? raw : new Uint8Array(raw)]);
  }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  for (const [name, value] of Object.entries(opts.headers ?? {})) headers[name.toLowerCase()] = value;
  for (const name of Object.keys(headers)) if (headers[name] === '') delete headers[name];

  // Concatenated, not resolved: new URL('//x', base) would point at a host named x.
  // The timeout turns a request the server never answers into a failure, not a hung suite.
  const res = await fetch(baseUrl.replace(/\/$/, '') + path, { method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await res.text();
  const isJson = /\bjson\b/i.test(res.headers.get('content-type') ?? '');
  return { status: res.status, body: (isJson && text !== '' ? JSON.parse(text) : text) as T, headers: res.headers };
}

export interface RegisteredUser {
  user: { id: string; username: string; email: string; created_at: string };
  accessToken: string;
  refreshToken: string;
  password: string;
  email: string;
}

let userCounter = 0;

/** A unique name, also across test processes sharing one database: prefix, pid, counter, random. */
export function uniqueName(prefix = 'u'): string {
  return `${prefix}_${process.pid}_${++userCounter}_${randomBytes(3).toString('hex')}`;
}

/** Registers a fresh user (unique username and email); throws unless the server answers 201. */
export async function registerUser(baseUrl: string, prefix = 'u'): Promise<RegisteredUser> {
  const username = uniqueName(prefix).slice(0, 32);
  const email = `${username}@example.test`;
  const password = `pw-${randomBytes(6).toString('hex')}`;
  const res = await request(baseUrl, 'POST', '/auth/register', { body: { username, email, password } });
  if (res.status !== 201) throw new Error(`register ${username}: ${res.status} ${JSON.stringify(res.body)}`);
  return { user: res.body.user, accessToken: res.body.tokens.accessToken, refreshToken: res.body.tokens.refreshToken, password, email };
}

/** The HTTP shape of a room is the data layer's row. */
export type { Room } from '../db/rooms.js';

/** Creates a room (unique name unless given); throws unless 201. */
export async function createRoom(baseUrl: string, token: string, name = uniqueName('room')): Promise<Room> {
  const res = await request<Room>(baseUrl, 'POST', '/rooms', { token, body: { name } });
  if (res.status !== 201) throw new Error(`create room ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Joins a room; throws unless 200 or 201. */
export async function joinRoom(baseUrl: string, token: string, roomId: string): Promise<TestResponse> {
  const res = await request(baseUrl, 'POST', `/rooms/${roomId}/join`, { token });
  if (res.status !== 200 && res.status !== 201) throw new Error(`join ${roomId}: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

/**
 * Asserts an error reply by status and stable `code` (never message text), and
 * that the body has the NestJS-compatible shape {statusCode, error, message, code}.
 */
export function assertError(res: TestResponse, status: number, code: string): void {
  const detail = `${res.status} ${JSON.stringify(res.body)}`;
  assert.equal(res.status, status, `expected ${status} ${code}, got ${detail}`);
  assert.equal(res.body?.code, code, `expected code ${code}, got ${detail}`);
  assert.equal(res.body.statusCode, status);
  assert.equal(typeof res.body.error, 'string');
  assert.equal(typeof res.body.message, 'string');
}
