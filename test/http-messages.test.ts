// GET and POST /rooms/:id/messages: message shape, both paging directions, idempotent sends,
// and that a rejected message leaves no row and no gap in the room's seqs.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { queryRows } from '../src/testing/db.js';
import { assertError, createRoom, joinRoom, registerUser, request, type RegisteredUser } from '../src/testing/http.js';
import { startTestServer, type TestServer } from '../src/testing/server.js';

const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let s: TestServer;
let alice: RegisteredUser;
let bob: RegisteredUser;
let stranger: RegisteredUser;
before(async () => {
  s = await startTestServer();
  [alice, bob, stranger] = await Promise.all([registerUser(s.url, 'alice'), registerUser(s.url, 'bob'), registerUser(s.url, 'str')]);
});
after(async () => {
  await s?.stop();
});

async function sharedRoom(): Promise<string> {
  const room = await createRoom(s.url, alice.accessToken);
  await joinRoom(s.url, bob.accessToken, room.id);
  return room.id;
}

const post = (roomId: string, token: string, body: unknown) => request(s.url, 'POST', `/rooms/${roomId}/messages`, { token, body });
const page = (roomId: string, query: string, token = alice.accessToken) =>
  request(s.url, 'GET', `/rooms/${roomId}/messages${query ? `?${query}` : ''}`, { token });

/** The room's counter and rows, to check that a rejected request changed nothing. */
const roomState = async (roomId: string) =>
  (
    await queryRows(
      s.databaseUrl,
      `SELECT r.last_seq::int AS last_seq, (SELECT count(*) FROM messages m WHERE m.room_id = r.id)::int AS rows
       FROM rooms r WHERE r.id = $1`,
      [roomId],
    )
  )[0];

async function postMany(roomId: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    const res = await post(roomId, i % 2 ? alice.accessToken : bob.accessToken, { content: `m${i}` });
    assert.equal(res.status, 201);
    assert.equal(res.body.seq, i);
  }
}

const seqs = (res: { body: any }) => res.body.messages.map((m: any) => m.seq);

