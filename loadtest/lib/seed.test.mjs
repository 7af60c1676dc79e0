import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  DEFAULTS, backoffMs, buildFixture, createClient, deriveWsUrl, extractRoomsPage, findRoomByName,
  mapLimit, membersByRoom, parseArgs, parseRetryAfter, roomCreator, roomName, roomsForUser, seed, userSpec,
} from '../seed.mjs';

const SEED = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'seed.mjs');

// ------------------------------------------------------------------ pure helpers

test('parseArgs: flags over env over defaults', () => {
  const d = parseArgs([], {});
  assert.equal(d.users, 500);
  assert.equal(d.rooms, 10);
  assert.equal(d.url, 'http://localhost:3000');
  assert.equal(d.prefix, 'lt');
  assert.equal(d.out, DEFAULTS.out);
  const e = parseArgs([], { USERS: '20', ROOMS: '4', BASE_URL: 'http://h:1/', PREFIX: 'x1', CONCURRENCY: '3' });
  assert.deepEqual([e.users, e.rooms, e.url, e.prefix, e.concurrency], [20, 4, 'http://h:1', 'x1', 3]);
  const f = parseArgs(['--users', '7', '--rooms=2', '--url', 'https://remote', '--fresh'], { USERS: '20' });
  assert.deepEqual([f.users, f.rooms, f.url, f.fresh], [7, 2, 'https://remote', true]);
  assert.equal(parseArgs([], { FIXTURE: './other.json' }).out, resolve(dirname(SEED), 'other.json'));
  assert.throws(() => parseArgs(['--users', '0'], {}), /positive integer/);
  assert.throws(() => parseArgs(['--bogus'], {}), /unknown argument/);
  assert.throws(() => parseArgs(['--url', 'localhost:3000'], {}), /http/);
  assert.throws(() => parseArgs(['--prefix', 'a b'], {}), /prefix/);
  assert.throws(() => parseArgs(['--users'], {}), /needs a value/);
});

test('deterministic names', () => {
  assert.deepEqual(userSpec('lt', 7, 'pw', 500), {
    username: 'lt_user_0007', email: 'lt_user_0007@loadtest.example.com', password: 'pw',
  });
  assert.equal(userSpec('lt', 12345, 'pw', 20000).username, 'lt_user_12345');
  assert.equal(roomName('lt', 3, 10), 'lt-room-03');
  assert.equal(roomName('lt', 3, 1000), 'lt-room-003');
});

test('room assignment: round-robin, every user in at least one room, creators included', () => {
  assert.deepEqual(roomsForUser(5, 3), [2]);
  assert.deepEqual(roomsForUser(5, 3, 2), [2, 0]);
  assert.deepEqual(roomsForUser(0, 2, 5), [0, 1]);
  assert.equal(roomCreator(4, 3), 1);
  const m = membersByRoom(10, 3);
  assert.deepEqual(m, [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]);
  const seen = new Set(m.flat());
  assert.equal(seen.size, 10);
  // Fewer users than rooms: creators keep every room non-empty.
  assert.deepEqual(membersByRoom(2, 4), [[0], [1], [0], [1]]);
});

test('Retry-After and backoff', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter('0.5'), 500);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(parseRetryAfter('garbage'), null);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(backoffMs(0), 500);
  assert.equal(backoffMs(3), 4000);
  assert.equal(backoffMs(20), 30000);
});

test('extractRoomsPage follows whatever cursor the server offers', () => {
  const rooms = [{ id: 'a', name: 'x' }, { id: 'b', name: 'y' }];
  assert.deepEqual(extractRoomsPage(rooms, {}, 100), { rooms, nextCursor: null });
  assert.deepEqual(extractRoomsPage(rooms, {}, 2), { rooms, nextCursor: 'b' }, 'full page: keyset by last id');
  assert.equal(extractRoomsPage(rooms, { 'X-Next-Cursor': 'c9' }, 100).nextCursor, 'c9');
  assert.equal(extractRoomsPage(rooms, new Headers({ link: '</rooms?limit=2&cursor=zz%3D>; rel="next"' }), 2).nextCursor, 'zz=');
  assert.deepEqual(extractRoomsPage({ rooms, next_cursor: 'n1' }, {}, 100), { rooms, nextCursor: 'n1' });
  assert.equal(extractRoomsPage({ items: rooms, next_cursor: null }, {}, 2).nextCursor, null, 'explicit end wins');
});

