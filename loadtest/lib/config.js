// Turns environment variables and the seed fixture into a run plan, and the plan into k6
// scenarios and thresholds. Pure (no k6 or Node imports) so it is unit tested, and shared by
// run.mjs (the list of variables to forward into the k6 container).

// Every variable the scripts read. run.mjs forwards exactly these (plus K6_*) to docker,
// and a unit test checks the scripts read nothing that is missing here or in the README.
export const ENV_VARS = [
  ['BASE_URL', 'HTTP base URL of the server (default http://localhost:3000, or the fixture\'s)'],
  ['WS_URL', 'WebSocket URL (default derived from BASE_URL: ws://localhost:3000/ws)'],
  ['NODE_URLS', 'comma-separated WebSocket URLs of several nodes; VUs spread over them'],
  ['FIXTURE', 'seed fixture path for k6 open() (default ./fixture.json, next to the script)'],
  ['ACCESS_TOKEN', 'one access token (compat; overrides fixture users)'],
  ['TOKENS', 'comma-separated access tokens (compat; overrides fixture users)'],
  ['ROOM_ID', 'one room id (compat; overrides fixture rooms)'],
  ['ROOM_IDS', 'comma-separated room ids (compat; overrides fixture rooms)'],
  ['ROOMS', 'use only the first N rooms'],
  ['SCENARIOS', 'comma-separated subset of scenarios to run'],
  ['WARMUP', 'time receivers get to connect before senders start (default 5s)'],
  ['DURATION', 'sending phase length (default 30s chat, 60s delivery)'],
  ['DRAIN', 'time receivers stay connected after senders stop (default 5s chat, 10s delivery)'],
  ['SENDERS', 'sender VUs (JSON framing)'],
  ['RECEIVERS', 'idle receiver VUs (measured for delivery)'],
  ['MESSAGE_INTERVAL_MS', 'delay between two sends of one sender'],
  ['MESSAGES_PER_VU', 'stop a sender after N messages (0 = until DURATION ends)'],
  ['MESSAGE_BYTES', 'pad message content to this many bytes'],
  ['CHURN_RATE', 'churn: connect/join/leave/disconnect cycles started per second'],
  ['CHURN_HOLD_MS', 'churn: time a churn client stays joined'],
  ['CHURN_MAX_VUS', 'churn: VU cap of the arrival-rate executor'],
  ['RECONNECTORS', 'reconnect storm VUs'],
  ['RECONNECT_PERIOD_MS', 'reconnect storm: all reconnectors drop at each multiple of this'],
  ['TYPERS', 'typing storm VUs'],
  ['TYPING_INTERVAL_MS', 'typing storm: delay between typing_start/typing_stop frames'],
  ['MSGPACK_CLIENTS', 'sender VUs using ?format=msgpack binary framing'],
  ['JOIN_TIMEOUT_MS', 'time to wait for joined_room before giving up on a connection'],
  ['LATENCY_P95_MS', 'threshold on delivery_latency p(95)'],
  ['LATENCY_P99_MS', 'threshold on delivery_latency p(99)'],
  ['CONNECT_P95_MS', 'threshold on ws_connect_time p(95)'],
  ['CONNECT_SUCCESS_MIN', 'threshold on ws_connect_success rate'],
  ['EXPECTED_ERROR_CODES', 'error frame codes that do not fail the run (besides per-scenario ones)'],
  ['VERIFY_HTTP', 'receivers compare what they got with GET /rooms/:id/messages after the drain (1/0)'],
  ['JOIN_VIA_HTTP', 'POST /rooms/:id/join before connecting (default: on when membership is unknown)'],
  ['SUMMARY_DIR', 'where handleSummary writes summary.json/.txt, relative to k6\'s cwd (default loadtest)'],
  ['VERBOSE', 'log per-VU details (1/0)'],
];

export const ENV_VAR_NAMES = ENV_VARS.map(function (e) { return e[0]; });

