// Node module-resolution hooks for the k6 simulation tests: maps the k6 built-in modules
// ('k6', 'k6/ws', ...) to the shims in ./k6/. Registered by k6-sim.test.mjs via
// module.register(); nothing else uses it.

const SHIMS = {
  k6: 'k6.mjs',
  'k6/ws': 'ws.mjs',
  'k6/http': 'http.mjs',
  'k6/metrics': 'metrics.mjs',
  'k6/execution': 'execution.mjs',
};

export async function resolve(specifier, context, nextResolve) {
  if (Object.prototype.hasOwnProperty.call(SHIMS, specifier)) {
    return { url: new URL('./k6/' + SHIMS[specifier], import.meta.url).href, shortCircuit: true };
  }
  if (specifier.startsWith('k6/') || specifier.startsWith('https://')) {
    throw new Error(`k6 simulation has no shim for ${specifier}; the scripts must stay offline and use only the shimmed modules`);
  }
  return nextResolve(specifier, context);
}
