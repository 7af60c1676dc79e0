#!/usr/bin/env node
// Seeds users and rooms for the k6 load test through the public HTTP API and writes
// loadtest/fixture.json (tokens, users, rooms and their members).
//
//   npm run loadtest:seed                      # 500 users, 10 rooms, http://localhost:3000
//   npm run loadtest:seed -- --users 50 --rooms 5 --url http://host:3000
//
// Node >= 18 (global fetch), no dependencies. Re-runnable: names are deterministic
// (PREFIX), a taken username falls back to login, a taken room name is looked up, and
// tokens from a previous fixture are renewed with /auth/refresh instead of a slow login.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

export const DEFAULTS = Object.freeze({
  users: 500,
  rooms: 10,
  roomsPerUser: 1,
  url: 'http://localhost:3000',
  out: resolve(HERE, 'fixture.json'),
  prefix: 'lt',
  password: 'loadtest-password-1',
  concurrency: 16,
  maxRetries: 8,
});

const USAGE = `Usage: node loadtest/seed.mjs [options]
  --users N         users to create (env USERS, default ${DEFAULTS.users})
  --rooms N         rooms to create (env ROOMS, default ${DEFAULTS.rooms})
  --rooms-per-user N  rooms each user joins (env ROOMS_PER_USER, default ${DEFAULTS.roomsPerUser})
  --url URL         server base URL (env BASE_URL, default ${DEFAULTS.url})
  --out PATH        fixture path (env FIXTURE_OUT, or FIXTURE relative to loadtest/;
                    default loadtest/fixture.json)
  --prefix P        name prefix for users and rooms (env PREFIX, default ${DEFAULTS.prefix})
  --password PW     password of every seeded user (env PASSWORD)
  --concurrency N   requests in flight (env CONCURRENCY, default ${DEFAULTS.concurrency})
  --fresh           ignore tokens of an existing fixture (always register/login)
  --help`;

// ------------------------------------------------------------------ pure helpers

function toPositiveInt(v, name) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

