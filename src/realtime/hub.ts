import type { TemplatedApp } from 'uWebSockets.js';
import type { Db } from '../db/pool.js';
import { messagesAfter, lastSeqs, streamMessages, type StoredMessage } from '../db/messages.js';
import type { Logger } from '../log.js';
import { metrics } from '../metrics.js';
import { CloseCode, encodeFrame, encodeHistory, encodeMessages, type Encoded, type Framing } from '../ws/protocol.js';
import type { RoomSub, Socket } from './socket.js';

/**
 * Local fan-out of one worker. For every room with local sockets it keeps the
 * room's live stream gapless and in order:
 *   queued    highest seq accepted in order (appended to the batch)
 *   published highest seq sent to the room's topics
 *   target    highest seq known to exist (from the bus, a doorbell or an audit)
 * Messages from the bus that skip ahead wait in `pending` while the hole is read
 * from the table (repair), so nothing is published out of order or twice.
 *
 * A socket joining with last_seen_seq reads history from the table up to
 * `published` and subscribes in the same tick it reaches it: the seam has
 * neither gap nor repeat. Slow sockets are unsubscribed (paused) before their
 * buffer grows unbounded, and caught up the same way once they drain.
 */
export interface Hub {
  /** Takes a hold on the room's state before the join's database read (whose last_seq then serves as baseline). */
  hold(roomId: string): void;
  release(roomId: string): void;
  join(ws: Socket, roomId: string, lastSeenSeq: number | undefined, dbLastSeq: number): Promise<void>;
  leave(ws: Socket, roomId: string): boolean;
  dropSocket(ws: Socket): void;
  acceptInline(roomId: string, firstSeq: number, bodies: string[]): void;
  doorbell(roomId: string, toSeq: number): void;
  roomDeleted(roomId: string): void;
  /** Sends an event to every local socket live in the room, encoded once per framing. */
  publishEvent(roomId: string, event: string, data: unknown): void;
  /** Local sockets in a room (live or catching up). */
  socketsIn(roomId: string): Iterable<Socket>;
  /** Re-reads every tracked room's newest seq and repairs what the live stream missed. */
  audit(): Promise<void>;
  onDrain(ws: Socket): void;
  start(): void;
  /** Publishes what is batched and stops timers. */
  stop(): void;
  readonly roomCount: number;
}

interface RoomState {
  readonly id: string;
  readonly topics: Record<Framing, string>;
  queued: number;
  published: number;
  target: number;
  batch: string[];
  pending: Map<number, string> | null;
  readonly sockets: Set<Socket>;
  holds: number;
  flushTimer: NodeJS.Timeout | null;
  flushImmediate: NodeJS.Immediate | null;
  lastFlushAt: number;
  /** Messages accepted in the current rate window (decides batching). */
  rateCount: number;
  rateWindowAt: number;
  repairing: boolean;
  deleted: boolean;
  waiters: Array<() => void>;
}

export interface HubOptions {
  app: () => TemplatedApp;
  db: Db;
  log: Logger;
  batchWindowMs: number;
  /** Messages per second from which a room's frames are batched per window. */
  batchBusyRate: number;
  historyPageSize: number;
  softBackpressure: number;
  hardBackpressure: number;
  auditMs: number;
}

const UNKNOWN = -1;
const REPAIR_PAGE = 1000;
const SWEEP_MS = 100;

