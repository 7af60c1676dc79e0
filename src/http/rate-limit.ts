import { AppError } from '../errors.js';

/**
 * Fixed-window counters per key (an IP, an account). In memory per worker: with N
 * workers a client spread over them gets at most N times the limit, which still
 * stops password guessing; the database is not touched for it.
 */
export interface RateLimiter {
  /** Counts one hit for every key; throws rate_limited when any is over. */
  hit(keys: string[]): void;
}

export function createRateLimiter(limit: number, windowMs = 60_000): RateLimiter {
  let windowStart = Date.now();
  let counts = new Map<string, number>();
  return {
    hit(keys) {
      const now = Date.now();
      if (now - windowStart >= windowMs) {
        windowStart = now;
        counts = new Map();
      }
      let over = false;
      for (const key of keys) {
        const n = (counts.get(key) ?? 0) + 1;
        counts.set(key, n);
        if (n > limit) over = true;
      }
      if (over) {
        const retryAfterSec = Math.max(1, Math.ceil((windowStart + windowMs - now) / 1000));
        throw new AppError('rate_limited', 'Too many attempts, try again later', { retry_after_sec: retryAfterSec });
      }
    },
  };
}
