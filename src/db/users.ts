import { AppError, isUniqueViolation } from '../errors.js';
import type { Queryable } from './pool.js';

export interface User {
  id: string;
  username: string;
  email: string;
  created_at: string;
}

export interface UserWithHash extends User {
  password_hash: string;
}

const USER_COLUMNS = 'id, username, email, pgchat_iso(created_at) AS created_at';

export async function insertUser(
  db: Queryable,
  u: { id: string; username: string; email: string; passwordHash: string },
): Promise<User> {
  try {
    const { rows } = await db.query<User>(
      `INSERT INTO users (id, username, email, password_hash) VALUES ($1, $2, $3, $4) RETURNING ${USER_COLUMNS}`,
      [u.id, u.username, u.email, u.passwordHash],
    );
    return rows[0];
  } catch (err) {
    if (isUniqueViolation(err, 'users_username_key')) throw new AppError('username_taken');
    if (isUniqueViolation(err, 'users_email_key')) throw new AppError('email_taken');
    throw err;
  }
}

export async function findUserForLogin(
  db: Queryable,
  by: { email?: string; username?: string },
): Promise<UserWithHash | undefined> {
  const [column, value] = by.email !== undefined ? ['email', by.email] : ['username', by.username ?? ''];
  const { rows } = await db.query<UserWithHash>(
    `SELECT ${USER_COLUMNS}, password_hash FROM users WHERE lower(${column}) = lower($1)`,
    [value],
  );
  return rows[0];
}

export async function findUserById(db: Queryable, id: string): Promise<User | undefined> {
  const { rows } = await db.query<User>(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id]);
  return rows[0];
}
