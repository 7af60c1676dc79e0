import WebSocket from 'ws';
import { decodeServerFrame, encodeFrame, type Framing } from '../../src/ws/protocol.js';

/** A message object as the server sends it (PROTOCOL.md), the fields the bench reads. */
export interface WireMessage {
  id: number;
  seq: number;
  room_id: string;
  user_id: string;
  content: string;
  client_msg_id?: string;
}

export interface Ack {
  room_id: string;
  seq: number;
  id: number;
  client_msg_id?: string;
  duplicate?: boolean;
}

export interface ClientEvents {
  /** Sees every frame first, undecoded; returning true skips the decoding (cheap counting clients). */
  raw?(c: BenchClient, data: Buffer, isBinary: boolean): boolean;
  /** Live (new_message / new_message_batch) or catch-up (history) messages of one room, ascending seq. */
  messages?(c: BenchClient, roomId: string, msgs: WireMessage[], kind: 'live' | 'history'): void;
  ack?(c: BenchClient, ack: Ack): void;
  error?(c: BenchClient, err: { code: string; message: string; ref?: string }): void;
  close?(c: BenchClient, code: number, reason: string): void;
}

/**
 * One WebSocket client of the load generator (the `ws` package, no compression).
 * Frames are JSON text or, with framing 'msgpack', binary msgpack (the
 * server's own encoder/decoder from src/ws/protocol.ts).
 */
export class BenchClient {
  ws: WebSocket | null = null;
  closed = false;
  closeCode: number | null = null;
  /** Time (performance.now) the handshake completed. */
  openedAt = 0;
  private joins: Array<{ roomId: string; resolve: (lastSeq: number) => void; reject: (e: Error) => void }> = [];

  constructor(
    readonly index: number,
    readonly wsUrl: string,
    public token: string,
    readonly framing: Framing,
    readonly events: ClientEvents,
    readonly localAddress?: string,
  ) {}

  connect(timeoutMs = 30_000): Promise<void> {
    const url = `${this.wsUrl}?token=${encodeURIComponent(this.token)}${this.framing === 'msgpack' ? '&format=msgpack' : ''}`;
    this.closed = false;
    this.closeCode = null;
    this.openedAt = 0;
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
      maxPayload: 256 * 1024 * 1024,
      skipUTF8Validation: true,
      localAddress: this.localAddress,
    });
    this.ws = ws;
    return new Promise((resolve, reject) => {
      let settled = false;
      ws.once('open', () => {
        settled = true;
        this.openedAt = performance.now();
        resolve();
      });
      ws.once('unexpected-response', (_req, res) => {
        settled = true;
        reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
        res.resume();
        ws.terminate();
      });
      ws.on('error', (err) => {
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
      ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
      ws.on('close', (code, reason) => {
        this.closed = true;
        this.closeCode = code;
        for (const j of this.joins.splice(0)) j.reject(new Error(`closed (${code}) before joined_room`));
        if (!settled) {
          settled = true;
          reject(new Error(`closed (${code}) during the handshake`));
          return; // never opened: the caller handles the rejection
        }
        if (this.openedAt) this.events.close?.(this, code, reason.toString());
      });
    });
  }

  /** join_room; resolves with joined_room.last_seq. */
  join(roomId: string, lastSeenSeq?: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.joins.push({ roomId, resolve, reject });
      const data: { room_id: string; last_seen_seq?: number } = { room_id: roomId };
      if (lastSeenSeq !== undefined) data.last_seen_seq = lastSeenSeq;
      this.sendFrame('join_room', data);
    });
  }

  sendFrame(event: string, data: unknown): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(encodeFrame(this.framing, event, data), { binary: this.framing === 'msgpack' });
  }

  /** send_message; `content` and `cmid` must not need JSON escaping (the bench makes them). */
  sendMessage(roomId: string, content: string, cmid: string): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    if (this.framing === 'json') {
      ws.send(`{"event":"send_message","data":{"room_id":"${roomId}","content":"${content}","client_msg_id":"${cmid}"}}`);
    } else {
      ws.send(encodeFrame('msgpack', 'send_message', { room_id: roomId, content, client_msg_id: cmid }), { binary: true });
    }
    return true;
  }

  /** Batches the frames written inside fn into as few TCP writes as possible. */
  corked(fn: () => void): void {
    const sock = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } } | null)?._socket;
    if (!sock) return fn();
    sock.cork();
    try {
      fn();
    } finally {
      sock.uncork();
    }
  }

  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  close(): void {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    if (ws.readyState === WebSocket.CONNECTING) return ws.terminate();
    ws.close(1000);
    // Do not wait for a busy server's close frame.
    setTimeout(() => ws.terminate(), 2000).unref();
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.events.raw?.(this, data, isBinary)) return;
    let frame: { event: string; data: any };
    try {
      frame = isBinary ? decodeServerFrame(data, true) : JSON.parse(data.toString('utf8'));
    } catch {
      this.events.error?.(this, { code: 'bench_bad_frame', message: 'undecodable frame from the server' });
      return;
    }
    const d = frame.data;
    switch (frame.event) {
      case 'new_message':
        this.events.messages?.(this, d.room_id, [d], 'live');
        return;
      case 'new_message_batch':
        if (Array.isArray(d) && d.length) this.events.messages?.(this, d[0].room_id, d, 'live');
        return;
      case 'history':
        if (d.messages?.length) this.events.messages?.(this, d.room_id ?? d.messages[0].room_id, d.messages, 'history');
        return;
      case 'message_ack':
        this.events.ack?.(this, d);
        return;
      case 'joined_room': {
        const i = this.joins.findIndex((j) => j.roomId === d.room_id);
        if (i >= 0) this.joins.splice(i, 1)[0].resolve(typeof d.last_seq === 'number' ? d.last_seq : 0);
        return;
      }
      case 'error':
        if (d?.ref === 'join_room' && this.joins.length) {
          this.joins.shift()!.reject(new Error(`join_room refused: ${d.code}`));
          return;
        }
        this.events.error?.(this, d);
        return;
      default:
        return; // presence, typing, user_joined, ...
    }
  }
}

/** Whether client i of n speaks msgpack, spreading ratio·n msgpack clients evenly. */
export function usesMsgpack(i: number, ratio: number): boolean {
  if (ratio <= 0) return false;
  if (ratio >= 1) return true;
  return Math.floor((i + 1) * ratio) > Math.floor(i * ratio);
}

/** Opens many clients with at most `concurrency` handshakes in flight; reports per-client setup time. */
export async function openMany<T>(
  items: T[],
  concurrency: number,
  open: (item: T, i: number) => Promise<void>,
  onProgress?: (done: number, failed: number) => void,
): Promise<{ ms: number[]; failures: Array<{ i: number; error: string }>; wallMs: number }> {
  const ms: number[] = [];
  const failures: Array<{ i: number; error: string }> = [];
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  let lastReport = t0;
  async function worker(): Promise<void> {
    while (next < items.length) {
      const i = next++;
      const t = performance.now();
      try {
        await open(items[i], i);
        ms.push(performance.now() - t);
      } catch (err) {
        failures.push({ i, error: (err as Error).message });
      }
      done++;
      if (onProgress && performance.now() - lastReport > 1000) {
        lastReport = performance.now();
        onProgress(done, failures.length);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return { ms, failures, wallMs: performance.now() - t0 };
}
