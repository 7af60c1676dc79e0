// POST/GET /rooms, GET/PATCH/DELETE /rooms/:id, POST /rooms/:id/join|leave, GET /rooms/:id/members.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { queryRows } from '../src/testing/db.js';
import { assertError, createRoom, joinRoom, registerUser, request, uniqueName, type RegisteredUser } from '../src/testing/http.js';
import { startTestServer, type TestServer } from '../src/testing/server.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
/** Path ids that are not UUIDs, as a client might send them (some percent-encoded, one badly). */
const MALFORMED_IDS = ['abc', '123', 'null', `${randomUUID()}0`, randomUUID().replace(/-/g, ''), '%E0%A4%A', "1'%20OR%201=1--", 'g'.repeat(36)];

let s: TestServer;
let owner: RegisteredUser;
let member: RegisteredUser;
let stranger: RegisteredUser;
before(async () => {
  s = await startTestServer();
  [owner, member, stranger] = await Promise.all([registerUser(s.url, 'own'), registerUser(s.url, 'mem'), registerUser(s.url, 'str')]);
});
after(async () => {
  await s?.stop();
});

const one = async (sql: string, params: unknown[] = []) => (await queryRows(s.databaseUrl, sql, params))[0];
const counts = async () =>
  one('SELECT (SELECT count(*) FROM rooms)::int AS rooms, (SELECT count(*) FROM room_members)::int AS members');

describe('POST /rooms', () => {
  test('201 with the room; the creator is its owner and a member', async () => {
    const name = uniqueName('Lobby');
    const res = await request(s.url, 'POST', '/rooms', { token: owner.accessToken, body: { name: `  ${name}  `, description: 'chat here' } });
    assert.equal(res.status, 201);
    assert.match(res.body.id, UUID_RE);
    assert.equal(res.body.name, name);
    assert.equal(res.body.description, 'chat here');
    assert.equal(res.body.created_by, owner.user.id);
    assert.match(res.body.created_at, ISO_RE);
    const rows = await queryRows(s.databaseUrl, 'SELECT user_id, role FROM room_members WHERE room_id = $1', [res.body.id]);
    assert.deepEqual(rows, [{ user_id: owner.user.id, role: 'owner' }]);

    const noDescription = await request(s.url, 'POST', '/rooms', { token: owner.accessToken, body: { name: uniqueName('r') } });
    assert.equal(noDescription.status, 201);
    assert.equal(noDescription.body.description, null);
  });

  test('409 room_name_taken (case-insensitive, trimmed), and nothing is written', async () => {
    const room = await createRoom(s.url, owner.accessToken);
    const before = await counts();
    for (const name of [room.name, room.name.toUpperCase(), ` ${room.name} `]) {
      assertError(await request(s.url, 'POST', '/rooms', { token: member.accessToken, body: { name } }), 409, 'room_name_taken');
    }
    assert.deepEqual(await counts(), before);
  });

  test('bad input is 400 and leaves no room and no member row', async () => {
    const before = await counts();
    assertError(await request(s.url, 'POST', '/rooms', { token: owner.accessToken, rawBody: '{"name":' }), 400, 'invalid_json');
    const bad: unknown[] = [
      {},
      [],
      null,
      'room',
      { name: 42 },
      { name: null },
      { name: '' },
      { name: '   ' },
      { name: 'x'.repeat(101) },
      { name: uniqueName('r'), description: 7 },
      { name: uniqueName('r'), description: 'd'.repeat(2001) },
      { description: 'no name' },
      // PostgreSQL text cannot hold NUL: refused as bad input, never a 500.
      { name: `nul\u0000room${randomUUID()}` },
      { name: uniqueName('r'), description: 'nul\u0000here' },
    ];
    for (const body of bad) {
      assertError(await request(s.url, 'POST', '/rooms', { token: owner.accessToken, rawBody: JSON.stringify(body) }), 400, 'invalid_payload');
    }
    assert.deepEqual(await counts(), before);
  });

  test('401 without a token', async () => {
    assertError(await request(s.url, 'POST', '/rooms', { body: { name: uniqueName('r') } }), 401, 'unauthorized');
  });
});

