import test from 'node:test';
import assert from 'node:assert/strict';

import { pack } from 'msgpackr';

import {
  AckTracker, LatencyStats, SeqTracker, buildJoinRoom, buildSendMessage, buildSummaryOutputs,
  deliveryLatency, deliveryRatio, encodeFrame, isResumableClose, joinRoomFrame, leaveRoomFrame,
  makeClientMsgId, makeContent, messagesOf, parseContent, parseServerFrame, percentile,
  percentiles, renderSummary, sendMessageFrame, summaryPath, thresholdResults, typingFrame,
  validateMessage,
} from './chat-protocol.js';
import { decode } from './msgpack.js';

const ROOM = '0190c8a0-0000-7000-8000-000000000001';

function msg(seq, extra = {}) {
  return {
    id: 1000 + seq,
    seq,
    room_id: ROOM,
    user_id: '0190c8a0-0000-7000-8000-0000000000aa',
    username: 'lt_user_0001',
    content: 'hello ' + seq,
    created_at: '2025-01-01T00:00:00.000Z',
    ...extra,
  };
}

// ------------------------------------------------------------------ frames

test('client frames are the documented JSON envelopes', () => {
  assert.deepEqual(JSON.parse(joinRoomFrame(ROOM)), { event: 'join_room', data: { room_id: ROOM } });
  assert.deepEqual(JSON.parse(joinRoomFrame(ROOM, 41)), {
    event: 'join_room', data: { room_id: ROOM, last_seen_seq: 41 },
  });
  assert.deepEqual(JSON.parse(joinRoomFrame(ROOM, 0)).data.last_seen_seq, 0);
  assert.deepEqual(JSON.parse(leaveRoomFrame(ROOM)), { event: 'leave_room', data: { room_id: ROOM } });
  assert.deepEqual(JSON.parse(sendMessageFrame(ROOM, 'hi', 'c-1')), {
    event: 'send_message', data: { room_id: ROOM, content: 'hi', client_msg_id: 'c-1' },
  });
  assert.deepEqual(JSON.parse(sendMessageFrame(ROOM, 'hi')), {
    event: 'send_message', data: { room_id: ROOM, content: 'hi' },
  });
  assert.deepEqual(JSON.parse(typingFrame(ROOM, true)), { event: 'typing_start', data: { room_id: ROOM } });
  assert.deepEqual(JSON.parse(typingFrame(ROOM, false)), { event: 'typing_stop', data: { room_id: ROOM } });
});

test('client frame builders reject what the server would refuse', () => {
  assert.throws(() => buildJoinRoom(''), TypeError);
  assert.throws(() => buildJoinRoom(ROOM, -1), TypeError);
  assert.throws(() => buildJoinRoom(ROOM, 1.5), TypeError);
  assert.throws(() => buildSendMessage(ROOM, 42), TypeError);
  assert.throws(() => buildSendMessage(ROOM, 'x', 'a'.repeat(65)), TypeError);
  assert.doesNotThrow(() => buildSendMessage(ROOM, 'x', 'a'.repeat(64)));
});

test('encodeFrame produces msgpack that decodes to the same envelope', () => {
  const f = buildSendMessage(ROOM, 'héllo 👋', 'id-1');
  const bin = encodeFrame(f, 'msgpack');
  assert.ok(bin instanceof Uint8Array);
  assert.deepEqual(decode(bin), f);
  assert.equal(encodeFrame(f, 'json'), JSON.stringify(f));
});

test('parseServerFrame accepts JSON text, msgpack bytes and decoded objects', () => {
  const env = { event: 'new_message', data: msg(1) };
  for (const raw of [JSON.stringify(env), new Uint8Array(pack(env)), env]) {
    const f = parseServerFrame(raw);
    assert.equal(f.ok, true, JSON.stringify(f));
    assert.equal(f.event, 'new_message');
    assert.equal(f.data.seq, 1);
  }
  const ab = pack(env);
  const f2 = parseServerFrame(ab.buffer.slice(ab.byteOffset, ab.byteOffset + ab.byteLength));
  assert.equal(f2.ok, true);
});

