import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tpm2EventlogPcrs, tpm2EventlogSkip } from '../../support/tpm2-eventlog.js';
import { vectorsDir, vectorsSkip, readVector } from '../../support/vectors.js';
import { parseEventLog, EventLogError } from '../../../src/tee/tpm/eventlog/parse.js';
import { replayEventLog } from '../../../src/tee/tpm/eventlog/replay.js';
import { decodeEvent } from '../../../src/tee/tpm/eventlog/decode.js';
import { hashAlgById, hashAlgByName, TPM_ALG } from '../../../src/tee/tpm/abi/constants.js';
import { toHex } from '../../../src/tee/common/hex.js';
import { EV } from '../../../src/tee/tpm/eventlog/types.js';

const logs = vectorsSkip
  ? []
  : readdirSync(join(vectorsDir, 'tpm')).filter((f) => /^go-attestation_.*eventlog\.bin$|^go-tpm-tools_.*\.bin$/.test(f));

test('event log replay agrees with tpm2_eventlog on every real log both parse', { skip: vectorsSkip || tpm2EventlogSkip }, () => {
  assert.ok(logs.length >= 9, 'expected the go-attestation and go-tpm-tools logs');
  let compared = 0;
  for (const f of logs) {
    const path = join(vectorsDir, 'tpm', f);
    const expected = tpm2EventlogPcrs(path);
    let log;
    try {
      log = parseEventLog(readVector(join('tpm', f)));
    } catch (e) {
      assert.ok(e instanceof EventLogError, `${f}: ${String(e)}`);
      continue;
    }
    if (!expected) continue;
    const replay = replayEventLog(log);
    for (const [bankName, pcrs] of expected) {
      const alg = hashAlgByName(bankName)!;
      const mine = replay.get(alg.id);
      assert.ok(mine, `${f}: no ${bankName} bank replayed`);
      for (const [idx, hex] of pcrs) {
        assert.equal(toHex(mine.get(idx) ?? new Uint8Array(alg.size)), hex, `${f}: ${bankName} PCR ${idx}`);
        compared++;
      }
      // Nothing replayed that tpm2_eventlog did not (PCRs it lists are exactly the extended ones).
      for (const idx of mine.keys()) assert.ok(pcrs.has(idx), `${f}: ${bankName} PCR ${idx} replayed but not by tpm2_eventlog`);
    }
  }
  assert.ok(compared > 100, `compared only ${compared} PCR values`);
});

test('short NO_ACTION log (StartupLocality first) parses as a SHA-1 log, as go-attestation expects', { skip: vectorsSkip }, () => {
  const log = parseEventLog(readVector('tpm/go-attestation_short_no_action_eventlog.bin'));
  assert.equal(log.format, 'sha1');
  assert.equal(log.events.length, 1);
  assert.deepEqual(decodeEvent(log.events[0].type, log.events[0].data), { kind: 'startup_locality', locality: 3 });
  // StartupLocality initialises PCR0 to 0…03.
  assert.equal(toHex(replayEventLog(log).get(TPM_ALG.SHA1)!.get(0)!), '00'.repeat(19) + '03');
});

test('crypto-agile log: spec id, banks, decoded EFI variables, images and separators', { skip: vectorsSkip }, () => {
  const log = parseEventLog(readVector('tpm/go-tpm-tools_ubuntu-2404-amd-sevsnp.bin'));
  assert.equal(log.format, 'crypto-agile');
  assert.deepEqual(log.banks, [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384]);
  const vars = log.events.map((e) => decodeEvent(e.type, e.data)).filter((d) => d?.kind === 'efi_variable');
  assert.ok(vars.some((v) => v?.kind === 'efi_variable' && v.unicodeName === 'SecureBoot'));
  const apps = log.events.filter((e) => e.type === EV.EFI_BOOT_SERVICES_APPLICATION);
  assert.ok(apps.length > 0 && apps.every((e) => decodeEvent(e.type, e.data)?.kind === 'efi_image_load'));
  const seps = log.events.filter((e) => e.type === EV.SEPARATOR);
  assert.ok(seps.length >= 8);
  for (const s of seps) assert.deepEqual(decodeEvent(s.type, s.data), { kind: 'separator', value: '00000000', error: false });
  for (const e of log.events) for (const d of e.digests) assert.equal(d.digest.length, hashAlgById(d.alg)!.size);
});

test('malformed logs: typed error with the offset and the reason', { skip: vectorsSkip }, () => {
  const good = readVector('tpm/go-attestation_crypto_agile_eventlog.bin');
  const log = parseEventLog(good);
  const third = log.events[3];
  // Truncate inside the 4th event.
  assert.throws(() => parseEventLog(good.subarray(0, third.offset + 10)), (e: unknown) => e instanceof EventLogError && e.offset === third.offset && /truncated|past the end/.test(e.message));
  // EventSize running past the end.
  const big = Uint8Array.from(good);
  const sizeAt = third.offset + 8 + 4 + third.digests.reduce((a, d) => a + 2 + d.digest.length, 0);
  new DataView(big.buffer).setUint32(sizeAt, 0x7fffffff, true);
  assert.throws(() => parseEventLog(big), (e: unknown) => e instanceof EventLogError && e.code === 'EVENTLOG_MALFORMED' && e.offset === third.offset && /EventSize/.test(e.message));
  // Undeclared digest algorithm.
  const alg = Uint8Array.from(good);
  new DataView(alg.buffer).setUint16(third.offset + 12, 0x0099, true);
  assert.throws(() => parseEventLog(alg), (e: unknown) => e instanceof EventLogError && /not declared/.test(e.message));
  assert.throws(() => parseEventLog(new Uint8Array(0)), EventLogError);
  assert.throws(() => parseEventLog(new Uint8Array(7)), EventLogError);
});
