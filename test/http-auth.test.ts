// POST /auth/register, /auth/login, /auth/refresh, /auth/logout, GET/DELETE /auth/sessions,
// and how every protected route treats missing, forged, expired and revoked tokens.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createSigner } from 'fast-jwt';
import { queryRows } from '../src/testing/db.js';
import { assertError, registerUser, request, uniqueName, type RegisteredUser } from '../src/testing/http.js';
import { startTestServer, TEST_JWT_ACCESS_SECRET, TEST_JWT_REFRESH_SECRET, type TestServer } from '../src/testing/server.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(async () => {
  await s?.stop();
});

const countUsers = async (where: string, params: unknown[]) =>
  (await queryRows<{ n: number }>(s.databaseUrl, `SELECT count(*)::int AS n FROM users WHERE ${where}`, params))[0].n;
const countAllUsers = () => countUsers('true', []);

function assertAuthShape(body: any, username?: string): void {
  assert.match(body.user.id, UUID_RE);
  assert.equal(typeof body.user.username, 'string');
  if (username) assert.equal(body.user.username, username);
  assert.equal(typeof body.user.email, 'string');
  assert.match(body.user.created_at, ISO_RE);
  assert.equal(body.user.password_hash, undefined);
  assert.equal(body.user.password, undefined);
  assert.equal(typeof body.tokens.accessToken, 'string');
  assert.equal(typeof body.tokens.refreshToken, 'string');
}

/** GET /auth/sessions with the token: a cheap protected route to see whether a token is accepted. */
const probe = (token: string) => request(s.url, 'GET', '/auth/sessions', { token });

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('POST /auth/register', () => {
  test('201 with the user and a token pair; the password is stored as an argon2id hash', async () => {
    const username = uniqueName('reg').slice(0, 32);
    const email = `${username}@Example.test`;
    const res = await request(s.url, 'POST', '/auth/register', { body: { username, email, password: 'a-long-password' } });
    assert.equal(res.status, 201);
    assertAuthShape(res.body, username);
    assert.equal(res.body.user.email, email);
    const rows = await queryRows(s.databaseUrl, 'SELECT password_hash FROM users WHERE id = $1', [res.body.user.id]);
    assert.match(rows[0].password_hash, /^\$argon2id\$/);
    const sessions = await queryRows(s.databaseUrl, 'SELECT count(*)::int AS n FROM sessions WHERE user_id = $1', [res.body.user.id]);
    assert.equal(sessions[0].n, 1);
    assert.equal((await probe(res.body.tokens.accessToken)).status, 200);
  });

  test('409 username_taken (case-insensitive), and no row is written', async () => {
    const u = await registerUser(s.url);
    const email = `${uniqueName('other')}@example.test`;
    const res = await request(s.url, 'POST', '/auth/register', {
      body: { username: u.user.username.toUpperCase(), email, password: 'a-long-password' },
    });
    assertError(res, 409, 'username_taken');
    assert.equal(await countUsers('lower(email) = lower($1)', [email]), 0);
  });

  test('409 email_taken (case-insensitive), and no row is written', async () => {
    const u = await registerUser(s.url);
    const username = uniqueName('other').slice(0, 32);
    const res = await request(s.url, 'POST', '/auth/register', {
      body: { username, email: u.email.toUpperCase(), password: 'a-long-password' },
    });
    assertError(res, 409, 'email_taken');
    assert.equal(await countUsers('username = $1', [username]), 0);
  });

  test('bad input is 400 and writes no user', async () => {
    const before = await countAllUsers();
    const ok = { username: 'valid_name', email: 'valid@example.test', password: 'a-long-password' };
    assertError(await request(s.url, 'POST', '/auth/register', { rawBody: '{"username": "x",' }), 400, 'invalid_json');
    assertError(await request(s.url, 'POST', '/auth/register', { rawBody: '' }), 400, 'invalid_payload');
    const bad: unknown[] = [
      null,
      [],
      'a string',
      42,
      {},
      { ...ok, username: undefined },
      { ...ok, email: undefined },
      { ...ok, password: undefined },
      { ...ok, username: 12345 },
      { ...ok, email: true },
      { ...ok, password: 12345678 },
      { ...ok, password: ['a-long-password'] },
      { ...ok, username: 'ab' },
      { ...ok, username: 'has space' },
      { ...ok, username: 'x'.repeat(33) },
      { ...ok, email: 'not-an-email' },
      { ...ok, password: 'short' },
    ];
    for (const body of bad) {
      const res = await request(s.url, 'POST', '/auth/register', { rawBody: JSON.stringify(body) ?? '' });
      assertError(res, 400, 'invalid_payload');
    }
    assert.equal(await countAllUsers(), before);
  });
});

