import { decoyHash, hashPassword, verifyPassword } from '../auth/password.js';
import { hashRefreshToken, type AccessClaims } from '../auth/tokens.js';
import { insertSession, listSessions, revokeSession, revokeSessionByRefresh, rotateRefresh } from '../db/sessions.js';
import { findUserById, findUserForLogin, insertUser, type User } from '../db/users.js';
import { AppError } from '../errors.js';
import { uuidv7 } from '../ids.js';
import type { HttpDeps } from './deps.js';
import type { HttpContext } from './respond.js';
import { mustUser, uuidParam, type RouteDef } from './route.js';
import {
  authResponseSchema,
  loginBody,
  refreshBody,
  registerBody,
  sessionSchema,
  successSchema,
} from './schemas.js';
import { compile } from './validate.js';

const parseRegister = compile<{ username: string; email: string; password: string }>(registerBody);
const parseLogin = compile<{ email?: string; username?: string; password: string }>(loginBody);
const parseRefresh = compile<{ refreshToken: string }>(refreshBody);

/** Verifies the bearer access token of a request; throws unauthorized / token_expired / session_revoked. */
export function authenticate(deps: Pick<HttpDeps, 'tokens' | 'revoked'>, authorization: string): AccessClaims {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match) throw new AppError('unauthorized');
  return verifyAccessToken(deps, match[1]);
}

export function verifyAccessToken(deps: Pick<HttpDeps, 'tokens' | 'revoked'>, token: string): AccessClaims {
  const claims = deps.tokens.verifyAccess(token);
  if (deps.revoked.has(claims.sid)) throw new AppError('session_revoked');
  return claims;
}

/**
 * Login/register are throttled per client IP and per account. Loopback clients
 * (a local seed or load test) are throttled per account only; behind a proxy set
 * TRUST_PROXY so the forwarded client address is what counts.
 */
function throttleKeys(ip: string, account: string): string[] {
  const keys = [`acct:${account.toLowerCase()}`];
  if (!isLoopback(ip)) keys.push(`ip:${ip}`);
  return keys;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip.startsWith('::ffff:127.') || ip === '0000:0000:0000:0000:0000:0000:0000:0001';
}

async function startSession(deps: HttpDeps, ctx: HttpContext, user: User) {
  const sid = uuidv7();
  const refreshToken = deps.tokens.signRefresh({ sub: user.id, sid, gen: 0 });
  await insertSession(deps.db, {
    id: sid,
    userId: user.id,
    refreshHash: hashRefreshToken(refreshToken),
    ttlSec: deps.tokens.refreshTtlSec,
    userAgent: ctx.userAgent.slice(0, 512) || null,
    ip: ctx.ip || null,
  });
  const accessToken = deps.tokens.signAccess({ sub: user.id, username: user.username, sid });
  return { user, tokens: { accessToken, refreshToken } };
}

