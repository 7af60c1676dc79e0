// Runs the real k6 scripts and lib/k6-session.js against simulated k6 modules and a fake
// pgchat server (see testing/sim.mjs): every role, the reconnect/resume paths, fault
// injection (gaps, duplicates, history holes, server closes, held acks, bad frames) and the
// metrics the thresholds read. k6 cannot be installed here; this is what keeps the k6 side
// honest.

import test from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'node:module';

import { parseContent } from './chat-protocol.js';
import { FakeChatServer, START, setExec, sim, useServer, withVirtualTime } from './testing/sim.mjs';

register('./testing/k6-hooks.mjs', import.meta.url);

const USERS = Array.from({ length: 12 }, (_, i) => ({
  username: `lt_user_${i}`, email: `u${i}@x`, password: 'p', user_id: `user-${i}`,
  accessToken: `tok-${i}`, refreshToken: `ref-${i}`,
}));
const FIXTURE = JSON.stringify({
  baseUrl: 'http://sim:3000',
  wsUrl: 'ws://sim:3000/ws',
  users: USERS,
  rooms: [0, 1, 2].map((k) => ({ id: `room-${k}`, name: `lt-room-${k}`, members: [k, k + 3, k + 6, k + 9] })),
});

const BASE_ENV = { WARMUP: '1s', DURATION: '3s', DRAIN: '1s', RECEIVERS: '3', SENDERS: '3', MESSAGE_INTERVAL_MS: '100' };

let loads = 0;

/** Imports a fresh instance of a k6 script (new init context) with __ENV and open(). */
async function loadScript(name, env, fixtureText = FIXTURE) {
  const opened = [];
  globalThis.__ENV = { ...env };
  globalThis.open = (path) => {
    opened.push(path);
    if (fixtureText === null) throw new Error(`open ${path}: no such file or directory`);
    return fixtureText;
  };
  const mod = await import(`../${name}?load=${++loads}`);
  return { mod, opened };
}

/** Runs one VU iteration in virtual time; its console output goes to sim.logs. */
function runVu(fn, exec) {
  setExec({ startTime: sim.now, ...exec });
  const saved = { log: console.log, warn: console.warn };
  console.log = (...a) => sim.logs.push(a.join(' '));
  console.warn = (...a) => sim.logs.push(a.join(' '));
  try {
    return withVirtualTime(fn);
  } finally {
    console.log = saved.log;
    console.warn = saved.warn;
  }
}

function fresh(serverOpts) {
  sim.reset();
  return useServer(new FakeChatServer(serverOpts));
}

function tagged(name, where) {
  return sim.sum(name, where);
}

// ------------------------------------------------------------------ script shape

test('both scripts expose options, exec functions and handleSummary', async () => {
  for (const [name, profileScenarios] of [
    ['k6-chat-ws.js', ['churn', 'msgpack', 'receivers', 'reconnect', 'senders', 'typing']],
    ['k6-message-delivery.js', ['receivers', 'senders']],
  ]) {
    const { mod, opened } = await loadScript(name, {});
    assert.deepEqual(opened, ['./fixture.json'], 'fixture read through open() in the init context');
    assert.deepEqual(Object.keys(mod.options.scenarios).sort(), profileScenarios);
    for (const sc of Object.values(mod.options.scenarios)) {
      assert.equal(typeof mod[sc.exec], 'function', `${name} exports ${sc.exec}`);
    }
    assert.equal(typeof mod.handleSummary, 'function');
    assert.equal(typeof mod.setup, 'function');
    assert.deepEqual(mod.options.thresholds.seq_gaps, ['count==0']);
  }
});

test('missing fixture gives an actionable error; env tokens skip the fixture entirely', async () => {
  await assert.rejects(loadScript('k6-chat-ws.js', {}, null), /loadtest:seed/);
  const { mod, opened } = await loadScript('k6-chat-ws.js', { ACCESS_TOKEN: 'tok-1', ROOM_ID: 'room-x' }, null);
  assert.deepEqual(opened, []);
  assert.ok(mod.options.scenarios.senders);
});

test('setup() aborts the test when the server is not healthy', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', BASE_ENV);
  fresh({ faults: { unhealthy: true } });
  assert.throws(() => runVu(() => mod.setup()), /server not healthy at http:\/\/sim:3000\/health/);
  fresh({});
  assert.ok(runVu(() => mod.setup()).startedAt);
});

