import type { Socket } from '../../realtime/socket.js';
import type { WsDeps } from '../deps.js';
import { sendEvent } from '../send.js';
import { stopTyping } from './typing.js';

/** Stops this socket receiving the room (membership is unchanged: that is POST /rooms/:id/leave). */
export function leaveRoom(deps: WsDeps, ws: Socket, data: { room_id: string }): void {
  stopTyping(deps, ws, data.room_id);
  deps.hub.leave(ws, data.room_id);
  sendEvent(ws, 'left_room', { room_id: data.room_id });
}
