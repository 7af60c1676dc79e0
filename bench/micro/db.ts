import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { migrate } from '../../src/db/migrate.js';
import { uuidv7 } from '../../src/ids.js';
import { projectRoot } from '../../src/paths.js';

export const BENCH_DATABASE = 'pgchat_bench';

export interface BenchDb {
  url: string;
  users: Array<{ id: string; username: string }>;
  rooms: string[];
  /** Stops the embedded PostgreSQL if this process started it. */
  stop(): Promise<void>;
}

/**
 * A fresh, migrated database `pgchat_bench` on the embedded PostgreSQL (.data,
 * port 54329; an already running one is reused, e.g. the one of `npm start`),
 * or on the cluster of BENCH_DATABASE_URL's server when that is set (an admin URL).
 * Users and rooms are inserted with SQL: every user is a member of every room.
 */
export async function benchDatabase(opts: { users: number; rooms: number; port: number; log: (m: string) => void }): Promise<BenchDb> {
  let adminUrl: string;
  let url: string;
  let stop = async () => {};
  const given = process.env.BENCH_DATABASE_URL;
  if (given) {
    adminUrl = given;
    const u = new URL(given);
    u.pathname = `/${BENCH_DATABASE}`;
    url = u.toString();
  } else {
    const emb = await startEmbeddedPostgres(join(projectRoot, '.data'), opts.port, opts.log, BENCH_DATABASE);
    url = emb.url;
    adminUrl = url.replace(new RegExp(`/${BENCH_DATABASE}$`), '/postgres');
    stop = emb.stop;
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${BENCH_DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${BENCH_DATABASE}`);
  } finally {
    await admin.end();
  }
  await migrate(url);
  const users = Array.from({ length: opts.users }, (_, i) => ({ id: uuidv7(), username: `bench_${i}` }));
  const rooms = Array.from({ length: opts.rooms }, () => uuidv7());
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(
      `INSERT INTO users (id, username, email, password_hash)
       SELECT id, name, name || '@bench.example.com', 'x' FROM unnest($1::uuid[], $2::text[]) AS t(id, name)`,
      [users.map((u) => u.id), users.map((u) => u.username)],
    );
    await c.query(
      `INSERT INTO rooms (id, name, created_by) SELECT id, 'bench-room-' || ord, $2 FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, ord)`,
      [rooms, users[0].id],
    );
    await c.query(
      `INSERT INTO room_members (room_id, user_id, role)
       SELECT r, u, CASE WHEN u = $3::uuid THEN 'owner' ELSE 'member' END FROM unnest($1::uuid[]) r, unnest($2::uuid[]) u`,
      [rooms, users.map((u) => u.id), users[0].id],
    );
    await c.query('ANALYZE');
  } finally {
    await c.end();
  }
  return { url, users, rooms, stop };
}
