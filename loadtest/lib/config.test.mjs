import test from 'node:test';
import assert from 'node:assert/strict';

import {
  ENV_VAR_NAMES, assignSeat, buildOptions, buildPlan, buildScenarios, buildThresholds,
  deriveBaseUrl, deriveWsUrl, describePlan, envOverridesFixture, expectedErrorsFor,
  parseBool, parseDuration, receiversInRoom, roomIndexOf, secondsToK6, splitList, withQuery,
} from './config.js';

function fixture({ users = 12, rooms = 3 } = {}) {
  const u = Array.from({ length: users }, (_, i) => ({
    username: `lt_user_${i}`, email: `lt_user_${i}@x`, password: 'p',
    user_id: `user-${i}`, accessToken: `tok-${i}`, refreshToken: `ref-${i}`,
  }));
  const r = Array.from({ length: rooms }, (_, k) => ({
    id: `room-${k}`, name: `lt-room-${k}`,
    members: u.map((_, i) => i).filter((i) => i % rooms === k),
  }));
  return JSON.stringify({ baseUrl: 'http://seeded:3000', wsUrl: 'ws://seeded:3000/ws', users: u, rooms: r });
}

test('parseDuration understands k6-style durations', () => {
  assert.equal(parseDuration('30s'), 30);
  assert.equal(parseDuration('1m30s'), 90);
  assert.equal(parseDuration('500ms'), 0.5);
  assert.equal(parseDuration('2h'), 7200);
  assert.equal(parseDuration('45'), 45);
  assert.equal(parseDuration(undefined, 7), 7);
  assert.throws(() => parseDuration('10 minutes'), /invalid duration/);
  assert.throws(() => parseDuration('s'), /invalid duration/);
  assert.equal(secondsToK6(0.2), '1s');
  assert.equal(secondsToK6(65.5), '66s');
});

test('small parsers', () => {
  assert.deepEqual(splitList(' a, b,,c '), ['a', 'b', 'c']);
  assert.deepEqual(splitList(undefined), []);
  assert.equal(parseBool('0', true), false);
  assert.equal(parseBool('false', true), false);
  assert.equal(parseBool('1', false), true);
  assert.equal(parseBool('', true), true);
});

test('URL helpers', () => {
  assert.equal(deriveWsUrl('http://localhost:3000/'), 'ws://localhost:3000/ws');
  assert.equal(deriveWsUrl('https://chat.example.com'), 'wss://chat.example.com/ws');
  assert.equal(deriveBaseUrl('wss://chat.example.com/ws?x=1'), 'https://chat.example.com');
  assert.equal(deriveBaseUrl('ws://localhost/ws'), 'http://localhost');
  assert.equal(withQuery('ws://h/ws', { token: 'a b+c', format: undefined }), 'ws://h/ws?token=a%20b%2Bc');
  assert.equal(withQuery('ws://h/ws?x=1', { format: 'msgpack' }), 'ws://h/ws?x=1&format=msgpack');
});

test('buildPlan reads the fixture with laptop defaults', () => {
  const plan = buildPlan({}, fixture(), 'chat');
  assert.equal(plan.baseUrl, 'http://seeded:3000');
  assert.deepEqual(plan.wsUrls, ['ws://seeded:3000/ws']);
  assert.equal(plan.users.length, 12);
  assert.equal(plan.rooms.length, 3);
  assert.deepEqual(plan.rooms[1].members, [1, 4, 7, 10]);
  assert.equal(plan.membershipKnown, true);
  assert.equal(plan.joinViaHttp, false);
  assert.equal(plan.durationS, 30);
  assert.equal(plan.counts.senders, 10);
  assert.equal(plan.counts.receivers, 20);
  assert.equal(plan.summaryDir, 'loadtest');
  assert.ok(plan.counts.churnRate > 0 && plan.counts.reconnectors > 0 && plan.counts.typers > 0);
});

