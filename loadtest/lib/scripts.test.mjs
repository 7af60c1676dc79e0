// Static checks on what k6 will load: valid ES module syntax, only constructs and imports
// k6's runtime has, and docs/forwarding that cover every variable and metric.

import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ENV_VAR_NAMES, PROFILES, buildPlan, buildScenarios, buildThresholds } from './config.js';

const LOADTEST = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const K6_FILES = [
  'k6-chat-ws.js', 'k6-message-delivery.js',
  'lib/chat-protocol.js', 'lib/config.js', 'lib/msgpack.js', 'lib/k6-session.js',
];
const read = (f) => readFileSync(join(LOADTEST, f), 'utf8');
const README = read('README.md');

/** Source without comments and string contents, for pattern checks. */
function codeOnly(src) {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:\\])\/\/.*$/gm, '$1')
    .replace(/'(?:[^'\\\n]|\\.)*'/g, "''")
    .replace(/`(?:[^`\\]|\\.)*`/g, '``');
}

test('every file k6 loads parses as an ES module', () => {
  for (const f of K6_FILES) {
    const r = spawnSync(process.execPath, ['--input-type=module', '--check'], { input: read(f), encoding: 'utf8' });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
  }
});

test('the syntax check does catch errors', () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '--check'], {
    input: "import ws from 'k6/ws';\nexport default function () { const a = ; }\n", encoding: 'utf8',
  });
  assert.notEqual(r.status, 0);
});

test('k6 files import only k6 modules and local files (k6 runs offline)', () => {
  const allowed = new Set(['k6', 'k6/ws', 'k6/http', 'k6/metrics', 'k6/execution']);
  for (const f of K6_FILES) {
    const src = read(f);
    const specs = [...src.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
    for (const s of specs) {
      assert.ok(allowed.has(s) || /^\.\.?\//.test(s), `${f} imports ${s}`);
      if (/^\.\.?\//.test(s)) assert.ok(!s.includes('test') && !s.includes('testing'), `${f} imports test code ${s}`);
    }
    if (f.startsWith('lib/') && f !== 'lib/k6-session.js') {
      assert.ok(specs.every((s) => s.startsWith('./')), `${f} must stay free of k6 imports (unit tested in Node)`);
    }
  }
});

test('k6 files avoid what k6\'s JS runtime lacks', () => {
  const banned = [
    [/\?\./, 'optional chaining'],
    [/\?\?/, 'nullish coalescing'],
    [/\b\d+n\b/, 'BigInt literal'],
    [/\bBigInt\b/, 'BigInt'],
    [/\bBuffer\b/, 'Buffer'],
    [/\bTextEncoder\b|\bTextDecoder\b/, 'TextEncoder/TextDecoder'],
    [/\bprocess\./, 'process'],
    [/\brequire\(/, 'require'],
    [/\bimport\(/, 'dynamic import'],
    [/\bstructuredClone\b/, 'structuredClone'],
    [/\bnew URL\b|\bURLSearchParams\b/, 'URL class'],
    [/\bsetTimeout\(|\bsetInterval\(/, 'global timers (use socket.setTimeout/setInterval)'],
    [/^\s*#\w|\s#\w+\s*[=;(]/m, 'private class members'],
    [/\bawait\b|\basync\b/, 'async code (k6/ws is blocking)'],
    [/\bObject\.fromEntries\b|\.flat\(|\.at\(/, 'newer built-ins'],
  ];
  for (const f of K6_FILES) {
    const code = codeOnly(read(f)).replace(/socket\.set(Timeout|Interval)\(/g, 'socket.$1(');
    for (const [re, what] of banned) {
      if (what.startsWith('global timers')) {
        const lines = code.split('\n').filter((l) => re.test(l) && !/socket\.set(Timeout|Interval)\(/.test(l));
        assert.deepEqual(lines, [], `${f} uses ${what}`);
      } else {
        assert.ok(!re.test(code), `${f} uses ${what}`);
      }
    }
  }
});

test('every variable the scripts read is known to run.mjs and documented', () => {
  const used = new Set();
  for (const f of K6_FILES) {
    for (const m of read(f).matchAll(/\b(?:__ENV|e)\.([A-Z][A-Z0-9_]+)\b/g)) used.add(m[1]);
  }
  assert.ok(used.size > 20, 'found the variables');
  for (const name of used) assert.ok(ENV_VAR_NAMES.includes(name), `${name} missing from ENV_VARS (run.mjs forwarding)`);
  for (const name of ENV_VAR_NAMES) {
    assert.ok(used.has(name), `${name} is listed but never read`);
    assert.ok(README.includes('`' + name + '`'), `${name} missing from README`);
  }
  for (const name of ['USERS', 'ROOMS_PER_USER', 'FIXTURE_OUT', 'PREFIX', 'PASSWORD', 'CONCURRENCY',
    'LOADTEST_RUNNER', 'K6_BIN', 'K6_IMAGE']) {
    assert.ok(README.includes('`' + name + '`'), `${name} missing from README`);
  }
  for (const m of read('seed.mjs').matchAll(/\benv\.([A-Z][A-Z0-9_]+)\b/g)) {
    assert.ok(README.includes('`' + m[1] + '`'), `seed variable ${m[1]} missing from README`);
  }
});

test('every custom metric is documented', () => {
  const src = read('lib/k6-session.js');
  const names = [...src.matchAll(/new (?:Counter|Trend|Rate|Gauge)\('([a-z0-9_]+)'/g)].map((m) => m[1]);
  assert.ok(names.length >= 25);
  for (const n of names) assert.ok(README.includes('`' + n + '`'), `metric ${n} missing from README`);
  // Thresholds only reference metrics that exist.
  const plan = buildPlan({}, JSON.stringify({ users: [{ accessToken: 't' }], rooms: [{ id: 'r' }] }), 'chat');
  for (const key of Object.keys(buildThresholds(plan))) {
    assert.ok(names.includes(key.split('{')[0]), `threshold on unknown metric ${key}`);
  }
});

test('each profile\'s scenarios have an exported exec function in its script', () => {
  for (const [script, profile] of [['k6-chat-ws.js', 'chat'], ['k6-message-delivery.js', 'delivery']]) {
    const src = read(script);
    const exported = new Set([...src.matchAll(/^export function (\w+)/gm)].map((m) => m[1]));
    assert.ok(exported.has('handleSummary'), `${script} exports handleSummary`);
    const plan = buildPlan({}, JSON.stringify({ users: [{ accessToken: 't' }], rooms: [{ id: 'r' }] }), profile);
    const sc = buildScenarios(plan);
    assert.deepEqual(Object.keys(sc).sort(), [...PROFILES[profile].scenarios].sort());
    for (const s of Object.values(sc)) assert.ok(exported.has(s.exec), `${script} lacks ${s.exec}`);
  }
});
