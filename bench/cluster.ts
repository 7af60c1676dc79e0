// Cluster benchmark: throughput and latency through Nginx with N app hosts, on the real
// multi-host harness (test/cluster/harness.ts: network namespaces, PostgreSQL host, app hosts
// with WORKERS workers each, Nginx). Needs root and nginx, like the cluster tests.
//
//   npm run bench:cluster -- [--hosts 3,1] [--workers 2] [--rooms 6] [--senders 3] [--receivers 6]
//                            [--rate 300] [--duration 15] [--in-flight 4]
//
// For every host count: (1) "fixed rate": every sender sends at an even pace so that the
// total offered rate is --rate msg/s, which measures latency at a known load; (2) "max":
// every sender keeps --in-flight sends outstanding (closed loop), which measures throughput.
// Latencies: ack = send → message_ack at the sender; delivery = send → new_message at each
// receiver (one clock: all clients live in this process). Every run ends with the same
// read-back check as the fault tests (no gap, no duplicate, nothing acked missing).
//
// Prints a table and writes bench/results/cluster-<date>.json.
// Caveat: all hosts share this machine's cores, so more hosts add processes, not CPU; the
// numbers show the cost of the extra hop and fan-out across hosts, not a scale-out gain.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Cluster, clusterUnsupportedReason, REPO_ROOT } from '../test/cluster/harness.js';
import { ChatClient, Fleet, percentile, sleep, waitUntil, type FleetReport } from '../test/cluster/clients.js';

interface Options { hosts: number[]; workers: number; rooms: number; senders: number; receivers: number; rate: number; duration: number; inFlight: number }

function parseArgs(argv: string[]): Options {
  const get = (name: string, def: string) => {
    const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    if (i < 0) return process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? def;
    return argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1];
  };
  return {
    hosts: get('hosts', '3,1').split(',').map(Number),
    workers: Number(get('workers', '2')),
    rooms: Number(get('rooms', '6')),
    senders: Number(get('senders', '3')),
    receivers: Number(get('receivers', '6')),
    rate: Number(get('rate', '300')),
    duration: Number(get('duration', '15')),
    inFlight: Number(get('in-flight', '4')),
  };
}

interface PhaseResult {
  hosts: number; workersTotal: number; phase: 'fixed-rate' | 'max'; offeredPerSec: number | null; seconds: number;
  ackedPerSec: number; deliveredPerSec: number; ackP50: number; ackP99: number; deliveryP50: number; deliveryP99: number;
  errors: number; timeouts: number;
}

async function runPhase(fleet: Fleet, senders: ChatClient[], o: Options, phase: PhaseResult['phase'], hosts: number): Promise<PhaseResult> {
  const ledger = fleet.ledger;
  ledger.ackLatencies.length = 0;
  ledger.deliveryLatencies.length = 0;
  const before = fleet.totals();
  const ackedBefore = before.acked;
  let running = true;
  const t0 = Date.now();
  const loops: Promise<void>[] = [];
  const roomOf = (c: ChatClient) => fleet.roomOf.get(c)!;
  if (phase === 'fixed-rate') {
    const perSender = o.rate / senders.length;
    const interval = 1000 / perSender;
    for (const c of senders) {
      loops.push((async () => {
        let next = Date.now() + Math.random() * interval;
        const inflight = new Set<Promise<unknown>>();
        while (running) {
          const wait = next - Date.now();
          if (wait > 0) await sleep(wait);
          next += interval;
          const p = c.send(roomOf(c), `bench ${randomUUID()}`);
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
        }
        await Promise.all(inflight);
      })());
    }
  } else {
    for (const c of senders) {
      for (let k = 0; k < o.inFlight; k++) {
        loops.push((async () => {
          while (running) await c.send(roomOf(c), `bench ${randomUUID()}`);
        })());
      }
    }
  }
  await sleep(o.duration * 1000);
  running = false;
  await Promise.all(loops);
  const seconds = (Date.now() - t0) / 1000;
  // Let deliveries of the last sends arrive before counting them.
  await waitUntil(() => false, 1000);
  const after = fleet.totals();
  return {
    hosts, workersTotal: hosts * o.workers, phase, offeredPerSec: phase === 'fixed-rate' ? o.rate : null, seconds: Number(seconds.toFixed(1)),
    ackedPerSec: Math.round((after.acked - ackedBefore) / seconds),
    deliveredPerSec: Math.round((after.delivered - before.delivered) / seconds),
    ackP50: percentile(ledger.ackLatencies, 50), ackP99: percentile(ledger.ackLatencies, 99),
    deliveryP50: percentile(ledger.deliveryLatencies, 50), deliveryP99: percentile(ledger.deliveryLatencies, 99),
    errors: after.errors - before.errors, timeouts: after.timeouts - before.timeouts,
  };
}

