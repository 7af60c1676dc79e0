import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  DEFAULT_IMAGE, buildDockerInvocation, buildLocalInvocation, chooseRunner, forwardedEnvNames,
  mapFixtureForDocker, resolveScript,
} from '../run.mjs';

const LOADTEST = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPO = resolve(LOADTEST, '..');
const RUN = join(LOADTEST, 'run.mjs');

test('forwardedEnvNames: script variables and K6_* that are set, never the runner knobs', () => {
  const env = { BASE_URL: 'http://x', TOKENS: 'a,b', SENDERS: '', K6_VUS: '3', K6_BIN: '/k6', K6_IMAGE: 'img', HOME: '/root' };
  assert.deepEqual(forwardedEnvNames(env), ['BASE_URL', 'K6_VUS', 'TOKENS']);
});

test('resolveScript finds scripts in loadtest/ and refuses others', () => {
  assert.deepEqual(resolveScript('k6-chat-ws.js', LOADTEST), { abs: join(LOADTEST, 'k6-chat-ws.js'), rel: 'k6-chat-ws.js' });
  assert.equal(resolveScript(join(LOADTEST, 'k6-message-delivery.js'), LOADTEST).rel, 'k6-message-delivery.js');
  assert.throws(() => resolveScript('missing.js', LOADTEST), /no such script/);
  assert.throws(() => resolveScript(join(REPO, 'package.json'), LOADTEST), /outside/);
  assert.throws(() => resolveScript(undefined, LOADTEST), /usage/);
});

test('local k6 runs from the repo root with extra args before the script', () => {
  const script = resolveScript('k6-chat-ws.js', LOADTEST);
  const inv = buildLocalInvocation({ script, extraArgs: ['--vus', '2'], env: { A: '1' }, repoRoot: REPO });
  assert.equal(inv.command, 'k6');
  assert.deepEqual(inv.args, ['run', '--vus', '2', script.abs]);
  assert.equal(inv.options.cwd, REPO);
  assert.deepEqual(inv.options.env, { A: '1' });
});

test('docker invocation mounts loadtest/, uses host networking and passes env by name', () => {
  const script = resolveScript('k6-message-delivery.js', LOADTEST);
  const env = { ACCESS_TOKEN: 'secret-token', ROOM_ID: 'r', PATH: '/bin' };
  const inv = buildDockerInvocation({ script, extraArgs: ['--quiet'], env, loadtestDir: LOADTEST, uid: 1000, gid: 1000 });
  assert.equal(inv.command, 'docker');
  const a = inv.args;
  assert.deepEqual(a.slice(0, 3), ['run', '--rm', '-i']);
  assert.ok(a.join(' ').includes(`--network host -v ${LOADTEST}:/scripts -w /scripts`));
  assert.ok(a.join(' ').includes('--user 1000:1000'));
  assert.deepEqual(a.slice(-4), [DEFAULT_IMAGE, 'run', '--quiet', '/scripts/k6-message-delivery.js']);
  assert.ok(a.includes('ACCESS_TOKEN') && a.includes('ROOM_ID') && a.includes('SUMMARY_DIR'));
  assert.ok(!a.some((x) => x.includes('secret-token')), 'tokens never appear on the command line');
  assert.ok(!a.includes('PATH'));
  assert.equal(inv.options.env.SUMMARY_DIR, '.', 'container cwd is loadtest/ already');
  assert.equal(inv.options.env.ACCESS_TOKEN, 'secret-token');
  const custom = buildDockerInvocation({ script, env: { SUMMARY_DIR: 'out' }, loadtestDir: LOADTEST, image: 'grafana/k6:0.54.0', tty: true });
  assert.equal(custom.options.env.SUMMARY_DIR, 'out');
  assert.ok(custom.args.includes('-t'));
  assert.ok(custom.args.includes('grafana/k6:0.54.0'));
});

test('FIXTURE paths are mapped into the container', () => {
  assert.deepEqual(mapFixtureForDocker(undefined, LOADTEST), { value: undefined, mount: null });
  assert.deepEqual(mapFixtureForDocker('./fixture.json', LOADTEST), { value: './fixture.json', mount: null });
  assert.deepEqual(mapFixtureForDocker(join(LOADTEST, 'fx', 'a.json'), LOADTEST), { value: '/scripts/fx/a.json', mount: null });
  assert.deepEqual(mapFixtureForDocker('/data/big.json', LOADTEST), {
    value: '/fixture/big.json', mount: '/data/big.json:/fixture/big.json:ro',
  });
  const inv = buildDockerInvocation({ script: resolveScript('k6-chat-ws.js', LOADTEST), env: { FIXTURE: '/data/big.json' }, loadtestDir: LOADTEST });
  assert.ok(inv.args.join(' ').includes('-v /data/big.json:/fixture/big.json:ro'));
  assert.equal(inv.options.env.FIXTURE, '/fixture/big.json');
});

test('chooseRunner prefers local k6, then docker, and explains failures', () => {
  const probe = (ok) => (cmd, args) => ok.includes(`${cmd} ${args[0]}`);
  assert.deepEqual(chooseRunner({}, probe(['k6 version', 'docker version'])), { kind: 'k6', k6Bin: 'k6' });
  assert.deepEqual(chooseRunner({}, probe(['docker version'])), { kind: 'docker' });
  assert.deepEqual(chooseRunner({ LOADTEST_RUNNER: 'docker' }, probe(['k6 version', 'docker version'])), { kind: 'docker' });
  assert.deepEqual(chooseRunner({ K6_BIN: '/opt/k6' }, probe(['/opt/k6 version'])), { kind: 'k6', k6Bin: '/opt/k6' });
  assert.match(chooseRunner({}, probe(['docker --version'])).reason, /daemon/);
  assert.match(chooseRunner({}, probe([])).reason, /neither k6 nor docker/);
  assert.match(chooseRunner({ LOADTEST_RUNNER: 'k6' }, probe(['docker version'])).reason, /not found/);
  assert.throws(() => chooseRunner({ LOADTEST_RUNNER: 'podman' }, probe([])), /LOADTEST_RUNNER/);
});

test('CLI: without k6 or docker it prints install hints and exits 1', () => {
  const r = spawnSync(process.execPath, [RUN, 'k6-chat-ws.js'], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /neither k6 nor docker/);
  assert.match(r.stderr, /install-k6/);
});

test('CLI: runs a local k6 with the script, extra args, env and propagates its exit code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fake-k6-'));
  const out = join(dir, 'out.txt');
  const fake = join(dir, 'k6');
  writeFileSync(fake, `#!/bin/sh
if [ "$1" = "version" ]; then echo "k6 v0.0.0-fake"; exit 0; fi
printf '%s\\n' "cwd=$(pwd)" "args=$*" "rooms=$ROOM_IDS" > "${out}"
exit 99
`);
  chmodSync(fake, 0o755);
  const r = spawnSync(process.execPath, [RUN, 'k6-chat-ws.js', '--duration', '5s'], {
    encoding: 'utf8', env: { PATH: `${dir}:/usr/bin:/bin`, ROOM_IDS: 'r1,r2' },
  });
  assert.equal(r.status, 99, r.stderr);
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  assert.deepEqual(lines, [`cwd=${REPO}`, `args=run --duration 5s ${join(LOADTEST, 'k6-chat-ws.js')}`, 'rooms=r1,r2']);
});
