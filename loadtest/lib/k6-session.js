// The k6 side of the load test: custom metrics, one WebSocket connection's lifecycle, and the
// role functions the scenarios run. Uses only the legacy k6/ws API. Protocol rules live in
// chat-protocol.js and config.js (pure, unit tested); this file wires them to k6.
//
// Module state is per VU (every k6 VU has its own JS runtime), which the reconnect role
// relies on to keep its SeqTracker across iterations.

import ws from 'k6/ws';
import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate, Trend } from 'k6/metrics';

import {
  AckTracker, SeqTracker, buildJoinRoom, buildLeaveRoom, buildSendMessage, buildTyping,
  deliveryLatency, isResumableClose, makeClientMsgId, makeContent, messagesOf,
  parseServerFrame, serializeFrame,
} from './chat-protocol.js';
import { encodeToArrayBuffer } from './msgpack.js';
import { assignSeat, expectedErrorsFor, receiversInRoom, withQuery } from './config.js';

// ------------------------------------------------------------------ metrics

export const metrics = {
  seqGaps: new Counter('seq_gaps'),
  duplicates: new Counter('duplicates'),
  outOfOrder: new Counter('out_of_order'),
  clientMsgIdDupes: new Counter('duplicate_client_msg_ids'),
  deliveryLatency: new Trend('delivery_latency', true),
  ackLatency: new Trend('ack_latency', true),
  joinLatency: new Trend('join_latency', true),
  wsConnectTime: new Trend('ws_connect_time', true),
  wsConnectSuccess: new Rate('ws_connect_success'),
  messagesSent: new Counter('messages_sent'),
  messagesResent: new Counter('messages_resent'),
  messagesAcked: new Counter('messages_acked'),
  messagesUnacked: new Counter('messages_unacked'),
  messagesReceived: new Counter('messages_received'),
  deliveredMessages: new Counter('delivered_messages'),
  expectedDeliveries: new Counter('expected_deliveries'),
  messagesMissed: new Counter('messages_missed'),
  receiversChecked: new Counter('receivers_checked'),
  receiversIncomplete: new Counter('receivers_incomplete'),
  receiversLateJoin: new Counter('receivers_late_join'),
  historyMessages: new Counter('history_messages'),
  historyTruncated: new Counter('history_truncated'),
  reconnectSeamsChecked: new Counter('reconnect_seams_checked'),
  reconnectSeamBroken: new Counter('reconnect_seam_broken'),
  errorFrames: new Counter('error_frames'),
  protocolErrors: new Counter('protocol_errors'),
  wsServerCloses: new Counter('ws_server_closes'),
  wsReconnects: new Counter('ws_reconnects'),
  joinTimeouts: new Counter('join_timeouts'),
  typingSent: new Counter('typing_sent'),
  typingReceived: new Counter('typing_received'),
  presenceReceived: new Counter('presence_received'),
};

let verbose = false;

function log(seat, msg) {
  if (verbose) console.log('[' + seat.role + ' ' + seat.index + ' room ' + seat.room.name + '] ' + msg);
}

// ------------------------------------------------------------------ HTTP helpers

function authHeaders(seat) {
  return { headers: { Authorization: 'Bearer ' + seat.user.token, 'Content-Type': 'application/json' } };
}

const httpJoined = {};

/**
 * POST /rooms/:id/join once per VU and room when membership is unknown (compat tokens/rooms
 * from env): the server refuses join_room for non-members. The endpoint is idempotent.
 */
function ensureMembership(plan, seat) {
  if (!plan.joinViaHttp) return;
  const key = seat.room.id + '|' + seat.userIndex;
  if (httpJoined[key]) return;
  const params = authHeaders(seat);
  params.tags = { name: 'POST /rooms/:id/join' };
  const res = http.post(plan.baseUrl + '/rooms/' + encodeURIComponent(seat.room.id) + '/join', null, params);
  check(res, { 'POST /rooms/:id/join is 2xx': function (r) { return r.status >= 200 && r.status < 300; } });
  httpJoined[key] = true;
}

