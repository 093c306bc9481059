// The controller's memo of attested events: keyed by the log's bytes (hashed when looked up), the bank, and the
// attested values of the listed PCRs, so a changed log or PCR is recomputed (and refused when it does not replay).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AttestedEventsCache, NodeEventLogError } from '../../../src/k8s/controllers/node-trust-eventlog.js';
import { buildEventLog } from '../../support/eventlog-builder.js';

const boot = (loader: string) => [
  { pcr: 0, type: 0x80000008, data: Buffer.from('firmware volume 1.0') },
  { pcr: 4, type: 0x80000003, data: Buffer.from('shim 15.8') },
  { pcr: 4, type: 0x80000003, data: Buffer.from(loader) },
];
function pcrsOf(loader: string): Record<string, string> {
  const v: Record<number, Buffer> = { 0: Buffer.alloc(32), 4: Buffer.alloc(32), 7: Buffer.alloc(32, 7) };
  for (const d of buildEventLog(boot(loader)).digests) v[d.pcr] = createHash('sha256').update(v[d.pcr]).update(d.digest).digest();
  return Object.fromEntries(Object.entries(v).map(([p, b]) => [`pcrsha256_${p}`, b.toString('hex')]));
}
const code = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof NodeEventLogError, String(e));
    return e.code;
  }
};

test('attested events memo: hits for the same log and PCRs; a changed log, an edited buffer or a changed PCR is recomputed', () => {
  const c = new AttestedEventsCache();
  const log = buildEventLog(boot('grub 2.12')).log;
  const m = pcrsOf('grub 2.12');
  const a = c.events(log, m, [0, 4]);
  assert.deepEqual(a.map((e) => [e.pcr, e.description]), [[0, 'firmware volume 1.0'], [4, 'shim 15.8'], [4, 'grub 2.12']]);
  assert.equal(c.events(Buffer.from(log), { ...m }, [0, 4]), a, 'same bytes and values: the cached answer');
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a[0]), 'shared between nodes: frozen');
  // The node booted another loader and says so in its log and its PCRs: new events.
  const b = c.events(buildEventLog(boot('grub 2.13')).log, pcrsOf('grub 2.13'), [0, 4]);
  assert.equal(b[2].description, 'grub 2.13');
  // Log of one boot, PCRs of the other, either way round: refused, though both logs are cached.
  assert.equal(code(() => c.events(log, pcrsOf('grub 2.13'), [0, 4])), 'EVENTLOG_MISMATCH');
  assert.equal(code(() => c.events(buildEventLog(boot('grub 2.13')).log, m, [0, 4])), 'EVENTLOG_MISMATCH');
  // The cached buffer edited in place to the other boot's log: recomputed (and refused against the old PCRs).
  const other = buildEventLog(boot('grub 2.1X')).log;
  log.set(other);
  assert.equal(code(() => c.events(log, m, [0, 4])), 'EVENTLOG_MISMATCH');
  // Other PCRs listed or another bank: a different key; a PCR the token does not attest is an error.
  assert.equal(c.events(buildEventLog(boot('grub 2.12')).log, m, [4]).length, 2);
  assert.equal(code(() => c.events(buildEventLog(boot('grub 2.12')).log, m, [0, 4, 9])), 'EVENTLOG_MISSING');
  assert.equal(code(() => c.events(Buffer.alloc(5 * 1024 * 1024), m, [0])), 'EVENTLOG_MALFORMED');
});
