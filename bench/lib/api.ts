import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.js';

/**
 * The HTTP side of the load generator: register users, create and join rooms
 * (the public API, as any client would), or take them from the k6 fixture
 * (`npm run loadtest:seed` → loadtest/fixture.json).
 *
 * Registering costs one argon2 hash per user (~20-40 ms of server CPU), so users
 * the generator registered are kept in .data/bench-users.json (git-ignored) and
 * reused: their tokens are renewed with /auth/refresh, which costs no hashing.
 * Rooms are always new, so every run starts from empty rooms.
 */

export interface BenchUser {
  username: string;
  email: string;
  password: string;
  user_id: string;
  accessToken: string;
  refreshToken: string;
}

export interface BenchRoom {
  id: string;
  name: string;
  /** Indexes into Population.users. */
  members: number[];
}

export interface Population {
  baseUrl: string;
  wsUrl: string;
  users: BenchUser[];
  rooms: BenchRoom[];
  source: 'fixture' | 'registered';
  setupMs: number;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: any,
    what: string,
  ) {
    super(`${what} -> ${status} ${body?.code ?? ''} ${body?.message ?? ''}`.trim());
  }
}

/** localhost may resolve to ::1 first; the server listens on IPv4 by default. */
export function normalizeBaseUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(/^(https?:\/\/)localhost(?=[:/]|$)/i, '$1127.0.0.1');
}

export function wsUrlOf(baseUrl: string): string {
  return `${baseUrl.replace(/^http/i, 'ws')}/ws`;
}

let rateLimitWarned = false;

export async function api<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
  log: (msg: string) => void = console.error,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    let res: Response;
    try {
      res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      if (attempt < 5) {
        await sleep(200 * 2 ** attempt);
        continue;
      }
      throw new Error(`${method} ${path}: ${(err as Error).message} (is the server running at ${baseUrl}?)`);
    }
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* keep text */
    }
    if (res.status === 429 && attempt < 20) {
      const wait = Number(res.headers.get('retry-after') ?? '1');
      if (!rateLimitWarned) {
        rateLimitWarned = true;
        log(
          `! ${method} ${path} is rate limited by the server (AUTH_RATE_LIMIT_PER_MIN); waiting ${wait} s and retrying.\n` +
            '  Start the server with AUTH_RATE_LIMIT_PER_MIN=1000000 for load tests, or seed once with npm run loadtest:seed.',
        );
      }
      await sleep(Math.min(60, Math.max(1, wait)) * 1000);
      continue;
    }
    if (res.status >= 500 && attempt < 3) {
      await sleep(300 * 2 ** attempt);
      continue;
    }
    if (!res.ok) throw new HttpError(res.status, parsed, `${method} ${path}`);
    return parsed as T;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs fn over items with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** Seconds until a JWT expires (no signature check: only to decide whether to renew). */
export function tokenSecondsLeft(token: string, now = Date.now()): number {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { exp?: number };
    return typeof payload.exp === 'number' ? payload.exp - now / 1000 : Infinity;
  } catch {
    return -1;
  }
}

interface AuthResponse {
  user: { id: string; username: string };
  tokens: { accessToken: string; refreshToken: string };
}

// ---------------------------------------------------------------- the k6 fixture

export const FIXTURE_PATH = join(projectRoot, 'loadtest', 'fixture.json');

interface Fixture {
  baseUrl: string;
  wsUrl?: string;
  users: Array<Partial<BenchUser> & { username: string; password: string }>;
  rooms: Array<{ id: string; name: string; members: Array<number | string> }>;
}

export function readFixture(path = FIXTURE_PATH): Fixture | null {
  if (!existsSync(path)) return null;
  const f = JSON.parse(readFileSync(path, 'utf8')) as Fixture;
  if (!Array.isArray(f.users) || !Array.isArray(f.rooms)) throw new Error(`${path}: not a loadtest fixture (users, rooms)`);
  return f;
}