describe('POST /auth/login', () => {
  let u: RegisteredUser;
  before(async () => {
    u = await registerUser(s.url, 'login');
  });

  test('200 by email (any case) and by username, each a new session', async () => {
    const byEmail = await request(s.url, 'POST', '/auth/login', { body: { email: u.email.toUpperCase(), password: u.password } });
    assert.equal(byEmail.status, 200);
    assertAuthShape(byEmail.body, u.user.username);
    assert.equal(byEmail.body.user.id, u.user.id);
    const byName = await request(s.url, 'POST', '/auth/login', { body: { username: u.user.username, password: u.password } });
    assert.equal(byName.status, 200);
    assert.equal(byName.body.user.id, u.user.id);
    const rows = await queryRows(s.databaseUrl, 'SELECT count(*)::int AS n FROM sessions WHERE user_id = $1', [u.user.id]);
    assert.equal(rows[0].n, 3);
  });

  test('401 invalid_credentials for a wrong password, an unknown email or username', async () => {
    assertError(await request(s.url, 'POST', '/auth/login', { body: { email: u.email, password: 'wrong-password' } }), 401, 'invalid_credentials');
    assertError(
      await request(s.url, 'POST', '/auth/login', { body: { email: 'nobody@example.test', password: u.password } }),
      401,
      'invalid_credentials',
    );
    assertError(
      await request(s.url, 'POST', '/auth/login', { body: { username: 'nobody_here', password: u.password } }),
      401,
      'invalid_credentials',
    );
  });

  test('bad input is 400', async () => {
    assertError(await request(s.url, 'POST', '/auth/login', { rawBody: '{oops' }), 400, 'invalid_json');
    for (const body of [{}, { email: u.email }, { password: u.password }, { email: 1, password: u.password }, { email: u.email, password: null }, []]) {
      assertError(await request(s.url, 'POST', '/auth/login', { body }), 400, 'invalid_payload');
    }
  });
});

