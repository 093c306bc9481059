import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cli as run } from '../support/cli.js';
import { vectorsDir, vectorsSkip } from '../support/vectors.js';
import { PCRS, pki, snpComposite } from '../support/azure-composite.js';

const CHALLENGE_HEX = Buffer.from('challenge').toString('hex');

test('coffer verify --tee az-snp-vtpm accepts the real Trustee evidence JSON at a time inside the VCEK window', { skip: vectorsSkip }, async () => {
  const file = join(vectorsDir, 'tpm/azure/trustee_az-snp-vtpm_evidence-v1.json');
  const base = ['verify', '--at', '2025-06-01T00:00:00Z'];
  const ok = await run([...base, '--tee', 'az-snp-vtpm', '--nonce', CHALLENGE_HEX, file]);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.match(ok.out, /^OK .*verified az-snp-vtpm/);
  // The HCL binds the AK by hardware: its unknown TPM attributes are a note, not a warning.
  assert.match(ok.out, /note: AK_ATTRIBUTES_UNKNOWN/);
  assert.doesNotMatch(ok.out, /warning: AK_ATTRIBUTES_UNKNOWN/);
  // auto-detected, --json carries the combined claims
  const js = await run([...base, '--json', file]);
  assert.equal(js.code, 0, js.out + js.err);
  const line = JSON.parse(js.out);
  assert.equal(line.tee, 'az-snp-vtpm');
  assert.equal(line.claims.raw.snp.vmpl, 0);
  assert.equal(line.claims.measurements.pcrsha256_23.length, 64);
  // wrong nonce, a policy that pins a PCR to another value
  const bad = await run([...base, '--nonce', 'deadbeef', '--json', file]);
  assert.equal(bad.code, 1);
  assert.equal(JSON.parse(bad.out).errors[0].code, 'NONCE_MISMATCH');
  const dir = mkdtempSync(join(tmpdir(), 'coffer-az-cli-'));
  writeFileSync(join(dir, 'policy.yaml'), `measurements:\n  pcrsha256_0: ["${'00'.repeat(32)}"]\n`);
  const pol = await run([...base, '--policy', join(dir, 'policy.yaml'), '--json', file]);
  assert.equal(pol.code, 1);
  assert.equal(JSON.parse(pol.out).errors[0].code, 'MEASUREMENT_MISMATCH');
  // told it is TDX evidence
  const tdx = await run([...base, '--tee', 'az-tdx-vtpm', '--json', file]);
  assert.equal(tdx.code, 1);
  assert.equal(JSON.parse(tdx.out).errors[0].code, 'AZ_KIND_MISMATCH');
});

