import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cli as run } from '../support/cli.js';
import { vectorsDir, vectorsSkip } from '../support/vectors.js';
import { SnpTestPki, reportFields, signReport, p384 } from '../support/snp-pki.js';

test('coffer verify --tee snp --collateral DIR accepts the real Milan report at its date', { skip: vectorsSkip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-snp-cli-'));
  copyFileSync(join(vectorsDir, 'snp/virtee_vcek_milan.der'), join(dir, 'vcek.der'));
  copyFileSync(join(vectorsDir, 'snp/virtee_cert_chain_milan.pem'), join(dir, 'cert_chain.pem'));
  const report = join(vectorsDir, 'snp/virtee_report_milan.bin');
  const ok = await run(['verify', '--tee', 'snp', '--collateral', dir, '--at', '2023-05-03T19:23:43Z', report]);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.match(ok.out, /^OK .*verified snp/);
  // auto-detection picks the SNP verifier too; JSON carries the claims
  const js = await run(['verify', '--collateral', dir, '--at', '2023-05-03T19:23:43Z', '--json', report]);
  assert.equal(js.code, 0, js.out + js.err);
  const line = JSON.parse(js.out);
  assert.equal(line.tee, 'snp');
  assert.equal(line.claims.platform.productLine, 'Milan');
  assert.equal(line.claims.svns.microcode, 115);
  // expired today
  const late = await run(['verify', '--tee', 'snp', '--collateral', dir, '--at', '2031-01-01T00:00:00Z', '--json', report]);
  assert.equal(late.code, 1);
  assert.equal(JSON.parse(late.out).errors[0].code, 'CERT_EXPIRED');
  // a nonce that is not in the report data
  const nonce = await run(['verify', '--tee', 'snp', '--collateral', dir, '--at', '2023-05-03T19:23:43Z', '--nonce', 'deadbeef', report]);
  assert.equal(nonce.code, 1);
  assert.match(nonce.out, /NONCE_MISMATCH/);
});

test('coffer verify --tee snp with a private PKI (--trust-anchor), a policy, and bad input', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-snp-cli2-'));
  const pki = new SnpTestPki('Genoa');
  const fields = reportFields({ product: 'Genoa', vmpl: 2 });
  const key = p384();
  const leaf = pki.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
  const col = join(dir, 'col');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(col);
  writeFileSync(join(col, 'vcek.der'), leaf.der);
  writeFileSync(join(col, 'chain.pem'), pki.chainPem());
  writeFileSync(join(dir, 'ark.der'), pki.ark.der);
  const report = join(dir, 'report.bin');
  writeFileSync(report, signReport(fields, key.privateKey));
  const base = ['verify', '--tee', 'snp', '--collateral', col, '--trust-anchor', join(dir, 'ark.der'), '--at', '2025-06-01T00:00:00Z'];
  const ok = await run([...base, '--json', report]);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.equal(JSON.parse(ok.out).appraisal.status, 'affirming');
  // without --trust-anchor the pinned AMD roots reject the private chain
  const pinned = await run(['verify', '--tee', 'snp', '--collateral', col, '--at', '2025-06-01T00:00:00Z', '--json', report]);
  assert.equal(pinned.code, 1);
  assert.equal(JSON.parse(pinned.out).errors[0].code, 'VCEK_CHAIN_INVALID');
  // policy: generic minSvns + SNP maxVmpl
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, 'minSvns:\n  snp: 9\nsnp:\n  maxVmpl: 0\n');
  const pol = await run([...base, '--policy', policy, '--json', report]);
  assert.equal(pol.code, 1);
  const codes = JSON.parse(pol.out).errors.map((e: { code: string }) => e.code);
  assert.deepEqual(codes.sort(), ['SVN_TOO_LOW', 'VMPL_TOO_HIGH']);
  // an invalid snp policy section is a usage error
  writeFileSync(policy, 'snp:\n  maxVmpl: 9\n');
  assert.equal((await run([...base, '--policy', policy, report])).code, 2);
  // truncated report
  const short = join(dir, 'short.bin');
  writeFileSync(short, signReport(fields, key.privateKey).subarray(0, 600));
  const tr = await run([...base, '--json', short]);
  assert.equal(tr.code, 1);
  assert.equal(JSON.parse(tr.out).errors[0].code, 'TRUNCATED');
  // collateral with no certificates at all
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, 'nothing here');
  const none = await run(['verify', '--tee', 'snp', '--collateral', empty, '--json', report]);
  assert.equal(none.code, 1);
  assert.equal(JSON.parse(none.out).errors[0].code, 'CERTS_MISSING');
});
