// src/config.ts: defaults, validation (every problem reported at once), production secrets, dev secrets.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, loadConfig, readEnv, settings } from '../src/config.js';
import { projectRoot } from '../src/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'pgchat-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const SECRETS = { JWT_ACCESS_SECRET: 'a'.repeat(40), JWT_REFRESH_SECRET: 'b'.repeat(40) };
/** A test environment with fixed secrets and a data dir of its own (so no dev secrets land in the project). */
const env = (extra: Record<string, string | undefined> = {}) => ({ NODE_ENV: 'test', PGCHAT_DATA_DIR: tmp, ...SECRETS, ...extra });

/** The problem lines of a refused configuration. */
function problemsOf(e: Record<string, string | undefined>, overrides = {}): string[] {
  try {
    loadConfig(e, overrides);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    for (const p of err.problems) assert.ok(err.message.includes(p), 'the message lists every problem');
    return err.problems;
  }
  assert.fail('configuration was accepted');
}

const hasProblem = (problems: string[], re: RegExp) => assert.ok(problems.some((p) => re.test(p)), `${re} not in ${JSON.stringify(problems)}`);

test('defaults, frozen', () => {
  const c = loadConfig(env());
  assert.equal(c.env, 'test');
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.port, 3000);
  assert.equal(c.workers, Math.max(1, availableParallelism()));
  assert.equal(c.databaseUrl, '');
  assert.equal(c.embeddedPgPort, 54329);
  assert.equal(c.maxBodyBytes, 131_072);
  assert.equal(c.maxMessageBytes, 65_536);
  assert.equal(c.authRateLimitPerMin, 30);
  assert.equal(c.accessTokenTtlSec, 900);
  assert.equal(c.trustProxy, false);
  assert.equal(c.dataDir, tmp);
  assert.ok(Object.isFrozen(c));
  // Every setting has a documented default (the .env.example is written from this list).
  for (const [key, s] of Object.entries(settings)) assert.ok(typeof s.def === 'string' && s.doc.length > 0, key);
});

test('values are trimmed; empty means default; relative data dirs are under the project', () => {
  const c = loadConfig(env({ PORT: ' 8080 ', HOST: '', WORKERS: '3', PGCHAT_DATA_DIR: '.data-x', DATABASE_URL: 'postgresql://u@h/db' }));
  assert.equal(c.port, 8080);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.workers, 3);
  assert.equal(c.dataDir, join(projectRoot, '.data-x'));
  assert.ok(isAbsolute(c.dataDir));
  assert.equal(c.databaseUrl, 'postgresql://u@h/db');
});

test('bad integers: one line per setting, naming it and its value', () => {
  const problems = problemsOf(env({ PORT: 'abc', DB_POOL_SIZE: '0', MAX_BODY_BYTES: '1.5', WORKERS: '-2', ACCESS_TOKEN_TTL: '5' }));
  assert.equal(problems.length, 5);
  hasProblem(problems, /^PORT="abc" must be an integer from 0 to 65535$/);
  hasProblem(problems, /^DB_POOL_SIZE="0" /);
  hasProblem(problems, /^MAX_BODY_BYTES="1.5" /);
  hasProblem(problems, /^WORKERS="-2" /);
  hasProblem(problems, /^ACCESS_TOKEN_TTL="5" /);
  hasProblem(problemsOf(env({ PORT: '70000' })), /^PORT="70000"/);
});

test('bad enums, booleans and URLs', () => {
  hasProblem(problemsOf(env({ NODE_ENV: 'staging' })), /^NODE_ENV="staging"/);
  hasProblem(problemsOf(env({ LOG_LEVEL: 'verbose' })), /^LOG_LEVEL="verbose"/);
  hasProblem(problemsOf(env({ TRUST_PROXY: 'maybe' })), /^TRUST_PROXY="maybe"/);
  hasProblem(problemsOf(env({ DATABASE_URL: 'mysql://localhost/db' })), /^DATABASE_URL /);
  for (const yes of ['1', 'true', 'YES', 'on']) assert.equal(loadConfig(env({ TRUST_PROXY: yes })).trustProxy, true, yes);
  for (const no of ['0', 'false', 'No', 'off']) assert.equal(loadConfig(env({ TRUST_PROXY: no })).trustProxy, false, no);
});