test('parseServerFrame rejects malformed frames with a reason', () => {
  assert.equal(parseServerFrame('{nope').reason, 'invalid_json');
  assert.equal(parseServerFrame(new Uint8Array([0xc1])).reason, 'invalid_msgpack');
  assert.equal(parseServerFrame('[1,2]').reason, 'envelope_not_object');
  assert.equal(parseServerFrame('{"data":{}}').reason, 'envelope_without_event');
  // id/seq as strings (a bigint serialised as text) are rejected, like the original k6 scripts did.
  assert.equal(parseServerFrame({ event: 'new_message', data: msg(1, { seq: '1' }) }).reason, 'message_seq_not_number');
  assert.equal(parseServerFrame({ event: 'new_message', data: msg(1, { id: '7' }) }).reason, 'message_id_not_number');
  assert.equal(parseServerFrame({ event: 'new_message_batch', data: {} }).reason, 'batch_not_array');
  assert.equal(parseServerFrame({ event: 'new_message_batch', data: [msg(2), msg(1)] }).reason, 'batch_not_ascending');
  assert.equal(parseServerFrame({ event: 'new_message_batch', data: [msg(1), msg(2, { room_id: 'other' })] }).reason,
    'batch_mixed_rooms');
  assert.equal(parseServerFrame({ event: 'history', data: { next_cursor: null } }).reason, 'history_without_messages');
  assert.equal(parseServerFrame({ event: 'joined_room', data: { room_id: ROOM, last_seq: '3' } }).reason,
    'joined_room_last_seq_not_number');
  assert.equal(parseServerFrame({ event: 'message_ack', data: { room_id: ROOM } }).reason, 'message_ack_invalid');
  // Unknown events pass: the protocol may grow.
  assert.equal(parseServerFrame({ event: 'something_new', data: 1 }).ok, true);
});

test('validateMessage checks every field of the message object', () => {
  assert.equal(validateMessage(msg(1)), null);
  assert.equal(validateMessage(msg(1, { client_msg_id: 'x' })), null);
  assert.equal(validateMessage(msg(1, { client_msg_id: 5 })), 'message_client_msg_id_invalid');
  assert.equal(validateMessage(msg(1, { username: null })), 'message_username_invalid');
  assert.equal(validateMessage(msg(1, { content: undefined })), 'message_content_invalid');
  assert.equal(validateMessage(msg(1, { created_at: 5 })), 'message_created_at_invalid');
  assert.equal(validateMessage(msg(0)), 'message_seq_not_number');
  assert.equal(validateMessage(null), 'message_not_object');
});

test('messagesOf extracts messages and their source', () => {
  const live = messagesOf(parseServerFrame({ event: 'new_message', data: msg(3) }));
  assert.equal(live.source, 'live');
  assert.equal(live.messages.length, 1);
  const batch = messagesOf(parseServerFrame({ event: 'new_message_batch', data: [msg(1), msg(2)] }));
  assert.deepEqual(batch.messages.map((m) => m.seq), [1, 2]);
  const hist = messagesOf(parseServerFrame({
    event: 'history', data: { messages: [msg(4)], next_cursor: null, has_more: true },
  }));
  assert.equal(hist.source, 'history');
  assert.equal(hist.hasMore, true);
  assert.equal(messagesOf(parseServerFrame({ event: 'typing', data: {} })), null);
});

test('isResumableClose follows the documented close-code ranges', () => {
  assert.equal(isResumableClose(4000), true);
  assert.equal(isResumableClose(4499), true);
  assert.equal(isResumableClose(4500), false);
  assert.equal(isResumableClose(4999), false);
  assert.equal(isResumableClose(1006), true);
  assert.equal(isResumableClose(1001), true);
  assert.equal(isResumableClose(1000), false);
  assert.equal(isResumableClose(1008), false);
});

// ------------------------------------------------------------------ seq tracking