test('mapLimit bounds concurrency and keeps order', async () => {
  let inFlight = 0;
  let peak = 0;
  const out = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (x) => {
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setTimeout(r, x));
    inFlight -= 1;
    return x * 10;
  });
  assert.deepEqual(out, [50, 10, 40, 20, 30, 0]);
  assert.equal(peak, 2);
  await assert.rejects(mapLimit([1, 2], 2, async (x) => { if (x === 2) throw new Error('boom'); }), /boom/);
});

test('buildFixture has the documented shape', () => {
  const f = buildFixture({
    baseUrl: 'http://h', wsUrl: deriveWsUrl('http://h'), prefix: 'lt', now: new Date(0),
    users: [{ username: 'u', email: 'e', password: 'p', user_id: 'id', accessToken: 'a', refreshToken: 'r', extra: 1 }],
    rooms: [{ id: 'r1', name: 'n', members: [0] }],
  });
  assert.deepEqual(f, {
    generatedAt: '1970-01-01T00:00:00.000Z', baseUrl: 'http://h', wsUrl: 'ws://h/ws', prefix: 'lt',
    users: [{ username: 'u', email: 'e', password: 'p', user_id: 'id', accessToken: 'a', refreshToken: 'r' }],
    rooms: [{ id: 'r1', name: 'n', members: [0] }],
  });
});

// ------------------------------------------------------------------ against a fake server

/** An in-memory stand-in for the HTTP API of PROTOCOL.md, as a fetch implementation. */
function fakeServer({ throttleFirst = 0, retryAfter = '1', pageLimitCap = 100, extraRooms = 0 } = {}) {
  const s = {
    users: new Map(), // email -> user
    rooms: [], // { id, name, members:Set }
    refresh: new Map(), // refreshToken -> email
    access: new Map(), // accessToken -> email
    calls: [],
    throttled: 0,
    seq: 0,
  };
  for (let i = 0; i < extraRooms; i++) s.rooms.push({ id: `aa-${String(i).padStart(4, '0')}`, name: `other-${i}`, members: new Set() });
  const json = (status, body, headers = {}) => new Response(body === undefined ? '' : JSON.stringify(body), {
    status, headers: { 'content-type': 'application/json', ...headers },
  });
  const err = (status, code) => json(status, { statusCode: status, error: 'x', message: code, code });
  function issue(email) {
    s.seq += 1;
    const t = { accessToken: `acc-${s.seq}`, refreshToken: `ref-${s.seq}` };
    s.access.set(t.accessToken, email);
    s.refresh.set(t.refreshToken, email);
    const u = s.users.get(email);
    return { user: { id: u.id, username: u.username, email, created_at: 'now' }, tokens: t };
  }
  async function fetchImpl(url, init) {
    const u = new URL(url);
    const method = init.method;
    const body = init.body ? JSON.parse(init.body) : undefined;
    const auth = init.headers.authorization ? s.access.get(init.headers.authorization.slice(7)) : null;
    s.calls.push(`${method} ${u.pathname}`);
    if (method === 'GET' && u.pathname === '/health') return json(200, { ok: true });
    if (method === 'POST' && u.pathname === '/auth/register') {
      if (s.throttled < throttleFirst) {
        s.throttled += 1;
        return json(429, { statusCode: 429, code: 'rate_limited' }, retryAfter ? { 'retry-after': retryAfter } : {});
      }
      for (const x of s.users.values()) if (x.username === body.username || x.email === body.email) return err(409, 'taken');
      s.users.set(body.email, { id: `uid-${s.users.size}`, username: body.username, password: body.password });
      return json(201, issue(body.email));
    }
    if (method === 'POST' && u.pathname === '/auth/login') {
      const x = s.users.get(body.email);
      if (!x || x.password !== body.password) return err(401, 'bad_credentials');
      return json(200, issue(body.email));
    }
    if (method === 'POST' && u.pathname === '/auth/refresh') {
      const email = s.refresh.get(body.refreshToken);
      if (!email) return err(401, 'invalid_token');
      s.refresh.delete(body.refreshToken); // rotation
      return json(200, issue(email));
    }
    if (!auth) return err(401, 'unauthorized');
    if (method === 'POST' && u.pathname === '/rooms') {
      if (s.rooms.some((r) => r.name === body.name)) return err(409, 'room_name_taken');
      const room = { id: `room-${s.rooms.length}`, name: body.name, members: new Set([auth]) };
      s.rooms.push(room);
      return json(201, { id: room.id, name: room.name, description: body.description, created_by: auth, created_at: 'now' });
    }
    if (method === 'GET' && u.pathname === '/rooms') {
      const limit = Math.min(Number(u.searchParams.get('limit') || 50), pageLimitCap);
      const cursor = u.searchParams.get('cursor');
      const sorted = [...s.rooms].sort((a, b) => (a.id < b.id ? -1 : 1));
      const from = cursor ? sorted.findIndex((r) => r.id > cursor) : 0;
      const page = from < 0 ? [] : sorted.slice(from, from + limit);
      return json(200, page.map((r) => ({ id: r.id, name: r.name })));
    }
    const join = /^\/rooms\/([^/]+)\/join$/.exec(u.pathname);
    if (method === 'POST' && join) {
      const room = s.rooms.find((r) => r.id === decodeURIComponent(join[1]));
      if (!room) return err(404, 'room_not_found');
      room.members.add(auth);
      return json(200, { success: true });
    }
    return err(404, 'not_found');
  }
  return { s, fetchImpl };
}

