import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parseEnv } from 'node:util';
import { projectRoot } from './paths.js';

/** Every setting pgchat reads, validated once at start. Nothing else reads process.env. */
export interface Config {
  readonly env: 'development' | 'production' | 'test';
  readonly host: string;
  readonly port: number;
  readonly workers: number;
  readonly hostId: string;
  readonly logLevel: string;
  /** Empty when the embedded PostgreSQL is to be started. */
  readonly databaseUrl: string;
  readonly dataDir: string;
  readonly embeddedPgPort: number;
  readonly dbPoolSize: number;
  readonly dbWriteTimeoutMs: number;
  readonly dbQueryTimeoutMs: number;
  readonly jwtAccessSecret: string;
  readonly jwtRefreshSecret: string;
  readonly accessTokenTtlSec: number;
  readonly refreshTokenTtlSec: number;
  readonly authRateLimitPerMin: number;
  readonly corsOrigin: string;
  readonly trustProxy: boolean;
  readonly maxBodyBytes: number;
  readonly maxMessageBytes: number;
  readonly maxFrameBytes: number;
  readonly batchWindowMs: number;
  readonly batchBusyRate: number;
  readonly notifyBudgetBytes: number;
  readonly wsIdleTimeoutSec: number;
  readonly wsSendRatePerSec: number;
  readonly wsSendBurst: number;
  readonly wsTypingRatePerSec: number;
  readonly wsFloodStrikes: number;
  readonly wsSoftBackpressureBytes: number;
  readonly wsHardBackpressureBytes: number;
  readonly historyPageSize: number;
  readonly presenceHeartbeatMs: number;
  readonly presenceTimeoutMs: number;
  readonly typingTtlMs: number;
  readonly typingThrottleMs: number;
  readonly listenCheckMs: number;
  readonly shutdownTimeoutMs: number;
}

type Env = Record<string, string | undefined>;

/** Settings and their defaults; .env.example is written from the same list. */
export const settings = {
  NODE_ENV: { def: 'development', doc: 'development | production | test' },
  HOST: { def: '0.0.0.0', doc: 'Address to listen on' },
  PORT: { def: '3000', doc: 'HTTP and WebSocket port (shared by all workers)' },
  WORKERS: { def: '', doc: 'Worker processes per host (default: available CPU parallelism)' },
  HOST_ID: { def: '', doc: 'Name of this host in logs and the nodes table (default: hostname)' },
  LOG_LEVEL: { def: 'info', doc: 'fatal | error | warn | info | debug | trace | silent' },
  DATABASE_URL: { def: '', doc: 'PostgreSQL 14+ URL; empty = start the embedded PostgreSQL 18' },
  PGCHAT_DATA_DIR: { def: '.data', doc: 'Embedded PostgreSQL data and dev secrets (relative to the project)' },
  EMBEDDED_PG_PORT: { def: '54329', doc: 'Port of the embedded PostgreSQL' },
  DB_POOL_SIZE: { def: '10', doc: 'Query connections per worker (plus one LISTEN connection)' },
  DB_WRITE_TIMEOUT_MS: { def: '5000', doc: 'A message write not committed within this answers unavailable (no ack)' },
  DB_QUERY_TIMEOUT_MS: { def: '15000', doc: 'Any other query is abandoned after this (unreachable database)' },
  JWT_ACCESS_SECRET: { def: '', doc: 'HMAC secret for access tokens (required in production, >= 32 chars)' },
  JWT_REFRESH_SECRET: { def: '', doc: 'HMAC secret for refresh tokens (required in production, >= 32 chars)' },
  ACCESS_TOKEN_TTL: { def: '900', doc: 'Access token lifetime, seconds' },
  REFRESH_TOKEN_TTL: { def: '2592000', doc: 'Refresh token (session) lifetime, seconds' },
  AUTH_RATE_LIMIT_PER_MIN: { def: '30', doc: 'Login/register attempts per minute per IP and per account' },
  CORS_ORIGIN: { def: '*', doc: 'Access-Control-Allow-Origin for browser clients' },
  TRUST_PROXY: { def: 'false', doc: 'true behind Nginx: take the client IP from X-Forwarded-For (rate limits, sessions)' },
  MAX_BODY_BYTES: { def: '131072', doc: 'Largest HTTP request body (413 above)' },
  MAX_MESSAGE_BYTES: { def: '65536', doc: 'Largest message content, UTF-8 bytes' },
  MAX_FRAME_BYTES: { def: '131072', doc: 'Largest WebSocket frame a client may send (closed with 1009 above)' },
  BATCH_WINDOW_MS: { def: '20', doc: 'Live fan-out batching window per room under load' },
  BATCH_BUSY_RATE: { def: '500', doc: 'Messages/s in a room from which its live frames are batched per window (below: sent at once)' },
  NOTIFY_BUDGET_BYTES: { def: '7900', doc: 'Inline NOTIFY payload budget; 0 = doorbells only (readers fetch ranges)' },
  WS_IDLE_TIMEOUT: { def: '60', doc: 'Seconds without traffic before a socket is closed (pings are sent automatically)' },
  WS_SEND_RATE: { def: '50', doc: 'send_message per second per socket (token bucket refill)' },
  WS_SEND_BURST: { def: '200', doc: 'send_message burst per socket (token bucket size)' },
  WS_TYPING_RATE: { def: '5', doc: 'typing events per second per socket' },
  WS_FLOOD_STRIKES: { def: '50', doc: 'Rate-limited frames in a row before the socket is closed (4429)' },
  WS_SOFT_BACKPRESSURE: { def: '1048576', doc: 'Buffered bytes at which a slow socket is paused and later repaired' },
  WS_HARD_BACKPRESSURE: { def: '16777216', doc: 'Buffered bytes at which a slow socket is closed (4008)' },
  HISTORY_PAGE_SIZE: { def: '200', doc: 'Messages per history frame when catching up' },
  PRESENCE_HEARTBEAT_MS: { def: '3000', doc: 'Worker heartbeat interval' },
  PRESENCE_TIMEOUT_MS: { def: '9000', doc: 'A worker silent this long is dead; its users go offline' },
  TYPING_TTL_MS: { def: '6000', doc: 'typing:true expires after this without a new one' },
  TYPING_THROTTLE_MS: { def: '2000', doc: 'Repeated typing_start within this is not re-broadcast' },
  LISTEN_CHECK_MS: { def: '5000', doc: 'LISTEN connection liveness check interval' },
  SHUTDOWN_TIMEOUT_MS: { def: '10000', doc: 'Graceful stop deadline' },
} as const;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Reads .env from the project root (if any) under the real environment, which wins. */
export function readEnv(processEnv: Env = process.env, envFile = join(projectRoot, '.env')): Env {
  const fromFile = existsSync(envFile) ? parseEnv(readFileSync(envFile, 'utf8')) : {};
  return { ...fromFile, ...processEnv };
}