test('SeqTracker: in-order stream is clean', () => {
  const t = new SeqTracker();
  t.noteJoin(ROOM);
  t.noteJoined(ROOM, 10);
  const r = t.observeAll([msg(11), msg(12), msg(13)], 'live');
  assert.equal(r.ok, 3);
  assert.deepEqual({ ...t.totals }, {
    received: 3, gaps: 0, gapEvents: 0, duplicates: 0, outOfOrder: 0, history: 0, clientMsgIdDupes: 0,
  });
  assert.equal(t.lastSeen(ROOM), 13);
});

test('SeqTracker: joined_room last_seq makes the first live message checkable', () => {
  const t = new SeqTracker();
  t.noteJoin(ROOM);
  t.noteJoined(ROOM, 10);
  const r = t.observe(msg(12), 'live');
  assert.equal(r.status, 'gap');
  assert.equal(r.missing, 1);
  // Without last_seq the first message only sets the baseline.
  const t2 = new SeqTracker();
  t2.noteJoin(ROOM);
  t2.noteJoined(ROOM, undefined);
  assert.equal(t2.observe(msg(12), 'live').status, 'first');
});

test('SeqTracker: gaps count the missing seqs; a late one is out-of-order, a repeat is a duplicate', () => {
  const t = new SeqTracker();
  t.noteJoin(ROOM);
  t.noteJoined(ROOM, 0);
  assert.equal(t.observe(msg(1), 'live').status, 'ok');
  const g = t.observe(msg(5), 'live');
  assert.deepEqual([g.status, g.missing], ['gap', 3]);
  assert.equal(t.outstanding(ROOM), 3);
  assert.equal(t.observe(msg(3), 'live').status, 'out_of_order');
  assert.equal(t.outstanding(ROOM), 2);
  assert.equal(t.observe(msg(3), 'live').status, 'duplicate');
  assert.equal(t.observe(msg(5), 'live').status, 'duplicate');
  assert.equal(t.observe(msg(1), 'live').status, 'duplicate');
  assert.equal(t.observe(msg(6), 'live').status, 'ok');
  assert.equal(t.totals.gaps, 3);
  assert.equal(t.totals.gapEvents, 1);
  assert.equal(t.totals.outOfOrder, 1);
  assert.equal(t.totals.duplicates, 3);
  assert.equal(t.totals.received, 4); // 1, 5, 3, 6
  assert.deepEqual(t.completeness(ROOM, 8), { last: 6, newest: 8, missed: 4, complete: false });
  // Splitting a range in the middle keeps both halves outstanding.
  assert.equal(t.observe(msg(2), 'live').status, 'out_of_order');
  assert.equal(t.observe(msg(4), 'live').status, 'out_of_order');
  assert.equal(t.outstanding(ROOM), 0);
});

test('SeqTracker: rooms are tracked independently', () => {
  const t = new SeqTracker();
  const other = 'room-b';
  t.noteJoin(ROOM); t.noteJoined(ROOM, 0);
  t.noteJoin(other); t.noteJoined(other, 100);
  assert.equal(t.observe(msg(1), 'live').status, 'ok');
  assert.equal(t.observe(msg(101, { room_id: other }), 'live').status, 'ok');
  assert.equal(t.observe(msg(2), 'live').status, 'ok');
  assert.equal(t.lastSeen(other), 101);
  t.forget(other);
  assert.equal(t.lastSeen(other), undefined);
});

test('SeqTracker: reconnect resumes from last_seen_seq and checks the history/live seam', () => {
  const t = new SeqTracker();
  t.noteJoin(ROOM);
  t.noteJoined(ROOM, 20);
  t.observeAll([msg(21), msg(22)], 'live');
  // Disconnect; on reconnect the client sends join_room with last_seen_seq = 22.
  const lastSeen = t.lastSeen(ROOM);
  assert.equal(lastSeen, 22);
  assert.deepEqual(buildJoinRoom(ROOM, lastSeen).data, { room_id: ROOM, last_seen_seq: 22 });
  t.noteJoin(ROOM, lastSeen);
  t.noteJoined(ROOM, 25);
  const h = t.observeAll([msg(23), msg(24), msg(25)], 'history');
  assert.equal(h.ok, 3);
  assert.equal(t.takeSeamResult(ROOM), null, 'seam stays open until the first live message');
  t.observe(msg(26), 'live');
  const seam = t.takeSeamResult(ROOM);
  assert.deepEqual(seam, {
    from: 22, history: 3, firstLiveSeq: 26, gaps: 0, duplicates: 0, outOfOrder: 0, ok: true,
  });
  assert.equal(t.takeSeamResult(ROOM), null, 'reported once');
  assert.equal(t.totals.history, 3);
});

