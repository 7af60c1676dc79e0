import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSigner } from 'fast-jwt';
import pg from 'pg';
import { createRoom, joinRoom, registerUser, request, type RegisteredUser, type Room } from '../src/testing/http.js';
import { startTestServer, TEST_JWT_ACCESS_SECRET, type TestServer } from '../src/testing/server.js';
import { connectWs, upgradeStatus, type TestSocket } from '../src/testing/ws-client.js';

let server: TestServer;
let alice: RegisteredUser;
let bob: RegisteredUser;
let room: Room;
const open: TestSocket[] = [];

async function connect(user: RegisteredUser, opts: Parameters<typeof connectWs>[2] = {}): Promise<TestSocket> {
  const s = await connectWs(server.wsUrl, user.accessToken, opts);
  open.push(s);
  return s;
}

async function joined(user: RegisteredUser, roomId = room.id, opts: Parameters<typeof connectWs>[2] = {}): Promise<TestSocket> {
  const s = await connect(user, opts);
  s.send('join_room', { room_id: roomId });
  await s.next((f) => f.event === 'joined_room' && f.data.room_id === roomId);
  return s;
}

/** Sends a frame and waits for the error it must cause (only frames after the send count). */
async function expectError(s: TestSocket, send: () => void, code: string): Promise<{ data: { code: string; ref?: string; message: string } }> {
  const waiting = s.nextNew((f) => f.event === 'error' && f.data.code === code);
  send();
  return waiting;
}

before(async () => {
  server = await startTestServer({
    typingTtlMs: 400,
    typingThrottleMs: 0,
    wsSendRatePerSec: 20,
    wsSendBurst: 40,
    wsFloodStrikes: 30,
    maxMessageBytes: 4096,
    maxFrameBytes: 8192,
  });
  alice = await registerUser(server.url, 'alice');
  bob = await registerUser(server.url, 'bob');
  room = await createRoom(server.url, alice.accessToken);
  await joinRoom(server.url, bob.accessToken, room.id);
});

after(async () => {
  for (const s of open) s.ws.terminate();
  await server.stop();
});

describe('upgrade authentication', () => {
  test('a missing, forged, expired or alg:none token is refused with 401 before any socket exists', async () => {
    assert.equal(await upgradeStatus(server.wsUrl, ''), 401);
    assert.equal(await upgradeStatus(server.wsUrl, '?token=garbage'), 401);
    const forged = createSigner({ key: 'not-the-secret-not-the-secret-xx', algorithm: 'HS256' })({
      sub: alice.user.id, username: 'x', sid: alice.user.id, typ: 'access',
    });
    assert.equal(await upgradeStatus(server.wsUrl, `?token=${forged}`), 401);
    const expired = createSigner({ key: TEST_JWT_ACCESS_SECRET, algorithm: 'HS256' })({
      sub: alice.user.id, username: 'x', sid: alice.user.id, typ: 'access', exp: Math.floor(Date.now() / 1000) - 10,
    });
    assert.equal(await upgradeStatus(server.wsUrl, `?token=${expired}`), 401);
    const none = createSigner({ algorithm: 'none' })({ sub: alice.user.id, username: 'x', sid: alice.user.id, typ: 'access' });
    assert.equal(await upgradeStatus(server.wsUrl, `?token=${none}`), 401);
  });

  test('a valid token works as ?token= and as Authorization: Bearer', async () => {
    assert.equal(await upgradeStatus(server.wsUrl, `?token=${alice.accessToken}`), 101);
    assert.equal(await upgradeStatus(server.wsUrl, '', { authorization: `Bearer ${alice.accessToken}` }), 101);
  });
});

