import { AppError, isUniqueViolation } from '../errors.js';
import type { Db, Queryable } from './pool.js';
import { BUS_CHANNEL, inTransaction } from './pool.js';

export interface Room {
  id: string;
  name: string;
  description: string | null;
  created_by: string;
  created_at: string;
}

export interface Member {
  user_id: string;
  username: string;
  role: 'owner' | 'member';
  joined_at: string;
  online: boolean;
}

const ROOM_COLUMNS = 'r.id, r.name, r.description, r.created_by, pgchat_iso(r.created_at) AS created_at';

export async function createRoom(
  db: Db,
  r: { id: string; name: string; description: string | null; createdBy: string },
): Promise<Room> {
  try {
    return await inTransaction(db, async (tx) => {
      const { rows } = await tx.query<Room>(
        `INSERT INTO rooms AS r (id, name, description, created_by) VALUES ($1, $2, $3, $4) RETURNING ${ROOM_COLUMNS}`,
        [r.id, r.name, r.description, r.createdBy],
      );
      await tx.query(`INSERT INTO room_members (room_id, user_id, role) VALUES ($1, $2, 'owner')`, [r.id, r.createdBy]);
      return rows[0];
    });
  } catch (err) {
    if (isUniqueViolation(err, 'rooms_name_key')) throw new AppError('room_name_taken');
    throw err;
  }
}

/** Rooms in creation order (UUIDv7 ids sort by time), keyset-paged by id. */
export async function listRooms(db: Queryable, p: { limit: number; after?: string }): Promise<Room[]> {
  const { rows } = await db.query<Room>(
    `SELECT ${ROOM_COLUMNS} FROM rooms r WHERE ($1::uuid IS NULL OR r.id > $1) ORDER BY r.id LIMIT $2`,
    [p.after ?? null, p.limit],
  );
  return rows;
}

export async function getRoom(db: Queryable, id: string): Promise<Room | undefined> {
  const { rows } = await db.query<Room>(`SELECT ${ROOM_COLUMNS} FROM rooms r WHERE r.id = $1`, [id]);
  return rows[0];
}

/** The room's newest seq and the user's role in it (null when not a member); undefined when no such room. */
export async function getRoomAccess(
  db: Queryable,
  roomId: string,
  userId: string,
): Promise<{ lastSeq: number; role: 'owner' | 'member' | null } | undefined> {
  const { rows } = await db.query<{ last_seq: number; role: 'owner' | 'member' | null }>(
    `SELECT r.last_seq, m.role FROM rooms r
     LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2
     WHERE r.id = $1`,
    [roomId, userId],
  );
  return rows[0] && { lastSeq: rows[0].last_seq, role: rows[0].role };
}

async function requireOwner(tx: Queryable, roomId: string, userId: string): Promise<void> {
  const { rows } = await tx.query<{ role: string | null }>(
    `SELECT m.role FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2
     WHERE r.id = $1 FOR UPDATE OF r`,
    [roomId, userId],
  );
  if (!rows[0]) throw new AppError('room_not_found');
  if (rows[0].role !== 'owner') throw new AppError('not_room_owner');
}

export async function updateRoom(
  db: Db,
  roomId: string,
  userId: string,
  patch: { name?: string; description?: string | null },
): Promise<Room> {
  try {
    return await inTransaction(db, async (tx) => {
      await requireOwner(tx, roomId, userId);
      const { rows } = await tx.query<Room>(
        `UPDATE rooms r SET name = coalesce($2, r.name),
                description = CASE WHEN $3 THEN $4 ELSE r.description END
         WHERE r.id = $1 RETURNING ${ROOM_COLUMNS}`,
        [roomId, patch.name ?? null, patch.description !== undefined, patch.description ?? null],
      );
      return rows[0];
    });
  } catch (err) {
    if (isUniqueViolation(err, 'rooms_name_key')) throw new AppError('room_name_taken');
    throw err;
  }
}

/** Deletes the room with its members and messages; live sockets in it are told through the bus. */
export async function deleteRoom(db: Db, roomId: string, userId: string): Promise<void> {
  await inTransaction(db, async (tx) => {
    await requireOwner(tx, roomId, userId);
    await tx.query('DELETE FROM rooms WHERE id = $1', [roomId]);
    await tx.query('SELECT pg_notify($1, $2)', [BUS_CHANNEL, `x|${roomId}`]);
  });
}

/** Adds the user to the room; `joined` is false when they already were a member. */
export async function joinRoom(
  db: Db,
  roomId: string,
  userId: string,
  username: string,
): Promise<{ joined: boolean; role: 'owner' | 'member' }> {
  return inTransaction(db, async (tx) => {
    const room = await tx.query<{ role: 'owner' | 'member' | null }>(
      `SELECT m.role FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2 WHERE r.id = $1`,
      [roomId, userId],
    );
    if (!room.rows[0]) throw new AppError('room_not_found');
    if (room.rows[0].role) return { joined: false, role: room.rows[0].role };
    const ins = await tx.query(
      `INSERT INTO room_members (room_id, user_id, role) VALUES ($1, $2, 'member') ON CONFLICT DO NOTHING`,
      [roomId, userId],
    );
    if (!ins.rowCount) return { joined: false, role: 'member' };
    await tx.query('SELECT pg_notify($1, $2)', [BUS_CHANNEL, `j|${roomId}|${userId}|${username}`]);
    return { joined: true, role: 'member' };
  });
}

/** Removes the user from the room; `left` is false when they were not a member. */
export async function leaveRoom(db: Db, roomId: string, userId: string, username: string): Promise<{ left: boolean }> {
  return inTransaction(db, async (tx) => {
    const room = await tx.query<{ role: string | null }>(
      `SELECT m.role FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2 WHERE r.id = $1`,
      [roomId, userId],
    );
    if (!room.rows[0]) throw new AppError('room_not_found');
    if (!room.rows[0].role) return { left: false };
    if (room.rows[0].role === 'owner') throw new AppError('owner_cannot_leave');
    const del = await tx.query('DELETE FROM room_members WHERE room_id = $1 AND user_id = $2', [roomId, userId]);
    if (!del.rowCount) return { left: false };
    await tx.query('SELECT pg_notify($1, $2)', [BUS_CHANNEL, `l|${roomId}|${userId}|${username}`]);
    return { left: true };
  });
}

export async function listMembers(db: Queryable, roomId: string): Promise<Member[]> {
  const { rows } = await db.query<Member>(
    `SELECT m.user_id, u.username, m.role, pgchat_iso(m.joined_at) AS joined_at,
            EXISTS (SELECT 1 FROM presence p WHERE p.user_id = m.user_id) AS online
     FROM room_members m JOIN users u ON u.id = m.user_id
     WHERE m.room_id = $1 ORDER BY m.joined_at, m.user_id`,
    [roomId],
  );
  return rows;
}