describe('GET /rooms', () => {
  test('200, a plain array of rooms in creation order (compat)', async () => {
    const a = await createRoom(s.url, owner.accessToken);
    const b = await createRoom(s.url, stranger.accessToken);
    const res = await request(s.url, 'GET', '/rooms', { token: member.accessToken });
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(res.body));
    const ids = res.body.map((r: any) => r.id);
    assert.ok(ids.indexOf(a.id) >= 0 && ids.indexOf(a.id) < ids.indexOf(b.id));
    assert.deepEqual(res.body[ids.indexOf(a.id)], a);
    assert.equal(res.headers.get('x-next-cursor'), null);
  });

  test('?limit pages with X-Next-Cursor, exposed to browsers; no cursor after the last page', async () => {
    const p = await startTestServer();
    try {
      const u = await registerUser(p.url, 'pager');
      const made: string[] = [];
      for (let i = 0; i < 6; i++) made.push((await createRoom(p.url, u.accessToken, `page-room-${i}`)).id);
      const walk = async (limit: number) => {
        const pages: string[][] = [];
        let cursor = '';
        for (;;) {
          const res = await request(p.url, 'GET', `/rooms?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { token: u.accessToken });
          assert.equal(res.status, 200);
          assert.ok(res.body.length <= limit);
          pages.push(res.body.map((r: any) => r.id));
          const next = res.headers.get('x-next-cursor');
          if (next === null) return pages;
          assert.match(res.headers.get('access-control-expose-headers') ?? '', /X-Next-Cursor/i);
          assert.equal(next, res.body[res.body.length - 1].id);
          cursor = next;
        }
      };
      assert.deepEqual((await walk(3)).map((pg) => pg.length), [3, 3]);
      assert.deepEqual((await walk(4)).map((pg) => pg.length), [4, 2]);
      assert.deepEqual((await walk(1)).flat(), made);
      assert.deepEqual(await walk(100), [made]);
      const rest = await request(p.url, 'GET', `/rooms?limit=2&cursor=${made[4].toUpperCase()}`, { token: u.accessToken });
      assert.deepEqual(rest.body.map((r: any) => r.id), [made[5]]);
    } finally {
      await p.stop();
    }
  });

  test('400 for bad paging parameters', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=-1', 'limit=abc', 'limit=1.5', 'limit=99999999999999999999']) {
      assertError(await request(s.url, 'GET', `/rooms?${q}`, { token: member.accessToken }), 400, 'invalid_payload');
    }
    for (const q of ['cursor=abc', `cursor=${randomUUID()}x`, 'limit=2&cursor=1']) {
      assertError(await request(s.url, 'GET', `/rooms?${q}`, { token: member.accessToken }), 400, 'invalid_cursor');
    }
  });

  test('401 without a token', async () => {
    assertError(await request(s.url, 'GET', '/rooms'), 401, 'unauthorized');
  });
});

describe('GET /rooms/:id', () => {
  test('200 for any signed-in user, whatever the case of the id', async () => {
    const room = await createRoom(s.url, owner.accessToken);
    const res = await request(s.url, 'GET', `/rooms/${room.id}`, { token: stranger.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, room);
    assert.deepEqual((await request(s.url, 'GET', `/rooms/${room.id.toUpperCase()}`, { token: stranger.accessToken })).body, room);
  });

  test('404 room_not_found for an unknown id, 400 invalid_id for a malformed one, 401 without a token', async () => {
    assertError(await request(s.url, 'GET', `/rooms/${randomUUID()}`, { token: member.accessToken }), 404, 'room_not_found');
    for (const id of MALFORMED_IDS) {
      assertError(await request(s.url, 'GET', `/rooms/${id}`, { token: member.accessToken }), 400, 'invalid_id');
    }
    assertError(await request(s.url, 'GET', `/rooms/${randomUUID()}`), 401, 'unauthorized');
  });
});

describe('PATCH /rooms/:id', () => {
  test('the owner renames and re-describes; description null clears it', async () => {
    const room = await createRoom(s.url, owner.accessToken);
    const name = uniqueName('renamed');
    const res = await request(s.url, 'PATCH', `/rooms/${room.id}`, { token: owner.accessToken, body: { name, description: 'new' } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { ...room, name, description: 'new' });
    const cleared = await request(s.url, 'PATCH', `/rooms/${room.id}`, { token: owner.accessToken, body: { description: null } });
    assert.deepEqual(cleared.body, { ...room, name, description: null });
    // Renaming to its own name in another case is not a conflict with itself.
    const recased = await request(s.url, 'PATCH', `/rooms/${room.id}`, { token: owner.accessToken, body: { name: name.toUpperCase() } });
    assert.equal(recased.status, 200);
    assert.equal(recased.body.name, name.toUpperCase());
  });

  test('403 not_room_owner for members and strangers, 404, 400, 409; the room is unchanged', async () => {
    const room = await createRoom(s.url, owner.accessToken);
    await joinRoom(s.url, member.accessToken, room.id);
    const other = await createRoom(s.url, owner.accessToken);
    for (const u of [member, stranger]) {
      assertError(await request(s.url, 'PATCH', `/rooms/${room.id}`, { token: u.accessToken, body: { name: uniqueName('x') } }), 403, 'not_room_owner');
    }
    assertError(await request(s.url, 'PATCH', `/rooms/${randomUUID()}`, { token: owner.accessToken, body: { name: uniqueName('x') } }), 404, 'room_not_found');
    for (const id of MALFORMED_IDS) {
      assertError(await request(s.url, 'PATCH', `/rooms/${id}`, { token: owner.accessToken, body: { name: uniqueName('x') } }), 400, 'invalid_id');
    }
    assertError(await request(s.url, 'PATCH', `/rooms/${room.id}`, { token: owner.accessToken, body: { name: other.name.toUpperCase() } }), 409, 'room_name_taken');
    assertError(await request(s.url, 'PATCH', `/rooms/${room.id}`, { token: owner.accessToken, rawBody: '{"name"' }), 400, 'invalid_json');
    for (const body of [{}, { name: '' }, { name: '  ' }, { name: 5 }, { description: 5 }, [], null]) {
      assertError(await request(s.url, 'PATCH', `/rooms/${room.id}`, { token: owner.accessToken, rawBody: JSON.stringify(body) }), 400, 'invalid_payload');
    }
    assertError(await request(s.url, 'PATCH', `/rooms/${room.id}`, { body: { name: uniqueName('x') } }), 401, 'unauthorized');
    assert.deepEqual((await request(s.url, 'GET', `/rooms/${room.id}`, { token: owner.accessToken })).body, room);
  });
});

describe('DELETE /rooms/:id', () => {
  test('the owner deletes the room with its members and messages', async () => {
    const room = await createRoom(s.url, owner.accessToken);
    await joinRoom(s.url, member.accessToken, room.id);
    const posted = await request(s.url, 'POST', `/rooms/${room.id}/messages`, { token: member.accessToken, body: { content: 'hi' } });
    assert.equal(posted.status, 201);
    const res = await request(s.url, 'DELETE', `/rooms/${room.id}`, { token: owner.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { success: true });
    assertError(await request(s.url, 'GET', `/rooms/${room.id}`, { token: owner.accessToken }), 404, 'room_not_found');
    const left = await one(
      `SELECT (SELECT count(*) FROM rooms WHERE id = $1)::int AS rooms,
              (SELECT count(*) FROM room_members WHERE room_id = $1)::int AS members,
              (SELECT count(*) FROM messages WHERE room_id = $1)::int AS messages`,
      [room.id],
    );
    assert.deepEqual(left, { rooms: 0, members: 0, messages: 0 });
    assertError(await request(s.url, 'DELETE', `/rooms/${room.id}`, { token: owner.accessToken }), 404, 'room_not_found');
  });

  test('403 not_room_owner for members and strangers (the room stays), 404, 400, 401', async () => {
    const room = await createRoom(s.url, owner.accessToken);
    await joinRoom(s.url, member.accessToken, room.id);
    for (const u of [member, stranger]) {
      assertError(await request(s.url, 'DELETE', `/rooms/${room.id}`, { token: u.accessToken }), 403, 'not_room_owner');
    }
    assert.equal((await request(s.url, 'GET', `/rooms/${room.id}`, { token: owner.accessToken })).status, 200);
    assertError(await request(s.url, 'DELETE', `/rooms/${randomUUID()}`, { token: owner.accessToken }), 404, 'room_not_found');
    for (const id of MALFORMED_IDS) {
      assertError(await request(s.url, 'DELETE', `/rooms/${id}`, { token: owner.accessToken }), 400, 'invalid_id');
    }
    assertError(await request(s.url, 'DELETE', `/rooms/${room.id}`), 401, 'unauthorized');
  });
});

describe('POST /rooms/:id/join and /leave', () => {
  test('join is idempotent: 201 when joined now, 200 when already a member (also for the owner)', async () => {
    const room = await createRoom(s.url, owner.accessToken);
    const first = await request(s.url, 'POST', `/rooms/${room.id}/join`, { token: member.accessToken });
    assert.equal(first.status, 201);
    assert.deepEqual(first.body, { success: true, room_id: room.id, role: 'member', changed: true });
    const again = await request(s.url, 'POST', `/rooms/${room.id}/join`, { token: member.accessToken });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { success: true, room_id: room.id, role: 'member', changed: false });
    const byOwner = await request(s.url, 'POST', `/rooms/${room.id}/join`, { token: owner.accessToken });
    assert.equal(byOwner.status, 200);
    assert.equal(byOwner.body.role, 'owner');
    const rows = await queryRows(s.databaseUrl, 'SELECT user_id, role FROM room_members WHERE room_id = $1 ORDER BY role DESC', [room.id]);
    assert.deepEqual(rows, [
      { user_id: owner.user.id, role: 'owner' },
      { user_id: member.user.id, role: 'member' },
    ]);
  });

  test('leave is idempotent; the owner cannot leave (409 owner_cannot_leave)', async () => {
    const room = await createRoom(s.url, owner.accessToken);
    await joinRoom(s.url, member.accessToken, room.id);
    const left = await request(s.url, 'POST', `/rooms/${room.id}/leave`, { token: member.accessToken });
    assert.equal(left.status, 200);
    assert.deepEqual(left.body, { success: true, room_id: room.id, changed: true });
    const again = await request(s.url, 'POST', `/rooms/${room.id}/leave`, { token: member.accessToken });
    assert.equal(again.status, 200);
    assert.equal(again.body.changed, false);
    assertError(await request(s.url, 'POST', `/rooms/${room.id}/leave`, { token: owner.accessToken }), 409, 'owner_cannot_leave');
    const rows = await queryRows(s.databaseUrl, 'SELECT user_id, role FROM room_members WHERE room_id = $1', [room.id]);
    assert.deepEqual(rows, [{ user_id: owner.user.id, role: 'owner' }]);
    // A member who left can post no more, and can come back.
    assertError(await request(s.url, 'POST', `/rooms/${room.id}/messages`, { token: member.accessToken, body: { content: 'x' } }), 403, 'not_a_member');
    assert.equal((await request(s.url, 'POST', `/rooms/${room.id}/join`, { token: member.accessToken })).status, 201);
  });

  test('404 room_not_found (no row written), 400 invalid_id, 401', async () => {
    const unknown = randomUUID();
    for (const action of ['join', 'leave']) {
      assertError(await request(s.url, 'POST', `/rooms/${unknown}/${action}`, { token: member.accessToken }), 404, 'room_not_found');
      for (const id of MALFORMED_IDS) {
        assertError(await request(s.url, 'POST', `/rooms/${id}/${action}`, { token: member.accessToken }), 400, 'invalid_id');
      }
      assertError(await request(s.url, 'POST', `/rooms/${unknown}/${action}`), 401, 'unauthorized');
    }
    assert.equal((await one('SELECT count(*)::int AS n FROM room_members WHERE room_id = $1', [unknown])).n, 0);
  });
});

describe('GET /rooms/:id/members', () => {
  test('200, members with role, joined_at and an online flag', async () => {
    const room = await createRoom(s.url, owner.accessToken);
    await joinRoom(s.url, member.accessToken, room.id);
    const res = await request(s.url, 'GET', `/rooms/${room.id}/members`, { token: member.accessToken });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 2);
    const byId = new Map(res.body.map((m: any) => [m.user_id, m]));
    const o: any = byId.get(owner.user.id);
    const m: any = byId.get(member.user.id);
    assert.deepEqual({ username: o.username, role: o.role, online: o.online }, { username: owner.user.username, role: 'owner', online: false });
    assert.deepEqual({ username: m.username, role: m.role, online: m.online }, { username: member.user.username, role: 'member', online: false });
    assert.match(o.joined_at, ISO_RE);
  });

  test('403 not_a_member, 404, 400, 401', async () => {
    const room = await createRoom(s.url, owner.accessToken);
    assertError(await request(s.url, 'GET', `/rooms/${room.id}/members`, { token: stranger.accessToken }), 403, 'not_a_member');
    assertError(await request(s.url, 'GET', `/rooms/${randomUUID()}/members`, { token: stranger.accessToken }), 404, 'room_not_found');
    for (const id of MALFORMED_IDS) {
      assertError(await request(s.url, 'GET', `/rooms/${id}/members`, { token: stranger.accessToken }), 400, 'invalid_id');
    }
    assertError(await request(s.url, 'GET', `/rooms/${room.id}/members`), 401, 'unauthorized');
  });
});
