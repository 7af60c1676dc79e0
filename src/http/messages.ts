import { messagesAfter, messagesBefore, type StoredMessage } from '../db/messages.js';
import { AppError } from '../errors.js';
import type { HttpDeps } from './deps.js';
import { requireMember } from './rooms.js';
import { intQuery, mustUser, uuidParam, type RouteDef } from './route.js';
import { messagePageSchema, messageSchema, postMessageBody } from './schemas.js';
import { compile } from './validate.js';

const parsePost = compile<{ content: string; client_msg_id?: string }>(postMessageBody);

const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** Message bodies are JSON text straight from the database; the page is spliced, not re-encoded. */
function pageJson(rows: StoredMessage[], nextCursor: number | null): string {
  let out = '{"messages":[';
  for (let i = 0; i < rows.length; i++) out += (i ? ',' : '') + rows[i].body;
  return `${out}],"next_cursor":${nextCursor === null ? 'null' : nextCursor}}`;
}

export function messageRoutes(deps: HttpDeps): RouteDef[] {
  return [
    {
      method: 'get',
      path: '/rooms/:id/messages',
      tag: 'messages',
      summary:
        'History. Default: newest first, seq < cursor. With after_seq: oldest first, seq > after_seq. next_cursor is null at the end',
      auth: true,
      query: {
        cursor: { type: 'integer', minimum: 0 },
        limit: { type: 'integer', minimum: 1, maximum: 100, default: 50 },
        after_seq: { type: 'integer', minimum: 0 },
      },
      responses: { 200: { description: 'A page of messages', schema: messagePageSchema } },
      errors: ['invalid_id', 'invalid_cursor', 'invalid_payload', 'room_not_found', 'not_a_member'],
      async handle(ctx, input) {
        const user = mustUser(input);
        const roomId = uuidParam(ctx);
        const limit = intQuery(ctx, 'limit', { min: 1, max: 100 }) ?? 50;
        const cursor = intQuery(ctx, 'cursor', { min: 0, max: MAX_SEQ });
        const afterSeq = intQuery(ctx, 'after_seq', { min: 0, max: MAX_SEQ });
        await requireMember(deps, roomId, user.sub);
        if (afterSeq !== null) {
          const rows = await messagesAfter(deps.db, roomId, afterSeq, limit + 1);
          const more = rows.length > limit;
          const page = more ? rows.slice(0, limit) : rows;
          return { status: 200, raw: true, body: pageJson(page, more ? page[page.length - 1].seq : null) };
        }
        const rows = await messagesBefore(deps.db, roomId, cursor, limit + 1);
        const more = rows.length > limit;
        const page = more ? rows.slice(0, limit) : rows;
        return { status: 200, raw: true, body: pageJson(page, more ? page[page.length - 1].seq : null) };
      },
    },
    {
      method: 'post',
      path: '/rooms/:id/messages',
      tag: 'messages',
      summary: 'Send a message (members only). Idempotent on client_msg_id: a repeat answers 200 with the stored message',
      auth: true,
      body: postMessageBody,
      responses: {
        201: { description: 'Stored', schema: messageSchema },
        200: { description: 'Already stored under this client_msg_id', schema: messageSchema },
      },
      errors: ['invalid_id', 'invalid_payload', 'message_too_long', 'room_not_found', 'not_a_member', 'unavailable'],
      async handle(ctx, input) {
        const user = mustUser(input);
        const roomId = uuidParam(ctx);
        const body = parsePost(input.body);
        const clientMsgId = body.client_msg_id ?? null;
        const r = await deps.writer.post({ roomId, userId: user.sub, username: user.username, content: body.content, clientMsgId });
        if (r.status === 'room_not_found' || r.status === 'not_a_member') throw new AppError(r.status);
        if (r.status === 'duplicate') {
          const [stored] = await messagesAfter(deps.db, roomId, r.seq! - 1, 1);
          return { status: 200, raw: true, body: stored.body };
        }
        const message: Record<string, unknown> = {
          id: r.id,
          seq: r.seq,
          room_id: roomId,
          user_id: user.sub,
          username: user.username,
          content: body.content,
          created_at: r.created_at,
        };
        if (clientMsgId !== null) message.client_msg_id = clientMsgId;
        return { status: 201, body: message };
      },
    },
  ];
}
