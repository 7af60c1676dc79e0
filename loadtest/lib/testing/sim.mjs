// Deterministic, single-threaded simulation of what the k6 scripts need from k6 and from a
// pgchat server, so the k6-facing code (lib/k6-session.js and the scripts) runs under
// `node --test` although k6 itself cannot be installed here.
//
// - Virtual time: Date.now() is replaced by sim.now while a simulation runs; sleep() and
//   socket timers advance it. ws.connect blocks (like k6's) by running the socket's event
//   queue until the socket is closed.
// - FakeChatServer implements the wire contract of PROTOCOL.md closely enough for the load
//   test's purposes (join with/without last_seen_seq, history, live fan-out to the socket,
//   acks with idempotent client_msg_id, typing, errors) and can inject faults: dropped or
//   duplicated live messages, history holes, server-side closes, held acks, bad frames.

import { pack, unpack } from 'msgpackr';

import { makeContent } from '../chat-protocol.js';

export const START = 1_700_000_000_000;

export const sim = {
  now: START,
  startedAt: START,
  metrics: {},
  declared: {},
  checks: [],
  httpCalls: [],
  exec: null,
  server: null,
  httpHandler: () => ({ status: 503 }),
  aborted: null,
  activeSocket: false,
  logs: [],

  reset() {
    this.now = START;
    this.startedAt = START;
    this.metrics = {};
    this.checks = [];
    this.httpCalls = [];
    this.aborted = null;
    this.activeSocket = false;
    this.logs = [];
    this.exec = {
      scenario: { name: 'test', executor: 'per-vu-iterations', startTime: START, iterationInTest: 0, progress: 0 },
      vu: { idInTest: 1, idInInstance: 1, iterationInScenario: 0, iterationInInstance: 0 },
    };
  },

  advance(ms) {
    if (!(ms >= 0)) throw new Error(`cannot advance time by ${ms}`);
    this.now += ms;
  },

  declare(name, type) {
    if (this.declared[name] && this.declared[name] !== type) throw new Error(`metric ${name} redeclared as ${type}`);
    this.declared[name] = type;
  },

  record(name, value, tags) {
    (this.metrics[name] = this.metrics[name] || []).push({ value, tags });
  },

  /** Sum of a metric's samples, optionally only those whose tags match `where`. */
  sum(name, where) {
    return (this.metrics[name] || [])
      .filter((s) => !where || Object.keys(where).every((k) => s.tags[k] === where[k]))
      .reduce((a, s) => a + s.value, 0);
  },

  count(name) {
    return (this.metrics[name] || []).length;
  },

  values(name) {
    return (this.metrics[name] || []).map((s) => s.value);
  },

  failedChecks() {
    return this.checks.filter((c) => !c.ok);
  },
};

sim.reset();

const realNow = Date.now;

/** Runs fn with Date.now() returning virtual time. */
export function withVirtualTime(fn) {
  Date.now = () => sim.now;
  try {
    return fn();
  } finally {
    Date.now = realNow;
  }
}

/** Sets what k6/execution reports for the next simulated VU iteration. */
export function setExec({ scenario = 'test', startTime = sim.now, iterationInTest = 0, vu = 1, iteration = 0 } = {}) {
  sim.exec.scenario = { ...sim.exec.scenario, name: scenario, startTime, iterationInTest };
  sim.exec.vu = { ...sim.exec.vu, idInTest: vu, idInInstance: vu, iterationInScenario: iteration };
}

// ------------------------------------------------------------------ the blocking socket

/**
 * k6/ws connect(): accepts through sim.server, calls the setup function, emits 'open', then
 * processes timers and server frames in virtual-time order until the socket closes.
 */
