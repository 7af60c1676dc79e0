// Reusable chat clients for the cluster tests and bench/cluster.ts: HTTP helpers, a WebSocket
// client with per-room seq bookkeeping that reconnects and resumes with last_seen_seq, a
// "fleet" of such clients sending and receiving, and the final read-back check.
//
// Everything here speaks only the wire contract (/work/shared/PROTOCOL.md): no SQL, no
// knowledge of the server's tables.
import WebSocket from 'ws';
import { randomUUID } from 'node:crypto';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/* ------------------------------------ HTTP ------------------------------------ */

export interface ApiResult<T = any> { status: number; body: T; error?: string }

/** One JSON request. GET/HEAD are retried (up to `tries`) on network errors and 502/503/504. */
export async function api<T = any>(baseUrl: string, method: string, path: string, opts: { token?: string; body?: unknown; tries?: number; timeoutMs?: number } = {}): Promise<ApiResult<T>> {
  const idempotent = method === 'GET' || method === 'HEAD';
  const tries = opts.tries ?? (idempotent ? 5 : 1);
  let last: ApiResult<T> = { status: 0, body: undefined as T, error: 'not tried' };
  for (let i = 0; i < tries; i++) {
    if (i) await sleep(200 * i);
    try {
      const res = await fetch(baseUrl + path, {
        method,
        headers: {
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        },
        body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
      const text = await res.text();
      let body: any = text;
      try { body = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
      last = { status: res.status, body };
      if (!(idempotent && res.status >= 502 && res.status <= 504)) return last;
    } catch (e) {
      last = { status: 0, body: undefined as T, error: String((e as Error).cause ?? e) };
    }
  }
  return last;
}

export interface UserSession { id: string; username: string; accessToken: string; refreshToken: string }

export async function registerUser(baseUrl: string, username: string): Promise<UserSession> {
  const r = await api(baseUrl, 'POST', '/auth/register', { body: { username, email: `${username}@cluster.test`, password: `pw-${username}-Secret1!` } });
  if (r.status !== 201) throw new Error(`register ${username}: ${r.status} ${JSON.stringify(r.body) ?? r.error}`);
  return { id: String(r.body.user.id), username: r.body.user.username, accessToken: r.body.tokens.accessToken, refreshToken: r.body.tokens.refreshToken };
}

export async function createRoom(baseUrl: string, token: string, name: string): Promise<string> {
  const r = await api(baseUrl, 'POST', '/rooms', { token, body: { name } });
  if (r.status !== 201) throw new Error(`create room ${name}: ${r.status} ${JSON.stringify(r.body) ?? r.error}`);
  return String(r.body.id);
}

export async function joinRoomHttp(baseUrl: string, token: string, roomId: string): Promise<void> {
  const r = await api(baseUrl, 'POST', `/rooms/${roomId}/join`, { token, tries: 1 });
  if (r.status !== 200 && r.status !== 201) throw new Error(`join room ${roomId}: ${r.status} ${JSON.stringify(r.body) ?? r.error}`);
}

export interface ChatMessage { id: number; seq: number; room_id: string | number; user_id: string | number; username: string; content: string; created_at: string; client_msg_id?: string }

/** Every message of a room with seq > afterSeq, oldest first, through GET /rooms/:id/messages?after_seq=. */
export async function fetchAllMessages(baseUrl: string, token: string, roomId: string, afterSeq = 0): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  let after = afterSeq;
  for (let page = 0; page < 10_000; page++) {
    const r = await api(baseUrl, 'GET', `/rooms/${roomId}/messages?after_seq=${after}&limit=100`, { token });
    if (r.status !== 200) throw new Error(`GET messages of ${roomId} after ${after}: ${r.status} ${JSON.stringify(r.body) ?? r.error}`);
    const msgs: ChatMessage[] = Array.isArray(r.body) ? r.body : r.body.messages;
    if (!msgs.length) break;
    out.push(...msgs);
    after = Number(msgs[msgs.length - 1].seq);
    if (r.body.has_more === false || msgs.length < 100) break;
  }
  return out;
}

/* ------------------------------------ WebSocket ------------------------------------ */

export type SendOutcome = { kind: 'ack'; seq: number; id: number; at: number } | { kind: 'error'; code: string; at: number } | { kind: 'closed'; at: number } | { kind: 'timeout'; at: number };

interface PendingSend { cmid: string; roomId: string; content: string; sentAt: number; resolve: (o: SendOutcome) => void; timer: NodeJS.Timeout }

export interface RoomState {
  /** Highest seq seen (or the join anchor). */
  lastSeq: number;
  /** Seqs in the order they were received (duplicates included, so they can be found). */
  received: number[];
  /** seq → message id as delivered. */
  ids: Map<number, number>;
  joined: boolean;
}

export interface PresenceEvent { t: number; roomId: string; userId: string; username: string; status: string; observer: string; observerUpstream: string | null }

export interface ClientCounters {
  sent: number; attempts: number; acked: number; errors: number; closedInFlight: number; timeouts: number;
  delivered: number; duplicates: number; gaps: number; reconnects: number; connectFailures: number;
}

/** Shared by every client of a fleet: who sent what when (latency), all presence events. */
export class Ledger {
  readonly sentAt = new Map<string, number>();
  readonly deliveryLatencies: number[] = [];
  readonly ackLatencies: number[] = [];
  readonly presence: PresenceEvent[] = [];
  /** cmid → outcomes over every attempt. */
  readonly outcomes = new Map<string, { roomId: string; userId: string; outcomes: (SendOutcome & { attemptAt: number })[] }>();
  readonly log: string[] = [];
  note(s: string) { this.log.push(`${new Date().toISOString().slice(11, 23)} ${s}`); }
}

export interface ChatClientOptions {
  wsUrl: string;
  user: UserSession;
  rooms: string[];
  ledger: Ledger;
  /** Reconnect after a close that allows it (1001, 1006, 1011-1014, 4000-4499). Default true. */
  reconnect?: boolean;
  /** First reconnect delay; doubles up to 2 s. Default 100 ms. */
  reconnectDelayMs?: number;
  sendTimeoutMs?: number;
}

export class ChatClient {
  readonly name: string;
  readonly user: UserSession;
  readonly rooms = new Map<string, RoomState>();
  readonly counters: ClientCounters = { sent: 0, attempts: 0, acked: 0, errors: 0, closedInFlight: 0, timeouts: 0, delivered: 0, duplicates: 0, gaps: 0, reconnects: 0, connectFailures: 0 };
  readonly closes: { t: number; code: number; reason: string; upstream: string | null }[] = [];
  readonly errorFrames: { t: number; code: string; ref: unknown }[] = [];
  readonly gapLog: string[] = [];
  /** ms from each unrequested close until every room was joined again. */
  readonly downtimes: number[] = [];
  private lastCloseAt = 0;
  /** `ip:port` of the app host Nginx sent this socket to (X-Pgchat-Upstream, test Nginx only). */
  upstream: string | null = null;
  connectedAt = 0;
  fatal: string | null = null;
  /** Hold reconnects until this time (tests use it to keep a dead host's users away). */
  holdReconnectUntil = 0;
  private ws: WebSocket | null = null;
  private stopped = false;
  private readonly pending = new Map<string, PendingSend>();
  private readonly joinWaiters = new Map<string, () => void>();
  private readonly o: Required<ChatClientOptions>;
  private connecting: Promise<void> | null = null;

  constructor(o: ChatClientOptions) {
    this.o = { ...o, reconnect: o.reconnect ?? true, reconnectDelayMs: o.reconnectDelayMs ?? 100, sendTimeoutMs: o.sendTimeoutMs ?? 15_000 };
    this.user = o.user;
    this.name = o.user.username;
    for (const r of o.rooms) this.rooms.set(r, { lastSeq: 0, received: [], ids: new Map(), joined: false });
  }

  /** Sends waiting for their outcome. */
  get pendingCount(): number { return this.pending.size; }
  get connected(): boolean { return this.ws?.readyState === WebSocket.OPEN; }
  get allJoined(): boolean { return this.connected && [...this.rooms.values()].every((r) => r.joined); }

  /** Connect (retrying until `deadline`) and join every room with last_seen_seq. */
  async start(deadlineMs = 30_000): Promise<void> {
    await this.connectLoop(Date.now() + deadlineMs);
  }

  private connectLoop(deadline: number): Promise<void> {
    if (this.connecting) return this.connecting;
    this.connecting = (async () => {
      let delay = this.o.reconnectDelayMs;
      while (!this.stopped) {
        const hold = this.holdReconnectUntil - Date.now();
        if (hold > 0) await sleep(hold);
        try {
          await this.connectOnce();
          await this.joinAll();
          if (this.lastCloseAt) { this.downtimes.push(Date.now() - this.lastCloseAt); this.lastCloseAt = 0; }
          return;
        } catch (e) {
          this.counters.connectFailures++;
          this.o.ledger.note(`${this.name} connect/join failed (${this.upstream}): ${String((e as Error).message ?? e)}`);
          try { this.ws?.terminate(); } catch { /* ignore */ }
          if (Date.now() > deadline) throw new Error(`${this.name}: could not connect: ${String(e)}`);
          await sleep(delay * (0.5 + Math.random()));
          delay = Math.min(2000, delay * 2);
        }
      }
    })().finally(() => { this.connecting = null; });
    return this.connecting;
  }

  private connectOnce(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${this.o.wsUrl}?token=${encodeURIComponent(this.user.accessToken)}`, { handshakeTimeout: 5000 });
      this.ws = ws;
      let opened = false;
      ws.on('upgrade', (res) => {
        const u = res.headers['x-pgchat-upstream'];
        this.upstream = typeof u === 'string' ? u : null;
      });
      ws.on('unexpected-response', (_req, res) => {
        reject(new Error(`upgrade refused: ${res.statusCode}`));
        res.resume();
        ws.terminate();
      });
      ws.on('open', () => { opened = true; this.connectedAt = Date.now(); for (const r of this.rooms.values()) r.joined = false; resolve(); });
      ws.on('error', (e) => { if (!opened) reject(e); });
      ws.on('message', (data, isBinary) => { if (!isBinary) this.onFrame(data.toString()); });
      ws.on('close', (code, reason) => { if (opened) this.onClose(ws, code, reason.toString()); else reject(new Error(`closed before open: ${code}`)); });
    });
  }

  private async joinAll(): Promise<void> {
    for (const [roomId, st] of this.rooms) {
      const joined = new Promise<void>((res, rej) => {
        const t = setTimeout(() => { this.joinWaiters.delete(roomId); rej(new Error(`join ${roomId} timed out`)); }, 10_000);
        this.joinWaiters.set(roomId, () => { clearTimeout(t); res(); });
      });
      this.frame('join_room', { room_id: roomId, last_seen_seq: st.lastSeq });
      await joined;
    }
    // Sends that were in flight when the previous socket died: resend with the same
    // client_msg_id (idempotent), so their outcome becomes known.
  }

  private frame(event: string, data: unknown): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ event, data }));
    return true;
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.closes.push({ t: Date.now(), code, reason, upstream: this.upstream });
    this.lastCloseAt = Date.now();
    this.o.ledger.note(`${this.name} closed ${code} ${reason} (was ${this.upstream})`);
    for (const r of this.rooms.values()) r.joined = false;
    for (const p of [...this.pending.values()]) this.settle(p, { kind: 'closed', at: Date.now() });
    if (this.stopped || !this.o.reconnect) return;
    if (code >= 4500 && code <= 4999) { this.fatal = `closed ${code} ${reason}`; return; }
    this.counters.reconnects++;
    this.connectLoop(Date.now() + 120_000).catch((e) => { this.fatal = String(e); });
  }

  private onFrame(text: string): void {
    let f: { event: string; data: any };
    try { f = JSON.parse(text); } catch { this.o.ledger.note(`${this.name}: non-JSON frame`); return; }
    const d = f.data;
    switch (f.event) {
      case 'joined_room': {
        const roomId = String(d.room_id);
        const st = this.rooms.get(roomId);
        if (st) st.joined = true;
        this.joinWaiters.get(roomId)?.();
        this.joinWaiters.delete(roomId);
        break;
      }
      case 'history': {
        const msgs: ChatMessage[] = d.messages ?? [];
        for (const m of msgs) this.onMessage(String(d.room_id ?? m.room_id), m);
        break;
      }
      case 'new_message': this.onMessage(String(d.room_id), d); break;
      case 'new_message_batch': for (const m of d as ChatMessage[]) this.onMessage(String(m.room_id), m); break;
      case 'message_ack': {
        const p = this.pending.get(String(d.client_msg_id));
        if (p) this.settle(p, { kind: 'ack', seq: Number(d.seq), id: Number(d.id), at: Date.now() });
        break;
      }
      case 'error': {
        this.errorFrames.push({ t: Date.now(), code: String(d?.code), ref: d?.ref });
        // One send in flight per client (FleetSender), so an error about send_message is its.
        const byId = d?.client_msg_id ? this.pending.get(String(d.client_msg_id)) : undefined;
        const p = byId ?? (d?.ref === undefined || d?.ref === 'send_message' ? this.pending.values().next().value : undefined);
        if (p) this.settle(p, { kind: 'error', code: String(d?.code), at: Date.now() });
        break;
      }
      case 'presence':
        this.o.ledger.presence.push({ t: Date.now(), roomId: String(d.room_id), userId: String(d.user_id), username: d.username, status: d.status, observer: this.user.id, observerUpstream: this.upstream });
        break;
      default: break;
    }
  }

  private onMessage(roomId: string, m: ChatMessage): void {
    const st = this.rooms.get(roomId);
    if (!st) return;
    const seq = Number(m.seq);
    st.received.push(seq);
    if (seq <= st.lastSeq) {
      this.counters.duplicates++;
      this.gapLog.push(`dup room ${roomId} seq ${seq} (last ${st.lastSeq})`);
      return;
    }
    if (seq !== st.lastSeq + 1) {
      this.counters.gaps += seq - st.lastSeq - 1;
      this.gapLog.push(`gap room ${roomId} ${st.lastSeq + 1}..${seq - 1}`);
    }
    st.lastSeq = seq;
    st.ids.set(seq, Number(m.id));
    this.counters.delivered++;
    if (m.client_msg_id) {
      const t = this.o.ledger.sentAt.get(m.client_msg_id);
      if (t !== undefined) this.o.ledger.deliveryLatencies.push(Date.now() - t);
    }
  }

  private settle(p: PendingSend, o: SendOutcome): void {
    if (!this.pending.has(p.cmid)) return;
    this.pending.delete(p.cmid);
    clearTimeout(p.timer);
    if (o.kind === 'ack') { this.o.ledger.ackLatencies.push(o.at - p.sentAt); }
    if (o.kind === 'error') this.counters.errors++;
    if (o.kind === 'closed') this.counters.closedInFlight++;
    if (o.kind === 'timeout') this.counters.timeouts++;
    const rec = this.o.ledger.outcomes.get(p.cmid);
    rec?.outcomes.push({ ...o, attemptAt: p.sentAt });
    p.resolve(o);
  }

  /** Send one message (or re-send `cmid`); resolves with its outcome. */
  send(roomId: string, content: string, cmid: string = randomUUID()): Promise<SendOutcome> {
    return new Promise((resolve) => {
      const now = Date.now();
      if (!this.o.ledger.outcomes.has(cmid)) {
        this.o.ledger.outcomes.set(cmid, { roomId, userId: this.user.id, outcomes: [] });
        this.o.ledger.sentAt.set(cmid, now);
        this.counters.sent++;
      }
      this.counters.attempts++;
      const p: PendingSend = { cmid, roomId, content, sentAt: now, resolve, timer: setTimeout(() => this.settle(p, { kind: 'timeout', at: Date.now() }), this.o.sendTimeoutMs) };
      this.pending.set(cmid, p);
      if (!this.frame('send_message', { room_id: roomId, content, client_msg_id: cmid })) this.settle(p, { kind: 'closed', at: Date.now() });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of [...this.pending.values()]) this.settle(p, { kind: 'closed', at: Date.now() });
    const ws = this.ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      await new Promise<void>((res) => {
        const t = setTimeout(() => { ws.terminate(); res(); }, 1000);
        ws.once('close', () => { clearTimeout(t); res(); });
        ws.close(1000, 'bye');
      });
    }
  }

  /** Drop the socket without a close handshake (the client side of a network failure). */
  kill(): void { this.ws?.terminate(); }
}

/* ------------------------------------ fleet ------------------------------------ */

export interface FleetOptions {
  baseUrl: string;
  wsUrl: string;
  rooms: number;
  clientsPerRoom: number;
  /** Pause between one client's sends (each waits for its outcome first). */
  sendIntervalMs: number;
  /** Label for user/room names. */
  tag: string;
  reconnectDelayMs?: number;
  sendTimeoutMs?: number;
}

export interface FleetReport {
  sent: number; acked: number; errors: number; closedInFlight: number; timeouts: number; attempts: number;
  delivered: number; duplicates: number; gaps: number; reconnects: number;
  committed: number; ackedMissing: string[]; ackSeqMismatch: string[]; dbDuplicateCmids: string[];
  receiverMismatches: string[]; committedDespiteError: number; unknownOutcome: number;
  deliveryP50: number; deliveryP99: number; ackP50: number; ackP99: number;
  /** Longest time a client was without a joined socket after an unrequested close. */
  maxDowntimeMs: number;
}

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Users, rooms, one socket per user, and a send loop per user ("clients sending and receiving"). */
export class Fleet {
  readonly ledger = new Ledger();
  readonly clients: ChatClient[] = [];
  readonly roomIds: string[] = [];
  readonly roomOf = new Map<ChatClient, string>();
  owner!: UserSession;
  private sending = false;
  private loops: Promise<void>[] = [];
  private seq = 0;

  constructor(readonly o: FleetOptions) {}

  async setup(): Promise<void> {
    const { baseUrl, tag } = this.o;
    this.owner = await registerUser(baseUrl, `${tag}-owner`);
    for (let r = 0; r < this.o.rooms; r++) this.roomIds.push(await createRoom(baseUrl, this.owner.accessToken, `${tag}-room-${r}`));
    const users: { u: UserSession; room: string }[] = [];
    for (let r = 0; r < this.o.rooms; r++) {
      for (let k = 0; k < this.o.clientsPerRoom; k++) {
        const u = await registerUser(baseUrl, `${tag}-r${r}u${k}`);
        await joinRoomHttp(baseUrl, u.accessToken, this.roomIds[r]);
        users.push({ u, room: this.roomIds[r] });
      }
    }
    for (const { u, room } of users) {
      const c = new ChatClient({ wsUrl: this.o.wsUrl, user: u, rooms: [room], ledger: this.ledger, reconnectDelayMs: this.o.reconnectDelayMs, sendTimeoutMs: this.o.sendTimeoutMs });
      this.clients.push(c);
      this.roomOf.set(c, room);
    }
    await Promise.all(this.clients.map((c) => c.start()));
  }

  /** Start every client's send loop: send, await outcome, on anything but an ack resend the same client_msg_id. */
  startSending(): void {
    this.sending = true;
    this.loops = this.clients.map((c) => this.sendLoop(c));
  }

  private async sendLoop(c: ChatClient): Promise<void> {
    const room = this.roomOf.get(c)!;
    await sleep(Math.random() * this.o.sendIntervalMs);
    while (this.sending) {
      const cmid = randomUUID();
      const content = `${c.name} #${++this.seq}`;
      // Retry the same client_msg_id until acked or the fleet stops sending.
      for (let attempt = 0; ; attempt++) {
        if (!c.allJoined) {
          await sleep(50);
          if (!this.sending) break;
          continue;
        }
        const o = await c.send(room, content, cmid);
        if (o.kind === 'ack') break;
        if (!this.sending) break;
        await sleep(Math.min(1000, 100 * (attempt + 1)));
      }
      await sleep(this.o.sendIntervalMs);
    }
  }

  async stopSending(): Promise<void> {
    this.sending = false;
    await Promise.all(this.loops);
  }

  /** Resolve sends whose last outcome was not an ack by re-sending them once (idempotent). */
  async settleUnknown(): Promise<void> {
    for (const [cmid, rec] of this.ledger.outcomes) {
      const last = rec.outcomes[rec.outcomes.length - 1];
      if (last && last.kind === 'ack') continue;
      const c = this.clients.find((x) => x.user.id === rec.userId);
      if (!c) continue;
      await waitUntil(() => c.allJoined, 20_000);
      // Content is not compared for resends; the server must dedupe by client_msg_id.
      const o = await c.send(rec.roomId, `resend ${cmid}`, cmid);
      if (o.kind !== 'ack') this.ledger.note(`settle ${cmid}: ${o.kind}`);
    }
  }

  /** Wait until every client is joined and at the newest seq of its room (per HTTP read-back). */
  async waitConverged(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const heads = new Map<string, number>();
      for (const r of this.roomIds) {
        const msgs = await fetchAllMessages(this.o.baseUrl, this.owner.accessToken, r, Math.max(0, this.minLastSeq(r) - 1)).catch(() => null);
        if (!msgs) continue;
        heads.set(r, msgs.length ? Number(msgs[msgs.length - 1].seq) : Math.max(0, this.minLastSeq(r) - 1));
      }
      const ok = heads.size === this.roomIds.length && this.clients.every((c) => c.allJoined && c.rooms.get(this.roomOf.get(c)!)!.lastSeq >= (heads.get(this.roomOf.get(c)!) ?? Infinity));
      if (ok) return true;
      await sleep(250);
    }
    return false;
  }

  private minLastSeq(room: string): number {
    let m = Infinity;
    for (const c of this.clients) if (this.roomOf.get(c) === room) m = Math.min(m, c.rooms.get(room)!.lastSeq);
    return m === Infinity ? 0 : m;
  }

  totals(): Pick<FleetReport, 'sent' | 'acked' | 'errors' | 'closedInFlight' | 'timeouts' | 'attempts' | 'delivered' | 'duplicates' | 'gaps' | 'reconnects'> {
    const t = { sent: 0, acked: 0, errors: 0, closedInFlight: 0, timeouts: 0, attempts: 0, delivered: 0, duplicates: 0, gaps: 0, reconnects: 0 };
    for (const c of this.clients) {
      t.sent += c.counters.sent; t.errors += c.counters.errors; t.closedInFlight += c.counters.closedInFlight;
      t.timeouts += c.counters.timeouts; t.attempts += c.counters.attempts; t.delivered += c.counters.delivered;
      t.duplicates += c.counters.duplicates; t.gaps += c.counters.gaps; t.reconnects += c.counters.reconnects;
    }
    for (const rec of this.ledger.outcomes.values()) if (rec.outcomes.some((o) => o.kind === 'ack')) t.acked++;
    return t;
  }

  /**
   * The final check: read every room back through HTTP and compare with what was acked and
   * what every receiver got. Returns the report; the caller asserts on it.
   */
  async verify(): Promise<FleetReport> {
    const byRoom = new Map<string, ChatMessage[]>();
    for (const r of this.roomIds) byRoom.set(r, await fetchAllMessages(this.o.baseUrl, this.owner.accessToken, r, 0));
    const ackedMissing: string[] = [];
    const ackSeqMismatch: string[] = [];
    const dbDuplicateCmids: string[] = [];
    const receiverMismatches: string[] = [];
    let committedDespiteError = 0;
    let unknownOutcome = 0;
    let committed = 0;
    const cmidIndex = new Map<string, ChatMessage[]>();
    for (const [room, msgs] of byRoom) {
      committed += msgs.length;
      msgs.forEach((m, i) => {
        if (Number(m.seq) !== i + 1) receiverMismatches.push(`room ${room}: stored seqs are not 1..N (index ${i} has seq ${m.seq})`);
        if (m.client_msg_id) {
          const k = `${room}/${m.user_id}/${m.client_msg_id}`;
          cmidIndex.set(k, [...(cmidIndex.get(k) ?? []), m]);
        }
      });
    }
    for (const [k, ms] of cmidIndex) if (ms.length > 1) dbDuplicateCmids.push(`${k} stored ${ms.length}× (seqs ${ms.map((m) => m.seq).join(',')})`);
    for (const [cmid, rec] of this.ledger.outcomes) {
      const stored = cmidIndex.get(`${rec.roomId}/${rec.userId}/${cmid}`)?.[0];
      const acks = rec.outcomes.flatMap((o) => (o.kind === 'ack' ? [o] : []));
      if (acks.length) {
        if (!stored) ackedMissing.push(`${cmid} acked seq ${acks[0].seq} but not stored`);
        else for (const a of acks) if (a.seq !== Number(stored.seq)) ackSeqMismatch.push(`${cmid} acked seq ${a.seq}, stored seq ${stored.seq}`);
      } else {
        if (stored && rec.outcomes.some((o) => o.kind === 'error')) committedDespiteError++;
        if (!rec.outcomes.length || rec.outcomes.every((o) => o.kind !== 'error')) unknownOutcome++;
      }
    }
    for (const c of this.clients) {
      const room = this.roomOf.get(c)!;
      const st = c.rooms.get(room)!;
      const stored = byRoom.get(room)!;
      const want = stored.map((m) => Number(m.seq));
      const got = st.received;
      if (got.length !== want.length || got.some((s, i) => s !== want[i])) {
        const firstDiff = got.findIndex((s, i) => s !== want[i]);
        receiverMismatches.push(`${c.name} room ${room}: received ${got.length} (last ${got[got.length - 1]}), stored ${want.length}; first difference at index ${firstDiff} (${got[firstDiff]} vs ${want[firstDiff]}); ${c.gapLog.slice(0, 3).join('; ')}`);
      } else {
        for (const m of stored) if (st.ids.get(Number(m.seq)) !== Number(m.id)) { receiverMismatches.push(`${c.name}: seq ${m.seq} id ${st.ids.get(Number(m.seq))} vs stored ${m.id}`); break; }
      }
    }
    const t = this.totals();
    return {
      ...t, committed, ackedMissing, ackSeqMismatch, dbDuplicateCmids, receiverMismatches, committedDespiteError, unknownOutcome,
      deliveryP50: percentile(this.ledger.deliveryLatencies, 50), deliveryP99: percentile(this.ledger.deliveryLatencies, 99),
      ackP50: percentile(this.ledger.ackLatencies, 50), ackP99: percentile(this.ledger.ackLatencies, 99),
      maxDowntimeMs: Math.max(0, ...this.clients.flatMap((c) => c.downtimes)),
    };
  }

  async stop(): Promise<void> {
    this.sending = false;
    await Promise.all(this.clients.map((c) => c.stop()));
  }
}

export async function waitUntil(fn: () => boolean, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (fn()) return true;
    await sleep(intervalMs);
  }
  return fn();
}

/** One line for the test log. */
export function formatReport(name: string, r: FleetReport, extra = ''): string {
  return `[${name}] sent=${r.sent} acked=${r.acked} committed=${r.committed} delivered=${r.delivered} duplicates=${r.duplicates} gaps=${r.gaps} ` +
    `errors=${r.errors} closedInFlight=${r.closedInFlight} timeouts=${r.timeouts} reconnects=${r.reconnects} ` +
    `committedDespiteError=${r.committedDespiteError} ackP50=${r.ackP50}ms ackP99=${r.ackP99}ms deliveryP50=${r.deliveryP50}ms deliveryP99=${r.deliveryP99}ms maxReconnectDowntime=${r.maxDowntimeMs}ms${extra ? ' ' + extra : ''}`;
}
