import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../src/testing/db.js';
import { createRoom, joinRoom, registerUser, type RegisteredUser } from '../src/testing/http.js';
import { spawnServer, type ServerProcess } from '../src/testing/process.js';
import { assertGapless, connectWs, type TestSocket } from '../src/testing/ws-client.js';

/**
 * The delivery guarantees (PROTOCOL.md) across two real server processes sharing
 * one database: gapless, ordered, exactly once, through bursts, joins mid-burst,
 * a killed LISTEN connection, a slow reader and a crashed process.
 */
let db: TestDatabase;
let p1: ServerProcess;
let p2: ServerProcess;
const sockets: TestSocket[] = [];

const serverEnv = {
  WS_SEND_RATE: '100000',
  WS_SEND_BURST: '100000',
  PRESENCE_HEARTBEAT_MS: '500',
  PRESENCE_TIMEOUT_MS: '1500',
  LISTEN_CHECK_MS: '1000',
  WS_SOFT_BACKPRESSURE: '65536',
  WS_HARD_BACKPRESSURE: '67108864',
};

async function users(n: number, prefix: string): Promise<RegisteredUser[]> {
  const out: RegisteredUser[] = [];
  for (let i = 0; i < n; i += 10) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => registerUser(p1.url, prefix)))));
  }
  return out;
}

async function roomWith(members: RegisteredUser[]): Promise<string> {
  const room = await createRoom(p1.url, members[0].accessToken);
  for (const m of members.slice(1)) await joinRoom(p1.url, m.accessToken, room.id);
  return room.id;
}

async function join(server: ServerProcess, user: RegisteredUser, roomId: string, lastSeenSeq?: number): Promise<TestSocket> {
  const s = await connectWs(server.wsUrl, user.accessToken);
  sockets.push(s);
  s.send('join_room', lastSeenSeq === undefined ? { room_id: roomId } : { room_id: roomId, last_seen_seq: lastSeenSeq });
  await s.next((f) => f.event === 'joined_room' && f.data.room_id === roomId);
  return s;
}

/** Sends `count` messages as fast as the socket takes them; resolves with the acked seqs in send order. */
async function burst(s: TestSocket, roomId: string, count: number, tag: string): Promise<number[]> {
  const acks = new Map<string, number>();
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${tag}: ${acks.size}/${count} acked`)), 60_000);
    s.ws.on('message', () => {
      for (let i = s.frames.length - 1; i >= 0 && acks.size < count; i--) {
        const f = s.frames[i];
        if (f.event === 'message_ack' && f.data.client_msg_id?.startsWith(`${tag}-`)) acks.set(f.data.client_msg_id, f.data.seq);
        else if (f.event === 'error' && f.data.ref === 'send_message') reject(new Error(`${tag}: ${f.data.code}`));
        if (i < s.frames.length - 64) break;
      }
      if (acks.size === count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  for (let i = 0; i < count; i++) s.send('send_message', { room_id: roomId, content: `${tag} #${i}`, client_msg_id: `${tag}-${i}` });
  await done;
  return Array.from({ length: count }, (_, i) => acks.get(`${tag}-${i}`)!);
}

async function lastSeq(roomId: string): Promise<number> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query('SELECT last_seq FROM rooms WHERE id = $1', [roomId])).rows[0].last_seq;
  } finally {
    await c.end();
  }
}

before(async () => {
  db = await createTestDatabase();
  [p1, p2] = await Promise.all([spawnServer(db.url, serverEnv), spawnServer(db.url, serverEnv)]);
});

after(async () => {
  for (const s of sockets) s.ws.terminate();
  await Promise.all([p1?.kill(), p2?.kill()]);
  await db?.drop();
});