test('SeqTracker: a gap or duplicate at the seam breaks it', () => {
  // History ends at 24 but live starts at 26: 25 fell through the seam.
  const t = new SeqTracker();
  t.noteJoin(ROOM, 22);
  t.observeAll([msg(23), msg(24)], 'history');
  t.observe(msg(26), 'live');
  const gap = t.takeSeamResult(ROOM);
  assert.equal(gap.ok, false);
  assert.equal(gap.gaps, 1);

  // Live repeats the last history message.
  const t2 = new SeqTracker();
  t2.noteJoin(ROOM, 22);
  t2.observeAll([msg(23), msg(24)], 'history');
  t2.observe(msg(24), 'live');
  const dup = t2.takeSeamResult(ROOM);
  assert.equal(dup.ok, false);
  assert.equal(dup.duplicates, 1);

  // History that replays messages at or below last_seen_seq is a duplicate too.
  const t3 = new SeqTracker();
  t3.noteJoin(ROOM, 22);
  t3.observeAll([msg(22), msg(23)], 'history');
  const forced = t3.takeSeamResult(ROOM, true);
  assert.equal(forced.ok, false);
  assert.equal(forced.firstLiveSeq, null);
});

test('SeqTracker: the same client_msg_id stored under two seqs is flagged', () => {
  const t = new SeqTracker();
  t.noteJoin(ROOM);
  t.noteJoined(ROOM, 0);
  assert.equal(t.observe(msg(1, { client_msg_id: 'a' }), 'live').clientMsgIdDupe, false);
  assert.equal(t.observe(msg(2, { client_msg_id: 'a' }), 'live').clientMsgIdDupe, true);
  assert.equal(t.observe(msg(3, { client_msg_id: 'b' }), 'live').clientMsgIdDupe, false);
  assert.equal(t.totals.clientMsgIdDupes, 1);
});

test('SeqTracker: completeness is null without a baseline', () => {
  const t = new SeqTracker();
  t.noteJoin(ROOM);
  t.noteJoined(ROOM, undefined);
  assert.equal(t.completeness(ROOM, 5), null);
  assert.equal(t.completeness('unknown-room', 5), null);
  t.noteJoined(ROOM, 5);
  assert.deepEqual(t.completeness(ROOM, 5), { last: 5, newest: 5, missed: 0, complete: true });
});

// ------------------------------------------------------------------ latency

test('content carries the send time; receivers compute latency from it', () => {
  const c = makeContent(1700000000123, 7, 42);
  assert.equal(c, 'lt:1700000000123:7:42');
  assert.deepEqual(parseContent(c), { sentAt: 1700000000123, vu: '7', n: 42 });
  assert.equal(deliveryLatency({ content: c }, 1700000000223), 100);
  assert.equal(deliveryLatency({ content: c }, 1700000000000), 0, 'clock skew is clamped');
  assert.equal(deliveryLatency({ content: 'hello' }, 1), null);
  assert.equal(parseContent('lt:abc:1:2'), null);
  assert.equal(parseContent('lt::1:2'), null);
  const padded = makeContent(1, 2, 3, 100);
  assert.equal(padded.length, 100);
  assert.deepEqual(parseContent(padded), { sentAt: 1, vu: '2', n: 3 });
});

