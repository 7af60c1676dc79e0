/**
 * Sessions revoked while access tokens issued for them may still be unexpired.
 * Each worker keeps this small set in memory, fed by the bus ("s|<session>") and
 * loaded at start, so a revoked session's access tokens stop working everywhere
 * at once without a database read per request.
 */
export interface RevocationList {
  add(sessionId: string): void;
  has(sessionId: string): boolean;
}

export function createRevocationList(ttlMs: number, initial: Iterable<string> = []): RevocationList {
  const until = new Map<string, number>();
  const add = (sessionId: string) => {
    until.set(sessionId, Date.now() + ttlMs);
  };
  for (const id of initial) add(id);
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, t] of until) if (t < now) until.delete(id);
  }, Math.min(ttlMs, 60_000));
  sweep.unref();
  return { add, has: (sessionId) => until.has(sessionId) };
}
