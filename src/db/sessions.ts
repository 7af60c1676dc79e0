import type { Db, Queryable } from './pool.js';
import { BUS_CHANNEL, inTransaction } from './pool.js';

export interface SessionRow {
  id: string;
  user_agent: string | null;
  ip: string | null;
  created_at: string;
  last_used_at: string;
  expires_at: string;
}

export async function insertSession(
  db: Queryable,
  s: { id: string; userId: string; refreshHash: Buffer; ttlSec: number; userAgent: string | null; ip: string | null },
): Promise<void> {
  await db.query(
    `INSERT INTO sessions (id, user_id, refresh_hash, expires_at, user_agent, ip)
     VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6)`,
    [s.id, s.userId, s.refreshHash, s.ttlSec, s.userAgent, s.ip],
  );
}

export type RotateOutcome = 'rotated' | 'not_found' | 'revoked' | 'expired' | 'reused';

/**
 * Swaps the session's current refresh-token hash for the next one. A token that
 * is valid (signed, unexpired) but not the current one was already rotated away:
 * someone replayed it, so the whole session is revoked.
 */
export function rotateRefresh(
  db: Db,
  r: { sessionId: string; userId: string; presentedHash: Buffer; nextHash: Buffer; nextGeneration: number; ttlSec: number },
): Promise<RotateOutcome> {
  return inTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ refresh_hash: Buffer; revoked: boolean; expired: boolean }>(
      `SELECT refresh_hash, revoked_at IS NOT NULL AS revoked, expires_at < now() AS expired
       FROM sessions WHERE id = $1 AND user_id = $2 FOR UPDATE`,
      [r.sessionId, r.userId],
    );
    const s = rows[0];
    if (!s) return 'not_found';
    if (s.revoked) return 'revoked';
    if (s.expired) return 'expired';
    if (!s.refresh_hash.equals(r.presentedHash)) {
      await tx.query(
        `UPDATE sessions SET revoked_at = now(), revoked_reason = 'refresh_token_reused' WHERE id = $1`,
        [r.sessionId],
      );
      await notifySessionRevoked(tx, r.sessionId);
      return 'reused';
    }
    await tx.query(
      `UPDATE sessions SET refresh_hash = $2, generation = $3, last_used_at = now(),
         expires_at = now() + make_interval(secs => $4) WHERE id = $1`,
      [r.sessionId, r.nextHash, r.nextGeneration, r.ttlSec],
    );
    return 'rotated';
  });
}

/** Revokes one of the user's sessions; false when there is no such live session. */
export async function revokeSession(db: Db, userId: string, sessionId: string, reason: string): Promise<boolean> {
  return inTransaction(db, async (tx) => {
    const { rowCount } = await tx.query(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = $3
       WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`,
      [sessionId, userId, reason],
    );
    if (rowCount) await notifySessionRevoked(tx, sessionId);
    return (rowCount ?? 0) > 0;
  });
}

/** Revokes the session a refresh token belongs to, if the token is its current one. */
export async function revokeSessionByRefresh(db: Db, userId: string, sessionId: string, hash: Buffer): Promise<boolean> {
  return inTransaction(db, async (tx) => {
    const { rowCount } = await tx.query(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout'
       WHERE id = $1 AND user_id = $2 AND refresh_hash = $3 AND revoked_at IS NULL`,
      [sessionId, userId, hash],
    );
    if (rowCount) await notifySessionRevoked(tx, sessionId);
    return (rowCount ?? 0) > 0;
  });
}

export async function listSessions(db: Queryable, userId: string): Promise<SessionRow[]> {
  const { rows } = await db.query<SessionRow>(
    `SELECT id, user_agent, ip, pgchat_iso(created_at) AS created_at, pgchat_iso(last_used_at) AS last_used_at,
            pgchat_iso(expires_at) AS expires_at
     FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
     ORDER BY created_at DESC`,
    [userId],
  );
  return rows;
}

/** Sessions revoked recently enough that access tokens issued for them may still be unexpired. */
export async function recentlyRevokedSessions(db: Queryable, withinSec: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM sessions WHERE revoked_at > now() - make_interval(secs => $1)`,
    [withinSec],
  );
  return rows.map((r) => r.id);
}

async function notifySessionRevoked(tx: Queryable, sessionId: string): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [BUS_CHANNEL, `s|${sessionId}`]);
}
