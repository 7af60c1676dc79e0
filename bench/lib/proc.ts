import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Server-side resource readings from /proc (Linux, server on this machine).
 * pgchat's workers each listen on the shared port themselves (SO_REUSEPORT), so
 * the processes holding a LISTEN socket on the port are exactly the workers; the
 * primary holds none. PostgreSQL: the postmaster listens on its port, the
 * backends are its children.
 */

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on every Linux Node runs on

function listenInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue;
      const localPort = parseInt(f[1].split(':').pop() ?? '', 16);
      if (localPort === port) inodes.add(f[9]);
    }
  }
  return inodes;
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** Pids of the processes listening on a TCP port (needs permission to read their fds: same user or root). */
export function pidsListeningOn(port: number): number[] {
  const inodes = listenInodes(port);
  if (!inodes.size) return [];
  const found = new Set<number>();
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1])) {
        found.add(pid);
        break;
      }
    }
  }
  return [...found].sort((a, b) => a - b);
}

/** Resident set size of a process in bytes (0 if it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function totalRss(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
}

interface Stat {
  ppid: number;
  cpuMs: number;
  childCpuMs: number;
}

function stat(pid: number): Stat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at ") ".
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[0] = state (field 3), so field n is f[n - 3].
    return {
      ppid: Number(f[1]),
      cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK,
      childCpuMs: ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK,
    };
  } catch {
    return null;
  }
}

/** CPU time (user + system, ms) used so far by these processes. */
export function cpuMs(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (stat(pid)?.cpuMs ?? 0), 0);
}

/** CPU time of a process tree: the root (with its reaped children) and its live children. */
export function treeCpuMs(rootPid: number): number {
  const root = stat(rootPid);
  if (!root) return 0;
  let total = root.cpuMs + root.childCpuMs;
  for (const pid of allPids()) {
    const s = stat(pid);
    if (s && s.ppid === rootPid) total += s.cpuMs;
  }
  return total;
}

/** Max open files of this process (soft limit), from /proc/self/limits. */
export function openFilesLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : Infinity;
  } catch {
    return Infinity;
  }
}

/**
 * Server RSS through GET /metrics, for a server on another machine. pgchat's
 * primary aggregates every worker's registry (prom-client AggregatorRegistry:
 * gauges summed, process_start_time_seconds omitted); when the answer still has
 * process_start_time_seconds it came from one worker only, and is reported as such.
 */
export async function metricsRss(baseUrl: string): Promise<{ aggregated: boolean; rss: number } | null> {
  try {
    const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    const values = [...text.matchAll(/^pgchat_process_resident_memory_bytes(?:\{[^}]*\})?\s+(\S+)/gm)].map((m) => Number(m[1]));
    if (!values.length) return null;
    return { aggregated: !/^pgchat_process_start_time_seconds/m.test(text), rss: values.reduce((a, b) => a + b, 0) };
  } catch {
    return null;
  }
}
