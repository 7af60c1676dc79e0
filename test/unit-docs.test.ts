import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { settings } from '../src/config.js';
import { errorCodes } from '../src/errors.js';
import { CloseCode } from '../src/ws/protocol.js';
import { projectRoot } from '../src/paths.js';

const read = (file: string) => readFileSync(join(projectRoot, file), 'utf8');

test('README and .env.example list every setting with its default', () => {
  const readme = read('README.md');
  const example = read('.env.example');
  for (const [key, s] of Object.entries(settings)) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
    assert.ok(row, `README lacks ${key}`);
    if (s.def !== '') assert.ok(row.includes(`\`${s.def}\``), `README default of ${key}`);
    assert.match(example, new RegExp(`^# ${key}=${s.def.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), `.env.example lacks ${key}`);
  }
});

test('docs/protocol.md documents every close code and every WebSocket error code', () => {
  const doc = read('docs/protocol.md');
  for (const [name, code] of Object.entries(CloseCode)) assert.match(doc, new RegExp(`^\\| [^|]*\\b${code}\\b[^|]*\\|`, "m"), `close code ${name} (${code})`);
  for (const code of ['invalid_json', 'invalid_payload', 'invalid_id', 'unknown_event', 'message_too_long', 'not_a_member', 'room_not_found', 'not_joined', 'rate_limited', 'unavailable']) {
    assert.ok(code in errorCodes, code);
    assert.ok(doc.includes(`\`${code}\``), `docs/protocol.md lacks ${code}`);
  }
});
