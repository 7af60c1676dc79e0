import Cursor from 'pg-cursor';
import type pg from 'pg';
import type { Queryable } from './pool.js';
import { BUS_CHANNEL } from './pool.js';

/** A message as stored, with its wire JSON (built by pgchat_message_json, identical everywhere). */
export interface StoredMessage {
  seq: number;
  body: string;
}

export interface PostInput {
  roomId: string;
  userId: string;
  username: string;
  content: string;
  clientMsgId: string | null;
}

export type PostStatus = 'ok' | 'duplicate' | 'room_not_found' | 'not_a_member';

export interface PostResult {
  status: PostStatus;
  id: number | null;
  seq: number | null;
  created_at: string | null;
}

/**
 * Stores a batch of messages in one statement (see pgchat_post_messages): per-room
 * contiguous seqs, idempotent on client_msg_id, one NOTIFY per room chunk. Results
 * come back in input order.
 */
export async function postMessages(db: Queryable, batch: PostInput[], notifyBudget: number): Promise<PostResult[]> {
  const n = batch.length;
  const rooms = new Array<string>(n);
  const users = new Array<string>(n);
  const names = new Array<string>(n);
  const contents = new Array<string>(n);
  const cmids = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    const m = batch[i];
    rooms[i] = m.roomId;
    users[i] = m.userId;
    names[i] = m.username;
    contents[i] = m.content;
    cmids[i] = m.clientMsgId;
  }
  const { rows } = await db.query<PostResult>(
    `SELECT status, id, seq, created_at FROM pgchat_post_messages($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6, $7)`,
    [rooms, users, names, contents, cmids, BUS_CHANNEL, notifyBudget],
  );
  return rows;
}

const MESSAGE_SELECT = `SELECT m.seq, pgchat_message_json(m, u.username) AS body
  FROM messages m JOIN users u ON u.id = m.user_id`;

/** Newest first, seq < before (compat paging of GET /rooms/:id/messages). */
export async function messagesBefore(db: Queryable, roomId: string, before: number | null, limit: number): Promise<StoredMessage[]> {
  const { rows } = await db.query<StoredMessage>(
    `${MESSAGE_SELECT} WHERE m.room_id = $1 AND ($2::bigint IS NULL OR m.seq < $2) ORDER BY m.seq DESC LIMIT $3`,
    [roomId, before, limit],
  );
  return rows;
}

/** Oldest first, from < seq <= to (to = null: no upper bound). */
export async function messagesAfter(
  db: Queryable,
  roomId: string,
  after: number,
  limit: number,
  to: number | null = null,
): Promise<StoredMessage[]> {
  const { rows } = await db.query<StoredMessage>(
    `${MESSAGE_SELECT} WHERE m.room_id = $1 AND m.seq > $2 AND ($3::bigint IS NULL OR m.seq <= $3)
     ORDER BY m.seq LIMIT $4`,
    [roomId, after, to, limit],
  );
  return rows;
}

/**
 * Streams messages after..to (oldest first) in pages through a server-side cursor,
 * so a large backlog is never held in memory at once. onPage returns false to stop
 * early (e.g. the socket is backed up); the connection is released either way.
 */
export async function streamMessages(
  client: pg.PoolClient,
  roomId: string,
  after: number,
  to: number,
  pageSize: number,
  onPage: (page: StoredMessage[]) => boolean | Promise<boolean>,
): Promise<void> {
  const cursor = client.query(
    new Cursor<StoredMessage>(`${MESSAGE_SELECT} WHERE m.room_id = $1 AND m.seq > $2 AND m.seq <= $3 ORDER BY m.seq`, [
      roomId,
      after,
      to,
    ]),
  );
  try {
    for (;;) {
      const page = await cursor.read(pageSize);
      if (page.length === 0) return;
      if (!(await onPage(page))) return;
      if (page.length < pageSize) return;
    }
  } finally {
    await cursor.close();
  }
}

/** Newest seq of each given room (for the bus's periodic gap audit). */
export async function lastSeqs(db: Queryable, roomIds: string[]): Promise<Map<string, number>> {
  const { rows } = await db.query<{ id: string; last_seq: number }>(
    'SELECT id, last_seq FROM rooms WHERE id = ANY ($1::uuid[])',
    [roomIds],
  );
  return new Map(rows.map((r) => [r.id, r.last_seq]));
}
