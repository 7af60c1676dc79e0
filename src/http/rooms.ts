import { createRoom, deleteRoom, getRoom, getRoomAccess, joinRoom, leaveRoom, listMembers, listRooms, updateRoom } from '../db/rooms.js';
import { AppError } from '../errors.js';
import { isUuid, uuidv7 } from '../ids.js';
import type { HttpDeps } from './deps.js';
import { intQuery, mustUser, uuidParam, type RouteDef } from './route.js';
import { createRoomBody, memberSchema, membershipSchema, patchRoomBody, roomSchema, successSchema } from './schemas.js';
import { compile } from './validate.js';

const parseCreate = compile<{ name: string; description?: string | null }>(createRoomBody);
const parsePatch = compile<{ name?: string; description?: string | null }>(patchRoomBody);

/** Without ?limit, GET /rooms answers like the original app (a plain array), capped here. */
const UNPAGED_ROOM_CAP = 1000;

export async function requireMember(deps: Pick<HttpDeps, 'db'>, roomId: string, userId: string): Promise<number> {
  const access = await getRoomAccess(deps.db, roomId, userId);
  if (!access) throw new AppError('room_not_found');
  if (!access.role) throw new AppError('not_a_member');
  return access.lastSeq;
}

export function roomRoutes(deps: HttpDeps): RouteDef[] {
  return [
    {
      method: 'post',
      path: '/rooms',
      tag: 'rooms',
      summary: 'Create a room; you become its owner and a member',
      auth: true,
      body: createRoomBody,
      responses: { 201: { description: 'Created', schema: roomSchema } },
      errors: ['invalid_payload', 'room_name_taken'],
      async handle(_ctx, input) {
        const user = mustUser(input);
        const body = parseCreate(input.body);
        const room = await createRoom(deps.db, {
          id: uuidv7(),
          name: body.name.trim(),
          description: body.description ?? null,
          createdBy: user.sub,
        });
        return { status: 201, body: room };
      },
    },
    {
      method: 'get',
      path: '/rooms',
      tag: 'rooms',
      summary: 'List rooms (array). With ?limit, paged: the X-Next-Cursor header carries the next ?cursor',
      auth: true,
      query: { limit: { type: 'integer', minimum: 1, maximum: 100 }, cursor: { type: 'string', format: 'uuid' } },
      responses: { 200: { description: 'Rooms in creation order', schema: { type: 'array', items: roomSchema } } },
      errors: ['invalid_cursor', 'invalid_payload'],
      async handle(ctx, input) {
        mustUser(input);
        const limit = intQuery(ctx, 'limit', { min: 1, max: 100 }) ?? UNPAGED_ROOM_CAP;
        const cursor = ctx.query.get('cursor') || undefined;
        if (cursor !== undefined && !isUuid(cursor)) throw new AppError('invalid_cursor');
        const rows = await listRooms(deps.db, { limit: limit + 1, after: cursor });
        const more = rows.length > limit;
        const page = more ? rows.slice(0, limit) : rows;
        if (more) ctx.headers = { 'X-Next-Cursor': page[page.length - 1].id, 'Access-Control-Expose-Headers': 'X-Next-Cursor' };
        return { status: 200, body: page };
      },
    },
    {
      method: 'get',
      path: '/rooms/:id',
      tag: 'rooms',
      summary: 'Get a room',
      auth: true,
      responses: { 200: { description: 'The room', schema: roomSchema } },
      errors: ['invalid_id', 'room_not_found'],
      async handle(ctx, input) {
        mustUser(input);
        const room = await getRoom(deps.db, uuidParam(ctx));
        if (!room) throw new AppError('room_not_found');
        return { status: 200, body: room };
      },
    },
    {
      method: 'patch',
      path: '/rooms/:id',
      tag: 'rooms',
      summary: 'Rename or describe a room (owner only)',
      auth: true,
      body: patchRoomBody,
      responses: { 200: { description: 'Updated room', schema: roomSchema } },
      errors: ['invalid_id', 'invalid_payload', 'room_not_found', 'not_room_owner', 'room_name_taken'],
      async handle(ctx, input) {
        const user = mustUser(input);
        const id = uuidParam(ctx);
        const body = parsePatch(input.body);
        const room = await updateRoom(deps.db, id, user.sub, { name: body.name?.trim(), description: body.description });
        return { status: 200, body: room };
      },
    },
    {
      method: 'del',
      path: '/rooms/:id',
      tag: 'rooms',
      summary: 'Delete a room with its messages (owner only); live sockets are told and unsubscribed',
      auth: true,
      responses: { 200: { description: 'Deleted', schema: successSchema } },
      errors: ['invalid_id', 'room_not_found', 'not_room_owner'],
      async handle(ctx, input) {
        const user = mustUser(input);
        await deleteRoom(deps.db, uuidParam(ctx), user.sub);
        return { status: 200, body: { success: true } };
      },
    },
    {
      method: 'post',
      path: '/rooms/:id/join',
      tag: 'rooms',
      summary: 'Become a member (idempotent: 201 when joined now, 200 when already a member)',
      auth: true,
      responses: {
        200: { description: 'Already a member', schema: membershipSchema },
        201: { description: 'Joined', schema: membershipSchema },
      },
      errors: ['invalid_id', 'room_not_found'],
      async handle(ctx, input) {
        const user = mustUser(input);
        const roomId = uuidParam(ctx);
        const r = await joinRoom(deps.db, roomId, user.sub, user.username);
        return { status: r.joined ? 201 : 200, body: { success: true, room_id: roomId, role: r.role, changed: r.joined } };
      },
    },
    {
      method: 'post',
      path: '/rooms/:id/leave',
      tag: 'rooms',
      summary: 'Stop being a member (idempotent); your live sockets leave the room on every host',
      auth: true,
      responses: { 200: { description: 'Left (or was not a member)', schema: membershipSchema } },
      errors: ['invalid_id', 'room_not_found', 'owner_cannot_leave'],
      async handle(ctx, input) {
        const user = mustUser(input);
        const roomId = uuidParam(ctx);
        const r = await leaveRoom(deps.db, roomId, user.sub, user.username);
        return { status: 200, body: { success: true, room_id: roomId, changed: r.left } };
      },
    },
    {
      method: 'get',
      path: '/rooms/:id/members',
      tag: 'rooms',
      summary: 'Members with their online flag (members only)',
      auth: true,
      responses: { 200: { description: 'Members', schema: { type: 'array', items: memberSchema } } },
      errors: ['invalid_id', 'room_not_found', 'not_a_member'],
      async handle(ctx, input) {
        const user = mustUser(input);
        const roomId = uuidParam(ctx);
        await requireMember(deps, roomId, user.sub);
        return { status: 200, body: await listMembers(deps.db, roomId) };
      },
    },
  ];
}