test('env overrides the fixture (compat variables of the original app)', () => {
  const env = {
    TOKENS: 'a,b,c', ROOM_IDS: 'r1,r2', WS_URL: 'ws://node1/ws', MESSAGE_INTERVAL_MS: '50',
    MESSAGES_PER_VU: '20', DURATION: '10s', SENDERS: '3', RECEIVERS: '0',
  };
  assert.equal(envOverridesFixture(env), true);
  const plan = buildPlan(env, null, 'chat');
  assert.deepEqual(plan.users.map((u) => u.token), ['a', 'b', 'c']);
  assert.deepEqual(plan.rooms.map((r) => r.id), ['r1', 'r2']);
  assert.equal(plan.membershipKnown, false);
  assert.equal(plan.joinViaHttp, true, 'unknown membership: join over HTTP first');
  assert.equal(plan.baseUrl, 'http://node1', 'base URL derived from WS_URL');
  assert.deepEqual(plan.wsUrls, ['ws://node1/ws']);
  assert.equal(plan.messageIntervalMs, 50);
  assert.equal(plan.messagesPerVu, 20);
  assert.equal(plan.counts.receivers, 0);
  // Single-value compat names and NODE_URLS.
  const p2 = buildPlan({ ACCESS_TOKEN: 't', ROOM_ID: 'r', NODE_URLS: 'ws://a/ws, ws://b/ws', BASE_URL: 'http://lb/' }, null);
  assert.deepEqual(p2.wsUrls, ['ws://a/ws', 'ws://b/ws']);
  assert.equal(p2.baseUrl, 'http://lb');
  // Tokens from env with rooms from the fixture: membership unknown.
  const p3 = buildPlan({ TOKENS: 'x' }, fixture(), 'chat');
  assert.equal(p3.membershipKnown, false);
  assert.equal(p3.rooms.length, 3);
  assert.equal(p3.baseUrl, 'http://seeded:3000');
  // BASE_URL alone moves the WebSocket URL too.
  assert.deepEqual(buildPlan({ BASE_URL: 'https://remote.example' }, fixture()).wsUrls, ['wss://remote.example/ws']);
  assert.equal(envOverridesFixture({ TOKENS: 'x' }), false);
});

test('buildPlan fails clearly without users or rooms', () => {
  assert.throws(() => buildPlan({}, null), /loadtest:seed/);
  assert.throws(() => buildPlan({ ACCESS_TOKEN: 't' }, null), /no rooms/);
  assert.throws(() => buildPlan({}, '{"users":[]}'), /users\[\] and rooms\[\]/);
  assert.throws(() => buildPlan({ SENDERS: '-1' }, fixture()), /SENDERS/);
  assert.throws(() => buildPlan({ SCENARIOS: 'churn' }, fixture(), 'delivery'), /unknown scenario "churn"/);
});

test('SCENARIOS and ROOMS narrow the run', () => {
  const plan = buildPlan({ SCENARIOS: 'senders,receivers', ROOMS: '2' }, fixture(), 'chat');
  assert.equal(plan.rooms.length, 2);
  assert.deepEqual(Object.keys(buildScenarios(plan)).sort(), ['receivers', 'senders']);
  assert.equal(plan.counts.churnRate, 0);
});

test('fixture members may be user ids instead of indexes', () => {
  const f = JSON.parse(fixture());
  f.rooms[0].members = ['user-3', 'user-6', 'nobody'];
  const plan = buildPlan({}, JSON.stringify(f));
  assert.deepEqual(plan.rooms[0].members, [3, 6]);
});

test('seats: round-robin rooms, members of that room, receivers and senders apart', () => {
  const plan = buildPlan({}, fixture({ users: 30, rooms: 3 }), 'chat');
  for (let i = 0; i < 9; i++) {
    const s = assignSeat(plan, 'receiver', i);
    assert.equal(s.roomIndex, i % 3);
    assert.ok(s.room.members.includes(s.userIndex), 'user is a member of the room');
    assert.equal(s.user.token, `tok-${s.userIndex}`);
  }
  const r0 = assignSeat(plan, 'receiver', 0);
  const s0 = assignSeat(plan, 'sender', 0);
  assert.equal(r0.room.id, s0.room.id);
  assert.notEqual(r0.userIndex, s0.userIndex);
  // With several nodes, the sender and receiver of a room sit on different nodes.
  const multi = buildPlan({ NODE_URLS: 'ws://a/ws,ws://b/ws' }, fixture());
  assert.notEqual(assignSeat(multi, 'receiver', 0).wsUrl, assignSeat(multi, 'sender', 0).wsUrl);
  // Unknown membership: tokens spread round-robin.
  const compat = buildPlan({ TOKENS: 'a,b', ROOM_IDS: 'x,y,z' }, null);
  const c = assignSeat(compat, 'sender', 4);
  assert.equal(c.room.id, 'y');
  assert.ok(['a', 'b'].includes(c.user.token));
});

test('receiversInRoom matches the round-robin assignment', () => {
  const plan = buildPlan({ RECEIVERS: '7' }, fixture({ rooms: 3 }));
  const counted = [0, 0, 0];
  for (let i = 0; i < 7; i++) counted[assignSeat(plan, 'receiver', i).roomIndex] += 1;
  assert.deepEqual([0, 1, 2].map((r) => receiversInRoom(plan, r)), counted);
  assert.deepEqual(counted, [3, 2, 2]);
  assert.equal(roomIndexOf(plan, 'room-2'), 2);
  assert.equal(roomIndexOf(plan, 'nope'), -1);
});

