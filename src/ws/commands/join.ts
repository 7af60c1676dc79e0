import { getRoomAccess } from '../../db/rooms.js';
import type { Socket } from '../../realtime/socket.js';
import type { WsDeps } from '../deps.js';
import { sendError } from '../send.js';

export async function joinRoom(deps: WsDeps, ws: Socket, data: { room_id: string; last_seen_seq?: number }): Promise<void> {
  const d = ws.getUserData();
  const roomId = data.room_id;
  const startedAt = Date.now();
  // Hold the room's live state from before the access read: that read's last_seq
  // is then a safe baseline for the live stream.
  deps.hub.hold(roomId);
  try {
    const access = await getRoomAccess(deps.db, roomId, d.userId);
    if (d.closed) return;
    if (!access) return sendError(ws, 'room_not_found', undefined, 'join_room');
    const leftAt = deps.recentLeaves.get(`${roomId}|${d.userId}`);
    if (!access.role || (leftAt !== undefined && leftAt >= startedAt)) return sendError(ws, 'not_a_member', undefined, 'join_room');
    await deps.hub.join(ws, roomId, data.last_seen_seq, access.lastSeq);
  } finally {
    deps.hub.release(roomId);
  }
}