test('handleSummary writes json/txt under SUMMARY_DIR and text to stdout', async () => {
  const { mod } = await loadScript('k6-message-delivery.js', { SUMMARY_DIR: 'out/dir' });
  const data = { state: { testRunDurationMs: 1000 }, metrics: { seq_gaps: { type: 'counter', values: { count: 0 }, thresholds: { 'count==0': { ok: true } } } } };
  const out = mod.handleSummary(data);
  assert.deepEqual(Object.keys(out).sort(), ['out/dir/summary.json', 'out/dir/summary.txt', 'stdout']);
  assert.match(out.stdout, /k6-message-delivery\.js/);
  assert.match(out.stdout, /Result: PASS/);
  assert.equal(JSON.parse(out['out/dir/summary.json']).pgchat.script, 'k6-message-delivery.js');
});

// ------------------------------------------------------------------ receivers

test('receiver: stays through warmup+duration+drain, gets every message, verifies over HTTP', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', BASE_ENV);
  const server = fresh({ trafficMs: 100, trafficUntil: START + 4000 });
  const start = sim.now;
  runVu(() => mod.receivers(), { scenario: 'receivers', iterationInTest: 1 });
  assert.ok(sim.now >= start + 5000 && sim.now < start + 5200, 'closed at the end of the drain');
  assert.equal(server.rooms.get('room-1').seq, 40);
  assert.equal(sim.sum('delivered_messages'), 40);
  assert.equal(sim.sum('messages_received'), 40);
  assert.equal(sim.count('delivery_latency'), 40);
  assert.ok(sim.values('delivery_latency').every((v) => v >= 5 && v < 20));
  for (const m of ['seq_gaps', 'duplicates', 'out_of_order', 'protocol_errors', 'messages_missed', 'error_frames']) {
    assert.equal(sim.sum(m), 0, m);
  }
  assert.equal(sim.sum('receivers_checked'), 1);
  assert.deepEqual(sim.values('ws_connect_success'), [1]);
  assert.equal(sim.count('join_latency'), 1);
  assert.deepEqual(sim.failedChecks(), []);
  // It joined room-1 (index 1) as a member of that room, without last_seen_seq.
  const join = server.frames.find((f) => f.event === 'join_room');
  assert.deepEqual(join.data, { room_id: 'room-1' });
  assert.ok([1, 4, 7, 10].map((i) => `user-${i}`).includes(server.connections[0].userId));
  assert.ok(sim.httpCalls.some((c) => c.url === 'http://sim:3000/rooms/room-1/messages?limit=1'));
  assert.deepEqual(server.violations, []);
});

test('receiver: without the ext last_seq the first message sets the baseline', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', BASE_ENV);
  fresh({ trafficMs: 100, trafficUntil: START + 4000, faults: { omitLastSeq: true } });
  runVu(() => mod.receivers(), { scenario: 'receivers', iterationInTest: 0 });
  assert.equal(sim.sum('delivered_messages'), 40);
  assert.equal(sim.sum('seq_gaps') + sim.sum('messages_missed'), 0);
  assert.equal(sim.sum('receivers_checked'), 1);
});

test('receiver: a dropped live message is a gap and a miss; a repeated one a duplicate', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', BASE_ENV);
  fresh({ trafficMs: 100, trafficUntil: START + 4000, faults: { dropLive: new Set([5]), duplicateLive: new Set([9]) } });
  runVu(() => mod.receivers(), { scenario: 'receivers', iterationInTest: 0 });
  assert.equal(sim.sum('seq_gaps'), 1);
  assert.equal(sim.sum('duplicates'), 1);
  assert.equal(sim.sum('messages_missed'), 1);
  assert.equal(sim.sum('receivers_incomplete'), 1);
  assert.equal(sim.sum('delivered_messages'), 39);
  assert.ok(sim.logs.some((l) => l.includes('saw up to seq 40 of 40, 1 missed')));
});

