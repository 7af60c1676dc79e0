import { createRevocationList } from './auth/revocations.js';
import { createTokenService } from './auth/tokens.js';
import { buildApp } from './app.js';
import { loadConfig, type Config } from './config.js';
import { migrate } from './db/migrate.js';
import { createPool } from './db/pool.js';
import { recentlyRevokedSessions } from './db/sessions.js';
import { createRateLimiter } from './http/rate-limit.js';
import { createLogger, type Logger } from './log.js';
import { hostMetrics } from './metrics.js';
import { createBus } from './realtime/bus.js';
import { createBusRouter } from './realtime/events.js';
import { createHub } from './realtime/hub.js';
import { createNotifier } from './realtime/notifier.js';
import { createPresence } from './realtime/presence.js';
import type { Socket } from './realtime/socket.js';
import { createTyping } from './realtime/typing.js';
import { createMessageWriter } from './realtime/writer.js';
import { uws } from './uws.js';
import { uuidv7 } from './ids.js';
import { createWsBehavior } from './ws/connection.js';
import { CloseCode } from './ws/protocol.js';
import type { TemplatedApp } from 'uWebSockets.js';

export interface RunningServer {
  readonly port: number;
  /** Graceful stop: refuse new connections, flush, close sockets with 1001, release the database. */
  stop(): Promise<void>;
}

/** Composition root of one worker: config → pool → realtime → app → listen. */
export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  await migrate(config.databaseUrl, (msg) => log.info(msg));
  const db = createPool(config.databaseUrl, config.dbPoolSize, 'pgchat', config.dbQueryTimeoutMs);
  const tokens = createTokenService({
    accessSecret: config.jwtAccessSecret,
    refreshSecret: config.jwtRefreshSecret,
    accessTtlSec: config.accessTokenTtlSec,
    refreshTtlSec: config.refreshTokenTtlSec,
  });
  const revoked = createRevocationList(
    config.accessTokenTtlSec * 1000,
    await recentlyRevokedSessions(db, config.accessTokenTtlSec),
  );
  const writer = createMessageWriter(db, {
    notifyBudget: config.notifyBudgetBytes,
    maxMessageBytes: config.maxMessageBytes,
    timeoutMs: config.dbWriteTimeoutMs,
  });
  let databaseUp = true;

  let app: TemplatedApp | undefined;
  const hub = createHub({
    app: () => app!,
    db,
    log,
    batchWindowMs: config.batchWindowMs,
    batchBusyRate: config.batchBusyRate,
    historyPageSize: config.historyPageSize,
    softBackpressure: config.wsSoftBackpressureBytes,
    hardBackpressure: config.wsHardBackpressureBytes,
    auditMs: config.listenCheckMs,
  });
  const sockets = new Set<Socket>();
  const recentLeaves = new Map<string, number>();
  const intake = { open: true };
  const notify = createNotifier(db, (err) => log.warn({ err: (err as Error).message }, 'notify failed'));
  const typing = createTyping({ hub, notify, ttlMs: config.typingTtlMs, throttleMs: config.typingThrottleMs });
  const presence = createPresence({
    db,
    nodeId: uuidv7(),
    hostId: config.hostId,
    heartbeatMs: config.presenceHeartbeatMs,
    timeoutMs: config.presenceTimeoutMs,
    log,
  });
  const bus = createBus({
    databaseUrl: config.databaseUrl,
    checkMs: config.listenCheckMs,
    log,
    onPayload: createBusRouter({ hub, typing, revoked, sockets, recentLeaves, log }),
    // Whatever was committed while LISTEN was down is read back from the table.
    onListening: (reconnected) => {
      if (reconnected) hub.audit().catch((err) => log.warn({ err: (err as Error).message }, 'audit after reconnect failed'));
    },
  });
  const forgetLeaves = setInterval(() => {
    const cutoff = Date.now() - 60_000;
    for (const [key, at] of recentLeaves) if (at < cutoff) recentLeaves.delete(key);
  }, 30_000);
  forgetLeaves.unref();

  app = buildApp(
    {
      config,
      db,
      tokens,
      writer,
      revoked,
      authLimiter: createRateLimiter(config.authRateLimitPerMin),
      log,
      ready: () => ({ database: databaseUp, listen: bus.isUp() }),
      metrics: () => hostMetrics(),
    },
    createWsBehavior({ config, db, tokens, revoked, writer, hub, presence, typing, log, sockets, recentLeaves, intake }),
  );
  await bus.start();
  await presence.start().catch((err) => log.warn({ err: (err as Error).message }, 'first heartbeat failed'));
  hub.start();

  const listenSocket = await new Promise<unknown>((resolve, reject) => {
    app.listen(config.host, config.port, (token) => (token ? resolve(token) : reject(new Error(`cannot listen on ${config.host}:${config.port}`))));
  });
  const port = uws.us_socket_local_port(listenSocket as never);

  let stopping: Promise<void> | undefined;
  return {
    port,
    stop() {
      stopping ??= (async () => {
        uws.us_listen_socket_close(listenSocket as never);
        // Acks for everything already received go out before the sockets close.
        intake.open = false;
        await writer.drain();
        hub.stop();
        typing.stopAll();
        for (const ws of [...sockets]) ws.end(CloseCode.goingAway, 'server_shutdown');
        await presence.stop().catch(() => {});
        await bus.stop();
        clearInterval(forgetLeaves);
        await db.end().catch(() => {});
        databaseUp = false;
        // Idle keep-alive HTTP connections would keep the process alive; the native
        // build has close() though the typings of this version lack it.
        (app as unknown as { close?: () => void }).close?.();
      })();
      return stopping;
    },
  };
}

/** Entry of a cluster worker (or of a single-process run). */
export async function runWorker(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, { role: 'worker', host: config.hostId });
  let server: RunningServer;
  try {
    server = await startServer(config, log);
  } catch (err) {
    log.fatal({ err }, 'worker failed to start');
    process.exit(1);
  }
  // A bug that escapes a handler is logged; the worker keeps serving its other sockets.
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  process.send?.({ type: 'ready', port: server.port });
  log.info({ port: server.port }, 'worker listening');

  const shutdown = (reason: string) => {
    log.info({ reason }, 'worker stopping');
    const deadline = setTimeout(() => {
      log.warn('graceful stop timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    server.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'error during stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('message', (msg: { type?: string }) => {
    if (msg?.type === 'shutdown') shutdown('primary');
  });
  // The primary going away (killed) must not leave an orphan worker serving.
  process.on('disconnect', () => shutdown('primary gone'));
}
