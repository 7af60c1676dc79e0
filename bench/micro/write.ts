import pg from 'pg';
import { postMessages, type PostInput } from '../../src/db/messages.js';
import { BUS_CHANNEL, createPool } from '../../src/db/pool.js';
import { createMessageWriter } from '../../src/realtime/writer.js';
import { Histogram } from '../lib/histogram.js';
import type { ResultTable } from '../lib/results.js';
import { fmtMs, fmtNum } from '../lib/table.js';
import type { BenchDb } from './db.js';
import { log } from './harness.js';

export const TARGET_SPREAD = 20_000;
export const TARGET_HOT = 5_000;

const CONTENT = 'x'.repeat(64);

/** A LISTEN connection that consumes the bus while writes run (as every worker does). */
async function listener(url: string): Promise<{ count: () => { notifications: number; bytes: number; messages: number; doorbells: number }; stop: () => Promise<void> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  let notifications = 0;
  let bytes = 0;
  let messages = 0;
  let doorbells = 0;
  c.on('notification', (n) => {
    notifications++;
    const p = n.payload ?? '';
    bytes += p.length;
    if (p.startsWith('m|')) messages += Number(p.slice(0, p.indexOf('\n')).split('|')[3]);
    else if (p.startsWith('d|')) {
      const f = p.split('|');
      doorbells += Number(f[3]) - Number(f[2]) + 1;
    }
  });
  await c.query(`LISTEN ${BUS_CHANNEL}`);
  return {
    count: () => ({ notifications, bytes, messages, doorbells }),
    stop: () => c.end(),
  };
}

let cmidSeq = 0;
function input(db: BenchDb, room: string, i: number): PostInput {
  const u = db.users[i % db.users.length];
  return { roomId: room, userId: u.id, username: u.username, content: CONTENT, clientMsgId: `m${(cmidSeq++).toString(36)}` };
}

/**
 * (b1) pgchat_post_messages straight from one connection, one call at a time:
 * rows/s per batch size, one hot room vs spread over 100 rooms, inline NOTIFY vs doorbell.
 */
export async function benchPostMessages(db: BenchDb, seconds: number, batches: number[]): Promise<ResultTable> {
  const pool = createPool(db.url, 2, 'pgchat-bench');
  const listen = await listener(db.url);
  const rows = [];
  try {
    for (const budget of [7900, 0]) {
      for (const spread of [1, db.rooms.length]) {
        for (const batch of batches) {
          const lat = new Histogram();
          let n = 0;
          let r = 0;
          const before = listen.count();
          const t0 = performance.now();
          const end = t0 + seconds * 1000;
          while (performance.now() < end) {
            const items = Array.from({ length: batch }, (_, i) => input(db, db.rooms[(r + i) % spread], n + i));
            r += batch;
            const t = performance.now();
            const res = await postMessages(pool, items, budget);
            lat.record(performance.now() - t);
            if (res.some((x) => x.status !== 'ok')) throw new Error(`postMessages: ${res.find((x) => x.status !== 'ok')!.status}`);
            n += batch;
          }
          const elapsed = (performance.now() - t0) / 1000;
          await new Promise((res) => setTimeout(res, 100));
          const after = listen.count();
          rows.push([
            budget ? 'inline' : 'doorbell',
            spread,
            batch,
            fmtNum(n / elapsed),
            fmtNum(lat.count / elapsed),
            fmtMs(lat.percentile(50)),
            fmtMs(lat.percentile(99)),
            fmtNum((after.notifications - before.notifications) / lat.count),
            fmtNum((after.bytes - before.bytes) / Math.max(1, after.notifications - before.notifications)),
          ]);
          log(`    post ${budget ? 'inline' : 'doorbell'} rooms=${spread} batch=${batch}: ${fmtNum(n / elapsed)} rows/s`);
        }
      }
    }
  } finally {
    await listen.stop();
    await pool.end();
  }
  return {
    title: `(b1) postMessages (pgchat_post_messages, one connection, calls in sequence, ${seconds} s each, 64 B content + client_msg_id)`,
    headers: ['notify', 'rooms', 'batch', 'rows/s', 'calls/s', 'call p50', 'call p99', 'NOTIFYs/call', 'bytes/NOTIFY'],
    rows,
  };
}

/**
 * (b2) The group-commit writer (createMessageWriter) under N concurrent posters,
 * each posting its next message when the previous one is committed (closed loop).
 * `writers` writers share the database like that many workers would, each with
 * its own pool.
 */
export async function benchWriter(
  db: BenchDb,
  seconds: number,
  cases: Array<{ writers: number; posters: number }>,
): Promise<{ table: ResultTable; best: { spread: number; hot: number } }> {
  const rows = [];
  const listen = await listener(db.url);
  let bestSpread = 0;
  let bestHot = 0;
  try {
    for (const budget of [7900, 0]) {
      for (const spread of [1, db.rooms.length]) {
        for (const { writers: w, posters } of cases) {
          const pools = Array.from({ length: w }, () => createPool(db.url, 10, 'pgchat-bench'));
          const writers = pools.map((pool) => createMessageWriter(pool, { notifyBudget: budget, maxMessageBytes: 65536 }));
          const lat = new Histogram();
          let done = 0;
          let failed = 0;
          let stop = false;
          const before = listen.count();
          const t0 = performance.now();
          const loops = Array.from({ length: posters }, async (_, p) => {
            const writer = writers[p % w];
            const room = db.rooms[p % spread];
            while (!stop) {
              const t = performance.now();
              try {
                const r = await writer.post(input(db, room, p));
                if (r.status !== 'ok') failed++;
                lat.record(performance.now() - t);
                done++;
              } catch {
                failed++;
              }
            }
          });
          await new Promise((res) => setTimeout(res, seconds * 1000));
          stop = true;
          const elapsed = (performance.now() - t0) / 1000;
          await Promise.all(loops);
          await Promise.all(writers.map((x) => x.drain()));
          await new Promise((res) => setTimeout(res, 100));
          const after = listen.count();
          const flushes = writers.reduce((n, wr) => n + wr.flushes, 0);
          await Promise.all(pools.map((p) => p.end()));
          const rate = done / elapsed;
          if (spread === 1) bestHot = Math.max(bestHot, rate);
          else bestSpread = Math.max(bestSpread, rate);
          rows.push([
            budget ? 'inline' : 'doorbell',
            spread,
            w,
            posters,
            fmtNum(rate),
            fmtNum(done / Math.max(1, flushes)),
            fmtMs(lat.percentile(50)),
            fmtMs(lat.percentile(99)),
            fmtNum((after.notifications - before.notifications) / elapsed),
            failed,
          ]);
          log(`    writer ${budget ? 'inline' : 'doorbell'} rooms=${spread} writers=${w} posters=${posters}: ${fmtNum(rate)} msg/s`);
        }
      }
    }
  } finally {
    await listen.stop();
  }
  return {
    table: {
      title: `(b2) group-commit writer (createMessageWriter) under concurrent posters, closed loop, ${seconds} s each; targets ≥ ${fmtNum(TARGET_SPREAD)} msg/s over 100 rooms, ≥ ${fmtNum(TARGET_HOT)} msg/s into one room`,
      headers: ['notify', 'rooms', 'writers', 'posters', 'msg/s', 'msgs/flush', 'post p50', 'post p99', 'NOTIFYs/s', 'failed'],
      rows,
    },
    best: { spread: bestSpread, hot: bestHot },
  };
}