test('receiver: resumable server close -> reconnect with last_seen_seq, history fills the hole', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', BASE_ENV);
  const server = fresh({ trafficMs: 100, trafficUntil: START + 4000, faults: { closeOnce: { afterMs: 1500, code: 4001 } } });
  runVu(() => mod.receivers(), { scenario: 'receivers', iterationInTest: 2 });
  assert.equal(tagged('ws_server_closes', { code: '4001' }), 1);
  assert.equal(sim.sum('ws_reconnects'), 1);
  const joins = server.frames.filter((f) => f.event === 'join_room');
  assert.equal(joins.length, 2);
  assert.equal(joins[1].data.last_seen_seq, 14, 'resumed after the last seq it saw');
  assert.ok(sim.sum('history_messages') >= 2, 'messages sent while away came as history');
  assert.equal(sim.sum('reconnect_seams_checked'), 1);
  assert.equal(sim.sum('reconnect_seam_broken'), 0);
  assert.equal(sim.sum('seq_gaps') + sim.sum('duplicates') + sim.sum('messages_missed'), 0);
  assert.equal(sim.sum('delivered_messages'), 40);
  assert.ok(sim.count('delivery_latency') < 40, 'history is not counted as delivery latency');
});

test('receiver: a history hole at the seam is caught', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', BASE_ENV);
  fresh({ trafficMs: 100, trafficUntil: START + 4000, faults: { closeOnce: { afterMs: 1500, code: 4001 }, historyDrop: new Set([15]) } });
  runVu(() => mod.receivers(), { scenario: 'receivers', iterationInTest: 2 });
  assert.equal(sim.sum('seq_gaps'), 1);
  assert.equal(sim.sum('reconnect_seam_broken'), 1);
  assert.equal(sim.sum('messages_missed'), 1);
});

test('receiver: a do-not-reconnect close code ends the session and shows as missed messages', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', BASE_ENV);
  fresh({ trafficMs: 100, trafficUntil: START + 4000, faults: { closeOnce: { afterMs: 1000, code: 4500 } } });
  runVu(() => mod.receivers(), { scenario: 'receivers', iterationInTest: 0 });
  assert.equal(sim.sum('ws_reconnects'), 0);
  assert.equal(tagged('ws_server_closes', { code: '4500' }), 1);
  // The close at t=1000 comes before the tick that commits seq 10: seqs 10..40 are missing,
  // counted after the drain although the session ended early.
  assert.equal(sim.sum('messages_missed'), 31);
});

test('receiver: frames breaking the contract are protocol errors', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', BASE_ENV);
  fresh({ trafficMs: 100, trafficUntil: START + 4000, faults: { stringIdSeq: 3 } });
  runVu(() => mod.receivers(), { scenario: 'receivers', iterationInTest: 0 });
  assert.equal(tagged('protocol_errors', { reason: 'message_id_not_number' }), 1);
  assert.equal(sim.sum('seq_gaps'), 1, 'the rejected message leaves a hole');
});

test('receiver: a refused token fails the connect metrics and gives up after retries', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', { ...BASE_ENV, TOKENS: 'bad-token', ROOM_IDS: 'room-0' }, null);
  fresh({});
  runVu(() => mod.receivers(), { scenario: 'receivers', iterationInTest: 0 });
  const tries = sim.values('ws_connect_success');
  assert.ok(tries.length >= 3 && tries.length <= 5, 'retried with backoff, bounded by time and count');
  assert.ok(tries.every((v) => v === 0));
  assert.equal(sim.failedChecks().filter((c) => c.name === 'ws handshake is 101').length, tries.length);
  assert.equal(sim.count('receivers_checked'), 0);
  assert.ok(sim.now >= START + 5000, 'still ends with the drain');
});

test('receiver: not_a_member on join is an unexpected error frame', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', BASE_ENV);
  const server = fresh({ faults: { notMember: true } });
  runVu(() => mod.receivers(), { scenario: 'receivers', iterationInTest: 0 });
  assert.equal(tagged('error_frames', { code: 'not_a_member', expected: 'false' }), 1);
  assert.equal(server.connections.length, 1, 'no reconnect loop on a refused join');
  assert.equal(server.connections[0].closedBy, 'client');
  assert.ok(server.connections[0].closedAt < START + 100, 'closed at once instead of idling until the join timeout');
  assert.equal(sim.count('receivers_checked'), 0, 'never joined: nothing to verify');
});

