import { loadConfig, type Config } from '../config.js';
import { createLogger } from '../log.js';
import { startServer } from '../worker.js';
import { createTestDatabase, type TestDatabase } from './db.js';

/** Fixed secrets of every test server, so tests can forge and craft tokens on purpose. */
export const TEST_JWT_ACCESS_SECRET = 'test-access-secret-0123456789abcdefghijklmnop';
export const TEST_JWT_REFRESH_SECRET = 'test-refresh-secret-0123456789abcdefghijklmno';

export interface TestServer {
  /** http://127.0.0.1:port */
  url: string;
  /** ws://127.0.0.1:port/ws */
  wsUrl: string;
  port: number;
  databaseUrl: string;
  config: Config;
  /** Stops the server, then drops the database it created (not one passed in). */
  stop(): Promise<void>;
}

/** The environment of a test server: nothing is read from process.env or .env but TEST_LOG_LEVEL. */
export function testEnv(databaseUrl: string): Record<string, string> {
  return {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    HOST_ID: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL || 'silent',
    DATABASE_URL: databaseUrl,
    DB_POOL_SIZE: '10',
    JWT_ACCESS_SECRET: TEST_JWT_ACCESS_SECRET,
    JWT_REFRESH_SECRET: TEST_JWT_REFRESH_SECRET,
    // Tests register many users from one IP; throttling tests lower it on purpose.
    AUTH_RATE_LIMIT_PER_MIN: '1000000',
  };
}

/**
 * Starts one in-process server (src/worker.ts startServer) on an ephemeral port,
 * with a fresh migrated database unless opts.databaseUrl is given (two servers
 * sharing one database behave like two workers or hosts).
 */
export async function startTestServer(overrides: Partial<Config> = {}, opts: { databaseUrl?: string } = {}): Promise<TestServer> {
  let db: TestDatabase | undefined;
  const databaseUrl = opts.databaseUrl ?? (db = await createTestDatabase()).url;
  try {
    const config = loadConfig(testEnv(databaseUrl), overrides);
    const log = createLogger(config.logLevel, { role: 'test' });
    const server = await startServer(config, log);
    let stopped: Promise<void> | undefined;
    return {
      url: `http://127.0.0.1:${server.port}`,
      wsUrl: `ws://127.0.0.1:${server.port}/ws`,
      port: server.port,
      databaseUrl,
      config,
      stop() {
        stopped ??= (async () => {
          await server.stop();
          await db?.drop();
        })();
        return stopped;
      },
    };
  } catch (err) {
    await db?.drop().catch(() => {});
    throw err;
  }
}
