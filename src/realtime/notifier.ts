import type { Queryable } from '../db/pool.js';
import { BUS_CHANNEL } from '../db/pool.js';

/**
 * Sends ephemeral bus payloads (typing) without a table write: everything queued
 * in one tick goes out in one statement. Losing one on a database hiccup is
 * acceptable for typing indicators, so failures are only counted.
 */
export function createNotifier(db: Queryable, onError: (err: unknown) => void): (payload: string) => void {
  let queue: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const payloads = queue;
    queue = [];
    db.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [BUS_CHANNEL, payloads]).catch(onError);
  };
  return (payload) => {
    queue.push(payload);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}