export function authRoutes(deps: HttpDeps): RouteDef[] {
  return [
    {
      method: 'post',
      path: '/auth/register',
      tag: 'auth',
      summary: 'Create an account and a session',
      auth: false,
      body: registerBody,
      responses: { 201: { description: 'Registered', schema: authResponseSchema } },
      errors: ['invalid_payload', 'username_taken', 'email_taken', 'rate_limited'],
      async handle(ctx, input) {
        const body = parseRegister(input.body);
        deps.authLimiter.hit(throttleKeys(ctx.ip, body.email));
        const passwordHash = await hashPassword(body.password);
        const user = await insertUser(deps.db, { id: uuidv7(), username: body.username, email: body.email, passwordHash });
        return { status: 201, body: await startSession(deps, ctx, user) };
      },
    },
    {
      method: 'post',
      path: '/auth/login',
      tag: 'auth',
      summary: 'Log in with email (or username) and password',
      auth: false,
      body: loginBody,
      responses: { 200: { description: 'Logged in', schema: authResponseSchema } },
      errors: ['invalid_payload', 'invalid_credentials', 'rate_limited'],
      async handle(ctx, input) {
        const body = parseLogin(input.body);
        const account = (body.email ?? body.username ?? '').toLowerCase();
        deps.authLimiter.hit(throttleKeys(ctx.ip, account));
        const found = await findUserForLogin(deps.db, body.email !== undefined ? { email: body.email } : { username: body.username });
        const ok = await verifyPassword(found?.password_hash ?? (await decoyHash()), body.password);
        if (!found || !ok) throw new AppError('invalid_credentials');
        const { password_hash: _ignored, ...user } = found;
        return { status: 200, body: await startSession(deps, ctx, user) };
      },
    },
    {
      method: 'post',
      path: '/auth/refresh',
      tag: 'auth',
      summary: 'Trade a refresh token for a new token pair (rotation; reuse revokes the session)',
      auth: false,
      body: refreshBody,
      responses: { 200: { description: 'New token pair', schema: authResponseSchema } },
      errors: ['invalid_payload', 'invalid_refresh_token', 'token_expired', 'refresh_token_reused', 'session_revoked'],
      async handle(_ctx, input) {
        const { refreshToken } = parseRefresh(input.body);
        const claims = deps.tokens.verifyRefresh(refreshToken);
        const next = deps.tokens.signRefresh({ sub: claims.sub, sid: claims.sid, gen: claims.gen + 1 });
        const outcome = await rotateRefresh(deps.db, {
          sessionId: claims.sid,
          userId: claims.sub,
          presentedHash: hashRefreshToken(refreshToken),
          nextHash: hashRefreshToken(next),
          nextGeneration: claims.gen + 1,
          ttlSec: deps.tokens.refreshTtlSec,
        });
        if (outcome === 'reused') {
          deps.revoked.add(claims.sid);
          throw new AppError('refresh_token_reused');
        }
        if (outcome === 'revoked') throw new AppError('session_revoked');
        if (outcome === 'expired') throw new AppError('token_expired');
        if (outcome === 'not_found') throw new AppError('invalid_refresh_token');
        const user = await findUserById(deps.db, claims.sub);
        if (!user) throw new AppError('invalid_refresh_token');
        const accessToken = deps.tokens.signAccess({ sub: user.id, username: user.username, sid: claims.sid });
        return { status: 200, body: { user, tokens: { accessToken, refreshToken: next } } };
      },
    },
    {
      method: 'post',
      path: '/auth/logout',
      tag: 'auth',
      summary: 'End the session of the given refresh token (or of the access token)',
      auth: true,
      body: refreshBody,
      responses: { 200: { description: 'Logged out', schema: successSchema } },
      errors: ['unauthorized', 'invalid_payload'],
      async handle(_ctx, input) {
        const user = mustUser(input);
        const { refreshToken } = parseRefresh(input.body);
        let revoked = false;
        try {
          const claims = deps.tokens.verifyRefresh(refreshToken);
          if (claims.sub === user.sub) {
            revoked = await revokeSessionByRefresh(deps.db, user.sub, claims.sid, hashRefreshToken(refreshToken));
            if (revoked) deps.revoked.add(claims.sid);
          }
        } catch {
          // An unusable refresh token still logs out the session the access token belongs to.
        }
        if (!revoked && (await revokeSession(deps.db, user.sub, user.sid, 'logout'))) deps.revoked.add(user.sid);
        return { status: 200, body: { success: true } };
      },
    },
    {
      method: 'get',
      path: '/auth/sessions',
      tag: 'auth',
      summary: 'List your live sessions',
      auth: true,
      responses: { 200: { description: 'Sessions, newest first', schema: { type: 'array', items: sessionSchema } } },
      errors: ['unauthorized'],
      async handle(_ctx, input) {
        const user = mustUser(input);
        const sessions = await listSessions(deps.db, user.sub);
        return { status: 200, body: sessions.map((s) => ({ ...s, current: s.id === user.sid })) };
      },
    },
    {
      method: 'del',
      path: '/auth/sessions/:id',
      tag: 'auth',
      summary: 'Revoke one of your sessions (its sockets are closed, its tokens stop working)',
      auth: true,
      responses: { 200: { description: 'Revoked', schema: successSchema } },
      errors: ['unauthorized', 'invalid_id', 'session_not_found'],
      async handle(ctx, input) {
        const user = mustUser(input);
        const sid = uuidParam(ctx);
        if (!(await revokeSession(deps.db, user.sub, sid, 'revoked_by_user'))) throw new AppError('session_not_found');
        deps.revoked.add(sid);
        return { status: 200, body: { success: true } };
      },
    },
  ];
}
