import type { Socket } from '../../realtime/socket.js';
import type { WsDeps } from '../deps.js';
import { sendError } from '../send.js';

export function startTyping(deps: WsDeps, ws: Socket, data: { room_id: string }): void {
  const d = ws.getUserData();
  if (!d.rooms.has(data.room_id)) return sendError(ws, 'not_joined', undefined, 'typing_start');
  const typing = (d.typing ??= new Map());
  const now = Date.now();
  if (deps.typing.start(d.userId, d.username, data.room_id, typing.get(data.room_id), now)) typing.set(data.room_id, now);
}

export function stopTyping(deps: WsDeps, ws: Socket, roomId: string, ref?: string): void {
  const d = ws.getUserData();
  if (ref && !d.rooms.has(roomId)) return sendError(ws, 'not_joined', undefined, ref);
  if (!d.typing?.delete(roomId)) return;
  deps.typing.stop(d.userId, d.username, roomId);
}
