import { toAppError } from '../errors.js';
import type { Socket } from '../realtime/socket.js';
import { joinRoom } from './commands/join.js';
import { leaveRoom } from './commands/leave.js';
import { sendMessage } from './commands/send.js';
import { startTyping, stopTyping } from './commands/typing.js';
import type { WsDeps } from './deps.js';
import { CloseCode, FrameError, parseClientFrame, type ClientFrame } from './protocol.js';
import { sendError } from './send.js';

/**
 * One frame in: parse, rate-limit, run the command. An app error becomes an
 * error frame and the socket stays; abuse (a flood) closes it.
 */
export function dispatch(deps: WsDeps, ws: Socket, message: ArrayBuffer, isBinary: boolean): void {
  const d = ws.getUserData();
  let frame: ClientFrame;
  try {
    frame = parseClientFrame(message, isBinary, d.framing);
  } catch (err) {
    const e = err instanceof FrameError ? err : new FrameError('invalid_payload', 'invalid frame', undefined);
    sendError(ws, e.code, e.message, e.ref);
    return;
  }
  if (!takeToken(deps, ws, frame.event)) return;
  switch (frame.event) {
    case 'send_message':
      void sendMessage(deps, ws, frame.data);
      return;
    case 'join_room':
      joinRoom(deps, ws, frame.data).catch((err) => failed(deps, ws, err, 'join_room'));
      return;
    case 'leave_room':
      leaveRoom(deps, ws, frame.data);
      return;
    case 'typing_start':
      startTyping(deps, ws, frame.data);
      return;
    case 'typing_stop':
      stopTyping(deps, ws, frame.data.room_id, 'typing_stop');
      return;
  }
}

function failed(deps: WsDeps, ws: Socket, err: unknown, ref: string): void {
  const e = toAppError(err);
  if (e.status >= 500) deps.log.warn({ err: (err as Error)?.message, ref }, 'command failed');
  sendError(ws, e.code, e.message, ref);
}

/** Token buckets per socket: typing has its own, everything else shares the send bucket. */
function takeToken(deps: WsDeps, ws: Socket, event: ClientFrame['event']): boolean {
  const d = ws.getUserData();
  const c = deps.config;
  const now = Date.now();
  const elapsed = (now - d.tokensAt) / 1000;
  d.tokensAt = now;
  d.sendTokens = Math.min(c.wsSendBurst, d.sendTokens + elapsed * c.wsSendRatePerSec);
  d.typingTokens = Math.min(c.wsTypingRatePerSec * 2, d.typingTokens + elapsed * c.wsTypingRatePerSec);
  const typing = event === 'typing_start' || event === 'typing_stop';
  const ok = typing ? d.typingTokens >= 1 : d.sendTokens >= 1;
  if (ok) {
    if (typing) d.typingTokens -= 1;
    else d.sendTokens -= 1;
    d.strikes = 0;
    return true;
  }
  if (++d.strikes >= c.wsFloodStrikes) {
    ws.end(CloseCode.flood, 'flood');
    return false;
  }
  sendError(ws, 'rate_limited', undefined, event);
  return false;
}