/** The room's newest seq via GET /rooms/:id/messages?limit=1 (newest first), or null. */
function fetchNewestSeq(plan, seat) {
  const params = authHeaders(seat);
  params.tags = { name: 'GET /rooms/:id/messages' };
  const res = http.get(plan.baseUrl + '/rooms/' + encodeURIComponent(seat.room.id) + '/messages?limit=1', params);
  const ok = check(res, { 'GET /rooms/:id/messages is 200': function (r) { return r.status === 200; } });
  if (!ok) return null;
  let body;
  try {
    body = res.json();
  } catch (e) {
    return null;
  }
  const list = Array.isArray(body) ? body : body && Array.isArray(body.messages) ? body.messages : null;
  if (!list) return null;
  if (list.length === 0) return 0;
  return typeof list[0].seq === 'number' ? list[0].seq : null;
}

/** setup(): fail fast with a readable message when the server is not there. */
export function checkServer(plan) {
  let res;
  try {
    res = http.get(plan.baseUrl + '/health', { tags: { name: 'GET /health' }, timeout: '5s' });
  } catch (e) {
    res = null;
  }
  if (!res || res.status !== 200) {
    exec.test.abort('server not healthy at ' + plan.baseUrl + '/health (status ' +
      (res ? res.status : 'none') + '): start it with `npm start`, or set BASE_URL');
  }
  return { startedAt: Date.now() };
}

// ------------------------------------------------------------------ one connection

function recordSeam(seat, result) {
  if (!result) return;
  metrics.reconnectSeamsChecked.add(1);
  if (!result.ok) {
    metrics.reconnectSeamBroken.add(1);
    console.warn('[' + seat.role + ' ' + seat.index + '] resume seam broken in room ' + seat.room.id +
      ' from seq ' + result.from + ': ' + JSON.stringify(result));
  }
}

function handleMessages(conn, opts, carried) {
  const list = carried.messages;
  const tracker = conn.tracker;
  const now = Date.now();
  if (conn.state.left) return; // in flight when we left: nothing is promised any more
  metrics.messagesReceived.add(list.length);
  if (carried.source === 'history') {
    metrics.historyMessages.add(list.length);
    if (carried.hasMore) metrics.historyTruncated.add(1);
  }
  let fresh = 0;
  for (let i = 0; i < list.length; i++) {
    const m = list[i];
    if (m.room_id !== conn.roomId) {
      metrics.protocolErrors.add(1, { reason: 'message_for_other_room' });
      continue;
    }
    const r = tracker.observe(m, carried.source);
    if (r.status === 'gap') {
      metrics.seqGaps.add(r.missing);
      log(conn.seat, 'gap: ' + r.missing + ' missing before seq ' + m.seq);
    } else if (r.status === 'duplicate') {
      metrics.duplicates.add(1);
      log(conn.seat, 'duplicate seq ' + m.seq);
    } else if (r.status === 'out_of_order') {
      metrics.outOfOrder.add(1);
      log(conn.seat, 'out of order seq ' + m.seq);
    }
    if (r.clientMsgIdDupe) metrics.clientMsgIdDupes.add(1);
    if (r.status !== 'duplicate') {
      fresh += 1;
      // History replays old messages: their age is not delivery latency.
      if (carried.source === 'live') {
        const lat = deliveryLatency(m, now);
        if (lat !== null) metrics.deliveryLatency.add(lat);
      }
    }
  }
  if (fresh && opts.measureDelivery) metrics.deliveredMessages.add(fresh);
  if (carried.source === 'live') recordSeam(conn.seat, tracker.takeSeamResult(conn.roomId, false));
}

function handleError(conn, opts, data) {
  const code = data && typeof data.code === 'string' && data.code ? data.code : 'no_code';
  const expected = opts.expectedErrors.indexOf(code) >= 0;
  metrics.errorFrames.add(1, { code: code, expected: expected ? 'true' : 'false' });
  if (!expected) {
    console.warn('[' + conn.seat.role + ' ' + conn.seat.index + '] error frame ' + JSON.stringify(data));
  }
  // A refused join leaves nothing to do on this socket.
  if (!conn.state.joined && (data && data.ref === 'join_room' || code === 'not_a_member' || code === 'room_not_found')) {
    conn.close();
  }
}

