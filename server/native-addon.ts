/**
 * The C addons under native/ (built by `npm ci`, see package.json "install"), loaded from where
 * Sidereal is installed: the same from server/ under tsx and from dist/server/.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { installDir } from './install-dir.js';

const loaded = new Map<string, unknown>();

/** `native/<name>/build/Release/<file>.node`, loaded once; throws, saying how to build it, when absent. */
export function loadAddon<T>(name: string, file: string): T {
  const rel = join('native', name, 'build', 'Release', `${file}.node`);
  const hit = loaded.get(rel);
  if (hit) return hit as T;
  const path = join(installDir(), rel);
  if (!existsSync(path)) throw new Error(`native addon ${rel} not built: run \`npm ci\` (or \`npm run install\`)`);
  const addon = createRequire(import.meta.url)(path) as T;
  loaded.set(rel, addon);
  return addon;
}
