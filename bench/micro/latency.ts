import { fork } from 'node:child_process';
import { createTokenService } from '../../src/auth/tokens.js';
import { loadConfig, type Config } from '../../src/config.js';
import { postMessages } from '../../src/db/messages.js';
import { createPool } from '../../src/db/pool.js';
import { uuidv7 } from '../../src/ids.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/worker.js';
import { sleep } from '../lib/api.js';
import { BenchClient, openMany, type WireMessage } from '../lib/client.js';
import { Histogram, summarize } from '../lib/histogram.js';
import type { ResultTable } from '../lib/results.js';
import { fmtMs, fmtNum, fmtPct } from '../lib/table.js';
import type { BenchDb } from './db.js';
import { log } from './harness.js';

const ACCESS_SECRET = 'bench-access-secret-0123456789abcdefghijklmnop';
const REFRESH_SECRET = 'bench-refresh-secret-0123456789abcdefghijklmno';
const nowMs = () => performance.timeOrigin + performance.now();

/** An in-process server (src/worker.ts startServer) on an ephemeral loopback port. */
async function startBenchServer(db: BenchDb, overrides: Partial<Config>): Promise<{ server: RunningServer; wsUrl: string }> {
  const config = loadConfig(
    {
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '0',
      HOST_ID: 'bench',
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'silent',
      DATABASE_URL: db.url,
      JWT_ACCESS_SECRET: ACCESS_SECRET,
      JWT_REFRESH_SECRET: REFRESH_SECRET,
      WS_SEND_RATE: '1000000',
      WS_SEND_BURST: '1000000',
    },
    overrides,
  );
  const server = await startServer(config, createLogger(config.logLevel, { role: 'bench' }));
  return { server, wsUrl: `ws://127.0.0.1:${server.port}/ws` };
}

const tokens = createTokenService({ accessSecret: ACCESS_SECRET, refreshSecret: REFRESH_SECRET, accessTtlSec: 3600, refreshTtlSec: 86400 });
const tokenFor = (u: { id: string; username: string }) => tokens.signAccess({ sub: u.id, username: u.username, sid: uuidv7() });

