import type { Hub } from './hub.js';

/**
 * Typing indicators: never stored. The origin worker throttles repeats per user
 * and room and broadcasts over the bus; every worker relays them to its sockets
 * and expires a typing:true that was not renewed or stopped within TYPING_TTL_MS
 * (covers a client that vanished mid-sentence).
 */
export interface Typing {
  /** From a local socket; returns false when throttled (nothing sent). */
  start(userId: string, username: string, roomId: string, lastSentAt: number | undefined, now: number): boolean;
  stop(userId: string, username: string, roomId: string): void;
  /** From the bus. */
  heard(roomId: string, userId: string, username: string, typing: boolean): void;
  stopAll(): void;
}

export function createTyping(opts: { hub: Hub; notify: (payload: string) => void; ttlMs: number; throttleMs: number }): Typing {
  const expiries = new Map<string, NodeJS.Timeout>();

  function relay(roomId: string, userId: string, username: string, typing: boolean): void {
    opts.hub.publishEvent(roomId, 'typing', { room_id: roomId, user_id: userId, username, typing });
  }

  return {
    start(userId, username, roomId, lastSentAt, now) {
      if (lastSentAt !== undefined && now - lastSentAt < opts.throttleMs) return false;
      opts.notify(`t|${roomId}|${userId}|1|${username}`);
      return true;
    },
    stop(userId, username, roomId) {
      opts.notify(`t|${roomId}|${userId}|0|${username}`);
    },
    heard(roomId, userId, username, typing) {
      const key = `${roomId}|${userId}`;
      const previous = expiries.get(key);
      if (previous) clearTimeout(previous);
      expiries.delete(key);
      relay(roomId, userId, username, typing);
      if (!typing) return;
      const timer = setTimeout(() => {
        expiries.delete(key);
        relay(roomId, userId, username, false);
      }, opts.ttlMs);
      timer.unref();
      expiries.set(key, timer);
    },
    stopAll() {
      for (const t of expiries.values()) clearTimeout(t);
      expiries.clear();
    },
  };
}
