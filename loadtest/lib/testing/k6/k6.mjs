// Shim of the 'k6' module for the simulation tests.
import { sim } from '../sim.mjs';

export function check(value, sets, tags) {
  let all = true;
  for (const name of Object.keys(sets)) {
    let ok;
    try {
      ok = !!sets[name](value);
    } catch (e) {
      ok = false;
    }
    sim.checks.push({ name, ok, tags });
    if (!ok) all = false;
  }
  return all;
}

export function sleep(seconds) {
  sim.advance(seconds * 1000);
}

export default { check, sleep };