/**
 * Fixture users whose access token is close to expiry log in again (a new
 * session; the fixture's own refresh tokens are left alone so k6 can still use them).
 */
async function fixturePopulation(
  f: Fixture,
  baseUrl: string,
  roomsNeeded: number,
  minTokenSec: number,
  log: (msg: string) => void,
): Promise<Population> {
  const t0 = performance.now();
  const idIndex = new Map(f.users.map((u, i) => [u.user_id, i]));
  const rooms: BenchRoom[] = f.rooms.slice(0, roomsNeeded).map((r) => ({
    id: r.id,
    name: r.name,
    members: r.members.map((m) => (typeof m === 'number' ? m : (idIndex.get(m) ?? -1))).filter((i) => i >= 0),
  }));
  const used = new Set(rooms.flatMap((r) => r.members));
  let renewed = 0;
  const users = await mapLimit(f.users, 8, async (u, i) => {
    const user = { ...u } as BenchUser;
    if (used.has(i) && (!user.accessToken || tokenSecondsLeft(user.accessToken) < minTokenSec)) {
      const body = u.email ? { email: u.email, password: u.password } : { username: u.username, password: u.password };
      const r = await api<AuthResponse>(baseUrl, 'POST', '/auth/login', body, undefined, log);
      user.user_id = r.user.id;
      user.accessToken = r.tokens.accessToken;
      user.refreshToken = r.tokens.refreshToken;
      renewed++;
    }
    return user;
  });
  if (renewed) log(`  logged in ${renewed} fixture users whose tokens had expired`);
  return { baseUrl, wsUrl: wsUrlOf(baseUrl), users, rooms, source: 'fixture', setupMs: performance.now() - t0 };
}

// ---------------------------------------------------------------- own users

const CACHE_PATH = join(projectRoot, '.data', 'bench-users.json');
const PASSWORD = 'bench-password-1';

interface UserCache {
  [baseUrl: string]: BenchUser[];
}

function readCache(): UserCache {
  try {
    return JSON.parse(readFileSync(CACHE_PATH, 'utf8')) as UserCache;
  } catch {
    return {};
  }
}

function writeCache(cache: UserCache): void {
  mkdirSync(join(projectRoot, '.data'), { recursive: true });
  const tmp = `${CACHE_PATH}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(cache));
  renameSync(tmp, CACHE_PATH);
}

/** `count` usable users: cached ones refreshed (dropping those the server no longer knows), the rest registered. */
async function ownUsers(baseUrl: string, count: number, minTokenSec: number, log: (msg: string) => void): Promise<BenchUser[]> {
  const cache = readCache();
  const cached = cache[baseUrl] ?? [];
  const kept: BenchUser[] = [];
  const renew = cached.slice(0, count);
  let dropped = 0;
  await mapLimit(renew, 16, async (u) => {
    if (tokenSecondsLeft(u.accessToken) >= minTokenSec) {
      kept.push(u);
      return;
    }
    try {
      const r = await api<AuthResponse>(baseUrl, 'POST', '/auth/refresh', { refreshToken: u.refreshToken }, undefined, log);
      kept.push({ ...u, accessToken: r.tokens.accessToken, refreshToken: r.tokens.refreshToken });
    } catch (err) {
      if (err instanceof HttpError && err.status >= 400 && err.status < 500) dropped++;
      else throw err;
    }
  });
  if (dropped) log(`  ${dropped} cached bench users are unknown to this server (new database?); registering new ones`);
  const missing = count - kept.length;
  if (missing > 0) {
    log(`  registering ${missing} users (argon2 on the server: ~30 users/s on 2 cores)...`);
    const prefix = `bench_${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 2).toString(36)}`;
    const t0 = performance.now();
    const fresh = await mapLimit(
      Array.from({ length: missing }, (_, i) => i),
      8,
      async (i) => {
        const username = `${prefix}_${i}`;
        const email = `${username}@bench.example.com`;
        const r = await api<AuthResponse>(baseUrl, 'POST', '/auth/register', { username, email, password: PASSWORD }, undefined, log);
        return {
          username,
          email,
          password: PASSWORD,
          user_id: r.user.id,
          accessToken: r.tokens.accessToken,
          refreshToken: r.tokens.refreshToken,
        };
      },
    );
    log(`  registered ${missing} users in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    kept.push(...fresh);
  }
  // Keep the others of the cache too (a later, bigger run reuses them).
  const keptNames = new Set(kept.map((u) => u.username));
  cache[baseUrl] = [...kept, ...cached.slice(count).filter((u) => !keptNames.has(u.username))];
  writeCache(cache);
  return kept;
}