describe('POST /rooms/:id/messages', () => {
  test('201 with the message object; the same object comes back from GET', async () => {
    const roomId = await sharedRoom();
    const content = 'héllo "wörld" </script>\n\t\\ 😀 \u2028';
    const res = await post(roomId, bob.accessToken, { content });
    assert.equal(res.status, 201);
    const m = res.body;
    assert.ok(Number.isInteger(m.id) && m.id > 0);
    assert.equal(m.seq, 1);
    assert.equal(m.room_id, roomId);
    assert.equal(m.user_id, bob.user.id);
    assert.equal(m.username, bob.user.username);
    assert.equal(m.content, content);
    assert.match(m.created_at, ISO_RE);
    assert.equal('client_msg_id' in m, false);
    const withCmid = await post(roomId, alice.accessToken, { content: 'second', client_msg_id: 'c-1' });
    assert.equal(withCmid.status, 201);
    assert.equal(withCmid.body.seq, 2);
    assert.equal(withCmid.body.client_msg_id, 'c-1');

    const got = await page(roomId, '');
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, { messages: [withCmid.body, m], next_cursor: null });
    assert.deepEqual(await roomState(roomId), { last_seq: 2, rows: 2 });
  });

  test('idempotent on client_msg_id: a repeat answers 200 with the stored message, one row', async () => {
    const roomId = await sharedRoom();
    const first = await post(roomId, alice.accessToken, { content: 'once', client_msg_id: 'retry-me' });
    assert.equal(first.status, 201);
    const repeat = await post(roomId, alice.accessToken, { content: 'once (resent)', client_msg_id: 'retry-me' });
    assert.equal(repeat.status, 200);
    assert.deepEqual(repeat.body, first.body);
    assert.deepEqual(await roomState(roomId), { last_seq: 1, rows: 1 });

    // Scoped per sender and per room: the same id from another user or in another room is a new message.
    const other = await post(roomId, bob.accessToken, { content: 'mine', client_msg_id: 'retry-me' });
    assert.equal(other.status, 201);
    assert.equal(other.body.seq, 2);
    const otherRoom = await sharedRoom();
    assert.equal((await post(otherRoom, alice.accessToken, { content: 'there', client_msg_id: 'retry-me' })).status, 201);
    assert.deepEqual(await roomState(roomId), { last_seq: 2, rows: 2 });
  });

  test('concurrent repeats of one client_msg_id store one message, all answers carry its seq', async () => {
    const roomId = await sharedRoom();
    await post(roomId, bob.accessToken, { content: 'before' });
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => post(roomId, alice.accessToken, { content: `try ${i}`, client_msg_id: 'burst' })),
    );
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
    const created = answers.find((a) => a.status === 201)!.body;
    for (const a of answers) assert.deepEqual(a.body, created);
    assert.equal(created.seq, 2);
    assert.deepEqual(await roomState(roomId), { last_seq: 2, rows: 2 });
  });

  test('403 not_a_member, 404 room_not_found, 400 invalid_id; nothing is written', async () => {
    const roomId = await sharedRoom();
    await post(roomId, alice.accessToken, { content: 'x' });
    assertError(await post(roomId, stranger.accessToken, { content: 'let me in' }), 403, 'not_a_member');
    assertError(await post(randomUUID(), alice.accessToken, { content: 'nowhere' }), 404, 'room_not_found');
    for (const id of ['abc', `${roomId}0`, roomId.replace(/-/g, ''), '%E0%A4%A']) {
      assertError(await post(id, alice.accessToken, { content: 'bad id' }), 400, 'invalid_id');
    }
    assertError(await request(s.url, 'POST', `/rooms/${roomId}/messages`, { body: { content: 'anon' } }), 401, 'unauthorized');
    assert.deepEqual(await roomState(roomId), { last_seq: 1, rows: 1 });
  });

  test('bad content is 400 (NUL characters included) and leaves last_seq unchanged', async () => {
    const roomId = await sharedRoom();
    await post(roomId, alice.accessToken, { content: 'x' });
    assertError(await request(s.url, 'POST', `/rooms/${roomId}/messages`, { token: alice.accessToken, rawBody: '{"content": "x"' }), 400, 'invalid_json');
    const bad: unknown[] = [
      {},
      [],
      null,
      'text',
      { content: '' },
      { content: 42 },
      { content: null },
      { content: ['x'] },
      { text: 'wrong field' },
      { content: 'ok', client_msg_id: '' },
      { content: 'ok', client_msg_id: 'c'.repeat(65) },
      { content: 'ok', client_msg_id: 7 },
      { content: 'nul \u0000 inside' },
      { content: '\u0000' },
    ];
    for (const body of bad) {
      const res = await request(s.url, 'POST', `/rooms/${roomId}/messages`, { token: alice.accessToken, rawBody: JSON.stringify(body) });
      assertError(res, 400, 'invalid_payload');
    }
    assert.deepEqual(await roomState(roomId), { last_seq: 1, rows: 1 });
    // And the room still counts on from where it was.
    assert.equal((await post(roomId, bob.accessToken, { content: 'next' })).body.seq, 2);
  });

  test('a bad message never fails other senders\' messages sent at the same time (group commit)', async () => {
    const roomId = await sharedRoom();
    const good = Array.from({ length: 20 }, (_, i) => post(roomId, i % 2 ? alice.accessToken : bob.accessToken, { content: `good ${i}` }));
    const bad = [
      post(roomId, alice.accessToken, { content: 'x', client_msg_id: 'nul\u0000id' }),
      post(roomId, bob.accessToken, { content: 'nul\u0000content' }),
    ];
    const [goodRes, badRes] = await Promise.all([Promise.all(good), Promise.all(bad)]);
    for (const res of goodRes) assert.equal(res.status, 201, JSON.stringify(res.body));
    for (const res of badRes) assertError(res, 400, 'invalid_payload');
    assert.deepEqual(goodRes.map((r) => r.body.seq).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.deepEqual(await roomState(roomId), { last_seq: 20, rows: 20 });
  });

  test('413 for a body over MAX_BODY_BYTES: the limit on the HTTP body comes first', async () => {
    const roomId = await sharedRoom();
    const res = await post(roomId, alice.accessToken, { content: 'x'.repeat(s.config.maxBodyBytes) });
    assertError(res, 413, 'payload_too_large');
    assert.deepEqual(await roomState(roomId), { last_seq: 0, rows: 0 });
  });
});

describe('message_too_long', () => {
  let small: TestServer;
  before(async () => {
    small = await startTestServer({ maxMessageBytes: 100 });
  });
  after(async () => {
    await small?.stop();
  });

  test('content is measured in UTF-8 bytes; over the limit is 400 message_too_long, no row', async () => {
    const u = await registerUser(small.url, 'long');
    const room = await createRoom(small.url, u.accessToken);
    const send = (content: string) => request(small.url, 'POST', `/rooms/${room.id}/messages`, { token: u.accessToken, body: { content } });
    assert.equal((await send('a'.repeat(100))).status, 201);
    assert.equal((await send('€'.repeat(33))).status, 201); // 99 bytes
    assertError(await send('a'.repeat(101)), 400, 'message_too_long');
    assertError(await send('€'.repeat(34)), 400, 'message_too_long'); // 34 characters, 102 bytes
    assertError(await send('😀'.repeat(26)), 400, 'message_too_long'); // 52 UTF-16 units, 104 bytes
    const rows = await queryRows(small.databaseUrl, 'SELECT last_seq::int AS n FROM rooms WHERE id = $1', [room.id]);
    assert.equal(rows[0].n, 2);
  });

  test('the default limit is 65536 bytes', async () => {
    const u = await registerUser(s.url, 'long');
    const room = await createRoom(s.url, u.accessToken);
    const send = (content: string) => request(s.url, 'POST', `/rooms/${room.id}/messages`, { token: u.accessToken, body: { content } });
    assert.equal(s.config.maxMessageBytes, 65536);
    assert.equal((await send('a'.repeat(65536))).status, 201);
    assertError(await send('a'.repeat(65537)), 400, 'message_too_long');
    assert.deepEqual(await roomState(room.id), { last_seq: 1, rows: 1 });
  });
});

