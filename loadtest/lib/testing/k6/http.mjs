// Shim of 'k6/http': requests go to sim.httpHandler(method, url, body, params).
import { sim } from '../sim.mjs';

function request(method, url, body, params) {
  if (params && params.headers) {
    for (const k of Object.keys(params.headers)) {
      if (typeof params.headers[k] !== 'string') throw new Error(`header ${k} must be a string`);
    }
  }
  sim.httpCalls.push({ method, url, body, params });
  const res = sim.httpHandler(method, url, body, params || {});
  const text = res.body === undefined ? '' : typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
  return {
    status: res.status,
    body: text,
    headers: res.headers || {},
    json() { return JSON.parse(text); },
  };
}

export default {
  get: (url, params) => request('GET', url, null, params),
  post: (url, body, params) => request('POST', url, body, params),
};
