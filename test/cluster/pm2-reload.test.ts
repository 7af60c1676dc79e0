// `pm2 reload ecosystem.config.cjs` must not refuse a single connection.
//
// One app host namespace with PM2 (PM2_HOME in the harness's temp dir) running the repo's
// ecosystem.config.cjs against the harness's PostgreSQL; GET /health is hammered on fresh
// TCP connections straight at the host (no Nginx to hide a refused connect by retrying)
// before, during and after the reload. `pm2 kill` always runs at the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, clusterUnsupportedReason, REPO_ROOT, childPids, hammer, httpGet, sleep, waitFor } from './harness.js';

const ENTRY = join(REPO_ROOT, 'dist/src/main.js');
const PM2 = join(REPO_ROOT, 'node_modules/.bin/pm2');
const ECOSYSTEM = join(REPO_ROOT, 'ecosystem.config.cjs');
const SKIP = clusterUnsupportedReason()
  ?? (existsSync(ENTRY) ? null : `${ENTRY} missing (build the server first)`)
  ?? (existsSync(PM2) ? null : 'pm2 not installed (npm ci)');

interface Pm2Proc { name: string; pid: number; pm2_env: { status: string; exec_mode: string; restart_time: number } }

test('pm2 reload of ecosystem.config.cjs refuses no connection', { skip: SKIP ?? false, timeout: 180_000 }, async (t) => {
  const say = (s: string) => { t.diagnostic(s); console.log(s); };
  const cluster = await Cluster.start({ hosts: 1, startApps: false, nginx: false });
  const pm2Home = join(cluster.tmp, 'pm2');
  mkdirSync(join(pm2Home, 'logs'), { recursive: true });
  const env = { ...cluster.hostEnv(0), PM2_HOME: pm2Home, PGCHAT_LOG_DIR: join(pm2Home, 'logs'), WORKERS: '1' };
  const pm2 = async (...args: string[]) => {
    const r = await cluster.execInHost(0, PM2, args, env);
    if (r.code !== 0) throw new Error(`pm2 ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const list = async (): Promise<Pm2Proc[]> => JSON.parse((await pm2('jlist')).trim().split('\n').pop()!) as Pm2Proc[];
  try {
    await pm2('start', ECOSYSTEM, '--env', 'production');
    const url = cluster.hostUrl(0);
    await waitFor('/ready under pm2', async () => (await httpGet(url + '/ready')).status === 200, 60_000);
    const before = await waitFor('2 online fork instances', async () => {
      const l = await list();
      return l.length === 2 && l.every((p) => p.pm2_env.status === 'online' && p.pid > 0) ? l : null;
    }, 30_000);
    for (const p of before) {
      assert.equal(p.pm2_env.exec_mode, 'fork_mode', 'PM2 runs pgchat in fork mode');
      // Our own primary is running (it has forked its workers), not a lone worker.
      await waitFor(`primary ${p.pid} forked its worker`, async () => childPids(p.pid).length >= 1, 30_000);
    }
    say(`pm2 instances: ${before.map((p) => `${p.pid} (workers ${childPids(p.pid).join(',')})`).join('; ')}`);

    let stop = false;
    const load = hammer(url + '/health', { concurrency: 4, stop: () => stop, maxMs: 150_000 });
    await sleep(1000);
    const t0 = Date.now();
    await pm2('reload', ECOSYSTEM, '--env', 'production');
    const reloadMs = Date.now() - t0;
    await sleep(2000);
    stop = true;
    const r = await load;
    const after = await list();
    say(`pm2 reload took ${reloadMs} ms; GET /health: ${r.total} requests, ${r.ok} ok, statuses ${JSON.stringify(r.statuses)}, errors ${JSON.stringify(r.errors)}, max latency ${r.maxLatencyMs} ms`);
    say(`after reload: ${after.map((p) => `${p.pid} ${p.pm2_env.status} restarts=${p.pm2_env.restart_time}`).join('; ')}`);

    assert.ok(after.every((p) => p.pm2_env.status === 'online'), 'both instances online after the reload');
    assert.ok(after.every((p) => !before.some((b) => b.pid === p.pid)), 'both instances were replaced');
    assert.ok(r.total > 100, 'the load ran throughout');
    assert.deepEqual({ errors: r.errors, statuses: r.statuses }, { errors: {}, statuses: {} }, 'no refused, reset or failed request during pm2 reload');
    assert.equal((await httpGet(url + '/ready')).status, 200);
  } finally {
    await cluster.execInHost(0, PM2, ['kill'], env).catch(() => {});
    await cluster.stop();
  }
});