describe('GET /rooms/:id/messages', () => {
  let roomId: string;
  before(async () => {
    roomId = await sharedRoom();
    await postMany(roomId, 7);
  });

  test('default: newest first, seq < cursor, next_cursor null at the end', async () => {
    const all = await page(roomId, '');
    assert.deepEqual(seqs(all), [7, 6, 5, 4, 3, 2, 1]);
    assert.equal(all.body.next_cursor, null);
    for (const m of all.body.messages) {
      assert.equal(m.content, `m${m.seq}`);
      assert.equal(m.user_id, m.seq % 2 ? alice.user.id : bob.user.id);
      assert.equal(m.username, m.seq % 2 ? alice.user.username : bob.user.username);
    }

    const p1 = await page(roomId, 'limit=3');
    assert.deepEqual([seqs(p1), p1.body.next_cursor], [[7, 6, 5], 5]);
    const p2 = await page(roomId, `limit=3&cursor=${p1.body.next_cursor}`);
    assert.deepEqual([seqs(p2), p2.body.next_cursor], [[4, 3, 2], 2]);
    const p3 = await page(roomId, `limit=3&cursor=${p2.body.next_cursor}`);
    assert.deepEqual([seqs(p3), p3.body.next_cursor], [[1], null]);

    // A page that ends exactly at seq 1 says so: no empty extra page.
    const exact = await page(roomId, 'limit=3&cursor=4');
    assert.deepEqual([seqs(exact), exact.body.next_cursor], [[3, 2, 1], null]);
    assert.deepEqual(await page(roomId, 'cursor=1').then((r) => r.body), { messages: [], next_cursor: null });
    assert.deepEqual(await page(roomId, 'cursor=0').then((r) => r.body), { messages: [], next_cursor: null });
    assert.deepEqual(seqs(await page(roomId, 'cursor=1000')), [7, 6, 5, 4, 3, 2, 1]);
  });

  test('after_seq: oldest first, seq > after_seq, next_cursor null at the end', async () => {
    const p1 = await page(roomId, 'after_seq=0&limit=3');
    assert.deepEqual([seqs(p1), p1.body.next_cursor], [[1, 2, 3], 3]);
    const p2 = await page(roomId, `after_seq=${p1.body.next_cursor}&limit=3`);
    assert.deepEqual([seqs(p2), p2.body.next_cursor], [[4, 5, 6], 6]);
    const p3 = await page(roomId, `after_seq=${p2.body.next_cursor}&limit=3`);
    assert.deepEqual([seqs(p3), p3.body.next_cursor], [[7], null]);
    const exact = await page(roomId, 'after_seq=4&limit=3');
    assert.deepEqual([seqs(exact), exact.body.next_cursor], [[5, 6, 7], null]);
    assert.deepEqual(await page(roomId, 'after_seq=7').then((r) => r.body), { messages: [], next_cursor: null });
    assert.deepEqual(await page(roomId, 'after_seq=1000').then((r) => r.body), { messages: [], next_cursor: null });
    assert.deepEqual(seqs(await page(roomId, 'after_seq=0')), [1, 2, 3, 4, 5, 6, 7]);
  });

  test('limit: default 50, 1..100', async () => {
    const big = await sharedRoom();
    await postMany(big, 101);
    const dflt = await page(big, '');
    assert.equal(dflt.body.messages.length, 50);
    assert.equal(dflt.body.next_cursor, 52);
    const max = await page(big, 'limit=100');
    assert.equal(max.body.messages.length, 100);
    assert.equal(max.body.next_cursor, 2);
    const one = await page(big, 'after_seq=100&limit=1');
    assert.deepEqual([seqs(one), one.body.next_cursor], [[101], null]);
    for (const q of ['limit=0', 'limit=101', 'limit=-1', 'limit=abc', 'limit=2.5', 'after_seq=0&limit=1000']) {
      assertError(await page(big, q), 400, 'invalid_payload');
    }
    for (const q of ['cursor=abc', 'cursor=-1', 'cursor=1.5', 'after_seq=x', 'after_seq=-3', 'cursor=99999999999999999999', 'cursor=9999999999999999']) {
      assertError(await page(big, q), 400, 'invalid_cursor');
    }
  });

  test('403 not_a_member, 404 room_not_found, 400 invalid_id, 401', async () => {
    assertError(await page(roomId, '', stranger.accessToken), 403, 'not_a_member');
    assertError(await page(randomUUID(), ''), 404, 'room_not_found');
    for (const id of ['abc', `${roomId}0`, '%E0%A4%A', 'ffffffff-ffff-ffff-ffff-fffffffffffg']) {
      assertError(await page(id, ''), 400, 'invalid_id');
    }
    assertError(await request(s.url, 'GET', `/rooms/${roomId}/messages`), 401, 'unauthorized');
  });
});