describe('rooms and messages', () => {
  test('send_message is acked after commit and delivered to every socket in the room', async () => {
    const a = await joined(alice);
    const b = await joined(bob);
    a.send('send_message', { room_id: room.id, content: 'hello', client_msg_id: 'm-1' });
    const ack = await a.next((f) => f.event === 'message_ack' && f.data.client_msg_id === 'm-1');
    assert.equal(typeof ack.data.seq, 'number');
    assert.equal(typeof ack.data.id, 'number');
    const [m] = await b.waitForMessages(room.id, 1);
    assert.deepEqual(
      { seq: m.seq, id: m.id, content: m.content, user_id: m.user_id, username: m.username, client_msg_id: m.client_msg_id },
      { seq: ack.data.seq, id: ack.data.id, content: 'hello', user_id: alice.user.id, username: alice.user.username, client_msg_id: 'm-1' },
    );
    assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('the same client_msg_id twice stores one message and acks the same seq', async () => {
    const a = await joined(alice);
    a.send('send_message', { room_id: room.id, content: 'once', client_msg_id: 'dup-1' });
    const first = await a.next((f) => f.event === 'message_ack' && f.data.client_msg_id === 'dup-1');
    a.send('send_message', { room_id: room.id, content: 'once', client_msg_id: 'dup-1' });
    const second = await a.next((f) => f.event === 'message_ack' && f.data.client_msg_id === 'dup-1' && f !== first);
    assert.equal(second.data.seq, first.data.seq);
    assert.equal(second.data.id, first.data.id);
    const db = new pg.Client({ connectionString: server.databaseUrl });
    await db.connect();
    const { rows } = await db.query('SELECT count(*)::int AS n FROM messages WHERE client_msg_id = $1', ['dup-1']);
    await db.end();
    assert.equal(rows[0].n, 1);
  });

  test('msgpack and JSON clients in one room see the same messages', async () => {
    const j = await joined(bob);
    const m = await joined(bob, room.id, { format: 'msgpack' });
    const sub = await joined(alice, room.id, { protocols: ['msgpack'] });
    assert.equal(sub.ws.protocol, 'msgpack');
    sub.send('send_message', { room_id: room.id, content: 'über 🎉', client_msg_id: 'mp-1' });
    await sub.next((f) => f.event === 'message_ack');
    const [fromJson] = await j.waitForMessages(room.id, 1);
    const [fromPack] = await m.waitForMessages(room.id, 1);
    assert.deepEqual(fromPack, fromJson);
    assert.equal(fromJson.content, 'über 🎉');
  });

  test('join_room with last_seen_seq gets history then live, no gap', async () => {
    const a = await joined(alice);
    for (let i = 0; i < 5; i++) a.send('send_message', { room_id: room.id, content: `h${i}`, client_msg_id: `h-${i}` });
    const acks = await Promise.all([0, 1, 2, 3, 4].map((i) => a.next((f) => f.event === 'message_ack' && f.data.client_msg_id === `h-${i}`)));
    const from = acks[0].data.seq - 1;
    const b = await connect(bob);
    b.send('join_room', { room_id: room.id, last_seen_seq: from });
    const j = await b.next((f) => f.event === 'joined_room');
    const h = await b.next((f) => f.event === 'history' && f.data.has_more === false);
    assert.equal(h.data.room_id, room.id);
    assert.ok(j.data.last_seq >= acks[4].data.seq);
    a.send('send_message', { room_id: room.id, content: 'live', client_msg_id: 'h-live' });
    const msgs = await b.waitForMessages(room.id, j.data.last_seq - from + 1);
    assert.deepEqual(
      msgs.map((m) => m.seq),
      Array.from({ length: msgs.length }, (_, i) => from + 1 + i),
    );
    assert.ok(b.frames.findIndex((f) => f.event === 'history') < b.frames.findIndex((f) => f.event.startsWith('new_message')));
  });

  test('a socket refused from a room never receives that room', async () => {
    const carol = await registerUser(server.url, 'carol');
    const c = await connect(carol);
    await expectError(c, () => c.send('join_room', { room_id: room.id }), 'not_a_member');
    const a = await joined(alice);
    a.send('send_message', { room_id: room.id, content: 'secret', client_msg_id: 'secret-1' });
    await a.next((f) => f.event === 'message_ack' && f.data.client_msg_id === 'secret-1');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(c.messages(room.id).length, 0);
    await expectError(c, () => c.send('send_message', { room_id: room.id, content: 'let me in' }), 'not_a_member');
  });
});

describe('bad input gets an error frame with a stable code, and the socket stays usable', () => {
  test('malformed frames, unknown events, wrong types, bad ids, unknown rooms', async () => {
    const s = await connect(alice);
    await expectError(s, () => s.sendRaw('{not json'), 'invalid_json');
    assert.equal((await expectError(s, () => s.send('launch_rockets', {}), 'unknown_event')).data.ref, 'launch_rockets');
    await expectError(s, () => s.sendRaw('[1,2,3]'), 'invalid_payload');
    assert.equal((await expectError(s, () => s.send('send_message', { room_id: room.id, content: 42 }), 'invalid_payload')).data.ref, 'send_message');
    assert.equal((await expectError(s, () => s.send('join_room', { room_id: 'not-a-uuid' }), 'invalid_id')).data.ref, 'join_room');
    assert.equal((await expectError(s, () => s.send('join_room', { room_id: room.id, last_seen_seq: -1 }), 'invalid_payload')).data.ref, 'join_room');
    await expectError(s, () => s.send('join_room', { room_id: '00000000-0000-7000-8000-000000000000' }), 'room_not_found');
    await expectError(s, () => s.send('typing_start', { room_id: room.id }), 'not_joined');
    await expectError(s, () => s.send('send_message', { room_id: room.id, content: 'x'.repeat(5000) }), 'message_too_long');
    assert.equal((await expectError(s, () => s.send('send_message', { room_id: room.id, content: 'nul \u0000 byte' }), 'invalid_payload')).data.ref, 'send_message');
    assert.equal((await expectError(s, () => s.send('send_message', { room_id: room.id, content: 'x', client_msg_id: 'y'.repeat(65) }), 'invalid_payload')).data.ref, 'send_message');
    // Still usable.
    s.send('send_message', { room_id: room.id, content: 'still here', client_msg_id: 'after-errors' });
    await s.next((f) => f.event === 'message_ack' && f.data.client_msg_id === 'after-errors');
  });

  test('a msgpack socket sending text, or garbage bytes, gets invalid_payload', async () => {
    const s = await connect(alice, { format: 'msgpack' });
    await expectError(s, () => s.sendRaw('{"event":"join_room"}'), 'invalid_payload');
    await expectError(s, () => s.sendRaw(Buffer.from([0xc1]), true), 'invalid_payload');
  });

  test('an oversized frame drops the connection and the server stays up', async () => {
    const s = await connect(alice);
    s.sendRaw('x'.repeat(9000));
    // uWS closes at once without a close frame: the client sees 1006 (the server logs 1009).
    assert.ok([1006, 1009].includes((await s.closed).code));
    assert.equal((await request(server.url, 'GET', '/health')).status, 200);
  });

  test('a flood gets rate_limited, then the socket is closed with 4429', async () => {
    const s = await joined(alice);
    await expectError(s, () => {
      for (let i = 0; i < 200; i++) s.send('send_message', { room_id: room.id, content: `flood ${i}` });
    }, 'rate_limited');
    assert.equal((await s.closed).code, 4429);
    const again = await joined(alice);
    again.send('send_message', { room_id: room.id, content: 'calm', client_msg_id: 'calm-1' });
    await again.next((f) => f.event === 'message_ack' && f.data.client_msg_id === 'calm-1');
  });
});

describe('typing, presence and membership', () => {
  test('typing is relayed to the room and expires without a stop', async () => {
    const a = await joined(alice);
    const b = await joined(bob);
    a.send('typing_start', { room_id: room.id });
    const on = await b.next((f) => f.event === 'typing' && f.data.user_id === alice.user.id && f.data.typing === true);
    assert.equal(on.data.username, alice.user.username);
    const off = await b.next((f) => f.event === 'typing' && f.data.user_id === alice.user.id && f.data.typing === false, 3000);
    assert.ok(off.at - on.at >= 300, `expired after ${off.at - on.at} ms`);
    a.send('typing_start', { room_id: room.id });
    await b.next((f) => f.event === 'typing' && f.data.typing === true && f.at > off.at);
    a.send('typing_stop', { room_id: room.id });
    const stop = await b.next((f) => f.event === 'typing' && f.data.typing === false && f.at > off.at);
    assert.ok(stop.at - off.at < 350);
  });

  test('presence: online with the first socket, offline after the last one closes', async () => {
    const dave = await registerUser(server.url, 'dave');
    await joinRoom(server.url, dave.accessToken, room.id);
    const watcher = await joined(alice);
    const d1 = await connect(dave);
    const d2 = await connect(dave);
    await watcher.next((f) => f.event === 'presence' && f.data.user_id === dave.user.id && f.data.status === 'online');
    const members = await request(server.url, 'GET', `/rooms/${room.id}/members`, { token: alice.accessToken });
    assert.equal(members.body.find((m: { user_id: string }) => m.user_id === dave.user.id).online, true);
    d1.close();
    await d1.closed;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(watcher.frames.filter((f) => f.event === 'presence' && f.data.user_id === dave.user.id && f.data.status === 'offline').length, 0);
    d2.close();
    await watcher.next((f) => f.event === 'presence' && f.data.user_id === dave.user.id && f.data.status === 'offline');
  });

  test('leaving over HTTP tells the room and unsubscribes the user everywhere', async () => {
    const erin = await registerUser(server.url, 'erin');
    await joinRoom(server.url, erin.accessToken, room.id);
    const a = await joined(alice);
    await a.next((f) => f.event === 'user_joined' && f.data.user_id === erin.user.id).catch(() => undefined);
    const e = await joined(erin);
    const left = await request(server.url, 'POST', `/rooms/${room.id}/leave`, { token: erin.accessToken });
    assert.equal(left.status, 200);
    await a.next((f) => f.event === 'user_left' && f.data.user_id === erin.user.id);
    await e.next((f) => f.event === 'user_left' && f.data.user_id === erin.user.id);
    a.send('send_message', { room_id: room.id, content: 'after erin left', client_msg_id: 'after-leave' });
    await a.next((f) => f.event === 'message_ack' && f.data.client_msg_id === 'after-leave');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(e.messages(room.id).some((m) => m.client_msg_id === 'after-leave'), false);
  });

  test('deleting a room tells its sockets (room_deleted) and stops delivery', async () => {
    const r = await createRoom(server.url, alice.accessToken);
    const a = await joined(alice, r.id);
    const del = await request(server.url, 'DELETE', `/rooms/${r.id}`, { token: alice.accessToken });
    assert.equal(del.status, 200);
    await a.next((f) => f.event === 'room_deleted' && f.data.room_id === r.id);
    await expectError(a, () => a.send('send_message', { room_id: r.id, content: 'into the void' }), 'room_not_found');
  });

  test('revoking a session closes its sockets with 4501 and refuses its token', async () => {
    const frank = await registerUser(server.url, 'frank');
    const s = await connect(frank);
    const sessions = await request(server.url, 'GET', '/auth/sessions', { token: frank.accessToken });
    const current = sessions.body.find((x: { current: boolean }) => x.current);
    const other = await registerUser(server.url, 'other');
    void other;
    const res = await request(server.url, 'DELETE', `/auth/sessions/${current.id}`, { token: frank.accessToken });
    assert.equal(res.status, 200);
    assert.equal((await s.closed).code, 4501);
    assert.equal(await upgradeStatus(server.wsUrl, `?token=${frank.accessToken}`), 401);
  });
});
