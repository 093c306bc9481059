import { test } from 'node:test';
import assert from 'node:assert/strict';
import { world, verifyQuote } from '../../support/dcap-helpers.js';
import { TCB_STATUSES } from '../../../src/tee/common/claims.js';
import { convergeStatus } from '../../../src/tee/dcap/tcb-eval.js';
import { PCK_COMPS } from '../../support/dcap-world.js';

test('each platform TCB status string is reported; Revoked is a rejection (TCB_REVOKED)', async () => {
  const w = await world();
  for (const tee of ['sgx', 'tdx'] as const) {
    const q = await w.quote({ tee, version: tee === 'sgx' ? 3 : 4 });
    for (const status of TCB_STATUSES) {
      const r = await verifyQuote(w, q, tee, {
        tweaks: { tcbInfo: (s) => ((s.levels[0].status = status), (s.levels[0].advisories = ['INTEL-SA-00001'])) },
      });
      if (status === 'Revoked') {
        assert.equal(r.verified, false);
        assert.equal(r.errors[0].code, 'TCB_REVOKED');
      } else {
        assert.equal(r.verified, true, `${tee} ${status}: ${JSON.stringify(r.errors)}`);
        assert.equal(r.tcbStatus, status);
        assert.deepEqual(r.advisories, ['INTEL-SA-00001']);
      }
    }
  }
});

test('levels are matched in QVL order (sorted descending), not JSON order', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  const r = await verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: (s) => s.levels.reverse() } });
  assert.equal(r.tcbStatus, 'UpToDate');
});

test('a lower PCK TCB falls to a lower level with its advisories; below every level is TCB_LEVEL_NOT_FOUND', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  // Raise the top level above the platform: the platform matches the SWHardeningNeeded level.
  const r = await verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: (s) => (s.levels[0].sgx = PCK_COMPS.map((c) => c + 1)) } });
  assert.equal(r.tcbStatus, 'SWHardeningNeeded');
  assert.deepEqual(r.advisories, ['INTEL-SA-00615']);
  const pceLow = await verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: (s) => s.levels.forEach((l) => (l.pceSvn = 99)) } });
  assert.equal(pceLow.errors[0].code, 'TCB_LEVEL_NOT_FOUND');
});

test('QE identity level: OutOfDate QE downgrades the platform; no QE level is TCB_LEVEL_NOT_FOUND; Revoked QE rejects', async () => {
  const w = await world();
  const mid = await w.quote({ tee: 'sgx', version: 3, qeIsvSvn: 7 });
  const r = await verifyQuote(w, mid, 'sgx');
  assert.equal(r.tcbStatus, 'OutOfDate');
  assert.deepEqual(r.advisories, ['INTEL-SA-00477']);
  const cn = await verifyQuote(w, mid, 'sgx', { tweaks: { tcbInfo: (s) => (s.levels[0].status = 'ConfigurationNeeded') } });
  assert.equal(cn.tcbStatus, 'OutOfDateConfigurationNeeded');
  const revoked = await verifyQuote(w, await w.quote({ tee: 'sgx', version: 3, qeIsvSvn: 3 }), 'sgx');
  assert.equal(revoked.errors[0].code, 'TCB_REVOKED');
  const none = await verifyQuote(w, await w.quote({ tee: 'sgx', version: 3, qeIsvSvn: 1 }), 'sgx');
  assert.equal(none.errors[0].code, 'TCB_LEVEL_NOT_FOUND');
});

test('status convergence table (QVL-new convergeTcbStatuses)', () => {
  const rows: [string, string, string][] = [
    ['UpToDate', 'UpToDate', 'UpToDate'],
    ['UpToDate', 'OutOfDate', 'OutOfDate'],
    ['SWHardeningNeeded', 'OutOfDate', 'OutOfDate'],
    ['ConfigurationNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded'],
    ['ConfigurationAndSWHardeningNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded'],
    ['ConfigurationAndSWHardeningNeeded', 'UpToDate', 'ConfigurationAndSWHardeningNeeded'],
    ['OutOfDate', 'OutOfDate', 'OutOfDate'],
    ['OutOfDateConfigurationNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded'],
    ['UpToDate', 'Revoked', 'Revoked'],
    ['Revoked', 'UpToDate', 'Revoked'],
  ];
  for (const [p, c, want] of rows) assert.equal(convergeStatus(p as never, [c as never]), want, `${p} x ${c}`);
});

