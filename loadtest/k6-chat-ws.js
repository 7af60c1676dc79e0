// k6 WebSocket load test for pgchat: senders across rooms, idle receivers, churn, reconnect
// storm, typing storm and msgpack clients, with gap/duplicate/order checks and delivery
// latency. Run it with `npm run loadtest` (see loadtest/README.md for every setting).
//
// Offline on purpose: no remote imports. Protocol logic lives in ./lib (unit tested in Node).

import { buildOptions, buildPlan, describePlan, envOverridesFixture } from './lib/config.js';
import { buildSummaryOutputs } from './lib/chat-protocol.js';
import * as session from './lib/k6-session.js';

const SCRIPT = 'k6-chat-ws.js';

// open() only works in the init context, and resolves relative paths against this
// script's directory (loadtest/), not the shell's working directory.
function readFixture() {
  if (envOverridesFixture(__ENV)) return null;
  const path = __ENV.FIXTURE || './fixture.json';
  try {
    return open(path);
  } catch (e) {
    throw new Error('cannot read fixture ' + path + ' (' + e + '): run `npm run loadtest:seed` first, ' +
      'or set ACCESS_TOKEN/TOKENS and ROOM_ID/ROOM_IDS');
  }
}

const plan = buildPlan(__ENV, readFixture(), 'chat');

export const options = buildOptions(plan);

export function setup() {
  return session.checkServer(plan);
}

export function receivers() {
  session.receiver(plan);
}

export function senders() {
  session.sender(plan, 'json');
}

export function msgpack() {
  session.sender(plan, 'msgpack');
}

export function churn() {
  session.churn(plan);
}

export function reconnect() {
  session.reconnect(plan);
}

export function typing() {
  session.typing(plan);
}

export function handleSummary(data) {
  return buildSummaryOutputs(data, {
    script: SCRIPT,
    summaryDir: plan.summaryDir,
    lines: describePlan(plan, SCRIPT),
  });
}
