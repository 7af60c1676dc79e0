import { Args } from './lib/args.js';
import { machineLine } from './lib/machine.js';
import { saveResult, type ResultTable } from './lib/results.js';
import { fmtNum, formatTable } from './lib/table.js';
import { benchDatabase } from './micro/db.js';
import { benchEncode } from './micro/encode.js';
import { log } from './micro/harness.js';
import { benchFanout, benchNotifyLatency, FANOUT_SHARD_FLAG, runFanoutShard } from './micro/latency.js';
import { benchPostMessages, benchWriter, TARGET_HOT, TARGET_SPREAD } from './micro/write.js';

const USAGE = `pgchat micro-benchmarks (no running server needed).

  npm run bench:micro -- [--only encode,post,writer,notify,fanout] [--seconds S] [--full]

  encode  (a) encodeMessages JSON vs msgpack, batches of 1/10/100: frames/s, msgs/s, bytes
  post    (b1) postMessages batches 1/10/100/500, 1 room vs 100 rooms, inline NOTIFY vs doorbell
  writer  (b2) group-commit writer under 1..1000 concurrent posters, 1 and 2 writers
  notify  (c) commit → LISTEN → hub → uWS → client latency, one message at a time
  fanout  (d) one message to 100 / 1,000 / 5,000 ws sockets in one room

Database: a fresh database "pgchat_bench" on the embedded PostgreSQL (.data, port
EMBEDDED_PG_PORT or 54329; started if not running, reused if it is), or on the
server of BENCH_DATABASE_URL (an admin URL). Options:
  --seconds S       time per write case (default 2; --full 5)
  --rounds N        messages per latency case (default 200; --full 1000)
  --fanout a,b,c    fan-out sizes (default 100,1000,5000)
  --encode-ms MS    time per encode case (default 300)
  --gap-ms MS       pause between latency rounds (default 30: above BATCH_WINDOW_MS)
  --fanout-procs N  client processes for the fan-out (default 1 below 1,000 sockets, else 2)`;

async function main(): Promise<number> {
  if (process.argv.includes(FANOUT_SHARD_FLAG)) {
    runFanoutShard();
    return -1;
  }
  const args = new Args(process.argv.slice(2));
  if (args.bool('help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const full = args.bool('full');
  const only = new Set(args.str('only', 'encode,post,writer,notify,fanout').split(','));
  const seconds = args.num('seconds', full ? 5 : 2);
  const rounds = args.num('rounds', full ? 1000 : 200);
  const fanoutSizes = args.list('fanout', [100, 1000, 5000]);
  const encodeMs = args.num('encode-ms', 300);
  const gapMs = args.num('gap-ms', 30);
  const fanoutProcs = args.has('fanout-procs') ? args.num('fanout-procs', 1) : undefined;
  const pgPort = args.num('pg-port', Number(process.env.EMBEDDED_PG_PORT || 54329));
  const unknown = args.unknown();
  if (unknown.length) throw new Error(`unknown option(s): ${unknown.map((k) => `--${k}`).join(', ')}\n\n${USAGE}`);

  const startedAt = new Date();
  log(`pgchat micro-benchmarks  (${machineLine()})`);
  const tables: ResultTable[] = [];
  const notes: string[] = [];
  const data: Record<string, unknown> = { seconds, rounds, fanoutSizes };
  const show = (t: ResultTable) => {
    tables.push(t);
    process.stdout.write(`\n${formatTable(t.headers, t.rows, t.title)}\n`);
  };

  if (only.has('encode')) {
    log('\n(a) frame encoding...');
    show(benchEncode(encodeMs));
  }
  const needDb = ['post', 'writer', 'notify', 'fanout'].some((k) => only.has(k));
  if (needDb) {
    log('\npreparing database pgchat_bench...');
    const db = await benchDatabase({ users: 100, rooms: 100, port: pgPort, log: (m) => log(`  ${m}`) });
    try {
      if (only.has('post')) {
        log('\n(b1) postMessages...');
        show(await benchPostMessages(db, seconds, [1, 10, 100, 500]));
      }
      if (only.has('writer')) {
        log('\n(b2) group-commit writer...');
        const w = await benchWriter(db, seconds, [
          { writers: 1, posters: 1 },
          { writers: 1, posters: 100 },
          { writers: 1, posters: 1000 },
          { writers: 2, posters: 1000 },
        ]);
        show(w.table);
        const verdict = (got: number, target: number) => `${fmtNum(got)} msg/s (target ${fmtNum(target)}: ${got >= target ? 'met' : 'NOT met'})`;
        const line = `write-path targets: 100 rooms ${verdict(w.best.spread, TARGET_SPREAD)}; one room ${verdict(w.best.hot, TARGET_HOT)} — best writer case each`;
        notes.push(line);
        data.writerBest = w.best;
      }
      if (only.has('notify')) {
        log('\n(c) NOTIFY → client latency...');
        show(await benchNotifyLatency(db, rounds, gapMs));
      }
      if (only.has('fanout')) {
        log('\n(d) fan-out...');
        show(await benchFanout(db, fanoutSizes, Math.max(20, Math.round(rounds / 5)), (n) => fanoutProcs ?? (n >= 1000 ? 2 : 1)));
      }
    } finally {
      await db.stop();
    }
    notes.push('database: pgchat_bench on the embedded PostgreSQL 18 (fsync=on, shared_buffers=256MB), same machine; the bench process and PostgreSQL share the 2 cores');
  }
  notes.push(machineLine());
  process.stdout.write(`\n  ${notes.join('\n  ')}\n`);
  const file = saveResult({ kind: 'micro', scenario: `micro${full ? '-full' : ''}`, startedAt, tables, notes, data });
  process.stdout.write(`  saved ${file}\n`);
  return 0;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    process.stderr.write(`bench:micro: ${(err as Error).stack ?? err}\n`);
    process.exit(2);
  },
);
