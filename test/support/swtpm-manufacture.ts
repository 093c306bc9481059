import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A manufactured swtpm: `swtpm_setup --create-ek-cert` with swtpm_localca signing the EK certificate with the test
 * manufacturer CA kept in `ca` (created on first use, shared by every TPM made with the same `ca`). Returns the TPM
 * state directory `<dir>/<name>/state`.
 */
export function manufactureSwtpm(dir: string, name: string, ca: string): string {
  const d = join(dir, name);
  const state = join(d, 'state');
  mkdirSync(state, { recursive: true });
  writeFileSync(join(d, 'localca.conf'), `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`);
  writeFileSync(join(d, 'localca.options'), '--platform-manufacturer Coffer\n--platform-version 2.1\n--platform-model test\n');
  writeFileSync(join(d, 'setup.conf'), `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${d}/localca.conf\ncreate_certs_tool_options = ${d}/localca.options\nactive_pcr_banks = sha256\n`);
  execFileSync('swtpm_setup', ['--tpm2', '--tpmstate', state, '--create-ek-cert', '--config', join(d, 'setup.conf'), '--overwrite'], { stdio: 'pipe', timeout: 60000 });
  return state;
}
