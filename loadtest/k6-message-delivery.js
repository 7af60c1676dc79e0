// k6 delivery test for pgchat: only senders and idle receivers, tuned to measure delivery
// ratio and latency (same metrics, thresholds and library as k6-chat-ws.js).
// Run it with `npm run loadtest:delivery` (see loadtest/README.md).

import { buildOptions, buildPlan, describePlan, envOverridesFixture } from './lib/config.js';
import { buildSummaryOutputs } from './lib/chat-protocol.js';
import * as session from './lib/k6-session.js';

const SCRIPT = 'k6-message-delivery.js';

// open() resolves relative paths against this script's directory (loadtest/).
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

const plan = buildPlan(__ENV, readFixture(), 'delivery');

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

export function handleSummary(data) {
  return buildSummaryOutputs(data, {
    script: SCRIPT,
    summaryDir: plan.summaryDir,
    lines: describePlan(plan, SCRIPT),
  });
}