/** CLI flags win over env vars, env vars over defaults. */
export function parseArgs(argv, env = {}) {
  const cfg = {
    users: env.USERS !== undefined && env.USERS !== '' ? toPositiveInt(env.USERS, 'USERS') : DEFAULTS.users,
    rooms: env.ROOMS !== undefined && env.ROOMS !== '' ? toPositiveInt(env.ROOMS, 'ROOMS') : DEFAULTS.rooms,
    roomsPerUser: env.ROOMS_PER_USER ? toPositiveInt(env.ROOMS_PER_USER, 'ROOMS_PER_USER') : DEFAULTS.roomsPerUser,
    url: env.BASE_URL || DEFAULTS.url,
    // FIXTURE is what k6 reads, relative to loadtest/ like k6's open(); FIXTURE_OUT and
    // --out are plain paths relative to the current directory.
    out: env.FIXTURE_OUT ? resolve(env.FIXTURE_OUT) : env.FIXTURE ? resolve(HERE, env.FIXTURE) : DEFAULTS.out,
    prefix: env.PREFIX || DEFAULTS.prefix,
    password: env.PASSWORD || DEFAULTS.password,
    concurrency: env.CONCURRENCY ? toPositiveInt(env.CONCURRENCY, 'CONCURRENCY') : DEFAULTS.concurrency,
    fresh: false,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const takeValue = () => {
      if (eq > 0) return arg.slice(eq + 1);
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--users': cfg.users = toPositiveInt(takeValue(), '--users'); break;
      case '--rooms': cfg.rooms = toPositiveInt(takeValue(), '--rooms'); break;
      case '--rooms-per-user': cfg.roomsPerUser = toPositiveInt(takeValue(), '--rooms-per-user'); break;
      case '--url': cfg.url = takeValue(); break;
      case '--out': cfg.out = takeValue(); break;
      case '--prefix': cfg.prefix = takeValue(); break;
      case '--password': cfg.password = takeValue(); break;
      case '--concurrency': cfg.concurrency = toPositiveInt(takeValue(), '--concurrency'); break;
      case '--fresh': cfg.fresh = true; break;
      case '--help': case '-h': cfg.help = true; break;
      default: throw new Error(`unknown argument ${arg}\n${USAGE}`);
    }
  }
  cfg.url = cfg.url.replace(/\/+$/, '');
  if (!/^https?:\/\//.test(cfg.url)) throw new Error(`--url must start with http:// or https://, got ${cfg.url}`);
  if (!/^[A-Za-z0-9_]{1,20}$/.test(cfg.prefix)) throw new Error('--prefix must be 1..20 letters, digits or _');
  cfg.roomsPerUser = Math.min(cfg.roomsPerUser, cfg.rooms);
  return cfg;
}

function pad(n, width) {
  return String(n).padStart(width, '0');
}

/** Deterministic credentials of seeded user i, so re-runs find the same accounts. */
export function userSpec(prefix, i, password, total) {
  const width = Math.max(4, String(Math.max(0, (total || 1) - 1)).length);
  const username = `${prefix}_user_${pad(i, width)}`;
  return { username, email: `${username}@loadtest.example.com`, password };
}

export function roomName(prefix, r, total) {
  const width = Math.max(2, String(Math.max(0, (total || 1) - 1)).length);
  return `${prefix}-room-${pad(r, width)}`;
}

/** Room r is created by user r mod N (so creators are spread and already members). */
export function roomCreator(r, userCount) {
  return r % userCount;
}

/** Rooms user u belongs to: round-robin, u mod R first, then the next ones. */
export function roomsForUser(u, roomCount, roomsPerUser = 1) {
  const out = [];
  const k = Math.min(roomsPerUser, roomCount);
  for (let j = 0; j < k; j++) out.push((u + j) % roomCount);
  return out;
}

/** Member user indexes per room, creators included, sorted. */
export function membersByRoom(userCount, roomCount, roomsPerUser = 1) {
  const sets = Array.from({ length: roomCount }, () => new Set());
  for (let u = 0; u < userCount; u++) {
    for (const r of roomsForUser(u, roomCount, roomsPerUser)) sets[r].add(u);
  }
  for (let r = 0; r < roomCount; r++) sets[r].add(roomCreator(r, userCount));
  return sets.map((s) => [...s].sort((a, b) => a - b));
}

export function deriveWsUrl(baseUrl) {
  return baseUrl.replace(/\/+$/, '').replace(/^http(s?):\/\//i, 'ws$1://') + '/ws';
}

/** Retry-After as milliseconds (delta-seconds or an HTTP date), or null. */
export function parseRetryAfter(header, now = Date.now()) {
  if (header === null || header === undefined || header === '') return null;
  const s = String(header).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  if (Number.isNaN(t)) return null;
  return Math.max(0, t - now);
}

/** Exponential backoff with a cap, used when the server gives no Retry-After. */
export function backoffMs(attempt, baseMs = 500, capMs = 30000) {
  return Math.min(capMs, baseMs * 2 ** attempt);
}

function headerGetter(headers) {
  if (!headers) return () => null;
  if (typeof headers.get === 'function') return (k) => headers.get(k);
  const lower = {};
  for (const k of Object.keys(headers)) lower[k.toLowerCase()] = headers[k];
  return (k) => (lower[k.toLowerCase()] === undefined ? null : lower[k.toLowerCase()]);
}

function nextFromLink(link) {
  if (!link) return null;
  for (const part of String(link).split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part);
    if (m) {
      const q = /[?&]cursor=([^&]+)/.exec(m[1]);
      return q ? decodeURIComponent(q[1]) : null;
    }
  }
  return null;
}

/**
 * One page of GET /rooms. The compat shape is a plain array; the paging cursor is taken
 * from whatever the server offers: an object body's next_cursor/nextCursor, an
 * X-Next-Cursor header, or a Link rel="next" header. Without any, a full page (length ==
 * limit) continues from the last room's id (keyset paging), and the caller stops when a
 * page repeats.
 */
export function extractRoomsPage(body, headers, limit) {
  const get = headerGetter(headers);
  let rooms = [];
  let next = null;
  let explicit = false;
  if (Array.isArray(body)) {
    rooms = body;
  } else if (body && typeof body === 'object') {
    rooms = body.rooms || body.items || body.data || [];
    if ('next_cursor' in body || 'nextCursor' in body) {
      explicit = true;
      next = body.next_cursor ?? body.nextCursor ?? null;
    }
  }
  if (!explicit) {
    const h = get('x-next-cursor') || get('next-cursor');
    if (h) { next = h; explicit = true; }
  }
  if (!explicit) {
    const l = nextFromLink(get('link'));
    if (l) { next = l; explicit = true; }
  }
  if (!explicit && rooms.length > 0 && limit && rooms.length >= limit) {
    next = rooms[rooms.length - 1].id;
  }
  return { rooms, nextCursor: next === null || next === undefined || next === '' ? null : String(next) };
}

/** Runs fn over items with at most `limit` promises in flight; results keep item order. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  let failed = null;
  async function worker() {
    while (failed === null && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (err) {
        failed = failed || err;
      }
    }
  }
  const n = Math.max(1, Math.min(limit, items.length));
  await Promise.all(Array.from({ length: n }, worker));
  if (failed) throw failed;
  return results;
}

export function buildFixture({ baseUrl, wsUrl, prefix, users, rooms, now = new Date() }) {
  return {
    generatedAt: now.toISOString(),
    baseUrl,
    wsUrl,
    prefix,
    users: users.map((u) => ({
      username: u.username,
      email: u.email,
      password: u.password,
      user_id: u.user_id,
      accessToken: u.accessToken,
      refreshToken: u.refreshToken,
    })),
    rooms: rooms.map((r) => ({ id: r.id, name: r.name, members: r.members })),
  };
}

// ------------------------------------------------------------------ HTTP client

export class HttpError extends Error {
  constructor(method, path, status, body) {
    const code = body && typeof body === 'object' && body.code ? ` ${body.code}` : '';
    const msg = body && typeof body === 'object' && body.message ? `: ${body.message}` : '';
    super(`${method} ${path} -> ${status}${code}${msg}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * Minimal JSON client with 429 handling: waits Retry-After (or backs off) and retries, and
 * prints the rate-limit hint once. fetchImpl/sleep/log are injectable for tests.
 */
export function createClient(baseUrl, { fetchImpl = globalThis.fetch, sleep, log = console.log, maxRetries = DEFAULTS.maxRetries, stats } = {}) {
  const wait = sleep || ((ms) => new Promise((r) => setTimeout(r, ms)));
  let hinted = false;
  async function request(method, path, { body, token } = {}) {
    for (let attempt = 0; ; attempt++) {
      const headers = { accept: 'application/json' };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (token) headers.authorization = `Bearer ${token}`;
      let res;
      try {
        res = await fetchImpl(baseUrl + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        const cause = err && err.cause && err.cause.code ? ` (${err.cause.code})` : '';
        throw new Error(`${method} ${baseUrl}${path} failed${cause}: is the server running? Start it with \`npm start\` or pass --url`);
      }
      const text = await res.text();
      let json = null;
      if (text) {
        try { json = JSON.parse(text); } catch { json = text; }
      }
      if (res.status === 429 && attempt < maxRetries) {
        const retryAfter = parseRetryAfter(headerGetter(res.headers)('retry-after'));
        const delay = retryAfter ?? backoffMs(attempt);
        if (stats) stats.retries += 1;
        if (!hinted) {
          hinted = true;
          log(`[seed] 429${json && json.code ? ' ' + json.code : ''} on ${method} ${path}: the server throttles ` +
            'login/register per client IP. Retrying with backoff (honouring Retry-After). To seed faster, ' +
            'seed from the server\'s own machine (loopback clients are throttled per account only) or ' +
            'restart the server with AUTH_RATE_LIMIT_PER_MIN raised, or lower --concurrency.');
        }
        await wait(delay);
        continue;
      }
      return { status: res.status, body: json, headers: res.headers };
    }
  }
  return { request };
}

function expectOk(res, method, path, okStatuses = [200, 201]) {
  if (!okStatuses.includes(res.status)) throw new HttpError(method, path, res.status, res.body);
  return res.body;
}

function tokensOf(body, what) {
  const t = body && body.tokens;
  if (!t || typeof t.accessToken !== 'string') {
    throw new Error(`${what}: response has no tokens.accessToken`);
  }
  return t;
}

// ------------------------------------------------------------------ seeding

async function ensureUser(client, spec, previous, counts) {
  if (previous && previous.refreshToken) {
    const res = await client.request('POST', '/auth/refresh', { body: { refreshToken: previous.refreshToken } });
    if (res.status === 200) {
      const t = tokensOf(res.body, 'POST /auth/refresh');
      counts.refreshed += 1;
      const id = res.body.user && res.body.user.id ? res.body.user.id : previous.user_id;
      return { ...spec, user_id: id, accessToken: t.accessToken, refreshToken: t.refreshToken };
    }
    // Expired or revoked (e.g. the database was reset): fall through to register/login.
  }
  const reg = await client.request('POST', '/auth/register', { body: spec });
  let body;
  if (reg.status === 201 || reg.status === 200) {
    counts.registered += 1;
    body = reg.body;
  } else if (reg.status === 409) {
    const login = await client.request('POST', '/auth/login', { body: { email: spec.email, password: spec.password } });
    if (login.status === 401) {
      throw new Error(`${spec.username} exists but the password does not match: use the PASSWORD of the run ` +
        'that created it, or another --prefix');
    }
    body = expectOk(login, 'POST', '/auth/login', [200, 201]);
    counts.loggedIn += 1;
  } else {
    throw new HttpError('POST', '/auth/register', reg.status, reg.body);
  }
  const t = tokensOf(body, 'auth');
  const id = body.user && body.user.id;
  if (!id) throw new Error('auth response has no user.id');
  return { ...spec, user_id: id, accessToken: t.accessToken, refreshToken: t.refreshToken };
}

/** Finds a room by exact name through GET /rooms, following the paging cursor if any. */
export async function findRoomByName(client, token, name, { limit = 100, maxPages = 1000 } = {}) {
  let cursor = null;
  let lastFirstId;
  for (let page = 0; page < maxPages; page++) {
    const q = `?limit=${limit}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
    const res = await client.request('GET', '/rooms' + q, { token });
    const body = expectOk(res, 'GET', '/rooms', [200]);
    const { rooms, nextCursor } = extractRoomsPage(body, res.headers, limit);
    const hit = rooms.find((r) => r && r.name === name);
    if (hit) return hit;
    // Stop at the end, or when the server ignored the cursor and repeated a page.
    if (!nextCursor || rooms.length === 0 || rooms[0].id === lastFirstId) return null;
    lastFirstId = rooms[0].id;
    cursor = nextCursor;
  }
  return null;
}

async function ensureRoom(client, creator, name, counts) {
  const path = '/rooms';
  const res = await client.request('POST', path, {
    token: creator.accessToken,
    body: { name, description: 'pgchat load test room' },
  });
  if (res.status === 201 || res.status === 200) {
    counts.roomsCreated += 1;
    return res.body;
  }
  if (res.status === 409) {
    const found = await findRoomByName(client, creator.accessToken, name);
    if (!found) throw new Error(`room "${name}" exists (409) but GET /rooms does not list it`);
    counts.roomsFound += 1;
    return found;
  }
  throw new HttpError('POST', path, res.status, res.body);
}

function progressReporter(label, total, log, counts, describe) {
  let done = 0;
  let lastAt = 0;
  return () => {
    done += 1;
    const now = Date.now();
    if (done === total || now - lastAt >= 2000) {
      lastAt = now;
      log(`[seed] ${label} ${done}/${total}${describe ? ' (' + describe(counts) + ')' : ''}`);
    }
  };
}

/**
 * Creates/logs in users, creates/finds rooms, joins users to rooms; returns the fixture.
 * deps: { fetchImpl, sleep, log, previous (an older fixture object) }.
 */
export async function seed(cfg, deps = {}) {
  const log = deps.log || console.log;
  const counts = { registered: 0, loggedIn: 0, refreshed: 0, roomsCreated: 0, roomsFound: 0, joins: 0, retries: 0 };
  const client = createClient(cfg.url, { fetchImpl: deps.fetchImpl, sleep: deps.sleep, log, stats: counts });

  const health = await client.request('GET', '/health');
  if (health.status !== 200) throw new Error(`GET ${cfg.url}/health -> ${health.status}: is the server ready?`);

  const prev = deps.previous && !cfg.fresh && deps.previous.baseUrl === cfg.url ? deps.previous : null;
  const prevByName = new Map((prev ? prev.users : []).map((u) => [u.username, u]));

  const specs = Array.from({ length: cfg.users }, (_, i) => userSpec(cfg.prefix, i, cfg.password, cfg.users));
  const userTick = progressReporter('users', specs.length, log, counts,
    (c) => `registered ${c.registered}, logged in ${c.loggedIn}, refreshed ${c.refreshed}, 429 retries ${c.retries}`);
  const users = await mapLimit(specs, cfg.concurrency, async (spec) => {
    const u = await ensureUser(client, spec, prevByName.get(spec.username), counts);
    userTick();
    return u;
  });

  const roomIdx = Array.from({ length: cfg.rooms }, (_, r) => r);
  const rooms = await mapLimit(roomIdx, Math.min(cfg.concurrency, 4), async (r) => {
    const creator = users[roomCreator(r, users.length)];
    const room = await ensureRoom(client, creator, roomName(cfg.prefix, r, cfg.rooms), counts);
    return { id: room.id, name: room.name };
  });
  log(`[seed] rooms ${rooms.length}/${cfg.rooms} (created ${counts.roomsCreated}, existing ${counts.roomsFound})`);

  const members = membersByRoom(users.length, rooms.length, cfg.roomsPerUser);
  const joins = [];
  members.forEach((list, r) => {
    for (const u of list) if (u !== roomCreator(r, users.length)) joins.push([u, r]);
  });
  const joinTick = progressReporter('joins', joins.length, log, counts, null);
  await mapLimit(joins, cfg.concurrency, async ([u, r]) => {
    const path = `/rooms/${encodeURIComponent(rooms[r].id)}/join`;
    const res = await client.request('POST', path, { token: users[u].accessToken });
    expectOk(res, 'POST', path, [200, 201, 204]);
    counts.joins += 1;
    joinTick();
  });

  const fixture = buildFixture({
    baseUrl: cfg.url,
    wsUrl: deriveWsUrl(cfg.url),
    prefix: cfg.prefix,
    users,
    rooms: rooms.map((room, r) => ({ ...room, members: members[r] })),
  });
  return { fixture, counts };
}

async function readPrevious(path) {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
}

async function writeAtomic(path, text) {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 }); // it holds live tokens
  await rename(tmp, path);
}

export async function main(argv = process.argv.slice(2), env = process.env) {
  const cfg = parseArgs(argv, env);
  if (cfg.help) {
    console.log(USAGE);
    return 0;
  }
  const started = Date.now();
  const out = resolve(cfg.out);
  console.log(`[seed] ${cfg.users} users, ${cfg.rooms} rooms (${cfg.roomsPerUser} per user) on ${cfg.url}, ` +
    `prefix "${cfg.prefix}", ${cfg.concurrency} in flight`);
  const previous = await readPrevious(out);
  const { fixture, counts } = await seed(cfg, { previous });
  await writeAtomic(out, JSON.stringify(fixture, null, 2) + '\n');
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`[seed] done in ${secs}s: ${fixture.users.length} users (${counts.registered} new, ` +
    `${counts.loggedIn} logged in, ${counts.refreshed} refreshed), ${fixture.rooms.length} rooms ` +
    `(${counts.roomsCreated} created, ${counts.roomsFound} existing), ${counts.joins} joins -> ${out}`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().then(
    (code) => { process.exitCode = code; },
    (err) => {
      console.error(`[seed] failed: ${err && err.message ? err.message : err}`);
      process.exitCode = 1;
    },
  );
}
