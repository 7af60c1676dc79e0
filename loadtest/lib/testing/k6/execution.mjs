// Shim of 'k6/execution': values come from sim.exec, set by the test per simulated VU.
import { sim } from '../sim.mjs';

const exec = {
  get scenario() { return sim.exec.scenario; },
  get vu() { return sim.exec.vu; },
  get instance() { return { currentTestRunDuration: sim.now - sim.startedAt }; },
  test: {
    abort(message) {
      sim.aborted = message;
      throw new Error('test aborted: ' + message);
    },
  },
};

export default exec;
