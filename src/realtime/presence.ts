import type { Db } from '../db/pool.js';
import { BUS_CHANNEL } from '../db/pool.js';
import type { Logger } from '../log.js';

/**
 * Who is online, across every worker and host. Each worker counts its own
 * sockets per user and tells PostgreSQL only about transitions (a user's first
 * socket here opened, their last one closed), batched per tick. The database
 * decides when a user became online or offline anywhere and announces it on the
 * bus. Workers beat every PRESENCE_HEARTBEAT_MS; any worker reaps nodes silent
 * for PRESENCE_TIMEOUT_MS, so a crashed worker's or host's users are announced
 * offline within timeout + heartbeat (12 s with the defaults).
 */
export interface Presence {
  socketOpened(userId: string): void;
  socketClosed(userId: string): void;
  start(): Promise<void>;
  /** Announces this node's users offline (where they have no other socket) and removes the node. */
  stop(): Promise<void>;
}

export interface PresenceOptions {
  db: Db;
  nodeId: string;
  hostId: string;
  heartbeatMs: number;
  timeoutMs: number;
  log: Logger;
}

const NOTIFY_BUDGET = 7900;

export function createPresence(opts: PresenceOptions): Presence {
  const local = new Map<string, number>();
  /** user → wanted state at the next flush (true online, false offline). */
  let dirty = new Map<string, boolean>();
  let flushing: Promise<void> | null = null;
  let scheduled = false;
  let beatTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  function mark(userId: string, online: boolean): void {
    dirty.set(userId, online);
    schedule();
  }

  function schedule(): void {
    if (scheduled || flushing || stopped) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      flushing = flush().then((ok) => {
        flushing = null;
        // On failure the next heartbeat retries; no tight loop against a down database.
        if (ok && dirty.size) schedule();
      });
    });
  }

  async function flush(): Promise<boolean> {
    if (!dirty.size) return true;
    const batch = dirty;
    dirty = new Map();
    const online: string[] = [];
    const offline: string[] = [];
    for (const [user, on] of batch) (on ? online : offline).push(user);
    try {
      await opts.db.query('SELECT pgchat_presence_apply($1, $2::uuid[], $3::uuid[], $4, $5)', [
        opts.nodeId,
        online,
        offline,
        BUS_CHANNEL,
        NOTIFY_BUDGET,
      ]);
      return true;
    } catch (err) {
      // Keep the wish unless a newer one came meanwhile; the next beat retries.
      for (const [user, on] of batch) if (!dirty.has(user)) dirty.set(user, on);
      opts.log.warn({ err: (err as Error).message }, 'presence update failed; will retry');
      return false;
    }
  }

  async function beat(): Promise<void> {
    const { rows } = await opts.db.query<{ missing: boolean }>('SELECT pgchat_node_beat($1, $2, $3) AS missing', [
      opts.nodeId,
      opts.hostId,
      process.pid,
    ]);
    if (rows[0]?.missing) {
      // First beat, or our node row was reaped (a stall) or emptied (database crash):
      // register every user we hold again.
      for (const user of local.keys()) dirty.set(user, true);
    }
    await opts.db.query('SELECT pgchat_reap_nodes(make_interval(secs => $1), $2, $3)', [
      opts.timeoutMs / 1000,
      BUS_CHANNEL,
      NOTIFY_BUDGET,
    ]);
    schedule();
  }

  return {
    socketOpened(userId) {
      const n = (local.get(userId) ?? 0) + 1;
      local.set(userId, n);
      if (n === 1) mark(userId, true);
    },
    socketClosed(userId) {
      const n = (local.get(userId) ?? 0) - 1;
      if (n > 0) {
        local.set(userId, n);
        return;
      }
      local.delete(userId);
      mark(userId, false);
    },
    async start() {
      await beat();
      beatTimer = setInterval(() => {
        beat().catch((err) => opts.log.warn({ err: (err as Error).message }, 'heartbeat failed'));
      }, opts.heartbeatMs);
      beatTimer.unref();
    },
    async stop() {
      stopped = true;
      clearInterval(beatTimer);
      await flushing;
      for (const user of local.keys()) dirty.set(user, false);
      local.clear();
      await flush();
      await opts.db.query('DELETE FROM nodes WHERE id = $1', [opts.nodeId]).catch(() => {});
    },
  };
}
