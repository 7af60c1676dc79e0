import type { RevocationList } from '../auth/revocations.js';
import type { TokenService } from '../auth/tokens.js';
import type { Config } from '../config.js';
import type { Db } from '../db/pool.js';
import type { Logger } from '../log.js';
import type { MessageWriter } from '../realtime/writer.js';
import type { RateLimiter } from './rate-limit.js';

/** What the HTTP routes use; built by the worker (or a test) and passed in. */
export interface HttpDeps {
  config: Config;
  db: Db;
  tokens: TokenService;
  writer: MessageWriter;
  authLimiter: RateLimiter;
  revoked: RevocationList;
  log: Logger;
  /** Readiness of this worker's dependencies. */
  ready(): { database: boolean; listen: boolean };
  /** Prometheus text for GET /metrics. */
  metrics(): Promise<string>;
}
