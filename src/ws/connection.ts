import type { HttpRequest, HttpResponse, us_socket_context_t, WebSocketBehavior } from 'uWebSockets.js';
import { AppError, httpErrorBody, toAppError } from '../errors.js';
import { verifyAccessToken } from '../http/auth.js';
import { metrics } from '../metrics.js';
import type { SocketData } from '../realtime/socket.js';
import { stopTyping } from './commands/typing.js';
import type { WsDeps } from './deps.js';
import { dispatch } from './dispatch.js';
import type { Framing } from './protocol.js';

/**
 * The /ws endpoint: authenticate during the upgrade (a bad token never gets a
 * socket), then open / message / drain / close.
 */
export function createWsBehavior(deps: WsDeps): WebSocketBehavior<SocketData> {
  return {
    compression: 0,
    maxPayloadLength: deps.config.maxFrameBytes,
    idleTimeout: deps.config.wsIdleTimeoutSec,
    sendPingsAutomatically: true,
    // uWS would silently skip a socket over this limit. 0 = never skip: the hub's
    // sweep pauses slow sockets and closes (4008) those past WS_HARD_BACKPRESSURE.
    maxBackpressure: 0,

    upgrade: (res, req, context) => upgrade(deps, res, req, context),

    open(ws) {
      const d = ws.getUserData();
      deps.sockets.add(ws);
      deps.presence.socketOpened(d.userId);
      metrics.wsConnections.inc();
    },

    message(ws, message, isBinary) {
      dispatch(deps, ws, message, isBinary);
    },

    drain(ws) {
      deps.hub.onDrain(ws);
    },

    close(ws, code) {
      const d = ws.getUserData();
      if (d.typing) for (const roomId of [...d.typing.keys()]) stopTyping(deps, ws, roomId);
      d.closed = true;
      deps.sockets.delete(ws);
      deps.hub.dropSocket(ws);
      deps.presence.socketClosed(d.userId);
      metrics.wsConnections.dec();
      metrics.wsClosed.inc({ code: String(code) });
    },
  };
}

function upgrade(deps: WsDeps, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  // Everything is read from req synchronously: it is invalid after this handler returns.
  const query = new URLSearchParams(req.getQuery() ?? '');
  const authorization = req.getHeader('authorization');
  const key = req.getHeader('sec-websocket-key');
  const protocols = req.getHeader('sec-websocket-protocol');
  const extensions = req.getHeader('sec-websocket-extensions');
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
  const token = query.get('token') || bearer;
  let claims;
  try {
    if (!token) throw new AppError('unauthorized');
    claims = verifyAccessToken(deps, token);
  } catch (err) {
    const e = toAppError(err);
    res.cork(() => {
      res.writeStatus(e.status === 401 ? '401 Unauthorized' : '500 Internal Server Error');
      res.writeHeader('Content-Type', 'application/json; charset=utf-8');
      res.end(JSON.stringify(httpErrorBody(e)));
    });
    return;
  }
  const offered = protocols
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const framing: Framing = query.get('format') === 'msgpack' || offered.includes('msgpack') ? 'msgpack' : 'json';
  // A browser that offered subprotocols fails the handshake unless one is echoed back.
  const chosen = offered.includes(framing) ? framing : (offered[0] ?? '');
  const c = deps.config;
  const data: SocketData = {
    userId: claims.sub,
    username: claims.username,
    sessionId: claims.sid,
    framing,
    rooms: new Map(),
    closed: false,
    paused: false,
    sendTokens: c.wsSendBurst,
    typingTokens: c.wsTypingRatePerSec * 2,
    tokensAt: Date.now(),
    strikes: 0,
    typing: null,
  };
  res.upgrade(data, key, chosen, extensions, context);
}

