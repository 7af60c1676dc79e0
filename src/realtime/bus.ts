import pg from 'pg';
import { BUS_CHANNEL } from '../db/pool.js';
import type { Logger } from '../log.js';
import { metrics } from '../metrics.js';

export interface Bus {
  start(): Promise<void>;
  stop(): Promise<void>;
  isUp(): boolean;
}

export interface BusOptions {
  databaseUrl: string;
  checkMs: number;
  log: Logger;
  /** Every payload heard on the channel, in order. */
  onPayload(payload: string): void;
  /** LISTEN is (re-)established: anything sent while it was down was missed. */
  onListening(reconnected: boolean): void;
}

/**
 * The worker's one LISTEN connection, apart from the query pool. A dropped
 * connection is not always reported by the driver (a silent network partition),
 * so it is also probed with a query under a deadline; on any failure it is torn
 * down and rebuilt with capped exponential backoff.
 */
export function createBus(opts: BusOptions): Bus {
  let client: pg.Client | null = null;
  let up = false;
  let stopped = false;
  let everUp = false;
  let attempt = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let checkTimer: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    const c = new pg.Client({
      connectionString: opts.databaseUrl,
      application_name: 'pgchat-listen',
      keepAlive: true,
      keepAliveInitialDelayMillis: 5000,
      connectionTimeoutMillis: 5000,
    });
    c.on('notification', (n) => {
      if (client === c && n.channel === BUS_CHANNEL && n.payload) opts.onPayload(n.payload);
    });
    c.on('error', (err) => lose(c, err));
    c.on('end', () => lose(c, new Error('connection ended')));
    client = c;
    await c.connect();
    await c.query(`LISTEN ${BUS_CHANNEL}`);
    if (client !== c || stopped) return;
    up = true;
    attempt = 0;
    const reconnected = everUp;
    everUp = true;
    if (reconnected) metrics.listenReconnects.inc();
    opts.log.info({ reconnected }, 'LISTEN connection up');
    opts.onListening(reconnected);
  }

  function lose(c: pg.Client, err: unknown): void {
    if (client !== c) return;
    client = null;
    const wasUp = up;
    up = false;
    c.removeAllListeners('notification');
    c.on('error', () => {});
    c.end().catch(() => {});
    if (stopped) return;
    if (wasUp) opts.log.warn({ err: (err as Error)?.message }, 'LISTEN connection lost');
    scheduleReconnect();
  }

  function scheduleReconnect(): void {
    if (stopped || retryTimer) return;
    const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
    attempt++;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connect().catch((err) => {
        if (client) lose(client, err);
        else scheduleReconnect();
      });
    }, delay);
  }

  async function check(): Promise<void> {
    const c = client;
    if (!c || !up) return;
    const deadline = new Promise<never>((_, reject) => {
      const t = setTimeout(() => reject(new Error('liveness probe timed out')), Math.max(1000, opts.checkMs));
      t.unref();
    });
    try {
      await Promise.race([c.query('SELECT 1'), deadline]);
    } catch (err) {
      lose(c, err);
    }
  }

  return {
    async start() {
      try {
        await connect();
      } catch (err) {
        // Start anyway: the worker serves and the bus keeps retrying; /ready says not ready.
        if (client) lose(client, err);
        else scheduleReconnect();
      }
      checkTimer = setInterval(() => void check(), opts.checkMs);
      checkTimer.unref();
    },
    async stop() {
      stopped = true;
      clearInterval(checkTimer);
      clearTimeout(retryTimer);
      const c = client;
      client = null;
      up = false;
      if (c) await c.end().catch(() => {});
    },
    isUp: () => up,
  };
}
