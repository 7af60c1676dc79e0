import { Ajv, type ValidateFunction } from 'ajv';
import { Packr } from 'msgpackr';
import { AppError, errorCodes, type ErrorCode } from '../errors.js';

/**
 * The wire protocol of /ws, in one place: frame types each way, parsing and
 * validation (JSON text or msgpack binary), encoding, close codes. Handlers get
 * typed frames and never parse anything themselves.
 */

export type Framing = 'json' | 'msgpack';

export type ClientFrame =
  | { event: 'join_room'; data: { room_id: string; last_seen_seq?: number } }
  | { event: 'leave_room'; data: { room_id: string } }
  | { event: 'send_message'; data: { room_id: string; content: string; client_msg_id?: string } }
  | { event: 'typing_start'; data: { room_id: string } }
  | { event: 'typing_stop'; data: { room_id: string } };

export type ClientEvent = ClientFrame['event'];

/**
 * Close codes. 4000-4499: reconnect (with backoff) and resume with last_seen_seq.
 * 4500-4999: do not reconnect with the same credentials.
 */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001, // server stopping or restarting: reconnect (another worker/host takes over)
  tooBig: 1009, // frame larger than MAX_FRAME_BYTES (uWS closes by itself)
  slowConsumer: 4008, // buffered beyond WS_HARD_BACKPRESSURE: reconnect with last_seen_seq
  flood: 4429, // kept sending after rate_limited errors: reconnect after a backoff
  sessionRevoked: 4501, // logout / revoked session / refresh-token reuse: log in again
} as const;

const ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false });
const uuidPattern = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const roomId = { type: 'string', pattern: uuidPattern };
const seq = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };

const dataSchemas: Record<ClientEvent, object> = {
  join_room: { type: 'object', properties: { room_id: roomId, last_seen_seq: seq }, required: ['room_id'] },
  leave_room: { type: 'object', properties: { room_id: roomId }, required: ['room_id'] },
  send_message: {
    type: 'object',
    properties: { room_id: roomId, content: { type: 'string' }, client_msg_id: { type: 'string', minLength: 1, maxLength: 64 } },
    required: ['room_id', 'content'],
  },
  typing_start: { type: 'object', properties: { room_id: roomId }, required: ['room_id'] },
  typing_stop: { type: 'object', properties: { room_id: roomId }, required: ['room_id'] },
};

const validators = Object.fromEntries(
  Object.entries(dataSchemas).map(([event, schema]) => [event, ajv.compile(schema)]),
) as Record<ClientEvent, ValidateFunction>;

export class FrameError extends AppError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly ref: string | undefined,
  ) {
    super(code, message);
  }
}

// Records and maps both become plain objects; no structure sharing, so frames stay plain msgpack.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses and validates one client frame; throws FrameError with a stable code. */
export function parseClientFrame(message: ArrayBuffer, isBinary: boolean, framing: Framing): ClientFrame {
  let frame: unknown;
  if (framing === 'msgpack') {
    if (!isBinary) throw new FrameError('invalid_payload', 'this socket speaks msgpack: send binary frames', undefined);
    try {
      frame = packr.unpack(new Uint8Array(message));
    } catch {
      throw new FrameError('invalid_payload', 'frame is not valid msgpack', undefined);
    }
  } else {
    let text: string;
    try {
      text = utf8.decode(message);
    } catch {
      throw new FrameError('invalid_json', 'frame is not valid UTF-8 JSON', undefined);
    }
    try {
      frame = JSON.parse(text);
    } catch {
      throw new FrameError('invalid_json', 'frame is not valid JSON', undefined);
    }
  }
  if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
    throw new FrameError('invalid_payload', 'a frame is an object {event, data}', undefined);
  }
  const { event, data } = frame as { event?: unknown; data?: unknown };
  if (typeof event !== 'string') throw new FrameError('invalid_payload', 'event must be a string', undefined);
  const validate = Object.hasOwn(validators, event) ? validators[event as ClientEvent] : undefined;
  if (!validate) throw new FrameError('unknown_event', `unknown event ${JSON.stringify(event.slice(0, 64))}`, event.slice(0, 64));
  if (!validate(data)) {
    const e = validate.errors?.[0];
    const field = e?.instancePath ? e.instancePath.slice(1) : (e?.params as { missingProperty?: string })?.missingProperty;
    const code: ErrorCode = field === 'room_id' && e?.keyword === 'pattern' ? 'invalid_id' : 'invalid_payload';
    throw new FrameError(code, field ? `data.${field} ${e?.message}` : `data ${e?.message ?? 'is invalid'}`, event);
  }
  const typed = data as { room_id: string };
  typed.room_id = typed.room_id.toLowerCase();
  return { event, data } as ClientFrame;
}

/** An encoded frame: a string for JSON sockets, bytes for msgpack ones. */
export type Encoded = string | Uint8Array;

export function encodeFrame(framing: Framing, event: string, data: unknown): Encoded {
  return framing === 'json' ? JSON.stringify({ event, data }) : packr.pack({ event, data });
}

/** Message bodies arrive as JSON text from the database: JSON frames splice them, msgpack parses once. */
export function encodeMessages(framing: Framing, bodies: readonly string[]): Encoded {
  if (framing === 'json') {
    return bodies.length === 1
      ? `{"event":"new_message","data":${bodies[0]}}`
      : `{"event":"new_message_batch","data":[${bodies.join(',')}]}`;
  }
  return bodies.length === 1
    ? packr.pack({ event: 'new_message', data: JSON.parse(bodies[0]) })
    : packr.pack({ event: 'new_message_batch', data: bodies.map((b) => JSON.parse(b)) });
}

export function encodeHistory(
  framing: Framing,
  roomId: string,
  bodies: readonly string[],
  nextCursor: number | null,
  hasMore: boolean,
): Encoded {
  if (framing === 'json') {
    return `{"event":"history","data":{"room_id":"${roomId}","messages":[${bodies.join(',')}],"next_cursor":${
      nextCursor === null ? 'null' : nextCursor
    },"has_more":${hasMore}}}`;
  }
  return packr.pack({
    event: 'history',
    data: { room_id: roomId, messages: bodies.map((b) => JSON.parse(b)), next_cursor: nextCursor, has_more: hasMore },
  });
}

export function encodeError(
  framing: Framing,
  code: ErrorCode,
  message: string | undefined,
  ref: string | undefined,
  clientMsgId?: string,
): Encoded {
  const data: { message: string; code: ErrorCode; ref?: string; client_msg_id?: string } = {
    message: message ?? errorCodes[code].message,
    code,
  };
  if (ref !== undefined) data.ref = ref;
  // Lets a client with several sends in flight tell which one failed.
  if (clientMsgId !== undefined) data.client_msg_id = clientMsgId;
  return encodeFrame(framing, 'error', data);
}

/** Decodes a server frame (tests and tools). */
export function decodeServerFrame(message: ArrayBuffer | Uint8Array | string, isBinary: boolean): { event: string; data: any } {
  if (typeof message === 'string') return JSON.parse(message);
  const bytes = message instanceof Uint8Array ? message : new Uint8Array(message);
  return isBinary ? packr.unpack(bytes) : JSON.parse(Buffer.from(bytes).toString('utf8'));
}
