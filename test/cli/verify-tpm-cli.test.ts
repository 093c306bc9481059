import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli as run } from '../support/cli.js';
import { vectorsSkip, readVector, vectorsDir } from '../support/vectors.js';
import { decodePb, pbBytes } from '../support/protobuf.js';
import { hashAlgById } from '../../src/tee/tpm/abi/constants.js';
import { toHex } from '../../src/tee/common/hex.js';

/** Writes the GCE attestation's SHA-256 quote as the files tpm2-tools users would have (PCRs as a YAML map). */
function gceFiles(): { dir: string; quote: string; sig: string; ak: string; pcrs: string; log: string } {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-tpm-cli-'));
  const a = decodePb(readVector('tpm/go-tpm-tools_gce-cos-85-nonce9009.pb'));
  const q = (a.get(2) as Uint8Array[]).map(decodePb).find((x) => hashAlgById(Number(decodePb(pbBytes(x, 3)!).get(1)![0]))?.name === 'sha256')!;
  const p = decodePb(pbBytes(q, 3)!);
  const yaml = ['pcrs:', '  sha256:'];
  for (const e of p.get(2) as Uint8Array[]) {
    const kv = decodePb(e);
    yaml.push(`    ${String(kv.get(1)?.[0] ?? 0n).padEnd(2)}: 0x${toHex(pbBytes(kv, 2)!).toUpperCase()}`);
  }
  const f = (n: string, b: Uint8Array | string) => {
    writeFileSync(join(dir, n), b);
    return join(dir, n);
  };
  return { dir, quote: f('quote.msg', pbBytes(q, 1)!), sig: f('quote.sig', pbBytes(q, 2)!), ak: f('ak.tpmt', pbBytes(a, 1)!), pcrs: f('pcrs.yaml', `${yaml.join('\n')}\n`), log: f('eventlog.bin', pbBytes(a, 3)!) };
}

test('coffer verify --tee tpm with --eventlog: the GCE quote verifies; another log is rejected naming the PCR', { skip: vectorsSkip }, async () => {
  const g = gceFiles();
  const base = ['verify', g.quote, '--tee', 'tpm', '--signature', g.sig, '--ak', g.ak, '--pcrs', g.pcrs, '--nonce', '9009'];
  const ok = await run([...base, '--eventlog', g.log, '--json']);
  assert.equal(ok.code, 0, ok.out + ok.err);
  const line = JSON.parse(ok.out);
  assert.equal(line.verified, true);
  assert.ok(line.claims.raw.eventLog.replayedPcrs.includes('sha256:4'));
  const other = await run([...base, '--eventlog', join(vectorsDir, 'tpm', 'go-tpm-tools_cos-101-amd-sev.bin')]);
  assert.equal(other.code, 1);
  assert.match(other.out, /TPM_EVENTLOG_MISMATCH: the event log does not replay to the quoted PCR sha256:\d+/);
  const sha1Only = await run([...base, '--eventlog', join(vectorsDir, 'tpm', 'go-tpm-tools_debian-10.bin')]);
  assert.equal(sha1Only.code, 1);
  assert.match(sha1Only.out, /covers none of the quoted PCRs/);
  const noAk = await run(['verify', g.quote, '--tee', 'tpm', '--signature', g.sig]);
  assert.equal(noAk.code, 1);
  assert.match(noAk.out, /TPM_AK_MISSING/);
});
