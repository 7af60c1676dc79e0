import { Args } from './lib/args.js';
import { normalizeBaseUrl, preparePopulation, readFixture, sleep, type Population } from './lib/api.js';
import { BenchClient } from './lib/client.js';
import { machineLine } from './lib/machine.js';
import { saveResult } from './lib/results.js';
import { formatTable } from './lib/table.js';
import { probeServer, type CommonOptions, type Log } from './scenarios/common.js';
import { runIdle, runIdleShard, SHARD_FLAG } from './scenarios/idle.js';
import { runTraffic } from './scenarios/traffic.js';

const USAGE = `pgchat load generator: drives WebSocket clients (the ws package) against a running server.

  npm run bench -- [--scenario seed|hot-room|many-rooms|idle-sockets|all] [--full] [options]

Start the server first, e.g. (high limits are needed by hot-room and by registering users):
  WORKERS=2 PORT=3100 WS_SEND_RATE=100000 WS_SEND_BURST=100000 AUTH_RATE_LIMIT_PER_MIN=1000000 node dist/src/main.js
  npm run bench -- --base-url http://127.0.0.1:3100

Scenarios (defaults are laptop-sized; --full uses the sizes of issue #3):
  seed          1 room, S senders × R msg/s, N receivers      default 10 × 5/s, 50, 15 s   full 40 × 5/s, 200, 60 s
  hot-room      1 room, N receivers, total rate in steps     default 10, 500,1000,2000 × 5 s   full 20, 2k,5k,10k,20k × 10 s
  many-rooms    R rooms, S senders × 10 msg/s, N receivers   default 20, 40, 200, 15 s      full 100, 200, 2,800, 60 s
  idle-sockets  N sockets in R rooms, connect rate + RSS     default 2,000 in 100          full 20,000 in 100

Common options (flag, or the environment variable in caps):
  --base-url URL          server (BASE_URL; default: loadtest/fixture.json's baseUrl, else http://localhost:3000)
  --fixture auto|yes|no   use loadtest/fixture.json when it fits the scenario (default auto)
  --msgpack-ratio X       fraction of clients speaking msgpack (default 0)
  --connect-concurrency N handshakes in flight (default 100)
  --max-users N           distinct users registered per scenario; sockets share them beyond (default 300)
  --content-bytes N       message content size (default 64)
  --drain S               a drain ends after S s without progress (default 10)
  --max-in-flight N       unacknowledged sends per sender socket before holding back (default 1000)
  --slow-ratio X          fraction of receivers that stop reading now and then (slow consumers; default 0)
  --slow-pause-ms MS      how long a slow receiver stops reading, then reads as long (default 3000)
  --server-pids a,b       worker pids for RSS/CPU (default: found by the listening port via /proc)
  --pg-port N             PostgreSQL port, for its CPU (default 54329)
Scenario options (also as --<scenario>-<option>, e.g. --seed-duration 30):
  --duration S  --senders N  --receivers N  --rate R (msg/s per sender)  --rooms N
  hot-room: --steps 2000,5000,...  --step-seconds S  --per-socket-rate R (sender sockets = top step / R; default 250)
  idle-sockets: --sockets N  --settle S  --per-process N (sockets per generator process)  --local-addresses K

Results: a table on stdout, bench/results/<scenario>-<time>.json, and a section appended to bench/results/latest.md.
Exit code 1 when a correctness check failed (gaps, duplicates, out-of-order, missing acknowledged messages).`;

const SCENARIOS = ['seed', 'hot-room', 'many-rooms', 'idle-sockets'] as const;
type Scenario = (typeof SCENARIOS)[number];

const log: Log = (msg) => process.stderr.write(`${msg}\n`);

