/**
 * Regenerates the bundled sample for README's quick start with the project's test PKI (never Intel's):
 *   samples/sgx-quote.dat          an SGX DCAP v3 quote signed by a test PCK key
 *   samples/collateral/            a PCS-shaped directory (TCB info, QE identity, CRLs, issuer chains; names say nothing)
 *   samples/test-pki-root.pem      the test root to pass as --trust-anchor
 * Every window runs ten years from now, so the quick start needs no --at. Run: npx tsx scripts/gen-samples.ts
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDcapWorld } from '../test/support/dcap-world.js';
import { repoRoot } from '../test/support/vectors.js';

const now = new Date();
const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - 1));
const w = await createDcapWorld({ from, years: 10 });
const out = join(repoRoot, 'samples');
rmSync(join(out, 'collateral'), { recursive: true, force: true });
mkdirSync(join(out, 'collateral'), { recursive: true });
const reportData = new Uint8Array(64);
reportData.set(new TextEncoder().encode('coffer sample quote'));
writeFileSync(join(out, 'sgx-quote.dat'), await w.quote({ tee: 'sgx', version: 3, reportData }));
const names = ['item-1.json', 'item-2.json', 'item-3.der', 'item-4.pem', 'item-5.pem', 'item-6.cer'];
const files = Object.values(await w.pcsFiles('sgx'));
files.forEach((b, i) => writeFileSync(join(out, 'collateral', names[i]), b));
writeFileSync(join(out, 'test-pki-root.pem'), w.pki.root.pem);
console.log(`samples written to ${out} (valid ${w.pki.from.toISOString()} .. ${w.pki.to.toISOString()})`);
