import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as UWS from 'uWebSockets.js';

/**
 * Loads the native uWebSockets.js build. The package we depend on silently falls
 * back to a slow pure-JS server when no native binary matches this Node.js; we
 * refuse that, since every speed promise of pgchat rests on the native server.
 * The upstream package (uNetworking/uWebSockets.js) has no fallback, so it is
 * loaded as is.
 */
function loadNativeUws(): typeof UWS {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve('uWebSockets.js/package.json'));
  const binaryName = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const hasFallback = existsSync(join(pkgDir, 'dist', 'index.js')) && existsSync(join(pkgDir, 'binaries'));
  if (!hasFallback) return require('uWebSockets.js') as typeof UWS;
  const binary = join(pkgDir, 'binaries', binaryName);
  if (!existsSync(binary)) {
    throw new Error(
      `pgchat: no native uWebSockets.js build for Node.js ${process.version} (${binaryName}). ` +
        'The installed package would fall back to a slow pure-JS server, which pgchat refuses. ' +
        'Use Node.js 16-20 with this package, or install the upstream build on Node.js 22+ ' +
        '(see README: "Node.js 22 and newer").',
    );
  }
  try {
    return require(binary) as typeof UWS;
  } catch (err) {
    throw new Error(`pgchat: the native uWebSockets.js build failed to load (${binaryName}): ${(err as Error).message}`);
  }
}

export const uws = loadNativeUws();
export type { UWS };
