// src/http/rate-limit.ts: fixed-window counters per key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppError } from '../src/errors.js';
import { createRateLimiter } from '../src/http/rate-limit.js';

function throwsRateLimited(fn: () => void): AppError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof AppError, 'expected rate_limited');
  assert.equal(caught.code, 'rate_limited');
  assert.equal(caught.status, 429);
  return caught;
}

test('allows `limit` hits per key in a window, then throws rate_limited', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const limiter = createRateLimiter(3);
  for (let i = 0; i < 3; i++) limiter.hit(['ip:a']);
  throwsRateLimited(() => limiter.hit(['ip:a']));
  throwsRateLimited(() => limiter.hit(['ip:a']));
  limiter.hit(['ip:b']); // another key has its own count
});

test('a request is refused when any of its keys is over', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const limiter = createRateLimiter(2);
  limiter.hit(['ip:1', 'acct:x']);
  limiter.hit(['ip:2', 'acct:x']);
  // A fresh IP does not help an account that is over, nor a fresh account an IP that is over.
  throwsRateLimited(() => limiter.hit(['ip:3', 'acct:x']));
  limiter.hit(['ip:1', 'acct:y']);
  throwsRateLimited(() => limiter.hit(['ip:1', 'acct:z']));
});

test('retry_after_sec counts down to the end of the window; a new window starts afresh', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const limiter = createRateLimiter(1, 60_000);
  limiter.hit(['k']);
  assert.deepEqual(throwsRateLimited(() => limiter.hit(['k'])).details, { retry_after_sec: 60 });
  t.mock.timers.tick(45_500);
  assert.deepEqual(throwsRateLimited(() => limiter.hit(['k'])).details, { retry_after_sec: 15 });
  t.mock.timers.tick(14_499);
  assert.deepEqual(throwsRateLimited(() => limiter.hit(['k'])).details, { retry_after_sec: 1 });
  t.mock.timers.tick(1);
  limiter.hit(['k']);
  throwsRateLimited(() => limiter.hit(['k']));
});
