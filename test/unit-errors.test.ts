// src/errors.ts: the error code table, the HTTP error body, and how thrown things map to codes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppError, appError, errorCodes, httpErrorBody, isUniqueViolation, toAppError, type ErrorCode } from '../src/errors.js';

const codes = Object.keys(errorCodes) as ErrorCode[];

test('every code is snake_case with an HTTP error status, a message and a reason phrase', () => {
  for (const code of codes) {
    assert.match(code, /^[a-z]+(_[a-z]+)*$/);
    const err = new AppError(code);
    assert.ok(err.status >= 400 && err.status <= 599, code);
    assert.equal(err.status, errorCodes[code].status);
    assert.equal(err.message, errorCodes[code].message);
    const body = httpErrorBody(err);
    assert.notEqual(body.error, 'Error', `no reason phrase for ${err.status}`);
  }
});

test('the codes PROTOCOL.md names exist with the statuses it implies', () => {
  const expected: Record<string, number> = {
    invalid_payload: 400,
    invalid_id: 400,
    message_too_long: 400,
    unauthorized: 401,
    not_a_member: 403,
    not_room_owner: 403,
    room_not_found: 404,
    username_taken: 409,
    email_taken: 409,
    room_name_taken: 409,
    payload_too_large: 413,
    unsupported_media_type: 415,
    rate_limited: 429,
  };
  for (const [code, status] of Object.entries(expected)) assert.equal(errorCodes[code as ErrorCode]?.status, status, code);
});

test('httpErrorBody: the NestJS shape plus code; details only when given', () => {
  assert.deepEqual(httpErrorBody(new AppError('room_not_found')), {
    statusCode: 404,
    error: 'Not Found',
    message: errorCodes.room_not_found.message,
    code: 'room_not_found',
  });
  const withDetails = httpErrorBody(appError('rate_limited', 'slow down', { retry_after_sec: 3 }));
  assert.deepEqual(withDetails, {
    statusCode: 429,
    error: 'Too Many Requests',
    message: 'slow down',
    code: 'rate_limited',
    details: { retry_after_sec: 3 },
  });
  assert.equal(httpErrorBody(new AppError('invalid_payload')).error, 'Bad Request');
  assert.equal(httpErrorBody(new AppError('payload_too_large')).error, 'Payload Too Large');
});

test('toAppError: AppErrors pass through unchanged', () => {
  const err = new AppError('not_a_member', 'custom');
  assert.equal(toAppError(err), err);
});

test('toAppError: SQLSTATEs of bad input and of transient trouble', () => {
  const cases: Array<[string, ErrorCode]> = [
    ['22P02', 'invalid_payload'],
    ['22021', 'invalid_payload'],
    ['23503', 'room_not_found'],
    ['40001', 'unavailable'],
    ['40P01', 'unavailable'],
    ['57P01', 'unavailable'],
    ['57P02', 'unavailable'],
    ['57P03', 'unavailable'],
    ['53300', 'unavailable'],
    ['08000', 'unavailable'],
    ['08003', 'unavailable'],
    ['08006', 'unavailable'],
    ['ECONNREFUSED', 'unavailable'],
    ['ECONNRESET', 'unavailable'],
    ['ETIMEDOUT', 'unavailable'],
    ['EPIPE', 'unavailable'],
    // Not mapped: a fault of ours (e.g. a unique violation the caller should have translated).
    ['23505', 'internal_error'],
    ['42P01', 'internal_error'],
    ['42601', 'internal_error'],
  ];
  for (const [pgCode, expected] of cases) {
    const err = Object.assign(new Error('db said no'), { code: pgCode });
    assert.equal(toAppError(err).code, expected, pgCode);
  }
});

test('toAppError: node-postgres connection failures without a SQLSTATE are unavailable', () => {
  for (const message of [
    'Connection terminated unexpectedly',
    'Connection terminated due to connection timeout',
    'timeout exceeded when trying to connect',
    'Client has encountered a connection error and is not queryable',
  ]) {
    assert.equal(toAppError(new Error(message)).code, 'unavailable', message);
  }
});

test('toAppError: anything else is internal_error (500), whatever was thrown', () => {
  for (const thrown of [new Error('boom'), new TypeError('x is undefined'), 'a string', 42, null, undefined, { code: 7 }, {}]) {
    const err = toAppError(thrown);
    assert.equal(err.code, 'internal_error');
    assert.equal(err.status, 500);
  }
});

test('isUniqueViolation: 23505, optionally of one constraint', () => {
  const err = { code: '23505', constraint: 'rooms_name_key' };
  assert.equal(isUniqueViolation(err), true);
  assert.equal(isUniqueViolation(err, 'rooms_name_key'), true);
  assert.equal(isUniqueViolation(err, 'users_email_key'), false);
  assert.equal(isUniqueViolation({ code: '23503' }), false);
  assert.equal(isUniqueViolation(null), false);
  assert.equal(isUniqueViolation(undefined), false);
});