/** Resolves when `seq` of the room arrives at the client. */
class Arrivals {
  private waiting = new Map<number, (t: number) => void>();
  private early = new Map<number, number>();
  onMessages = (_c: BenchClient, _room: string, msgs: WireMessage[]) => {
    const t = nowMs();
    for (const m of msgs) {
      const w = this.waiting.get(m.seq);
      if (w) {
        this.waiting.delete(m.seq);
        w(t);
      } else this.early.set(m.seq, t);
    }
  };
  wait(seq: number, timeoutMs = 5000): Promise<number> {
    const t = this.early.get(seq);
    if (t !== undefined) {
      this.early.delete(seq);
      return Promise.resolve(t);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(seq);
        reject(new Error(`seq ${seq} did not arrive within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(seq, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }
}

/**
 * (c) One message at a time: commit → LISTEN → hub → uWS publish → client.
 * Direct path: postMessages on a pool of the bench (its own commit), the client a
 * `ws` socket of this process. WebSocket path: send_message from another socket
 * through the server's writer. Inline NOTIFY (budget 7900) vs doorbell (0): the
 * server and the direct posts use the same budget.
 */
export async function benchNotifyLatency(db: BenchDb, rounds: number, gapMs: number): Promise<ResultTable> {
  const rows = [];
  const room = db.rooms[0];
  for (const budget of [7900, 0]) {
    const { server, wsUrl } = await startBenchServer(db, { notifyBudgetBytes: budget });
    const pool = createPool(db.url, 2, 'pgchat-bench');
    const arrivals = new Arrivals();
    const receiver = new BenchClient(0, wsUrl, tokenFor(db.users[0]), 'json', { messages: arrivals.onMessages });
    const acks = new Map<string, (a: { t: number; seq: number }) => void>();
    const sender = new BenchClient(1, wsUrl, tokenFor(db.users[1]), 'json', {
      ack: (_c, a) => acks.get(a.client_msg_id!)?.({ t: nowMs(), seq: a.seq }),
    });
    try {
      await receiver.connect();
      await receiver.join(room);
      await sender.connect();
      const direct = async (gapMs: number) => {
        const commit = new Histogram();
        const commitToRecv = new Histogram();
        const postToRecv = new Histogram();
        for (let i = 0; i < rounds; i++) {
          const t0 = nowMs();
          const [r] = await postMessages(pool, [{ roomId: room, userId: db.users[1].id, username: db.users[1].username, content: `c${i}`, clientMsgId: null }], budget);
          const t1 = nowMs();
          const t2 = await arrivals.wait(r.seq!);
          commit.record(t1 - t0);
          commitToRecv.record(t2 - t1);
          postToRecv.record(t2 - t0);
          await sleep(gapMs);
        }
        return { commit, commitToRecv, postToRecv };
      };
      const spaced = await direct(gapMs);
      const backToBack = await direct(1);
      const ack = new Histogram();
      const sendToRecv = new Histogram();
      for (let i = 0; i < rounds; i++) {
        const cmid = `lat-${budget}-${i}`;
        const acked = new Promise<{ t: number; seq: number }>((resolve) => acks.set(cmid, resolve));
        const t0 = nowMs();
        sender.sendMessage(room, `w${i}`, cmid);
        const a = await acked;
        acks.delete(cmid);
        ack.record(a.t - t0);
        // The message may reach the receiver before the ack reaches the sender: Arrivals keeps its time.
        sendToRecv.record((await arrivals.wait(a.seq)) - t0);
        await sleep(gapMs);
      }
      const mode = budget ? 'inline' : 'doorbell';
      const directRow = (label: string, d: Awaited<ReturnType<typeof direct>>) => [
        mode, label, rounds,
        fmtMs(d.commit.percentile(50)), fmtMs(d.commit.percentile(99)),
        fmtMs(d.commitToRecv.percentile(50)), fmtMs(d.commitToRecv.percentile(99)),
        fmtMs(d.postToRecv.percentile(50)), fmtMs(d.postToRecv.percentile(99)), fmtMs(d.postToRecv.max),
      ];
      rows.push(directRow(`postMessages, ${gapMs} ms apart`, spaced));
      rows.push([mode, `ws send_message, ${gapMs} ms apart`, rounds, fmtMs(ack.percentile(50)), fmtMs(ack.percentile(99)), '-', '-', fmtMs(sendToRecv.percentile(50)), fmtMs(sendToRecv.percentile(99)), fmtMs(sendToRecv.max)]);
      rows.push(directRow('postMessages, back to back', backToBack));
      const commitToRecv = spaced.commitToRecv;
      log(`    ${mode}: commit→receive p50 ${fmtMs(commitToRecv.percentile(50))}, ws send→receive p50 ${fmtMs(sendToRecv.percentile(50))}`);
    } finally {
      receiver.close();
      sender.close();
      await pool.end();
      await server.stop();
    }
  }
  return {
    title:
      `(c) one message at a time (${rounds} each): commit → NOTIFY → LISTEN → hub → uWS publish → ws client (same process); ` +
      `"back to back" = the next post as soon as the previous one arrived (a few hundred msg/s in one room; the hub batches per BATCH_WINDOW_MS only above BATCH_BUSY_RATE)`,
    headers: ['notify', 'path', 'n', 'commit/ack p50', 'commit/ack p99', 'commit→recv p50', 'commit→recv p99', 'total p50', 'total p99', 'total max'],
    rows,
  };
}

// ---------------------------------------------------------------- (d) fan-out

export const FANOUT_SHARD_FLAG = '--fanout-shard';

type ToShard = { type: 'open'; wsUrl: string; tokens: string[]; roomId: string; concurrency: number } | { type: 'close' };
type FromShard =
  | { type: 'ready'; opened: number; failed: number; error?: string }
  | { type: 'all'; seq: number; first: number; last: number }
  | { type: 'closed' };

/** Entry of the fan-out client process: N sockets in one room; reports when a seq reached all of them. */
export function runFanoutShard(): void {
  const clients: BenchClient[] = [];
  const seen = new Map<number, { count: number; first: number; last: number }>();
  let n = 0;
  const send = (m: FromShard) => process.send!(m);
  const arrived = (seq: number, t: number) => {
    let s = seen.get(seq);
    if (!s) seen.set(seq, (s = { count: 0, first: t, last: t }));
    s.count++;
    s.last = t;
    if (s.count === n) {
      send({ type: 'all', seq, first: s.first, last: s.last });
      seen.delete(seq);
    }
  };
  // Live single messages are read without JSON.parse: this process should cost the fan-out as little as possible.
  const raw = (_c: BenchClient, data: Buffer, isBinary: boolean) => {
    if (isBinary || data[10] !== 0x6e /* {"event":"n */) return false;
    const text = data.toString('latin1');
    if (!text.startsWith('{"event":"new_message","data":')) return false;
    const at = text.indexOf('"seq":');
    arrived(parseInt(text.slice(at + 6, at + 26), 10), nowMs());
    return true;
  };
  const onMessages = (_c: BenchClient, _room: string, msgs: WireMessage[]) => {
    const t = nowMs();
    for (const m of msgs) arrived(m.seq, t);
  };
  process.on('message', async (msg: ToShard) => {
    if (msg.type === 'open') {
      const r = await openMany(msg.tokens, msg.concurrency, async (token, i) => {
        const c = new BenchClient(i, msg.wsUrl, token, 'json', { raw, messages: onMessages });
        await c.connect();
        await c.join(msg.roomId);
        clients.push(c);
      });
      n = clients.length;
      send({ type: 'ready', opened: n, failed: r.failures.length, error: r.failures[0]?.error });
    } else if (msg.type === 'close') {
      for (const c of clients) c.close();
      await sleep(300);
      send({ type: 'closed' });
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/**
 * (d) uWS topic fan-out: N `ws` clients (in one child process) joined to one
 * room; one message committed at a time; the time from the commit to the first
 * and to the last socket receiving it. The spread (last − first) is the fan-out
 * proper; it includes the client process reading N sockets one after another.
 */
export async function benchFanout(db: BenchDb, sizes: number[], rounds: number, procsFor: (n: number) => number): Promise<ResultTable> {
  const rows = [];
  const { server, wsUrl } = await startBenchServer(db, {});
  const pool = createPool(db.url, 2, 'pgchat-bench');
  type All = Extract<FromShard, { type: 'all' }>;
  try {
    for (const n of sizes) {
      const room = db.rooms[1 + (sizes.indexOf(n) % (db.rooms.length - 1))];
      const procs = Math.max(1, Math.min(procsFor(n), n));
      /** Per seq, the reports of the shards so far. */
      const reports = new Map<number, All[]>();
      let reportWaiter: (() => void) | null = null;
      const shards = Array.from({ length: procs }, () => fork(process.argv[1], [FANOUT_SHARD_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      const readies = shards.map(
        (child, p) =>
          new Promise<Extract<FromShard, { type: 'ready' }>>((resolve) => {
            child.on('message', (m: FromShard) => {
              if (m.type === 'ready') resolve(m);
              else if (m.type === 'all') {
                const list = reports.get(m.seq) ?? [];
                list.push(m);
                reports.set(m.seq, list);
                reportWaiter?.();
              }
            });
            const share = Array.from({ length: n }, (_, i) => i).filter((i) => i % procs === p);
            child.send({
              type: 'open',
              wsUrl,
              tokens: share.map((i) => tokenFor(db.users[i % db.users.length])),
              roomId: room,
              concurrency: 200,
            } satisfies ToShard);
          }),
      );
      const ready = await Promise.all(readies);
      const opened = ready.reduce((a, r) => a + r.opened, 0);
      const failed = ready.reduce((a, r) => a + r.failed, 0);
      if (failed) log(`    ! ${failed} of ${n} fan-out sockets failed: ${ready.find((r) => r.error)?.error}`);
      await sleep(500);
      const first: number[] = [];
      const last: number[] = [];
      const spread: number[] = [];
      let complete = 0;
      for (let i = 0; i < rounds; i++) {
        const t0 = nowMs();
        const [r] = await postMessages(pool, [{ roomId: room, userId: db.users[0].id, username: db.users[0].username, content: `f${i}`, clientMsgId: null }], 7900);
        const deadline = performance.now() + 10_000;
        while ((reports.get(r.seq!)?.length ?? 0) < procs && performance.now() < deadline) {
          await Promise.race([new Promise<void>((res) => (reportWaiter = res)), sleep(50)]);
        }
        reportWaiter = null;
        const got = reports.get(r.seq!) ?? [];
        reports.delete(r.seq!);
        if (got.length === procs) {
          complete++;
          const f = Math.min(...got.map((g) => g.first));
          const l = Math.max(...got.map((g) => g.last));
          first.push(f - t0);
          last.push(l - t0);
          spread.push(l - f);
        }
        await sleep(100);
      }
      await Promise.all(
        shards.map(
          (child) =>
            new Promise<void>((resolve) => {
              child.once('exit', () => resolve());
              child.send({ type: 'close' } satisfies ToShard);
              setTimeout(() => {
                child.kill();
                resolve();
              }, 5000).unref();
            }),
        ),
      );
      const f = summarize(first);
      const l = summarize(last);
      const s = summarize(spread);
      rows.push([fmtNum(opened), procs, rounds, fmtPct(complete / rounds), fmtMs(f.p50), fmtMs(l.p50), fmtMs(l.p99), fmtMs(l.max), fmtMs(s.p50), fmtMs(s.p99), fmtNum(s.p50 > 0 ? (opened / s.p50) * 1000 : NaN)]);
      log(`    fan-out to ${n} (${procs} client processes): post→last p50 ${fmtMs(l.p50)}, spread p50 ${fmtMs(s.p50)}`);
    }
  } finally {
    await pool.end();
    await server.stop();
  }
  return {
    title: `(d) fan-out of one message to N sockets in one room (server in this process, clients in child processes; ${rounds} messages each, 100 ms apart)`,
    headers: ['sockets', 'client procs', 'msgs', 'all got it', 'post→first p50', 'post→last p50', 'post→last p99', 'post→last max', 'spread p50', 'spread p99', 'deliveries/s in spread'],
    rows,
  };
}
