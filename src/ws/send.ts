import type { ErrorCode } from '../errors.js';
import { metrics } from '../metrics.js';
import type { Socket } from '../realtime/socket.js';
import { encodeError, encodeFrame } from './protocol.js';

/** Sends one event to one socket in its framing; a no-op once the socket closed. */
export function sendEvent(ws: Socket, event: string, data: unknown): void {
  const d = ws.getUserData();
  if (d.closed) return;
  // Writes after an await are corked so the frame leaves in one syscall.
  ws.cork(() => {
    ws.send(encodeFrame(d.framing, event, data), d.framing === 'msgpack');
  });
}

export function sendError(
  ws: Socket,
  code: ErrorCode,
  message: string | undefined,
  ref: string | undefined,
  clientMsgId?: string | null,
): void {
  const d = ws.getUserData();
  if (d.closed) return;
  metrics.errorFrames.inc({ code });
  ws.cork(() => {
    ws.send(encodeError(d.framing, code, message, ref, clientMsgId ?? undefined), d.framing === 'msgpack');
  });
}