/**
 * Users and rooms for a scenario: `rooms` new rooms with `usersPerRoom` members
 * each. Room r gets users r·k .. r·k+k-1 of a pool of `poolSize` users (wrapping),
 * so a pool smaller than rooms × k puts users in several rooms.
 */
export async function preparePopulation(opts: {
  baseUrl: string;
  rooms: number;
  usersPerRoom: number;
  poolSize: number;
  fixture: 'auto' | 'yes' | 'no';
  fixturePath?: string;
  baseUrlExplicit: boolean;
  minTokenSec: number;
  log: (msg: string) => void;
}): Promise<Population> {
  const { log } = opts;
  let baseUrl = normalizeBaseUrl(opts.baseUrl);
  if (opts.fixture !== 'no') {
    const f = readFixture(opts.fixturePath);
    if (f) {
      const fBase = normalizeBaseUrl(f.baseUrl);
      const sameServer = !opts.baseUrlExplicit || fBase === baseUrl;
      const enoughRooms = f.rooms.length >= opts.rooms && f.rooms.slice(0, opts.rooms).every((r) => r.members.length > 0);
      if (opts.fixture === 'yes' || (sameServer && enoughRooms)) {
        if (!enoughRooms) throw new Error(`fixture has ${f.rooms.length} rooms; this scenario needs ${opts.rooms}`);
        log(`  using ${opts.fixturePath ?? FIXTURE_PATH} (${f.users.length} users, ${f.rooms.length} rooms) against ${fBase}`);
        return fixturePopulation(f, fBase, opts.rooms, opts.minTokenSec, log);
      }
      log(
        `  not using the fixture: ${!sameServer ? `it is for ${fBase}` : `it has ${f.rooms.length} rooms, ${opts.rooms} needed`}; registering bench users`,
      );
    } else if (opts.fixture === 'yes') throw new Error(`no fixture at ${opts.fixturePath ?? FIXTURE_PATH}`);
  }
  const t0 = performance.now();
  await api(baseUrl, 'GET', '/health', undefined, undefined, log).catch((err) => {
    throw new Error(`the server does not answer at ${baseUrl}/health: ${(err as Error).message}`);
  });
  const poolSize = Math.max(1, Math.min(opts.poolSize, opts.rooms * opts.usersPerRoom));
  const users = await ownUsers(baseUrl, poolSize, opts.minTokenSec, log);
  const k = Math.min(opts.usersPerRoom, users.length);
  const tag = `${Date.now().toString(36)}-${Math.floor(Math.random() * 36 ** 3).toString(36)}`;
  const rooms = await mapLimit(
    Array.from({ length: opts.rooms }, (_, r) => r),
    16,
    async (r) => {
      const members = Array.from({ length: k }, (_, j) => (r * k + j) % users.length);
      const owner = users[members[0]];
      const name = `bench-${tag}-${r}`;
      const room = await api<{ id: string }>(baseUrl, 'POST', '/rooms', { name }, owner.accessToken, log);
      for (const m of members.slice(1)) await api(baseUrl, 'POST', `/rooms/${room.id}/join`, undefined, users[m].accessToken, log);
      return { id: room.id, name, members };
    },
  );
  log(`  created ${rooms.length} rooms (${k} members each) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { baseUrl, wsUrl: wsUrlOf(baseUrl), users, rooms, source: 'registered', setupMs: performance.now() - t0 };
}