function handleFrame(conn, opts, frame) {
  switch (frame.event) {
    case 'joined_room':
      if (frame.data.room_id === conn.roomId && !conn.state.joined) {
        conn.state.joined = true;
        metrics.joinLatency.add(Date.now() - conn.state.joinSentAt);
        conn.tracker.noteJoined(conn.roomId, frame.data.last_seq);
        if (opts.onJoined) opts.onJoined(conn, frame.data);
      }
      return;
    case 'history':
    case 'new_message':
    case 'new_message_batch':
      handleMessages(conn, opts, messagesOf(frame));
      return;
    case 'message_ack':
      if (opts.onAck) opts.onAck(conn, frame.data);
      else metrics.protocolErrors.add(1, { reason: 'ack_without_send' });
      return;
    case 'error':
      handleError(conn, opts, frame.data);
      return;
    case 'typing':
      metrics.typingReceived.add(1);
      return;
    case 'presence':
      metrics.presenceReceived.add(1);
      return;
    default:
      return; // user_joined, user_left and future events need no bookkeeping here
  }
}

function onRaw(conn, opts, raw, binary) {
  if (binary !== (conn.format === 'msgpack')) {
    metrics.protocolErrors.add(1, { reason: binary ? 'binary_frame_on_json_socket' : 'text_frame_on_msgpack_socket' });
  }
  const frame = parseServerFrame(raw);
  if (!frame.ok) {
    metrics.protocolErrors.add(1, { reason: frame.reason });
    log(conn.seat, 'bad frame: ' + frame.reason + (frame.detail ? ' ' + frame.detail : ''));
    return;
  }
  handleFrame(conn, opts, frame);
}

/**
 * Opens one WebSocket for `opts.seat`, joins its room (resuming with last_seen_seq when
 * opts.resume and the tracker knows one) and keeps it until opts.endAt (epoch ms), until a
 * role hook calls conn.close(), or until the server closes it. ws.connect blocks for the
 * whole session; all callbacks run on the socket's event loop.
 * Returns { opened, joined, closedByServer, closeCode }.
 */
export function runConnection(opts) {
  const seat = opts.seat;
  const format = opts.format === 'msgpack' ? 'msgpack' : 'json';
  const roomId = seat.room.id;
  const state = { opened: false, joined: false, left: false, closedByUs: false, closeCode: null, joinSentAt: 0 };
  const url = withQuery(seat.wsUrl, { token: seat.user.token, format: format === 'msgpack' ? 'msgpack' : undefined });
  const t0 = Date.now();
  let res = null;
  try {
    res = ws.connect(url, { tags: { role: seat.role } }, function (socket) {
      const conn = {
        socket: socket,
        seat: seat,
        roomId: roomId,
        state: state,
        format: format,
        tracker: opts.tracker,
        send: function (frame) {
          if (format === 'msgpack') socket.sendBinary(encodeToArrayBuffer(frame));
          else socket.send(serializeFrame(frame));
        },
        leave: function () {
          if (state.left) return;
          state.left = true;
          conn.send(buildLeaveRoom(roomId));
          opts.tracker.forget(roomId);
        },
        close: function () {
          if (state.closedByUs) return;
          state.closedByUs = true;
          if (opts.onClosing) opts.onClosing(conn);
          socket.close(1000);
        },
      };

      socket.on('open', function () {
        state.opened = true;
        metrics.wsConnectTime.add(Date.now() - t0);
        const lastSeen = opts.resume ? opts.tracker.lastSeen(roomId) : undefined;
        opts.tracker.noteJoin(roomId, lastSeen);
        state.joinSentAt = Date.now();
        conn.send(buildJoinRoom(roomId, lastSeen));
        socket.setTimeout(function () {
          if (!state.joined) {
            metrics.joinTimeouts.add(1);
            log(seat, 'no joined_room within ' + opts.joinTimeoutMs + 'ms');
            conn.close();
          }
        }, opts.joinTimeoutMs);
        socket.setTimeout(function () { conn.close(); }, Math.max(1, opts.endAt - Date.now()));
      });
      socket.on('message', function (data) { onRaw(conn, opts, data, false); });
      socket.on('binaryMessage', function (data) { onRaw(conn, opts, new Uint8Array(data), true); });
      socket.on('close', function (code) { state.closeCode = code; });
      socket.on('error', function (e) {
        log(seat, 'socket error: ' + (e && e.error ? e.error() : e));
      });
    });
  } catch (e) {
    // ws.connect throws when the handshake fails (refused, 401, 404...).
    log(seat, 'connect failed: ' + e);
  }
  check(res, { 'ws handshake is 101': function (r) { return !!r && r.status === 101; } });
  metrics.wsConnectSuccess.add(state.opened);
  if (state.opened) {
    recordSeam(seat, opts.tracker.takeSeamResult(roomId, true));
  }
  const closedByServer = state.opened && !state.closedByUs;
  if (closedByServer) {
    metrics.wsServerCloses.add(1, { code: String(state.closeCode) });
    log(seat, 'closed by server with code ' + state.closeCode);
  }
  return { opened: state.opened, joined: state.joined, closedByServer: closedByServer, closeCode: state.closeCode };
}

