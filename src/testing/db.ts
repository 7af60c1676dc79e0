import pg from 'pg';
import { migrate } from '../db/migrate.js';

/** A migrated database of its own for one test server (or a few sharing it). */
export interface TestDatabase {
  url: string;
  /** Drops the database, closing any connection still open to it. */
  drop(): Promise<void>;
}

let counter = 0;

/** The admin URL the test runner hands every test process (scripts/run-tests.mjs). */
export function adminUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the tests with `npm test` (it starts a PostgreSQL) or set it');
  return url;
}

/** The same server and credentials as `url`, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/**
 * Creates `pgchat_t_<pid>_<n>` on the cluster of DATABASE_URL and applies the
 * migrations. The pid in the name lets the runner drop what a crashed test
 * process left behind. Works on PostgreSQL 14+ (DROP ... WITH (FORCE) is 13+).
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const admin = adminUrl();
  const name = `pgchat_t_${process.pid}_${++counter}`;
  await adminQuery(admin, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = withDatabase(admin, name);
  try {
    await migrate(url);
  } catch (err) {
    await adminQuery(admin, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`).catch(() => {});
    throw err;
  }
  let dropped: Promise<void> | undefined;
  return {
    url,
    drop() {
      dropped ??= adminQuery(admin, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      return dropped;
    },
  };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * One query on its own connection, for tests that check what the database holds
 * (e.g. that a rejected request left no row). Cast counts to int in SQL: this
 * helper does not depend on the server's int8 parser being loaded.
 */
export async function queryRows<T extends Record<string, unknown> = Record<string, any>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}