test('makeClientMsgId stays within the 64-char limit', () => {
  assert.equal(makeClientMsgId(3, 0, 9), 'lt-3-0-9');
  assert.equal(makeClientMsgId('x'.repeat(100), 0, 1).length, 64);
});

test('AckTracker matches acks by client_msg_id and measures ack latency', () => {
  const a = new AckTracker();
  a.sent('m1', ROOM, 1000, 'c1');
  a.sent('m2', ROOM, 1010, 'c2');
  assert.equal(a.pendingCount(), 2);
  const r = a.ack({ room_id: ROOM, seq: 5, id: 9, client_msg_id: 'm2' }, 1050);
  assert.deepEqual(r, { matched: true, first: true, clientMsgId: 'm2', latency: 40 });
  assert.equal(a.pendingCount(), 1);
  // A resend of m2 acked again with the same seq is fine; with another seq it is not.
  assert.equal(a.ack({ room_id: ROOM, seq: 5, client_msg_id: 'm2' }, 1060).first, false);
  assert.equal(a.seqMismatches, 0);
  a.ack({ room_id: ROOM, seq: 6, client_msg_id: 'm2' }, 1070);
  assert.equal(a.seqMismatches, 1);
  assert.equal(a.duplicateAcks, 2);
  // Unknown ids are unmatched.
  assert.equal(a.ack({ room_id: ROOM, seq: 7, client_msg_id: 'zz' }, 1).matched, false);
  assert.equal(a.unmatchedAcks, 1);
  assert.deepEqual(a.pendingList().map((p) => p.clientMsgId), ['m1']);
});

test('AckTracker falls back to the oldest pending send of the room without client_msg_id', () => {
  const a = new AckTracker();
  a.sent('m1', 'other', 0, 'x');
  a.sent('m2', ROOM, 100, 'y');
  a.sent('m3', ROOM, 200, 'z');
  const r = a.ack({ room_id: ROOM, seq: 1 }, 300);
  assert.equal(r.clientMsgId, 'm2');
  assert.equal(r.latency, 200);
  a.sent('m2', ROOM, 100, 'y'); // not pending any more: a resend
  assert.equal(a.pendingCount(), 3);
});

// ------------------------------------------------------------------ percentiles

test('percentile interpolates between closest ranks', () => {
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([5], 99), 5);
  assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
  assert.equal(percentile([4, 1, 3, 2], 0), 1);
  assert.equal(percentile([4, 1, 3, 2], 100), 4);
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.ok(Math.abs(percentile(hundred, 95) - 95.05) < 1e-9);
  assert.ok(Math.abs(percentile(hundred, 99) - 99.01) < 1e-9);
  assert.deepEqual(percentiles([10, 20, 30], [50, 100]), { p50: 20, p100: 30 });
});

test('LatencyStats keeps a bounded sample and exact count/max', () => {
  const s = new LatencyStats(50);
  for (let i = 1; i <= 1000; i++) s.add(i);
  assert.equal(s.samples.length, 50);
  const sum = s.summary();
  assert.equal(sum.count, 1000);
  assert.equal(sum.max, 1000);
  assert.equal(sum.avg, 500.5);
  assert.ok(sum.p50 >= 1 && sum.p50 <= 1000);
  assert.deepEqual(new LatencyStats().summary(), { count: 0, avg: null, p50: null, p95: null, p99: null, max: null });
});

// ------------------------------------------------------------------ summary

