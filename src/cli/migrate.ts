import { loadConfig } from '../config.js';
import { startEmbeddedPostgres } from '../db/embedded.js';
import { migrate } from '../db/migrate.js';

/** `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database). */
const config = loadConfig();
const say = (msg: string) => process.stdout.write(`${msg}\n`);
const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres(config.dataDir, config.embeddedPgPort, say);
const applied = await migrate(config.databaseUrl || embedded!.url, say);
say(applied.length ? `applied ${applied.length} migration(s)` : 'database is up to date');
await embedded?.stop();
