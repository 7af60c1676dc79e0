import { withDeadline, type Db } from '../db/pool.js';
import { postMessages, type PostInput, type PostResult } from '../db/messages.js';
import { AppError, toAppError } from '../errors.js';
import { metrics } from '../metrics.js';

export interface MessageWriter {
  /** Resolves after the message is committed (or found as a duplicate); rejects with an AppError. */
  post(input: PostInput): Promise<PostResult>;
  /** Resolves when everything queued so far is written (graceful stop). */
  drain(): Promise<void>;
  readonly pending: number;
  /** Flushes (statements) so far: messages per flush is the group-commit factor. */
  readonly flushes: number;
}

interface Pending {
  input: PostInput;
  /** When it was queued: every message gets timeoutMs in all, queueing included. */
  at: number;
  resolve: (r: PostResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for the write path. Every NOTIFYing commit takes a database-wide
 * lock, so commits per second are the scarce resource: sends that arrive while a
 * flush is in flight wait and go together in the next one (one statement, one
 * commit, one NOTIFY per room chunk). When idle, a send is flushed on the next
 * tick, so a lone message pays no batching delay. One flush at a time per worker
 * keeps each sender's messages in order.
 */
export function createMessageWriter(
  db: Db,
  opts: { notifyBudget: number; maxMessageBytes: number; timeoutMs?: number; maxBatch?: number },
): MessageWriter {
  const maxBatch = opts.maxBatch ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 5000;
  // A message's time is split: at most half waiting in the queue (then it is
  // refused, exactly: it was never sent), at most half in its flush. A flush
  // therefore always starts with its whole half, even under a backlog.
  const queueBudget = timeoutMs / 2;
  const flushBudget = timeoutMs / 2;
  let queue: Pending[] = [];
  let inFlight: Promise<void> | null = null;
  let scheduled = false;
  let flushes = 0;
  const idleWaiters: Array<() => void> = [];

  // While a flush hangs (database unreachable), queued messages must not wait
  // behind it past their budget: they were never sent, so 'unavailable' is exact.
  let watchdog: NodeJS.Timeout | undefined;
  function watch(): void {
    if (watchdog) return;
    watchdog = setInterval(() => {
      expireQueued();
      if (!queue.length && !inFlight) {
        clearInterval(watchdog);
        watchdog = undefined;
      }
    }, Math.max(25, timeoutMs / 10));
    watchdog.unref();
  }

  /** Refuses queued messages past their queue budget: never sent, so certainly not stored. */
  function expireQueued(): void {
    const cutoff = Date.now() - queueBudget;
    let expired = 0;
    while (expired < queue.length && queue[expired].at <= cutoff) expired++;
    if (!expired) return;
    const err = new AppError('unavailable', 'the database is overloaded or unreachable; not stored, retry');
    for (const p of queue.splice(0, expired)) p.reject(err);
  }

  function schedule(): void {
    if (scheduled || inFlight) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      expireQueued();
      if (queue.length) inFlight = flush();
      else while (idleWaiters.length) idleWaiters.pop()!();
    });
  }

  async function flush(): Promise<void> {
    const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
    queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
    try {
      // Bounded: while the database is unreachable or overloaded every sender
      // hears 'unavailable' within timeoutMs instead of waiting for TCP to give up.
      const results = await withDeadline(db, flushBudget, (client) =>
        postMessages(client, batch.map((p) => p.input), opts.notifyBudget),
      );
      flushes++;
      metrics.writeFlushes.inc();
      metrics.messagesStored.inc(batch.length);
      for (let i = 0; i < batch.length; i++) batch[i].resolve(results[i]);
    } catch (err) {
      const appErr = toAppError(err);
      for (const p of batch) p.reject(appErr);
    } finally {
      inFlight = null;
      if (queue.length) schedule();
      else while (idleWaiters.length) idleWaiters.pop()!();
    }
  }

  return {
    post(input) {
      const invalid = checkContent(input.content, opts.maxMessageBytes) ?? checkClientMsgId(input.clientMsgId);
      if (invalid) return Promise.reject(invalid);
      return new Promise<PostResult>((resolve, reject) => {
        queue.push({ input, resolve, reject, at: Date.now() });
        schedule();
        watch();
      });
    },
    drain() {
      if (!queue.length && !inFlight && !scheduled) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    get pending() {
      return queue.length;
    },
    get flushes() {
      return flushes;
    },
  };
}

/** The rules every message obeys, whichever way it arrives (HTTP or WebSocket). */
export function checkContent(content: string, maxBytes: number): AppError | null {
  if (content.length === 0) return new AppError('invalid_payload', 'content must not be empty');
  // Cheap upper bound first: UTF-8 needs at most 3 bytes per UTF-16 unit.
  if (content.length * 3 > maxBytes && Buffer.byteLength(content, 'utf8') > maxBytes) {
    return new AppError('message_too_long', `content exceeds ${maxBytes} bytes`);
  }
  // PostgreSQL text cannot hold NUL; refuse it here rather than fail a whole batch.
  if (content.includes('\u0000')) return new AppError('invalid_payload', 'content must not contain NUL characters');
  // A lone surrogate would be stored as U+FFFD: what was acked would differ from what is stored.
  if (!isWellFormed(content)) return new AppError('invalid_payload', 'content must be valid Unicode (no lone surrogates)');
  return null;
}

function checkClientMsgId(id: string | null): AppError | null {
  if (id !== null && (id.includes('\u0000') || !isWellFormed(id))) {
    return new AppError('invalid_payload', 'client_msg_id must be valid Unicode without NUL characters');
  }
  return null;
}

// String.prototype.isWellFormed (Node.js 20+); not in the ES2023 typings.
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
