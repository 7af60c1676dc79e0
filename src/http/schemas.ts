/**
 * JSON Schemas of the HTTP API: ajv validates requests with them and the OpenAPI
 * document is generated from the same objects, so the two cannot drift.
 */
export type Schema = Record<string, unknown>;

const uuid = { type: 'string', format: 'uuid' } as const;
const isoTime = { type: 'string', format: 'date-time' } as const;

export const userSchema: Schema = {
  type: 'object',
  properties: { id: uuid, username: { type: 'string' }, email: { type: 'string' }, created_at: isoTime },
  required: ['id', 'username', 'email', 'created_at'],
};

export const authResponseSchema: Schema = {
  type: 'object',
  properties: {
    user: userSchema,
    tokens: {
      type: 'object',
      properties: { accessToken: { type: 'string' }, refreshToken: { type: 'string' } },
      required: ['accessToken', 'refreshToken'],
    },
  },
  required: ['user', 'tokens'],
};

export const registerBody: Schema = {
  type: 'object',
  properties: {
    username: { type: 'string', minLength: 3, maxLength: 32, pattern: '^[A-Za-z0-9_.-]+$' },
    email: { type: 'string', minLength: 3, maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$' },
    password: { type: 'string', minLength: 8, maxLength: 256 },
  },
  required: ['username', 'email', 'password'],
};

export const loginBody: Schema = {
  type: 'object',
  properties: {
    email: { type: 'string', minLength: 1, maxLength: 254 },
    username: { type: 'string', minLength: 1, maxLength: 64 },
    password: { type: 'string', minLength: 1, maxLength: 256 },
  },
  required: ['password'],
  anyOf: [{ required: ['email'] }, { required: ['username'] }],
};

export const refreshBody: Schema = {
  type: 'object',
  properties: { refreshToken: { type: 'string', minLength: 1, maxLength: 4096 } },
  required: ['refreshToken'],
};

export const successSchema: Schema = {
  type: 'object',
  properties: { success: { type: 'boolean' } },
  required: ['success'],
};

export const sessionSchema: Schema = {
  type: 'object',
  properties: {
    id: uuid,
    user_agent: { type: ['string', 'null'] },
    ip: { type: ['string', 'null'] },
    created_at: isoTime,
    last_used_at: isoTime,
    expires_at: isoTime,
    current: { type: 'boolean' },
  },
  required: ['id', 'created_at', 'last_used_at', 'expires_at', 'current'],
};

export const roomSchema: Schema = {
  type: 'object',
  properties: {
    id: uuid,
    name: { type: 'string' },
    description: { type: ['string', 'null'] },
    created_by: uuid,
    created_at: isoTime,
  },
  required: ['id', 'name', 'description', 'created_by', 'created_at'],
};

const roomName = { type: 'string', minLength: 1, maxLength: 100, pattern: '\\S' } as const;
const roomDescription = { type: ['string', 'null'], maxLength: 2000 } as const;

export const createRoomBody: Schema = {
  type: 'object',
  properties: { name: roomName, description: roomDescription },
  required: ['name'],
};

export const patchRoomBody: Schema = {
  type: 'object',
  properties: { name: roomName, description: roomDescription },
  minProperties: 1,
};

export const membershipSchema: Schema = {
  type: 'object',
  properties: { success: { type: 'boolean' }, room_id: uuid, role: { type: 'string', enum: ['owner', 'member'] }, changed: { type: 'boolean' } },
  required: ['success', 'room_id'],
};

export const memberSchema: Schema = {
  type: 'object',
  properties: {
    user_id: uuid,
    username: { type: 'string' },
    role: { type: 'string', enum: ['owner', 'member'] },
    joined_at: isoTime,
    online: { type: 'boolean' },
  },
  required: ['user_id', 'username', 'role', 'joined_at', 'online'],
};

export const messageSchema: Schema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    seq: { type: 'integer' },
    room_id: uuid,
    user_id: uuid,
    username: { type: 'string' },
    content: { type: 'string' },
    created_at: isoTime,
    client_msg_id: { type: 'string' },
  },
  required: ['id', 'seq', 'room_id', 'user_id', 'username', 'content', 'created_at'],
};

export const messagePageSchema: Schema = {
  type: 'object',
  properties: {
    messages: { type: 'array', items: messageSchema },
    next_cursor: { type: ['integer', 'null'] },
  },
  required: ['messages', 'next_cursor'],
};

export const postMessageBody: Schema = {
  type: 'object',
  properties: {
    content: { type: 'string', minLength: 1 },
    // No NUL: PostgreSQL text cannot hold it, and one such value would fail the
    // whole group-commit batch, other senders' messages included.
    client_msg_id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\u0000]+$' },
  },
  required: ['content'],
};

export const errorSchema: Schema = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
    code: { type: 'string' },
    details: {},
  },
  required: ['statusCode', 'error', 'message', 'code'],
};
