/**
 * The dashboard's static files. `npm run build` (and so `npm ci`, via prepare) bundles src/ui into dist/ui; when
 * that bundle is missing or older than src/ui (running from sources, e.g. tests through tsx), it is bundled in
 * memory with esbuild (a devDependency) once per service instance.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface UiAssets {
  'index.html': string;
  'app.js': string;
  'app.css': string;
  /** Where the bundle came from, for the startup line. */
  origin: 'dist' | 'esbuild';
}

/** The esbuild options both builds use (scripts/build.mjs keeps the same ones). */
export const UI_BUILD = { bundle: true, format: 'esm', target: 'es2022', minify: true, legalComments: 'none', platform: 'browser' } as const;

function packageRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('dashboard: package root not found');
    d = up;
  }
  return d;
}

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

export async function loadUiAssets(root = packageRoot()): Promise<UiAssets | undefined> {
  const src = join(root, 'src', 'ui');
  const dist = join(root, 'dist', 'ui');
  const built = join(dist, 'BUILT');
  const haveSrc = existsSync(src);
  const fresh = existsSync(built) && (!haveSrc || statSync(built).mtimeMs >= newestMtime(src));
  if (fresh) {
    return { 'index.html': readFileSync(join(dist, 'index.html'), 'utf8'), 'app.js': readFileSync(join(dist, 'app.js'), 'utf8'), 'app.css': readFileSync(join(dist, 'app.css'), 'utf8'), origin: 'dist' };
  }
  if (!haveSrc) return undefined;
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    return undefined;
  }
  const r = await esbuild.build({ ...UI_BUILD, entryPoints: [join(src, 'app.ts')], write: false, logLevel: 'silent' });
  return {
    'index.html': readFileSync(join(src, 'index.html'), 'utf8'),
    'app.js': r.outputFiles[0].text,
    'app.css': readFileSync(join(src, 'app.css'), 'utf8'),
    origin: 'esbuild',
  };
}
