import { sleep } from '../lib/api.js';
import { BenchClient, openMany, usesMsgpack, type Ack, type WireMessage } from '../lib/client.js';
import { Histogram, summarize, type Summary } from '../lib/histogram.js';
import { IntervalSet } from '../lib/interval-set.js';
import type { ResultTable } from '../lib/results.js';
import { SeqTracker } from '../lib/seq-tracker.js';
import { fmtBytes, fmtMs, fmtNum, fmtPct, type Cell } from '../lib/table.js';
import { nowMs, pct, ResourceWindow, type CommonOptions } from './common.js';

/**
 * The engine of the message scenarios (seed, hot-room, many-rooms): receivers
 * join their room live, senders post at a paced total rate in one or more steps,
 * every delivery goes through a per-receiver SeqTracker, and after each step a
 * drain waits until every receiver holds every acknowledged message (or nothing
 * moves for drainSec). Content carries the run tag, step and send time:
 * "<tag>|<step>|<epoch ms>|xxxx…", so latency = receive time − send time.
 */
export interface TrafficPlan extends CommonOptions {
  scenario: string;
  rooms: number;
  sendersPerRoom: number;
  receiversPerRoom: number;
  steps: Array<{ rate: number; seconds: number }>;
  /** A drain ends when nothing was acked or delivered for this long. */
  drainSec: number;
  /** Longest catch-up between two steps before the next one starts anyway. */
  stepDrainCapSec: number;
  contentBytes: number;
  /** Sends without an ack per sender socket before the generator holds back. */
  maxInFlight: number;
  /** Fraction of receivers that stop reading their socket for slowPauseMs, then read for slowPauseMs, and so on. */
  slowRatio: number;
  slowPauseMs: number;
}

interface Room {
  idx: number;
  id: string;
  acked: IntervalSet;
  /** The same seqs by the step their message was sent in. */
  ackedByStep: IntervalSet[];
  receivers: number;
}

interface Sender {
  client: BenchClient;
  room: Room;
  interval: number;
  nextAt: number;
  inFlight: number;
  n: number;
  prefix: string;
  reconnecting: boolean;
}

interface Receiver {
  client: BenchClient;
  room: Room;
  tracker: SeqTracker;
  reconnects: number;
  resuming: boolean;
}

interface Pending {
  sendTs: number;
  step: number;
  sender: Sender;
}

interface StepStats {
  rate: number;
  seconds: number;
  sent: number;
  /** Acks / deliveries that arrived while the step ran (throughput). */
  ackedInWindow: number;
  deliveredInWindow: number;
  /** Of this step's messages, by the end of the run. */
  acked: number;
  /** Unique deliveries of the step's messages (acknowledged or not: a send answered with an error may still be stored). */
  delivered: number;
  /** Acknowledged messages × receivers of their room, and how many of those deliveries never came (exact, after the drain). */
  expected: number;
  missing: number;
  rateLimited: number;
  sendErrors: number;
  heldBack: number;
  disconnected: number;
  generatorSkipped: number;
  latency: Histogram;
  ackLatency: Histogram;
  windowMs: number;
  drainMs: number;
  drainComplete: boolean;
  anomalies: { gaps: number; duplicates: number; outOfOrder: number };
  resources: ReturnType<ResourceWindow['read']> | null;
  rssAfter: number | null;
}

export interface TrafficOutcome {
  tables: ResultTable[];
  notes: string[];
  warnings: string[];
  data: unknown;
  ok: boolean;
}

const RUN = 'running';

