import { existsSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { metricsRss, pidsListeningOn, totalRss, cpuMs, treeCpuMs } from '../lib/proc.js';
import type { Population } from '../lib/api.js';
import { CpuMeter } from '../lib/machine.js';

export type Log = (msg: string) => void;

/** Epoch milliseconds with sub-ms precision (one clock for send and receive: same process). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** How the bench sees the server it drives: pids (for RSS and CPU) or, failing that, /metrics. */
export interface ServerProbe {
  baseUrl: string;
  pids: number[];
  pgPid: number | null;
  method: string;
  rss(): Promise<number | null>;
  /** CPU ms used so far by the server workers and by PostgreSQL (null when not on this machine). */
  cpu(): { server: number | null; pg: number | null };
  /** Bumped when the worker pids changed (a worker restarted): CPU deltas across it are meaningless. */
  readonly generation: number;
}

export async function probeServer(baseUrl: string, givenPids: number[], pgPort: number, log: Log): Promise<ServerProbe> {
  const url = new URL(baseUrl);
  const local = ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(url.hostname);
  let pids = givenPids;
  let method = '';
  if (!pids.length && local) {
    pids = pidsListeningOn(Number(url.port || (url.protocol === 'https:' ? 443 : 80)));
    if (pids.length) method = `/proc: ${pids.length} worker process(es) listening on port ${url.port} (pids ${pids.join(', ')}), VmRSS summed`;
  } else if (pids.length) method = `/proc: --server-pids ${pids.join(', ')}, VmRSS summed`;
  const pgPids = local ? pidsListeningOn(pgPort) : [];
  const pgPid = pgPids.length ? pgPids[0] : null;
  if (!pids.length) {
    method = 'GET /metrics pgchat_process_resident_memory_bytes (all workers if the primary aggregates, else one worker; server not on this machine or pids not readable)';
    log(`  server pids not found; RSS via ${method}`);
  }
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const found = !givenPids.length && pids.length > 0;
  let generation = 0;
  /** Workers that exited (rolling restart, crash) are replaced by the ones now listening. */
  const refresh = () => {
    if (!found || pids.every((pid) => existsSync(`/proc/${pid}`))) return;
    pids = pidsListeningOn(port);
    probe.pids = pids;
    generation++;
  };
  const probe = {
    baseUrl,
    pids,
    pgPid,
    method,
    get generation() {
      return generation;
    },
    async rss() {
      refresh();
      if (pids.length) return totalRss(pids);
      return (await metricsRss(baseUrl))?.rss ?? null;
    },
    cpu() {
      refresh();
      return { server: pids.length ? cpuMs(pids) : null, pg: pgPid ? treeCpuMs(pgPid) : null };
    },
  };
  return probe;
}

/** CPU of generator, server and PostgreSQL over an interval, in % of one core. */
export class ResourceWindow {
  private readonly gen = new CpuMeter();
  private server: number | null;
  private pg: number | null;
  private readonly t0 = performance.now();
  private readonly loop: IntervalHistogram;
  private readonly generation: number;

  constructor(private readonly probe: ServerProbe) {
    const c = probe.cpu();
    this.generation = probe.generation;
    this.server = c.server;
    this.pg = c.pg;
    this.loop = monitorEventLoopDelay({ resolution: 10 });
    this.loop.enable();
  }

  read(): { genCpu: number; serverCpu: number | null; pgCpu: number | null; loopDelayP99Ms: number; loopDelayMaxMs: number } {
    const wall = performance.now() - this.t0;
    const c = this.probe.cpu();
    this.loop.disable();
    return {
      genCpu: this.gen.read().percent,
      serverCpu:
        c.server !== null && this.server !== null && this.probe.generation === this.generation ? ((c.server - this.server) / wall) * 100 : null,
      pgCpu: c.pg !== null && this.pg !== null ? ((c.pg - this.pg) / wall) * 100 : null,
      loopDelayP99Ms: this.loop.percentile(99) / 1e6,
      loopDelayMaxMs: this.loop.max / 1e6,
    };
  }
}

export const pct = (x: number | null) => (x === null ? 'n/a' : `${Math.round(x)} %`);

export interface CommonOptions {
  pop: Population;
  probe: ServerProbe;
  log: Log;
  msgpackRatio: number;
  connectConcurrency: number;
  full: boolean;
}