function sampleData({ gaps = 0, failLatency = false } = {}) {
  return {
    state: { testRunDurationMs: 40123 },
    root_group: {
      name: '', path: '', groups: [],
      checks: [{ name: 'ws handshake is 101', passes: 30, fails: 0 }],
    },
    metrics: {
      messages_sent: { type: 'counter', values: { count: 120, rate: 3 } },
      messages_acked: { type: 'counter', values: { count: 120, rate: 3 } },
      expected_deliveries: { type: 'counter', values: { count: 240, rate: 6 } },
      delivered_messages: { type: 'counter', values: { count: 228, rate: 5.7 } },
      seq_gaps: { type: 'counter', values: { count: gaps, rate: 0 }, thresholds: { 'count==0': { ok: gaps === 0 } } },
      delivery_latency: {
        type: 'trend', contains: 'time',
        values: { avg: 21.5, med: 18, 'p(95)': 48.2, 'p(99)': 91, max: 130, count: 228 },
        thresholds: { 'p(95)<250': { ok: !failLatency }, 'p(99)<500': { ok: true } },
      },
      ws_connect_success: { type: 'rate', values: { rate: 1, passes: 30, fails: 0 }, thresholds: { 'rate>=0.99': { ok: true } } },
      error_frames: { type: 'counter', values: { count: 3, rate: 0.1 } },
      'error_frames{expected:false}': { type: 'counter', values: { count: 0, rate: 0 }, thresholds: { 'count==0': { ok: true } } },
      'error_frames{code:rate_limited}': { type: 'counter', values: { count: 3, rate: 0.1 }, thresholds: { 'count>=0': { ok: true } } },
    },
  };
}

test('deliveryRatio divides delivered by acked x receivers', () => {
  assert.equal(deliveryRatio(sampleData()), 228 / 240);
  assert.equal(deliveryRatio({ metrics: {} }), null);
});

test('thresholdResults lists real thresholds and hides informational ones', () => {
  const r = thresholdResults(sampleData({ failLatency: true }));
  const names = r.map((t) => t.metric + ' ' + t.expr);
  assert.ok(names.includes('delivery_latency p(95)<250'));
  assert.ok(!names.some((n) => n.includes('count>=0')));
  const lat = r.find((t) => t.expr === 'p(95)<250');
  assert.equal(lat.ok, false);
  assert.equal(lat.observed, 48.2);
});

test('renderSummary shows verdict, delivery, ordering, errors and checks', () => {
  const text = renderSummary(sampleData(), { script: 'k6-chat-ws.js', lines: ['target: http://x'] });
  assert.match(text, /Result: PASS - 5 of 5 thresholds met, ran 40\.1s/);
  assert.match(text, /target: http:\/\/x/);
  assert.match(text, /delivered \/ expected\s+228 \/ 240 = 95\.00%/);
  assert.match(text, /delivery latency\s+avg=21\.5ms p50=18\.0ms p95=48\.2ms p99=91\.0ms max=130ms n=228/);
  assert.match(text, /seq gaps \(missing seqs\)\s+0/);
  assert.match(text, /error frames\s+3 \(unexpected 0\) rate_limited=3/);
  assert.match(text, /ws connect success\s+100\.00% \(30 of 30\)/);
  assert.match(text, /ok {5}ws handshake is 101/);
  const failed = renderSummary(sampleData({ gaps: 2 }), {});
  assert.match(failed, /Result: FAIL - 4 of 5 thresholds met/);
  assert.match(failed, /FAILED seq_gaps/);
  // Missing metrics render as empty, not as a crash.
  assert.match(renderSummary({ metrics: {} }, {}), /delivery latency\s+no samples/);
});

test('buildSummaryOutputs writes json, txt and stdout under SUMMARY_DIR', () => {
  const data = sampleData();
  const out = buildSummaryOutputs(data, { script: 's.js' });
  assert.deepEqual(Object.keys(out).sort(), ['loadtest/summary.json', 'loadtest/summary.txt', 'stdout']);
  assert.equal(out.stdout, out['loadtest/summary.txt']);
  const json = JSON.parse(out['loadtest/summary.json']);
  assert.deepEqual(json.metrics, data.metrics);
  assert.equal(json.pgchat.passed, true);
  assert.equal(json.pgchat.delivery_ratio, 228 / 240);
  assert.ok(Object.keys(buildSummaryOutputs(data, { summaryDir: '.' })).includes('summary.json'));
  assert.ok(Object.keys(buildSummaryOutputs(data, { summaryDir: '/tmp/out/' })).includes('/tmp/out/summary.txt'));
  assert.equal(summaryPath('', 'a'), 'a');
  assert.equal(summaryPath('x//', 'a'), 'x/a');
});
