// PM2 process file for one pgchat host. Deployment guide: ops/README.md.
//
//   pm2 start  ecosystem.config.cjs --env production    # first start
//   pm2 reload ecosystem.config.cjs --env production    # deploy: zero refused connections (see below)
//   pm2 save && pm2 startup                              # survive reboots
//
// FORK mode, never cluster mode. pgchat's entry (dist/src/main.js) is its own node:cluster
// primary: it forks WORKERS workers, replaces dead ones, stops them gracefully and rolls them
// on SIGUSR2. In PM2 cluster mode PM2's daemon is the cluster primary and runs the script as a
// cluster *worker* (checked with pm2 6.0.14: cluster.isPrimary === false, cluster.isWorker ===
// true in the app, see lib/God/ClusterMode.js), so main.ts would go straight to runWorker():
// WORKERS ignored, no supervision, no graceful stop, no SIGUSR2.
//
// Why TWO fork instances per host. In fork mode `pm2 reload` is a plain stop-then-start of
// each instance (lib/God/Reload.js only reloads cluster_mode gracefully). With one instance
// that leaves the port closed while the new process boots: measured ~1.5 s of ECONNREFUSED
// (2084 of 50084 GETs /health failed). With two instances PM2 restarts them one at a time
// (lib/API.js: at most 2 ids are processed with concurrency 1) and waits for the new one
// before stopping the next (wait_ready / listen_timeout); both primaries' workers listen on the
// same port with SO_REUSEPORT (uWebSockets.js does that on Linux), so the kernel always has a
// listener: 0 of 139156 GETs failed (test/cluster/pm2-reload.test.ts). Set the sysctl
// net.ipv4.tcp_migrate_req=1 on the host: without it, connections already queued on a closing
// listener are reset (3 ECONNRESET of 149972 in the same measurement).
//
// Alternative without a second instance: `pm2 sendSignal SIGUSR2 pgchat` makes the primary
// roll its workers one by one (also 0 failures); it reloads worker code but neither the
// primary nor the environment, so a deploy uses `pm2 reload`.
'use strict';

const os = require('node:os');
const path = require('node:path');

const INSTANCES = 2;
// Workers per instance: together the two instances use every core (WORKERS in the environment
// overrides; it then applies to EACH instance).
const workersPerInstance = process.env.WORKERS || String(Math.max(1, Math.ceil(os.availableParallelism() / INSTANCES)));
// Graceful stop deadline of the app (SHUTDOWN_TIMEOUT_MS, default 10 s); the primary adds 2 s
// before it SIGKILLs a stuck worker. PM2 must wait longer than both before its own SIGKILL.
const shutdownTimeoutMs = Number(process.env.SHUTDOWN_TIMEOUT_MS || 10000);

module.exports = {
  apps: [
    {
      name: 'pgchat',
      script: 'dist/src/main.js',
      cwd: __dirname,
      exec_mode: 'fork',
      instances: INSTANCES,

      // Stop: SIGINT to the primary only. The primary stops its workers itself (close the
      // listen socket, close WebSockets with 1001, flush, exit 0); PM2's default treekill
      // would signal the workers behind the primary's back.
      treekill: false,
      kill_timeout: shutdownTimeoutMs + 2000 + 3000,
      // Reload: start the new instance, wait until it is ready, only then stop the next one.
      // The primary sends process.send('ready') when all its workers listen; listen_timeout
      // is the fallback if it does not.
      wait_ready: true,
      listen_timeout: 15000,

      // Restart policy for a primary that dies (the primary itself replaces dead workers).
      autorestart: true,
      exp_backoff_restart_delay: 200,
      min_uptime: 5000,
      max_restarts: 50,
      // PM2 measures only the primary's memory (pidusage of its pid), not the workers'.
      // The primary is small; this catches a leak there. Workers inherit node_args (cluster.fork
      // uses process.execArgv), so their heap is capped by --max-old-space-size and a worker
      // that exceeds it dies and is replaced by the primary.
      max_memory_restart: '300M',
      node_args: ['--max-old-space-size=1536'],

      // Logs: pino JSON lines on stdout; one file per stream for both instances.
      out_file: path.join(process.env.PGCHAT_LOG_DIR || '/var/log/pgchat', 'pgchat.out.log'),
      error_file: path.join(process.env.PGCHAT_LOG_DIR || '/var/log/pgchat', 'pgchat.err.log'),
      merge_logs: true,
      time: false, // pino already timestamps every line

      env: {
        NODE_ENV: 'development',
        WORKERS: workersPerInstance,
      },
      // Secrets and DATABASE_URL do not belong in this file: put them in the app's .env
      // (read by the server itself, the real environment wins) or export them before
      // `pm2 start`; see ops/README.md.
      env_production: {
        NODE_ENV: 'production',
        WORKERS: workersPerInstance,
        TRUST_PROXY: 'true',
        LOG_LEVEL: 'info',
      },
    },
  ],
};