const quiet = { log: () => {}, sleep: async () => {} };

test('seed creates users and rooms, spreads memberships and returns the fixture', async () => {
  const { s, fetchImpl } = fakeServer();
  const cfg = parseArgs(['--users', '10', '--rooms', '3', '--url', 'http://fake:3000'], {});
  const { fixture, counts } = await seed(cfg, { fetchImpl, ...quiet });
  assert.equal(fixture.users.length, 10);
  assert.equal(fixture.rooms.length, 3);
  assert.equal(fixture.baseUrl, 'http://fake:3000');
  assert.equal(fixture.wsUrl, 'ws://fake:3000/ws');
  assert.equal(counts.registered, 10);
  assert.equal(counts.roomsCreated, 3);
  for (const u of fixture.users) {
    assert.match(u.username, /^lt_user_\d{4}$/);
    assert.ok(u.accessToken && u.refreshToken && u.user_id && u.email && u.password);
  }
  // The server-side membership equals the fixture's members.
  for (const r of fixture.rooms) {
    const server = s.rooms.find((x) => x.id === r.id);
    const emails = r.members.map((i) => fixture.users[i].email).sort();
    assert.deepEqual([...server.members].sort(), emails);
  }
  assert.deepEqual(fixture.rooms.map((r) => r.members), [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]);
  assert.equal(counts.joins, 7, 'creators are members already');
});