test('settings that must agree with each other', () => {
  hasProblem(problemsOf(env({ MAX_MESSAGE_BYTES: '131072' })), /^MAX_FRAME_BYTES must exceed MAX_MESSAGE_BYTES/);
  hasProblem(problemsOf(env({ WS_SOFT_BACKPRESSURE: '1048576', WS_HARD_BACKPRESSURE: '1048576' })), /^WS_HARD_BACKPRESSURE/);
  hasProblem(problemsOf(env({ PRESENCE_HEARTBEAT_MS: '5000', PRESENCE_TIMEOUT_MS: '9000' })), /^PRESENCE_TIMEOUT_MS/);
  // Overrides win over the environment and are held to the same rules.
  assert.equal(loadConfig(env({ PORT: '1234' }), { port: 0 }).port, 0);
  hasProblem(problemsOf(env(), { maxMessageBytes: 200_000 }), /^MAX_FRAME_BYTES/);
});

test('production refuses missing, short or shared JWT secrets', () => {
  const prod = (extra: Record<string, string | undefined>) => ({ NODE_ENV: 'production', PGCHAT_DATA_DIR: tmp, ...extra });
  const missing = problemsOf(prod({}));
  hasProblem(missing, /^JWT_ACCESS_SECRET must be set/);
  hasProblem(missing, /^JWT_REFRESH_SECRET must be set/);
  const short = problemsOf(prod({ JWT_ACCESS_SECRET: 'x'.repeat(31), JWT_REFRESH_SECRET: 'y'.repeat(40) }));
  assert.deepEqual(short.length, 1);
  hasProblem(short, /^JWT_ACCESS_SECRET/);
  hasProblem(problemsOf(prod({ JWT_ACCESS_SECRET: 'z'.repeat(40), JWT_REFRESH_SECRET: 'z'.repeat(40) })), /must differ/);
  const ok = loadConfig(prod(SECRETS));
  assert.equal(ok.env, 'production');
  assert.equal(ok.jwtAccessSecret, SECRETS.JWT_ACCESS_SECRET);
  assert.equal(existsSync(join(tmp, 'dev-secrets.json')), false, 'production never makes dev secrets');
});

test('development without secrets: random ones, made once and kept in the data dir', () => {
  const dir = mkdtempSync(join(tmp, 'dev-'));
  const first = loadConfig({ NODE_ENV: 'development', PGCHAT_DATA_DIR: dir });
  const file = join(dir, 'dev-secrets.json');
  assert.ok(existsSync(file));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.ok(first.jwtAccessSecret.length >= 32 && first.jwtRefreshSecret.length >= 32);
  assert.notEqual(first.jwtAccessSecret, first.jwtRefreshSecret);
  const second = loadConfig({ NODE_ENV: 'development', PGCHAT_DATA_DIR: dir });
  assert.equal(second.jwtAccessSecret, first.jwtAccessSecret);
  assert.equal(second.jwtRefreshSecret, first.jwtRefreshSecret);
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { access: first.jwtAccessSecret, refresh: first.jwtRefreshSecret });
  // A secret given in the environment wins over the stored one.
  assert.equal(loadConfig({ NODE_ENV: 'development', PGCHAT_DATA_DIR: dir, JWT_ACCESS_SECRET: 'given' }).jwtAccessSecret, 'given');
});

test('readEnv: .env under the real environment, which wins', () => {
  const file = join(tmp, '.env');
  writeFileSync(file, 'PORT=1234\nLOG_LEVEL=debug\n# comment\nHOST="127.0.0.1"\n');
  assert.deepEqual(readEnv({ LOG_LEVEL: 'warn' }, file), { PORT: '1234', LOG_LEVEL: 'warn', HOST: '127.0.0.1' });
  assert.deepEqual(readEnv({ A: 'b' }, join(tmp, 'missing.env')), { A: 'b' });
});
