import { readdir, stat } from 'node:fs/promises';
import { MAX_COLLATERAL_FILE_BYTES, MAX_COLLATERAL_FILES, readFileCapped } from '../../common/read-capped.js';
import { UsageError } from '../../common/errors.js';
import { join } from 'node:path';
import { CollateralError } from '../../common/errors.js';
import { looksLikeCertTable } from '../abi/cert-table.js';
import { readTlv } from '../certs/der.js';
import type { SnpOptions } from '../options.js';
import { DirKdsCache } from './dir-cache.js';
import { KdsProvider } from './kds.js';

type Kind = 'pem' | 'der' | 'table' | 'unknown';

function sniff(b: Uint8Array): Kind {
  if (Buffer.from(b.subarray(0, Math.min(b.length, 4096))).toString('latin1').includes('-----BEGIN ')) return 'pem';
  if (looksLikeCertTable(b)) return 'table';
  const t = readTlv(b);
  if (t && t.tag === 0x30 && t.size === b.length) return 'der';
  return 'unknown';
}

/**
 * `coffer verify --tee snp --collateral PATH`. A file or a directory whose files are recognised by content: PEM
 * (certificates, CRLs), DER certificates/CRLs, an extended-report certificate table. A directory with `vcek/` or
 * `vlek/` subtrees is also a KDS-shaped cache, used offline (never fetched). Other files are ignored.
 */
export async function openSnpCollateral(path: string): Promise<{ snp: SnpOptions }> {
  const snp: SnpOptions = { certs: [] };
  const take = (b: Uint8Array, where: string) => {
    const k = sniff(b);
    if (k === 'pem' || k === 'der') snp.certs!.push(b);
    else if (k === 'table') {
      if (snp.certTable) throw new CollateralError('COLLATERAL_AMBIGUOUS', `${where}: more than one certificate table in the collateral`);
      snp.certTable = b;
    }
  };
  const st = await stat(path);
  if (!st.isDirectory()) {
    const b = await readFileCapped(path, MAX_COLLATERAL_FILE_BYTES, 'collateral file');
    take(b, path);
    if (snp.certs!.length === 0 && !snp.certTable) {
      throw new CollateralError('CERTS_MISSING', `${path} holds no certificate, CRL or certificate table`);
    }
    return { snp };
  }
  const entries = await readdir(path, { withFileTypes: true });
  if (entries.length > MAX_COLLATERAL_FILES) throw new UsageError('INPUT_TOO_LARGE', `collateral directory '${path}' holds more than ${MAX_COLLATERAL_FILES} entries`);
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isFile()) take(await readFileCapped(join(path, e.name), MAX_COLLATERAL_FILE_BYTES, 'collateral file'), join(path, e.name));
  }
  if (entries.some((e) => e.isDirectory() && (e.name === 'vcek' || e.name === 'vlek'))) {
    snp.provider = new KdsProvider({ fetch: false, cache: new DirKdsCache(path) });
  }
  return { snp };
}
