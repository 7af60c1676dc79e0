#!/usr/bin/env node
// `npm test` (after `npm run build:all`): runs the compiled test files with node:test.
//
// - DATABASE_URL set: the tests use that cluster (an admin URL; every test file
//   creates and drops its own databases on it).
// - DATABASE_URL unset: starts the embedded PostgreSQL 18 with its own data dir
//   (.data/pg-test) and port (54330; TEST_PG_PORT picks another, with a data dir of
//   its own), so it never collides with a running `npm start`, and stops it at the end.
//   Two runs in one checkout share it; the one that started it waits for the other.
//
// Extra arguments: file paths select what to run instead of the whole suite
// (`npm test -- dist/test/http-auth.test.js`); arguments starting with `-` go to
// `node --test` as they are (`npm test -- --test-name-pattern=refresh`).
// TEST_CONCURRENCY sets how many test files run at once (default: CPU parallelism).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TEST_PG_PORT = Number(process.env.TEST_PG_PORT || 54330);
// One data dir per port: a second server cannot share the first one's data dir.
const TEST_PG_DIR = join(root, '.data', TEST_PG_PORT === 54330 ? 'pg-test' : `pg-test-${TEST_PG_PORT}`);

function say(msg) {
  process.stderr.write(`[run-tests] ${msg}\n`);
}

/** dist/test/*.test.js (not the cluster suite, which needs root and network namespaces) and loadtest/lib/*.test.mjs. */
function defaultFiles() {
  const list = (dir, suffix) =>
    existsSync(join(root, dir))
      ? readdirSync(join(root, dir))
          .filter((f) => f.endsWith(suffix))
          .sort()
          .map((f) => join(dir, f))
      : [];
  const files = [...list('dist/test', '.test.js'), ...list('loadtest/lib', '.test.mjs')];
  if (!files.length) throw new Error('no test files found: run `npm run build:all` first (npm test does)');
  return files;
}

async function serverVersion(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query('SHOW server_version')).rows[0].server_version;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Drops test databases (pgchat_t_<pid>_<n>) left behind by test processes that
 * died before their cleanup ran. Only on the embedded cluster: there the pids are
 * ours to check; a shared DATABASE_URL may carry another machine's live runs.
 */
async function dropStaleTestDatabases(adminUrl) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT datname FROM pg_database WHERE datname ~ '^pgchat_t_[0-9]+_[0-9]+$'`);
    for (const { datname } of rows) {
      const pid = Number(datname.split('_')[2]);
      if (isAlive(pid)) continue;
      await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(datname)} WITH (FORCE)`).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/**
 * Runners sharing the embedded server (two `npm test` in one checkout) each leave a
 * pid file here; the one that started the server keeps it up until the others are done.
 */
const RUNNERS_DIR = join(TEST_PG_DIR, 'runners');

function registerRunner() {
  mkdirSync(RUNNERS_DIR, { recursive: true });
  for (const name of readdirSync(RUNNERS_DIR)) if (!isAlive(Number(name))) rmSync(join(RUNNERS_DIR, name), { force: true });
  writeFileSync(join(RUNNERS_DIR, String(process.pid)), '');
}

function unregisterRunner() {
  rmSync(join(RUNNERS_DIR, String(process.pid)), { force: true });
}

async function waitForOtherRunners() {
  let told = false;
  for (;;) {
    const others = readdirSync(RUNNERS_DIR)
      .map(Number)
      .filter((pid) => pid !== process.pid && isAlive(pid));
    if (!others.length) return;
    if (!told) say(`keeping the embedded PostgreSQL up until the other test run(s) finish (pid ${others.join(', ')})`);
    told = true;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function runNodeTest(args, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
    // Ctrl-C reaches the child through the terminal's process group; a plain SIGTERM
    // to us is passed on, so the embedded server is still stopped afterwards.
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', () => {});
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

async function main() {
  const extra = process.argv.slice(2);
  const flags = extra.filter((a) => a.startsWith('-'));
  const picked = extra.filter((a) => !a.startsWith('-'));
  const files = picked.length ? picked : defaultFiles();
  const concurrency = Number(process.env.TEST_CONCURRENCY || availableParallelism());

  let embedded;
  const env = { ...process.env };
  if (!env.DATABASE_URL) {
    const { startEmbeddedPostgres } = await import(pathToFileURL(join(root, 'dist/src/db/embedded.js')).href);
    registerRunner();
    embedded = await startEmbeddedPostgres(TEST_PG_DIR, TEST_PG_PORT, say, 'postgres');
    env.DATABASE_URL = embedded.url;
    await dropStaleTestDatabases(embedded.url);
  }
  let code = 1;
  try {
    const where = embedded ? `embedded, 127.0.0.1:${TEST_PG_PORT}, data ${relative(root, TEST_PG_DIR)}` : 'DATABASE_URL';
    say(`PostgreSQL ${await serverVersion(env.DATABASE_URL)} (${where})`);
    say(`${files.length} file(s), concurrency ${concurrency}`);
    code = await runNodeTest(['--test', `--test-concurrency=${concurrency}`, ...flags, ...files], env);
  } finally {
    if (embedded) {
      unregisterRunner();
      if (embedded.started) await waitForOtherRunners();
      await embedded.stop().catch((err) => say(`stopping the embedded PostgreSQL failed: ${err}`));
    }
  }
  process.exitCode = code;
}

main().catch((err) => {
  say(err?.stack ?? String(err));
  process.exitCode = 1;
});
