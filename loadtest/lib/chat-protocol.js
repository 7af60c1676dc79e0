// Protocol and bookkeeping logic shared by the k6 scripts, kept free of k6 and Node imports
// so that `node --test loadtest/lib/*.test.mjs` can exercise every rule the load test
// applies. The wire contract is /work/shared/PROTOCOL.md ("Wire contract").
//
// Written for k6's JS runtime as well as Node: no optional chaining, no BigInt, no Buffer,
// no TextEncoder, no URL class.

import { decode as msgpackDecode, encode as msgpackEncode } from './msgpack.js';

// ------------------------------------------------------------------ client frames

export const MAX_CLIENT_MSG_ID = 64;

function requireRoomId(roomId) {
  if (typeof roomId !== 'string' || roomId === '') {
    throw new TypeError('room_id must be a non-empty string');
  }
}

export function buildJoinRoom(roomId, lastSeenSeq) {
  requireRoomId(roomId);
  const data = { room_id: roomId };
  if (lastSeenSeq !== undefined && lastSeenSeq !== null) {
    if (!Number.isSafeInteger(lastSeenSeq) || lastSeenSeq < 0) {
      throw new TypeError('last_seen_seq must be a non-negative integer');
    }
    data.last_seen_seq = lastSeenSeq;
  }
  return { event: 'join_room', data: data };
}

export function buildLeaveRoom(roomId) {
  requireRoomId(roomId);
  return { event: 'leave_room', data: { room_id: roomId } };
}

export function buildSendMessage(roomId, content, clientMsgId) {
  requireRoomId(roomId);
  if (typeof content !== 'string') throw new TypeError('content must be a string');
  const data = { room_id: roomId, content: content };
  if (clientMsgId !== undefined && clientMsgId !== null) {
    if (typeof clientMsgId !== 'string' || clientMsgId === '' ||
      clientMsgId.length > MAX_CLIENT_MSG_ID) {
      throw new TypeError('client_msg_id must be a string of 1..' + MAX_CLIENT_MSG_ID + ' chars');
    }
    data.client_msg_id = clientMsgId;
  }
  return { event: 'send_message', data: data };
}

export function buildTyping(roomId, typing) {
  requireRoomId(roomId);
  return { event: typing ? 'typing_start' : 'typing_stop', data: { room_id: roomId } };
}

/** JSON text frame, the default framing. */
export function serializeFrame(frame) {
  return JSON.stringify(frame);
}

/** Encodes a client frame for the given framing: a string (json) or a Uint8Array (msgpack). */
export function encodeFrame(frame, format) {
  return format === 'msgpack' ? msgpackEncode(frame) : JSON.stringify(frame);
}

// Convenience wrappers returning the JSON text directly.
export function joinRoomFrame(roomId, lastSeenSeq) {
  return serializeFrame(buildJoinRoom(roomId, lastSeenSeq));
}
export function leaveRoomFrame(roomId) {
  return serializeFrame(buildLeaveRoom(roomId));
}
export function sendMessageFrame(roomId, content, clientMsgId) {
  return serializeFrame(buildSendMessage(roomId, content, clientMsgId));
}
export function typingFrame(roomId, typing) {
  return serializeFrame(buildTyping(roomId, typing));
}