// Profiles: the chat script exercises everything, the delivery script only measures delivery.
export const PROFILES = {
  chat: {
    scenarios: ['receivers', 'senders', 'churn', 'reconnect', 'typing', 'msgpack'],
    WARMUP: '5s', DURATION: '30s', DRAIN: '5s',
    SENDERS: 10, RECEIVERS: 20, MESSAGE_INTERVAL_MS: 250,
    CHURN_RATE: 2, CHURN_HOLD_MS: 2000, CHURN_MAX_VUS: 30,
    RECONNECTORS: 5, RECONNECT_PERIOD_MS: 5000,
    TYPERS: 5, TYPING_INTERVAL_MS: 400,
    MSGPACK_CLIENTS: 2,
  },
  delivery: {
    scenarios: ['receivers', 'senders'],
    WARMUP: '5s', DURATION: '60s', DRAIN: '10s',
    SENDERS: 10, RECEIVERS: 50, MESSAGE_INTERVAL_MS: 100,
    CHURN_RATE: 0, CHURN_HOLD_MS: 2000, CHURN_MAX_VUS: 30,
    RECONNECTORS: 0, RECONNECT_PERIOD_MS: 5000,
    TYPERS: 0, TYPING_INTERVAL_MS: 400,
    MSGPACK_CLIENTS: 0,
  },
};

// Error codes a scenario provokes on purpose or may legitimately see.
export const SCENARIO_EXPECTED_ERRORS = {
  typing: ['rate_limited'], // typing is throttled by design
  churn: [],
  reconnect: [],
  receivers: [],
  senders: [],
  msgpack: [],
};

// Codes listed in PROTOCOL.md; each gets a sub-metric so the summary can break errors down.
export const KNOWN_ERROR_CODES = [
  'invalid_payload', 'not_a_member', 'room_not_found', 'rate_limited', 'message_too_long',
  'unauthorized', 'unknown_event', 'internal_error',
];

// ------------------------------------------------------------------ small parsers

export function parseDuration(v, fallbackSeconds) {
  if (v === undefined || v === null || v === '') return fallbackSeconds;
  if (typeof v === 'number') return v;
  const s = String(v).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  let m;
  while ((m = re.exec(s)) !== null) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n / 1000 : m[2] === 's' ? n : m[2] === 'm' ? n * 60 : n * 3600;
    consumed += m[0].length;
  }
  if (consumed !== s.length || consumed === 0) throw new Error('invalid duration: ' + v);
  return total;
}

