import pg from 'pg';

export type Db = pg.Pool;

/** The one LISTEN/NOTIFY channel of pgchat (payload formats: migrations/002_realtime_functions.sql). */
export const BUS_CHANNEL = 'pgchat';
export type DbClient = pg.PoolClient | pg.Client;
export type Queryable = Pick<pg.Pool, 'query'>;

// int8 (seq, message id, counts) fits a JS number for any realistic chat; the wire
// contract wants numbers, so parse them once here instead of in every caller.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export function createPool(url: string, max: number, applicationName = 'pgchat', queryTimeoutMs = 15_000): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    application_name: applicationName,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    // A query on a connection whose peer vanished (partition) would otherwise wait
    // for TCP to give up, minutes later: callers get an error in bounded time.
    query_timeout: queryTimeoutMs,
    // The server-side bound for the same: an abandoned statement does not run on.
    statement_timeout: queryTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle client that loses its server emits here; the pool drops it and the next query reconnects.
  pool.on('error', () => {});
  return pool;
}

/**
 * Runs fn on one pooled connection with a deadline that covers getting the
 * connection too. Past it the caller gets an error at once and the connection is
 * destroyed rather than reused: its state is unknown (the statement may still
 * commit, which idempotent callers absorb).
 */
export async function withDeadline<T>(db: Db, ms: number, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let client: pg.PoolClient | undefined;
  let expired = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      reject(Object.assign(new Error(`database call exceeded ${ms} ms`), { code: 'ETIMEDOUT' }));
    }, ms);
  });
  const work = (async () => {
    const c = await db.connect();
    if (expired) {
      c.release();
      throw new Error('deadline passed while waiting for a connection');
    }
    client = c;
    return fn(c);
  })();
  work.catch(() => {}); // settles after the deadline in the losing case; already reported
  try {
    const result = await Promise.race([work, deadline]);
    client?.release();
    return result;
  } catch (err) {
    if (expired && client) cancelBackend(db, client);
    client?.release(err instanceof Error ? err : true);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asks the server to stop the statement an abandoned connection is running:
 * closing our end alone leaves it running (and holding its locks) until it
 * next writes to the socket. Best effort: when the server is unreachable the
 * cancel fails too, and the statement ends with the connection.
 */
function cancelBackend(db: Db, client: pg.PoolClient): void {
  const pid = (client as unknown as { processID?: number }).processID;
  if (pid) db.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => {});
}

/** Runs fn inside BEGIN/COMMIT on one pooled connection; ROLLBACK on any error. */
export async function inTransaction<T>(db: Db, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
