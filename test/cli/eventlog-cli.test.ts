import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli as run } from '../support/cli.js';
import { vectorsDir, vectorsSkip, readVector } from '../support/vectors.js';
import { tpm2EventlogPcrs, tpm2EventlogSkip } from '../support/tpm2-eventlog.js';

const logs = vectorsSkip ? [] : readdirSync(join(vectorsDir, 'tpm')).filter((f) => /^go-attestation_.*eventlog\.bin$|^go-tpm-tools_.*\.bin$/.test(f));

test('coffer eventlog --json replays every real log to the PCRs tpm2_eventlog computes', { skip: vectorsSkip || tpm2EventlogSkip }, async () => {
  let agreed = 0;
  for (const f of logs) {
    const path = join(vectorsDir, 'tpm', f);
    const r = await run(['eventlog', path, '--json']);
    const expected = tpm2EventlogPcrs(path);
    if (r.code !== 0 || !expected) continue; // compare only where both parse
    const doc = JSON.parse(r.out) as { pcrs: Record<string, Record<string, string>>; events: unknown[] };
    assert.deepEqual(Object.keys(doc.pcrs).sort(), [...expected.keys()].sort(), f);
    for (const [bank, m] of expected) {
      assert.deepEqual(doc.pcrs[bank], Object.fromEntries([...m].map(([k, v]) => [String(k), v])), `${f} ${bank}`);
    }
    agreed++;
  }
  assert.ok(agreed >= 9, `only ${agreed} logs compared`);
});

test('coffer eventlog prints events with decoded data and the final PCRs; exit 0', { skip: vectorsSkip }, async () => {
  const r = await run(['eventlog', join(vectorsDir, 'tpm', 'go-tpm-tools_ubuntu-2404-amd-sevsnp.bin')]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /crypto-agile event log, \d+ events, banks sha1 sha256 sha384/);
  assert.match(r.out, /EV_EFI_VARIABLE_DRIVER_CONFIG \(\d+ bytes, digest = H\(data\)\)\s+SecureBoot \{8be4df61-93ca-11d2-aa0d-00e098032b8c\}/);
  assert.match(r.out, /EV_SEPARATOR \(4 bytes, digest = H\(data\)\)\s+separator 00000000/);
  assert.match(r.out, /EV_EFI_BOOT_SERVICES_APPLICATION .*image at 0x/);
  // Image loads carry the Authenticode hash, not H(data).
  const j = JSON.parse((await run(['eventlog', join(vectorsDir, 'tpm', 'go-tpm-tools_ubuntu-2404-amd-sevsnp.bin'), '--json'])).out) as { events: { type: string; digestVerified: boolean }[] };
  assert.ok(j.events.filter((e) => e.type === 'EV_EFI_BOOT_SERVICES_APPLICATION').every((e) => !e.digestVerified));
  assert.ok(j.events.filter((e) => e.type === 'EV_SEPARATOR').every((e) => e.digestVerified));
  assert.match(r.out, /PCRs after replay:\n  sha1:\n     0: [0-9a-f]{40}/);
});

test('coffer eventlog decodes UCS-2 command lines (systemd-boot EV_IPL)', { skip: vectorsSkip }, async () => {
  const r = await run(['eventlog', join(vectorsDir, 'tpm', 'go-tpm-tools_arch-linux-workstation.bin'), '--json']);
  const doc = JSON.parse(r.out) as { events: { type: string; decoded?: { kind: string; text?: string } }[] };
  const ipl = doc.events.filter((e) => e.type === 'EV_IPL').map((e) => e.decoded?.text ?? '');
  assert.ok(ipl.some((t) => t.includes('initrd=') && t.includes('root=/dev/mapper/cryptroot')), ipl.join(' | '));
});

test('coffer eventlog: malformed log exits 1 naming the offset; missing file exits 2', { skip: vectorsSkip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-evlog-'));
  const f = join(dir, 'cut.bin');
  writeFileSync(f, readVector('tpm/go-attestation_crypto_agile_eventlog.bin').subarray(0, 1000));
  const r = await run(['eventlog', f, '--json']);
  assert.equal(r.code, 1);
  const doc = JSON.parse(r.out);
  assert.equal(doc.error.code, 'EVENTLOG_MALFORMED');
  assert.equal(typeof doc.error.offset, 'number');
  assert.match(doc.error.message, new RegExp(`offset ${doc.error.offset}: `));
  const h = await run(['eventlog', f]);
  assert.equal(h.code, 1);
  assert.match(h.err, /EVENTLOG_MALFORMED: event log is malformed at offset \d+/);
  assert.equal((await run(['eventlog', join(dir, 'nope.bin')])).code, 2);
});
