import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: the nearest folder above this file that holds package.json (works from src/ and dist/src/). */
function findProjectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'migrations'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('pgchat: cannot find the project root (package.json + migrations/)');
    dir = parent;
  }
}

export const projectRoot = findProjectRoot();
export const migrationsDir = join(projectRoot, 'migrations');