export function createHub(opts: HubOptions): Hub {
  const rooms = new Map<string, RoomState>();
  /** Sockets in at least one room: the ones the backpressure sweep looks at. */
  const roomSockets = new Set<Socket>();
  let sweepTimer: NodeJS.Timeout | undefined;
  let auditTimer: NodeJS.Timeout | undefined;

  function roomState(roomId: string): RoomState {
    let s = rooms.get(roomId);
    if (!s) {
      s = {
        id: roomId,
        topics: { json: roomId, msgpack: `${roomId}#m` },
        queued: UNKNOWN,
        published: UNKNOWN,
        target: UNKNOWN,
        batch: [],
        pending: null,
        sockets: new Set(),
        holds: 0,
        flushTimer: null,
        flushImmediate: null,
        lastFlushAt: 0,
        rateCount: 0,
        rateWindowAt: 0,
        repairing: false,
        deleted: false,
        waiters: [],
      };
      rooms.set(roomId, s);
    }
    return s;
  }

  function maybeForget(s: RoomState): void {
    if (s.sockets.size || s.holds) return;
    if (s.flushTimer) clearTimeout(s.flushTimer);
    if (s.flushImmediate) clearImmediate(s.flushImmediate);
    s.deleted = true;
    wake(s);
    if (rooms.get(s.id) === s) rooms.delete(s.id);
  }

  // ---- the live stream -------------------------------------------------------

  function setBaseline(s: RoomState, lastSeq: number): void {
    if (s.queued !== UNKNOWN) return;
    s.queued = s.published = lastSeq;
    s.target = Math.max(s.target, lastSeq);
    if (s.pending) {
      for (const seq of s.pending.keys()) if (seq <= lastSeq) s.pending.delete(seq);
      drainPending(s);
    }
    if (s.target > s.queued) void repair(s);
  }

  function accept(s: RoomState, seq: number, body: string): void {
    if (seq > s.target) s.target = seq;
    if (s.queued === UNKNOWN || seq > s.queued + 1) {
      (s.pending ??= new Map()).set(seq, body);
      if (s.queued !== UNKNOWN) void repair(s);
      return;
    }
    if (seq <= s.queued) return; // already have it (e.g. a repair read it first)
    append(s, seq, body);
    drainPending(s);
  }

  function append(s: RoomState, seq: number, body: string): void {
    s.batch.push(body);
    s.queued = seq;
    if (s.pending) s.pending.delete(seq);
    scheduleFlush(s);
  }

  function drainPending(s: RoomState): void {
    const pending = s.pending;
    if (!pending) return;
    let body: string | undefined;
    while ((body = pending.get(s.queued + 1)) !== undefined) append(s, s.queued + 1, body);
    if (pending.size === 0) s.pending = null;
  }

  function scheduleFlush(s: RoomState): void {
    const now = Date.now();
    if (now - s.rateWindowAt >= opts.batchWindowMs) {
      s.rateWindowAt = now;
      s.rateCount = 0;
    }
    s.rateCount++;
    if (s.flushTimer || s.flushImmediate) return;
    // A quiet room publishes on the next tick (which still gathers everything that
    // arrived in this read): no added latency. A busy one (over BATCH_BUSY_RATE)
    // publishes at most one frame per window, which is what keeps fan-out cheap.
    const busy = s.rateCount * 1000 > opts.batchBusyRate * Math.max(1, opts.batchWindowMs);
    const wait = busy ? s.lastFlushAt + opts.batchWindowMs - now : 0;
    if (wait <= 0) s.flushImmediate = setImmediate(flush, s);
    else s.flushTimer = setTimeout(flush, wait, s);
  }

  function flush(s: RoomState): void {
    if (s.flushTimer) clearTimeout(s.flushTimer);
    if (s.flushImmediate) clearImmediate(s.flushImmediate);
    s.flushTimer = null;
    s.flushImmediate = null;
    if (s.batch.length === 0 || s.deleted) return;
    const bodies = s.batch;
    s.batch = [];
    s.published = s.queued;
    s.lastFlushAt = Date.now();
    publishBodies(s, bodies);
    wake(s);
  }

  /** Encodes once per framing that has subscribers here, and publishes; returns frames sent. */
  function publishToRoom(s: RoomState, encode: (framing: Framing) => Encoded): number {
    const app = opts.app();
    let frames = 0;
    if (app.numSubscribers(s.topics.json)) {
      app.publish(s.topics.json, encode('json') as string, false);
      frames++;
    }
    if (app.numSubscribers(s.topics.msgpack)) {
      app.publish(s.topics.msgpack, encode('msgpack'), true);
      frames++;
    }
    return frames;
  }

  function publishBodies(s: RoomState, bodies: string[]): void {
    const frames = publishToRoom(s, (framing) => encodeMessages(framing, bodies));
    metrics.messagesPublished.inc(bodies.length);
    if (frames) metrics.framesPublished.inc(frames);
  }

  function wake(s: RoomState): void {
    if (!s.waiters.length) return;
    const waiters = s.waiters;
    s.waiters = [];
    for (const w of waiters) w();
  }

  function progress(s: RoomState, ms: number): Promise<void> {
    return new Promise((resolve) => {
      s.waiters.push(resolve);
      setTimeout(resolve, ms).unref();
    });
  }

  /** Reads (queued, target] from the table and feeds it through accept, in order. */
  async function repair(s: RoomState): Promise<void> {
    if (s.repairing || s.queued === UNKNOWN || s.deleted) return;
    s.repairing = true;
    let retry = false;
    try {
      while (!s.deleted && s.queued < s.target) {
        const from = s.queued;
        const rows = await messagesAfter(opts.db, s.id, from, REPAIR_PAGE, s.target);
        metrics.gapRepairs.inc();
        for (const r of rows) accept(s, r.seq, r.body);
        if (s.queued === from) {
          // Not visible yet (or gone): try again shortly rather than spin.
          retry = true;
          break;
        }
      }
    } catch (err) {
      opts.log.warn({ err: (err as Error).message, room: s.id }, 'gap repair failed; retrying');
      retry = true;
    } finally {
      s.repairing = false;
    }
    if (retry && !s.deleted) setTimeout(() => void repair(s), 200).unref();
  }

  // ---- sockets --------------------------------------------------------------

  function sendTo(ws: Socket, frame: Encoded): void {
    const d = ws.getUserData();
    if (d.closed) return;
    ws.send(frame, typeof frame !== 'string');
  }

  function goLive(ws: Socket, s: RoomState, sub: RoomSub): void {
    sub.phase = 'live';
    sub.cursor = s.published;
    ws.subscribe(s.topics[ws.getUserData().framing]);
  }

  /**
   * Sends history from sub.cursor up to the room's published seq, then subscribes.
   * Stops (paused) when the socket backs up; resumed from sub.cursor on drain.
   */
  async function catchUp(ws: Socket, s: RoomState, sub: RoomSub, epoch: number): Promise<void> {
    const d = ws.getUserData();
    const stale = () => d.closed || sub.epoch !== epoch || s.deleted;
    let sentFinal = false;
    while (!stale()) {
      if (ws.getBufferedAmount() > opts.softBackpressure) {
        pause(ws, sub);
        return;
      }
      const upTo = s.published;
      if (sub.cursor < upTo) {
        const big = upTo - sub.cursor > opts.historyPageSize;
        const pages = await readHistory(s.id, sub.cursor, upTo, big);
        if (stale()) return;
        if (pages.length === 0) {
          sub.cursor = upTo; // nothing stored there any more (the room went away): do not spin
          continue;
        }
        for (const page of pages) {
          const last = page[page.length - 1].seq;
          sub.cursor = last;
          const done = last === s.published;
          sendTo(ws, encodeHistory(d.framing, s.id, page.map(bodyOf), done ? null : last, !done));
          if (done) {
            goLive(ws, s, sub);
            return;
          }
        }
        continue;
      }
      if (sub.cursor > upTo) {
        // The client has seen more than this worker published: catch the room up first.
        if (sub.cursor <= s.queued) flush(s);
        else {
          if (sub.cursor > s.target) s.target = sub.cursor;
          void repair(s);
          await progress(s, 250);
        }
        continue;
      }
      if (!sentFinal) sendTo(ws, encodeHistory(d.framing, s.id, [], null, false));
      sentFinal = true;
      goLive(ws, s, sub);
      return;
    }
  }

  /** History pages after..upTo; a large backlog streams through a server-side cursor. */
  async function readHistory(roomId: string, after: number, upTo: number, big: boolean): Promise<StoredMessage[][]> {
    if (!big) return [await messagesAfter(opts.db, roomId, after, opts.historyPageSize, upTo)];
    const pages: StoredMessage[][] = [];
    const client = await opts.db.connect();
    try {
      // Read at most a few pages per round so a slow socket never pins a connection.
      let budget = 8;
      await streamMessages(client, roomId, after, upTo, opts.historyPageSize, (page) => {
        pages.push(page);
        return --budget > 0;
      });
    } finally {
      client.release();
    }
    return pages;
  }

  function pause(ws: Socket, sub: RoomSub): void {
    const d = ws.getUserData();
    sub.epoch++;
    sub.phase = 'paused';
    if (!d.paused) {
      d.paused = true;
      metrics.slowConsumers.inc({ action: 'paused' });
    }
  }

  /**
   * uWS holds a topic's messages per topic until the end of the loop iteration;
   * unsubscribing before then would lose this socket's share. A direct send
   * drains them into the socket first, so a ping goes before the unsubscribe.
   */
  function unsubscribeDrained(ws: Socket, topic: string): void {
    ws.ping();
    ws.unsubscribe(topic);
  }

  /** Unsubscribes a slow socket from its live rooms; what it then misses is read from the table on resume. */
  function pauseAll(ws: Socket): void {
    const d = ws.getUserData();
    for (const [roomId, sub] of d.rooms) {
      const s = rooms.get(roomId);
      if (!s) continue;
      if (sub.phase === 'live') {
        // Everything published so far is in its buffer after this (see unsubscribeDrained).
        unsubscribeDrained(ws, s.topics[d.framing]);
        sub.cursor = s.published;
      }
      pause(ws, sub);
    }
  }

  function resume(ws: Socket): void {
    const d = ws.getUserData();
    if (!d.paused || d.closed) return;
    d.paused = false;
    metrics.slowConsumers.inc({ action: 'resumed' });
    for (const [roomId, sub] of d.rooms) {
      const s = rooms.get(roomId);
      if (!s || sub.phase !== 'paused') continue;
      sub.phase = 'catching_up';
      const epoch = ++sub.epoch;
      void catchUp(ws, s, sub, epoch).catch((err) => catchUpFailed(ws, err));
    }
  }

  function catchUpFailed(ws: Socket, err: unknown): void {
    const d = ws.getUserData();
    opts.log.warn({ err: (err as Error).message, user: d.userId }, 'catch-up failed; closing the socket so the client resumes');
    // The client reconnects and resumes from its last_seen_seq: nothing is skipped.
    if (!d.closed) ws.end(CloseCode.slowConsumer, 'resume_required');
  }

  function sweep(): void {
    const soft = opts.softBackpressure;
    for (const ws of roomSockets) {
      const d = ws.getUserData();
      if (d.closed) continue;
      const buffered = ws.getBufferedAmount();
      if (buffered > opts.hardBackpressure) {
        metrics.slowConsumers.inc({ action: 'closed' });
        ws.end(CloseCode.slowConsumer, 'slow_consumer');
      } else if (!d.paused && buffered > soft) pauseAll(ws);
      else if (d.paused && buffered < soft / 4) resume(ws);
    }
  }

  function removeFromRoom(ws: Socket, s: RoomState, sub: RoomSub): void {
    const d = ws.getUserData();
    sub.epoch++;
    if (sub.phase === 'live' && !d.closed) unsubscribeDrained(ws, s.topics[d.framing]);
    s.sockets.delete(ws);
    maybeForget(s);
  }

  const bodyOf = (m: StoredMessage) => m.body;

  return {
    hold(roomId) {
      roomState(roomId).holds++;
    },
    release(roomId) {
      const s = rooms.get(roomId);
      if (!s) return;
      s.holds--;
      maybeForget(s);
    },

    async join(ws, roomId, lastSeenSeq, dbLastSeq) {
      const d = ws.getUserData();
      const s = roomState(roomId);
      setBaseline(s, dbLastSeq);
      const existing = d.rooms.get(roomId);
      if (existing) removeFromRoom(ws, s, existing);
      const sub: RoomSub = { phase: 'catching_up', cursor: 0, epoch: existing ? existing.epoch + 1 : 0 };
      d.rooms.set(roomId, sub);
      s.sockets.add(ws);
      roomSockets.add(ws);
      if (lastSeenSeq === undefined) {
        // The live stream starts right after `published`: that is the last_seq the
        // client may rely on ("every message with seq > last_seq").
        sendTo(ws, encodeFrame(d.framing, 'joined_room', { room_id: roomId, last_seq: s.published }));
        goLive(ws, s, sub);
        return;
      }
      const lastSeq = Math.max(dbLastSeq, s.published);
      sendTo(ws, encodeFrame(d.framing, 'joined_room', { room_id: roomId, last_seq: lastSeq }));
      // A client cannot have seen more than the room holds.
      sub.cursor = Math.min(lastSeenSeq, lastSeq);
      if (d.paused) {
        pause(ws, sub);
        return;
      }
      await catchUp(ws, s, sub, sub.epoch).catch((err) => catchUpFailed(ws, err));
    },

    leave(ws, roomId) {
      const d = ws.getUserData();
      const sub = d.rooms.get(roomId);
      if (!sub) return false;
      d.rooms.delete(roomId);
      if (d.rooms.size === 0) roomSockets.delete(ws);
      const s = rooms.get(roomId);
      if (s) removeFromRoom(ws, s, sub);
      return true;
    },

    dropSocket(ws) {
      const d = ws.getUserData();
      roomSockets.delete(ws);
      for (const [roomId, sub] of d.rooms) {
        sub.epoch++;
        const s = rooms.get(roomId);
        if (!s) continue;
        s.sockets.delete(ws);
        maybeForget(s);
      }
      d.rooms.clear();
    },

    acceptInline(roomId, firstSeq, bodies) {
      const s = rooms.get(roomId);
      if (!s) return; // nobody here is in that room
      for (let i = 0; i < bodies.length; i++) accept(s, firstSeq + i, bodies[i]);
    },

    doorbell(roomId, toSeq) {
      const s = rooms.get(roomId);
      if (!s) return;
      if (toSeq > s.target) s.target = toSeq;
      void repair(s);
    },

    roomDeleted(roomId) {
      const s = rooms.get(roomId);
      if (!s) return;
      this.publishEvent(roomId, 'room_deleted', { room_id: roomId });
      for (const ws of [...s.sockets]) this.leave(ws, roomId);
      s.deleted = true;
      rooms.delete(roomId);
    },

    publishEvent(roomId, event, data) {
      const s = rooms.get(roomId);
      if (s) publishToRoom(s, (framing) => encodeFrame(framing, event, data));
    },

    socketsIn(roomId) {
      return rooms.get(roomId)?.sockets ?? [];
    },

    async audit() {
      const tracked = [...rooms.values()].filter((s) => s.queued !== UNKNOWN && !s.deleted);
      if (!tracked.length) return;
      const latest = await lastSeqs(opts.db, tracked.map((s) => s.id));
      for (const s of tracked) {
        const last = latest.get(s.id);
        if (last === undefined) continue;
        if (last > s.target) s.target = last;
        if (s.target > s.queued) void repair(s);
      }
    },

    onDrain(ws) {
      const d = ws.getUserData();
      if (d.paused && ws.getBufferedAmount() < opts.softBackpressure / 4) resume(ws);
    },

    start() {
      sweepTimer = setInterval(sweep, SWEEP_MS);
      sweepTimer.unref();
      auditTimer = setInterval(() => {
        this.audit().catch((err) => opts.log.warn({ err: (err as Error).message }, 'audit failed'));
      }, opts.auditMs);
      auditTimer.unref();
    },

    stop() {
      clearInterval(sweepTimer);
      clearInterval(auditTimer);
      for (const s of rooms.values()) flush(s);
    },

    get roomCount() {
      return rooms.size;
    },
  };
}