/**
 * Keeps a long-lived role connected until endAt like a real client: reconnect (resuming
 * with last_seen_seq) after a resumable server close, retry a failed connect with backoff.
 */
function runUntil(opts, endAt) {
  let attempts = 0;
  let failures = 0;
  while (Date.now() < endAt - 100) {
    const r = runConnection(Object.assign({}, opts, { endAt: endAt, resume: attempts > 0 }));
    attempts += 1;
    if (r.opened) failures = 0;
    else failures += 1;
    if (r.opened && !r.closedByServer) return; // we ended it: time is up or the role is done
    if (r.closedByServer && !isResumableClose(r.closeCode)) return;
    if (failures >= 5) return;
    metrics.wsReconnects.add(1, { role: opts.seat.role });
    sleep(Math.min(5, 0.25 * Math.pow(2, failures)) + Math.random() * 0.25);
  }
}

// ------------------------------------------------------------------ roles

function common(plan, role, index, scenario) {
  verbose = plan.verbose;
  const seat = assignSeat(plan, role, index);
  ensureMembership(plan, seat);
  return {
    seat: seat,
    tracker: new SeqTracker(),
    expectedErrors: expectedErrorsFor(plan, scenario),
    joinTimeoutMs: plan.joinTimeoutMs,
  };
}

/** Idle receiver: joins at the start, listens through DURATION and DRAIN, then verifies. */
export function receiver(plan) {
  const opts = common(plan, 'receiver', exec.scenario.iterationInTest, 'receivers');
  const start = exec.scenario.startTime;
  const sendersStartAt = start + plan.warmupS * 1000;
  const endAt = start + (plan.warmupS + plan.durationS + plan.drainS) * 1000;
  let joinedAt = null;
  opts.measureDelivery = true;
  opts.onJoined = function () {
    if (joinedAt === null) joinedAt = Date.now();
  };
  runUntil(opts, endAt);
  // A session cut short (refused, or closed for good) still waits for the end of the drain,
  // so the HTTP check below counts everything this receiver should have had.
  const left = endAt - Date.now();
  if (left > 0) sleep(left / 1000);
  if (joinedAt !== null && joinedAt > sendersStartAt) {
    // Joined after senders began: its share of expected_deliveries cannot all arrive.
    metrics.receiversLateJoin.add(1);
  }
  if (plan.verifyHttp && joinedAt !== null) {
    const newest = fetchNewestSeq(plan, opts.seat);
    const c = newest === null ? null : opts.tracker.completeness(opts.seat.room.id, newest);
    if (c) {
      metrics.receiversChecked.add(1);
      if (c.missed > 0) {
        metrics.messagesMissed.add(c.missed);
        metrics.receiversIncomplete.add(1);
        console.warn('[receiver ' + opts.seat.index + '] room ' + opts.seat.room.id + ' saw up to seq ' +
          c.last + ' of ' + c.newest + ', ' + c.missed + ' missed');
      }
    }
  }
}