test('coffer verify az-snp-vtpm files form: HCL report + --quote --signature --pcrs, VCEK via --collateral, private ARK', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-az-cli2-'));
  const c = snpComposite();
  const col = join(dir, 'col');
  mkdirSync(col);
  writeFileSync(join(col, 'vcek.der'), c.vcek);
  writeFileSync(join(col, 'chain.pem'), pki.chainPem());
  writeFileSync(join(dir, 'ark.der'), pki.ark.der);
  writeFileSync(join(dir, 'hcl.bin'), c.hcl);
  writeFileSync(join(dir, 'quote.msg'), c.quote.message);
  writeFileSync(join(dir, 'quote.sig'), c.quote.signature);
  writeFileSync(join(dir, 'pcrs.yaml'), `sha256:\n${PCRS.map((p, i) => `  ${i}: 0x${p}`).join('\n')}\n`);
  writeFileSync(join(dir, 'evidence.json'), c.json);
  const nonce = Buffer.from(c.opts.nonce).toString('hex');
  const common = ['verify', '--collateral', col, '--trust-anchor', join(dir, 'ark.der'), '--at', '2025-06-01T00:00:00Z', '--nonce', nonce];
  const files = ['--quote', join(dir, 'quote.msg'), '--signature', join(dir, 'quote.sig'), '--pcrs', join(dir, 'pcrs.yaml')];
  const ok = await run([...common, '--tee', 'az-snp-vtpm', ...files, '--json', join(dir, 'hcl.bin')]);
  assert.equal(ok.code, 0, ok.out + ok.err);
  const line = JSON.parse(ok.out);
  assert.equal(line.tee, 'az-snp-vtpm');
  assert.equal(line.claims.raw.hcl.format, 'files');
  // auto-detection on the HCL report; and the JSON form through the same flags
  assert.equal((await run([...common, ...files, join(dir, 'hcl.bin')])).code, 0);
  assert.equal((await run([...common, join(dir, 'evidence.json')])).code, 0);
  // no quote: typed rejection
  const noQuote = await run([...common, '--json', join(dir, 'hcl.bin')]);
  assert.equal(noQuote.code, 1);
  assert.equal(JSON.parse(noQuote.out).errors[0].code, 'AZ_QUOTE_MISSING');
  // an AK that is not HCLAkPub
  writeFileSync(join(dir, 'other.pem'), (await import('node:crypto')).generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }));
  const other = await run([...common, ...files, '--ak', join(dir, 'other.pem'), '--json', join(dir, 'hcl.bin')]);
  assert.equal(other.code, 1);
  assert.equal(JSON.parse(other.out).errors[0].code, 'AZ_AK_NOT_BOUND');
  // the pinned AMD roots do not accept the private chain
  const pinned = await run(['verify', '--collateral', col, '--at', '2025-06-01T00:00:00Z', '--json', join(dir, 'evidence.json')]);
  assert.equal(pinned.code, 1);
});

test('coffer verify --tee az-tdx-vtpm: Trustee JSON and files form (--td-quote) with DCAP collateral from a PCS-shaped directory', async () => {
  const { tdxComposite } = await import('../support/azure-composite.js');
  const { world } = await import('../support/dcap-helpers.js');
  const w = await world();
  const c = await tdxComposite();
  const dir = mkdtempSync(join(tmpdir(), 'coffer-az-tdx-cli-'));
  const col = join(dir, 'pcs');
  mkdirSync(col);
  for (const [name, bytes] of Object.entries(await w.pcsFiles('tdx'))) writeFileSync(join(col, name), bytes);
  writeFileSync(join(dir, 'root.der'), w.trustAnchors[0]);
  writeFileSync(join(dir, 'evidence.json'), c.json);
  writeFileSync(join(dir, 'hcl.bin'), c.hcl);
  writeFileSync(join(dir, 'td.quote'), c.tdQuote);
  writeFileSync(join(dir, 'quote.msg'), c.quote.message);
  writeFileSync(join(dir, 'quote.sig'), c.quote.signature);
  writeFileSync(join(dir, 'pcrs.json'), JSON.stringify({ sha256: Object.fromEntries(PCRS.map((p, i) => [i, p])) }));
  const common = ['verify', '--collateral', col, '--trust-anchor', join(dir, 'root.der'), '--at', w.at.toISOString(), '--nonce', Buffer.from(c.opts.nonce).toString('hex'), '--json'];
  const js = await run([...common, join(dir, 'evidence.json')]);
  assert.equal(js.code, 0, js.out + js.err);
  const line = JSON.parse(js.out);
  assert.equal(line.tee, 'az-tdx-vtpm');
  assert.equal(line.tcbStatus, 'UpToDate');
  assert.equal(line.claims.measurements.mrtd, '7d'.repeat(48));
  const files = await run([...common, '--tee', 'az-tdx-vtpm', '--td-quote', join(dir, 'td.quote'), '--quote', join(dir, 'quote.msg'), '--signature', join(dir, 'quote.sig'), '--pcrs', join(dir, 'pcrs.json'), join(dir, 'hcl.bin')]);
  assert.equal(files.code, 0, files.out + files.err);
  const noTd = await run([...common, '--quote', join(dir, 'quote.msg'), '--signature', join(dir, 'quote.sig'), '--pcrs', join(dir, 'pcrs.json'), join(dir, 'hcl.bin')]);
  assert.equal(noTd.code, 1);
  assert.equal(JSON.parse(noTd.out).errors[0].code, 'AZ_TD_QUOTE_MISSING');
});