test('compat env: tokens and rooms from env, membership ensured over HTTP first', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', { ...BASE_ENV, TOKENS: 'tok-1,tok-2', ROOM_IDS: 'room-x', WS_URL: 'ws://node-a:3000/ws' }, null);
  const server = fresh({ trafficMs: 200, trafficUntil: START + 4000 });
  runVu(() => mod.receivers(), { scenario: 'receivers', iterationInTest: 0 });
  const first = sim.httpCalls[0];
  assert.equal(first.method, 'POST');
  assert.equal(first.url, 'http://node-a:3000/rooms/room-x/join');
  assert.match(first.params.headers.Authorization, /^Bearer tok-[12]$/);
  assert.match(server.connections[0].url, /^ws:\/\/node-a:3000\/ws\?token=tok-[12]$/);
  assert.equal(sim.sum('delivered_messages'), 20);
});

// ------------------------------------------------------------------ senders

test('sender: sends through DURATION, every message acked, expected deliveries counted', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', { ...BASE_ENV, DURATION: '2s', RECEIVERS: '7' });
  const server = fresh({});
  const start = sim.now;
  runVu(() => mod.senders(), { scenario: 'senders', iterationInTest: 0, vu: 7 });
  assert.equal(sim.sum('messages_sent'), 19);
  assert.equal(sim.sum('messages_acked'), 19);
  assert.equal(sim.sum('messages_unacked'), 0);
  assert.equal(sim.sum('expected_deliveries'), 19 * 3, 'room-0 has receivers 0, 3 and 6 of 7');
  assert.equal(sim.count('ack_latency'), 19);
  assert.ok(sim.now <= start + 2100, 'closed as soon as the last ack arrived');
  const sends = server.frames.filter((f) => f.event === 'send_message');
  assert.equal(sends.length, 19);
  const ids = new Set(sends.map((f) => f.data.client_msg_id));
  assert.equal(ids.size, 19);
  for (const f of sends) {
    assert.ok(f.data.client_msg_id.length <= 64);
    assert.match(f.data.client_msg_id, /^lt-[a-z0-9]+-7-0-\d+$/);
    const p = parseContent(f.data.content);
    assert.equal(p.vu, '7');
    assert.ok(p.sentAt >= start);
  }
  // The sender's own echoes are tracked for order but not counted as deliveries.
  assert.equal(sim.sum('delivered_messages'), 0);
  assert.equal(sim.sum('seq_gaps') + sim.sum('duplicates') + sim.sum('protocol_errors'), 0);
  assert.deepEqual(server.violations, []);
});

test('sender: MESSAGES_PER_VU caps the sends (compat)', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', { ...BASE_ENV, MESSAGES_PER_VU: '5', VERBOSE: '1' });
  fresh({});
  const start = sim.now;
  runVu(() => mod.senders(), { scenario: 'senders', iterationInTest: 1 });
  assert.equal(sim.sum('messages_sent'), 5);
  assert.equal(sim.sum('messages_acked'), 5);
  assert.ok(sim.now < start + 1000);
  assert.deepEqual(sim.logs, ['[sender 1 room lt-room-1] sent 5, acked 5'], 'VERBOSE logs per VU');
});

test('sender: after a server close it resumes and resends unacked messages with the same client_msg_id', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', { ...BASE_ENV, DURATION: '2s' });
  const server = fresh({ faults: { closeOnce: { afterMs: 550, code: 4001 }, holdAcksAfterMs: 420, holdAcksOnConn: 0 } });
  runVu(() => mod.senders(), { scenario: 'senders', iterationInTest: 0 });
  assert.equal(sim.sum('ws_reconnects'), 1);
  assert.equal(sim.sum('messages_resent'), 1);
  assert.equal(sim.sum('messages_unacked'), 0);
  assert.equal(sim.sum('messages_acked'), sim.sum('messages_sent'));
  assert.equal(sim.sum('duplicate_client_msg_ids'), 0);
  const room = server.rooms.get('room-0');
  assert.equal(room.seq, sim.sum('messages_sent'), 'the resend was stored once');
  const joins = server.frames.filter((f) => f.event === 'join_room');
  assert.equal(typeof joins[1].data.last_seen_seq, 'number');
  assert.equal(sim.sum('seq_gaps') + sim.sum('duplicates'), 0);
});