async function benchHosts(hosts: number, o: Options): Promise<{ phases: PhaseResult[]; check: FleetReport }> {
  const cluster = await Cluster.start({
    hosts,
    workersPerHost: o.workers,
    // The per-socket send limits protect production; the bench measures the server behind them.
    env: { WS_SEND_RATE: '100000', WS_SEND_BURST: '100000', LOG_LEVEL: 'warn' },
  });
  const fleet = new Fleet({ baseUrl: cluster.nginxUrl, wsUrl: cluster.wsUrl, rooms: o.rooms, clientsPerRoom: o.senders + o.receivers, sendIntervalMs: 0, tag: `bench-${cluster.id}`, sendTimeoutMs: 30_000 });
  try {
    await fleet.setup();
    const senders: ChatClient[] = [];
    for (const room of fleet.roomIds) senders.push(...fleet.clients.filter((c) => fleet.roomOf.get(c) === room).slice(0, o.senders));
    process.stderr.write(`${hosts} host(s): ${fleet.clients.length} sockets in ${fleet.roomIds.length} rooms, ${senders.length} senders\n`);
    // Warm-up: JIT, pools, connections.
    await runPhase(fleet, senders, { ...o, duration: 3, rate: Math.min(o.rate, 100) }, 'fixed-rate', hosts);
    const phases = [
      await runPhase(fleet, senders, o, 'fixed-rate', hosts),
      await runPhase(fleet, senders, o, 'max', hosts),
    ];
    await fleet.waitConverged(60_000);
    const check = await fleet.verify();
    return { phases, check };
  } finally {
    await fleet.stop().catch(() => {});
    await cluster.stop();
  }
}

function table(rows: PhaseResult[]): string {
  const head = ['hosts', 'workers', 'phase', 'offered/s', 'acked/s', 'delivered/s', 'ack p50', 'ack p99', 'deliv p50', 'deliv p99', 'errors'];
  const body = rows.map((r) => [String(r.hosts), String(r.workersTotal), r.phase, r.offeredPerSec === null ? '-' : String(r.offeredPerSec), String(r.ackedPerSec), String(r.deliveredPerSec),
    `${r.ackP50} ms`, `${r.ackP99} ms`, `${r.deliveryP50} ms`, `${r.deliveryP99} ms`, String(r.errors + r.timeouts)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  const why = clusterUnsupportedReason();
  if (why) {
    process.stderr.write(`bench:cluster cannot run here: ${why}\n`);
    return 2;
  }
  const o = parseArgs(process.argv.slice(2));
  const rows: PhaseResult[] = [];
  const checks: Record<string, Omit<FleetReport, never>> = {};
  let failed = false;
  for (const h of o.hosts) {
    const { phases, check } = await benchHosts(h, o);
    rows.push(...phases);
    checks[`${h}`] = check;
    const bad = check.gaps || check.duplicates || check.ackedMissing.length || check.receiverMismatches.length || check.dbDuplicateCmids.length;
    if (bad) {
      failed = true;
      process.stderr.write(`${h} host(s): correctness check FAILED: gaps ${check.gaps} duplicates ${check.duplicates} ackedMissing ${check.ackedMissing.length} mismatches ${check.receiverMismatches.slice(0, 3).join('; ')}\n`);
    }
  }
  const machine = `${os.cpus().length} CPU ${os.cpus()[0]?.model ?? ''}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, ${os.release()}`;
  const out = table(rows);
  process.stdout.write(`\npgchat cluster bench through Nginx (${machine})\n` +
    `${o.rooms} rooms × (${o.senders} senders + ${o.receivers} receivers), ${o.workers} workers/host, fixed rate ${o.rate} msg/s, max = ${o.inFlight} in flight per sender, ${o.duration} s per phase\n\n${out}\n` +
    'All hosts share this machine\'s CPUs: compare the cost of the hop and cross-host fan-out, not scale-out.\n');
  const dir = join(REPO_ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `cluster-${new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z')}.json`);
  const slim = Object.fromEntries(Object.entries(checks).map(([k, c]) => [k, { ...c, ackedMissing: c.ackedMissing.length, ackSeqMismatch: c.ackSeqMismatch.length, dbDuplicateCmids: c.dbDuplicateCmids.length, receiverMismatches: c.receiverMismatches.slice(0, 5) }]));
  writeFileSync(file, JSON.stringify({ scenario: 'cluster', at: new Date().toISOString(), machine, options: o, results: rows, checks: slim }, null, 2) + '\n');
  process.stdout.write(`\nwrote ${file}\n`);
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
