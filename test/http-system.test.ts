// GET /health, /ready, /metrics, /openapi.json; CORS; request bodies (size, type, JSON);
// unknown routes; where the client IP comes from.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { queryRows } from '../src/testing/db.js';
import { assertError, registerUser, request, uniqueName } from '../src/testing/http.js';
import { startTestServer, type TestServer } from '../src/testing/server.js';

let s: TestServer;
before(async () => {
  s = await startTestServer({ maxBodyBytes: 1024, corsOrigin: 'https://chat.example' });
});
after(async () => {
  await s?.stop();
});

/** Every route of the HTTP table in PROTOCOL.md, in OpenAPI notation. */
const PROTOCOL_ROUTES: Array<[method: string, path: string, auth: boolean]> = [
  ['post', '/auth/register', false],
  ['post', '/auth/login', false],
  ['post', '/auth/refresh', false],
  ['post', '/auth/logout', true],
  ['get', '/auth/sessions', true],
  ['delete', '/auth/sessions/{id}', true],
  ['post', '/rooms', true],
  ['get', '/rooms', true],
  ['get', '/rooms/{id}', true],
  ['patch', '/rooms/{id}', true],
  ['delete', '/rooms/{id}', true],
  ['post', '/rooms/{id}/join', true],
  ['post', '/rooms/{id}/leave', true],
  ['get', '/rooms/{id}/members', true],
  ['get', '/rooms/{id}/messages', true],
  ['post', '/rooms/{id}/messages', true],
  ['get', '/health', false],
  ['get', '/ready', false],
  ['get', '/metrics', false],
  ['get', '/openapi.json', false],
];

const newUserBody = () => {
  const username = uniqueName('sys').slice(0, 32);
  return { username, email: `${username}@example.test`, password: 'a-long-password' };
};
const usersNamed = async (username: string) =>
  (await queryRows(s.databaseUrl, 'SELECT count(*)::int AS n FROM users WHERE username = $1', [username]))[0].n;

