// Many senders, one room, all at once over HTTP keep-alive connections: the room's seqs
// must come out exactly 1..N (no gap, no duplicate), rooms.last_seq = N, and every
// sender's messages in the order it sent them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { queryRows } from '../src/testing/db.js';
import { createRoom, joinRoom, registerUser, request, type RegisteredUser } from '../src/testing/http.js';
import { startTestServer, type TestServer } from '../src/testing/server.js';

const CLIENTS = 20;
const PER_CLIENT = 50;
const TOTAL = CLIENTS * PER_CLIENT;

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(async () => {
  await s?.stop();
});

/** Registers the senders and puts them all in one new room. */
async function setup(baseUrl: string): Promise<{ users: RegisteredUser[]; roomId: string }> {
  const users = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => registerUser(baseUrl, `c${i}`)));
  const room = await createRoom(baseUrl, users[0].accessToken);
  await Promise.all(users.slice(1).map((u) => joinRoom(baseUrl, u.accessToken, room.id)));
  return { users, roomId: room.id };
}

/**
 * Every client sends its messages one after another (each waits for its answer,
 * as a chat client does), all clients at the same time. Returns each client's seqs.
 */
function sendAll(users: RegisteredUser[], roomId: string, baseUrlOf: (client: number) => string): Promise<number[][]> {
  return Promise.all(
    users.map(async (u, c) => {
      const acked: number[] = [];
      for (let k = 0; k < PER_CLIENT; k++) {
        const res = await request(baseUrlOf(c), 'POST', `/rooms/${roomId}/messages`, { token: u.accessToken, body: { content: `c${c}-m${k}` } });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        acked.push(res.body.seq);
      }
      return acked;
    }),
  );
}

async function check(databaseUrl: string, baseUrl: string, users: RegisteredUser[], roomId: string, acked: number[][]): Promise<void> {
  // The answers: each client's seqs increase, and together they are 1..TOTAL.
  for (const seqs of acked) {
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `a client's seqs went backwards: ${seqs}`);
  }
  const all = acked.flat().sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: TOTAL }, (_, i) => i + 1));

  // The table: exactly 1..TOTAL, one row each, the counter at TOTAL.
  const rows = await queryRows<{ seq: number; user_id: string; content: string }>(
    databaseUrl,
    'SELECT seq::int AS seq, user_id, content FROM messages WHERE room_id = $1 ORDER BY seq',
    [roomId],
  );
  assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: TOTAL }, (_, i) => i + 1));
  const [room] = await queryRows(databaseUrl, 'SELECT last_seq::int AS last_seq FROM rooms WHERE id = $1', [roomId]);
  assert.equal(room.last_seq, TOTAL);

  // Each sender's messages, in seq order, are in its send order, and each was stored by its sender.
  const byUser = new Map(users.map((u, c) => [u.user.id, { c, contents: [] as string[] }]));
  for (const r of rows) byUser.get(r.user_id)!.contents.push(r.content);
  for (const { c, contents } of byUser.values()) {
    assert.deepEqual(contents, Array.from({ length: PER_CLIENT }, (_, k) => `c${c}-m${k}`));
  }

  // And history over HTTP tells the same story, page by page.
  const seen: number[] = [];
  let after = 0;
  for (;;) {
    const page = await request(baseUrl, 'GET', `/rooms/${roomId}/messages?after_seq=${after}&limit=100`, { token: users[0].accessToken });
    assert.equal(page.status, 200);
    seen.push(...page.body.messages.map((m: { seq: number }) => m.seq));
    if (page.body.next_cursor === null) break;
    after = page.body.next_cursor;
  }
  assert.deepEqual(seen, Array.from({ length: TOTAL }, (_, i) => i + 1));
}

test(`${CLIENTS} clients × ${PER_CLIENT} messages into one room at once: seqs exactly 1..${TOTAL}`, async () => {
  const { users, roomId } = await setup(s.url);
  const acked = await sendAll(users, roomId, () => s.url);
  await check(s.databaseUrl, s.url, users, roomId, acked);
});

test('the same across two servers on one database (as two workers or hosts)', async () => {
  const second = await startTestServer({}, { databaseUrl: s.databaseUrl });
  try {
    const { users, roomId } = await setup(s.url);
    const acked = await sendAll(users, roomId, (c) => (c % 2 ? second.url : s.url));
    await check(s.databaseUrl, second.url, users, roomId, acked);
  } finally {
    await second.stop();
  }
});
