import { fork, type ChildProcess } from 'node:child_process';
import { sleep } from '../lib/api.js';
import { BenchClient, openMany, usesMsgpack, type WireMessage } from '../lib/client.js';
import { Histogram, summarize } from '../lib/histogram.js';
import { openFilesLimit } from '../lib/proc.js';
import type { ResultTable } from '../lib/results.js';
import { fmtBytes, fmtMs, fmtNum, fmtPct, type Cell } from '../lib/table.js';
import { nowMs, pct, ResourceWindow, type CommonOptions } from './common.js';

/**
 * idle-sockets: N authenticated sockets, each joined to one of R rooms, doing
 * nothing. Measures the connect + join rate and the server's RSS per socket,
 * then checks the sockets are live: one message per room must reach every
 * socket of the room (fan-out time to the last one).
 *
 * One process cannot hold more sockets than its open-files limit (ulimit -n), so
 * the sockets are spread over child processes ("shards") of this same script.
 */
export interface IdlePlan extends CommonOptions {
  sockets: number;
  rooms: number;
  /** Seconds to wait after connecting before the settled RSS reading. */
  settleSec: number;
  perProcess: number;
  localAddresses: number;
}

type ToShard =
  | { type: 'open'; wsUrl: string; items: Array<{ token: string; roomId: string }>; concurrency: number; msgpackRatio: number; offset: number; localAddresses: string[] }
  | { type: 'arm'; tag: string }
  | { type: 'collect'; timeoutMs: number }
  | { type: 'close' };

type FromShard =
  | { type: 'progress'; done: number; failed: number }
  | { type: 'opened'; ms: number[]; failed: number; errors: string[]; startAt: number; endAt: number; msgpack: number; cpuMs: number }
  | { type: 'armed' }
  | { type: 'collected'; expected: number; received: number; latency: ReturnType<Histogram['toJSON']>; closes: Record<string, number> }
  | { type: 'closed' };

export const SHARD_FLAG = '--idle-shard';