test('seed re-run: refreshes known users, logs in taken ones, finds taken rooms by paging', async () => {
  const { s, fetchImpl } = fakeServer({ extraRooms: 230, pageLimitCap: 100 });
  const cfg = parseArgs(['--users', '6', '--rooms', '2', '--url', 'http://fake:3000'], {});
  const first = await seed(cfg, { fetchImpl, ...quiet });
  // Second run with the previous fixture for half of the users only.
  const previous = { ...first.fixture, users: first.fixture.users.slice(0, 3) };
  const second = await seed(cfg, { fetchImpl, previous, ...quiet });
  assert.equal(second.counts.refreshed, 3);
  assert.equal(second.counts.loggedIn, 3);
  assert.equal(second.counts.registered, 0);
  assert.equal(second.counts.roomsFound, 2);
  assert.equal(second.counts.roomsCreated, 0);
  assert.deepEqual(second.fixture.rooms.map((r) => r.id), first.fixture.rooms.map((r) => r.id));
  assert.ok(s.calls.filter((c) => c === 'GET /rooms').length >= 3, 'paged through GET /rooms');
  // Rotated refresh tokens are stored, so a third run refreshes everyone.
  const third = await seed(cfg, { fetchImpl, previous: second.fixture, ...quiet });
  assert.equal(third.counts.refreshed, 6);
  // A fixture for another server is ignored.
  const other = await seed(cfg, { fetchImpl, previous: { ...second.fixture, baseUrl: 'http://else' }, ...quiet });
  assert.equal(other.counts.refreshed, 0);
});

test('seed honours 429 Retry-After, hints once, and keeps going', async () => {
  const { fetchImpl } = fakeServer({ throttleFirst: 3, retryAfter: '2' });
  const logs = [];
  const sleeps = [];
  const cfg = parseArgs(['--users', '4', '--rooms', '1', '--url', 'http://fake:3000', '--concurrency', '1'], {});
  const { fixture, counts } = await seed(cfg, {
    fetchImpl, log: (l) => logs.push(l), sleep: async (ms) => { sleeps.push(ms); },
  });
  assert.equal(fixture.users.length, 4);
  assert.deepEqual(sleeps, [2000, 2000, 2000]);
  assert.equal(counts.retries, 3);
  assert.equal(logs.filter((l) => l.includes('429 rate_limited')).length, 1);
  assert.ok(logs.some((l) => l.includes('Retry-After')));
  // Without Retry-After the client backs off exponentially.
  const { fetchImpl: f2 } = fakeServer({ throttleFirst: 2, retryAfter: '' });
  const sleeps2 = [];
  await seed(parseArgs(['--users', '1', '--rooms', '1', '--url', 'http://fake:3000'], {}), {
    fetchImpl: f2, log: () => {}, sleep: async (ms) => { sleeps2.push(ms); },
  });
  assert.deepEqual(sleeps2, [500, 1000]);
});

test('seed gives up after maxRetries of 429 and reports the status', async () => {
  const { fetchImpl } = fakeServer({ throttleFirst: 1000 });
  const client = createClient('http://fake:3000', { fetchImpl, ...quiet, maxRetries: 2 });
  const res = await client.request('POST', '/auth/register', { body: { username: 'a', email: 'a', password: 'p' } });
  assert.equal(res.status, 429);
});

test('seed explains a wrong password for an existing user', async () => {
  const { fetchImpl } = fakeServer();
  await seed(parseArgs(['--users', '1', '--rooms', '1', '--url', 'http://fake:3000'], {}), { fetchImpl, ...quiet });
  await assert.rejects(
    seed(parseArgs(['--users', '1', '--rooms', '1', '--url', 'http://fake:3000', '--password', 'other-pw'], {}), { fetchImpl, ...quiet }),
    /password does not match/,
  );
});

test('findRoomByName stops when the server ignores the cursor', async () => {
  let calls = 0;
  const client = {
    request: async () => { calls += 1; return { status: 200, body: [{ id: 'a', name: 'x' }, { id: 'b', name: 'y' }], headers: {} }; },
  };
  assert.equal(await findRoomByName(client, 't', 'missing', { limit: 2 }), null);
  assert.equal(calls, 2);
});

// ------------------------------------------------------------------ CLI

test('the CLI only runs when executed directly', () => {
  const help = spawnSync(process.execPath, [SEED, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: node loadtest\/seed\.mjs/);
  const down = spawnSync(process.execPath, [SEED, '--url', 'http://127.0.0.1:9', '--users', '1'], { encoding: 'utf8' });
  assert.equal(down.status, 1);
  assert.match(down.stderr, /is the server running/);
});