export function connect(url, params, fn) {
  if (typeof params === 'function') {
    fn = params;
    params = undefined;
  }
  if (typeof fn !== 'function') throw new Error('last argument to ws.connect must be a function');
  if (sim.activeSocket) throw new Error('nested ws.connect: a k6 VU runs one blocking connect at a time');
  const queue = [];
  let n = 0;
  let closed = false;
  const handlers = {};
  const schedule = (at, f) => queue.push({ at, n: n++, f });
  const emit = (ev, arg) => { for (const h of handlers[ev] || []) h(arg); };

  const io = {
    deliver(frame, binary, delayMs = 1) {
      schedule(sim.now + delayMs, () => {
        if (closed) return;
        if (binary) {
          const u8 = frame;
          emit('binaryMessage', u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength));
        } else {
          emit('message', frame);
        }
      });
    },
    later(delayMs, f) {
      schedule(sim.now + delayMs, () => { if (!closed) f(); });
    },
    close(code, delayMs = 1) {
      schedule(sim.now + delayMs, () => {
        if (closed) return;
        closed = true;
        handler.onClose(code, 'server');
        emit('close', code);
      });
    },
  };

  const handler = sim.server.accept(url, params || {}, io);
  if (handler.refuse) throw new Error(`websocket: bad handshake (status ${handler.refuse})`);

  const socket = {
    on(ev, h) {
      if (typeof h !== 'function') throw new Error('handler must be a function');
      (handlers[ev] = handlers[ev] || []).push(h);
    },
    send(text) {
      if (typeof text !== 'string') throw new Error('socket.send takes a string; use sendBinary for bytes');
      if (!closed) handler.fromClient(text, false);
    },
    sendBinary(buf) {
      if (!(buf instanceof ArrayBuffer)) throw new Error('socket.sendBinary takes an ArrayBuffer');
      if (!closed) handler.fromClient(new Uint8Array(buf), true);
    },
    setTimeout(f, ms) {
      if (!(ms > 0)) throw new Error(`setTimeout requires a >0 timeout parameter, received ${ms}`);
      schedule(sim.now + ms, () => { if (!closed) f(); });
    },
    setInterval(f, ms) {
      if (!(ms > 0)) throw new Error(`setInterval requires a >0 timeout parameter, received ${ms}`);
      const tick = () => {
        if (closed) return;
        f();
        schedule(sim.now + ms, tick);
      };
      schedule(sim.now + ms, tick);
    },
    ping() {},
    close(code) {
      if (closed) return;
      closed = true;
      const c = code === undefined ? 1001 : code;
      handler.onClose(c, 'client');
      emit('close', c);
    },
  };

  sim.activeSocket = true;
  try {
    fn(socket);
    emit('open');
    const deadline = sim.now + 30 * 60 * 1000;
    while (!closed) {
      if (queue.length === 0) throw new Error('socket has nothing scheduled and is never closed: k6 would hang');
      queue.sort((a, b) => a.at - b.at || a.n - b.n);
      const ev = queue.shift();
      if (ev.at > sim.now) sim.now = ev.at;
      if (sim.now > deadline) throw new Error('simulated socket outlived 30 minutes');
      ev.f();
    }
  } finally {
    sim.activeSocket = false;
  }
  return { url, status: 101, headers: {}, body: '', error: '' };
}

// ------------------------------------------------------------------ fake server

const CLIENT_EVENTS = ['join_room', 'leave_room', 'send_message', 'typing_start', 'typing_stop'];

export class FakeChatServer {
  /**
   * opts: { trafficMs, trafficUntil, latencyMs, faults: { dropLive:Set, duplicateLive:Set, holdAcksOnConn,
   *   historyDrop:Set, stringIdSeq, closeOnce:{afterMs, code}, holdAcksAfterMs,
   *   typingRateLimitEvery, notMember, unhealthy, omitLastSeq } }
   */
  constructor(opts = {}) {
    this.trafficMs = opts.trafficMs || 0;
    this.trafficUntil = opts.trafficUntil === undefined ? Infinity : opts.trafficUntil;
    this.latencyMs = opts.latencyMs || 2;
    this.faults = opts.faults || {};
    this.rooms = new Map();
    this.frames = []; // every client frame: { event, data, binary, conn }
    this.violations = []; // client frames that break the contract
    this.connections = [];
    this.closeUsed = false;
    this.typingCount = 0;
  }

  room(id) {
    let r = this.rooms.get(id);
    if (!r) {
      r = { id, seq: 0, messages: [], idem: new Map(), nextTrafficAt: null, trafficN: 0, subscribers: new Set() };
      this.rooms.set(id, r);
    }
    return r;
  }

