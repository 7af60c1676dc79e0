// src/auth/tokens.ts: HS256 access and refresh tokens, kept apart by secret and `typ`.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { createSigner } from 'fast-jwt';
import { createTokenService, hashRefreshToken } from '../src/auth/tokens.js';
import { AppError } from '../src/errors.js';

const ACCESS = 'unit-access-secret-0123456789abcdefghijkl';
const REFRESH = 'unit-refresh-secret-0123456789abcdefghijk';
const tokens = createTokenService({ accessSecret: ACCESS, refreshSecret: REFRESH, accessTtlSec: 900, refreshTtlSec: 86_400 });
const access = { sub: randomUUID(), username: 'alice', sid: randomUUID() };
const refresh = { sub: access.sub, sid: access.sid, gen: 3 };

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
const headerOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof AppError && err.code === code);
}

test('access tokens: round trip, HS256, typ access, exp = iat + TTL', () => {
  const token = tokens.signAccess(access);
  assert.deepEqual(tokens.verifyAccess(token), access);
  assert.deepEqual(headerOf(token), { alg: 'HS256', typ: 'JWT' });
  const p = payloadOf(token);
  assert.equal(p.typ, 'access');
  assert.equal(p.exp - p.iat, 900);
  assert.ok(Math.abs(p.iat * 1000 - Date.now()) < 5000);
  assert.equal(tokens.accessTtlSec, 900);
  assert.equal(tokens.refreshTtlSec, 86_400);
});

test('refresh tokens: round trip, typ refresh, distinct even for the same claims', () => {
  const a = tokens.signRefresh(refresh);
  const b = tokens.signRefresh(refresh);
  assert.notEqual(a, b);
  assert.deepEqual(tokens.verifyRefresh(a), refresh);
  assert.deepEqual(tokens.verifyRefresh(b), refresh);
  const p = payloadOf(a);
  assert.equal(p.typ, 'refresh');
  assert.equal(p.exp - p.iat, 86_400);
});

test('one kind never passes for the other', () => {
  throwsCode(() => tokens.verifyAccess(tokens.signRefresh(refresh)), 'unauthorized');
  throwsCode(() => tokens.verifyRefresh(tokens.signAccess(access)), 'invalid_refresh_token');
  // Even signed with the right secret, the typ claim must match.
  const accessSignedRefresh = createSigner({ key: ACCESS, algorithm: 'HS256' })({ ...refresh, typ: 'refresh' });
  throwsCode(() => tokens.verifyAccess(accessSignedRefresh), 'unauthorized');
  const refreshSignedAccess = createSigner({ key: REFRESH, algorithm: 'HS256' })({ ...access, typ: 'access' });
  throwsCode(() => tokens.verifyRefresh(refreshSignedAccess), 'invalid_refresh_token');
});

test('expired tokens: token_expired', () => {
  const past = { clockTimestamp: Date.now() - 3_600_000, expiresIn: 60_000 };
  throwsCode(() => tokens.verifyAccess(createSigner({ key: ACCESS, algorithm: 'HS256', ...past })({ ...access, typ: 'access' })), 'token_expired');
  throwsCode(() => tokens.verifyRefresh(createSigner({ key: REFRESH, algorithm: 'HS256', ...past })({ ...refresh, typ: 'refresh' })), 'token_expired');
});

test('a cached valid access token still expires', (t) => {
  const short = createTokenService({ accessSecret: ACCESS, refreshSecret: REFRESH, accessTtlSec: 60, refreshTtlSec: 600 });
  const token = short.signAccess(access);
  assert.deepEqual(short.verifyAccess(token), access);
  t.mock.method(Date, 'now', () => (payloadOf(token).exp + 1) * 1000);
  throwsCode(() => short.verifyAccess(token), 'token_expired');
});

test('forged, tampered, alg none and other algorithms: refused', () => {
  const good = tokens.signAccess(access);
  const [header, payload, signature] = good.split('.');
  const forged = [
    createSigner({ key: 'another-secret-another-secret-another', algorithm: 'HS256' })({ ...access, typ: 'access' }),
    `${header}.${b64({ ...payloadOf(good), username: 'mallory' })}.${signature}`,
    `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`,
    `${b64({ alg: 'none' })}.${payload}.${signature}`,
    `${b64({ alg: 'HS512', typ: 'JWT' })}.${payload}.${signature}`,
    createSigner({ key: ACCESS, algorithm: 'HS512' })({ ...access, typ: 'access' }),
    createSigner({ key: ACCESS, algorithm: 'HS384' })({ ...access, typ: 'access' }),
    `${header}.${payload}`,
    `${header}.${payload}.${signature}.extra`,
    '',
    'garbage',
    'a.b.c',
  ];
  for (const token of forged) throwsCode(() => tokens.verifyAccess(token), 'unauthorized');
  for (const token of forged) throwsCode(() => tokens.verifyRefresh(token), 'invalid_refresh_token');
});

test('claims of the wrong type or missing: refused', () => {
  const sign = (claims: Record<string, unknown>) => createSigner({ key: ACCESS, algorithm: 'HS256' })(claims);
  const { sid: _sid, ...noSid } = access;
  for (const claims of [{ ...noSid, typ: 'access' }, { ...access, sub: 1, typ: 'access' }, { ...access, username: null, typ: 'access' }, { ...access }]) {
    throwsCode(() => tokens.verifyAccess(sign(claims)), 'unauthorized');
  }
  const signR = (claims: Record<string, unknown>) => createSigner({ key: REFRESH, algorithm: 'HS256' })(claims);
  for (const claims of [{ ...refresh, gen: '3', typ: 'refresh' }, { sub: refresh.sub, sid: refresh.sid, typ: 'refresh' }, { ...refresh }]) {
    throwsCode(() => tokens.verifyRefresh(signR(claims)), 'invalid_refresh_token');
  }
});

test('hashRefreshToken: SHA-256, deterministic, distinct per token', () => {
  const a = tokens.signRefresh(refresh);
  const b = tokens.signRefresh(refresh);
  assert.equal(hashRefreshToken(a).length, 32);
  assert.ok(hashRefreshToken(a).equals(hashRefreshToken(a)));
  assert.ok(!hashRefreshToken(a).equals(hashRefreshToken(b)));
});
