/**
 * The one table of error codes. HTTP replies and WebSocket error frames both come
 * from here; tests assert these codes, never message text.
 */
export const errorCodes = {
  invalid_json: { status: 400, message: 'Request body is not valid JSON' },
  invalid_payload: { status: 400, message: 'Request payload is invalid' },
  invalid_id: { status: 400, message: 'Malformed id' },
  invalid_cursor: { status: 400, message: 'Malformed cursor' },
  message_too_long: { status: 400, message: 'Message content is too long' },
  unknown_event: { status: 400, message: 'Unknown event' },
  unauthorized: { status: 401, message: 'Missing or invalid access token' },
  token_expired: { status: 401, message: 'Token expired' },
  invalid_credentials: { status: 401, message: 'Invalid credentials' },
  invalid_refresh_token: { status: 401, message: 'Invalid refresh token' },
  session_revoked: { status: 401, message: 'Session revoked' },
  refresh_token_reused: { status: 401, message: 'Refresh token reused; the session has been revoked' },
  not_a_member: { status: 403, message: 'You are not a member of this room' },
  not_room_owner: { status: 403, message: 'Only the room owner can do this' },
  not_joined: { status: 403, message: 'Join the room on this socket first' },
  room_not_found: { status: 404, message: 'Room not found' },
  session_not_found: { status: 404, message: 'Session not found' },
  not_found: { status: 404, message: 'Not found' },
  method_not_allowed: { status: 405, message: 'Method not allowed' },
  username_taken: { status: 409, message: 'Username already taken' },
  email_taken: { status: 409, message: 'Email already registered' },
  room_name_taken: { status: 409, message: 'Room name already taken' },
  owner_cannot_leave: { status: 409, message: 'The owner cannot leave the room; delete it instead' },
  payload_too_large: { status: 413, message: 'Request body too large' },
  unsupported_media_type: { status: 415, message: 'Content-Type must be application/json' },
  rate_limited: { status: 429, message: 'Too many requests' },
  internal_error: { status: 500, message: 'Internal server error' },
  unavailable: { status: 503, message: 'Service temporarily unavailable' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCodes;

/** HTTP reason phrases as the NestJS app returned them in `error`. */
const reasonPhrases: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: unknown,
  ) {
    super(message ?? errorCodes[code].message);
    this.status = errorCodes[code].status;
  }
}

export function appError(code: ErrorCode, message?: string, details?: unknown): AppError {
  return new AppError(code, message, details);
}

export interface HttpErrorBody {
  statusCode: number;
  error: string;
  message: string;
  code: ErrorCode;
  details?: unknown;
}

export function httpErrorBody(err: AppError): HttpErrorBody {
  const body: HttpErrorBody = {
    statusCode: err.status,
    error: reasonPhrases[err.status] ?? 'Error',
    message: err.message,
    code: err.code,
  };
  if (err.details !== undefined) body.details = err.details;
  return body;
}

/** Turns anything thrown into an AppError: known SQLSTATEs and connection failures get their codes. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const pgCode = (err as { code?: unknown })?.code;
  if (typeof pgCode === 'string') {
    const mapped = sqlStateCodes[pgCode] ?? (isConnectionError(pgCode) ? 'unavailable' : undefined);
    if (mapped) return new AppError(mapped);
  }
  // node-postgres reports a lost or unreachable server without a SQLSTATE.
  if (err instanceof Error && /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|Query read timeout/i.test(err.message)) {
    return new AppError('unavailable');
  }
  return new AppError('internal_error');
}

/** SQLSTATEs that mean bad input rather than a server fault. */
const sqlStateCodes: Record<string, ErrorCode> = {
  '22P02': 'invalid_payload', // invalid_text_representation (e.g. a bad uuid that slipped through)
  '22021': 'invalid_payload', // character_not_in_repertoire (NUL bytes)
  '23503': 'room_not_found', // foreign_key_violation: the room went away
  '40001': 'unavailable', // serialization_failure
  '40P01': 'unavailable', // deadlock_detected
  '57P01': 'unavailable', // admin_shutdown
  '57P02': 'unavailable',
  '57P03': 'unavailable', // cannot_connect_now
  '53300': 'unavailable', // too_many_connections
};

function isConnectionError(code: string): boolean {
  return code.startsWith('08') || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code);
}

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