/** Sender (JSON or msgpack framing): sends every MESSAGE_INTERVAL_MS through DURATION. */
export function sender(plan, format) {
  const role = format === 'msgpack' ? 'msgpack' : 'sender';
  const opts = common(plan, role, exec.scenario.iterationInTest, format === 'msgpack' ? 'msgpack' : 'senders');
  const seat = opts.seat;
  const roomId = seat.room.id;
  const acks = new AckTracker();
  const start = exec.scenario.startTime;
  const sendEnd = start + plan.durationS * 1000;
  const hardEnd = sendEnd + plan.drainS * 1000;
  const receivers = receiversInRoom(plan, seat.roomIndex);
  const vu = exec.vu.idInTest;
  // The run's start time keeps client_msg_ids unique across runs: the server dedupes them.
  const runTag = Math.floor(start).toString(36);
  let n = 0;
  opts.format = format;
  opts.onJoined = function (conn) {
    // After a reconnect, resend what was never acked with the same client_msg_id: the server
    // must store it once and ack with the same seq (PROTOCOL.md guarantee 3).
    const pending = acks.pendingList();
    for (let i = 0; i < pending.length; i++) {
      conn.send(buildSendMessage(roomId, pending[i].content, pending[i].clientMsgId));
      acks.sent(pending[i].clientMsgId, roomId, pending[i].sentAt, pending[i].content);
    }
    if (pending.length) metrics.messagesResent.add(pending.length);
    conn.socket.setInterval(function () {
      const now = Date.now();
      if (now < sendEnd && (!plan.messagesPerVu || n < plan.messagesPerVu)) {
        n += 1;
        const id = makeClientMsgId(runTag + '-' + vu, 0, n);
        const content = makeContent(now, vu, n, plan.messageBytes);
        acks.sent(id, roomId, now, content);
        conn.send(buildSendMessage(roomId, content, id));
        metrics.messagesSent.add(1);
      } else if (acks.pendingCount() === 0) {
        conn.close(); // all acked: done early; otherwise hardEnd closes it
      }
    }, plan.messageIntervalMs);
  };
  opts.onAck = function (conn, data) {
    const a = acks.ack(data, Date.now());
    if (a.first) {
      metrics.messagesAcked.add(1);
      metrics.ackLatency.add(a.latency);
      if (receivers > 0) metrics.expectedDeliveries.add(receivers);
    } else if (!a.matched) {
      metrics.protocolErrors.add(1, { reason: 'unmatched_ack' });
    }
  };
  runUntil(opts, hardEnd);
  if (acks.seqMismatches) metrics.clientMsgIdDupes.add(acks.seqMismatches);
  const unacked = acks.pendingCount();
  if (unacked) {
    metrics.messagesUnacked.add(unacked);
    console.warn('[' + role + ' ' + seat.index + '] ' + unacked + ' messages never acked');
  }
  log(seat, 'sent ' + n + ', acked ' + acks.acked.size);
}

/** Churn: connect, join, stay CHURN_HOLD_MS, leave, disconnect. One cycle per iteration. */
export function churn(plan) {
  const opts = common(plan, 'churn', Math.floor(Math.random() * 1000003), 'churn');
  opts.onJoined = function (conn) {
    conn.socket.setTimeout(function () {
      conn.leave();
      // Give leave_room a moment on the wire before the close frame.
      conn.socket.setTimeout(function () { conn.close(); }, 100);
    }, Math.max(1, plan.churnHoldMs));
  };
  runConnection(Object.assign(opts, { endAt: Date.now() + plan.churnHoldMs + plan.joinTimeoutMs + 1000 }));
}

let reconnectState = null;

/**
 * Reconnect storm: every reconnector drops its socket at the same wall-clock boundary
 * (each RECONNECT_PERIOD_MS) and reconnects at once with last_seen_seq; the tracker checks
 * that history + live continue the room without gap or duplicate at the seam.
 */
export function reconnect(plan) {
  if (reconnectState === null) {
    reconnectState = common(plan, 'reconnect', exec.vu.idInTest - 1, 'reconnect');
  }
  const opts = reconnectState;
  const period = plan.reconnectPeriodMs;
  const now = Date.now();
  let endAt = (Math.floor(now / period) + 1) * period;
  if (endAt - now < period / 4) endAt += period; // too short to see live traffic: skip a tick
  endAt += Math.floor(Math.random() * 50);
  const resume = opts.tracker.lastSeen(opts.seat.room.id) !== undefined;
  const r = runConnection(Object.assign({}, opts, { endAt: endAt, resume: resume }));
  if (resume && r.opened) metrics.wsReconnects.add(1, { role: 'reconnect' });
  if (!r.opened) sleep(0.5 + Math.random() * 0.5);
}

/** Typing storm: alternate typing_start / typing_stop every TYPING_INTERVAL_MS. */
export function typing(plan) {
  const opts = common(plan, 'typing', exec.scenario.iterationInTest, 'typing');
  const roomId = opts.seat.room.id;
  let on = false;
  opts.onJoined = function (conn) {
    conn.socket.setInterval(function () {
      on = !on;
      conn.send(buildTyping(roomId, on));
      metrics.typingSent.add(1);
    }, plan.typingIntervalMs);
  };
  opts.onClosing = function (conn) {
    if (on) conn.send(buildTyping(roomId, false));
  };
  runUntil(opts, exec.scenario.startTime + plan.durationS * 1000);
}
