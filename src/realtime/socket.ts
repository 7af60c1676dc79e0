import type { WebSocket } from 'uWebSockets.js';
import type { Framing } from '../ws/protocol.js';

/** A socket's place in one room. */
export interface RoomSub {
  /** catching_up: history being sent; live: subscribed to the topic; paused: slow, to be repaired. */
  phase: 'catching_up' | 'live' | 'paused';
  /** Highest seq this socket has been sent (or will get from the topic) in the room. */
  cursor: number;
  /** Bumped on leave/re-join/pause so a superseded catch-up stops. */
  epoch: number;
}

/** Per-socket state, kept small: one of these per connection. */
export interface SocketData {
  readonly userId: string;
  readonly username: string;
  readonly sessionId: string;
  readonly framing: Framing;
  readonly rooms: Map<string, RoomSub>;
  closed: boolean;
  paused: boolean;
  sendTokens: number;
  typingTokens: number;
  tokensAt: number;
  strikes: number;
  /** room → when typing:true was last broadcast for this socket (null until first typing). */
  typing: Map<string, number> | null;
}

export type Socket = WebSocket<SocketData>;