describe('system endpoints', () => {
  test('GET /health: 200 without a token', async () => {
    const res = await request(s.url, 'GET', '/health');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  test('GET /ready: 200 when the database and LISTEN are up', async () => {
    const res = await request(s.url, 'GET', '/ready');
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'ready');
    assert.equal(res.body.database, true);
    assert.equal(res.body.listen, true);
  });

  test('GET /openapi.json: OpenAPI 3.1 with every route of the protocol, and every route it lists exists', async () => {
    const res = await request(s.url, 'GET', '/openapi.json');
    assert.equal(res.status, 200);
    const doc = res.body;
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(typeof doc.info.version, 'string');
    for (const [method, path, auth] of PROTOCOL_ROUTES) {
      const op = doc.paths[path]?.[method];
      assert.ok(op, `${method.toUpperCase()} ${path} missing from openapi.json`);
      assert.ok(Object.keys(op.responses).some((status) => /^2/.test(status)), `${method} ${path} has no success response`);
      assert.equal(Boolean(op.security), auth, `${method} ${path} security`);
      if (auth) assert.ok(op.responses['401'], `${method} ${path} documents no 401`);
      if (path.includes('{id}')) assert.ok(op.parameters.some((p: any) => p.name === 'id' && p.in === 'path'));
    }
    // Nothing documented is missing from the server: each answers something other than the catch-all 404.
    const token = (await registerUser(s.url, 'doc')).accessToken;
    for (const [path, ops] of Object.entries<Record<string, unknown>>(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const res = await request(s.url, method.toUpperCase(), path.replace('{id}', randomUUID()), { token });
        assert.notEqual(res.body?.code, 'not_found', `${method} ${path} is documented but not served`);
      }
    }
  });

  test('GET /metrics: Prometheus text with the request counters', async () => {
    await request(s.url, 'GET', '/health');
    const res = await request(s.url, 'GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(res.body, /^# HELP pgchat_http_requests_total /m);
    assert.match(res.body, /^pgchat_http_requests_total\{route="\/health",status="200"\} [1-9]\d*$/m);
    assert.match(res.body, /^pgchat_process_cpu_user_seconds_total /m);
  });

  test('unknown routes and methods: 404 not_found with the error body', async () => {
    assertError(await request(s.url, 'GET', '/nope'), 404, 'not_found');
    assertError(await request(s.url, 'PUT', '/rooms'), 404, 'not_found');
    assertError(await request(s.url, 'GET', `/rooms/${randomUUID()}/nope`), 404, 'not_found');
    assertError(await request(s.url, 'GET', '//rooms'), 404, 'not_found');
  });
});

describe('CORS', () => {
  test('preflight: 204 with the allowed origin, methods and headers, on any path', async () => {
    for (const path of ['/rooms', `/rooms/${randomUUID()}/messages`, '/auth/login']) {
      const res = await request(s.url, 'OPTIONS', path, {
        headers: { origin: 'https://chat.example', 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization, content-type' },
      });
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), 'https://chat.example');
      const methods = (res.headers.get('access-control-allow-methods') ?? '').split(/\s*,\s*/);
      for (const m of ['GET', 'POST', 'PATCH', 'DELETE']) assert.ok(methods.includes(m), `preflight allows ${m}`);
      const headers = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
      for (const h of ['authorization', 'content-type']) assert.ok(headers.includes(h), `preflight allows ${h}`);
      assert.ok(Number(res.headers.get('access-control-max-age')) > 0);
    }
  });

  test('answers and errors carry Access-Control-Allow-Origin', async () => {
    for (const res of [await request(s.url, 'GET', '/health'), await request(s.url, 'GET', '/rooms'), await request(s.url, 'GET', '/nope')]) {
      assert.equal(res.headers.get('access-control-allow-origin'), 'https://chat.example');
    }
  });
});

describe('request bodies', () => {
  test('a body of exactly MAX_BODY_BYTES is read; one byte more is 413 payload_too_large and writes nothing', async () => {
    const fits = newUserBody();
    const json = JSON.stringify(fits);
    const exact = json + ' '.repeat(s.config.maxBodyBytes - Buffer.byteLength(json));
    assert.equal((await request(s.url, 'POST', '/auth/register', { rawBody: exact })).status, 201);

    const over = newUserBody();
    const overJson = JSON.stringify(over);
    const res = await request(s.url, 'POST', '/auth/register', { rawBody: overJson + ' '.repeat(s.config.maxBodyBytes + 1 - Buffer.byteLength(overJson)) });
    assertError(res, 413, 'payload_too_large');
    assert.equal(await usersNamed(over.username), 0);

    const big = newUserBody();
    assertError(await request(s.url, 'POST', '/auth/register', { rawBody: JSON.stringify({ ...big, pad: 'x'.repeat(4096) }) }), 413, 'payload_too_large');
    assert.equal(await usersNamed(big.username), 0);
    // The server closed that connection and serves the next one.
    assert.equal((await request(s.url, 'GET', '/health')).status, 200);
  });

  test('413 on protected routes too (after the token is checked)', async () => {
    const u = await registerUser(s.url, 'big');
    const body = { name: uniqueName('room'), description: 'd'.repeat(2000) };
    assertError(await request(s.url, 'POST', '/rooms', { token: u.accessToken, body }), 413, 'payload_too_large');
    assertError(await request(s.url, 'POST', '/rooms', { body }), 401, 'unauthorized');
    const rows = await queryRows(s.databaseUrl, 'SELECT count(*)::int AS n FROM rooms WHERE name = $1', [body.name]);
    assert.equal(rows[0].n, 0);
  });

  test('415 unsupported_media_type for a non-JSON Content-Type, and nothing is written', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/json']) {
      const body = newUserBody();
      assertError(await request(s.url, 'POST', '/auth/register', { body, headers: { 'content-type': type } }), 415, 'unsupported_media_type');
      assert.equal(await usersNamed(body.username), 0);
    }
  });

  test('JSON Content-Types with parameters or a +json suffix, or none at all, are read as JSON', async () => {
    for (const type of ['application/json; charset=utf-8', 'APPLICATION/JSON', 'application/merge-patch+json', '']) {
      assert.equal((await request(s.url, 'POST', '/auth/register', { body: newUserBody(), headers: { 'content-type': type } })).status, 201, type);
    }
  });

  test('400 invalid_json for bodies that are not JSON', async () => {
    for (const raw of ['{', 'undefined', "{'a': 1}", '[1,]', '{"a":1}}', '\uFEFF{}', Buffer.from([0xff, 0xfe, 0x7b, 0x7d])]) {
      assertError(await request(s.url, 'POST', '/auth/login', { rawBody: raw }), 400, 'invalid_json');
    }
  });
});

describe('client IP', () => {
  test('X-Forwarded-For is ignored unless TRUST_PROXY, and then only the entry the proxy added counts', async () => {
    const body = newUserBody();
    const res = await request(s.url, 'POST', '/auth/register', { body, headers: { 'x-forwarded-for': '203.0.113.7' } });
    assert.equal(res.status, 201);
    const rows = await queryRows(s.databaseUrl, 'SELECT ip FROM sessions WHERE user_id = $1', [res.body.user.id]);
    assert.deepEqual(rows, [{ ip: '127.0.0.1' }]);

    const proxied = await startTestServer({ trustProxy: true });
    try {
      // The proxy appends the address it saw; what is left of it came from the client and may be forged.
      const r = await request(proxied.url, 'POST', '/auth/register', { body: newUserBody(), headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' } });
      const ips = await queryRows(proxied.databaseUrl, 'SELECT ip FROM sessions WHERE user_id = $1', [r.body.user.id]);
      assert.deepEqual(ips, [{ ip: '203.0.113.7' }]);
      const single = await request(proxied.url, 'POST', '/auth/register', { body: newUserBody(), headers: { 'x-forwarded-for': '198.51.100.9' } });
      const ip2 = await queryRows(proxied.databaseUrl, 'SELECT ip FROM sessions WHERE user_id = $1', [single.body.user.id]);
      assert.deepEqual(ip2, [{ ip: '198.51.100.9' }]);
    } finally {
      await proxied.stop();
    }
  });
});