async function main(): Promise<number> {
  if (process.argv.includes(SHARD_FLAG)) {
    runIdleShard();
    return -1;
  }
  const args = new Args(process.argv.slice(2));
  if (args.bool('help') || args.positional.includes('help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const which = args.str('scenario', args.positional[0] ?? 'all');
  const selected: Scenario[] = which === 'all' ? [...SCENARIOS] : (which.split(',') as Scenario[]);
  for (const s of selected) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; one of ${SCENARIOS.join(', ')}, all`);
  const full = args.bool('full');

  const explicitBase = args.optStr('base-url', 'BASE_URL');
  const fixtureMode = args.str('fixture', 'auto') as 'auto' | 'yes' | 'no';
  const fixture = fixtureMode !== 'no' ? readFixture() : null;
  const baseUrl = normalizeBaseUrl(explicitBase ?? fixture?.baseUrl ?? 'http://localhost:3000');
  const serverPids = args.optStr('server-pids')?.split(',').map(Number).filter(Boolean) ?? [];
  const pgPort = args.num('pg-port', 54329);
  const maxUsers = args.num('max-users', 300);
  const common = {
    msgpackRatio: args.num('msgpack-ratio', 0),
    connectConcurrency: args.num('connect-concurrency', 100),
    full,
  };
  const contentBytes = args.num('content-bytes', 64);
  const drainSec = args.num('drain', 10);
  const maxInFlight = args.num('max-in-flight', 1000);
  const slowRatio = args.num('slow-ratio', 0);
  const slowPauseMs = args.num('slow-pause-ms', 3000);

  /** A scenario option: --<scenario>-<name>, then --<name>, then the default (full or not). */
  const opt = (scenario: string, name: string, def: number, fullDef: number) => {
    const generic = args.num(name, full ? fullDef : def);
    return args.num(`${scenario}-${name}`, generic);
  };
  const optList = (scenario: string, name: string, def: number[], fullDef: number[]) =>
    args.list(`${scenario}-${name}`, args.list(name, full ? fullDef : def));

  // Read every option up front so typos are reported before minutes of setup.
  const plans = selected.map((scenario) => {
    switch (scenario) {
      case 'seed': {
        const senders = opt('seed', 'senders', 10, 40);
        return {
          scenario,
          rooms: 1,
          sendersPerRoom: senders,
          receiversPerRoom: opt('seed', 'receivers', 50, 200),
          steps: [{ rate: senders * opt('seed', 'rate', 5, 5), seconds: opt('seed', 'duration', 15, 60) }],
        };
      }
      case 'hot-room': {
        const steps = optList('hot-room', 'steps', [500, 1000, 2000], [2000, 5000, 10000, 20000]);
        const seconds = opt('hot-room', 'step-seconds', 5, 10);
        const perSocket = opt('hot-room', 'per-socket-rate', 250, 250);
        return {
          scenario,
          rooms: 1,
          sendersPerRoom: opt('hot-room', 'senders', Math.ceil(Math.max(...steps) / perSocket), Math.ceil(Math.max(...steps) / perSocket)),
          receiversPerRoom: opt('hot-room', 'receivers', 10, 20),
          steps: steps.map((rate) => ({ rate, seconds })),
        };
      }
      case 'many-rooms': {
        const rooms = opt('many-rooms', 'rooms', 20, 100);
        const senders = opt('many-rooms', 'senders', 40, 200);
        const receivers = opt('many-rooms', 'receivers', 200, 2800);
        const sendersPerRoom = Math.max(1, Math.round(senders / rooms));
        return {
          scenario,
          rooms,
          sendersPerRoom,
          receiversPerRoom: Math.max(1, Math.round(receivers / rooms)),
          steps: [{ rate: sendersPerRoom * rooms * opt('many-rooms', 'rate', 10, 10), seconds: opt('many-rooms', 'duration', 15, 60) }],
        };
      }
      case 'idle-sockets':
        return {
          scenario,
          rooms: opt('idle-sockets', 'rooms', 100, 100),
          sockets: opt('idle-sockets', 'sockets', 2000, 20000),
          settleSec: opt('idle-sockets', 'settle', 5, 10),
          perProcess: opt('idle-sockets', 'per-process', 10000, 10000),
          localAddresses: opt('idle-sockets', 'local-addresses', 1, 1),
        };
    }
  });
  const unknown = args.unknown().filter((k) => !['help'].includes(k));
  if (unknown.length) throw new Error(`unknown option(s): ${unknown.map((k) => `--${k}`).join(', ')}\n\n${USAGE}`);

  log(`pgchat bench → ${baseUrl}  (${machineLine()})`);
  log('  note: the load generator runs on the same machine as the server and competes with it for CPU; its CPU is reported.');
  let failed = false;
  for (const plan of plans) {
    const startedAt = new Date();
    log(`\n== ${plan.scenario}${full ? ' (full)' : ''} ==`);
    const sockets = 'sockets' in plan && plan.sockets !== undefined ? plan.sockets : plan.rooms * ((plan.sendersPerRoom ?? 0) + (plan.receiversPerRoom ?? 0));
    const socketsPerRoom = Math.ceil(sockets / plan.rooms);
    const pop = await preparePopulation({
      baseUrl,
      rooms: plan.rooms,
      usersPerRoom: Math.max(1, Math.min(socketsPerRoom, Math.floor(maxUsers / plan.rooms))),
      poolSize: maxUsers,
      fixture: fixtureMode,
      baseUrlExplicit: explicitBase !== undefined,
      minTokenSec: 300,
      log,
    });
    const probe = await probeServer(pop.baseUrl, serverPids, pgPort, log);
    const base: CommonOptions = { ...common, pop, probe, log };
    let outcome;
    if (plan.scenario === 'idle-sockets') {
      const p = plan as Extract<(typeof plans)[number], { sockets: number }>;
      outcome = await runIdle({ ...base, sockets: p.sockets, rooms: p.rooms, settleSec: p.settleSec, perProcess: p.perProcess, localAddresses: p.localAddresses });
    } else {
      const p = plan as Exclude<(typeof plans)[number], { sockets: number }>;
      if (p.scenario === 'hot-room') {
        const perSocket = Math.max(...p.steps.map((s) => s.rate)) / p.sendersPerRoom;
        log(
          `  hot-room sends up to ${Math.ceil(perSocket)} msg/s per sender socket (${p.sendersPerRoom} sockets). The server must be started\n` +
            '  with high per-socket limits, e.g. WS_SEND_RATE=100000 WS_SEND_BURST=100000 (defaults: 50/s, burst 200).',
        );
        if (!(await preflightSendLimit(pop, Math.ceil(perSocket)))) {
          // A server configuration this scenario cannot use is not a correctness failure: skip it.
          log('  ! the server answered rate_limited to a 1-second burst: restart it with WS_SEND_RATE=100000 WS_SEND_BURST=100000; skipping hot-room');
          continue;
        }
      }
      outcome = await runTraffic({
        ...base,
        scenario: p.scenario,
        rooms: p.rooms,
        sendersPerRoom: p.sendersPerRoom,
        receiversPerRoom: p.receiversPerRoom,
        steps: p.steps,
        drainSec,
        stepDrainCapSec: 30,
        contentBytes,
        maxInFlight,
        slowRatio,
        slowPauseMs,
      });
    }
    const out: string[] = [''];
    for (const t of outcome.tables) out.push(formatTable(t.headers, t.rows, `${t.title}${full ? ' (full)' : ''}`), '');
    for (const n of outcome.notes) out.push(`  ${n}`);
    for (const w of outcome.warnings) out.push(`  ! ${w}`);
    out.push(`  correctness: ${outcome.ok ? 'OK' : 'FAILED'}`, `  ${machineLine()}`);
    const file = saveResult({
      kind: 'load',
      scenario: plan.scenario + (full ? '-full' : ''),
      startedAt,
      tables: outcome.tables,
      notes: [...outcome.notes, ...outcome.warnings.map((w) => `**${w}**`), `correctness: ${outcome.ok ? 'OK' : 'FAILED'}`],
      data: { baseUrl: pop.baseUrl, full, ...((outcome.data as object) ?? {}) },
    });
    out.push(`  saved ${file}`);
    process.stdout.write(`${out.join('\n')}\n`);
    if (!outcome.ok) failed = true;
    await sleep(1000);
  }
  return failed ? 1 : 0;
}

/** Sends a 1-second burst from one socket; false if the server rate-limits it. */
async function preflightSendLimit(pop: Population, burst: number): Promise<boolean> {
  const room = pop.rooms[0];
  let limited = 0;
  let acked = 0;
  const c = new BenchClient(0, pop.wsUrl, pop.users[room.members[0]].accessToken, 'json', {
    ack: () => void acked++,
    error: (_c, e) => {
      if (e.code === 'rate_limited') limited++;
    },
  });
  await c.connect();
  const n = Math.min(Math.max(burst, 50), 2000);
  c.corked(() => {
    for (let i = 0; i < n; i++) c.sendMessage(room.id, `preflight|${i}`, `preflight-${Date.now().toString(36)}-${i}`);
  });
  const deadline = performance.now() + 15_000;
  while (acked + limited < n && performance.now() < deadline) await sleep(20);
  c.close();
  return limited === 0;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
    process.exit(2);
  },
);
