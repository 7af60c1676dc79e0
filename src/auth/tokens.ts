import { createHash, randomBytes } from 'node:crypto';
import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import { AppError } from '../errors.js';

export interface AccessClaims {
  sub: string;
  username: string;
  sid: string;
}

export interface RefreshClaims {
  sub: string;
  sid: string;
  gen: number;
}

export interface TokenService {
  signAccess(claims: AccessClaims): string;
  signRefresh(claims: RefreshClaims): string;
  verifyAccess(token: string): AccessClaims;
  verifyRefresh(token: string): RefreshClaims;
  accessTtlSec: number;
  refreshTtlSec: number;
}

/**
 * HS256 access and refresh tokens with separate secrets and a `typ` claim, so one
 * can never stand in for the other. Only HS256 is accepted: `alg: none` and
 * algorithm confusion are rejected by the verifier.
 */
export function createTokenService(opts: {
  accessSecret: string;
  refreshSecret: string;
  accessTtlSec: number;
  refreshTtlSec: number;
}): TokenService {
  const signAccess = createSigner({ key: opts.accessSecret, algorithm: 'HS256', expiresIn: opts.accessTtlSec * 1000 });
  const signRefresh = createSigner({ key: opts.refreshSecret, algorithm: 'HS256', expiresIn: opts.refreshTtlSec * 1000 });
  const verifyAccess = createVerifier({ key: opts.accessSecret, algorithms: ['HS256'], cache: 10_000 });
  const verifyRefresh = createVerifier({ key: opts.refreshSecret, algorithms: ['HS256'] });

  return {
    accessTtlSec: opts.accessTtlSec,
    refreshTtlSec: opts.refreshTtlSec,
    signAccess: (c) => signAccess({ sub: c.sub, username: c.username, sid: c.sid, typ: 'access' }),
    // jti makes every refresh token distinct even when issued within the same second.
    signRefresh: (c) => signRefresh({ sub: c.sub, sid: c.sid, gen: c.gen, typ: 'refresh', jti: randomBytes(9).toString('base64url') }),
    verifyAccess(token) {
      const p = verifyOrThrow(verifyAccess, token, 'unauthorized');
      if (p.typ !== 'access' || typeof p.sub !== 'string' || typeof p.username !== 'string' || typeof p.sid !== 'string') {
        throw new AppError('unauthorized');
      }
      return { sub: p.sub, username: p.username, sid: p.sid };
    },
    verifyRefresh(token) {
      const p = verifyOrThrow(verifyRefresh, token, 'invalid_refresh_token');
      if (p.typ !== 'refresh' || typeof p.sub !== 'string' || typeof p.sid !== 'string' || typeof p.gen !== 'number') {
        throw new AppError('invalid_refresh_token');
      }
      return { sub: p.sub, sid: p.sid, gen: p.gen };
    },
  };
}

function verifyOrThrow(
  verifier: (token: string) => Record<string, unknown>,
  token: string,
  code: 'unauthorized' | 'invalid_refresh_token',
): Record<string, unknown> {
  try {
    return verifier(token);
  } catch (err) {
    if (err instanceof TokenError && err.code === TokenError.codes.expired) throw new AppError('token_expired');
    throw new AppError(code);
  }
}

/** What the sessions table stores instead of the refresh token itself. */
export function hashRefreshToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