describe('POST /auth/refresh', () => {
  test('rotation: a new pair each time; a reused old refresh token revokes the whole session', async () => {
    const u = await registerUser(s.url, 'rot');
    const r1 = await request(s.url, 'POST', '/auth/refresh', { body: { refreshToken: u.refreshToken } });
    assert.equal(r1.status, 200);
    assertAuthShape(r1.body, u.user.username);
    assert.notEqual(r1.body.tokens.refreshToken, u.refreshToken);
    assert.equal((await probe(r1.body.tokens.accessToken)).status, 200);
    const r2 = await request(s.url, 'POST', '/auth/refresh', { body: { refreshToken: r1.body.tokens.refreshToken } });
    assert.equal(r2.status, 200);
    const newestRefresh = r2.body.tokens.refreshToken;
    const newestAccess = r2.body.tokens.accessToken;

    // The first refresh token, already rotated away, comes back: someone copied it.
    assertError(await request(s.url, 'POST', '/auth/refresh', { body: { refreshToken: u.refreshToken } }), 401, 'refresh_token_reused');
    assertError(await request(s.url, 'POST', '/auth/refresh', { body: { refreshToken: newestRefresh } }), 401, 'session_revoked');
    assertError(await probe(newestAccess), 401, 'session_revoked');
    assertError(await probe(u.accessToken), 401, 'session_revoked');
    const rows = await queryRows(s.databaseUrl, 'SELECT revoked_reason FROM sessions WHERE user_id = $1', [u.user.id]);
    assert.deepEqual(rows, [{ revoked_reason: 'refresh_token_reused' }]);

    // Other sessions of the same user are not affected.
    const again = await request(s.url, 'POST', '/auth/login', { body: { email: u.email, password: u.password } });
    assert.equal((await probe(again.body.tokens.accessToken)).status, 200);
  });

  test('401 for tokens that are not a live refresh token of this server', async () => {
    const u = await registerUser(s.url, 'rtok');
    const claims = { sub: u.user.id, sid: randomUUID(), gen: 0, typ: 'refresh' };
    const sign = (key: string, opts: Record<string, unknown> = {}) => createSigner({ key, algorithm: 'HS256', ...opts })(claims);
    const cases: Array<[string, string]> = [
      ['garbage', 'invalid_refresh_token'],
      [u.accessToken, 'invalid_refresh_token'], // an access token is not a refresh token
      [sign('wrong-secret-wrong-secret-wrong-secret'), 'invalid_refresh_token'],
      [sign(TEST_JWT_ACCESS_SECRET), 'invalid_refresh_token'], // the other secret
      [sign(TEST_JWT_REFRESH_SECRET), 'invalid_refresh_token'], // signed right, but no such session
      [sign(TEST_JWT_REFRESH_SECRET, { clockTimestamp: Date.now() - 7_200_000, expiresIn: 60_000 }), 'token_expired'],
      [`${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, sid: JSON.parse(Buffer.from(u.refreshToken.split('.')[1], 'base64url').toString()).sid })}.`, 'invalid_refresh_token'],
    ];
    for (const [refreshToken, code] of cases) {
      assertError(await request(s.url, 'POST', '/auth/refresh', { body: { refreshToken } }), 401, code);
    }
    // None of that touched the real session.
    assert.equal((await request(s.url, 'POST', '/auth/refresh', { body: { refreshToken: u.refreshToken } })).status, 200);
  });

  test('bad input is 400', async () => {
    assertError(await request(s.url, 'POST', '/auth/refresh', { rawBody: 'nope' }), 400, 'invalid_json');
    for (const body of [{}, { refreshToken: 123 }, { refreshToken: '' }, { refresh_token: 'x' }]) {
      assertError(await request(s.url, 'POST', '/auth/refresh', { body }), 400, 'invalid_payload');
    }
  });
});