test('sender: acks that never come are counted as unacked', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', { ...BASE_ENV, DURATION: '1s', DRAIN: '1s' });
  fresh({ faults: { holdAcksAfterMs: 500 } });
  const start = sim.now;
  runVu(() => mod.senders(), { scenario: 'senders', iterationInTest: 0 });
  assert.equal(sim.sum('messages_sent'), 9);
  assert.equal(sim.sum('messages_unacked'), 5);
  assert.ok(sim.now >= start + 2000, 'waited the drain for the missing acks');
});

test('msgpack client: binary frames both ways, same bookkeeping', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', { ...BASE_ENV, DURATION: '2s' });
  const server = fresh({ trafficMs: 250, trafficUntil: START + 2000 });
  runVu(() => mod.msgpack(), { scenario: 'msgpack', iterationInTest: 0 });
  assert.match(server.connections[0].url, /[?&]format=msgpack/);
  assert.ok(server.frames.length > 10);
  assert.ok(server.frames.every((f) => f.binary === true), 'client frames are binary');
  assert.deepEqual(server.violations, []);
  assert.equal(sim.sum('messages_acked'), 19);
  assert.equal(sim.sum('protocol_errors'), 0);
  assert.ok(sim.count('delivery_latency') > 19, 'echoes and background traffic decoded from msgpack');
  assert.equal(sim.sum('seq_gaps') + sim.sum('duplicates'), 0);
});

// ------------------------------------------------------------------ churn, reconnect storm, typing

test('churn: connect, join, hold, leave, disconnect', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', { ...BASE_ENV, CHURN_HOLD_MS: '500' });
  const server = fresh({ trafficMs: 100 });
  const start = sim.now;
  runVu(() => mod.churn(), { scenario: 'churn', iterationInTest: 0 });
  const events = server.frames.map((f) => f.event);
  assert.deepEqual(events, ['join_room', 'leave_room']);
  assert.equal(server.connections[0].closedBy, 'client');
  assert.equal(server.connections[0].closeCode, 1000);
  assert.ok(sim.now >= start + 500 && sim.now < start + 800);
  assert.equal(sim.sum('seq_gaps') + sim.sum('protocol_errors'), 0);
});

test('reconnect storm: drops at the period boundary and resumes with a clean seam', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', { ...BASE_ENV, RECONNECT_PERIOD_MS: '1000' });
  const server = fresh({ trafficMs: 100 });
  for (let i = 0; i < 4; i++) {
    runVu(() => mod.reconnect(), { scenario: 'reconnect', iterationInTest: i, vu: 3, iteration: i });
    assert.ok(sim.now % 1000 < 60, 'socket closed at the shared boundary');
    sim.advance(150); // reconnect latency: messages keep flowing meanwhile
  }
  const joins = server.frames.filter((f) => f.event === 'join_room');
  assert.equal(joins.length, 4);
  assert.equal(joins[0].data.last_seen_seq, undefined);
  for (const j of joins.slice(1)) assert.equal(typeof j.data.last_seen_seq, 'number');
  assert.equal(sim.sum('reconnect_seams_checked'), 3);
  assert.equal(sim.sum('reconnect_seam_broken'), 0);
  assert.ok(sim.sum('history_messages') >= 3);
  assert.equal(sim.sum('ws_reconnects'), 3);
  assert.equal(sim.sum('seq_gaps') + sim.sum('duplicates'), 0);

  // Now the server loses one message of the history: the next seam is broken.
  const room = server.rooms.get(joins[0].data.room_id);
  server.faults.historyDrop = new Set([room.seq + 1]);
  runVu(() => mod.reconnect(), { scenario: 'reconnect', iterationInTest: 4, vu: 3, iteration: 4 });
  assert.equal(sim.sum('reconnect_seam_broken'), 1);
});

test('typing storm: rate_limited errors are expected, typing frames counted', async () => {
  const { mod } = await loadScript('k6-chat-ws.js', { ...BASE_ENV, DURATION: '1s', TYPING_INTERVAL_MS: '100' });
  fresh({ faults: { typingRateLimitEvery: 3 } });
  runVu(() => mod.typing(), { scenario: 'typing', iterationInTest: 0 });
  assert.equal(sim.sum('typing_sent'), 9);
  assert.equal(tagged('error_frames', { code: 'rate_limited', expected: 'true' }), 3);
  assert.equal(tagged('error_frames', { expected: 'false' }), 0);
  assert.equal(sim.sum('typing_received'), 6);
});
