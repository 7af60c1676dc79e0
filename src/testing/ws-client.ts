import WebSocket from 'ws';
import { decodeServerFrame } from '../ws/protocol.js';
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export interface Frame {
  event: string;
  data: any;
  at: number;
}

export interface Message {
  id: number;
  seq: number;
  room_id: string;
  user_id: string;
  username: string;
  content: string;
  created_at: string;
  client_msg_id?: string;
}

/** A real WebSocket client that records every frame, for tests. */
export interface TestSocket {
  readonly ws: WebSocket;
  readonly frames: Frame[];
  send(event: string, data: unknown): void;
  sendRaw(data: string | Buffer, binary?: boolean): void;
  /** Resolves with the first frame (already received or future) matching pred. */
  next(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Like next, but only frames that arrive from now on count. */
  nextNew(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Messages of a room in arrival order, from history, new_message and new_message_batch frames. */
  messages(roomId: string): Message[];
  /** Resolves when the room's messages reach `count` (or rejects after timeout). */
  waitForMessages(roomId: string, count: number, timeoutMs?: number): Promise<Message[]>;
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export function connectWs(
  wsUrl: string,
  token: string,
  opts: { format?: 'json' | 'msgpack'; protocols?: string[]; query?: string } = {},
): Promise<TestSocket> {
  const q = `token=${encodeURIComponent(token)}${opts.format === 'msgpack' ? '&format=msgpack' : ''}${opts.query ?? ''}`;
  const ws = new WebSocket(`${wsUrl}?${q}`, opts.protocols, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
  const frames: Frame[] = [];
  const binary = opts.format === 'msgpack' || (opts.protocols?.includes('msgpack') ?? false);
  const byRoom = new Map<string, Message[]>();
  const waiters = new Set<() => void>();
  const push = (m: Message) => {
    let list = byRoom.get(m.room_id);
    if (!list) byRoom.set(m.room_id, (list = []));
    list.push(m);
  };
  ws.on('message', (raw, isBinary) => {
    const f = decodeServerFrame(raw as Buffer, isBinary) as Frame;
    f.at = Date.now();
    frames.push(f);
    if (f.event === 'new_message') push(f.data);
    else if (f.event === 'new_message_batch') for (const m of f.data) push(m);
    else if (f.event === 'history') for (const m of f.data.messages) push(m);
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of [...waiters]) w();
    });
  });
  const socket: TestSocket = {
    ws,
    frames,
    closed,
    send(event, data) {
      if (binary) ws.send(packr.pack({ event, data }), { binary: true });
      else ws.send(JSON.stringify({ event, data }));
    },
    sendRaw(data, binary = false) {
      ws.send(data, { binary });
    },
    next(pred, timeoutMs = 5000) {
      return waitUntil(() => frames.find(pred), timeoutMs, () => `frame not received (have: ${summarize(frames)})`);
    },
    nextNew(pred, timeoutMs = 5000) {
      const from = frames.length;
      return waitUntil(
        () => frames.find((f, i) => i >= from && pred(f)),
        timeoutMs,
        () => `frame not received (have: ${summarize(frames)})`,
      );
    },
    messages(roomId) {
      return byRoom.get(roomId) ?? [];
    },
    waitForMessages(roomId, count, timeoutMs = 10_000) {
      return waitUntil(
        () => ((byRoom.get(roomId)?.length ?? 0) >= count ? byRoom.get(roomId)! : undefined),
        timeoutMs,
        () => `expected ${count} messages in ${roomId}, have ${byRoom.get(roomId)?.length ?? 0}`,
      );
    },
    close() {
      ws.close();
    },
  };

  function waitUntil<T>(check: () => T | undefined, timeoutMs: number, what: () => string): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = check();
      if (done !== undefined) return resolve(done);
      const waiter = () => {
        const r = check();
        if (r === undefined) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve(r);
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(what()));
      }, timeoutMs);
      waiters.add(waiter);
    });
  }

  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(socket));
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
}

/** The HTTP status of a refused upgrade (or 101 when it was accepted). */
export async function upgradeStatus(wsUrl: string, query: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsUrl}${query}`, { headers, perMessageDeflate: false });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('error', (err) => reject(err));
  });
}

function summarize(frames: Frame[]): string {
  return frames
    .slice(-8)
    .map((f) => (f.event === 'error' ? `error:${f.data.code}` : f.event))
    .join(',');
}

/** Checks a received stream: seqs strictly consecutive from `from`+1, no repeats. */
export function assertGapless(messages: Message[], from: number, to: number): void {
  const seqs = messages.map((m) => m.seq);
  for (let i = 0; i < seqs.length; i++) {
    if (seqs[i] !== from + 1 + i) {
      throw new Error(`stream broken at index ${i}: expected seq ${from + 1 + i}, got ${seqs[i]} (around ${seqs.slice(Math.max(0, i - 3), i + 3)})`);
    }
  }
  if (seqs.length !== to - from) throw new Error(`expected ${to - from} messages (${from + 1}..${to}), got ${seqs.length}`);
}