export async function runTraffic(plan: TrafficPlan): Promise<TrafficOutcome> {
  const { pop, probe, log } = plan;
  const tag = `b${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
  const rooms: Room[] = pop.rooms.slice(0, plan.rooms).map((r, idx) => ({ idx, id: r.id, acked: new IntervalSet(), ackedByStep: [], receivers: 0 }));
  if (rooms.length < plan.rooms) throw new Error(`need ${plan.rooms} rooms, have ${rooms.length}`);

  const steps: StepStats[] = plan.steps.map((s) => ({
    rate: s.rate,
    seconds: s.seconds,
    sent: 0,
    ackedInWindow: 0,
    deliveredInWindow: 0,
    acked: 0,
    delivered: 0,
    expected: 0,
    missing: 0,
    rateLimited: 0,
    sendErrors: 0,
    heldBack: 0,
    disconnected: 0,
    generatorSkipped: 0,
    latency: new Histogram(),
    ackLatency: new Histogram(),
    windowMs: 0,
    drainMs: 0,
    drainComplete: false,
    anomalies: { gaps: 0, duplicates: 0, outOfOrder: 0 },
    resources: null,
    rssAfter: null,
  }));
  let current = -1; // index of the step whose send window is open
  let lastStep = 0; // the step running or last run (error frames carry no message id: they count for it)
  let phase: 'setup' | typeof RUN | 'stopping' = 'setup';

  const pending = new Map<string, Pending>();
  const receivers: Receiver[] = [];
  const senders: Sender[] = [];
  const byClient = new Map<BenchClient, Receiver>();
  const counters = {
    ownDeliveries: 0,
    acks: 0,
    unknownAcks: 0,
    duplicateAcks: 0,
    seqCollisions: 0,
    otherErrors: new Map<string, number>(),
    closes: new Map<string, number>(),
    reconnects: 0,
    reconnectFailures: 0,
    foreignMessages: 0,
  };
  const anomalyLog: string[] = [];
  const worst: Array<{ ms: number; room: number; seq: number; atSec: number }> = [];
  let worstFloor = 0;
  let windowMaxLatency = 0;
  let runStart = 0;

  const noteAnomaly = (msg: string) => {
    if (anomalyLog.length < 30) anomalyLog.push(msg);
  };

  // ---- frame handlers -------------------------------------------------------
  const events = {
    messages(c: BenchClient, roomId: string, msgs: WireMessage[], kind: 'live' | 'history') {
      const rec = byClient.get(c);
      if (!rec || roomId !== rec.room.id) return;
      const t = nowMs();
      const tr = rec.tracker;
      for (const m of msgs) {
        const before = tr.last;
        const verdict = tr.observe(m.seq);
        if (verdict === 'duplicate' || verdict === 'before_baseline') {
          if (verdict === 'duplicate') noteAnomaly(`duplicate: receiver ${c.index} room ${rec.room.idx} seq ${m.seq} (${kind}; newest seen ${before})`);
          continue;
        }
        if (verdict === 'gap') noteAnomaly(`gap: receiver ${c.index} room ${rec.room.idx} got seq ${m.seq} after ${before} (${kind})`);
        else if (verdict === 'out_of_order') noteAnomaly(`out of order: receiver ${c.index} room ${rec.room.idx} got seq ${m.seq} after ${before} (${kind})`);
        const content = m.content;
        if (!content.startsWith(tag)) {
          counters.foreignMessages++;
          continue;
        }
        const p1 = tag.length + 1;
        const p2 = content.indexOf('|', p1);
        const p3 = content.indexOf('|', p2 + 1);
        const step = Number(content.slice(p1, p2));
        const lat = t - Number(content.slice(p2 + 1, p3));
        const st = steps[step];
        if (!st) continue;
        st.delivered++;
        st.latency.record(lat);
        counters.ownDeliveries++;
        if (current >= 0) steps[current].deliveredInWindow++;
        if (lat > windowMaxLatency) windowMaxLatency = lat;
        if (lat > worstFloor) {
          // The slowest messages (each once, at its slowest receiver).
          const same = worst.find((w) => w.room === rec.room.idx && w.seq === m.seq);
          if (same) same.ms = Math.max(same.ms, lat);
          else worst.push({ ms: lat, room: rec.room.idx, seq: m.seq, atSec: (performance.now() - runStart) / 1000 });
          worst.sort((a, b) => b.ms - a.ms);
          if (worst.length > 5) worst.length = 5;
          if (worst.length === 5) worstFloor = worst[4].ms;
        }
      }
    },
    ack(_c: BenchClient, a: Ack) {
      const p = a.client_msg_id ? pending.get(a.client_msg_id) : undefined;
      if (!p) {
        counters.unknownAcks++;
        return;
      }
      pending.delete(a.client_msg_id!);
      p.sender.inFlight--;
      counters.acks++;
      if (a.duplicate) counters.duplicateAcks++;
      (p.sender.room.ackedByStep[p.step] ??= new IntervalSet()).add(a.seq);
      if (!p.sender.room.acked.add(a.seq)) {
        counters.seqCollisions++;
        noteAnomaly(`seq collision: room ${p.sender.room.idx} seq ${a.seq} acked for two different messages`);
      }
      const st = steps[p.step];
      st.acked++;
      st.expected += p.sender.room.receivers;
      st.ackLatency.record(nowMs() - p.sendTs);
      if (current >= 0) steps[current].ackedInWindow++;
    },
    error(c: BenchClient, e: { code: string; message: string; ref?: string }) {
      const sender = senderOf.get(c);
      if (e.ref === 'send_message' && sender) {
        sender.inFlight = Math.max(0, sender.inFlight - 1);
        const st = steps[current >= 0 ? current : lastStep];
        if (e.code === 'rate_limited') st.rateLimited++;
        else st.sendErrors++;
      }
      const key = `${e.code}${e.ref ? ` (${e.ref})` : ''}`;
      if (e.code !== 'rate_limited') counters.otherErrors.set(key, (counters.otherErrors.get(key) ?? 0) + 1);
    },
    close(c: BenchClient, code: number, reason: string) {
      if (phase === 'stopping' || phase === 'setup') return;
      const key = `${code}${reason ? ` ${reason}` : ''}`;
      counters.closes.set(key, (counters.closes.get(key) ?? 0) + 1);
      const rec = byClient.get(c);
      if (rec) void resume(rec);
      const sender = senderOf.get(c);
      if (sender) void reconnectSender(sender);
    },
  };
  const senderOf = new Map<BenchClient, Sender>();

  /** PROTOCOL.md: after a close, reconnect and resume with last_seen_seq; the tracker carries on. */
  async function resume(rec: Receiver): Promise<void> {
    if (rec.resuming) return;
    rec.resuming = true;
    rec.reconnects++;
    counters.reconnects++;
    for (let attempt = 0; attempt < 10 && phase === RUN; attempt++) {
      await sleep(100 * 2 ** Math.min(attempt, 5) * (0.5 + Math.random()));
      try {
        await rec.client.connect();
        await rec.client.join(rec.room.id, rec.tracker.last);
        rec.resuming = false;
        return;
      } catch {
        rec.client.ws?.terminate(); // a socket that opened but could not join
      }
    }
    counters.reconnectFailures++;
    rec.resuming = false;
  }

  async function reconnectSender(s: Sender): Promise<void> {
    if (s.reconnecting) return;
    s.reconnecting = true;
    // Sends in flight on the old socket may or may not have been committed; their acks are lost.
    s.inFlight = 0;
    counters.reconnects++;
    try {
      for (let attempt = 0; attempt < 10 && phase === RUN; attempt++) {
        await sleep(100 * 2 ** Math.min(attempt, 5) * (0.5 + Math.random()));
        try {
          await s.client.connect();
          return;
        } catch {
          /* retry */
        }
      }
      counters.reconnectFailures++;
    } finally {
      s.reconnecting = false;
    }
  }

  // ---- connect --------------------------------------------------------------
  const totalSenders = plan.rooms * plan.sendersPerRoom;
  const totalReceivers = plan.rooms * plan.receiversPerRoom;
  let clientIndex = 0;
  type Spec = { kind: 'r' | 's'; room: Room; user: number; j: number };
  const specs: Spec[] = [];
  for (const room of rooms) {
    const members = pop.rooms[room.idx].members;
    for (let j = 0; j < plan.receiversPerRoom; j++) specs.push({ kind: 'r', room, user: members[j % members.length], j });
    for (let j = 0; j < plan.sendersPerRoom; j++) {
      specs.push({ kind: 's', room, user: members[(plan.receiversPerRoom + j) % members.length], j });
    }
  }
  // Interleave rooms so a slow start does not leave whole rooms empty.
  specs.sort((a, b) => a.j - b.j || a.room.idx - b.room.idx || (a.kind < b.kind ? -1 : 1));
  let msgpackCount = 0;
  const rssBefore = await probe.rss();
  log(`  connecting ${totalReceivers} receivers and ${totalSenders} senders...`);
  const setup = await openMany(
    specs,
    plan.connectConcurrency,
    async (spec) => {
      const idx = clientIndex++;
      const framing = usesMsgpack(idx, plan.msgpackRatio) ? 'msgpack' : 'json';
      if (framing === 'msgpack') msgpackCount++;
      const client = new BenchClient(idx, pop.wsUrl, pop.users[spec.user].accessToken, framing, events);
      await client.connect();
      if (spec.kind === 'r') {
        const lastSeq = await client.join(spec.room.id);
        const rec: Receiver = { client, room: spec.room, tracker: new SeqTracker(lastSeq), reconnects: 0, resuming: false };
        receivers.push(rec);
        byClient.set(client, rec);
        spec.room.receivers++;
      } else {
        const s: Sender = {
          client,
          room: spec.room,
          interval: Infinity,
          nextAt: Infinity,
          inFlight: 0,
          n: 0,
          prefix: `${idx.toString(36)}.`,
          reconnecting: false,
        };
        senders.push(s);
        senderOf.set(client, s);
      }
    },
    (done, failed) => log(`    ${done}/${specs.length} connected${failed ? `, ${failed} failed` : ''}`),
  );
  const rssConnected = await probe.rss();
  if (setup.failures.length) {
    log(`  ! ${setup.failures.length} sockets failed to connect/join, e.g. ${setup.failures[0].error}`);
  }
  const connectStats = summarize(setup.ms);
  log(
    `  ${receivers.length + senders.length} sockets ready in ${(setup.wallMs / 1000).toFixed(1)} s ` +
      `(connect+join p50 ${fmtMs(connectStats.p50)}, p99 ${fmtMs(connectStats.p99)})`,
  );
  if (!senders.length || !receivers.length) throw new Error('no senders or no receivers connected');

  // ---- steps ------------------------------------------------------------------
  phase = RUN;
  runStart = performance.now();
  // Slow consumers (PROTOCOL.md guarantee 2): these receivers stop reading from time to time.
  const slow = receivers.filter((_, i) => usesMsgpack(i, plan.slowRatio));
  let slowPaused = false;
  const tcp = (c: BenchClient) => (c.ws as unknown as { _socket?: { pause(): void; resume(): void } } | null)?._socket;
  const slowTimer =
    slow.length && plan.slowPauseMs > 0
      ? setInterval(() => {
          slowPaused = !slowPaused && current >= 0;
          for (const r of slow) (slowPaused ? tcp(r.client)?.pause() : tcp(r.client)?.resume());
        }, plan.slowPauseMs)
      : null;
  const timeline: Array<{ t: number; sent: number; acked: number; delivered: number; maxLatencyMs: number }> = [];
  let tlSent = 0;
  let tlAcked = 0;
  let tlDelivered = 0;
  const tlTimer = setInterval(() => {
    const sent = steps.reduce((a, s) => a + s.sent, 0);
    timeline.push({
      t: Math.round((performance.now() - runStart) / 100) / 10,
      sent: sent - tlSent,
      acked: counters.acks - tlAcked,
      delivered: counters.ownDeliveries - tlDelivered,
      maxLatencyMs: Math.round(windowMaxLatency * 10) / 10,
    });
    tlSent = sent;
    tlAcked = counters.acks;
    tlDelivered = counters.ownDeliveries;
    windowMaxLatency = 0;
  }, 1000);

  const anomalyTotals = () =>
    receivers.reduce(
      (a, r) => ({ gaps: a.gaps + r.tracker.gaps, duplicates: a.duplicates + r.tracker.duplicates, outOfOrder: a.outOfOrder + r.tracker.outOfOrder }),
      { gaps: 0, duplicates: 0, outOfOrder: 0 },
    );
  const expectedDeliveries = () => rooms.reduce((a, r) => a + r.acked.size * r.receivers, 0);
  /** Exact: every receiver holds every acknowledged message of its room (cheap: a few ranges each). */
  const allDelivered = () => receivers.every((r) => r.tracker.missing(r.room.acked) === 0);
  const answered = () => steps.reduce((a, s) => a + s.acked + s.rateLimited + s.sendErrors, 0);
  const totalSent = () => steps.reduce((a, s) => a + s.sent, 0);

  let anomaliesBefore = anomalyTotals();
  for (let si = 0; si < steps.length; si++) {
    const st = steps[si];
    const perSender = st.rate / senders.length;
    const t0 = performance.now();
    for (const s of senders) {
      s.interval = perSender > 0 ? 1000 / perSender : Infinity;
      s.nextAt = t0 + Math.random() * Math.min(s.interval, 1000);
    }
    log(`  step ${si + 1}/${steps.length}: ${fmtNum(st.rate)} msg/s for ${st.seconds} s (${senders.length} senders × ${fmtNum(perSender)} msg/s)`);
    const res = new ResourceWindow(probe);
    current = si;
    lastStep = si;
    const end = t0 + st.seconds * 1000;
    const pad = 'x'.repeat(Math.max(0, plan.contentBytes - tag.length - 24));
    while (performance.now() < end) {
      const now = performance.now();
      for (const s of senders) {
        if (s.nextAt > now) continue;
        // More than a second behind: the generator itself is overloaded; skip rather than burst.
        if (now - s.nextAt > 1000) {
          const missed = Math.floor((now - s.nextAt) / s.interval);
          st.generatorSkipped += missed;
          s.nextAt += missed * s.interval;
        }
        s.client.corked(() => {
          while (s.nextAt <= now) {
            s.nextAt += s.interval;
            if (s.client.closed) {
              st.disconnected++;
              continue;
            }
            if (s.inFlight >= plan.maxInFlight) {
              st.heldBack++;
              continue;
            }
            const ts = nowMs();
            const cmid = s.prefix + (s.n++).toString(36);
            if (!s.client.sendMessage(s.room.id, `${tag}|${si}|${ts.toFixed(3)}|${pad}`, cmid)) {
              st.disconnected++;
              continue;
            }
            pending.set(cmid, { sendTs: ts, step: si, sender: s });
            s.inFlight++;
            st.sent++;
          }
        });
      }
      await sleep(1);
    }
    current = -1;
    if (slowPaused) {
      slowPaused = false;
      for (const r of slow) tcp(r.client)?.resume();
    }
    st.windowMs = performance.now() - t0;
    st.resources = res.read();
    // Drain: until every send is answered and every receiver holds every acked message.
    const last = si === steps.length - 1;
    const d0 = performance.now();
    let progressAt = d0;
    let progress = counters.acks + counters.ownDeliveries;
    for (;;) {
      // The count is a cheap pre-check (it also counts stored-but-unacknowledged messages); the exact check decides.
      if (answered() >= totalSent() && counters.ownDeliveries >= expectedDeliveries() && allDelivered()) {
        st.drainComplete = true;
        break;
      }
      const p = counters.acks + counters.ownDeliveries;
      if (p !== progress) {
        progress = p;
        progressAt = performance.now();
      }
      if (performance.now() - progressAt > plan.drainSec * 1000) break;
      if (!last && performance.now() - d0 > plan.stepDrainCapSec * 1000) break;
      await sleep(50);
    }
    st.drainMs = performance.now() - d0;
    st.rssAfter = await probe.rss();
    const a = anomalyTotals();
    st.anomalies = {
      gaps: a.gaps - anomaliesBefore.gaps,
      duplicates: a.duplicates - anomaliesBefore.duplicates,
      outOfOrder: a.outOfOrder - anomaliesBefore.outOfOrder,
    };
    anomaliesBefore = a;
    log(
      `    sent ${fmtNum(st.sent)}, acked ${fmtNum(st.acked)}, delivered ${fmtNum(st.delivered)}; ` +
        `p99 ${fmtMs(st.latency.percentile(99))}; drain ${(st.drainMs / 1000).toFixed(1)} s${st.drainComplete ? '' : ' (incomplete)'}`,
    );
  }
  clearInterval(tlTimer);
  if (slowTimer) clearInterval(slowTimer);
  for (const r of slow) tcp(r.client)?.resume();

  // ---- verification -------------------------------------------------------------
  let missing = 0;
  let unacknowledged = 0;
  let beforeBaseline = 0;
  let receiversMissing = 0;
  const missingExamples: string[] = [];
  for (const r of receivers) {
    steps.forEach((st, si) => {
      const set = r.room.ackedByStep[si];
      if (set) st.missing += r.tracker.missing(set);
    });
    const m = r.tracker.missing(r.room.acked);
    missing += m;
    if (m) {
      receiversMissing++;
      if (missingExamples.length < 5) {
        missingExamples.push(
          `receiver ${r.client.index} room ${r.room.idx}: ${m} missing, e.g. seq ${r.tracker.seen.listMissing(r.room.acked, r.tracker.baseline, 5).join(', ')} (baseline ${r.tracker.baseline}, reconnects ${r.reconnects})`,
        );
      }
    }
    unacknowledged += r.tracker.unacknowledged(r.room.acked);
    beforeBaseline += r.tracker.beforeBaseline;
  }
  phase = 'stopping';
  const rssEnd = await probe.rss();
  for (const c of [...receivers.map((r) => r.client), ...senders.map((s) => s.client)]) c.close();
  await sleep(300);

  // ---- report ---------------------------------------------------------------------
  const totals = anomalyTotals();
  const allLatency = steps.reduce((h, s) => h.merge(s.latency), new Histogram());
  const allAck = steps.reduce((h, s) => h.merge(s.ackLatency), new Histogram());
  const rateLimited = steps.reduce((a, s) => a + s.rateLimited, 0);
  const sendErrors = steps.reduce((a, s) => a + s.sendErrors, 0);
  const heldBack = steps.reduce((a, s) => a + s.heldBack, 0);
  const disconnected = steps.reduce((a, s) => a + s.disconnected, 0);
  const skipped = steps.reduce((a, s) => a + s.generatorSkipped, 0);
  const sockets = receivers.length + senders.length;

  const headers = [
    'step', 'target/s', 'sent/s', 'acked/s', 'deliv/s', 'acked', 'delivered', 'p50', 'p95', 'p99', 'max',
    'gaps', 'dups', 'ooo', 'missing', 'rate-ltd', 'gen CPU', 'srv CPU', 'pg CPU',
  ];
  const row = (label: string, s: StepStats, missingCell: number): Cell[] => {
    const w = s.windowMs / 1000;
    const lat = s.latency.summary();
    return [
      label,
      fmtNum(s.rate),
      fmtNum(s.sent / w),
      fmtNum(s.ackedInWindow / w),
      fmtNum(s.deliveredInWindow / w),
      fmtPct(s.sent ? s.acked / s.sent : NaN),
      fmtPct(s.expected ? (s.expected - s.missing) / s.expected : NaN),
      fmtMs(lat.p50),
      fmtMs(lat.p95),
      fmtMs(lat.p99),
      fmtMs(lat.max),
      s.anomalies.gaps,
      s.anomalies.duplicates,
      s.anomalies.outOfOrder,
      missingCell,
      s.rateLimited,
      pct(s.resources?.genCpu ?? null),
      pct(s.resources?.serverCpu ?? null),
      pct(s.resources?.pgCpu ?? null),
    ];
  };
  const rows: Cell[][] = steps.map((s, i) => row(steps.length > 1 ? `${i + 1}` : 'run', s, s.missing));
  if (steps.length > 1) {
    const sum = (f: (s: StepStats) => number) => steps.reduce((a, s) => a + f(s), 0);
    const wall = sum((s) => s.windowMs) / 1000;
    const expected = sum((s) => s.expected);
    const delivered = expected - missing;
    rows.push([
      'all',
      '',
      fmtNum(sum((s) => s.sent) / wall),
      fmtNum(sum((s) => s.ackedInWindow) / wall),
      fmtNum(sum((s) => s.deliveredInWindow) / wall),
      fmtPct(sum((s) => s.acked) / Math.max(1, sum((s) => s.sent))),
      fmtPct(expected ? delivered / expected : NaN),
      fmtMs(allLatency.percentile(50)),
      fmtMs(allLatency.percentile(95)),
      fmtMs(allLatency.percentile(99)),
      fmtMs(allLatency.max),
      totals.gaps,
      totals.duplicates,
      totals.outOfOrder,
      missing,
      rateLimited,
      '',
      '',
      '',
    ]);
  }

  const warnings: string[] = [];
  if (rateLimited) {
    warnings.push(
      `${fmtNum(rateLimited)} sends were refused with rate_limited: the server's per-socket limit is below ` +
        `${fmtNum(Math.max(...steps.map((s) => s.rate)) / senders.length)} msg/s. Restart the server with ` +
        'WS_SEND_RATE=100000 WS_SEND_BURST=100000 (or give --per-socket-rate lower so more sender sockets are used).',
    );
  }
  if (missing) warnings.push(`${fmtNum(missing)} acknowledged deliveries never arrived (${receiversMissing} receivers): see anomalies`);
  if (totals.gaps || totals.duplicates || totals.outOfOrder) {
    warnings.push(`live stream anomalies: ${totals.gaps} gaps, ${totals.duplicates} duplicates, ${totals.outOfOrder} out of order`);
  }
  if (unacknowledged && sendErrors) {
    warnings.push(
      `${fmtNum(unacknowledged)} deliveries of messages nobody acknowledged: sends answered with an error (${fmtNum(sendErrors)}) ` +
        'were stored anyway; a client must retry with the same client_msg_id to learn their seq',
    );
  }
  if (counters.seqCollisions) warnings.push(`${counters.seqCollisions} seqs acked for two different messages`);
  if (pending.size - rateLimited - sendErrors > 0) {
    warnings.push(`${fmtNum(pending.size - rateLimited - sendErrors)} sends got neither an ack nor an error by the end of the drain`);
  }
  const genMax = Math.max(...steps.map((s) => s.resources?.genCpu ?? 0));
  if (genMax > 85) {
    warnings.push(
      `the load generator used ${Math.round(genMax)} % of a core: it is saturated, so rates and latencies are partly its own limit`,
    );
  }
  if (skipped) warnings.push(`the generator fell > 1 s behind its schedule and skipped ${fmtNum(skipped)} sends`);
  if (disconnected) warnings.push(`${fmtNum(disconnected)} scheduled sends skipped while their sender socket was reconnecting`);
  if (heldBack) warnings.push(`${fmtNum(heldBack)} sends held back: ${plan.maxInFlight} unacknowledged per sender socket (the server fell behind)`);

  const closes = [...counters.closes].map(([k, v]) => `${k}: ${v}`).join(', ');
  const errors = [...counters.otherErrors].map(([k, v]) => `${k}: ${v}`).join(', ');
  const loopP99 = Math.max(...steps.map((s) => s.resources?.loopDelayP99Ms ?? 0));
  const notes = [
    `${plan.rooms} room(s); ${receivers.length} receivers + ${senders.length} senders = ${sockets} sockets (${msgpackCount} msgpack); ` +
      `${pop.users.length} users (${pop.source}); content ${plan.contentBytes} B` +
      (slow.length ? `; ${slow.length} slow receivers (stop reading ${plan.slowPauseMs} ms of every ${2 * plan.slowPauseMs} ms)` : ''),
    `connect + join: ${sockets} sockets in ${(setup.wallMs / 1000).toFixed(1)} s (${fmtNum(sockets / (setup.wallMs / 1000))} sockets/s, ` +
      `${plan.connectConcurrency} in flight), per socket p50 ${fmtMs(connectStats.p50)} p99 ${fmtMs(connectStats.p99)} max ${fmtMs(connectStats.max)}` +
      (setup.failures.length ? `, ${setup.failures.length} failed` : ''),
    `server RSS: ${rssBefore === null ? 'n/a' : fmtBytes(rssBefore)} before, ${rssConnected === null ? 'n/a' : fmtBytes(rssConnected)} connected, ` +
      `${rssEnd === null ? 'n/a' : fmtBytes(rssEnd)} at the end; ` +
      `${rssBefore === null || rssConnected === null ? '' : sockets < 1000 ? 'per socket: n/a below 1,000 sockets (noise)' : `${fmtBytes(((rssConnected - rssBefore) / sockets) * 1000)} per 1,000 sockets (connect)`} [${probe.method}]`,
    `send → ack latency: p50 ${fmtMs(allAck.percentile(50))}, p99 ${fmtMs(allAck.percentile(99))}, max ${fmtMs(allAck.max)}`,
    `generator event-loop delay p99 up to ${fmtMs(loopP99)} (adds to measured latency); CPU columns are % of one core over each step's send window`,
    `reconnects: ${counters.reconnects}${counters.reconnectFailures ? ` (${counters.reconnectFailures} failed)` : ''}; closes: ${closes || 'none'}; error frames: ${errors || 'none'}${rateLimited ? `; rate_limited: ${rateLimited}` : ''}`,
    `unacknowledged deliveries: ${unacknowledged}; acks for unknown sends: ${counters.unknownAcks}; before-baseline deliveries: ${beforeBaseline}; messages of other clients: ${counters.foreignMessages}`,
    `slowest deliveries: ${worst.map((w) => `${fmtMs(w.ms)} (room ${w.room}, seq ${w.seq}, t=${w.atSec.toFixed(1)} s)`).join('; ') || '-'}`,
  ];
  if (anomalyLog.length) notes.push(`first anomalies: ${anomalyLog.slice(0, 5).join('; ')}`);
  if (missingExamples.length) notes.push(`missing: ${missingExamples.join('; ')}`);
  if (steps.length > 1) {
    notes.push(`drain after each step: ${steps.map((s) => `${(s.drainMs / 1000).toFixed(1)} s${s.drainComplete ? '' : '*'}`).join(', ')} (* = gave up)`);
  }

  const ok = missing === 0 && totals.gaps === 0 && totals.duplicates === 0 && totals.outOfOrder === 0 && counters.seqCollisions === 0;
  const stepData = steps.map((s) => ({
    rate: s.rate,
    seconds: s.seconds,
    windowMs: Math.round(s.windowMs),
    sent: s.sent,
    sentPerSec: s.sent / (s.windowMs / 1000),
    ackedPerSec: s.ackedInWindow / (s.windowMs / 1000),
    deliveriesPerSec: s.deliveredInWindow / (s.windowMs / 1000),
    acked: s.acked,
    delivered: s.delivered,
    expected: s.expected,
    ackedRatio: s.sent ? s.acked / s.sent : null,
    missing: s.missing,
    deliveredRatio: s.expected ? (s.expected - s.missing) / s.expected : null,
    latencyMs: s.latency.summary(),
    ackLatencyMs: s.ackLatency.summary(),
    anomalies: s.anomalies,
    rateLimited: s.rateLimited,
    sendErrors: s.sendErrors,
    heldBack: s.heldBack,
    disconnected: s.disconnected,
    generatorSkipped: s.generatorSkipped,
    drainMs: Math.round(s.drainMs),
    drainComplete: s.drainComplete,
    resources: s.resources,
    serverRssAfter: s.rssAfter,
  }));
  return {
    ok,
    warnings,
    notes,
    tables: [{ title: `${plan.scenario}: per step`, headers, rows }],
    data: {
      plan: {
        rooms: plan.rooms,
        sendersPerRoom: plan.sendersPerRoom,
        receiversPerRoom: plan.receiversPerRoom,
        steps: plan.steps,
        drainSec: plan.drainSec,
        contentBytes: plan.contentBytes,
        msgpackRatio: plan.msgpackRatio,
        maxInFlight: plan.maxInFlight,
        slowReceivers: slow.length,
        slowPauseMs: plan.slowPauseMs,
      },
      sockets: { receivers: receivers.length, senders: senders.length, msgpack: msgpackCount, failed: setup.failures.length },
      users: { count: pop.users.length, source: pop.source },
      connect: { wallMs: Math.round(setup.wallMs), perSocketMs: connectStats as Summary, socketsPerSec: sockets / (setup.wallMs / 1000) },
      serverRss: {
        method: probe.method,
        pids: probe.pids,
        before: rssBefore,
        connected: rssConnected,
        end: rssEnd,
        per1000Sockets: rssBefore !== null && rssConnected !== null ? ((rssConnected - rssBefore) / sockets) * 1000 : null,
      },
      steps: stepData,
      totals: {
        latencyMs: allLatency.summary(),
        ackLatencyMs: allAck.summary(),
        ...totals,
        missing,
        receiversMissing,
        unacknowledged,
        beforeBaseline,
        seqCollisions: counters.seqCollisions,
        duplicateAcks: counters.duplicateAcks,
        unknownAcks: counters.unknownAcks,
        unanswered: pending.size,
        rateLimited,
        sendErrors,
        reconnects: counters.reconnects,
        closes: Object.fromEntries(counters.closes),
        errors: Object.fromEntries(counters.otherErrors),
      },
      anomalies: anomalyLog,
      missingExamples,
      slowest: worst,
      timeline,
    },
  };
}