export function parseIntEnv(v, fallback, name) {
  if (v === undefined || v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error((name || 'value') + ' must be a non-negative number, got ' + v);
  return Math.floor(n);
}

export function parseFloatEnv(v, fallback, name) {
  if (v === undefined || v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error((name || 'value') + ' must be a number, got ' + v);
  return n;
}

export function parseBool(v, fallback) {
  if (v === undefined || v === null || v === '') return fallback;
  return !/^(0|false|no|off)$/i.test(String(v).trim());
}

export function splitList(v) {
  if (v === undefined || v === null) return [];
  return String(v).split(',').map(function (s) { return s.trim(); }).filter(function (s) { return s !== ''; });
}

/** "1m5s"-style string for k6 options (whole seconds, at least 1s). */
export function secondsToK6(s) {
  return Math.max(1, Math.ceil(s)) + 's';
}

// ------------------------------------------------------------------ URLs

export function stripTrailingSlash(u) {
  return String(u).replace(/\/+$/, '');
}

export function deriveWsUrl(baseUrl) {
  return stripTrailingSlash(baseUrl).replace(/^http(s?):\/\//i, 'ws$1://') + '/ws';
}

export function deriveBaseUrl(wsUrl) {
  const u = stripTrailingSlash(String(wsUrl).split('?')[0]);
  return u.replace(/^ws(s?):\/\//i, 'http$1://').replace(/\/ws$/, '');
}

/** Appends query parameters (k6 has no URL class). Undefined values are skipped. */
export function withQuery(url, params) {
  const keys = Object.keys(params);
  let out = url;
  for (let i = 0; i < keys.length; i++) {
    const v = params[keys[i]];
    if (v === undefined || v === null) continue;
    out += (out.indexOf('?') >= 0 ? '&' : '?') + encodeURIComponent(keys[i]) + '=' + encodeURIComponent(v);
  }
  return out;
}

// ------------------------------------------------------------------ fixture and plan

/** Whether env supplies both tokens and rooms, so the fixture is not needed at all. */
export function envOverridesFixture(env) {
  const e = env || {};
  return !!(e.ACCESS_TOKEN || e.TOKENS) && !!(e.ROOM_ID || e.ROOM_IDS);
}

export function parseFixture(text) {
  if (text === null || text === undefined || text === '') return null;
  const f = typeof text === 'string' ? JSON.parse(text) : text;
  if (!f || !Array.isArray(f.users) || !Array.isArray(f.rooms)) {
    throw new Error('fixture must have users[] and rooms[] (run npm run loadtest:seed)');
  }
  return f;
}

function memberIndexes(room, users) {
  if (!Array.isArray(room.members)) return null;
  const out = [];
  for (let i = 0; i < room.members.length; i++) {
    const m = room.members[i];
    if (typeof m === 'number' && m >= 0 && m < users.length) {
      out.push(m);
    } else if (typeof m === 'string') {
      for (let j = 0; j < users.length; j++) {
        if (users[j].user_id === m || users[j].username === m) {
          out.push(j);
          break;
        }
      }
    }
  }
  return out.length ? out : null;
}

/**
 * Builds the run plan. `fixtureText` is the fixture file's content (or null).
 * Env (compat names of the original app included) overrides the fixture.
 */
export function buildPlan(env, fixtureText, profileName) {
  const e = env || {};
  const profile = PROFILES[profileName || 'chat'];
  if (!profile) throw new Error('unknown profile ' + profileName);
  const fixture = parseFixture(fixtureText);

  const envTokens = e.TOKENS ? splitList(e.TOKENS) : e.ACCESS_TOKEN ? [String(e.ACCESS_TOKEN).trim()] : [];
  const envRooms = e.ROOM_IDS ? splitList(e.ROOM_IDS) : e.ROOM_ID ? [String(e.ROOM_ID).trim()] : [];

  let users;
  if (envTokens.length) {
    users = envTokens.map(function (t, i) { return { token: t, username: 'token' + i, userId: null }; });
  } else if (fixture) {
    users = fixture.users.map(function (u) {
      return { token: u.accessToken, username: u.username, userId: u.user_id || null };
    }).filter(function (u) { return typeof u.token === 'string' && u.token !== ''; });
  } else {
    users = [];
  }

  let rooms;
  let membershipKnown;
  if (envRooms.length) {
    rooms = envRooms.map(function (id) { return { id: id, name: id, members: null }; });
    membershipKnown = false;
  } else if (fixture) {
    const fixtureUsers = envTokens.length ? null : fixture.users;
    rooms = fixture.rooms.map(function (r) {
      return { id: r.id, name: r.name || r.id, members: fixtureUsers ? memberIndexes(r, fixtureUsers) : null };
    });
    membershipKnown = !envTokens.length && rooms.every(function (r) { return r.members !== null; });
  } else {
    rooms = [];
    membershipKnown = false;
  }

  const roomLimit = parseIntEnv(e.ROOMS, 0, 'ROOMS');
  if (roomLimit > 0) rooms = rooms.slice(0, roomLimit);

  if (!users.length || !rooms.length) {
    throw new Error(
      'no ' + (!users.length ? 'users/tokens' : 'rooms') + ' to use: run `npm run loadtest:seed` to write ' +
      'loadtest/fixture.json (or set FIXTURE), or set ACCESS_TOKEN/TOKENS and ROOM_ID/ROOM_IDS');
  }

  const envWs = e.NODE_URLS ? splitList(e.NODE_URLS) : e.WS_URL ? [String(e.WS_URL).trim()] : [];
  let baseUrl;
  if (e.BASE_URL) baseUrl = stripTrailingSlash(e.BASE_URL);
  else if (envWs.length) baseUrl = deriveBaseUrl(envWs[0]);
  else if (fixture && fixture.baseUrl) baseUrl = stripTrailingSlash(fixture.baseUrl);
  else baseUrl = 'http://localhost:3000';

  let wsUrls;
  if (envWs.length) wsUrls = envWs;
  else if (e.BASE_URL) wsUrls = [deriveWsUrl(baseUrl)];
  else if (fixture && fixture.wsUrl) wsUrls = [fixture.wsUrl];
  else wsUrls = [deriveWsUrl(baseUrl)];

  const selected = e.SCENARIOS ? splitList(e.SCENARIOS) : profile.scenarios;
  for (let i = 0; i < selected.length; i++) {
    if (profile.scenarios.indexOf(selected[i]) < 0) {
      throw new Error('unknown scenario "' + selected[i] + '" for this script; known: ' + profile.scenarios.join(', '));
    }
  }
  function enabled(name, n) { return selected.indexOf(name) >= 0 && n > 0 ? n : 0; }

  const counts = {
    receivers: enabled('receivers', parseIntEnv(e.RECEIVERS, profile.RECEIVERS, 'RECEIVERS')),
    senders: enabled('senders', parseIntEnv(e.SENDERS, profile.SENDERS, 'SENDERS')),
    churnRate: enabled('churn', parseFloatEnv(e.CHURN_RATE, profile.CHURN_RATE, 'CHURN_RATE')),
    reconnectors: enabled('reconnect', parseIntEnv(e.RECONNECTORS, profile.RECONNECTORS, 'RECONNECTORS')),
    typers: enabled('typing', parseIntEnv(e.TYPERS, profile.TYPERS, 'TYPERS')),
    msgpackClients: enabled('msgpack', parseIntEnv(e.MSGPACK_CLIENTS, profile.MSGPACK_CLIENTS, 'MSGPACK_CLIENTS')),
  };

  const expected = splitList(e.EXPECTED_ERROR_CODES);

  return {
    profile: profileName || 'chat',
    baseUrl: baseUrl,
    wsUrls: wsUrls,
    users: users,
    rooms: rooms,
    membershipKnown: membershipKnown,
    joinViaHttp: parseBool(e.JOIN_VIA_HTTP, !membershipKnown),
    warmupS: parseDuration(e.WARMUP, parseDuration(profile.WARMUP)),
    durationS: parseDuration(e.DURATION, parseDuration(profile.DURATION)),
    drainS: parseDuration(e.DRAIN, parseDuration(profile.DRAIN)),
    counts: counts,
    messageIntervalMs: Math.max(1, parseIntEnv(e.MESSAGE_INTERVAL_MS, profile.MESSAGE_INTERVAL_MS, 'MESSAGE_INTERVAL_MS')),
    messagesPerVu: parseIntEnv(e.MESSAGES_PER_VU, 0, 'MESSAGES_PER_VU'),
    messageBytes: parseIntEnv(e.MESSAGE_BYTES, 0, 'MESSAGE_BYTES'),
    churnHoldMs: parseIntEnv(e.CHURN_HOLD_MS, profile.CHURN_HOLD_MS, 'CHURN_HOLD_MS'),
    churnMaxVus: Math.max(1, parseIntEnv(e.CHURN_MAX_VUS, profile.CHURN_MAX_VUS, 'CHURN_MAX_VUS')),
    reconnectPeriodMs: Math.max(500, parseIntEnv(e.RECONNECT_PERIOD_MS, profile.RECONNECT_PERIOD_MS, 'RECONNECT_PERIOD_MS')),
    typingIntervalMs: Math.max(10, parseIntEnv(e.TYPING_INTERVAL_MS, profile.TYPING_INTERVAL_MS, 'TYPING_INTERVAL_MS')),
    joinTimeoutMs: Math.max(100, parseIntEnv(e.JOIN_TIMEOUT_MS, 5000, 'JOIN_TIMEOUT_MS')),
    latencyP95Ms: parseFloatEnv(e.LATENCY_P95_MS, 250, 'LATENCY_P95_MS'),
    latencyP99Ms: parseFloatEnv(e.LATENCY_P99_MS, 500, 'LATENCY_P99_MS'),
    connectP95Ms: parseFloatEnv(e.CONNECT_P95_MS, 1000, 'CONNECT_P95_MS'),
    connectSuccessMin: parseFloatEnv(e.CONNECT_SUCCESS_MIN, 0.99, 'CONNECT_SUCCESS_MIN'),
    expectedErrorCodes: expected,
    verifyHttp: parseBool(e.VERIFY_HTTP, true),
    summaryDir: e.SUMMARY_DIR === undefined ? 'loadtest' : String(e.SUMMARY_DIR),
    verbose: parseBool(e.VERBOSE, false),
  };
}

// ------------------------------------------------------------------ seats

// Offsets so that different roles in the same room prefer different users, and (with
// NODE_URLS) senders and receivers of one room land on different nodes: cross-node fan-out
// is what the LISTEN/NOTIFY bus is for.
const ROLE_OFFSETS = { receiver: 0, sender: 1, churn: 2, reconnect: 3, typing: 4, msgpack: 5 };

/**
 * Which room, user and node a VU of a role uses. index is the VU's index within its role
 * (0-based). Rooms are assigned round-robin, so room r gets roles' indexes r, r+R, ...
 */
export function assignSeat(plan, role, index) {
  const offset = ROLE_OFFSETS[role] || 0;
  const R = plan.rooms.length;
  const roomIndex = index % R;
  const room = plan.rooms[roomIndex];
  const k = Math.floor(index / R); // how many of this role are already in this room
  let userIndex;
  if (room.members && room.members.length) {
    // Spread roles over the room's members: receivers from the front, others further on.
    const m = room.members;
    userIndex = m[(k + offset * Math.max(1, Math.floor(m.length / 6))) % m.length];
  } else {
    userIndex = (index + offset * 7) % plan.users.length;
  }
  const wsUrl = plan.wsUrls[(index + offset) % plan.wsUrls.length];
  return { role: role, index: index, roomIndex: roomIndex, room: room, userIndex: userIndex, user: plan.users[userIndex], wsUrl: wsUrl };
}

/** Number of receiver VUs assigned to a room (round-robin), for expected deliveries. */
export function receiversInRoom(plan, roomIndex) {
  const n = plan.counts.receivers;
  const R = plan.rooms.length;
  if (roomIndex >= R) return 0;
  return Math.floor(n / R) + (roomIndex < n % R ? 1 : 0);
}

export function roomIndexOf(plan, roomId) {
  for (let i = 0; i < plan.rooms.length; i++) if (plan.rooms[i].id === roomId) return i;
  return -1;
}

/** Error codes that do not fail a scenario. */
export function expectedErrorsFor(plan, scenario) {
  const base = SCENARIO_EXPECTED_ERRORS[scenario] || [];
  return base.concat(plan.expectedErrorCodes);
}

// ------------------------------------------------------------------ k6 options

/**
 * k6 scenarios. Timeline (seconds from the start):
 *   0 .. W          receivers connect and join (WARMUP)
 *   W .. W+D        senders, msgpack clients, churn, reconnect storm, typing storm (DURATION)
 *   W+D .. W+D+Dr   receivers stay connected so every acked message can arrive (DRAIN)
 */
export function buildScenarios(plan) {
  const W = plan.warmupS;
  const D = plan.durationS;
  const Dr = plan.drainS;
  const c = plan.counts;
  const sc = {};
  const slack = 30; // maxDuration headroom; sessions end themselves on time
  if (c.receivers > 0) {
    sc.receivers = {
      executor: 'per-vu-iterations', exec: 'receivers', vus: c.receivers, iterations: 1,
      startTime: '0s', maxDuration: secondsToK6(W + D + Dr + slack), gracefulStop: '10s',
    };
  }
  if (c.senders > 0) {
    sc.senders = {
      executor: 'per-vu-iterations', exec: 'senders', vus: c.senders, iterations: 1,
      startTime: secondsToK6(W), maxDuration: secondsToK6(D + Dr + slack), gracefulStop: '10s',
    };
  }
  if (c.msgpackClients > 0) {
    sc.msgpack = {
      executor: 'per-vu-iterations', exec: 'msgpack', vus: c.msgpackClients, iterations: 1,
      startTime: secondsToK6(W), maxDuration: secondsToK6(D + Dr + slack), gracefulStop: '10s',
    };
  }
  if (c.churnRate > 0) {
    // Enough VUs for rate x (hold + connect overhead), within the cap.
    const perIterS = plan.churnHoldMs / 1000 + 1;
    const pre = Math.min(plan.churnMaxVus, Math.max(1, Math.ceil(c.churnRate * perIterS)));
    sc.churn = {
      executor: 'constant-arrival-rate', exec: 'churn', rate: c.churnRate, timeUnit: '1s',
      duration: secondsToK6(D), preAllocatedVUs: pre, maxVUs: Math.max(pre, plan.churnMaxVus),
      startTime: secondsToK6(W), gracefulStop: '10s',
    };
    // constant-arrival-rate needs an integer rate: scale fractional rates.
    if (!Number.isInteger(c.churnRate)) {
      sc.churn.rate = Math.max(1, Math.round(c.churnRate * 10));
      sc.churn.timeUnit = '10s';
    }
  }
  if (c.reconnectors > 0) {
    sc.reconnect = {
      executor: 'constant-vus', exec: 'reconnect', vus: c.reconnectors, duration: secondsToK6(D),
      startTime: secondsToK6(W), gracefulStop: secondsToK6(plan.reconnectPeriodMs / 1000 + 5),
    };
  }
  if (c.typers > 0) {
    sc.typing = {
      executor: 'per-vu-iterations', exec: 'typing', vus: c.typers, iterations: 1,
      startTime: secondsToK6(W), maxDuration: secondsToK6(D + slack), gracefulStop: '10s',
    };
  }
  return sc;
}

export function buildThresholds(plan) {
  const c = plan.counts;
  const t = {
    seq_gaps: ['count==0'],
    duplicates: ['count==0'],
    out_of_order: ['count==0'],
    duplicate_client_msg_ids: ['count==0'],
    protocol_errors: ['count==0'],
    'error_frames{expected:false}': ['count==0'],
    delivery_latency: ['p(95)<' + plan.latencyP95Ms, 'p(99)<' + plan.latencyP99Ms],
    ws_connect_time: ['p(95)<' + plan.connectP95Ms],
    ws_connect_success: ['rate>=' + plan.connectSuccessMin],
  };
  if (c.senders > 0 || c.msgpackClients > 0) t.messages_unacked = ['count==0'];
  if (c.receivers > 0 && plan.verifyHttp) t.messages_missed = ['count==0'];
  if (c.reconnectors > 0) t.reconnect_seam_broken = ['count==0'];
  // Informational sub-metrics so the summary can break counts down by tag.
  for (let i = 0; i < KNOWN_ERROR_CODES.length; i++) {
    t['error_frames{code:' + KNOWN_ERROR_CODES[i] + '}'] = ['count>=0'];
  }
  return t;
}

// k6's default system tags minus `url`: every WebSocket URL carries a user's token, so a
// url tag would make one time series per user (memory) and copy tokens into outputs.
export const SYSTEM_TAGS = [
  'proto', 'subproto', 'status', 'method', 'name', 'group', 'check', 'error', 'error_code',
  'tls_version', 'scenario', 'service', 'expected_response',
];

export function buildOptions(plan) {
  return {
    scenarios: buildScenarios(plan),
    thresholds: buildThresholds(plan),
    summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'],
    systemTags: SYSTEM_TAGS.slice(),
    setupTimeout: '30s',
  };
}

/** "key: value" lines describing the run, for the summary header. */
export function describePlan(plan, script) {
  const c = plan.counts;
  return [
    'target: ' + plan.baseUrl + ' ws: ' + plan.wsUrls.join(', '),
    'rooms: ' + plan.rooms.length + ', users: ' + plan.users.length +
      (plan.membershipKnown ? '' : ' (membership unknown: joined via HTTP)'),
    'timeline: warmup ' + plan.warmupS + 's, send ' + plan.durationS + 's, drain ' + plan.drainS + 's',
    'VUs: receivers ' + c.receivers + ', senders ' + c.senders + ' every ' + plan.messageIntervalMs + 'ms' +
      (plan.messagesPerVu ? ' (max ' + plan.messagesPerVu + ' each)' : '') +
      ', msgpack ' + c.msgpackClients + ', churn ' + c.churnRate + '/s, reconnect ' + c.reconnectors +
      ', typing ' + c.typers,
    'script: ' + (script || '-'),
  ];
}