test('scenarios follow the warmup / send / drain timeline', () => {
  const plan = buildPlan({ WARMUP: '5s', DURATION: '30s', DRAIN: '5s', CHURN_RATE: '0.5' }, fixture(), 'chat');
  const sc = buildScenarios(plan);
  assert.deepEqual(Object.keys(sc).sort(), ['churn', 'msgpack', 'receivers', 'reconnect', 'senders', 'typing']);
  assert.equal(sc.receivers.startTime, '0s');
  assert.equal(sc.receivers.executor, 'per-vu-iterations');
  assert.equal(sc.receivers.iterations, 1);
  assert.ok(parseDuration(sc.receivers.maxDuration) >= 40, 'receivers outlive warmup + duration + drain');
  for (const name of ['senders', 'msgpack', 'churn', 'reconnect', 'typing']) {
    assert.equal(sc[name].startTime, '5s', `${name} starts after the warmup`);
    assert.equal(sc[name].exec, name);
  }
  assert.equal(sc.receivers.exec, 'receivers');
  assert.equal(sc.churn.executor, 'constant-arrival-rate');
  assert.ok(Number.isInteger(sc.churn.rate), 'fractional rates are scaled to an integer');
  assert.equal(sc.churn.rate / parseDuration(sc.churn.timeUnit), 0.5);
  assert.ok(sc.churn.maxVUs >= sc.churn.preAllocatedVUs);
  assert.equal(sc.reconnect.executor, 'constant-vus');
  assert.equal(sc.reconnect.duration, '30s');
});

test('delivery profile: only senders and receivers', () => {
  const plan = buildPlan({}, fixture(), 'delivery');
  assert.deepEqual(Object.keys(buildScenarios(plan)).sort(), ['receivers', 'senders']);
  assert.equal(plan.counts.receivers, 50);
  const t = buildThresholds(plan);
  assert.equal(t.reconnect_seam_broken, undefined);
  assert.deepEqual(t.messages_missed, ['count==0']);
});

test('thresholds: ordering counters at zero, latency percentiles, unexpected errors only', () => {
  const plan = buildPlan({ LATENCY_P95_MS: '100', LATENCY_P99_MS: '300', VERIFY_HTTP: '0' }, fixture());
  const t = buildThresholds(plan);
  for (const m of ['seq_gaps', 'duplicates', 'out_of_order', 'duplicate_client_msg_ids', 'protocol_errors',
    'messages_unacked', 'reconnect_seam_broken']) {
    assert.deepEqual(t[m], ['count==0'], m);
  }
  assert.deepEqual(t.delivery_latency, ['p(95)<100', 'p(99)<300']);
  assert.deepEqual(t['error_frames{expected:false}'], ['count==0']);
  assert.equal(t.error_frames, undefined, 'expected error codes alone never fail the run');
  assert.deepEqual(t['error_frames{code:rate_limited}'], ['count>=0']);
  assert.equal(t.messages_missed, undefined, 'VERIFY_HTTP=0 drops the HTTP completeness check');
  assert.ok(t.ws_connect_time[0].startsWith('p(95)<'));
  const o = buildOptions(plan);
  assert.ok(o.summaryTrendStats.includes('p(99)'));
  assert.ok(o.summaryTrendStats.includes('count'));
  assert.ok(!o.systemTags.includes('url'), 'no url tag: ws URLs carry tokens');
  assert.ok(o.systemTags.includes('scenario') && o.systemTags.includes('status'));
});

test('expected error codes combine scenario defaults and EXPECTED_ERROR_CODES', () => {
  const plan = buildPlan({ EXPECTED_ERROR_CODES: 'message_too_long' }, fixture());
  assert.deepEqual(expectedErrorsFor(plan, 'typing'), ['rate_limited', 'message_too_long']);
  assert.deepEqual(expectedErrorsFor(plan, 'senders'), ['message_too_long']);
});

test('describePlan and the env var list', () => {
  const lines = describePlan(buildPlan({}, fixture()), 'k6-chat-ws.js');
  assert.ok(lines.some((l) => l.includes('http://seeded:3000')));
  assert.ok(lines.some((l) => l.includes('k6-chat-ws.js')));
  for (const name of ['BASE_URL', 'WS_URL', 'FIXTURE', 'ACCESS_TOKEN', 'TOKENS', 'ROOM_ID', 'ROOM_IDS',
    'NODE_URLS', 'MESSAGES_PER_VU', 'MESSAGE_INTERVAL_MS', 'DURATION', 'SENDERS', 'RECEIVERS', 'ROOMS', 'SUMMARY_DIR']) {
    assert.ok(ENV_VAR_NAMES.includes(name), name);
  }
});
