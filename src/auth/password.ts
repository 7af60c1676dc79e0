import { hash, verify, Algorithm } from '@node-rs/argon2';

// argon2id with OWASP's minimum profile (19 MiB, 2 passes); runs on libuv's thread
// pool, never blocking the event loop.
const options = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, options);
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

// A fixed hash to verify against when the account does not exist, so a login for an
// unknown email costs the same time as a wrong password (no account enumeration by timing).
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword('pgchat-decoy-password');
  return decoy;
}
