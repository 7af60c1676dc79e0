import { pino, type Logger } from 'pino';

/** Structured JSON logs (pino: cheap enough to leave on; hot paths log only on errors). */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } });
}

export type { Logger };
