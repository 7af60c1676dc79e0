#!/usr/bin/env node
// Runs a k6 script from loadtest/ with a local k6 if there is one, else with the grafana/k6
// Docker image. Extra arguments go to `k6 run` unchanged:
//
//   node loadtest/run.mjs k6-chat-ws.js [k6 flags...]
//
// Runner choice: LOADTEST_RUNNER=k6|docker forces one; K6_BIN names the k6 binary;
// K6_IMAGE overrides the image (default grafana/k6:latest).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { ENV_VAR_NAMES } from './lib/config.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '..');
const CONTAINER_DIR = '/scripts';

export const DEFAULT_IMAGE = 'grafana/k6:latest';

/** Variables forwarded into the container: everything the scripts read, plus k6's own K6_*. */
export function forwardedEnvNames(env) {
  const names = new Set(ENV_VAR_NAMES);
  for (const k of Object.keys(env)) {
    if (k.startsWith('K6_') && k !== 'K6_BIN' && k !== 'K6_IMAGE') names.add(k);
  }
  return [...names].filter((k) => env[k] !== undefined && env[k] !== '').sort();
}

/** Resolves the script argument to a file inside loadtest/. */
export function resolveScript(arg, loadtestDir = HERE) {
  if (!arg) throw new Error('usage: node loadtest/run.mjs <script.js> [k6 run flags...]');
  const candidates = isAbsolute(arg) ? [arg] : [resolve(loadtestDir, arg), resolve(process.cwd(), arg)];
  for (const c of candidates) {
    if (existsSync(c)) {
      const rel = relative(loadtestDir, c);
      if (rel.startsWith('..') || isAbsolute(rel)) {
        throw new Error(`${arg} is outside ${loadtestDir}: the scripts import ./lib and must live there`);
      }
      return { abs: c, rel: rel.split(sep).join('/') };
    }
  }
  throw new Error(`no such script: ${arg} (looked in ${loadtestDir})`);
}

/** Local k6: run from the repo root so the default SUMMARY_DIR=loadtest lands in loadtest/. */
export function buildLocalInvocation({ script, extraArgs = [], env, k6Bin = 'k6', repoRoot = REPO_ROOT }) {
  return {
    command: k6Bin,
    args: ['run', ...extraArgs, script.abs],
    options: { cwd: repoRoot, env, stdio: 'inherit' },
  };
}

/**
 * Maps FIXTURE for the container: k6 resolves a relative path against the script's
 * directory, which is the mounted loadtest/ either way; an absolute host path inside
 * loadtest/ is rewritten, and one outside is mounted read-only at /fixture/.
 */
export function mapFixtureForDocker(fixture, loadtestDir) {
  if (!fixture || !isAbsolute(fixture)) return { value: fixture, mount: null };
  const rel = relative(loadtestDir, fixture);
  if (!rel.startsWith('..') && !isAbsolute(rel)) {
    return { value: `${CONTAINER_DIR}/${rel.split(sep).join('/')}`, mount: null };
  }
  const target = `/fixture/${basename(fixture)}`;
  return { value: target, mount: `${fixture}:${target}:ro` };
}

/**
 * docker run for grafana/k6. Variables are passed as bare `-e NAME` so tokens never show up
 * in the process list; docker reads their values from the environment we give it.
 */
export function buildDockerInvocation({
  script, extraArgs = [], env, loadtestDir = HERE, image = DEFAULT_IMAGE, uid, gid, tty = false,
}) {
  const childEnv = { ...env };
  // The container's working directory is the mounted loadtest/, so summaries go to '.'
  // unless the caller chose a directory (relative to loadtest/ then).
  if (childEnv.SUMMARY_DIR === undefined || childEnv.SUMMARY_DIR === '') childEnv.SUMMARY_DIR = '.';
  const fx = mapFixtureForDocker(childEnv.FIXTURE, loadtestDir);
  if (fx.value) childEnv.FIXTURE = fx.value;
  const args = ['run', '--rm', '-i'];
  if (tty) args.push('-t');
  args.push('--network', 'host', '-v', `${loadtestDir}:${CONTAINER_DIR}`, '-w', CONTAINER_DIR);
  if (fx.mount) args.push('-v', fx.mount);
  // Run as the invoking user so summary files are not owned by the image's user (and the
  // image's user can write to the bind mount at all).
  if (uid !== undefined && gid !== undefined) args.push('--user', `${uid}:${gid}`);
  for (const name of forwardedEnvNames(childEnv)) args.push('-e', name);
  args.push(image, 'run', ...extraArgs, `${CONTAINER_DIR}/${script.rel}`);
  return { command: 'docker', args, options: { cwd: REPO_ROOT, env: childEnv, stdio: 'inherit' } };
}

