import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startSwtpm, swtpmSkip } from '../../support/swtpm.js';
import { TpmClient, SocketTransport } from '../../../src/node/tpm/index.js';
import { verifyEkCertificate } from '../../../src/tee/tpm/verify/ek-cert.js';
import { VerificationError } from '../../../src/tee/common/errors.js';

const setupSkip = swtpmSkip || (spawnSync('swtpm_setup', ['--help']).status === 0 ? false : 'swtpm_setup (swtpm-tools) is not installed');

/**
 * Manufactures a TPM with swtpm_setup and a private swtpm-localca in a temp dir (never /var/lib/swtpm-localca),
 * so the EK certificate in NV chains to a root this test owns.
 */
function manufacture(dir: string): { state: string; root: Uint8Array; issuer: Uint8Array } {
  const ca = join(dir, 'ca');
  const state = join(dir, 'state');
  mkdirSync(ca);
  mkdirSync(state);
  writeFileSync(join(dir, 'localca.conf'), `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`);
  writeFileSync(join(dir, 'localca.options'), '--platform-manufacturer Coffer\n--platform-version 2.1\n--platform-model test\n');
  writeFileSync(join(dir, 'setup.conf'), `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${dir}/localca.conf\ncreate_certs_tool_options = ${dir}/localca.options\nactive_pcr_banks = sha256\n`);
  execFileSync('swtpm_setup', ['--tpm2', '--tpmstate', state, '--create-ek-cert', '--config', join(dir, 'setup.conf'), '--overwrite'], { stdio: 'pipe', timeout: 60000 });
  return { state, root: new Uint8Array(readFileSync(join(ca, 'swtpm-localca-rootca-cert.pem'))), issuer: new Uint8Array(readFileSync(join(ca, 'issuercert.pem'))) };
}

test('EK certificate from NV chains to the manufacturer root and certifies the EK our L-1 template recreates', { skip: setupSkip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-ekcert-'));
  try {
    const m = manufacture(dir);
    const tpm = await startSwtpm({ stateDir: m.state });
    const c = new TpmClient(await SocketTransport.connect(tpm.port));
    try {
      const der = await c.readEkCertificate('rsa');
      assert.ok(der, 'no RSA EK certificate in NV 0x01C00002');
      new X509Certificate(Buffer.from(der)); // exactly one DER certificate, padding cut
      const ek = await c.createEk('rsa');
      await c.flush(ek.handle);
      const check = verifyEkCertificate(der, [m.issuer], [m.root], new Date(), ek.public);
      assert.match(check.issuer, /swtpm-localca/);
      // Wrong root, expired, and a key the certificate does not certify are typed rejections.
      assert.throws(() => verifyEkCertificate(der, [], [m.root], new Date()), (e: unknown) => e instanceof VerificationError && e.code === 'TPM_EK_CHAIN_UNTRUSTED');
      assert.throws(() => verifyEkCertificate(der, [m.root], [m.root], new Date()), (e: unknown) => e instanceof VerificationError && e.code === 'TPM_EK_CHAIN_INVALID');
      assert.throws(() => verifyEkCertificate(der, [m.issuer], [m.root], new Date('2020-01-01T00:00:00Z')), (e: unknown) => e instanceof VerificationError && e.code === 'TPM_EK_CERT_EXPIRED'); // swtpm-localca certificates run to 9999: test before notBefore
      const eccEk = await c.createEk('ecc');
      await c.flush(eccEk.handle);
      assert.throws(() => verifyEkCertificate(der, [m.issuer], [m.root], new Date(), eccEk.public), (e: unknown) => e instanceof VerificationError && e.code === 'TPM_EK_MISMATCH');
      // An index that is not defined reads as "no certificate".
      assert.equal(await c.readEkCertificate('ecc'), undefined);
    } finally {
      await c.close();
      await tpm.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
