import type { Queryable } from '../db/pool.js';
import { postMessages, type PostInput, type PostResult } from '../db/messages.js';
import { AppError, toAppError } from '../errors.js';

export interface MessageWriter {
  /** Resolves after the message is committed (or found as a duplicate); rejects with an AppError. */
  post(input: PostInput): Promise<PostResult>;
  /** Resolves when everything queued so far is written (graceful stop). */
  drain(): Promise<void>;
  readonly pending: number;
}

interface Pending {
  input: PostInput;
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
  db: Queryable,
  opts: { notifyBudget: number; maxMessageBytes: number; maxBatch?: number },
): MessageWriter {
  const maxBatch = opts.maxBatch ?? 1000;
  let queue: Pending[] = [];
  let inFlight: Promise<void> | null = null;
  let scheduled = false;
  const idleWaiters: Array<() => void> = [];

  function schedule(): void {
    if (scheduled || inFlight) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      inFlight = flush();
    });
  }

  async function flush(): Promise<void> {
    const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
    queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
    try {
      const results = await postMessages(db, batch.map((p) => p.input), opts.notifyBudget);
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
      const invalid = checkContent(input.content, opts.maxMessageBytes);
      if (invalid) return Promise.reject(invalid);
      return new Promise<PostResult>((resolve, reject) => {
        queue.push({ input, resolve, reject });
        schedule();
      });
    },
    drain() {
      if (!queue.length && !inFlight && !scheduled) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    get pending() {
      return queue.length;
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
  return null;
}