  commit(room, { userId, username, content, clientMsgId, at }) {
    room.seq += 1;
    const m = {
      id: 5000 + room.seq, seq: room.seq, room_id: room.id, user_id: userId, username, content,
      created_at: new Date(at === undefined ? sim.now : at).toISOString(),
    };
    if (clientMsgId) m.client_msg_id = clientMsgId;
    room.messages.push(m);
    return m;
  }

  /** Commits background messages due up to `now` (other users talking); returns them. */
  advanceTraffic(room, now) {
    const out = [];
    if (!this.trafficMs) return out;
    if (room.nextTrafficAt === null) room.nextTrafficAt = now + this.trafficMs;
    while (room.nextTrafficAt <= now && room.nextTrafficAt <= this.trafficUntil) {
      room.trafficN += 1;
      const at = room.nextTrafficAt;
      out.push(this.commit(room, {
        userId: 'user-bg', username: 'background', at,
        content: makeContent(at - 5, 'bg', room.trafficN), // sent 5 ms before commit
      }));
      room.nextTrafficAt += this.trafficMs;
    }
    return out;
  }

  http(method, url) {
    const u = new URL(url);
    if (method === 'GET' && u.pathname === '/health') return { status: this.faults.unhealthy ? 503 : 200, body: { ok: true } };
    const join = /^\/rooms\/([^/]+)\/join$/.exec(u.pathname);
    if (method === 'POST' && join) return { status: 200, body: { success: true } };
    const msgs = /^\/rooms\/([^/]+)\/messages$/.exec(u.pathname);
    if (method === 'GET' && msgs) {
      const room = this.room(decodeURIComponent(msgs[1]));
      this.advanceTraffic(room, sim.now);
      const limit = Number(u.searchParams.get('limit') || 50);
      const newestFirst = room.messages.slice().reverse().slice(0, limit);
      return { status: 200, body: { messages: newestFirst, next_cursor: null } };
    }
    return { status: 404, body: { statusCode: 404, code: 'not_found' } };
  }