// ------------------------------------------------------------------ server frames

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isIntegerNumber(v) {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/**
 * Validates one message object. Returns null when valid, else a short reason.
 * `id` and `seq` must be JSON numbers: the original app's k6 scripts rejected frames whose
 * id/seq were strings (e.g. a bigint column serialised as text), and so do we.
 */
export function validateMessage(m) {
  if (!isObject(m)) return 'message_not_object';
  if (!isIntegerNumber(m.id)) return 'message_id_not_number';
  if (!isIntegerNumber(m.seq) || m.seq < 1) return 'message_seq_not_number';
  if (typeof m.room_id !== 'string' || m.room_id === '') return 'message_room_id_invalid';
  if (typeof m.user_id !== 'string' && !isIntegerNumber(m.user_id)) return 'message_user_id_invalid';
  if (typeof m.username !== 'string') return 'message_username_invalid';
  if (typeof m.content !== 'string') return 'message_content_invalid';
  if (typeof m.created_at !== 'string' && !(m.created_at instanceof Date)) {
    return 'message_created_at_invalid';
  }
  if (m.client_msg_id !== undefined && m.client_msg_id !== null &&
    typeof m.client_msg_id !== 'string') {
    return 'message_client_msg_id_invalid';
  }
  return null;
}

function validateMessageList(list) {
  for (let i = 0; i < list.length; i++) {
    const reason = validateMessage(list[i]);
    if (reason) return reason;
  }
  for (let i = 1; i < list.length; i++) {
    if (list[i].room_id !== list[0].room_id) return 'batch_mixed_rooms';
    if (list[i].seq <= list[i - 1].seq) return 'batch_not_ascending';
  }
  return null;
}

function validateData(event, data) {
  switch (event) {
    case 'new_message':
      return validateMessage(data);
    case 'new_message_batch':
      if (!Array.isArray(data)) return 'batch_not_array';
      return validateMessageList(data);
    case 'history':
      if (!isObject(data) || !Array.isArray(data.messages)) return 'history_without_messages';
      return validateMessageList(data.messages);
    case 'joined_room':
      if (!isObject(data) || typeof data.room_id !== 'string') return 'joined_room_invalid';
      if (data.last_seq !== undefined && data.last_seq !== null && !isIntegerNumber(data.last_seq)) {
        return 'joined_room_last_seq_not_number';
      }
      return null;
    case 'message_ack':
      if (!isObject(data) || typeof data.room_id !== 'string' || !isIntegerNumber(data.seq)) {
        return 'message_ack_invalid';
      }
      return null;
    case 'error':
      if (!isObject(data)) return 'error_frame_invalid';
      return null;
    default:
      return null; // presence, typing, user_joined/left and future events: no strict shape
  }
}

function isBinary(raw) {
  return raw instanceof Uint8Array || raw instanceof ArrayBuffer;
}

/**
 * Parses one server frame. Accepts JSON text, a msgpack binary frame (Uint8Array or
 * ArrayBuffer), or an already-decoded envelope object.
 * Returns { ok: true, event, data } or { ok: false, reason, detail }.
 */
export function parseServerFrame(raw) {
  let env = raw;
  if (typeof raw === 'string') {
    try {
      env = JSON.parse(raw);
    } catch (e) {
      return { ok: false, reason: 'invalid_json', detail: String(e && e.message) };
    }
  } else if (isBinary(raw)) {
    try {
      env = msgpackDecode(raw);
    } catch (e) {
      return { ok: false, reason: 'invalid_msgpack', detail: String(e && e.message) };
    }
  }
  if (!isObject(env)) return { ok: false, reason: 'envelope_not_object' };
  if (typeof env.event !== 'string' || env.event === '') {
    return { ok: false, reason: 'envelope_without_event' };
  }
  const reason = validateData(env.event, env.data);
  if (reason) return { ok: false, reason: reason, event: env.event };
  return { ok: true, event: env.event, data: env.data };
}

/**
 * The messages carried by a parsed frame, with where they came from:
 * 'live' (new_message / new_message_batch) or 'history'. Null for other events.
 */
export function messagesOf(frame) {
  if (!frame || !frame.ok) return null;
  if (frame.event === 'new_message') return { source: 'live', messages: [frame.data] };
  if (frame.event === 'new_message_batch') return { source: 'live', messages: frame.data };
  if (frame.event === 'history') {
    return {
      source: 'history',
      messages: frame.data.messages,
      hasMore: frame.data.has_more === true,
    };
  }
  return null;
}

/**
 * Whether a close initiated by the server invites the client to reconnect and resume with
 * last_seen_seq. Follows the ranges in ARCHITECTURE.md (4000-4499 reconnect and resume,
 * 4500-4999 do not) plus the standard "going away / restart / overloaded" codes; 1006 is
 * what a dropped TCP connection looks like.
 */
export function isResumableClose(code) {
  if (code >= 4000 && code <= 4499) return true;
  if (code >= 4500 && code <= 4999) return false;
  return code === 1001 || code === 1005 || code === 1006 || code === 1011 || code === 1012 ||
    code === 1013 || code === 1014;
}

// ------------------------------------------------------------------ seq tracking

function newRoomState() {
  return {
    baseline: undefined, // seq the room was known to be at when we (re)joined
    last: undefined, // highest seq seen (or the baseline)
    missing: [], // [from, to] ranges skipped over and not yet seen
    received: 0, // unique messages seen
    gaps: 0, // missing seqs at the time of the jump
    gapEvents: 0,
    duplicates: 0,
    outOfOrder: 0,
    history: 0,
    seam: null,
  };
}

function rangesContain(ranges, seq) {
  for (let i = 0; i < ranges.length; i++) {
    if (seq >= ranges[i][0] && seq <= ranges[i][1]) return i;
  }
  return -1;
}

function rangesRemove(ranges, idx, seq) {
  const r = ranges[idx];
  if (r[0] === r[1]) ranges.splice(idx, 1);
  else if (seq === r[0]) r[0] = seq + 1;
  else if (seq === r[1]) r[1] = seq - 1;
  else ranges.splice(idx, 1, [r[0], seq - 1], [seq + 1, r[1]]);
}

function rangesTotal(ranges) {
  let n = 0;
  for (let i = 0; i < ranges.length; i++) n += ranges[i][1] - ranges[i][0] + 1;
  return n;
}

/**
 * Per-room sequence bookkeeping for one client (one k6 VU). Every message a socket gets is
 * fed in; the tracker classifies it against the guarantees of PROTOCOL.md:
 *  - 'first'        first message of a room with no known baseline
 *  - 'ok'           seq == last + 1
 *  - 'gap'          seq jumped; `missing` seqs were skipped (counted when seen: a client
 *                   cannot tell a late message from a lost one at that moment)
 *  - 'out_of_order' a seq that had been skipped arrived late (also counted in gaps before)
 *  - 'duplicate'    seq <= last and not a skipped one: already delivered
 * It also remembers last_seen_seq per room for reconnects, and flags a client_msg_id stored
 * twice (two different seqs for one idempotency key: guarantee 3).
 */
export class SeqTracker {
  constructor(options) {
    const o = options || {};
    this.maxRanges = o.maxRanges || 1000;
    this.maxIds = o.maxIds || 50000;
    this.rooms = {};
    this.ids = new Map();
    this.totals = {
      received: 0, gaps: 0, gapEvents: 0, duplicates: 0, outOfOrder: 0, history: 0,
      clientMsgIdDupes: 0,
    };
  }

  room(roomId) {
    let s = this.rooms[roomId];
    if (!s) {
      s = newRoomState();
      this.rooms[roomId] = s;
    }
    return s;
  }

  /**
   * Call when sending join_room. With lastSeenSeq the client expects history from
   * lastSeenSeq + 1 and the seam between history and live is checked.
   */
  noteJoin(roomId, lastSeenSeq) {
    const s = this.room(roomId);
    if (lastSeenSeq !== undefined && lastSeenSeq !== null) {
      s.baseline = lastSeenSeq;
      s.last = lastSeenSeq;
      // Anything we never saw below lastSeenSeq is out of scope for this join.
      s.missing = s.missing.filter(function (r) { return r[1] > lastSeenSeq; });
      s.seam = {
        from: lastSeenSeq,
        before: { gaps: s.gaps, duplicates: s.duplicates, outOfOrder: s.outOfOrder },
        history: 0,
        done: false,
        result: null,
      };
    } else {
      // A plain join: only messages committed after joined_room are promised.
      s.baseline = undefined;
      s.last = undefined;
      s.missing = [];
      s.seam = null;
    }
  }

  /** joined_room: with the ext `last_seq`, a plain join knows where live delivery starts. */
  noteJoined(roomId, lastSeq) {
    const s = this.room(roomId);
    if (s.last === undefined && isIntegerNumber(lastSeq)) {
      s.baseline = lastSeq;
      s.last = lastSeq;
    }
  }

  /** leave_room: forget the room (a later plain join starts over). */
  forget(roomId) {
    delete this.rooms[roomId];
  }

  lastSeen(roomId) {
    const s = this.rooms[roomId];
    return s ? s.last : undefined;
  }

  rememberClientMsgId(m) {
    if (typeof m.client_msg_id !== 'string' || m.client_msg_id === '') return false;
    const key = m.room_id + '|' + m.user_id + '|' + m.client_msg_id;
    const prev = this.ids.get(key);
    if (prev === undefined) {
      if (this.ids.size >= this.maxIds) {
        // Drop the oldest half; a dup that far apart is outside this test's window.
        let drop = Math.floor(this.maxIds / 2);
        const it = this.ids.keys();
        while (drop-- > 0) this.ids.delete(it.next().value);
      }
      this.ids.set(key, m.seq);
      return false;
    }
    return prev !== m.seq;
  }

  /** Feeds one message. `source` is 'live' or 'history'. Returns the classification. */
  observe(m, source) {
    const s = this.room(m.room_id);
    const seq = m.seq;
    const t = this.totals;
    let status;
    let missing = 0;
    if (s.last === undefined) {
      status = 'first';
      s.last = seq;
    } else if (seq === s.last + 1) {
      status = 'ok';
      s.last = seq;
    } else if (seq > s.last + 1) {
      status = 'gap';
      missing = seq - s.last - 1;
      if (s.missing.length < this.maxRanges) s.missing.push([s.last + 1, seq - 1]);
      s.last = seq;
      s.gaps += missing;
      s.gapEvents += 1;
      t.gaps += missing;
      t.gapEvents += 1;
    } else {
      const idx = rangesContain(s.missing, seq);
      if (idx >= 0) {
        status = 'out_of_order';
        rangesRemove(s.missing, idx, seq);
        s.outOfOrder += 1;
        t.outOfOrder += 1;
      } else {
        status = 'duplicate';
        s.duplicates += 1;
        t.duplicates += 1;
      }
    }
    let clientMsgIdDupe = false;
    if (status !== 'duplicate') {
      s.received += 1;
      t.received += 1;
      clientMsgIdDupe = this.rememberClientMsgId(m);
      if (clientMsgIdDupe) t.clientMsgIdDupes += 1;
    }
    if (source === 'history') {
      s.history += 1;
      t.history += 1;
      if (s.seam && !s.seam.done) s.seam.history += 1;
    } else if (s.seam && !s.seam.done) {
      // The first live message after a resume closes the history/live seam.
      this.closeSeam(s, seq);
    }
    return { status: status, missing: missing, clientMsgIdDupe: clientMsgIdDupe };
  }

  /** Feeds a list (batch or history page). Returns summed counts for the list. */
  observeAll(messages, source) {
    const out = { ok: 0, first: 0, gap: 0, missing: 0, duplicate: 0, out_of_order: 0, clientMsgIdDupes: 0 };
    for (let i = 0; i < messages.length; i++) {
      const r = this.observe(messages[i], source);
      out[r.status] += 1;
      out.missing += r.missing;
      if (r.clientMsgIdDupe) out.clientMsgIdDupes += 1;
    }
    return out;
  }

  closeSeam(s, firstLiveSeq) {
    const seam = s.seam;
    seam.done = true;
    const gaps = s.gaps - seam.before.gaps;
    const duplicates = s.duplicates - seam.before.duplicates;
    const outOfOrder = s.outOfOrder - seam.before.outOfOrder;
    seam.result = {
      from: seam.from,
      history: seam.history,
      firstLiveSeq: firstLiveSeq === undefined ? null : firstLiveSeq,
      gaps: gaps,
      duplicates: duplicates,
      outOfOrder: outOfOrder,
      ok: gaps === 0 && duplicates === 0 && outOfOrder === 0,
    };
  }

  /**
   * The verdict on a resume seam, once: after the first live message, or (with force) when
   * the socket closes before any live message arrived. Null when there is nothing to report.
   */
  takeSeamResult(roomId, force) {
    const s = this.rooms[roomId];
    if (!s || !s.seam) return null;
    if (!s.seam.done) {
      if (!force) return null;
      this.closeSeam(s, undefined);
    }
    const r = s.seam.result;
    s.seam = null;
    return r;
  }

  /** Messages of a room skipped over and never seen. */
  outstanding(roomId) {
    const s = this.rooms[roomId];
    return s ? rangesTotal(s.missing) : 0;
  }

  /**
   * Compares what this client saw with the room's newest seq (e.g. from HTTP after the
   * drain). Returns null when no baseline is known (nothing to compare against).
   */
  completeness(roomId, newestSeq) {
    const s = this.rooms[roomId];
    if (!s || s.last === undefined || !isIntegerNumber(newestSeq)) return null;
    const behind = newestSeq > s.last ? newestSeq - s.last : 0;
    const missing = behind + rangesTotal(s.missing);
    return { last: s.last, newest: newestSeq, missed: missing, complete: missing === 0 };
  }
}

// ------------------------------------------------------------------ latency bookkeeping

export const CONTENT_PREFIX = 'lt:';

/**
 * Message content carrying its send time: "lt:<sendEpochMs>:<vu>:<n>" plus optional padding
 * (":" + filler) to reach a target size. Receivers compute now - sendEpochMs; every VU runs
 * in the same k6 process, so the clocks agree.
 */
export function makeContent(sentAt, vu, n, padToBytes) {
  let c = CONTENT_PREFIX + sentAt + ':' + vu + ':' + n;
  if (padToBytes && padToBytes > c.length + 1) {
    c += ':' + 'x'.repeat(padToBytes - c.length - 1);
  }
  return c;
}

export function parseContent(content) {
  if (typeof content !== 'string' || content.indexOf(CONTENT_PREFIX) !== 0) return null;
  const parts = content.split(':');
  if (parts.length < 4) return null;
  const sentAt = Number(parts[1]);
  const n = Number(parts[3]);
  if (!Number.isFinite(sentAt) || parts[1] === '' || !Number.isFinite(n)) return null;
  return { sentAt: sentAt, vu: parts[2], n: n };
}

/** Delivery latency of a message in ms, or null if it is not a load-test message. */
export function deliveryLatency(message, now) {
  const p = parseContent(message && message.content);
  if (!p) return null;
  const d = now - p.sentAt;
  return d >= 0 ? d : 0;
}

/** An idempotency key unique per VU, iteration and message; always <= 64 chars. */
export function makeClientMsgId(vu, iteration, n) {
  return ('lt-' + vu + '-' + iteration + '-' + n).slice(0, MAX_CLIENT_MSG_ID);
}

/**
 * Tracks sent messages until their message_ack. Acks are matched by client_msg_id; an ack
 * without one (a server that omits the ext field) is matched to the oldest pending send of
 * that room, since one socket's sends are acked in order.
 */
export class AckTracker {
  constructor() {
    this.pending = new Map(); // client_msg_id -> { roomId, sentAt, content, attempts }
    this.acked = new Map(); // client_msg_id -> seq
    this.duplicateAcks = 0;
    this.unmatchedAcks = 0;
    this.seqMismatches = 0;
  }

  sent(clientMsgId, roomId, sentAt, content) {
    const p = this.pending.get(clientMsgId);
    if (p) {
      p.attempts += 1;
      return;
    }
    this.pending.set(clientMsgId, { roomId: roomId, sentAt: sentAt, content: content, attempts: 1 });
  }

  /** Returns { matched, first, clientMsgId, latency } for one message_ack payload. */
  ack(data, now) {
    let id = data && typeof data.client_msg_id === 'string' ? data.client_msg_id : null;
    if (id === null) {
      const it = this.pending.entries();
      for (let e = it.next(); !e.done; e = it.next()) {
        if (e.value[1].roomId === data.room_id) {
          id = e.value[0];
          break;
        }
      }
    }
    if (id === null) {
      this.unmatchedAcks += 1;
      return { matched: false, first: false, clientMsgId: null, latency: null };
    }
    const p = this.pending.get(id);
    if (!p) {
      if (this.acked.has(id)) {
        // A resend after reconnect acked again: must carry the same seq (guarantee 3).
        this.duplicateAcks += 1;
        if (this.acked.get(id) !== data.seq) this.seqMismatches += 1;
        return { matched: true, first: false, clientMsgId: id, latency: null };
      }
      this.unmatchedAcks += 1;
      return { matched: false, first: false, clientMsgId: id, latency: null };
    }
    this.pending.delete(id);
    this.acked.set(id, data.seq);
    return { matched: true, first: true, clientMsgId: id, latency: Math.max(0, now - p.sentAt) };
  }

  pendingList() {
    const out = [];
    this.pending.forEach(function (v, k) {
      out.push({ clientMsgId: k, roomId: v.roomId, sentAt: v.sentAt, content: v.content, attempts: v.attempts });
    });
    return out;
  }

  pendingCount() {
    return this.pending.size;
  }
}

// ------------------------------------------------------------------ percentiles

/**
 * Percentile with linear interpolation between closest ranks (p in 0..100).
 * Returns null for an empty list.
 */
export function percentile(values, p) {
  if (!values || values.length === 0) return null;
  const sorted = values.slice().sort(function (a, b) { return a - b; });
  return percentileSorted(sorted, p);
}

export function percentileSorted(sorted, p) {
  if (sorted.length === 0) return null;
  if (p <= 0) return sorted[0];
  if (p >= 100) return sorted[sorted.length - 1];
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function percentiles(values, ps) {
  const sorted = (values || []).slice().sort(function (a, b) { return a - b; });
  const out = {};
  for (let i = 0; i < ps.length; i++) out['p' + ps[i]] = percentileSorted(sorted, ps[i]);
  return out;
}

/**
 * Bounded latency sample for per-VU reporting (reservoir sampling keeps memory flat on long
 * runs while staying an unbiased sample).
 */
export class LatencyStats {
  constructor(capacity) {
    this.capacity = capacity || 2000;
    this.samples = [];
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }

  add(v) {
    this.count += 1;
    this.sum += v;
    if (v > this.max) this.max = v;
    if (this.samples.length < this.capacity) {
      this.samples.push(v);
    } else {
      const j = Math.floor(Math.random() * this.count);
      if (j < this.capacity) this.samples[j] = v;
    }
  }

  summary() {
    const p = percentiles(this.samples, [50, 95, 99]);
    return {
      count: this.count,
      avg: this.count ? this.sum / this.count : null,
      p50: p.p50,
      p95: p.p95,
      p99: p.p99,
      max: this.count ? this.max : null,
    };
  }
}

// ------------------------------------------------------------------ summary rendering

function metric(data, name) {
  return data && data.metrics ? data.metrics[name] : undefined;
}

function value(data, name, key) {
  const m = metric(data, name);
  if (!m || !m.values) return null;
  const v = m.values[key];
  return typeof v === 'number' && !isNaN(v) ? v : null;
}

function count(data, name) {
  const v = value(data, name, 'count');
  return v === null ? 0 : v;
}

/**
 * Ack-based delivery ratio: messages delivered to measured receivers divided by
 * (messages acked x receivers in that room), summed by the senders at ack time.
 */
export function deliveryRatio(data) {
  const expected = count(data, 'expected_deliveries');
  if (!expected) return null;
  return count(data, 'delivered_messages') / expected;
}

function fmtMs(v) {
  if (v === null || v === undefined) return '-';
  if (v >= 10000) return (v / 1000).toFixed(1) + 's';
  return v.toFixed(v >= 100 ? 0 : 1) + 'ms';
}

function fmtPct(v) {
  return v === null || v === undefined ? '-' : (v * 100).toFixed(2) + '%';
}

function fmtNum(v) {
  if (v === null || v === undefined) return '-';
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function pad(s, n) {
  s = String(s);
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function line(label, text) {
  return '  ' + pad(label, 30) + text;
}

function trendText(data, name) {
  const m = metric(data, name);
  if (!m || !m.values || !value(data, name, 'count') && value(data, name, 'max') === null) return 'no samples';
  const parts = [];
  const keys = [['avg', 'avg'], ['med', 'p50'], ['p(95)', 'p95'], ['p(99)', 'p99'], ['max', 'max']];
  for (let i = 0; i < keys.length; i++) {
    const v = value(data, name, keys[i][0]);
    if (v !== null) parts.push(keys[i][1] + '=' + fmtMs(v));
  }
  const c = value(data, name, 'count');
  if (c !== null) parts.push('n=' + c);
  return parts.join(' ');
}

function rateText(data, name) {
  const m = metric(data, name);
  if (!m || !m.values) return 'no samples';
  const passes = m.values.passes || 0;
  const fails = m.values.fails || 0;
  if (passes + fails === 0) return 'no samples';
  return fmtPct(m.values.rate) + ' (' + passes + ' of ' + (passes + fails) + ')';
}

/** Thresholds that only force a sub-metric into the summary; not shown as verdicts. */
function isInformational(expr) {
  return /^count\s*>=\s*0$/.test(expr);
}

/** [{ metric, expr, ok, observed }] for every real threshold in the summary data. */
export function thresholdResults(data) {
  const out = [];
  const metrics = (data && data.metrics) || {};
  const names = Object.keys(metrics).sort();
  for (let i = 0; i < names.length; i++) {
    const m = metrics[names[i]];
    if (!m || !m.thresholds) continue;
    const exprs = Object.keys(m.thresholds);
    for (let j = 0; j < exprs.length; j++) {
      if (isInformational(exprs[j])) continue;
      out.push({
        metric: names[i],
        expr: exprs[j],
        ok: !!m.thresholds[exprs[j]].ok,
        observed: observedFor(m, exprs[j]),
      });
    }
  }
  return out;
}

function observedFor(m, expr) {
  const mm = /^\s*([a-z]+(?:\([0-9.]+\))?)/.exec(expr);
  if (!mm || !m.values) return null;
  const v = m.values[mm[1]];
  return typeof v === 'number' ? v : null;
}

function collectChecks(group, out) {
  if (!group) return out;
  const checks = group.checks || [];
  for (let i = 0; i < checks.length; i++) out.push(checks[i]);
  const groups = group.groups || [];
  for (let i = 0; i < groups.length; i++) collectChecks(groups[i], out);
  return out;
}

function subMetricCounts(data, base, tag) {
  const out = [];
  const prefix = base + '{' + tag + ':';
  const metrics = (data && data.metrics) || {};
  const names = Object.keys(metrics).sort();
  for (let i = 0; i < names.length; i++) {
    if (names[i].indexOf(prefix) !== 0) continue;
    const c = count(data, names[i]);
    if (c > 0) out.push(names[i].slice(prefix.length, -1) + '=' + c);
  }
  return out;
}

/**
 * Readable end-of-test text from k6's summary data (handleSummary's argument).
 * opts: { title, script, lines: [extra "key: value" lines describing the run] }
 */
export function renderSummary(data, opts) {
  const o = opts || {};
  const out = [];
  const thresholds = thresholdResults(data);
  const failed = thresholds.filter(function (t) { return !t.ok; });
  const durMs = data && data.state ? data.state.testRunDurationMs : null;

  out.push('pgchat load test' + (o.script ? ' - ' + o.script : '') + (o.title ? ' (' + o.title + ')' : ''));
  out.push('='.repeat(60));
  out.push('Result: ' + (failed.length === 0 ? 'PASS' : 'FAIL') + ' - ' +
    (thresholds.length - failed.length) + ' of ' + thresholds.length + ' thresholds met' +
    (durMs ? ', ran ' + (durMs / 1000).toFixed(1) + 's' : ''));
  if (o.lines && o.lines.length) {
    for (let i = 0; i < o.lines.length; i++) out.push('  ' + o.lines[i]);
  }

  out.push('');
  out.push('Delivery');
  const ratio = deliveryRatio(data);
  out.push(line('messages sent / acked', fmtNum(count(data, 'messages_sent')) + ' / ' +
    fmtNum(count(data, 'messages_acked')) + ' (unacked ' + fmtNum(count(data, 'messages_unacked')) +
    ', resent ' + fmtNum(count(data, 'messages_resent')) + ')'));
  out.push(line('messages received (all VUs)', fmtNum(count(data, 'messages_received'))));
  out.push(line('delivered / expected', fmtNum(count(data, 'delivered_messages')) + ' / ' +
    fmtNum(count(data, 'expected_deliveries')) + ' = ' + fmtPct(ratio)));
  out.push(line('missed at receivers (HTTP)', fmtNum(count(data, 'messages_missed')) +
    ' in ' + fmtNum(count(data, 'receivers_incomplete')) + ' incomplete of ' +
    fmtNum(count(data, 'receivers_checked')) + ' receivers checked'));
  out.push(line('delivery latency', trendText(data, 'delivery_latency')));
  out.push(line('ack latency', trendText(data, 'ack_latency')));

  out.push('');
  out.push('Ordering (must all be 0)');
  out.push(line('seq gaps (missing seqs)', fmtNum(count(data, 'seq_gaps'))));
  out.push(line('duplicates', fmtNum(count(data, 'duplicates'))));
  out.push(line('out of order', fmtNum(count(data, 'out_of_order'))));
  out.push(line('client_msg_id stored twice', fmtNum(count(data, 'duplicate_client_msg_ids'))));
  out.push(line('reconnect seams broken', fmtNum(count(data, 'reconnect_seam_broken')) + ' of ' +
    fmtNum(count(data, 'reconnect_seams_checked')) + ' checked (history msgs ' +
    fmtNum(count(data, 'history_messages')) + ')'));

  out.push('');
  out.push('Connections');
  out.push(line('ws connect time', trendText(data, 'ws_connect_time')));
  out.push(line('ws connect success', rateText(data, 'ws_connect_success')));
  out.push(line('join latency', trendText(data, 'join_latency')));
  out.push(line('reconnects', fmtNum(count(data, 'ws_reconnects'))));
  const closes = subMetricCounts(data, 'ws_server_closes', 'code');
  out.push(line('closed by server', fmtNum(count(data, 'ws_server_closes')) +
    (closes.length ? ' (' + closes.join(', ') + ')' : '')));
  out.push(line('typing / presence frames', fmtNum(count(data, 'typing_received')) + ' / ' +
    fmtNum(count(data, 'presence_received'))));

  out.push('');
  out.push('Errors');
  const codes = subMetricCounts(data, 'error_frames', 'code');
  out.push(line('error frames', fmtNum(count(data, 'error_frames')) + ' (unexpected ' +
    fmtNum(count(data, 'error_frames{expected:false}')) + ')' +
    (codes.length ? ' ' + codes.join(', ') : '')));
  out.push(line('protocol errors', fmtNum(count(data, 'protocol_errors'))));

  if (thresholds.length) {
    out.push('');
    out.push('Thresholds');
    for (let i = 0; i < thresholds.length; i++) {
      const t = thresholds[i];
      out.push('  ' + (t.ok ? 'ok     ' : 'FAILED ') + pad(t.metric, 34) + pad(t.expr, 16) +
        (t.observed === null ? '' : 'observed ' + fmtNum(t.observed)));
    }
  }

  const checks = collectChecks(data && data.root_group, []);
  if (checks.length) {
    out.push('');
    out.push('Checks');
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i];
      out.push('  ' + (c.fails ? 'FAILED ' : 'ok     ') + pad(c.name, 40) + c.passes + ' passed, ' +
        c.fails + ' failed');
    }
  }
  out.push('');
  return out.join('\n');
}

/** Joins the summary directory and a file name without doubling slashes. */
export function summaryPath(dir, file) {
  if (dir === undefined || dir === null || dir === '' || dir === '.') return file;
  return dir.replace(/\/+$/, '') + '/' + file;
}

/**
 * The object handleSummary returns: summary.json (k6's data plus our computed figures),
 * summary.txt and the same text on stdout.
 */
export function buildSummaryOutputs(data, opts) {
  const o = opts || {};
  const dir = o.summaryDir === undefined ? 'loadtest' : o.summaryDir;
  const text = renderSummary(data, o);
  const thresholds = thresholdResults(data);
  const enriched = {};
  const keys = Object.keys(data || {});
  for (let i = 0; i < keys.length; i++) enriched[keys[i]] = data[keys[i]];
  enriched.pgchat = {
    script: o.script || null,
    passed: thresholds.every(function (t) { return t.ok; }),
    delivery_ratio: deliveryRatio(data),
    failed_thresholds: thresholds.filter(function (t) { return !t.ok; }),
    run: o.lines || [],
  };
  const out = {};
  out[summaryPath(dir, 'summary.json')] = JSON.stringify(enriched, null, 2);
  out[summaryPath(dir, 'summary.txt')] = text;
  out.stdout = text;
  return out;
}