test('TDX: TEE_TCB_SVN below every level is TCB_LEVEL_NOT_FOUND (SGX part matching is not enough)', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'tdx', version: 4, teeTcbSvn: [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] });
  const r = await verifyQuote(w, q, 'tdx', { tweaks: { tcbInfo: (s) => s.levels.forEach((l) => l.tdx && (l.tdx[2] = 5)) } });
  assert.equal(r.errors[0].code, 'TCB_LEVEL_NOT_FOUND');
});

test('TDX 1.5 module identity: TDX_03 levels, module OutOfDate/Revoked, missing identity, MRSIGNERSEAM/SEAMATTRIBUTES', async () => {
  const w = await world();
  const svn = (minor: number, major: number) => [minor, major, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  const up = await verifyQuote(w, await w.quote({ tee: 'tdx', version: 5, td15: true, teeTcbSvn: svn(5, 3) }), 'tdx');
  assert.equal(up.tcbStatus, 'UpToDate', JSON.stringify(up.errors));
  assert.equal((up.claims!.raw as Record<string, unknown>).tdxModuleId, 'TDX_03');
  const ood = await verifyQuote(w, await w.quote({ tee: 'tdx', version: 5, td15: true, teeTcbSvn: svn(3, 3) }), 'tdx');
  assert.equal(ood.tcbStatus, 'OutOfDate');
  const rev = await verifyQuote(w, await w.quote({ tee: 'tdx', version: 5, td15: true, teeTcbSvn: svn(1, 3) }), 'tdx');
  assert.equal(rev.errors[0].code, 'TCB_REVOKED');
  const missing = await verifyQuote(w, await w.quote({ tee: 'tdx', version: 5, td15: true, teeTcbSvn: svn(5, 0x0b) }), 'tdx');
  assert.equal(missing.errors[0].code, 'TDX_MODULE_MISMATCH');
  assert.match(missing.errors[0].message, /TDX_0B/);
  const signer = await verifyQuote(w, await w.quote({ tee: 'tdx', version: 5, td15: true, teeTcbSvn: svn(5, 3), mrSignerSeam: new Uint8Array(48).fill(1) }), 'tdx');
  assert.equal(signer.errors[0].code, 'TDX_MODULE_MISMATCH');
  const attrs = await verifyQuote(w, await w.quote({ tee: 'tdx', version: 4, seamAttributes: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1]) }), 'tdx');
  assert.equal(attrs.errors[0].code, 'TDX_MODULE_MISMATCH');
  const noIds = await verifyQuote(w, await w.quote({ tee: 'tdx', version: 5, td15: true, teeTcbSvn: svn(5, 3) }), 'tdx', {
    tweaks: { tcbInfo: (s) => delete s.tdxModuleIdentities },
  });
  assert.equal(noIds.errors[0].code, 'TCB_INFO_MISMATCH');
});

test('TCB info v2 (flat sgxtcbcompNNsvn) is accepted for SGX', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  const r = await verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: (s) => (s.version = 2) } });
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  assert.equal(r.tcbStatus, 'UpToDate');
});

test('TD 1.5 relaunch advice: launched OutOfDate, current TCB (TEE_TCB_SVN2) UpToDate', async () => {
  const w = await world();
  const svn = (minor: number, major: number) => [minor, major, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  const q = await w.quote({ tee: 'tdx', version: 5, td15: true, teeTcbSvn: svn(3, 3), teeTcbSvn2: svn(5, 3) });
  const r = await verifyQuote(w, q, 'tdx');
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  assert.equal(r.tcbStatus, 'OutOfDate');
  assert.equal(r.claims!.raw.tdRelaunchAdvised, true);
  assert.equal(r.claims!.raw.currentTcbStatus, 'UpToDate');
  assert.match(r.claims!.warnings.join(' '), /TD relaunch advised/);
  const same = await verifyQuote(w, await w.quote({ tee: 'tdx', version: 5, td15: true, teeTcbSvn: svn(3, 3) }), 'tdx');
  assert.equal(same.tcbStatus, 'OutOfDate');
  assert.equal(same.claims!.raw.tdRelaunchAdvised, undefined);
});