  accept(url, params, io) {
    const u = new URL(url);
    const token = u.searchParams.get('token') || '';
    if (!/^tok-\d+$/.test(token)) return { refuse: 401 };
    const userNo = token.slice(4);
    const format = u.searchParams.get('format') === 'msgpack' ? 'msgpack' : 'json';
    const conn = {
      id: this.connections.length, url, params, format, token, userId: `user-${userNo}`,
      username: `lt_user_${userNo}`, rooms: new Set(), closedBy: null, closeCode: null, openedAt: sim.now,
      sent: 0,
    };
    this.connections.push(conn);
    const server = this;
    const send = (event, data, delay) => {
      const env = { event, data };
      if (conn.format === 'msgpack') io.deliver(pack(env), true, delay || server.latencyMs);
      else io.deliver(JSON.stringify(env), false, delay || server.latencyMs);
    };
    conn.send = send;
    conn.io = io;

    const f = this.faults;
    if (f.closeOnce && !this.closeUsed) {
      this.closeUsed = true;
      io.close(f.closeOnce.code, f.closeOnce.afterMs);
    }

    // Live fan-out: one new_message per message, or one ascending new_message_batch when
    // several are due together (as the real server batches ~20 ms windows). A duplicate is
    // re-sent as its own frame afterwards.
    const deliverLive = (list) => {
      const out = [];
      const again = [];
      for (const m of list) {
        if (f.dropLive && f.dropLive.has(m.seq)) continue;
        const copy = f.stringIdSeq === m.seq ? { ...m, id: String(m.id) } : m;
        out.push(copy);
        if (f.duplicateLive && f.duplicateLive.has(m.seq)) again.push(copy);
      }
      if (out.length === 1) send('new_message', out[0]);
      else if (out.length > 1) send('new_message_batch', out);
      for (const m of again) send('new_message', m);
    };

    const tick = (room) => {
      if (!conn.rooms.has(room.id)) return;
      const due = this.advanceTraffic(room, sim.now);
      if (due.length) deliverLive(due);
      if (room.nextTrafficAt !== null && room.nextTrafficAt <= this.trafficUntil) {
        io.later(Math.max(1, room.nextTrafficAt - sim.now), () => tick(room));
      }
    };

    const handleFrame = (frame, binary) => {
      this.frames.push({ ...frame, binary, conn: conn.id, at: sim.now });
      const d = frame.data || {};
      if (!CLIENT_EVENTS.includes(frame.event) || typeof d.room_id !== 'string') {
        this.violations.push({ reason: 'bad_frame', frame });
        send('error', { code: 'invalid_payload', message: 'bad frame', ref: frame.event });
        return;
      }
      const room = this.room(d.room_id);
      switch (frame.event) {
        case 'join_room': {
          if (f.notMember) {
            send('error', { code: 'not_a_member', message: 'not a member', ref: 'join_room' });
            return;
          }
          this.advanceTraffic(room, sim.now);
          conn.rooms.add(room.id);
          const joined = { room_id: room.id };
          if (!f.omitLastSeq) joined.last_seq = room.seq;
          send('joined_room', joined);
          if (d.last_seen_seq !== undefined) {
            if (!Number.isInteger(d.last_seen_seq)) this.violations.push({ reason: 'last_seen_seq', frame });
            const messages = room.messages.filter((m) => m.seq > d.last_seen_seq && !(f.historyDrop && f.historyDrop.has(m.seq)));
            send('history', { room_id: room.id, messages, next_cursor: null, has_more: false });
          }
          if (this.trafficMs) io.later(Math.max(1, room.nextTrafficAt - sim.now), () => tick(room));
          return;
        }
        case 'leave_room':
          conn.rooms.delete(room.id);
          return;
        case 'send_message': {
          if (typeof d.content !== 'string') this.violations.push({ reason: 'content', frame });
          if (d.client_msg_id !== undefined && (typeof d.client_msg_id !== 'string' || d.client_msg_id.length > 64)) {
            this.violations.push({ reason: 'client_msg_id', frame });
          }
          if (!conn.rooms.has(room.id)) {
            send('error', { code: 'not_a_member', message: 'join first', ref: 'send_message' });
            return;
          }
          conn.sent += 1;
          const key = `${conn.userId}|${d.client_msg_id}`;
          if (d.client_msg_id && room.idem.has(key)) {
            const m = room.idem.get(key);
            send('message_ack', { room_id: room.id, seq: m.seq, id: m.id, created_at: m.created_at, client_msg_id: d.client_msg_id });
            return;
          }
          this.advanceTraffic(room, sim.now);
          const m = this.commit(room, { userId: conn.userId, username: conn.username, content: d.content, clientMsgId: d.client_msg_id });
          if (d.client_msg_id) room.idem.set(key, m);
          const held = f.holdAcksAfterMs !== undefined && sim.now - conn.openedAt >= f.holdAcksAfterMs &&
            (f.holdAcksOnConn === undefined || f.holdAcksOnConn === conn.id);
          if (!held) {
            send('message_ack', { room_id: room.id, seq: m.seq, id: m.id, created_at: m.created_at, client_msg_id: d.client_msg_id });
          }
          deliverLive([m]);
          return;
        }
        case 'typing_start':
        case 'typing_stop':
          this.typingCount += 1;
          if (f.typingRateLimitEvery && this.typingCount % f.typingRateLimitEvery === 0) {
            send('error', { code: 'rate_limited', message: 'slow down', ref: frame.event });
          } else {
            send('typing', { room_id: room.id, user_id: 'user-other', username: 'other', typing: frame.event === 'typing_start' });
          }
          return;
        default:
          return;
      }
    };

    return {
      fromClient(raw, binary) {
        if (binary !== (conn.format === 'msgpack')) server.violations.push({ reason: 'framing', binary });
        let frame;
        try {
          frame = binary ? unpack(raw) : JSON.parse(raw);
        } catch (e) {
          server.violations.push({ reason: 'undecodable', error: String(e) });
          return;
        }
        handleFrame(frame, binary);
      },
      onClose(code, by) {
        conn.closedAt = sim.now;
        conn.closedBy = by;
        conn.closeCode = code;
        conn.rooms.clear();
      },
    };
  }
}

/** Installs a server as both the WebSocket and the HTTP endpoint of the simulation. */
export function useServer(server) {
  sim.server = server;
  sim.httpHandler = (method, url, body, params) => server.http(method, url, body, params);
  return server;
}