function works(command, args) {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

export function chooseRunner(env, probe = works) {
  const forced = env.LOADTEST_RUNNER;
  const k6Bin = env.K6_BIN || 'k6';
  if (forced && forced !== 'k6' && forced !== 'docker') {
    throw new Error(`LOADTEST_RUNNER must be k6 or docker, got ${forced}`);
  }
  if (forced !== 'docker' && probe(k6Bin, ['version'])) return { kind: 'k6', k6Bin };
  if (forced === 'k6') return { kind: 'none', reason: `${k6Bin} not found or not runnable` };
  if (probe('docker', ['version'])) return { kind: 'docker' };
  if (probe('docker', ['--version'])) {
    return { kind: 'none', reason: 'docker is installed but its daemon is not reachable (is it running? are you in the docker group?)' };
  }
  return { kind: 'none', reason: 'neither k6 nor docker was found on PATH' };
}

const INSTALL_HINTS = `Install one of:
  k6      https://grafana.com/docs/k6/latest/set-up/install-k6/
          (macOS: brew install k6; Debian/Ubuntu: the k6 apt repository; Windows: winget install k6)
  docker  https://docs.docker.com/get-docker/  (then this script runs the grafana/k6 image)
Or point K6_BIN at a k6 binary.`;

export async function main(argv = process.argv.slice(2), env = process.env) {
  const [scriptArg, ...extraArgs] = argv;
  const script = resolveScript(scriptArg);
  const runner = chooseRunner(env);
  let inv;
  if (runner.kind === 'k6') {
    inv = buildLocalInvocation({ script, extraArgs, env: { ...env }, k6Bin: runner.k6Bin });
    console.error(`[loadtest] ${runner.k6Bin} run ${script.rel} (cwd ${REPO_ROOT})`);
  } else if (runner.kind === 'docker') {
    inv = buildDockerInvocation({
      script, extraArgs, env: { ...env }, image: env.K6_IMAGE || DEFAULT_IMAGE,
      uid: process.getuid ? process.getuid() : undefined,
      gid: process.getgid ? process.getgid() : undefined,
      tty: !!process.stdout.isTTY && !!process.stdin.isTTY,
    });
    console.error(`[loadtest] no local k6: docker run ${env.K6_IMAGE || DEFAULT_IMAGE} run ${script.rel}`);
  } else {
    console.error(`[loadtest] cannot run k6: ${runner.reason}.\n${INSTALL_HINTS}`);
    return 1;
  }
  return await new Promise((resolveExit) => {
    const child = spawn(inv.command, inv.args, inv.options);
    // Ctrl-C already reaches k6 (same process group); forwarding it again would make k6
    // abort hard and skip handleSummary. So SIGINT is only swallowed here, SIGTERM forwarded.
    const ignore = () => {};
    const forward = (sig) => { if (!child.killed) child.kill(sig); };
    process.on('SIGINT', ignore);
    process.on('SIGTERM', forward);
    child.on('error', (err) => {
      console.error(`[loadtest] failed to start ${inv.command}: ${err.message}`);
      resolveExit(1);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', forward);
      // k6 exits 99 when thresholds fail; keep its code so CI can tell.
      resolveExit(code === null ? (signal === 'SIGINT' ? 130 : 1) : code);
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().then(
    (code) => { process.exitCode = code; },
    (err) => {
      console.error(`[loadtest] ${err && err.message ? err.message : err}`);
      process.exitCode = 1;
    },
  );
}
