import type { RevocationList } from '../auth/revocations.js';
import type { Logger } from '../log.js';
import { CloseCode } from '../ws/protocol.js';
import type { Hub } from './hub.js';
import type { Socket } from './socket.js';
import type { Typing } from './typing.js';

/**
 * Routes what the bus hears (payload formats: migrations/002_realtime_functions.sql)
 * to the hub, typing and revocations. Runs for every notification: no allocation
 * beyond the split it needs.
 */
export function createBusRouter(deps: {
  hub: Hub;
  typing: Typing;
  revoked: RevocationList;
  sockets: Set<Socket>;
  recentLeaves: Map<string, number>;
  log: Logger;
}): (payload: string) => void {
  const { hub } = deps;
  return (payload) => {
    const kind = payload.charCodeAt(0);
    try {
      switch (kind) {
        case 109: {
          // m|room|first|count\n<json>\n<json>...
          const nl = payload.indexOf('\n');
          const [, room, first] = payload.slice(0, nl).split('|');
          hub.acceptInline(room, Number(first), payload.slice(nl + 1).split('\n'));
          return;
        }
        case 100: {
          // d|room|from|to
          const [, room, , to] = payload.split('|');
          hub.doorbell(room, Number(to));
          return;
        }
        case 112: {
          // p|user|on/off|username|room,room,...
          const [, user, status, username, roomList] = payload.split('|');
          const data = { room_id: '', user_id: user, username, status: status === 'on' ? 'online' : 'offline' };
          for (const room of roomList.split(',')) {
            data.room_id = room;
            hub.publishEvent(room, 'presence', data);
          }
          return;
        }
        case 116: {
          // t|room|user|1/0|username
          const [, room, user, on, username] = payload.split('|');
          deps.typing.heard(room, user, username, on === '1');
          return;
        }
        case 106: {
          // j|room|user|username
          const [, room, user, username] = payload.split('|');
          hub.publishEvent(room, 'user_joined', { room_id: room, user_id: user, username });
          return;
        }
        case 108: {
          // l|room|user|username: tell the room, then take the user's sockets out of it.
          const [, room, user, username] = payload.split('|');
          deps.recentLeaves.set(`${room}|${user}`, Date.now());
          hub.publishEvent(room, 'user_left', { room_id: room, user_id: user, username });
          for (const ws of [...hub.socketsIn(room)]) if (ws.getUserData().userId === user) hub.leave(ws, room);
          return;
        }
        case 120: {
          // x|room
          hub.roomDeleted(payload.slice(2));
          return;
        }
        case 115: {
          // s|session: revoked; its sockets are closed, its access tokens refused.
          const sid = payload.slice(2);
          deps.revoked.add(sid);
          for (const ws of deps.sockets) {
            if (ws.getUserData().sessionId === sid) ws.end(CloseCode.sessionRevoked, 'session_revoked');
          }
          return;
        }
        default:
          deps.log.warn({ kind: payload.slice(0, 1) }, 'unknown bus payload');
      }
    } catch (err) {
      deps.log.error({ err, payload: payload.slice(0, 200) }, 'bad bus payload');
    }
  };
}