describe('delivery across processes', () => {
  test('20 senders on two processes × 100 messages: each of 50 receivers gets 1..2000 once, in order', async () => {
    const senders = await users(20, 'snd');
    const receivers = await users(50, 'rcv');
    const roomId = await roomWith([...senders, ...receivers]);
    const rx = await Promise.all(receivers.map((u, i) => join(i % 2 ? p2 : p1, u, roomId)));
    const tx = await Promise.all(senders.map((u, i) => join(i % 2 ? p1 : p2, u, roomId)));
    const acked = await Promise.all(tx.map((s, i) => burst(s, roomId, 100, `s${i}`)));
    // Each sender's messages are stored in its send order.
    for (const seqs of acked) for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
    assert.deepEqual(acked.flat().sort((a, b) => a - b), Array.from({ length: 2000 }, (_, i) => i + 1));
    await Promise.all(rx.map((s) => s.waitForMessages(roomId, 2000, 30_000)));
    for (const s of rx) assertGapless(s.messages(roomId), 0, 2000);
    // Senders receive their room too.
    await Promise.all(tx.map((s) => s.waitForMessages(roomId, 2000, 30_000)));
    for (const s of tx) assertGapless(s.messages(roomId), 0, 2000);
  });

  test('joining with last_seen_seq during a burst: history then live with no gap or repeat at the seam', async () => {
    const [sender, a, b, c] = await users(4, 'seam');
    const roomId = await roomWith([sender, a, b, c]);
    const tx = await join(p1, sender, roomId);
    const sending = burst(tx, roomId, 600, 'seam');
    const joiners: Array<{ s: TestSocket; from: number }> = [];
    for (const [i, u] of [a, b, c].entries()) {
      await new Promise((r) => setTimeout(r, 40));
      const from = Math.max(0, (await lastSeq(roomId)) - 25);
      joiners.push({ s: await join(i % 2 ? p1 : p2, u, roomId, from), from });
    }
    await sending;
    for (const { s, from } of joiners) {
      await s.waitForMessages(roomId, 600 - from, 20_000);
      assertGapless(s.messages(roomId), from, 600);
      const firstLive = s.frames.findIndex((f) => f.event === 'new_message' || f.event === 'new_message_batch');
      const lastHistory = s.frames.findLastIndex((f) => f.event === 'history');
      assert.ok(firstLive === -1 || lastHistory < firstLive, 'history comes before live messages');
      assert.equal(s.frames[lastHistory].data.has_more, false);
    }
  });

  test('500 missed messages are caught up on join (paged history), then live', async () => {
    const [sender, reader] = await users(2, 'miss');
    const roomId = await roomWith([sender, reader]);
    const tx = await join(p1, sender, roomId);
    await burst(tx, roomId, 20, 'before');
    await burst(tx, roomId, 500, 'missed');
    const rx = await join(p2, reader, roomId, 20);
    await rx.waitForMessages(roomId, 500);
    const pages = rx.frames.filter((f) => f.event === 'history');
    assert.ok(pages.length >= 3, `history in ${pages.length} frames`);
    assert.deepEqual(pages.map((p) => p.data.has_more), [...pages.slice(1).map(() => true), false]);
    await burst(tx, roomId, 5, 'after');
    await rx.waitForMessages(roomId, 505);
    assertGapless(rx.messages(roomId), 20, 525);
  });

  test('terminating every LISTEN connection mid-burst loses nothing', async () => {
    const [s1, s2, r1, r2] = await users(4, 'lst');
    const roomId = await roomWith([s1, s2, r1, r2]);
    const rx = [await join(p1, r1, roomId), await join(p2, r2, roomId)];
    const tx = [await join(p1, s1, roomId), await join(p2, s2, roomId)];
    const sending = Promise.all(tx.map((s, i) => burst(s, roomId, 400, `lst${i}`)));
    await new Promise((r) => setTimeout(r, 30));
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const killed = await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgchat-listen' AND datname = current_database()",
    );
    await admin.end();
    assert.ok(killed.rowCount! >= 2, `terminated ${killed.rowCount} LISTEN connections`);
    await sending;
    for (const s of rx) {
      await s.waitForMessages(roomId, 800, 20_000);
      assertGapless(s.messages(roomId), 0, 800);
    }
  });

  test('a reader that stops reading past the limit, then resumes, gets everything in order', async () => {
    const [sender, slow, fast] = await users(3, 'slow');
    const roomId = await roomWith([sender, slow, fast]);
    const rxSlow = await join(p2, slow, roomId);
    const rxFast = await join(p2, fast, roomId);
    const tx = await join(p1, sender, roomId);
    const socket = (rxSlow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    // 1500 × 8 KB: far more than the socket buffers of both ends hold, so the server backs up.
    const filler = 'x'.repeat(8000);
    const acks = new Map<string, number>();
    tx.ws.on('message', () => {
      const f = tx.frames[tx.frames.length - 1];
      if (f.event === 'message_ack') acks.set(f.data.client_msg_id, f.data.seq);
    });
    for (let i = 0; i < 1500; i++) tx.send('send_message', { room_id: roomId, content: `${filler} ${i}`, client_msg_id: `slow-${i}` });
    await rxFast.waitForMessages(roomId, 1500, 30_000);
    await new Promise((r) => setTimeout(r, 300));
    socket.resume();
    const closed = await Promise.race([rxSlow.waitForMessages(roomId, 1500, 30_000).then(() => null), rxSlow.closed]);
    if (closed) {
      // Closed as a slow consumer: it must say so, and resuming from what it holds completes the stream.
      assert.equal(closed.code, 4008);
      const held = rxSlow.messages(roomId);
      const from = held.length ? held[held.length - 1].seq : 0;
      assertGapless(held, 0, from);
      const again = await join(p2, slow, roomId, from);
      await again.waitForMessages(roomId, 1500 - from, 30_000);
      assertGapless(again.messages(roomId), from, 1500);
    } else {
      assertGapless(rxSlow.messages(roomId), 0, 1500);
    }
    assertGapless(rxFast.messages(roomId), 0, 1500);
    const metrics = await (await fetch(`${p2.url}/metrics`)).text();
    const handled = /pgchat_slow_consumers_total\{action="(paused|closed)"\} [1-9]/.test(metrics);
    assert.ok(handled, 'the slow reader was paused or closed by the server');
  });

  test('kill -9 of the process holding a user socket: others see the user go offline within the bound', async () => {
    const [watcher, victim] = await users(2, 'kill');
    const roomId = await roomWith([watcher, victim]);
    const w = await join(p1, watcher, roomId);
    const doomed = await spawnServer(db.url, serverEnv);
    try {
      const v = await connectWs(doomed.wsUrl, victim.accessToken);
      sockets.push(v);
      await w.next((f) => f.event === 'presence' && f.data.user_id === victim.user.id && f.data.status === 'online', 5000);
      const killedAt = Date.now();
      await doomed.kill('SIGKILL');
      const off = await w.next((f) => f.event === 'presence' && f.data.user_id === victim.user.id && f.data.status === 'offline', 10_000);
      const took = off.at - killedAt;
      // Heartbeat 500 ms, timeout 1500 ms here: the bound is timeout + heartbeat (+ notification time).
      assert.ok(took <= 2500, `offline announced after ${took} ms`);
      // The survivors are unaffected.
      const [again] = await users(1, 'after');
      await joinRoom(p1.url, again.accessToken, roomId);
      const s = await join(p2, again, roomId);
      s.send('send_message', { room_id: roomId, content: 'still up', client_msg_id: 'still-up' });
      await s.next((f) => f.event === 'message_ack');
      await w.waitForMessages(roomId, 1);
    } finally {
      await doomed.kill('SIGKILL');
    }
  });
});
