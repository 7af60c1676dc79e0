// src/ids.ts: UUIDv7 ids (format, embedded time, monotonic order) and isUuid.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { isUuid, uuidv7 } from '../src/ids.js';

const V7_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const timeOf = (id: string) => parseInt(id.replace(/-/g, '').slice(0, 12), 16);

test('uuidv7: RFC 9562 layout (version 7, variant 10), lowercase, carries the current time', () => {
  const before = Date.now();
  const id = uuidv7();
  const after = Date.now();
  assert.match(id, V7_RE);
  assert.ok(isUuid(id));
  assert.ok(timeOf(id) >= before && timeOf(id) <= after, `${timeOf(id)} not within ${before}..${after}`);
});

test('uuidv7: strictly increasing and unique in a tight loop', () => {
  const ids = Array.from({ length: 50_000 }, () => uuidv7());
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `${ids[i]} <= ${ids[i - 1]}`);
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids.slice(0, 100)) assert.match(id, V7_RE);
});

test('uuidv7: still increasing when the clock stands still past the 4096-per-millisecond counter', (t) => {
  const frozen = Date.now() + 10_000;
  t.mock.method(Date, 'now', () => frozen);
  const ids = Array.from({ length: 10_000 }, () => uuidv7());
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1]);
  for (const id of ids) assert.match(id, V7_RE);
  // The counter borrows from the next milliseconds rather than repeat or wrap.
  assert.equal(timeOf(ids[0]), frozen);
  assert.ok(timeOf(ids[ids.length - 1]) <= frozen + 3);
});

test('uuidv7: still increasing when the clock steps back', (t) => {
  const first = uuidv7();
  t.mock.method(Date, 'now', () => timeOf(first) - 60_000);
  const next = uuidv7();
  assert.ok(next > first);
  assert.match(next, V7_RE);
});

test('isUuid: any version, either case; nothing else', () => {
  for (const ok of [uuidv7(), randomUUID(), randomUUID().toUpperCase(), '00000000-0000-0000-0000-000000000000']) assert.equal(isUuid(ok), true, ok);
  const id = randomUUID();
  for (const bad of [undefined, null, 42, {}, '', id.slice(1), `${id}0`, id.replace(/-/g, ''), `{${id}}`, id.replace(/[0-9a-f]$/, 'g'), ` ${id.slice(1)}`, `${id.slice(0, 35)}\n`]) {
    assert.equal(isUuid(bad), false, String(bad));
  }
});
