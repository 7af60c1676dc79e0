import cluster, { type Worker } from 'node:cluster';
import { loadConfig, ConfigError, type Config } from './config.js';
import { startEmbeddedPostgres, type EmbeddedDb } from './db/embedded.js';
import { createLogger, type Logger } from './log.js';
import { serveHostMetrics } from './metrics.js';

/**
 * Forks and supervises the workers; no sockets, no queries. Each worker listens on
 * the shared port itself (SO_REUSEPORT: the kernel spreads connections).
 *   - a worker that dies is replaced, with backoff when it keeps dying;
 *   - SIGTERM/SIGINT: workers stop gracefully, then the primary exits 0;
 *   - SIGUSR2: rolling restart, one worker at a time, the port served throughout.
 */
export async function runPrimary(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pgchat: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, { role: 'primary', host: config.hostId });

  let embedded: EmbeddedDb | undefined;
  if (!config.databaseUrl) {
    try {
      embedded = await startEmbeddedPostgres(config.dataDir, config.embeddedPgPort, (msg) => log.info(msg));
    } catch (err) {
      log.fatal({ err }, 'could not start the embedded PostgreSQL');
      process.exit(1);
    }
    // Workers inherit the environment; this is the one place that hands them the URL.
    process.env.DATABASE_URL = embedded.url;
  }
  supervise(config, log, embedded);
}

function supervise(config: Config, log: Logger, embedded: EmbeddedDb | undefined): void {
  const workers = new Set<Worker>();
  const retiring = new WeakSet<Worker>();
  let stopping = false;
  let recentDeaths: number[] = [];
  let announced = false;

  function fork(): Promise<Worker> {
    const worker = cluster.fork();
    workers.add(worker);
    return new Promise((resolve, reject) => {
      worker.on('message', (msg: { type?: string; port?: number }) => {
        if (msg?.type !== 'ready') return;
        resolve(worker);
        maybeAnnounce(msg.port ?? config.port);
      });
      worker.once('exit', () => reject(new Error('worker exited before it was ready')));
    });
  }

  let readyCount = 0;
  function maybeAnnounce(port: number): void {
    readyCount++;
    if (readyCount < config.workers || announced) return;
    announced = true;
    // PM2 (wait_ready) and other supervisors learn that this host serves.
    process.send?.('ready');
    const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
    log.info({ workers: config.workers, port }, 'pgchat ready');
    process.stdout.write(
      `\npgchat is running with ${config.workers} worker(s)\n` +
        `  HTTP       http://${host}:${port}\n` +
        `  WebSocket  ws://${host}:${port}/ws\n` +
        `  Health     http://${host}:${port}/health\n` +
        `  API docs   http://${host}:${port}/openapi.json\n` +
        (embedded ? `  Database   ${embedded.url} (embedded)\n` : '') +
        '\n',
    );
  }

  serveHostMetrics();
  cluster.on('exit', (worker, code, signal) => {
    workers.delete(worker);
    if (stopping || retiring.has(worker)) return;
    log.error({ workerPid: worker.process.pid, code, signal }, 'worker died; replacing it');
    const now = Date.now();
    recentDeaths = recentDeaths.filter((t) => now - t < 60_000);
    recentDeaths.push(now);
    // Back off when workers keep dying (e.g. the database is down), up to 30 s.
    const delay = recentDeaths.length <= 3 ? 0 : Math.min(30_000, 500 * 2 ** (recentDeaths.length - 3));
    setTimeout(() => {
      if (!stopping) fork().catch(() => {});
    }, delay);
  });

  for (let i = 0; i < config.workers; i++) fork().catch(() => {});

  async function stopWorker(worker: Worker): Promise<void> {
    retiring.add(worker);
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    if (worker.isConnected()) worker.send({ type: 'shutdown' });
    else worker.process.kill('SIGTERM');
    const timer = setTimeout(() => worker.process.kill('SIGKILL'), config.shutdownTimeoutMs + 2000);
    await exited;
    clearTimeout(timer);
  }

  let rolling = false;
  async function rollingRestart(): Promise<void> {
    if (rolling || stopping) return;
    rolling = true;
    log.info('rolling restart');
    try {
      for (const old of [...workers]) {
        if (stopping) break;
        // Start the replacement first so the port is never without a listener.
        await fork();
        await stopWorker(old);
      }
      log.info('rolling restart done');
    } catch (err) {
      log.error({ err }, 'rolling restart failed');
    } finally {
      rolling = false;
    }
  }

  async function shutdown(signal: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    await Promise.all([...workers].map(stopWorker));
    if (embedded) await embedded.stop().catch(() => {});
    log.info('stopped');
    process.exit(0);
  }

  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGUSR2', () => void rollingRestart());
}