/** Entry of a child process: holds its share of the sockets until told to close. */
export function runIdleShard(): void {
  const clients: Array<{ client: BenchClient; roomId: string; got: boolean }> = [];
  const byClient = new Map<BenchClient, (typeof clients)[number]>();
  let tag = '';
  const latency = new Histogram();
  const closes: Record<string, number> = {};
  let closing = false;
  const send = (m: FromShard) => process.send!(m);

  const events = {
    messages(c: BenchClient, _roomId: string, msgs: WireMessage[]) {
      const entry = byClient.get(c);
      if (!entry || !tag || entry.got) return;
      for (const m of msgs) {
        if (m.content.startsWith(tag)) {
          entry.got = true;
          latency.record(nowMs() - Number(m.content.slice(tag.length + 1, m.content.indexOf('|', tag.length + 1))));
          return;
        }
      }
    },
    close(_c: BenchClient, code: number) {
      if (!closing) closes[code] = (closes[code] ?? 0) + 1;
    },
  };

  process.on('message', async (msg: ToShard) => {
    if (msg.type === 'open') {
      const startAt = nowMs();
      const cpu0 = process.cpuUsage();
      let msgpack = 0;
      const r = await openMany(
        msg.items,
        msg.concurrency,
        async (item, i) => {
          const idx = msg.offset + i;
          const framing = usesMsgpack(idx, msg.msgpackRatio) ? 'msgpack' : 'json';
          if (framing === 'msgpack') msgpack++;
          const local = msg.localAddresses.length ? msg.localAddresses[idx % msg.localAddresses.length] : undefined;
          const client = new BenchClient(idx, msg.wsUrl, item.token, framing, events, local);
          await client.connect(60_000);
          await client.join(item.roomId);
          const entry = { client, roomId: item.roomId, got: false };
          clients.push(entry);
          byClient.set(client, entry);
        },
        (done, failed) => send({ type: 'progress', done, failed }),
      );
      const errors = [...new Set(r.failures.map((f) => f.error))].slice(0, 5);
      const cpu = process.cpuUsage(cpu0);
      send({ type: 'opened', ms: r.ms, failed: r.failures.length, errors, startAt, endAt: nowMs(), msgpack, cpuMs: (cpu.user + cpu.system) / 1000 });
    } else if (msg.type === 'arm') {
      tag = msg.tag;
      for (const c of clients) c.got = false;
      send({ type: 'armed' });
    } else if (msg.type === 'collect') {
      const deadline = performance.now() + msg.timeoutMs;
      while (performance.now() < deadline && clients.some((c) => !c.got && !c.client.closed)) await sleep(20);
      send({
        type: 'collected',
        expected: clients.length,
        received: clients.filter((c) => c.got).length,
        latency: latency.toJSON(),
        closes,
      });
    } else if (msg.type === 'close') {
      closing = true;
      for (const c of clients) c.client.close();
      await sleep(500);
      send({ type: 'closed' });
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

class Shard {
  private waiters: Array<{ type: string; resolve: (m: any) => void }> = [];
  progress = { done: 0, failed: 0 };

  constructor(readonly child: ChildProcess) {
    child.on('message', (m: FromShard) => {
      if (m.type === 'progress') {
        this.progress = { done: m.done, failed: m.failed };
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
    });
    child.on('exit', (code) => {
      for (const w of this.waiters.splice(0)) w.resolve({ type: 'exited', code });
    });
  }

  request<T extends FromShard>(msg: ToShard, reply: T['type']): Promise<T> {
    return new Promise((resolve) => {
      this.waiters.push({ type: reply, resolve });
      this.child.send(msg);
    });
  }
}

export async function runIdle(plan: IdlePlan): Promise<{ tables: ResultTable[]; notes: string[]; warnings: string[]; data: unknown; ok: boolean }> {
  const { pop, probe, log } = plan;
  const rooms = pop.rooms.slice(0, plan.rooms);
  const fdLimit = openFilesLimit();
  const perProcess = Math.max(1, Math.min(plan.perProcess, fdLimit - 200));
  const procs = Math.ceil(plan.sockets / perProcess);
  log(
    `  ${fmtNum(plan.sockets)} sockets in ${rooms.length} rooms over ${procs} generator process(es) ` +
      `(open-files limit ${fdLimit}; at most ${fmtNum(perProcess)} sockets per process)`,
  );
  if (probe.pids.length === 1 && plan.sockets > fdLimit - 200) {
    log(`  ! one server worker cannot hold ${fmtNum(plan.sockets)} sockets with ulimit -n ${fdLimit}: start it with WORKERS=2 or more`);
  }

  // Socket i joins room i mod R as one of the room's members.
  const items = Array.from({ length: plan.sockets }, (_, i) => {
    const room = rooms[i % rooms.length];
    const members = pop.rooms[i % rooms.length].members;
    const user = members[Math.floor(i / rooms.length) % members.length];
    return { token: pop.users[user].accessToken, roomId: room.id };
  });
  const localAddresses =
    plan.localAddresses > 1 && /\/\/127\.0\.0\.1[:/]/.test(pop.wsUrl)
      ? Array.from({ length: plan.localAddresses }, (_, i) => `127.0.0.${i + 1}`)
      : [];

  const rssBefore = await probe.rss();
  const res = new ResourceWindow(probe);
  const shards: Shard[] = [];
  for (let p = 0; p < procs; p++) {
    shards.push(new Shard(fork(process.argv[1], [SHARD_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })));
  }
  const ticker = setInterval(() => {
    const done = shards.reduce((a, s) => a + s.progress.done, 0);
    const failed = shards.reduce((a, s) => a + s.progress.failed, 0);
    log(`    ${fmtNum(done)}/${fmtNum(plan.sockets)} connected + joined${failed ? `, ${failed} failed` : ''}`);
  }, 2000);
  const opened = await Promise.all(
    shards.map((s, p) =>
      s.request<Extract<FromShard, { type: 'opened' }>>(
        {
          type: 'open',
          wsUrl: pop.wsUrl,
          items: items.slice(p * perProcess, (p + 1) * perProcess),
          concurrency: Math.max(1, Math.ceil(plan.connectConcurrency / procs)),
          msgpackRatio: plan.msgpackRatio,
          offset: p * perProcess,
          localAddresses,
        },
        'opened',
      ),
    ),
  );
  clearInterval(ticker);
  const resources = res.read();
  const startAt = Math.min(...opened.map((o) => o.startAt));
  const endAt = Math.max(...opened.map((o) => o.endAt));
  const wallMs = endAt - startAt;
  const ms = opened.flatMap((o) => o.ms);
  // The shards do the work: their CPU over the connect phase, plus the parent's.
  const genCpu = resources.genCpu + (opened.reduce((a, o) => a + (o.cpuMs ?? 0), 0) / wallMs) * 100;
  const failed = opened.reduce((a, o) => a + (o.failed ?? 0), 0);
  const errors = [...new Set(opened.flatMap((o) => o.errors ?? []))];
  const connected = ms.length;
  const perSocket = summarize(ms);
  const rssConnected = await probe.rss();
  log(`  ${fmtNum(connected)} sockets connected + joined in ${(wallMs / 1000).toFixed(1)} s (${fmtNum(connected / (wallMs / 1000))}/s)`);
  if (failed) log(`  ! ${failed} failed: ${errors.join('; ')}`);
  await sleep(plan.settleSec * 1000);
  const rssSettled = await probe.rss();

  // Liveness: one message per room to every socket of the room.
  const tag = `i${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
  await Promise.all(shards.map((s) => s.request({ type: 'arm', tag }, 'armed')));
  const senders: BenchClient[] = [];
  await openMany(rooms, 20, async (room, r) => {
    const c = new BenchClient(r, pop.wsUrl, pop.users[pop.rooms[r].members[0]].accessToken, 'json', {});
    await c.connect();
    senders.push(c);
    void room;
  });
  const roomOf = new Map(senders.map((c) => [c, rooms[c.index].id]));
  const sentAt = performance.now();
  for (const c of senders) c.sendMessage(roomOf.get(c)!, `${tag}|${nowMs().toFixed(3)}|probe`, `${tag}-${c.index}`);
  const collected = await Promise.all(
    shards.map((s) => s.request<Extract<FromShard, { type: 'collected' }>>({ type: 'collect', timeoutMs: 30_000 }, 'collected')),
  );
  const fanoutWallMs = performance.now() - sentAt;
  const latency = collected.reduce((h, c) => h.merge(Histogram.fromJSON(c.latency)), new Histogram());
  const received = collected.reduce((a, c) => a + c.received, 0);
  const expected = collected.reduce((a, c) => a + c.expected, 0);
  const closes: Record<string, number> = {};
  for (const c of collected) for (const [k, v] of Object.entries(c.closes ?? {})) closes[k] = (closes[k] ?? 0) + v;
  for (const c of senders) c.close();
  const rssEnd = await probe.rss();

  log('  closing...');
  await Promise.all(shards.map((s) => s.request({ type: 'close' }, 'closed')));

  const perSocketBytes = (v: number | null) => (v !== null && rssBefore !== null && connected ? (v - rssBefore) / connected : null);
  const settledPer = perSocketBytes(rssSettled);
  const connectedPer = perSocketBytes(rssConnected);
  const headers = [
    'sockets', 'rooms', 'procs', 'connect s', 'sockets/s', 'p50', 'p99', 'max', 'failed',
    'RSS before', 'RSS after', 'RSS / 1k sockets', 'fan-out', 'fan-out p99', 'delivered', 'gen CPU', 'srv CPU', 'pg CPU',
  ];
  const rows: Cell[][] = [
    [
      connected,
      rooms.length,
      procs,
      (wallMs / 1000).toFixed(1),
      fmtNum(connected / (wallMs / 1000)),
      fmtMs(perSocket.p50),
      fmtMs(perSocket.p99),
      fmtMs(perSocket.max),
      failed,
      rssBefore === null ? 'n/a' : fmtBytes(rssBefore),
      rssSettled === null ? 'n/a' : fmtBytes(rssSettled),
      settledPer === null ? 'n/a' : fmtBytes(settledPer * 1000),
      fmtMs(latency.max),
      fmtMs(latency.percentile(99)),
      fmtPct(expected ? received / expected : NaN),
      pct(genCpu),
      pct(resources.serverCpu),
      pct(resources.pgCpu),
    ],
  ];
  const warnings: string[] = [];
  if (failed) warnings.push(`${failed} sockets failed to connect or join: ${errors.join('; ')}`);
  if (received < expected) warnings.push(`${expected - received} of ${expected} sockets did not get the probe message within 30 s`);
  if (Object.keys(closes).length) warnings.push(`sockets closed by the server while idle: ${JSON.stringify(closes)}`);
  const notes = [
    `${fmtNum(connected)} sockets (${opened.reduce((a, o) => a + (o.msgpack ?? 0), 0)} msgpack), ${rooms.length} rooms, ` +
      `${pop.users.length} users (${pop.source}): a user has several sockets; ${procs} generator process(es), ${plan.connectConcurrency} handshakes in flight`,
    `connect + join: ${(wallMs / 1000).toFixed(1)} s, ${fmtNum(connected / (wallMs / 1000))} sockets/s; per socket p50 ${fmtMs(perSocket.p50)} p99 ${fmtMs(perSocket.p99)} max ${fmtMs(perSocket.max)}`,
    `server RSS: ${[rssBefore, rssConnected, rssSettled, rssEnd].map((v) => (v === null ? 'n/a' : fmtBytes(v))).join(' → ')} ` +
      `(before → connected → after ${plan.settleSec} s idle → after the probe); per 1,000 sockets ${connectedPer === null ? 'n/a' : fmtBytes(connectedPer * 1000)} ` +
      `just connected, ${settledPer === null ? 'n/a' : fmtBytes(settledPer * 1000)} settled [${probe.method}]`,
    `probe: 1 message in each of ${rooms.length} rooms reached ${fmtNum(received)}/${fmtNum(expected)} sockets; ` +
      `send → receive p50 ${fmtMs(latency.percentile(50))}, p99 ${fmtMs(latency.percentile(99))}, last ${fmtMs(latency.max)} (wall ${fmtMs(fanoutWallMs)})`,
    `CPU during connect (% of one core): generator ${pct(genCpu)} (all its processes), server ${pct(resources.serverCpu)}, PostgreSQL ${pct(resources.pgCpu)}`,
  ];
  return {
    ok: failed === 0 && received === expected,
    warnings,
    notes,
    tables: [{ title: 'idle-sockets', headers, rows }],
    data: {
      plan: { sockets: plan.sockets, rooms: rooms.length, procs, perProcess, settleSec: plan.settleSec, msgpackRatio: plan.msgpackRatio, connectConcurrency: plan.connectConcurrency },
      connect: { wallMs, socketsPerSec: connected / (wallMs / 1000), perSocketMs: perSocket, failed, errors },
      serverRss: {
        method: probe.method,
        pids: probe.pids,
        before: rssBefore,
        connected: rssConnected,
        settled: rssSettled,
        end: rssEnd,
        perSocketConnected: connectedPer,
        perSocketSettled: settledPer,
        per1000SocketsSettled: settledPer === null ? null : settledPer * 1000,
      },
      probe: { expected, received, latencyMs: latency.summary(), wallMs: fanoutWallMs, closes },
      resources: { ...resources, genCpu },
    },
  };
}
