import type { RevocationList } from '../auth/revocations.js';
import type { TokenService } from '../auth/tokens.js';
import type { Config } from '../config.js';
import type { Db } from '../db/pool.js';
import type { Logger } from '../log.js';
import type { Hub } from '../realtime/hub.js';
import type { Presence } from '../realtime/presence.js';
import type { Socket } from '../realtime/socket.js';
import type { Typing } from '../realtime/typing.js';
import type { MessageWriter } from '../realtime/writer.js';

/** What the WebSocket side uses; built by the worker. */
export interface WsDeps {
  config: Config;
  db: Db;
  tokens: TokenService;
  revoked: RevocationList;
  writer: MessageWriter;
  hub: Hub;
  presence: Presence;
  typing: Typing;
  log: Logger;
  /** Every open socket of this worker (graceful stop, session revocation). */
  sockets: Set<Socket>;
  /** room|user → when a membership removal was heard, so a join racing with it is refused. */
  recentLeaves: Map<string, number>;
  /** False once a graceful stop began: new sends are refused (unavailable) so the write queue can drain. */
  readonly intake: { open: boolean };
}
