// Shim of 'k6/ws' (legacy API) for the simulation tests; see ../sim.mjs.
import { connect } from '../sim.mjs';

export { connect };
export default { connect };
