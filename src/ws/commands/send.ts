import { AppError } from '../../errors.js';
import type { Socket } from '../../realtime/socket.js';
import type { WsDeps } from '../deps.js';
import { sendError, sendEvent } from '../send.js';

/** Stores the message (group commit) and acks the sender only after it is committed. */
export async function sendMessage(
  deps: WsDeps,
  ws: Socket,
  data: { room_id: string; content: string; client_msg_id?: string },
): Promise<void> {
  const d = ws.getUserData();
  const clientMsgId = data.client_msg_id ?? null;
  if (!deps.intake.open) {
    // Stopping: the client retries (same client_msg_id) on the worker it reconnects to.
    return sendError(ws, 'unavailable', 'server is restarting', 'send_message', clientMsgId);
  }
  try {
    const r = await deps.writer.post({
      roomId: data.room_id,
      userId: d.userId,
      username: d.username,
      content: data.content,
      clientMsgId,
    });
    if (r.status === 'room_not_found' || r.status === 'not_a_member') {
      return sendError(ws, r.status, undefined, 'send_message', clientMsgId);
    }
    const ack: Record<string, unknown> = { room_id: data.room_id, seq: r.seq, id: r.id, created_at: r.created_at };
    if (clientMsgId !== null) ack.client_msg_id = clientMsgId;
    if (r.status === 'duplicate') ack.duplicate = true;
    sendEvent(ws, 'message_ack', ack);
  } catch (err) {
    const e = err instanceof AppError ? err : new AppError('internal_error');
    if (e.status >= 500) deps.log.warn({ code: e.code, user: d.userId }, 'send_message failed');
    // Never an ack unless committed: the client may retry with the same client_msg_id.
    sendError(ws, e.code, e.message, 'send_message', clientMsgId);
  }
}
