import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { CollateralError } from '../../common/errors.js';
import type { KdsCache } from './kds.js';

/**
 * A KDS-shaped directory: each response is a file at its URL path, the query becoming a last path segment
 * (`vcek/v1/Milan/<hwid>/blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`, `vcek/v1/Milan/cert_chain`, `vcek/v1/Milan/crl`).
 */
export class DirKdsCache implements KdsCache {
  private readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }

  fileFor(path: string): string {
    const rel = path.replace(/^\/+/, '').replace('?', '/');
    if (!/^[A-Za-z0-9/=&._-]+$/.test(rel) || rel.split('/').some((s) => s === '..' || s === '.' || s === '')) {
      throw new CollateralError('KDS_CACHE_INVALID', `refusing KDS cache path '${path}'`);
    }
    const f = join(this.root, rel);
    if (!f.startsWith(this.root + sep)) throw new CollateralError('KDS_CACHE_INVALID', `KDS cache path '${path}' escapes the cache`);
    return f;
  }

  async get(path: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.fileFor(path)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
      throw e;
    }
  }

  async put(path: string, body: Uint8Array): Promise<void> {
    const f = this.fileFor(path);
    await mkdir(dirname(f), { recursive: true });
    await writeFile(f, body);
  }
}