export function loadConfig(env: Env = readEnv(), overrides: Partial<Config> = {}): Config {
  const problems: string[] = [];
  const get = (key: keyof typeof settings): string => {
    const v = env[key];
    return v === undefined || v.trim() === '' ? settings[key].def : v.trim();
  };
  const int = (key: keyof typeof settings, min: number, max: number): number => {
    const raw = get(key);
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${key}=${JSON.stringify(raw)} must be an integer from ${min} to ${max}`);
      return Number(settings[key].def) || min;
    }
    return n;
  };

  const bool = (key: keyof typeof settings): boolean => {
    const raw = get(key).toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    problems.push(`${key}=${JSON.stringify(raw)} must be true or false`);
    return false;
  };

  const nodeEnv = get('NODE_ENV');
  if (!['development', 'production', 'test'].includes(nodeEnv)) {
    problems.push(`NODE_ENV=${JSON.stringify(nodeEnv)} must be development, production or test`);
  }
  const production = nodeEnv === 'production';
  const dataDirRaw = get('PGCHAT_DATA_DIR');
  const dataDir = isAbsolute(dataDirRaw) ? dataDirRaw : join(projectRoot, dataDirRaw);
  const databaseUrl = get('DATABASE_URL');
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must start with postgres:// or postgresql://');
  }
  const logLevel = get('LOG_LEVEL');
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    problems.push(`LOG_LEVEL=${JSON.stringify(logLevel)} is not a log level`);
  }

  let jwtAccessSecret = get('JWT_ACCESS_SECRET');
  let jwtRefreshSecret = get('JWT_REFRESH_SECRET');
  if (production) {
    for (const [key, value] of [['JWT_ACCESS_SECRET', jwtAccessSecret], ['JWT_REFRESH_SECRET', jwtRefreshSecret]]) {
      if (value.length < 32) problems.push(`${key} must be set to a random string of at least 32 characters in production`);
    }
    if (jwtAccessSecret && jwtAccessSecret === jwtRefreshSecret) {
      problems.push('JWT_ACCESS_SECRET and JWT_REFRESH_SECRET must differ');
    }
  } else if ((!jwtAccessSecret || !jwtRefreshSecret) && !overrides.jwtAccessSecret) {
    const dev = devSecrets(dataDir);
    jwtAccessSecret ||= dev.access;
    jwtRefreshSecret ||= dev.refresh;
  }

  const workersRaw = get('WORKERS');
  const workers = workersRaw === '' ? Math.max(1, availableParallelism()) : int('WORKERS', 1, 256);

  const config: Config = {
    env: nodeEnv as Config['env'],
    host: get('HOST'),
    port: int('PORT', 0, 65535),
    workers,
    hostId: get('HOST_ID') || hostname(),
    logLevel,
    databaseUrl,
    dataDir,
    embeddedPgPort: int('EMBEDDED_PG_PORT', 1, 65535),
    dbPoolSize: int('DB_POOL_SIZE', 1, 500),
    dbWriteTimeoutMs: int('DB_WRITE_TIMEOUT_MS', 100, 600_000),
    dbQueryTimeoutMs: int('DB_QUERY_TIMEOUT_MS', 100, 600_000),
    jwtAccessSecret,
    jwtRefreshSecret,
    accessTokenTtlSec: int('ACCESS_TOKEN_TTL', 10, 86400 * 7),
    refreshTokenTtlSec: int('REFRESH_TOKEN_TTL', 60, 86400 * 365),
    authRateLimitPerMin: int('AUTH_RATE_LIMIT_PER_MIN', 1, 10_000_000),
    corsOrigin: get('CORS_ORIGIN'),
    trustProxy: bool('TRUST_PROXY'),
    maxBodyBytes: int('MAX_BODY_BYTES', 1024, 64 * 1024 * 1024),
    maxMessageBytes: int('MAX_MESSAGE_BYTES', 1, 1024 * 1024),
    maxFrameBytes: int('MAX_FRAME_BYTES', 1024, 64 * 1024 * 1024),
    batchWindowMs: int('BATCH_WINDOW_MS', 0, 1000),
    batchBusyRate: int('BATCH_BUSY_RATE', 0, 10_000_000),
    notifyBudgetBytes: int('NOTIFY_BUDGET_BYTES', 0, 7900),
    wsIdleTimeoutSec: int('WS_IDLE_TIMEOUT', 8, 960),
    wsSendRatePerSec: int('WS_SEND_RATE', 1, 1_000_000),
    wsSendBurst: int('WS_SEND_BURST', 1, 1_000_000),
    wsTypingRatePerSec: int('WS_TYPING_RATE', 1, 1000),
    wsFloodStrikes: int('WS_FLOOD_STRIKES', 1, 1_000_000),
    wsSoftBackpressureBytes: int('WS_SOFT_BACKPRESSURE', 16 * 1024, 1024 * 1024 * 1024),
    wsHardBackpressureBytes: int('WS_HARD_BACKPRESSURE', 64 * 1024, 4 * 1024 * 1024 * 1024),
    historyPageSize: int('HISTORY_PAGE_SIZE', 1, 10_000),
    presenceHeartbeatMs: int('PRESENCE_HEARTBEAT_MS', 100, 60_000),
    presenceTimeoutMs: int('PRESENCE_TIMEOUT_MS', 300, 600_000),
    typingTtlMs: int('TYPING_TTL_MS', 100, 600_000),
    typingThrottleMs: int('TYPING_THROTTLE_MS', 0, 600_000),
    listenCheckMs: int('LISTEN_CHECK_MS', 100, 600_000),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 100, 600_000),
    ...overrides,
  };
  if (config.maxFrameBytes < config.maxMessageBytes + 1024) {
    problems.push('MAX_FRAME_BYTES must exceed MAX_MESSAGE_BYTES by at least 1024 (envelope)');
  }
  if (config.wsHardBackpressureBytes <= config.wsSoftBackpressureBytes) {
    problems.push('WS_HARD_BACKPRESSURE must be larger than WS_SOFT_BACKPRESSURE');
  }
  if (config.presenceTimeoutMs < config.presenceHeartbeatMs * 2) {
    problems.push('PRESENCE_TIMEOUT_MS must be at least twice PRESENCE_HEARTBEAT_MS');
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** Development secrets are made once and kept with the data, so tokens survive restarts. */
function devSecrets(dataDir: string): { access: string; refresh: string } {
  const file = join(dataDir, 'dev-secrets.json');
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { access?: string; refresh?: string };
    if (parsed.access && parsed.refresh) return { access: parsed.access, refresh: parsed.refresh };
  }
  const secrets = { access: randomBytes(32).toString('base64url'), refresh: randomBytes(32).toString('base64url') };
  mkdirSync(dataDir, { recursive: true });
  try {
    // 'wx': when several processes start at once, the first writer wins and the others read its file.
    writeFileSync(file, JSON.stringify(secrets), { mode: 0o600, flag: 'wx' });
  } catch {
    return devSecrets(dataDir);
  }
  return secrets;
}