describe('POST /auth/logout', () => {
  test('ends the session of the refresh token: both its tokens stop working', async () => {
    const u = await registerUser(s.url, 'out');
    const res = await request(s.url, 'POST', '/auth/logout', { token: u.accessToken, body: { refreshToken: u.refreshToken } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { success: true });
    assertError(await probe(u.accessToken), 401, 'session_revoked');
    assertError(await request(s.url, 'POST', '/auth/refresh', { body: { refreshToken: u.refreshToken } }), 401, 'session_revoked');
    const rows = await queryRows(s.databaseUrl, 'SELECT revoked_reason FROM sessions WHERE user_id = $1', [u.user.id]);
    assert.deepEqual(rows, [{ revoked_reason: 'logout' }]);
  });

  test('with an unusable refresh token, the access token\'s own session is ended', async () => {
    const u = await registerUser(s.url, 'out');
    const res = await request(s.url, 'POST', '/auth/logout', { token: u.accessToken, body: { refreshToken: 'garbage' } });
    assert.equal(res.status, 200);
    assertError(await probe(u.accessToken), 401, 'session_revoked');
  });

  test('another user\'s refresh token does not end that user\'s session', async () => {
    const a = await registerUser(s.url, 'outa');
    const b = await registerUser(s.url, 'outb');
    const res = await request(s.url, 'POST', '/auth/logout', { token: a.accessToken, body: { refreshToken: b.refreshToken } });
    assert.equal(res.status, 200);
    assertError(await probe(a.accessToken), 401, 'session_revoked');
    assert.equal((await probe(b.accessToken)).status, 200);
    assert.equal((await request(s.url, 'POST', '/auth/refresh', { body: { refreshToken: b.refreshToken } })).status, 200);
  });

  test('401 without a token, 400 without a refreshToken (and the session lives on)', async () => {
    const u = await registerUser(s.url, 'out');
    assertError(await request(s.url, 'POST', '/auth/logout', { body: { refreshToken: u.refreshToken } }), 401, 'unauthorized');
    assertError(await request(s.url, 'POST', '/auth/logout', { token: u.accessToken, body: {} }), 400, 'invalid_payload');
    assertError(await request(s.url, 'POST', '/auth/logout', { token: u.accessToken, rawBody: '{' }), 400, 'invalid_json');
    assert.equal((await probe(u.accessToken)).status, 200);
  });
});

describe('GET /auth/sessions, DELETE /auth/sessions/:id', () => {
  test('lists own live sessions newest first, marks the current one, revokes another', async () => {
    const u = await registerUser(s.url, 'sess');
    const second = await request(s.url, 'POST', '/auth/login', {
      body: { email: u.email, password: u.password },
      headers: { 'user-agent': 'second-device/1.0' },
    });
    const third = await request(s.url, 'POST', '/auth/login', { body: { email: u.email, password: u.password } });
    const list = await probe(third.body.tokens.accessToken);
    assert.equal(list.status, 200);
    assert.equal(list.body.length, 3);
    for (const row of list.body) {
      assert.match(row.id, UUID_RE);
      assert.match(row.created_at, ISO_RE);
      assert.match(row.last_used_at, ISO_RE);
      assert.match(row.expires_at, ISO_RE);
      assert.equal(typeof row.current, 'boolean');
    }
    assert.deepEqual(list.body.map((r: any) => r.current), [true, false, false]);
    assert.equal(list.body[1].user_agent, 'second-device/1.0');
    const secondSid = list.body[1].id;

    const del = await request(s.url, 'DELETE', `/auth/sessions/${secondSid}`, { token: third.body.tokens.accessToken });
    assert.equal(del.status, 200);
    assert.deepEqual(del.body, { success: true });
    assertError(await probe(second.body.tokens.accessToken), 401, 'session_revoked');
    assertError(
      await request(s.url, 'POST', '/auth/refresh', { body: { refreshToken: second.body.tokens.refreshToken } }),
      401,
      'session_revoked',
    );
    const after = await probe(third.body.tokens.accessToken);
    assert.deepEqual(after.body.map((r: any) => r.id).includes(secondSid), false);
    assert.equal(after.body.length, 2);

    assertError(await request(s.url, 'DELETE', `/auth/sessions/${secondSid}`, { token: u.accessToken }), 404, 'session_not_found');
  });

  test('404 for unknown and other users\' sessions, 400 for a malformed id, 401 without a token', async () => {
    const a = await registerUser(s.url, 'sessa');
    const b = await registerUser(s.url, 'sessb');
    const bSid = (await probe(b.accessToken)).body[0].id;
    assertError(await request(s.url, 'DELETE', `/auth/sessions/${bSid}`, { token: a.accessToken }), 404, 'session_not_found');
    assert.equal((await probe(b.accessToken)).status, 200);
    assertError(await request(s.url, 'DELETE', `/auth/sessions/${randomUUID()}`, { token: a.accessToken }), 404, 'session_not_found');
    for (const bad of ['abc', '123', `${bSid}x`, bSid.replace(/-/g, ''), '%E0%A4%A', "1'%20OR%20'1'='1"]) {
      assertError(await request(s.url, 'DELETE', `/auth/sessions/${bad}`, { token: a.accessToken }), 400, 'invalid_id');
    }
    assertError(await request(s.url, 'GET', '/auth/sessions'), 401, 'unauthorized');
    assertError(await request(s.url, 'DELETE', `/auth/sessions/${bSid}`), 401, 'unauthorized');
  });
});

describe('access tokens on protected routes', () => {
  let u: RegisteredUser;
  let sid: string;
  before(async () => {
    u = await registerUser(s.url, 'tok');
    sid = JSON.parse(Buffer.from(u.accessToken.split('.')[1], 'base64url').toString()).sid;
  });
  const claims = () => ({ sub: u.user.id, username: u.user.username, sid, typ: 'access' });

  test('a token signed with the test secret is accepted (the craft below is sound)', async () => {
    const token = createSigner({ key: TEST_JWT_ACCESS_SECRET, algorithm: 'HS256', expiresIn: 60_000 })(claims());
    assert.equal((await probe(token)).status, 200);
  });

  test('401 unauthorized: missing, malformed, forged, alg none, wrong algorithm, wrong type, missing claims', async () => {
    const sign = (key: string, payload: Record<string, unknown>, algorithm: 'HS256' | 'HS512' = 'HS256') =>
      createSigner({ key, algorithm, expiresIn: 60_000 })(payload);
    const [header, payload] = u.accessToken.split('.');
    const { sid: _sid, ...noSid } = claims();
    const authorizations = [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      `Token ${u.accessToken}`,
      'Bearer not.a.jwt',
      `Bearer ${u.accessToken}x`,
      `Bearer ${sign('wrong-secret-wrong-secret-wrong-secret', claims())}`,
      `Bearer ${sign(TEST_JWT_REFRESH_SECRET, claims())}`,
      `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`,
      `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${payload}`,
      `Bearer ${b64({ alg: 'NONE' })}.${b64({ ...claims(), exp: Math.floor(Date.now() / 1000) + 60 })}.`,
      `Bearer ${header}.${b64({ ...claims(), sub: randomUUID() })}.${u.accessToken.split('.')[2]}`,
      `Bearer ${sign(TEST_JWT_ACCESS_SECRET, claims(), 'HS512')}`,
      `Bearer ${u.refreshToken}`,
      `Bearer ${sign(TEST_JWT_ACCESS_SECRET, { ...claims(), typ: 'refresh' })}`,
      `Bearer ${sign(TEST_JWT_ACCESS_SECRET, noSid)}`,
      `Bearer ${sign(TEST_JWT_ACCESS_SECRET, { ...claims(), sub: 42 })}`,
    ];
    for (const authorization of authorizations) {
      const res = await request(s.url, 'GET', '/rooms', { headers: authorization === undefined ? {} : { authorization } });
      assertError(res, 401, 'unauthorized');
    }
  });

  test('401 token_expired for an expired token signed with the right secret', async () => {
    const expired = createSigner({ key: TEST_JWT_ACCESS_SECRET, algorithm: 'HS256', clockTimestamp: Date.now() - 7_200_000, expiresIn: 60_000 })(
      claims(),
    );
    assertError(await probe(expired), 401, 'token_expired');
    assertError(await request(s.url, 'POST', '/rooms', { token: expired, body: { name: uniqueName('room') } }), 401, 'token_expired');
  });

  test('a real token of a 1-second TTL server expires, also after it was cached as valid', async () => {
    const short = await startTestServer({ accessTokenTtlSec: 1 });
    try {
      const v = await registerUser(short.url, 'ttl');
      const exp: number = JSON.parse(Buffer.from(v.accessToken.split('.')[1], 'base64url').toString()).exp;
      assert.ok(exp * 1000 - Date.now() <= 1000);
      assert.equal((await request(short.url, 'GET', '/auth/sessions', { token: v.accessToken })).status, 200);
      // Wait for the clock to pass exp (at most a second): this is the behaviour under test, not a race.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 20));
      assertError(await request(short.url, 'GET', '/auth/sessions', { token: v.accessToken }), 401, 'token_expired');
      // The refresh token is still good and yields a working pair.
      const r = await request(short.url, 'POST', '/auth/refresh', { body: { refreshToken: v.refreshToken } });
      assert.equal(r.status, 200);
      assert.equal((await request(short.url, 'GET', '/auth/sessions', { token: r.body.tokens.accessToken })).status, 200);
    } finally {
      await short.stop();
    }
  });
});

describe('revocation across servers sharing one database', () => {
  test('a server started later refuses tokens of sessions revoked before it started', async () => {
    const u = await registerUser(s.url, 'late');
    assert.equal((await request(s.url, 'POST', '/auth/logout', { token: u.accessToken, body: { refreshToken: u.refreshToken } })).status, 200);
    const late = await startTestServer({}, { databaseUrl: s.databaseUrl });
    try {
      assertError(await request(late.url, 'GET', '/auth/sessions', { token: u.accessToken }), 401, 'session_revoked');
    } finally {
      await late.stop();
    }
  });

  test('a running server learns of a revocation through the bus within a bounded time', async () => {
    const other = await startTestServer({}, { databaseUrl: s.databaseUrl });
    try {
      const u = await registerUser(s.url, 'bus');
      assert.equal((await request(other.url, 'GET', '/auth/sessions', { token: u.accessToken })).status, 200);
      assert.equal((await request(s.url, 'POST', '/auth/logout', { token: u.accessToken, body: { refreshToken: u.refreshToken } })).status, 200);
      // The other server hears of it over LISTEN/NOTIFY, asynchronously by design: what is
      // tested is that it happens, and soon. It is polled against a deadline, not retried.
      const deadline = Date.now() + 3000;
      let res = await request(other.url, 'GET', '/auth/sessions', { token: u.accessToken });
      while (res.status === 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        res = await request(other.url, 'GET', '/auth/sessions', { token: u.accessToken });
      }
      assertError(res, 401, 'session_revoked');
    } finally {
      await other.stop();
    }
  });
});

describe('login and register throttling', () => {
  let t: TestServer;
  before(async () => {
    // TRUST_PROXY lets each test pose as its own client IP through X-Forwarded-For.
    t = await startTestServer({ authRateLimitPerMin: 3, trustProxy: true });
  });
  after(async () => {
    await t?.stop();
  });
  const from = (ip: string) => ({ 'x-forwarded-for': ip });
  const newUser = () => {
    const username = uniqueName('thr').slice(0, 32);
    return { username, email: `${username}@example.test`, password: 'a-long-password' };
  };

  function assertThrottled(res: Awaited<ReturnType<typeof request>>): void {
    assertError(res, 429, 'rate_limited');
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${res.headers.get('retry-after')}`);
  }

  test('register: the 4th attempt a minute from one IP is 429 with Retry-After, and writes no user', async () => {
    for (let i = 0; i < 3; i++) {
      assert.equal((await request(t.url, 'POST', '/auth/register', { body: newUser(), headers: from('10.1.0.1') })).status, 201);
    }
    const fourth = newUser();
    assertThrottled(await request(t.url, 'POST', '/auth/register', { body: fourth, headers: from('10.1.0.1') }));
    const rows = await queryRows(t.databaseUrl, 'SELECT count(*)::int AS n FROM users WHERE username = $1', [fourth.username]);
    assert.equal(rows[0].n, 0);
    // Another client is not affected.
    assert.equal((await request(t.url, 'POST', '/auth/register', { body: newUser(), headers: from('10.1.0.2') })).status, 201);
  });

  test('login: per IP, whatever the accounts', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await request(t.url, 'POST', '/auth/login', {
        body: { email: `nobody${i}@example.test`, password: 'whatever-it-is' },
        headers: from('10.2.0.1'),
      });
      assertError(res, 401, 'invalid_credentials');
    }
    assertThrottled(
      await request(t.url, 'POST', '/auth/login', { body: { email: 'nobody9@example.test', password: 'x' }, headers: from('10.2.0.1') }),
    );
  });

  test('login: a client cannot dodge the IP limit by forging X-Forwarded-For entries before the proxy\'s', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await request(t.url, 'POST', '/auth/login', {
        body: { email: `forger${i}@example.test`, password: 'whatever-it-is' },
        headers: from(`192.0.2.${i + 1}, 10.4.0.1`),
      });
      assertError(res, 401, 'invalid_credentials');
    }
    assertThrottled(
      await request(t.url, 'POST', '/auth/login', { body: { email: 'forger9@example.test', password: 'x' }, headers: from('192.0.2.99, 10.4.0.1') }),
    );
  });

  test('login: per account, whatever the IPs; even the right password waits', async () => {
    const user = newUser();
    assert.equal((await request(t.url, 'POST', '/auth/register', { body: user, headers: from('10.3.0.1') })).status, 201);
    for (const ip of ['10.3.0.2', '10.3.0.3']) {
      const res = await request(t.url, 'POST', '/auth/login', { body: { email: user.email, password: 'wrong-password' }, headers: from(ip) });
      assertError(res, 401, 'invalid_credentials');
    }
    assertThrottled(
      await request(t.url, 'POST', '/auth/login', { body: { email: user.email.toUpperCase(), password: user.password }, headers: from('10.3.0.4') }),
    );
  });
});
